"""The queue purge playbook on a lab Postfix host whose queue holds spam and legitimate mail.

The queue is filled here: 200 spam messages from a compromised site's script and 20 legitimate ones
from the same domain, all to outside domains, so they wait in the deferred queue (converge defers
the smtp transport). The lab has no monit: a stand-in at /usr/bin/monit records how the playbook
calls it, which shows the watchdog paused and resumed around the purge.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import time
from pathlib import Path

import pytest
from labtools import PROJECT_DIR, ansible_playbook_stats, changed_tasks

PURGE = str(PROJECT_DIR / "playbooks" / "purge_mail_queue.yml")
SPAMMER = "spammer@site1.example"
LEGITIMATE = "info@site1.example"
SPAM_COUNT = 200
LEGITIMATE_COUNT = 20
MONIT_CALLS = "/root/monit-calls"
EVIDENCE_DIR = "/var/lib/hostguard/evidence"
# The lab's hosts mount /proc: no file can be created there, even by root.
UNWRITABLE_DIR = "/proc/hostguard-evidence"
MONIT_STAND_IN = "#!/bin/sh\necho \"$*\" >> %s\n" % MONIT_CALLS
# Prints the archive's manifest, each entry with the sha256 of the queue file the archive holds.
HASH_ARCHIVED_FILES = """
import hashlib, json, sys, tarfile
archive = tarfile.open(sys.argv[1])
manifest = json.load(archive.extractfile("manifest.json"))["messages"]
print(json.dumps([dict(entry, hashed=hashlib.sha256(archive.extractfile(entry["file"]).read()).hexdigest())
                  for entry in manifest]))
"""
FILL_QUEUE = r"""
postsuper -d ALL
i=0
while [ $i -lt %(spam)d ]; do
  printf 'Subject: cheap pills %%d\n\nbuy now\n' $i | sendmail -f %(spammer)s victim$i@outside.example
  if [ $((i %% 10)) -eq 0 ]; then
    printf 'Subject: invoice %%d\n\nyour invoice\n' $i | sendmail -f %(legitimate)s customer$i@outside.example
  fi
  i=$((i + 1))
