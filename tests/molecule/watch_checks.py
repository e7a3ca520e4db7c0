"""What the watch scenario's tests share: the webhook receiver, the events log, the alert mailbox."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

from labtools import AUDIT_PLAYBOOK, IMAP_LOGIN, PROJECT_DIR, Lab, ansible_playbook_stats, audit_results, smtp

RECEIVER = PROJECT_DIR / "tests" / "molecule" / "webhook_receiver.py"
EVENTS = "/var/lib/hostguard/watch/events.jsonl"
ALERT_MAILBOX = "/var/mail/abuse"


class Receiver:
    """The webhook receiver in the admin office's namespace, on the port the converge configured."""

    def __init__(self, out: Path, port: int = 8025):
        office = Lab.from_env().clients["office"]
        self.out = out
        self.process = subprocess.Popen(["ip", "netns", "exec", office.netns, sys.executable, str(RECEIVER),
                                         "--port", str(port), "--out", str(out)])

    def messages(self) -> list[dict]:
        if not self.out.exists():
            return []
        return [json.loads(line)["body"] for line in self.out.read_text().splitlines()]

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


def events(host) -> list[dict]:
    result = host.run("cat %s", EVENTS)
    return [json.loads(line) for line in result.stdout.splitlines()] if result.rc == 0 else []


def wait_for(what, timeout: float = 60.0, every: float = 1.0):
    """Poll `what()` until it returns something true; that value, or the last one after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    value = what()
    while not value and time.monotonic() < deadline:
        time.sleep(every)
        value = what()
    return value


def imap_login(client, address: str, user: str, password: str) -> str:
    """'ok' or 'refused ...': an IMAP login from a client namespace of the lab."""
    result = client.run(sys.executable, "-c", IMAP_LOGIN, address, user, password, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


# -- the mail facet's checks, alike on Postfix (molecule/watch) and Exim (molecule/watch_exim) ----------------------
SITE1_UID = 2001
QUEUE_LINE = re.compile(r"^\s*\S+\s+\S+\s+(?P<id>\S+)\s+<(?P<sender>[^>]*)>(?P<frozen>\s+\*\*\* frozen \*\*\*)?")


def run_script(host, account: str, script: str, *arguments):
    """A customer's PHP script run as the customer, from its document root (PHP's mail() calls sendmail)."""
    command = " ".join(("php", script) + tuple(str(argument) for argument in arguments))
    host.run_expect([0], f"su {account} -s /bin/sh -c 'cd /home/{account}/public_html && {command}'")


def postfix_queue(host) -> list[dict]:
    """Postfix's queue (postqueue -j): one dict a message, with sender and held."""
    result = host.run("postqueue -j")
    assert result.rc == 0, result.stderr
    messages = [json.loads(line) for line in result.stdout.splitlines()]
    return [dict(message, held=message["queue_name"] == "hold") for message in messages]


def exim_queue(host) -> list[dict]:
    """Exim's queue (exim4 -bp): one dict a message, with sender and held (frozen)."""
    result = host.run("exim4 -bp")
    assert result.rc == 0, result.stderr
    return [{"id": match.group("id"), "sender": match.group("sender"), "held": bool(match.group("frozen"))}
            for match in map(QUEUE_LINE.match, result.stdout.splitlines()) if match]


def from_account(messages, account):
    return [message for message in messages if message["sender"].startswith(account + "@")]


def mail_alert(host, before: int, timeout: float = 60.0) -> dict:
    """The one mail_rate event after the first `before` events, waited for up to `timeout` seconds."""
    found = wait_for(lambda: [event for event in events(host)[before:] if event["kind"] == "mail_rate"], timeout)
    assert len(found) == 1, found
    return found[0]


def check_flood_alert(host, receiver, event, host_name):
    """The alert of site1's contact.php flood: named, contained, and delivered to the webhook and the mailbox."""
    assert (event["uid"], event["account"], event["script"]) == (SITE1_UID, "site1", "contact.php")
    assert event["count"] > 200 and event["host"] == host_name
    assert "victims.example" in event["top_recipient_domains"]
    assert "site1" in event["summary"] and "contact.php" in event["summary"]
    assert event["action"]["kind"] == "hold" and not event["action"].get("failed")

    hook = wait_for(lambda: [m for m in receiver.messages() if m["hostguard"]["key"] == event["key"]], timeout=60)
    assert hook, receiver.messages()
    assert "site1" in hook[0]["text"] and "contact.php" in hook[0]["text"]
    assert "release_mail" in hook[0]["text"]  # how to undo the hold

    mailbox = wait_for(lambda: host.file(ALERT_MAILBOX).exists
                       and "contact.php" in host.file(ALERT_MAILBOX).content_string, timeout=60)
    assert mailbox, f"no alert in {ALERT_MAILBOX}"
    assert f"Subject: [hostguard-watch] {host_name}: account site1 (uid 2001)" in host.file(ALERT_MAILBOX).content_string


