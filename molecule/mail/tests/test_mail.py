"""mail_submission and mail_relay on Postfix, proven by speaking SMTP from the lab's client networks.

abroad (203.0.113.10) stands for the outside world; office (198.51.100.0/24) is
the trusted network of vars/lab.yml.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml
from labtools import Lab, ansible_playbook_stats, smtp

LAB = Lab.from_env()
HOST = LAB.hosts["mail1"]
SCENARIO = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
CONVERGE = str(SCENARIO / "converge.yml")
LAB_VARS = yaml.safe_load((SCENARIO / "vars" / "lab.yml").read_text())
USER, PASSWORD = LAB_VARS["mail_lab_user"], LAB_VARS["mail_lab_password"]
LOCAL_ADDRESS = f"{USER}@mail1.lab.example"
OUTSIDE_ADDRESS = "someone@outside.example"
AUTH_587 = ("--starttls", "--user", USER, "--password", PASSWORD)


def speak(client, port, *options):
    return smtp(LAB.clients[client], HOST["ipv4"], port, *options)


def failure_messages(plays):
    """The messages of the failed tasks, and of the failed items of failed loops."""
    messages = []
    for play in plays:
        for task in play["tasks"]:
            for result in task["hosts"].values():
                if result.get("failed"):
                    messages.append(result.get("msg", ""))
                    messages += [item.get("msg", "") for item in result.get("results", []) if item.get("failed")]
    return messages


def postfix_files(host):
    return {name: host.file(f"/etc/postfix/{name}").content_string for name in ("main.cf", "master.cf")}


# Port 25: the closed relay.

def test_relay_from_abroad_to_an_outside_domain_gets_a_5xx():
    report = speak("abroad", 25, "--mail-from", "spammer@abroad.example", "--rcpt", OUTSIDE_ADDRESS)
    assert report["mail"] == 250
    assert report["rcpt"] == 554, report
    assert "Relay access denied" in report["rcpt_reply"]


def test_mail_for_a_local_user_is_accepted_from_anyone():
    report = speak("abroad", 25, "--mail-from", "friend@abroad.example", "--rcpt", LOCAL_ADDRESS, "--data")
    assert (report["rcpt"], report["data"]) == (250, 250), report


def test_the_trusted_network_may_relay_without_auth():
    report = speak("office", 25, "--mail-from", "scanner@office.example", "--rcpt", OUTSIDE_ADDRESS)
    assert report["rcpt"] == 250, report


def test_port_25_offers_auth_only_after_starttls():
    report = speak("abroad", 25, "--starttls")
    assert report["auth_offered"] == []
    assert report["starttls"] == 220
    assert "PLAIN" in report["auth_offered_after_tls"]


# Port 587: TLS first, AUTH required.

def test_587_offers_no_auth_before_starttls_and_refuses_mail_before_it():
    report = speak("jp", 587, "--mail-from", LOCAL_ADDRESS, "--rcpt", OUTSIDE_ADDRESS)
    assert report["auth_offered"] == []
    assert report["mail"] == 530, report


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_587_with_a_good_password_after_starttls_queues_mail_for_an_outside_domain(host, mechanism):
    report = speak("jp", 587, *AUTH_587, "--mechanism", mechanism,
                   "--mail-from", LOCAL_ADDRESS, "--rcpt", OUTSIDE_ADDRESS, "--data")
    assert report["auth_offered"] == []
    assert set(report["auth_offered_after_tls"]) >= {"PLAIN", "LOGIN"}
    assert (report["auth"], report["rcpt"], report["data"]) == (235, 250, 250), report
    queue_id = report["data_reply"].rsplit(" ", 1)[-1]
    # Postfix logged the message as accepted through the submission service from the authenticated user.
    log = host.check_output("journalctl --no-pager -q -t postfix/submission/smtpd")
    assert f"{queue_id}: client=" in log
    assert any(queue_id in line and f"sasl_username={USER}" in line for line in log.splitlines())


def test_587_refuses_a_wrong_password():
    report = speak("jp", 587, "--starttls", "--user", USER, "--password", PASSWORD + "-wrong",
                   "--mail-from", LOCAL_ADDRESS, "--rcpt", OUTSIDE_ADDRESS)
    assert report["auth"] == 535, report
    assert "mail" not in report


def test_587_refuses_sending_without_auth_even_after_starttls():
    for recipient in (OUTSIDE_ADDRESS, LOCAL_ADDRESS):
        report = speak("jp", 587, "--starttls", "--mail-from", "nobody@jp.example", "--rcpt", recipient)
        assert report["starttls"] == 220
        assert report.get("rcpt", report["mail"]) >= 500, report


# The configuration on the host.

def test_dovecot_gives_postfix_its_auth_socket_inside_the_chroot(host):
    socket = host.file("/var/spool/postfix/private/auth")
    assert socket.is_socket
    assert (socket.user, socket.group, socket.mode) == ("postfix", "postfix", 0o660)
    assert host.run("doveconf -n").rc == 0


def test_postfix_passes_its_own_check_and_runs(host):
    assert host.run("postfix check").rc == 0
    assert host.service("postfix").is_running
    assert host.service("dovecot").is_running


# Variations, each followed by a normal run that puts the converged state back.

def test_without_port25_auth_ehlo_on_25_offers_no_auth_while_587_still_does():
    try:
        run = ansible_playbook_stats(CONVERGE, "-e", json.dumps({"mail_relay_port25_auth": False}))
        assert run["rc"] == 0, run["stats"]
        on_25 = speak("abroad", 25, "--starttls")
        assert on_25["auth_offered"] == [] and on_25["auth_offered_after_tls"] == [], on_25
        on_587 = speak("jp", 587, *AUTH_587)
        assert on_587["auth"] == 235, on_587
    finally:
        restored = ansible_playbook_stats(CONVERGE)
        assert restored["rc"] == 0, restored["stats"]


def test_check_mode_shows_the_edit_it_would_make_and_makes_none(host):
    before = postfix_files(host)
    run = ansible_playbook_stats(CONVERGE, "--check", "--diff", "-e", json.dumps({"mail_relay_port25_auth": False}))
    assert run["rc"] == 0, run["stats"]
    diffs = [result["diff"] for play in run["plays"] for task in play["tasks"]
             for result in task["hosts"].values() if result.get("changed") and result.get("diff")]
    main_cf = [diff for entries in diffs for diff in (entries if isinstance(entries, list) else [entries])
               if diff.get("after_header") == "/etc/postfix/main.cf"]
    assert main_cf == [{"before_header": "/etc/postfix/main.cf", "after_header": "/etc/postfix/main.cf",
                        "before": "smtpd_sasl_auth_enable = yes\n", "after": "smtpd_sasl_auth_enable = no\n"}]
    assert postfix_files(host) == before


@pytest.mark.parametrize("extra_vars,named", [
    ({"mail_relay_trusted_networks": ["198.51.100.0/24", "10.0.0.1/8"]}, "10.0.0.1/8"),
    ({"mail_relay_trusted_networks": ["0.0.0.0/0"]}, "0.0.0.0/0"),
    ({"mail_submission_tls_cert": "/etc/ssl/certs/missing.pem"}, "/etc/ssl/certs/missing.pem"),
    ({"mail_submission_tls_key": "/etc/ssl/private"}, "/etc/ssl/private"),
    ({"mail_submission_mta": "exim"}, "exim"),
])
def test_bad_input_fails_before_any_change_leaving_postfix_running_as_it_was(host, extra_vars, named):
    before = postfix_files(host)
    run = ansible_playbook_stats(CONVERGE, "-e", json.dumps(extra_vars))
    assert run["rc"] != 0
    assert run["stats"]["mail1"]["changed"] == 0, run["stats"]
    assert any(named in message for message in failure_messages(run["plays"])), failure_messages(run["plays"])
    assert postfix_files(host) == before
    assert host.service("postfix").is_running
    # Still the converged behaviour: the relay is closed.
    report = speak("abroad", 25, "--mail-from", "spammer@abroad.example", "--rcpt", OUTSIDE_ADDRESS)
    assert report["rcpt"] == 554, report
