"""mail_submission and mail_relay on Postfix, proven by speaking SMTP from the lab's client networks.

The assertions every MTA must pass live in tests/molecule/mail_checks.py (imported
below, so pytest runs them here); this file adds what only Postfix has.
"""

from __future__ import annotations

import json

import pytest
from labtools import ansible_playbook_stats
from mail_checks import *  # noqa: F401,F403 - the shared tests, collected by pytest in this module
from mail_checks import MailScenario, assert_refused_unchanged


def postfix_files(host):
    return {name: host.file(f"/etc/postfix/{name}").content_string for name in ("main.cf", "master.cf")}


def submission_logged(host, data_reply, user):
    """Postfix logged the message as accepted through the submission service from the authenticated user."""
    queue_id = data_reply.rsplit(" ", 1)[-1]
    log = host.check_output("journalctl --no-pager -q -t postfix/submission/smtpd")
    return f"{queue_id}: client=" in log and any(
        queue_id in line and f"sasl_username={user}" in line for line in log.splitlines())


@pytest.fixture(scope="module")
def mail():
    return MailScenario(mta="postfix", service="postfix", relay_refusal=(554, "Relay access denied"),
                        config_files=postfix_files, submission_logged=submission_logged)


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


def test_postfix_refuses_a_per_user_limit_it_cannot_enforce(host, mail):
    assert_refused_unchanged(host, mail, {"mail_relay_user_message_rate_limit": 10}, "mail_relay_user_message_rate_limit")


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
