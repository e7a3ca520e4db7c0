"""The queue purge playbook proven the same way on Postfix and on Exim, with a real monit watching the MTA.

Shared by molecule/mail_queue (Postfix) and molecule/mail_queue_exim (Exim): each scenario's test file
imports these tests and defines the `mta` fixture (POSTFIX or EXIM below), which says how to fill, list
and clear that MTA's queue with the MTA's own commands, never with the module under test.

The queue is filled here: 200 spam messages from a compromised site's script and 20 legitimate ones
from the same domain, all to outside domains that the lab host cannot reach, so they wait in the queue.
monit polls every second (tests/molecule/monit_watch.yml): a purge that stopped the MTA while monit
watched it would see monit start it again, and monit's log would say so. While a purge runs, a sampler
on the host records ten times a second whether the MTA runs and whether monit watches it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from labtools import PROJECT_DIR, ansible_playbook_stats, audit_results, changed_tasks

PURGE = str(PROJECT_DIR / "playbooks" / "purge_mail_queue.yml")
AUDIT = str(PROJECT_DIR / "playbooks" / "audit.yml")
SPAMMER = "spammer@site1.example"
LEGITIMATE = "info@site1.example"
SPAM_COUNT = 200
LEGITIMATE_COUNT = 20
EVIDENCE_DIR = "/var/lib/hostguard/evidence"
MONIT_LOG = "/var/log/monit.log"
# The lab's hosts mount /proc: no file can be created there, even by root.
UNWRITABLE_DIR = "/proc/hostguard-evidence"
# Both MTAs install a sendmail command that queues what it reads.
FILL_QUEUE = r"""
i=0
while [ $i -lt %(spam)d ]; do
  printf 'Subject: cheap pills %%d\n\nbuy now\n' $i | sendmail -f %(spammer)s victim$i@outside.example
  if [ $((i %% 10)) -eq 0 ]; then
    printf 'Subject: invoice %%d\n\nyour invoice\n' $i | sendmail -f %(legitimate)s customer$i@outside.example
  fi
  i=$((i + 1))
done
""" % {"spam": SPAM_COUNT, "spammer": SPAMMER, "legitimate": LEGITIMATE}
# Prints the archive's manifest, each file entry with the sha256 of the file the archive holds.
HASH_ARCHIVED_FILES = """
import hashlib, json, sys, tarfile
archive = tarfile.open(sys.argv[1])
manifest = json.load(archive.extractfile("manifest.json"))["messages"]
for entry in manifest:
    for item in entry["files"]:
        item["hashed"] = hashlib.sha256(archive.extractfile(item["file"]).read()).hexdigest()
print(json.dumps(manifest))
"""


@dataclass(frozen=True)
class Mta:
    name: str
    service: str            # the systemd unit, and the check's name in monit
    clear: str              # empties the queue
    settled: str            # exits 0 once no delivery attempt is under way
    side_files: str         # prints the IDs of the per-message files kept beside the queue files
    archived_files: tuple   # names of a message's files in the evidence archive, from its ID
    refusal: str            # what the module says when asked to purge while the MTA runs
    spool: str              # the queue (spool) directory
    queues: str             # its subdirectories that hold messages and their logs
    check: str              # the MTA's own check of its spool and configuration: prints nothing when all is well

    def queue(self, host):
        """{queue_id: {"sender", "recipients", "queue_name"}} from the MTA's own listing."""
        return POSTFIX_QUEUE(host) if self.name == "postfix" else EXIM_QUEUE(host)

    def arrival_times(self, host):
        """{queue_id: arrival time} as the MTA itself reads it."""
        if self.name == "postfix":
            return {queue_id: message["arrival_time"] for queue_id, message in POSTFIX_JSON(host).items()}
        # Line 4 of the -H file as exim -Mvh shows it: "<arrival time> <delay warnings sent>".
        listing = host.check_output("for id in $(exim4 -bp | awk '$4 ~ /^</ {print $3}'); do"
                                    " echo $id $(exim4 -Mvh $id | sed -n 4p); done")
        return {line.split()[0]: int(line.split()[1]) for line in listing.splitlines()}


