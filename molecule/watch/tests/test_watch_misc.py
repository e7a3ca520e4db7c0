"""hostguard-watch's queue, blocklist and bans facets on a lab host, under the real unit.

A spam run from one sender fills the queue: the webhook receiver in the admin office gets a `mail_queue` event
naming the sender, its count, its share and its recipients' domain. The host's own address appears on a
blocklist of the lab's DNS while the watch runs (and goes again): `dnsbl_listed`, then `dnsbl_delisted`. A
mailbox account fails to log in over IMAP from four of the lab's client addresses: the bruteforce role (run in
prepare.yml) reports it, and the watch says `account_attacked`; six bans within the hour pass the converge's
rate of five: `ban_rate`.
"""

from __future__ import annotations

import sys

import pytest
from labtools import Lab
from watch_checks import Receiver, events, wait_for

LAB = Lab.from_env()
HOST = LAB.hosts["watch1"]
ZEN = "zen.spamhaus.org"
SPAMMER = "bulk@spam-run.example"
ACCOUNT = "customer1"  # prepare.yml
# the dnsbl facet checks every minute (converge.yml) and the service looks every minute whether one is due
DNSBL_WAIT = 200
QUEUE_WAIT = 150

# Run by a client's python: one IMAP login (after STARTTLS, as Dovecot requires) with a wrong password.
WRONG_PASSWORD = """
import imaplib, ssl, sys
try:
    session = imaplib.IMAP4(sys.argv[1], 143, timeout=10)
    session.starttls(ssl_context=ssl._create_unverified_context())  # the lab's snakeoil certificate
    session.login(sys.argv[2], "not-the-password")
except (imaplib.IMAP4.error, OSError):
    pass
"""


@pytest.fixture(scope="module")
def receiver(tmp_path_factory):
    started = Receiver(tmp_path_factory.mktemp("webhook-misc") / "received.jsonl")
    yield started
    started.stop()


def new_events(host, before, kind):
    return [event for event in events(host)[before:] if event["kind"] == kind]


def hooks(receiver, key):
    return [message for message in receiver.messages() if message["hostguard"]["key"] == key]


def test_a_spam_queue_from_one_sender_names_the_sender_at_the_webhook(host, receiver):
    host.run_expect([0], "postsuper -d ALL")  # what earlier tests left queued
    before = len(events(host))
    host.run_expect([0], f"for i in $(seq 150); do printf 'Subject: offer %s\\n\\nCheap pills\\n' $i "
                         f"| /usr/sbin/sendmail -f {SPAMMER} buyer$i@victims.example; done")
    key = f"sender:{SPAMMER}"
    hook = wait_for(lambda: hooks(receiver, key), timeout=QUEUE_WAIT)
    found = [event for event in new_events(host, before, "mail_queue") if event["key"] == key]
    try:
        assert hook, receiver.messages()
        assert len(found) == 1, found
        event = found[0]
        assert event["sender"] == SPAMMER and event["count"] >= 100 and event["share"] > 50
        assert event["top_recipient_domains"].get("victims.example") == event["count"]
        assert event["runbook"].startswith("spam-outbreak.md")
        assert SPAMMER in hook[0]["text"] and "watch1" in hook[0]["text"]
    finally:
        host.run("postsuper -d ALL")


def test_a_listing_that_appears_in_the_lab_dns_is_said_and_so_is_its_delisting(host, receiver):
    address = HOST["ipv4"]
    before = len(events(host))
    LAB.list_in_dns(ZEN, address, "127.0.0.2", "Listed in SBL, see https://check.spamhaus.org/ (lab)")
    try:
        listed = wait_for(lambda: new_events(host, before, "dnsbl_listed"), timeout=DNSBL_WAIT, every=5)
        assert len(listed) == 1, listed
        event = listed[0]
        assert (event["address"], event["zone"], event["code"]) == (address, ZEN, "127.0.0.2")
        assert "SBL" in event["meaning"] and "lab" in event["reason"]
        assert wait_for(lambda: hooks(receiver, event["key"]), timeout=60), receiver.messages()
    finally:
        LAB.unlist_in_dns(ZEN, address)
    delisted = wait_for(lambda: new_events(host, before, "dnsbl_delisted"), timeout=DNSBL_WAIT, every=5)
    assert [(event["address"], event["zone"]) for event in delisted] == [(address, ZEN)]


def test_an_account_failing_from_many_addresses_is_said(host, receiver):
    before = len(events(host))
    clients = [LAB.clients[name] for name in ("jp", "office", "abroad", "abroad2")]
    for client in clients:
        client.run(sys.executable, "-c", WRONG_PASSWORD, HOST["ipv4"], ACCOUNT, timeout=60)
    attacked = wait_for(lambda: new_events(host, before, "account_attacked"), timeout=60)
    assert len(attacked) == 1, (attacked, host.run("journalctl -q -t hostguard-bruteforce --no-pager").stdout)
    event = attacked[0]
    assert event["account"] == ACCOUNT and event["address_count"] == 4
    assert set(event["addresses"]) == {client.ipv4 for client in clients}
    assert wait_for(lambda: hooks(receiver, event["key"]), timeout=60), receiver.messages()


def test_bans_past_the_hourly_rate_are_one_event_not_one_per_ban(host):
    before = len(events(host))
    addresses = [f"203.0.113.{number}" for number in range(201, 207)]  # no lab client is among them
    host.run_expect([0], "fail2ban-client set sshd banip " + " ".join(addresses))
    try:
        found = wait_for(lambda: new_events(host, before, "ban_rate"), timeout=QUEUE_WAIT, every=5)
        assert len(found) == 1, found
        assert found[0]["count"] >= 6 and found[0]["jails"].get("sshd", 0) >= 6
        assert set(addresses) <= set(found[0]["addresses"])
    finally:
        host.run("fail2ban-client set sshd unbanip " + " ".join(addresses))
