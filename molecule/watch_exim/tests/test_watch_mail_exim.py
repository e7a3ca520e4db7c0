"""hostguard-watch's mail facet on a lab host with Exim: a customer's script sends 300 messages through sendmail.

As molecule/watch on Postfix: the alert names the account, the script and the count within a minute and reaches
the abuse desk's mailbox and the office's webhook receiver; the script's mail is frozen (queued with exim -Mf,
new at submission by the watch's acl_not_smtp) while another customer's mail flows, and releasing it thaws it.
The tests run in order (each uses what the one before left).
"""

from __future__ import annotations

import json
import os

import pytest
from labtools import PROJECT_DIR, ansible_playbook_stats
from watch_checks import (SITE1_UID, Receiver, check_audit_closes_the_hold_in_force, check_audit_names_the_hold, check_flood_alert,
                          check_refused_configuration, check_restart_loses_no_line_and_repeats_no_alert, events,
                          exim_queue, from_account, mail_alert, run_script, wait_for)

CONVERGE = os.path.join(os.environ.get("MOLECULE_SCENARIO_DIRECTORY", ""), "converge.yml")
RELEASE = str(PROJECT_DIR / "playbooks" / "release_mail.yml")
HOLD_LIST = "/etc/exim4/hostguard-watch/held-uids"


@pytest.fixture(scope="module")
def receiver(tmp_path_factory):
    started = Receiver(tmp_path_factory.mktemp("webhook") / "received.jsonl")
    yield started
    started.stop()


def frozen(host, account):
    return [message for message in from_account(exim_queue(host), account) if message["held"]]


def test_exim_runs_the_watchs_log_selector_and_acl(host):
    shown = host.check_output("exim4 -bP log_selector acl_not_smtp")
    assert "+pid" in shown and "+arguments" in shown
    assert "acl_not_smtp = hostguard_watch_not_smtp" in shown
    shown = dict(line.split("=", 1) for line in host.check_output(
        "systemctl show hostguard-watch -p ActiveState -p NoNewPrivileges -p ProtectSystem -p ReadWritePaths "
        "-p CapabilityBoundingSet").splitlines())
    assert shown["ActiveState"] == "active"
    assert shown["NoNewPrivileges"] == "yes" and shown["ProtectSystem"] == "strict"
    assert "cap_sys_admin" not in shown["CapabilityBoundingSet"].split()
    assert sorted(shown["ReadWritePaths"].split()) == sorted(
        ["/var/lib/hostguard/watch", "/etc/exim4/hostguard-watch", "/var/spool/exim4", "/var/log/exim4"])


def test_a_script_sending_300_messages_is_named_within_a_minute_and_its_mail_frozen(host, receiver):
    before = len(events(host))
    run_script(host, "site1", "contact.php", 300)
    run_script(host, "site2", "form.php")
    event = mail_alert(host, before)
    check_flood_alert(host, receiver, event, "watch1")
    assert event["cwd"] == "/home/site1/public_html"  # Exim's +arguments: where the script ran

    # Every one of site1's 300 messages ends frozen (queued ones by exim -Mf, later ones at submission by the ACL);
    # site2's message is not.
    assert wait_for(lambda: len(frozen(host, "site1")) == 300, timeout=90), len(frozen(host, "site1"))
    site2 = from_account(exim_queue(host), "site2")
    assert len(site2) == 1 and not site2[0]["held"]
    assert host.file(HOLD_LIST).content_string.splitlines()[-1] == str(SITE1_UID)


def test_new_mail_of_the_held_account_is_frozen_at_submission_while_others_flow(host):
    before = {message["id"] for message in from_account(exim_queue(host), "site1")}
    run_script(host, "site1", "contact.php", 1)
    run_script(host, "site2", "form.php")
    new = [message for message in from_account(exim_queue(host), "site1") if message["id"] not in before]
    assert len(new) == 1 and new[0]["held"]  # the ACL froze it as it came in
    assert len(from_account(exim_queue(host), "site2")) == 2 and not frozen(host, "site2")
    # and the watch remembers it for the release
    held_ids = f"/var/lib/hostguard/watch/held-uid-{SITE1_UID}.ids"
    assert wait_for(lambda: new[0]["id"] in host.file(held_ids).content_string.split(), timeout=30)


def test_the_audit_closes_the_finding_while_the_mail_is_held(host):
    check_audit_closes_the_hold_in_force("watch1")


def test_release_thaws_the_held_mail(host):
    run = ansible_playbook_stats(RELEASE, "-e", f"release_mail_hosts=watch1 release_mail_uid={SITE1_UID}")
    assert run["rc"] == 0, run["stats"]
    site1 = from_account(exim_queue(host), "site1")
    assert len(site1) == 301 and not [m for m in site1 if m["held"]]
    assert str(SITE1_UID) not in host.file(HOLD_LIST).content_string.split()
    # released: the account's next message is not frozen
    run_script(host, "site1", "contact.php", 1)
    assert len(from_account(exim_queue(host), "site1")) == 302 and not frozen(host, "site1")


def test_a_restart_loses_no_line_and_repeats_no_alert(host, receiver):
    check_restart_loses_no_line_and_repeats_no_alert(host, receiver)


def test_a_rotated_main_log_is_followed(host):
    # logrotate's way for Exim's logs on Debian: rename, then a new file
    host.run_expect([0], "mv /var/log/exim4/mainlog /var/log/exim4/mainlog.1 && install -o Debian-exim -g adm "
                         "-m 0640 /dev/null /var/log/exim4/mainlog")
    run_script(host, "site2", "form.php")

    def site2_counted():
        state = json.loads(host.file("/var/lib/hostguard/watch/state.json").content_string)
        return sum(state["facets"]["mail"]["sources"]["uid:2002"]["minutes"].values()) == 6

    assert wait_for(site2_counted, timeout=30)


def test_a_configuration_the_service_refuses_is_never_installed(host):
    check_refused_configuration(host, CONVERGE, "watch1")


def test_the_audit_names_what_the_watch_saw_and_what_it_contained(host):
    check_audit_names_the_hold("watch1")