def POSTFIX_JSON(host):
    listing = host.check_output("postqueue -j")
    return {message["queue_id"]: message for message in map(json.loads, listing.splitlines())}


def POSTFIX_QUEUE(host):
    return {queue_id: {"sender": message["sender"], "queue_name": message["queue_name"],
                       "recipients": [recipient["address"] for recipient in message["recipients"]]}
            for queue_id, message in POSTFIX_JSON(host).items()}


EXIM_HEADER = re.compile(r"^\s*\d+\w\s+\S+\s+(\S+)\s+<(.*)>( \*\*\* frozen \*\*\*)?$")


def EXIM_QUEUE(host):
    """exim -bp: a line per message (age, size, ID, <sender>), then its recipients, "D " before those done."""
    messages, current = {}, None
    for line in host.check_output("exim4 -bp").splitlines():
        header = EXIM_HEADER.match(line)
        if header:
            current = messages[header.group(1)] = {
                "sender": header.group(2), "queue_name": "frozen" if header.group(3) else "queued", "recipients": []}
        elif line.strip() and current is not None and not line.strip().startswith("D "):
            current["recipients"].append(line.strip())
    return messages


POSTFIX = Mta(
    name="postfix", service="postfix", clear="postsuper -d ALL",
    settled="test -z \"$(find /var/spool/postfix/maildrop /var/spool/postfix/incoming /var/spool/postfix/active"
            " -type f)\"",
    side_files="find /var/spool/postfix/defer /var/spool/postfix/bounce /var/spool/postfix/trace -type f -printf '%f\\n'",
    archived_files=("queue/deferred/{}",),
    refusal="Postfix is running: stop it before purging",
    spool="/var/spool/postfix",
    queues="maildrop incoming active deferred hold corrupt bounce defer trace flush",
    # postfix check warns of queue directories and files whose owner or mode is not what Postfix made.
    check="postfix check 2>&1",
)
EXIM = Mta(
    name="exim", service="exim4", clear="exim4 -bp | awk '$4 ~ /^</ {print $3}' | xargs -r exim4 -Mrm >/dev/null",
    # Only the daemon left: every delivery attempt made at submission has ended.
    settled="test \"$(pgrep -c -x exim4)\" = 1",
    side_files="find /var/spool/exim4/msglog -type f -printf '%f\\n'",
    archived_files=("input/{}-H", "input/{}-D"),
    refusal="Exim is running (pid",
    spool="/var/spool/exim4",
    queues="input msglog",
    check="exim4 -bV >/dev/null 2>&1 || echo exim4 -bV failed",
)


def ids_from(messages, sender):
    return {queue_id for queue_id, message in messages.items() if message["sender"] == sender}


def purge(*options, **variables):
    return ansible_playbook_stats(PURGE, "-e", json.dumps(dict({"mail_queue_purge_sender": SPAMMER}, **variables)), *options)


def audit():
    """hostguard.hosting.audit, blocklists skipped: (its hostguard_audit fact, the lines it showed)."""
    run = ansible_playbook_stats(AUDIT, "-e", json.dumps({"audit_dnsbl_addresses": []}))
    assert run["rc"] == 0, run["stats"]
    facts, lines = audit_results(run["plays"])
    host = next(iter(facts))
    return facts[host], lines[host]


def debug_messages(plays):
    return [result.get("msg", "") for play in plays for task in play["tasks"] for result in task["hosts"].values()]


def monit_log_since(host, offset):
    return host.check_output("tail -c +%d %s" % (offset + 1, MONIT_LOG)).splitlines()


def monit_log_size(host):
    return int(host.check_output("stat -c %%s %s" % MONIT_LOG))


def unit_events(host, service, since):
    """[(time, "Stopped"|"Started")] of the MTA's unit since a time, from systemd's journal.

    postfix.service is a oneshot unit: systemd says "Finished" where it says "Started" of others.
    """
    listing = host.check_output("journalctl -q -o short-unix --since @%d _PID=1"
                                " | grep -E ' (Stopped|Started|Finished) %s[.]service' || true" % (since, service))
    events = [(float(line.split()[0]), "Stopped" if " Stopped " in line else "Started") for line in listing.splitlines()]
    return [event for event in events if event[0] >= since]


