"""hostguard-watch's logins facet on a lab host: a mailbox used from Japan logs in from Moldova over IMAP.

prepare.yml logged mbox1 in from the `jp` client before the watch started, so the service's first start learned
it from the journal. The login from `abroad` (203.0.113.0/24, MD in the lab's country table) must reach the webhook
receiver in the admin office and the abuse desk's mailbox naming the account, service, address and country; with
`watch_contain_logins: lock` (converge.yml) the next login from anywhere fails, the undo in the alert works, and
another login from Japan says nothing. The tests run in order (each uses what the one before left).
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest
from labtools import Lab
from watch_checks import ALERT_MAILBOX, Receiver, audit_only_the_watch, events, imap_login, wait_for

LAB = Lab.from_env()
JP, ABROAD = LAB.clients["jp"], LAB.clients["abroad"]
MAILBOX, PASSWORD = "mbox1", "Mailbox-pass-2201"
STATE = "/var/lib/hostguard/watch/state.json"
ALERTS = {}


@pytest.fixture(scope="module")
def receiver(tmp_path_factory):
    started = Receiver(tmp_path_factory.mktemp("webhook") / "received.jsonl")
    yield started
    started.stop()


def address_of(host):
    return host.ansible.get_variables()["hostguard_lab_ipv4"]


def login_events(host, since=0):
    return [event for event in events(host)[since:] if event["kind"] == "login_new_country"]


def places(host):
    state = json.loads(host.file(STATE).content_string)
    return state["facets"]["logins"]["accounts"].get(MAILBOX, {})


def test_the_first_start_learned_the_mailbox_s_country_without_alerting(host):
    assert set(places(host)) == {"JP"}
    assert not [event for event in login_events(host) if event["account"] == MAILBOX]


def test_a_login_from_a_new_country_is_said_to_the_webhook_and_the_abuse_desk_and_locks_the_mailbox(host, receiver):
    before = len(events(host))
    assert imap_login(ABROAD, address_of(host), MAILBOX, PASSWORD) == "ok"

    found = wait_for(lambda: login_events(host, before), timeout=60)
    assert len(found) == 1, found
    event = found[0]
    assert (event["account"], event["service"], event["address"], event["country"]) == \
        (MAILBOX, "imap", ABROAD.ipv4, "MD")
    assert event["host"] == "watch1" and event["known_places"] == ["JP"]
    assert event["action"]["kind"] == "lock" and not event["action"].get("failed"), event["action"]
    ALERTS["undo"] = event["action"]["undo"]

    hook = wait_for(lambda: [m for m in receiver.messages() if m["hostguard"]["key"] == event["key"]], timeout=60)
    assert hook, receiver.messages()
    for said in (MAILBOX, "IMAP", ABROAD.ipv4, "MD", "mode=unlock unlock=mbox1"):
        assert said in hook[0]["text"], (said, hook[0]["text"])

    said = f"What happened: {MAILBOX} logged in over IMAP from {ABROAD.ipv4} (MD)"
    assert wait_for(lambda: host.file(ALERT_MAILBOX).exists and said in host.file(ALERT_MAILBOX).content_string,
                    timeout=60), f"no alert in {ALERT_MAILBOX}"
    mailbox = host.file(ALERT_MAILBOX).content_string
    assert f"Subject: [hostguard-watch] watch1: {MAILBOX} logged in" in mailbox
    assert "Contained: system account mbox1 is locked" in mailbox and "country: MD" in mailbox


def test_the_locked_mailbox_logs_in_from_nowhere(host):
    for client in (JP, ABROAD):
        assert imap_login(client, address_of(host), MAILBOX, PASSWORD).startswith("refused"), client.name
    shadow = host.run("getent shadow %s", MAILBOX).stdout.split(":")
    assert shadow[1].startswith("!") and shadow[7] == "0"  # password locked, account expired


def login_finding(facts):
    findings = [finding for finding in facts["watch1"]["findings"] if finding["facet"] == "watch"
                and finding["evidence"]["kind"] == "login_new_country" and finding["evidence"]["account"] == MAILBOX]
    assert len(findings) == 1 and findings[0]["severity"] == "critical", findings
    return findings[0]


def test_the_audit_closes_the_login_while_the_mailbox_is_locked(host):
    facts, _lines = audit_only_the_watch()
    finding = login_finding(facts)
    assert finding["status"] == "closed" and finding["response"]["action"] == "locked", finding
    assert "contained: system account mbox1 is locked" in finding["summary"]
    assert "mode=unlock unlock=mbox1" in finding["remedy"]


def test_the_undo_the_alert_names_unlocks_it_and_a_login_from_japan_says_nothing(host):
    assert ALERTS.get("undo", "").startswith("ansible watch1 "), ALERTS
    inventory = str(Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent)
    undo = subprocess.run(shlex.split(ALERTS["undo"]) + ["-i", inventory], capture_output=True, text=True,
                          timeout=600, check=False)
    assert undo.returncode == 0, undo.stdout + undo.stderr
    assert not host.file("/var/lib/hostguard/account_cleanup/locks/system-mbox1.json").exists

    before, seen = len(events(host)), places(host)["JP"]
    assert imap_login(JP, address_of(host), MAILBOX, PASSWORD) == "ok"
    # the service read the login (the mailbox's Japan is newer), and said nothing of it
    assert wait_for(lambda: places(host).get("JP", 0) > seen, timeout=30)
    assert login_events(host, before) == []


def test_the_audit_opens_the_login_again_once_the_mailbox_is_unlocked_without_a_new_password(host):
    facts, _lines = audit_only_the_watch()
    finding = login_finding(facts)
    assert (finding["status"], finding["response"]) == ("open", None), finding
    assert finding["summary"].endswith("but no longer: account mbox1 is no longer locked and its password was not "
                                       "changed since"), finding["summary"]
