"""hostguard-watch's mail facet on a lab host: a customer's script sends 300 messages through sendmail.

The alert must name the account, the script and the count, and reach both the abuse desk's mailbox on the host
and a webhook receiver in the admin office; with containment on, the script's mail is held while another
customer's mail flows, and releasing it works. The tests run in order (each uses what the one before left).
"""

from __future__ import annotations

import json
import os

import pytest
from labtools import PROJECT_DIR, ansible_playbook_stats
from watch_checks import ALERT_MAILBOX, Receiver, audit_only_the_watch, events, wait_for

CONVERGE = os.path.join(os.environ.get("MOLECULE_SCENARIO_DIRECTORY", ""), "converge.yml")
RELEASE = str(PROJECT_DIR / "playbooks" / "release_mail.yml")
SITE1_UID = 2001


@pytest.fixture(scope="module")
def receiver(tmp_path_factory):
    started = Receiver(tmp_path_factory.mktemp("webhook") / "received.jsonl")
    yield started
    started.stop()


def queue(host) -> list[dict]:
    """Postfix's queue as data (postqueue -j): one dict a message, with queue_name and sender."""
    result = host.run("postqueue -j")
    assert result.rc == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def from_account(messages, account):
    return [message for message in messages if message["sender"].startswith(account + "@")]


def test_the_service_runs_with_least_privilege(host):
    shown = dict(line.split("=", 1) for line in host.check_output(
        "systemctl show hostguard-watch -p ActiveState -p NoNewPrivileges -p ProtectSystem "
        "-p CapabilityBoundingSet -p User").splitlines())
    assert shown["ActiveState"] == "active"
    assert shown["NoNewPrivileges"] == "yes" and shown["ProtectSystem"] == "strict"
    capabilities = shown["CapabilityBoundingSet"].split()
    assert "cap_dac_read_search" in capabilities
    assert "cap_sys_admin" not in capabilities and "cap_net_admin" not in capabilities


def test_a_script_sending_300_messages_is_named_within_a_minute_and_its_mail_held(host, receiver):
    before = len(events(host))
    host.run_expect([0], "su site1 -s /bin/sh -c 'cd /home/site1/public_html && php contact.php 300'")
    host.run_expect([0], "su site2 -s /bin/sh -c 'cd /home/site2/public_html && php form.php'")

    def mail_event():
        return [event for event in events(host)[before:] if event["kind"] == "mail_rate"]

    found = wait_for(mail_event, timeout=60)
    assert len(found) == 1, found
    event = found[0]
    assert (event["uid"], event["account"], event["script"]) == (SITE1_UID, "site1", "contact.php")
    assert event["count"] > 200 and event["host"] == "watch1"
    assert "victims.example" in event["top_recipient_domains"]
    assert "site1" in event["summary"] and "contact.php" in event["summary"]
    assert event["action"]["kind"] == "hold" and not event["action"].get("failed")

    hook = wait_for(lambda: [m for m in receiver.messages() if m["hostguard"]["key"] == event["key"]], timeout=60)
    assert hook, receiver.messages()
    assert "site1" in hook[0]["text"] and "contact.php" in hook[0]["text"]
    assert "release_mail" in hook[0]["text"]  # how to undo the hold

    mailbox = wait_for(lambda: host.file(ALERT_MAILBOX).exists and "contact.php" in host.file(ALERT_MAILBOX).content_string,
                       timeout=60)
    assert mailbox, f"no alert in {ALERT_MAILBOX}"
    assert "Subject: [hostguard-watch] watch1: account site1 (uid 2001)" in host.file(ALERT_MAILBOX).content_string

    # Every one of site1's 300 messages ends on hold (queued ones by postsuper -h, later ones at submission);
    # site2's message is not held.
    held = wait_for(lambda: len([m for m in from_account(queue(host), "site1") if m["queue_name"] == "hold"]) == 300,
                    timeout=90)
    site1 = from_account(queue(host), "site1")
    assert held, {name: len([m for m in site1 if m["queue_name"] == name]) for name in ("hold", "deferred", "active", "incoming")}
    site2 = from_account(queue(host), "site2")
    assert len(site2) == 1 and site2[0]["queue_name"] != "hold"


