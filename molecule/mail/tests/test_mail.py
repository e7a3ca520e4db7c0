"""mail_submission and mail_relay on Postfix, proven by speaking SMTP from the lab's client networks.

The assertions every MTA must pass live in tests/molecule/mail_checks.py (imported
below, so pytest runs them here); this file adds what only Postfix has.
"""

from __future__ import annotations

import json
import time

import pytest
from labtools import ansible_playbook_stats, audit_enforcement, changed_tasks
from mail_checks import *  # noqa: F401,F403  pylint: disable=wildcard-import,unused-wildcard-import
from mail_checks import (OUTSIDE_ADDRESS, VERIFY_TASK, MailScenario, assert_refused_unchanged, converge_with,
                         failure_messages, first_refusal, restore, task_results)

POLICYD_DB = "/var/lib/policyd-rate-limit/db.sqlite3"
POLICYD_SOCKET = "/var/spool/postfix/ratelimit/policy"


def postfix_files(host):
    return {name: host.file(f"/etc/postfix/{name}").content_string for name in ("main.cf", "master.cf")}


def submission_logged(host, data_reply, user):
    """Postfix logged the message as accepted through the submission service from the authenticated user."""
    queue_id = data_reply.rsplit(" ", 1)[-1]
    log = host.check_output("journalctl --no-pager -q -t postfix/submission/smtpd")
    return f"{queue_id}: client=" in log and any(
        queue_id in line and f"sasl_username={user}" in line for line in log.splitlines())


@pytest.fixture(scope="module")
def mail(host):
    release = int(host.check_output(". /etc/os-release && echo $VERSION_ID"))
    return MailScenario(mta="postfix", service="postfix", relay_refusal=(554, "Relay access denied"),
                        config_files=postfix_files, submission_logged=submission_logged,
                        # Debian 12's postfix.service is a oneshot that stays active when the master is gone;
                        # on Debian 13 systemd sees the master go and the unit is no longer active.
                        kill="postfix stop", kill_seen_by_systemd=release >= 13)


# The configuration on the host.

def test_dovecot_gives_postfix_its_auth_socket_inside_the_chroot(host):
    socket = host.file("/var/spool/postfix/private/auth")
    assert socket.is_socket
    assert (socket.user, socket.group, socket.mode) == ("postfix", "postfix", 0o660)
    # The installed Dovecot's own parser (2.3 on Debian 12, 2.4 on 13) reads the role's file without a word of
    # complaint, and its listener and mechanisms are in force.
    doveconf = host.run("doveconf -n")
    assert (doveconf.rc, doveconf.stderr) == (0, ""), doveconf.stderr
    assert "auth_mechanisms = plain login" in doveconf.stdout
    listener = doveconf.stdout.split("unix_listener /var/spool/postfix/private/auth {", 1)[1].split("}", 1)[0]
    assert listener.split() == ["group", "=", "postfix", "mode", "=", "0660", "user", "=", "postfix"], listener


def test_postfix_passes_its_own_check_and_runs(host):
    assert host.run("postfix check").rc == 0
    assert host.service("postfix").is_running
    assert host.service("dovecot").is_running


def test_postfix_refuses_a_per_script_limit_it_cannot_enforce(host, mail):
    assert_refused_unchanged(host, mail, {"mail_relay_script_message_rate_limit": 10},
                             "mail_relay_script_message_rate_limit")


def test_a_per_user_limit_without_its_policy_daemon_fails_before_any_change(host, mail):
    # The role looks for the package by this name; one that is not installed stands for a host without it.
    assert_refused_unchanged(host, mail, {"mail_relay_policyd_package": "policyd-rate-limit-absent"},
                             "policyd-rate-limit-absent")


# The per-user limit: policyd-rate-limit, asked only for authenticated clients.

def submit(mail, client, user):
    return mail.speak(client, 587, "--starttls", "--user", user, "--password", mail.password,
                      "--mail-from", f"{user}@{mail.host_name}.lab.example", "--rcpt", OUTSIDE_ADDRESS, "--data")


def forget_counts(host):
    """Earlier tests' messages count too; start from none."""
    host.check_output(f"python3 -c \"import sqlite3; db = sqlite3.connect('{POLICYD_DB}'); "
                      f"db.execute('DELETE FROM mail_count'); db.commit()\"")


def test_the_policy_daemon_runs_with_the_roles_limit(host):
    assert host.service("policyd-rate-limit").is_running
    assert host.service("policyd-rate-limit").is_enabled
    assert host.file(POLICYD_SOCKET).is_socket
    config = host.check_output("python3 -c \"import yaml; print(yaml.safe_load(open('/etc/policyd-rate-limit.yaml'))"
                               "['limits'])\"")
    assert config == "[[100, 3600]]"