# Samples, ten times a second while a purge runs, whether the MTA's unit is active and what monit says of its watch.
SAMPLER = ("while :; do printf '%%s|%%s\\n' \"$(systemctl is-active %(service)s)\""
           " \"$(monit status %(service)s 2>&1 | sed -n 's/^ *monitoring status *//p')\"; sleep 0.1; done")


class WatchSampler:
    def __init__(self, host, mta):
        self.host, self.mta = host, mta

    def __enter__(self):
        self.offset = monit_log_size(self.host)
        self.started_at = float(self.host.check_output("date +%s.%N"))
        self.pid = self.host.check_output("nohup sh -c %s < /dev/null > /root/watch-samples 2>/dev/null & echo $!"
                                          % shlex.quote(SAMPLER % {"service": self.mta.service}))
        return self

    def __exit__(self, *exc):
        self.host.run("kill %s" % self.pid)

    def samples(self):
        return [tuple(line.split("|", 1)) for line in self.host.file("/root/watch-samples").content_string.splitlines()
                if "|" in line]


def assert_watch_paused_around_the_stop(host, mta, watch):
    """monit's watch was paused whenever the MTA was down, and resumed after; monit did not start the MTA."""
    samples = watch.samples()
    down = [sample for sample in samples if sample[0] != "active"]
    # The sampler saw the MTA down, each time with monit's watch paused.
    assert down and all(sample[1] == "Not monitored" for sample in down), samples
    lines = monit_log_since(host, watch.offset)
    name = "'%s'" % mta.service
    actions = [line for line in lines if name in line]
    assert len([line for line in actions if "unmonitor on user request" in line]) == 1, actions
    assert len([line for line in actions if re.search(" monitor on user request", line)]) == 1, actions
    assert not [line for line in actions if re.search("not running|trying to restart|start:|restart", line)], actions
    # Stopped by the playbook and started once, by the playbook.
    events = unit_events(host, mta.service, watch.started_at)
    assert [event[1] for event in events] == ["Stopped", "Started"], events
    assert re.search(r"monitoring status\s+Monitored", host.check_output("monit status %s" % mta.service))


@pytest.fixture(scope="module")
def before(host, mta):
    """The queue once it is filled and every message waits for its next delivery attempt."""
    host.run_expect([0], "rm -rf %s" % EVIDENCE_DIR)
    host.run_expect([0], mta.clear)
    host.run_expect([0], FILL_QUEUE)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        messages = mta.queue(host)
        if len(messages) == SPAM_COUNT + LEGITIMATE_COUNT and host.run(mta.settled).rc == 0:
            arrivals = mta.arrival_times(host)
            return {queue_id: dict(message, arrival_time=arrivals[queue_id]) for queue_id, message in messages.items()}
        time.sleep(1)
    raise AssertionError("the queue did not settle: %d messages" % len(mta.queue(host)))


def spool_directories(host, mta):
    """{directory: (owner, group, mode)} of the queue directories and every directory in them, and of
    any hostguard-* directory in the spool (other programs keep directories of their own there)."""
    listing = host.check_output("cd %s && find %s hostguard-* -type d -printf '%%p %%u %%g %%m\\n' 2>/dev/null || true"
                                % (mta.spool, mta.queues))
    return {line.split()[0]: tuple(line.split()[1:]) for line in listing.splitlines()}


@pytest.fixture(scope="module")
def directories_before(host, mta, before):
    """The spool's directories once the queue is filled, before any purge (the purge may make some anew)."""
    directories = spool_directories(host, mta)
    assert {"deferred", "defer"} <= set(directories) or {"input", "msglog"} <= set(directories), directories
    return directories


def test_monit_starts_the_mta_again_when_it_stops_while_watched(host, mta):
    """The watch is live: without the pause, monit would undo the playbook's stop."""
    offset = monit_log_size(host)
    stop = host.run("systemctl stop %s" % mta.service)
    # monit may start the MTA while systemd is still stopping it: systemd then cancels the stop job, which is
    # monit undoing the stop as well
    assert stop.rc == 0 or (stop.rc == 1 and "canceled" in stop.stderr), (stop.rc, stop.stderr)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not host.service(mta.service).is_running:
        time.sleep(0.5)
    assert host.service(mta.service).is_running
    assert any("'%s' trying to restart" % mta.service in line for line in monit_log_since(host, offset))


