"""The leaked-password runbook's answer on a lab host: playbooks/change_password.yml after the watch locked a mailbox.

prepare.yml logged mbox2 in from the `jp` client before the watch started. A login from `abroad` (MD) makes the
watch lock it (converge.yml: `watch_contain_logins: lock`). The playbook then gives it a new password: while it
runs, a client in the admin office tries the old password over IMAP many times a second and is never let in; after
it, the old password is refused and the new one (read from the controller's file) accepted, the lock record says
unlocked with a new password, and the audit's watch facet reads the change back. A second run is a second change:
it ends the IMAP session opened with the first new password. The tests run in order (each uses what the one before
left). Refused logins are tried from the admin office, which the bruteforce role's jails ignore (prepare.yml), so
that the domestic client, whose logins succeed, is never banned; a successful login from the office would be a new
country for the mailbox, and the watch would lock it again.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from labtools import IMAP_LOGIN, PROJECT_DIR, Lab, ansible_playbook_stats, task_name
from watch_checks import audit_only_the_watch, events, imap_login, wait_for

LAB = Lab.from_env()
JP, ABROAD, OFFICE = LAB.clients["jp"], LAB.clients["abroad"], LAB.clients["office"]
ADDRESS = LAB.hosts["watch1"]["ipv4"]
MAILBOX, OLD_PASSWORD = "mbox2", "Mailbox-pass-2202"
PLAYBOOK = str(PROJECT_DIR / "playbooks" / "change_password.yml")
TRIES = PROJECT_DIR / "tests" / "molecule" / "imap_tries.py"
LOCK_RECORD = f"/var/lib/hostguard/account_cleanup/locks/system-{MAILBOX}.json"
CHANGE_RECORD = f"/var/lib/hostguard/password_changes/{MAILBOX}.json"
MODULE_TASK = "Set the new password under the account's lock, end its sessions, lift the lock"
SEEN = {}

# Run by a client's python: log in, say so, then NOOP every half second until the server ends the session.
HOLD_SESSION = """
import imaplib, ssl, sys, time
imap = imaplib.IMAP4(sys.argv[1], 143, timeout=30)
imap.starttls(ssl_context=ssl._create_unverified_context())
imap.login(sys.argv[2], sys.argv[3])
imap.select("INBOX")
print("logged in", flush=True)
try:
    for _ in range(240):
        time.sleep(0.5)
        imap.noop()
    print("still open", flush=True)
except (imaplib.IMAP4.abort, OSError) as error:
    print("ended:", error, "BYE" if "BYE" in imap.untagged_responses else "", flush=True)
"""


# Run by a client's python: one IMAP login, waiting out Dovecot's penalty for an address that failed many times
# (up to 15 s before the password is checked, then PAM's and Dovecot's failure delays).
PATIENT_LOGIN = IMAP_LOGIN.replace("timeout=10", "timeout=90")


def refused_from_the_office(password):
    """Whether an IMAP login with `password` from the admin office is refused (the tries there made it slow)."""
    result = OFFICE.run(sys.executable, "-c", PATIENT_LOGIN, ADDRESS, MAILBOX, password, timeout=180)
    assert result.returncode == 0, result.stderr
    return result.stdout.startswith("refused")


@pytest.fixture(scope="module")
def secrets(tmp_path_factory):
    """The controller's directory of new passwords (change_password_secret_dir): made by the playbook."""
    return tmp_path_factory.mktemp("controller") / "hostguard-passwords"


def change_password(secrets, *options):
    return ansible_playbook_stats(PLAYBOOK, *options, "-e", json.dumps({
        "change_password_hosts": "watch1", "change_password_account": MAILBOX,
        "change_password_domain": "site2.example", "change_password_secret_dir": str(secrets)}))


def module_result(run):
    found = [task["hosts"]["watch1"] for play in run["plays"] for task in play["tasks"]
             if task_name(task) == MODULE_TASK and "watch1" in task["hosts"]]
    assert len(found) == 1, [task_name(task) for play in run["plays"] for task in play["tasks"]]
    return found[0]


def shadow(host):
    return host.run("getent shadow %s", MAILBOX).stdout.strip().split(":")


def test_a_login_from_abroad_makes_the_watch_lock_the_mailbox(host):
    before = len(events(host))
    assert imap_login(ABROAD, ADDRESS, MAILBOX, OLD_PASSWORD) == "ok"
    found = wait_for(lambda: [event for event in events(host)[before:] if event["kind"] == "login_new_country"
                              and event["account"] == MAILBOX], timeout=60)
    assert len(found) == 1 and found[0]["action"]["kind"] == "lock" and not found[0]["action"].get("failed"), found
    assert shadow(host)[1].startswith("!") and shadow(host)[7] == "0"
    assert host.file(LOCK_RECORD).exists
    assert refused_from_the_office(OLD_PASSWORD)