def test_the_user_limit_defers_the_message_over_it_from_any_address_and_spares_other_users(host, mail):
    other_user = mail.vars["mail_lab_other_user"]
    try:
        converge_with(mail, {"mail_relay_user_message_rate_limit": 2})
        forget_counts(host)
        replies = [submit(mail, client, mail.user) for client in ("jp", "abroad", "jp")]
        assert [first_refusal(reply) for reply in replies] == [None, None, 450], replies
        assert "Too many messages from this user" in replies[2]["rcpt_reply"], replies[2]
        # Another user still sends, from the same address.
        other = submit(mail, "jp", other_user)
        assert (other["auth"], first_refusal(other)) == (235, None), other
        # Inbound mail is not counted against anyone, nor held up.
        inbound = mail.speak("abroad", 25, "--mail-from", "friend@abroad.example", "--rcpt", mail.local_address,
                             "--data")
        assert first_refusal(inbound) is None, inbound
    finally:
        restore(mail)


def test_a_user_limit_set_back_to_0_takes_the_hook_out_of_postfix(host, mail):
    try:
        converge_with(mail, {"mail_relay_user_message_rate_limit": 0})
        assert "hostguard_user_limit" not in host.check_output("postconf -h smtpd_recipient_restrictions")
        assert host.run("postfix check").rc == 0
        # Postfix no longer asks the daemon: with it stopped, authenticated mail still goes.
        host.check_output("systemctl stop policyd-rate-limit")
        report = submit(mail, "jp", mail.user)
        assert (report["auth"], first_refusal(report)) == (235, None), report
    finally:
        host.run("systemctl start policyd-rate-limit")
        restore(mail)
    assert host.check_output("postconf -h smtpd_recipient_restrictions").startswith(
        "check_sasl_access static:hostguard_user_limit")


def test_a_dead_policy_daemon_defers_authenticated_mail_and_leaves_inbound_mail_alone(host, mail):
    forget_counts(host)
    try:
        host.check_output("systemctl stop policyd-rate-limit")
        held = submit(mail, "jp", mail.user)
        assert held["auth"] == 235 and 400 <= first_refusal(held) < 500, held
        inbound = mail.speak("abroad", 25, "--mail-from", "friend@abroad.example", "--rcpt", mail.local_address,
                             "--data")
        assert first_refusal(inbound) is None, inbound
    finally:
        host.check_output("systemctl start policyd-rate-limit")


def test_a_killed_policy_daemon_comes_back_and_answers_again(host, mail):
    forget_counts(host)
    before = host.check_output("systemctl show -P MainPID policyd-rate-limit")
    host.check_output("systemctl kill -s KILL policyd-rate-limit")
    host.check_output("for i in $(seq 30); do systemctl is-active -q policyd-rate-limit"
                      f" && [ \"$(systemctl show -P MainPID policyd-rate-limit)\" != {before} ] && exit 0;"
                      " sleep 1; done; exit 1")
    # Back, with the socket rebound: an authenticated message passes the policy check again.
    for _attempt in range(10):
        report = submit(mail, "jp", mail.user)
        if first_refusal(report) is None:
            break
        time.sleep(1)
    assert first_refusal(report) is None, report


# Every run asks the daemon a real policy query (about a login whose limit is 0) and requires its refusal.

POLICYD_REPAIR = "hostguard.hosting.mail_relay : Restart policyd-rate-limit where it did not answer as configured"


def test_a_hung_policy_daemon_is_restarted_by_the_next_run_and_answers_again(host, mail):
    # Stopped, not dead: systemd sees it running, its socket accepts, and it answers nothing.
    host.check_output("systemctl kill -s STOP policyd-rate-limit")
    try:
        run = ansible_playbook_stats(mail.converge)
        assert run["rc"] == 0, run["stats"]
        changed = changed_tasks(run["plays"])
        assert changed == [f"{mail.host_name}: {POLICYD_REPAIR}"], changed
    finally:
        host.run("systemctl kill -s CONT policyd-rate-limit")
    forget_counts(host)
    report = submit(mail, "jp", mail.user)
    assert (report["auth"], first_refusal(report)) == (235, None), report