def test_without_confirmation_it_reports_what_it_would_delete_and_deletes_nothing(host, mta, before,
                                                                                  directories_before):
    run = purge()
    assert run["rc"] == 0, run["stats"]
    assert "would delete %d of %d messages (by sender: %s); run with mail_queue_purge_confirm=true to delete them" % (
        SPAM_COUNT, SPAM_COUNT + LEGITIMATE_COUNT, SPAMMER) in debug_messages(run["plays"])
    assert changed_tasks(run["plays"]) == []
    assert set(mta.queue(host)) == set(before)


def test_the_audit_reports_the_queue_and_its_busiest_senders(host, mta, before):
    report, lines = audit()
    queue = report["mail_queue"]["queue"]
    assert queue["count"] == SPAM_COUNT + LEGITIMATE_COUNT
    assert queue["by_sender"] == [{"name": SPAMMER, "count": SPAM_COUNT}, {"name": LEGITIMATE, "count": LEGITIMATE_COUNT}]
    pattern = r"mail queue: %d messages \(the oldest queued \d+[.]\d h ago\); busiest senders: %s %d, %s %d$" % (
        SPAM_COUNT + LEGITIMATE_COUNT, re.escape(SPAMMER), SPAM_COUNT, re.escape(LEGITIMATE), LEGITIMATE_COUNT)
    assert [line for line in lines if re.match(pattern, line)], lines
    assert set(mta.queue(host)) == set(before)


def test_a_failing_purge_deletes_nothing_and_leaves_the_mta_running_and_watched(host, mta, before):
    with WatchSampler(host, mta) as watch:
        run = purge(mail_queue_purge_confirm=True, mail_queue_purge_export_dir=UNWRITABLE_DIR)
    assert run["rc"] != 0
    assert "nothing deleted: the evidence archive in %s could not be written" % UNWRITABLE_DIR in json.dumps(run["plays"])
    # The MTA was stopped for the purge and started again after it failed.
    assert [task.rsplit(" : ", 1)[-1] for task in changed_tasks(run["plays"])] == [
        "Pause monit's watch on the MTA", "Stop the MTA", "Start the MTA again", "Resume monit's watch on the MTA"]
    assert host.service(mta.service).is_running
    assert_watch_paused_around_the_stop(host, mta, watch)
    assert set(mta.queue(host)) == set(before)


def test_purge_by_sender_removes_exactly_the_spam_and_keeps_evidence(host, mta, before):
    with WatchSampler(host, mta) as watch:
        run = purge(mail_queue_purge_confirm=True, mail_queue_purge_export_dir=EVIDENCE_DIR)
    assert run["rc"] == 0, run["stats"]
    after = mta.queue(host)
    assert ids_from(after, SPAMMER) == set()
    assert set(after) == ids_from(before, LEGITIMATE)
    assert len(after) == LEGITIMATE_COUNT
    assert host.service(mta.service).is_running
    assert_watch_paused_around_the_stop(host, mta, watch)
    assert "queue before: %d messages; selected: %d; deleted: %d; queue after: %d messages; evidence: %s/" % (
        SPAM_COUNT + LEGITIMATE_COUNT, SPAM_COUNT, SPAM_COUNT, LEGITIMATE_COUNT, EVIDENCE_DIR) \
        in " ".join(debug_messages(run["plays"]))


def test_the_files_kept_beside_each_spam_message_went_with_it(host, mta, before):
    """Postfix's defer logs (what postsuper -d removes too), Exim's message logs: the spam's are gone."""
    remaining = set(host.check_output(mta.side_files).split())
    assert remaining & ids_from(before, SPAMMER) == set()
    assert remaining == ids_from(before, LEGITIMATE)