done
""" % {"spam": SPAM_COUNT, "spammer": SPAMMER, "legitimate": LEGITIMATE}


def queue(host):
    """{queue_id: message} from postqueue -j, which asks the running Postfix."""
    listing = host.check_output("postqueue -j")
    return {message["queue_id"]: message for message in map(json.loads, listing.splitlines())}


def ids_from(messages, sender):
    return {queue_id for queue_id, message in messages.items() if message["sender"] == sender}


def purge(*options, **variables):
    return ansible_playbook_stats(PURGE, "-e", json.dumps(dict({"purge_sender": SPAMMER}, **variables)), *options)


def debug_messages(plays):
    return [result.get("msg", "") for play in plays for task in play["tasks"] for result in task["hosts"].values()]


@pytest.fixture(scope="module")
def before(host):
    """The queue once it is filled and every message has reached the deferred queue."""
    host.run_expect([0], "printf '%%s' %s > /usr/bin/monit && chmod 755 /usr/bin/monit && rm -f %s"
                    % (shlex.quote(MONIT_STAND_IN), MONIT_CALLS))
    host.run_expect([0], "rm -rf %s" % EVIDENCE_DIR)
    host.run_expect([0], FILL_QUEUE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        messages = queue(host)
        if len(messages) == SPAM_COUNT + LEGITIMATE_COUNT and all(
                message["queue_name"] == "deferred" for message in messages.values()):
            return messages
        time.sleep(1)
    raise AssertionError("the queue did not settle: %d messages" % len(queue(host)))


def test_without_confirmation_it_reports_what_it_would_delete_and_deletes_nothing(host, before):
    run = purge()
    assert run["rc"] == 0, run["stats"]
    assert "would delete %d of %d messages (by sender: %s); run with purge_confirm=true to delete them" % (
        SPAM_COUNT, SPAM_COUNT + LEGITIMATE_COUNT, SPAMMER) in debug_messages(run["plays"])
    assert changed_tasks(run["plays"]) == []
    assert set(queue(host)) == set(before)


def test_a_failing_purge_deletes_nothing_and_leaves_postfix_running_and_watched(host, before):
    run = purge(purge_confirm=True, purge_export_dir=UNWRITABLE_DIR)
    assert run["rc"] != 0
    assert "nothing deleted: the evidence archive in %s could not be written" % UNWRITABLE_DIR in json.dumps(run["plays"])
    # Postfix was stopped for the purge and started again after it failed.
    assert [task.split(": ", 1)[1] for task in changed_tasks(run["plays"])] == [
        "Pause monit's watch on Postfix", "Stop Postfix", "Start Postfix again", "Resume monit's watch on Postfix"]
    assert host.service("postfix").is_running
    assert host.file(MONIT_CALLS).content_string.splitlines() == ["unmonitor postfix", "monitor postfix"]
    assert set(queue(host)) == set(before)


def test_purge_by_sender_removes_exactly_the_spam_and_keeps_evidence(host, before):
    host.run_expect([0], "rm -f %s" % MONIT_CALLS)
    run = purge(purge_confirm=True, purge_export_dir=EVIDENCE_DIR)
    assert run["rc"] == 0, run["stats"]
    after = queue(host)
    assert ids_from(after, SPAMMER) == set()
    assert set(after) == ids_from(before, LEGITIMATE)
    assert len(after) == LEGITIMATE_COUNT
    assert host.service("postfix").is_running
    assert host.file(MONIT_CALLS).content_string.splitlines() == ["unmonitor postfix", "monitor postfix"]
    assert "queue before: %d messages; selected: %d; deleted: %d; queue after: %d messages; evidence: %s/" % (
        SPAM_COUNT + LEGITIMATE_COUNT, SPAM_COUNT, SPAM_COUNT, LEGITIMATE_COUNT, EVIDENCE_DIR) \
        in " ".join(debug_messages(run["plays"]))


def test_the_evidence_archive_holds_every_spam_queue_file_with_its_hash(host, before):
    (archive,) = host.check_output("ls %s/mail-queue-*.tar.gz" % EVIDENCE_DIR).split()
    assert host.file(archive).mode == 0o600
    manifest = json.loads(host.check_output("python3 -c %s %s" % (shlex.quote(HASH_ARCHIVED_FILES), archive)))
    assert {entry["queue_id"] for entry in manifest} == ids_from(before, SPAMMER)
    for entry in manifest:
        assert entry["sha256"] == entry["hashed"], entry
        assert (entry["sender"], entry["recipients"]) == (SPAMMER, [before[entry["queue_id"]]["recipients"][0]["address"]])
        assert entry["arrival_time"] == before[entry["queue_id"]]["arrival_time"]


def test_purging_again_finds_nothing_and_changes_nothing(host, before):
    run = purge(purge_confirm=True)
    assert run["rc"] == 0, run["stats"]
    assert changed_tasks(run["plays"]) == []
    assert len(queue(host)) == LEGITIMATE_COUNT


def test_a_malformed_sender_is_refused_before_any_change(host, before):
    run = purge(purge_sender="spammer at site1", purge_confirm=True)
    assert run["rc"] != 0
    assert "purge_sender: spammer at site1 is neither an address" in json.dumps(run["plays"])
    assert changed_tasks(run["plays"]) == []
    assert len(queue(host)) == LEGITIMATE_COUNT


def test_the_module_refuses_to_purge_while_postfix_runs(host, before):
    # An ad-hoc run: testinfra's host.ansible does not see this Ansible's failures as failed.
    inventory = str(Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent)
    attempt = subprocess.run(["ansible", "-i", inventory, "all", "-m", "hostguard.hosting.mail_queue",
                              "-a", "state=purged all=true"], text=True, capture_output=True, timeout=300, check=False)
    assert attempt.returncode != 0
    assert "Postfix is running: stop it before purging" in attempt.stdout + attempt.stderr
    assert len(queue(host)) == LEGITIMATE_COUNT