def test_a_policy_daemon_a_restart_does_not_mend_fails_the_run_naming_what_it_answered(host, mail):
    # Its database cannot be opened: it answers every query with its database-error action, restart or not.
    host.check_output(f"mv {POLICYD_DB} {POLICYD_DB}.saved && mkdir {POLICYD_DB}"
                      " && systemctl restart policyd-rate-limit")
    try:
        run = ansible_playbook_stats(mail.converge)
        assert run["rc"] != 0
        messages = failure_messages(run["plays"])
        assert any(f"policyd-rate-limit on {POLICYD_SOCKET} does not answer as its configuration" in message
                   and '"451 4.3.5 Sending limit unavailable, try again later"' in message
                   for message in messages), messages
    finally:
        host.run(f"rmdir {POLICYD_DB} && mv {POLICYD_DB}.saved {POLICYD_DB}")
        host.run("systemctl restart policyd-rate-limit")
    restore(mail)
    forget_counts(host)
    report = submit(mail, "jp", mail.user)
    assert (report["auth"], first_refusal(report)) == (235, None), report


def test_check_mode_shows_the_edit_it_would_make_and_makes_none(host, mail):
    before = postfix_files(host)
    run = ansible_playbook_stats(mail.converge, "--check", "--diff", "-e", json.dumps({"mail_relay_port25_auth": False}))
    assert run["rc"] == 0, run["stats"]
    diffs = [result["diff"] for play in run["plays"] for task in play["tasks"]
             for result in task["hosts"].values() if result.get("changed") and result.get("diff")]
    main_cf = [diff for entries in diffs for diff in (entries if isinstance(entries, list) else [entries])
               if diff.get("after_header") == "/etc/postfix/main.cf"]
    assert main_cf == [{"before_header": "/etc/postfix/main.cf", "after_header": "/etc/postfix/main.cf",
                        "before": "smtpd_sasl_auth_enable = yes\n", "after": "smtpd_sasl_auth_enable = no\n"}]
    assert postfix_files(host) == before


# Overrides behind the roles' back, read back by the next run.

def test_an_open_relay_override_in_master_cf_fails_the_next_run_naming_it_in_check_mode_too(host, mail):
    # A mynetworks that takes in every address on port 25 alone: the open relay of a master.cf edit. (An
    # -o smtpd_relay_restrictions=permit would not do: with no relay check left in either restriction list,
    # Postfix's smtpd refuses to start rather than relay.)
    host.check_output("postconf -P smtp/inet/mynetworks=0.0.0.0/0 && postfix reload")
    try:
        # The override is live: port 25 relays for anyone.
        report = mail.speak_when_up("abroad", 25, "rcpt", "--mail-from", "spammer@abroad.example",
                                    "--rcpt", OUTSIDE_ADDRESS)
        assert report["rcpt"] == 250, report
        named = "smtp/inet/mynetworks is '0.0.0.0/0' (master.cf: smtp/inet -o mynetworks), the role set '"
        for options in ((), ("--check", "--diff")):
            run = ansible_playbook_stats(mail.converge, *options)
            assert run["rc"] != 0, options
            messages = failure_messages(run["plays"])
            assert any(named in message for message in messages), (options, messages)
            assert task_results(run["plays"], VERIFY_TASK)["mail_relay"]["failed"]
        # The audit says so too: configured (the role's record) but not in force, naming the override.
        enforcement = audit_enforcement(mail.host_name)
        assert enforcement["mail_relay"]["in_force"] is False, enforcement
        assert any(named in problem for problem in enforcement["mail_relay"]["problems"]), enforcement
        assert enforcement["mail_submission"]["in_force"] is True, enforcement
    finally:
        host.check_output("postconf -PX smtp/inet/mynetworks && postfix reload")
    report = mail.speak_when_up("abroad", 25, "rcpt", "--mail-from", "spammer@abroad.example",
                                "--rcpt", OUTSIDE_ADDRESS)
    assert report["rcpt"] == mail.relay_refusal[0], report
    assert audit_enforcement(mail.host_name)["mail_relay"] == {
        "role": "mail_relay", "record_path": "/etc/hostguard/mail_relay.json", "in_force": True, "problems": []}


def test_an_override_on_the_submission_service_the_role_owns_is_repaired_and_reported_changed(host, mail):
    host.check_output("postconf -P submission/inet/smtpd_sasl_auth_enable=no && postfix reload")
    try:
        offered = mail.speak_when_up("jp", 587, "auth_offered_after_tls", "--starttls")
        assert offered["auth_offered_after_tls"] == [], offered
        run = ansible_playbook_stats(mail.converge)
        assert run["rc"] == 0, (run["stats"], failure_messages(run["plays"]))
        assert run["stats"][mail.host_name]["changed"] >= 1, run["stats"]
        assert not task_results(run["plays"], VERIFY_TASK)["mail_submission"].get("failed")
        assert host.check_output("postconf -P submission/inet/smtpd_sasl_auth_enable").endswith("= yes")
        assert "PLAIN" in mail.speak("jp", 587, "--starttls")["auth_offered_after_tls"]
    finally:
        restore(mail)
