"""hostguard-watch's files facet on a lab host: webshells planted by a customer in its docroot and in /dev/shm.

Each is written as the customer (site1), under the real unit. The alert must name the path, the rule and the
owner within 60 seconds of the write, at the webhook receiver in the admin office and in the abuse desk's
mailbox; with quarantine on (converge.yml), the docroot's shell is locked with a manifest and the alert's own
restore command puts it back; an ordinary new PHP file gives no alert. The tests run in order.
"""

from __future__ import annotations

import hashlib
import shlex
import time

import pytest
from labtools import ansible_playbook_stats
from watch_checks import ALERT_MAILBOX, Receiver, audit_only_the_watch, events, wait_for

DOCROOT = "/home/site1/public_html"
PLANTED = f"{DOCROOT}/wp-content/uploads/2026/cache.php"
IN_SHM = "/dev/shm/.sess_4f2a.php"
SHELL = "<?php\n// cache\n$c = $_REQUEST['c']; system($c);\n"
ORDINARY = "<?php\nfunction site_title() { return 'Example'; }\necho site_title();\n"
SITE1_UID = 2001
ALERT_WITHIN = 60.0


@pytest.fixture(scope="module")
def receiver(tmp_path_factory):
    started = Receiver(tmp_path_factory.mktemp("webhook") / "received.jsonl")
    yield started
    started.stop()


def as_site1(host, command):
    host.run_expect([0], "su site1 -s /bin/sh -c %s" % shlex.quote(command))


def plant(host, path, content):
    """Write `content` to `path` as site1; the time just before (monotonic, on this side), the 60 s start from."""
    directory = path.rsplit("/", 1)[0]
    started = time.monotonic()
    as_site1(host, f"umask 022 && mkdir -p {shlex.quote(directory)} && printf %s {shlex.quote(content)} > "
                   f"{shlex.quote(path)}")
    return started


def planted_event(host, path, before):
    return [event for event in events(host)[before:] if event["kind"] == "file_planted" and event["path"] == path]


def alert_everywhere(host, receiver, path, planted_at):
    """The event, the webhook message and the mail for `path`, each waited for until 60 s after the write."""
    def left():
        return max(0.0, planted_at + ALERT_WITHIN - time.monotonic())

    found = wait_for(lambda: planted_event(host, path, 0), timeout=left())
    assert found, f"no file_planted event for {path} within {ALERT_WITHIN} s"
    hook = wait_for(lambda: [m for m in receiver.messages() if m["hostguard"].get("path") == path], timeout=left())
    assert hook, f"no webhook message for {path} within {ALERT_WITHIN} s: {receiver.messages()}"
    mailed = wait_for(lambda: host.file(ALERT_MAILBOX).exists and path in host.file(ALERT_MAILBOX).content_string,
                      timeout=left())
    assert mailed, f"no alert naming {path} in {ALERT_MAILBOX} within {ALERT_WITHIN} s"
    return found[0], hook[0]


def test_the_service_may_quarantine_in_the_docroots_only(host):
    shown = dict(line.split("=", 1) for line in host.check_output(
        "systemctl show hostguard-watch -p ActiveState -p CapabilityBoundingSet -p ReadWritePaths").splitlines())
    assert shown["ActiveState"] == "active"
    capabilities = shown["CapabilityBoundingSet"].split()
    assert {"cap_chown", "cap_fowner", "cap_dac_read_search"} <= set(capabilities)
    assert "cap_sys_admin" not in capabilities
    writable = [path.lstrip("-") for path in shown["ReadWritePaths"].split()]  # "-": skipped when missing
    assert DOCROOT in writable and "/var/lib/hostguard/quarantine" in writable
    # the temporary directories are watched, never written (the logins facet's lock, on in this scenario, adds /tmp
    # for doveconf; see test_watch_logins)
    assert "/dev/shm" not in writable and "/var/tmp" not in writable