def check_refused_configuration(host, converge: str, host_name: str):
    """A configuration the service refuses fails the role at its check, and the live one stays."""
    before = host.file("/etc/hostguard/watch.yml").sha256sum
    run = ansible_playbook_stats(converge, "-e", "watch_alert_interval=10")
    assert run["rc"] != 0
    failed = [task for play in run["plays"] for task in play["tasks"] if task["hosts"].get(host_name, {}).get("failed")]
    assert failed and "checked by the service" in failed[0]["task"]["name"], failed
    result = failed[0]["hosts"][host_name]
    message = result.get("stderr", "") + result.get("msg", "")
    assert "alerts.interval" in message and "10" in message, message
    assert host.file("/etc/hostguard/watch.yml").sha256sum == before
    assert host.service("hostguard-watch").is_running


def audit_only_the_watch() -> tuple[dict, dict]:
    """hostguard.hosting.audit with every facet but the watch off: ({host: hostguard_audit}, {host: its lines})."""
    only_watch = {f"audit_{facet}_enabled": False for facet in (
        "services", "enforcement", "dnsbl", "integrity", "accounts", "mail_queue", "attacks", "updates", "cms", "disks", "logins",
        "senders", "safe_browsing")}
    run = ansible_playbook_stats(AUDIT_PLAYBOOK, "-e", json.dumps(only_watch))
    assert run["rc"] == 0, run["stats"]
    return audit_results(run["plays"])


def mail_rate_finding(facts, host_name):
    findings = [finding for finding in facts[host_name]["findings"]
                if finding["facet"] == "watch" and finding["evidence"]["kind"] == "mail_rate"]
    assert len(findings) == 1 and findings[0]["severity"] == "critical", findings
    return findings[0]


def check_audit_closes_the_hold_in_force(host_name: str):
    """While the account's mail is held, the audit reads the MTA's hold list back and closes the finding, with the
    times it was noticed and contained and how to undo it."""
    facts, lines = audit_only_the_watch()
    assert SITE1_UID in facts[host_name]["watch"]["live"]["held"]["uids"], facts[host_name]["watch"]["live"]
    finding = mail_rate_finding(facts, host_name)
    assert finding["status"] == "closed" and finding["response"]["action"] == "held", finding
    assert "contained: mail from uid 2001 (site1) is held" in finding["summary"], finding["summary"]
    assert finding["response"]["noticed_at"] and finding["response"]["contained_at"]
    assert finding["response"]["seconds"] is not None and finding["response"]["seconds"] >= 0
    assert "release_mail_uid=2001" in finding["remedy"]
    assert finding["summary"] in lines[host_name]


def check_audit_names_the_hold(host_name: str):
    """The audit's watch facet names what the watch saw and contained, with how to undo it; the scenario released
    the hold before, and the audit, reading the MTA's hold list back, says the finding is open again."""
    facts, lines = audit_only_the_watch()
    watch = facts[host_name]["watch"]
    assert watch["installed"] and watch["running"]
    assert watch["present"] and watch["counts"]["mail_rate"] == 1
    assert SITE1_UID not in watch["live"]["held"]["uids"], watch["live"]
    finding = mail_rate_finding(facts, host_name)
    assert (finding["status"], finding["response"]) == ("open", None), finding
    assert "site1" in finding["summary"] and "contained at " in finding["summary"], finding["summary"]
    assert finding["summary"].endswith("but no longer: uid 2001 is no longer held (released)"), finding["summary"]
    # Nothing to undo any more: the remedy is the runbook's.
    assert finding["remedy"] == "docs/runbooks/spam-outbreak.md"
    assert finding["summary"] in lines[host_name]


def assert_nothing_said_again(host, receiver, said: int, hooks: int):
    """No event or webhook since the first `said` events and `hooks` messages repeats a (kind, key) said before.

    Other facets may say something new meanwhile (the queue facet sees the held mail); a repeat is the failure.
    """
    before = events(host)[:said]
    already = {(event["kind"], event["key"]) for event in before}
    again = [event for event in events(host)[said:] if (event["kind"], event["key"]) in already]
    assert not again, again
    hooked = [message["hostguard"] for message in receiver.messages()[hooks:]]
    assert not [event for event in hooked if (event["kind"], event["key"]) in already], hooked


def check_restart_loses_no_line_and_repeats_no_alert(host, receiver):
    """Mail site2 sends while the service is stopped is counted after it starts, and nothing said is said again."""
    said = len(events(host))
    hooks = len(receiver.messages())
    host.run_expect([0], "systemctl stop hostguard-watch")
    for _message in range(3):
        run_script(host, "site2", "form.php")
    host.run_expect([0], "systemctl start hostguard-watch")

    def site2_counted():
        state = json.loads(host.file("/var/lib/hostguard/watch/state.json").content_string)
        source = state["facets"]["mail"]["sources"].get("uid:2002", {})
        return sum(source.get("minutes", {}).values()) == 5  # 2 before the stop, 3 while it was stopped

    assert wait_for(site2_counted, timeout=30)
    assert_nothing_said_again(host, receiver, said, hooks)