def test_check_mode_draws_no_password_and_changes_nothing(host, secrets):
    before = shadow(host)
    run = change_password(secrets, "--check")
    assert run["rc"] == 0, run["stats"]
    would = module_result(run)
    assert would["changed"] and would["unlocked"] and would["lock"]["state"] == "in_force", would
    assert would["sessions_ended"] is None
    assert shadow(host) == before and not host.file(CHANGE_RECORD).exists
    assert not secrets.exists() or not list(secrets.iterdir())


def tries_during(tries, start, end):
    return sorted((t for t in tries if start <= t["sent"] <= end), key=lambda t: t["sent"])


def test_the_old_password_never_logs_in_while_the_playbook_runs_and_the_new_one_does_after(host, secrets, tmp_path):
    stop = tmp_path / "stop"
    trying = subprocess.Popen(["ip", "netns", "exec", OFFICE.netns, sys.executable, str(TRIES), ADDRESS, MAILBOX,
                               OLD_PASSWORD, str(stop), "0.1"], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(3)
        start = time.time()
        run = change_password(secrets)
        end = time.time()
        time.sleep(3)
    finally:
        stop.touch()
        output, _err = trying.communicate(timeout=120)
    assert run["rc"] == 0, run["stats"]
    tries = json.loads(output)
    assert [t for t in tries if t["result"] == "ok"] == []
    assert {t["result"] for t in tries} == {"refused"}, tries
    # the old password was tried throughout the run, not only before or after it
    during = tries_during(tries, start, end)
    gaps = [later["sent"] - earlier["sent"] for earlier, later in zip(during, during[1:])]
    assert len(during) >= 20 and max(gaps) < 2.0, (len(during), max(gaps, default=None), end - start)
    SEEN["tries"] = (len(during), round(max(gaps), 2), round(end - start, 1))

    done = module_result(run)
    assert done["changed"] and done["unlocked"] and done["sessions_ended"] == 0, done  # the watch ended them
    password_file = secrets / f"watch1-{MAILBOX}.txt"
    assert password_file.stat().st_mode & 0o777 == 0o600 and secrets.stat().st_mode & 0o777 == 0o700
    SEEN["first"] = password_file.read_text().strip()
    assert len(SEEN["first"]) == 16
    assert imap_login(JP, ADDRESS, MAILBOX, SEEN["first"]) == "ok"
    assert refused_from_the_office(OLD_PASSWORD)
    assert not shadow(host)[1].startswith("!") and shadow(host)[7] == ""  # unlocked, no expiry as before the lock


def test_the_lock_record_says_unlocked_with_a_new_password_and_the_change_is_recorded(host):
    lock = json.loads(host.file(LOCK_RECORD).content_string)
    assert lock["unlocked_with"] == "new_password" and lock["unlocked_at"] >= lock["locked_at"], lock
    change = json.loads(host.file(CHANGE_RECORD).content_string)
    assert (change["account"], change["sessions_ended"], change["unlocked"]) == (MAILBOX, 0, True), change
    assert change["lock_locked_at"] == lock["locked_at"]
    assert SEEN["first"] not in host.file(CHANGE_RECORD).content_string
    assert host.file(CHANGE_RECORD).mode == 0o600


def test_a_second_run_is_a_second_change_and_ends_the_session_opened_before_it(host, secrets):
    session = subprocess.Popen(["ip", "netns", "exec", JP.netns, sys.executable, "-c", HOLD_SESSION, ADDRESS,
                                MAILBOX, SEEN["first"]], stdout=subprocess.PIPE, text=True)
    try:
        assert session.stdout.readline().strip() == "logged in"
        assert wait_for(lambda: MAILBOX in host.run("doveadm who %s", MAILBOX).stdout, timeout=10)
        run = change_password(secrets)
        output, _err = session.communicate(timeout=60)
    finally:
        if session.poll() is None:
            session.kill()
    assert run["rc"] == 0, run["stats"]
    assert output.startswith("ended:") and "BYE" in output, output
    done = module_result(run)
    assert (done["sessions_ended"], done["unlocked"], done["lock"]) == (1, False, None), done
    second = (secrets / f"watch1-{MAILBOX}.txt").read_text().strip()
    assert second != SEEN["first"]
    assert imap_login(JP, ADDRESS, MAILBOX, second) == "ok"
    for stale in (SEEN["first"], OLD_PASSWORD):
        assert refused_from_the_office(stale)
    assert json.loads(host.file(CHANGE_RECORD).content_string)["sessions_ended"] == 1


def test_the_audit_reads_the_change_back_and_keeps_the_login_closed(host):
    facts, _lines = audit_only_the_watch()
    watch = facts["watch1"]["watch"]
    assert [lock["state"] for lock in watch["live"]["locks"] if lock["name"] == MAILBOX] == ["unlocked"]
    assert [change["account"] for change in watch["live"]["password_changes"]] == [MAILBOX]
    findings = [finding for finding in facts["watch1"]["findings"] if finding["facet"] == "watch"
                and finding["evidence"]["kind"] == "login_new_country" and finding["evidence"]["account"] == MAILBOX]
    assert len(findings) == 1, findings
    assert findings[0]["status"] == "closed" and findings[0]["response"]["action"] == "password_changed", findings
    assert findings[0]["response"]["record"] == CHANGE_RECORD, findings[0]