def test_new_mail_of_the_held_account_is_held_at_submission_while_others_flow(host):
    host.run_expect([0], "su site1 -s /bin/sh -c 'cd /home/site1/public_html && php contact.php 1'")
    host.run_expect([0], "su site2 -s /bin/sh -c 'cd /home/site2/public_html && php form.php'")
    assert wait_for(lambda: len([m for m in from_account(queue(host), "site1") if m["queue_name"] == "hold"]) == 301)
    assert all(m["queue_name"] != "hold" for m in from_account(queue(host), "site2"))


def test_release_lets_the_held_mail_go(host):
    run = ansible_playbook_stats(RELEASE, "-e", f"release_mail_hosts=watch1 release_mail_uid={SITE1_UID}")
    assert run["rc"] == 0, run["stats"]
    site1 = from_account(queue(host), "site1")
    assert len(site1) == 301 and not [m for m in site1 if m["queue_name"] == "hold"]
    assert f"userid {SITE1_UID}" not in host.file("/etc/postfix/hostguard-watch-hold.regexp").content_string
    # released: the account's next message is not held
    host.run_expect([0], "su site1 -s /bin/sh -c 'cd /home/site1/public_html && php contact.php 1'")
    assert wait_for(lambda: len(from_account(queue(host), "site1")) == 302)
    assert not [m for m in from_account(queue(host), "site1") if m["queue_name"] == "hold"]


def test_a_restart_loses_no_line_and_repeats_no_alert(host, receiver):
    said = len(events(host))
    hooks = len(receiver.messages())
    host.run_expect([0], "systemctl stop hostguard-watch")
    for message in range(3):
        host.run_expect([0], "su site2 -s /bin/sh -c 'cd /home/site2/public_html && php form.php'")
    host.run_expect([0], "systemctl start hostguard-watch")

    def site2_counted():
        state = json.loads(host.file("/var/lib/hostguard/watch/state.json").content_string)
        source = state["facets"]["mail"]["sources"].get("uid:2002", {})
        return sum(source.get("minutes", {}).values()) == 5  # 2 before the stop, 3 while it was stopped

    assert wait_for(site2_counted, timeout=30)
    assert len(events(host)) == said
    assert len(receiver.messages()) == hooks


def test_a_configuration_the_service_refuses_is_never_installed(host):
    before = host.file("/etc/hostguard/watch.yml").sha256sum
    run = ansible_playbook_stats(CONVERGE, "-e", "watch_alert_interval=10")
    assert run["rc"] != 0
    failed = [task["task"]["name"] for play in run["plays"] for task in play["tasks"]
              if task["hosts"].get("watch1", {}).get("failed")]
    assert failed and "checked by the service" in failed[0], failed
    messages = [task["hosts"]["watch1"].get("stderr", "") + task["hosts"]["watch1"].get("msg", "")
                for play in run["plays"] for task in play["tasks"] if task["hosts"].get("watch1", {}).get("failed")]
    assert "alerts.interval" in messages[0] and "10" in messages[0], messages
    assert host.file("/etc/hostguard/watch.yml").sha256sum == before
    assert host.service("hostguard-watch").is_running


def test_the_audit_names_what_the_watch_saw_and_what_it_contained(host):
    facts, lines = audit_only_the_watch()
    watch = facts["watch1"]["watch"]
    assert watch["present"] and watch["counts"]["mail_rate"] == 1
    findings = [finding for finding in facts["watch1"]["findings"]
                if finding["facet"] == "watch" and finding["evidence"].get("kind") == "mail_rate"]
    assert len(findings) == 1 and findings[0]["severity"] == "critical"
    assert "site1" in findings[0]["summary"] and "contained: mail from uid 2001 (site1) is held" in findings[0]["summary"]
    assert "release_mail_uid=2001" in findings[0]["remedy"]
    assert findings[0]["summary"] in lines["watch1"]