# -- a mailbox flooding through authenticated submission (prepare_mailboxes.yml), alike on Postfix and Exim ------
FLOODER, OTHER = "mailer1", "mailer2"
SASL_PASSWORD = "Submit-pass-2301"
RELEASE = str(PROJECT_DIR / "playbooks" / "release_mail.yml")
FLOOD = 230  # over the converge's watch_mail_per_hour of 200


def submit(host_name: str, user: str, count: int, rcpt: str, subject: str) -> dict:
    """`count` messages from `user` through 587 (STARTTLS, AUTH) from the domestic client: smtp_probe's report."""
    lab = Lab.from_env()
    return smtp(lab.clients["jp"], lab.hosts[host_name]["ipv4"], 587, "--starttls", "--user", user,
                "--password", SASL_PASSWORD, "--mail-from", f"{user}@mailboxes.example", "--rcpt", rcpt, "--data",
                "--count", str(count), "--subject", subject, timeout=30)


def message_id(message: dict) -> str:
    return message.get("queue_id") or message["id"]  # Postfix's postqueue -j, Exim's -bp


def delivered(host, mailbox: str, subject: str) -> bool:
    path = f"/var/mail/{mailbox}"
    return host.file(path).exists and f"Subject: {subject}" in host.file(path).content_string


def check_sasl_flood_held(host, queue, host_name: str, hold_map: str):
    """mailer1's flood through submission is accepted and every message of it held; mailer2's mail is delivered."""
    before = len(events(host))
    flood = submit(host_name, FLOODER, FLOOD, "buyer{n}@victims.example", "offer")
    assert flood.get("data_codes") == {"250": FLOOD}, flood  # accepted, none refused or lost
    other = submit(host_name, OTHER, 1, "site2@localhost", "mailer2 writes")
    assert other.get("data") == 250, other

    found = wait_for(lambda: [e for e in events(host)[before:] if e["kind"] == "mail_rate"], timeout=60)
    assert len(found) == 1 and found[0]["sasl_user"] == FLOODER, found
    event = found[0]
    assert event["source"] == f"sasl:{FLOODER}" and event["count"] > 200
    assert f"mailbox {FLOODER} (SMTP AUTH)" in event["summary"]
    assert event["action"]["kind"] == "hold" and not event["action"].get("failed"), event["action"]
    assert f"release_mail_sasl_user={FLOODER}" in event["action"]["undo"]

    # queued ones held by the watch, the rest by the MTA at submission or by the watch's next minute
    held = wait_for(lambda: len([m for m in from_account(queue(host), FLOODER) if m["held"]]) == FLOOD, timeout=90)
    assert held, [(message_id(m), m["held"]) for m in from_account(queue(host), FLOODER)]
    assert FLOODER in host.file(hold_map).content_string.split()
    assert wait_for(lambda: delivered(host, "site2", "mailer2 writes"), timeout=30)
    assert not from_account(queue(host), OTHER)


def check_new_sasl_mail_held_at_submission(host, queue, host_name: str):
    """The held mailbox's next message is accepted and held as it comes in; the other mailbox's is delivered."""
    assert submit(host_name, FLOODER, 1, "late@victims.example", "late offer").get("data") == 250
    assert submit(host_name, OTHER, 1, "site2@localhost", "mailer2 again").get("data") == 250
    # held by the MTA itself, at once: the watch's check every minute is not what held it
    assert wait_for(lambda: len([m for m in from_account(queue(host), FLOODER) if m["held"]]) == FLOOD + 1,
                    timeout=10)
    assert wait_for(lambda: delivered(host, "site2", "mailer2 again"), timeout=30)
    # and the watch remembers every held message for the release, the last one from the MTA's log line at once
    held = {message_id(m) for m in from_account(queue(host), FLOODER)}
    remembered = f"/var/lib/hostguard/watch/held-sasl-{FLOODER}.ids"
    assert wait_for(lambda: held <= set(host.file(remembered).content_string.split()), timeout=20), held


def check_sasl_release(host, queue, host_name: str, hold_map: str):
    """release_mail.yml with release_mail_sasl_user lets every held message go, and the next one is not held."""
    run = ansible_playbook_stats(RELEASE, "-e", f"release_mail_hosts={host_name} release_mail_sasl_user={FLOODER}")
    assert run["rc"] == 0, run["stats"]
    mine = from_account(queue(host), FLOODER)
    assert len(mine) == FLOOD + 1 and not [m for m in mine if m["held"]]
    assert FLOODER not in host.file(hold_map).content_string.split()
    assert submit(host_name, FLOODER, 1, "after@victims.example", "after release").get("data") == 250
    assert wait_for(lambda: len(from_account(queue(host), FLOODER)) == FLOOD + 2, timeout=10)
    assert not [m for m in from_account(queue(host), FLOODER) if m["held"]]