def test_the_spool_is_left_as_the_mta_made_it(host, mta, before, directories_before):
    """Every directory there before is there with its owner, group and mode, and no other is: the files
    the Postfix purge moved out of the queue were deleted once Postfix ran again."""
    after = spool_directories(host, mta)
    differences = {path: (directories_before.get(path), after.get(path)) for path in set(after) | set(directories_before)
                   if directories_before.get(path) != after.get(path)}
    assert differences == {}, differences
    assert host.check_output(mta.check) == ""


def test_the_evidence_archive_holds_every_spam_file_with_its_hash(host, mta, before):
    (archive,) = host.check_output("ls %s/mail-queue-*.tar.gz" % EVIDENCE_DIR).split()
    assert host.file(archive).mode == 0o600
    manifest = json.loads(host.check_output("python3 -c %s %s" % (shlex.quote(HASH_ARCHIVED_FILES), archive)))
    spam = ids_from(before, SPAMMER)
    assert {entry["queue_id"] for entry in manifest} == spam
    for entry in manifest:
        assert [item["file"] for item in entry["files"]] == [name.format(entry["queue_id"]) for name in mta.archived_files]
        for item in entry["files"]:
            assert item["sha256"] == item["hashed"], entry
        assert (entry["sender"], entry["recipients"], entry["arrival_time"]) == (
            SPAMMER, before[entry["queue_id"]]["recipients"], before[entry["queue_id"]]["arrival_time"])


def test_the_audit_names_the_purge_by_its_evidence_archive_as_closed(host, mta, before):
    (archive,) = host.check_output("ls %s/mail-queue-*.tar.gz" % EVIDENCE_DIR).split()
    digest = host.check_output("sha256sum %s" % archive).split()[0]
    report, lines = audit()
    (purge,) = report["mail_queue"]["purges"]
    assert (purge["path"], purge["sha256"], purge["messages"], purge["error"]) == (archive, digest, SPAM_COUNT, None)
    assert purge["by_sender"] == [{"name": SPAMMER, "count": SPAM_COUNT}]
    (closed,) = [finding for finding in report["findings"] if finding["facet"] == "mail_queue"
                 and finding["status"] == "closed"]
    assert closed["response"] == {"action": "purged", "at": purge["purged_at"], "record": archive, "evidence": archive,
                                  "undo": None}
    assert "mail queue purged %s: %d messages kept as evidence in %s (the busiest sender: %s, %d)" % (
        purge["purged_at"], SPAM_COUNT, archive, SPAMMER, SPAM_COUNT) in lines
    assert len(mta.queue(host)) == LEGITIMATE_COUNT


def test_purging_again_finds_nothing_and_changes_nothing(host, mta, before):
    # By the variables' former names, still taken with a deprecation.
    run = ansible_playbook_stats(PURGE, "-e", json.dumps({"purge_sender": SPAMMER, "purge_confirm": True}))
    assert run["rc"] == 0, run["stats"]
    (deprecation,) = [message for message in debug_messages(run["plays"]) if "deprecated" in message]
    assert "purge_sender" in deprecation and "purge_confirm" in deprecation and "mail_queue_purge_confirm" in deprecation
    assert changed_tasks(run["plays"]) == []
    assert len(mta.queue(host)) == LEGITIMATE_COUNT


def test_a_malformed_sender_is_refused_before_any_change(host, mta, before):
    run = purge(mail_queue_purge_sender="spammer at site1", mail_queue_purge_confirm=True)
    assert run["rc"] != 0
    assert "sender 'spammer at site1' is neither an address" in json.dumps(run["plays"])
    assert changed_tasks(run["plays"]) == []
    assert len(mta.queue(host)) == LEGITIMATE_COUNT


def test_the_module_refuses_to_purge_while_the_mta_runs(host, mta, before):
    # An ad-hoc run: testinfra's host.ansible does not see this Ansible's failures as failed.
    inventory = str(Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent)
    attempt = subprocess.run(["ansible", "-i", inventory, "all", "-m", "hostguard.hosting.mail_queue",
                              "-a", "state=purged all=true"], text=True, capture_output=True, timeout=300, check=False)
    assert attempt.returncode != 0
    assert mta.refusal in attempt.stdout + attempt.stderr
    assert len(mta.queue(host)) == LEGITIMATE_COUNT
