"""hostguard-watch's mail facet on a lab host: a customer's script sends 300 messages through sendmail.

The alert must name the account, the script and the count, and reach both the abuse desk's mailbox on the host
and a webhook receiver in the admin office; with containment on, the script's mail is held while another
customer's mail flows, and releasing it works. The tests run in order (each uses what the one before left).
"""

from __future__ import annotations

import os

import pytest
from labtools import PROJECT_DIR, ansible_playbook_stats
from watch_checks import (SITE1_UID, Receiver, check_audit_closes_the_hold_in_force, check_audit_names_the_hold, check_flood_alert,
                          check_refused_configuration, check_restart_loses_no_line_and_repeats_no_alert, events,
                          from_account, mail_alert, postfix_queue, run_script, wait_for)

CONVERGE = os.path.join(os.environ.get("MOLECULE_SCENARIO_DIRECTORY", ""), "converge.yml")
RELEASE = str(PROJECT_DIR / "playbooks" / "release_mail.yml")


@pytest.fixture(scope="module")
def receiver(tmp_path_factory):
    started = Receiver(tmp_path_factory.mktemp("webhook") / "received.jsonl")
    yield started
    started.stop()


queue = postfix_queue


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
    run_script(host, "site1", "contact.php", 300)
    run_script(host, "site2", "form.php")
    check_flood_alert(host, receiver, mail_alert(host, before), "watch1")

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


def test_the_audit_closes_the_finding_while_the_mail_is_held(host):
    check_audit_closes_the_hold_in_force("watch1")


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
    check_restart_loses_no_line_and_repeats_no_alert(host, receiver)


def test_a_configuration_the_service_refuses_is_never_installed(host):
    check_refused_configuration(host, CONVERGE, "watch1")


def test_the_audit_names_what_the_watch_saw_and_what_it_contained(host):
    check_audit_names_the_hold("watch1")