def test_a_webshell_planted_in_a_docroot_is_named_within_a_minute_and_quarantined(host, receiver):
    planted_at = plant(host, PLANTED, SHELL)
    event, hook = alert_everywhere(host, receiver, PLANTED, planted_at)

    assert event["rule"] and event["owner"] == "site1" and event["uid"] == SITE1_UID
    assert event["line_number"] == 3 and "system($c)" in event["line"]
    assert event["host"] == "watch1" and event["severity"] == "critical" and event["change"] == "new"
    action = event["action"]
    assert action["kind"] == "quarantine" and not action.get("failed"), action
    for text in (hook["text"], host.file(ALERT_MAILBOX).content_string):
        assert PLANTED in text and event["rule"] in text and "site1" in text
        assert "hostguard.hosting.restore" in text  # how to undo the quarantine

    locked = host.file(PLANTED)
    assert (locked.uid, locked.gid, locked.mode) == (0, 0, 0)
    assert host.run("su site1 -s /bin/sh -c %s" % shlex.quote(f"cat {PLANTED}")).rc != 0  # the site cannot read it
    manifest = host.file(action["manifest"])
    assert manifest.exists and PLANTED in manifest.content_string
    assert hashlib.sha256(SHELL.encode()).hexdigest() in manifest.content_string


def planted_findings(facts):
    return {finding["evidence"]["path"]: finding for finding in facts["watch1"]["findings"]
            if finding["facet"] == "watch" and finding["evidence"].get("kind") == "file_planted"}


def test_the_audit_closes_the_planted_file_while_its_quarantine_is_in_force(host):
    facts, lines = audit_only_the_watch()
    finding = planted_findings(facts)[PLANTED]
    assert finding["status"] == "closed" and finding["response"]["action"] == "quarantined", finding
    assert finding["severity"] == "critical" and "contained: " in finding["summary"]
    assert "planted-files.md" in finding["remedy"] and "hostguard.hosting.restore" in finding["remedy"]
    assert finding["summary"] in lines["watch1"]


def test_the_alerts_restore_command_puts_the_file_back(host):
    action = planted_event(host, PLANTED, 0)[0]["action"]
    argv = shlex.split(action["undo"])
    assert argv[:2] == ["ansible-playbook", "hostguard.hosting.restore"], argv
    run = ansible_playbook_stats(argv[1], *argv[2:])
    assert run["rc"] == 0, run["stats"]
    restored = host.file(PLANTED)
    assert (restored.user, restored.mode) == ("site1", 0o644)
    assert restored.sha256sum == hashlib.sha256(SHELL.encode()).hexdigest()
    assert not host.file(action["manifest"]).exists  # moved to restored/


def test_a_webshell_in_dev_shm_is_named_within_a_minute_and_left_in_place(host, receiver):
    planted_at = plant(host, IN_SHM, SHELL)
    event, hook = alert_everywhere(host, receiver, IN_SHM, planted_at)
    assert event["rule"] and event["owner"] == "site1" and event["in"] == "temporary directory"
    assert "action" not in event  # temporary directories are named, not quarantined
    assert IN_SHM in hook["text"] and event["rule"] in hook["text"]
    assert host.file(IN_SHM).user == "site1"
    host.run_expect([0], f"rm -f {IN_SHM}")


def test_an_ordinary_new_php_file_in_a_docroot_gives_no_alert(host, receiver):
    before = len(events(host))
    hooks = len(receiver.messages())
    plant(host, f"{DOCROOT}/about.php", ORDINARY)
    # A control written after it: once the watch has said this one, it has examined about.php too.
    control = "/dev/shm/control.php"
    planted_at = plant(host, control, SHELL)
    assert wait_for(lambda: planted_event(host, control, before), timeout=ALERT_WITHIN - (time.monotonic() - planted_at))
    assert [event["path"] for event in events(host)[before:]] == [control]
    assert wait_for(lambda: len(receiver.messages()) > hooks)
    assert [m["hostguard"]["path"] for m in receiver.messages()[hooks:]] == [control]
    host.run_expect([0], f"rm -f {control}")


def test_the_audit_opens_the_restored_file_again_and_names_the_one_left_in_place(host):
    facts, lines = audit_only_the_watch()
    planted = planted_findings(facts)
    assert {PLANTED, IN_SHM} <= set(planted), list(planted)
    restored = planted[PLANTED]
    assert (restored["status"], restored["response"]) == ("open", None), restored
    assert restored["summary"].endswith("but no longer: no active quarantine holds %s now (restored)" % PLANTED), \
        restored["summary"]
    assert "planted-files.md" in restored["remedy"]
    assert "contained" not in planted[IN_SHM]["summary"]
    assert restored["summary"] in lines["watch1"]
