"""What mail_submission and mail_relay must do on any MTA, proven by speaking SMTP from the lab's clients.

molecule/mail (Postfix) and molecule/mail_exim (Exim) import these tests, so
both MTAs are held to the same assertions; each scenario's test module gives a
`mail` fixture (a MailScenario) with what differs between the MTAs: the wording
of a relay refusal, where an accepted message is logged, which files hold the
configuration. abroad and abroad2 (203.0.113.0/24) stand for the outside world;
office (198.51.100.0/24) is the trusted network of the scenario's vars/lab.yml.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
import yaml
from labtools import Lab, ansible_playbook_stats, changed_tasks, smtp

OUTSIDE_ADDRESS = "someone@outside.example"


@dataclass
class MailScenario:
    mta: str  # postfix or exim, as the roles' *_mta variables name them
    service: str
    relay_refusal: tuple[int, str]  # the reply to a relay attempt: code, and a phrase of its text
    config_files: Callable  # host -> {path: content} of every file the roles may write
    submission_logged: Callable  # (host, data_reply, user) -> whether the MTA logged it as from that user
    kill: str  # a shell command that ends the MTA's daemon behind systemd's back
    # Whether systemd sees that kill (a native unit whose main process is the daemon: Debian 13's exim4.service);
    # else the unit stays "active" (Debian's postfix.service, Debian 12's exim4 init script) and only the roles'
    # read-back sees the daemon gone.
    kill_seen_by_systemd: bool = False
    host_name: str = "mail1"
    lab: Lab = field(default_factory=Lab.from_env)

    def __post_init__(self):
        scenario = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
        self.converge = str(scenario / "converge.yml")
        self.vars = yaml.safe_load((scenario / "vars" / "lab.yml").read_text())
        self.user, self.password = self.vars["mail_lab_user"], self.vars["mail_lab_password"]
        self.local_address = f"{self.user}@{self.host_name}.lab.example"
        self.other_mta = "exim" if self.mta == "postfix" else "postfix"

    def speak(self, client, port, *options):
        return smtp(self.lab.clients[client], self.lab.hosts[self.host_name]["ipv4"], port, *options)

    def speak_when_up(self, client, port, step, *options):
        """speak(), once the MTA a reload or restart brought back answers as far as STEP (a reply key)."""
        for _attempt in range(20):
            report = self.speak(client, port, *options)
            if step in report:
                return report
            time.sleep(1)
        raise AssertionError(f"no {step} reply on port {port} after the MTA was reloaded: {report}")

    def auth(self):
        return ("--starttls", "--user", self.user, "--password", self.password)


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


def first_refusal(report):
    """The first reply code of MAIL, RCPT or DATA that was not 250 (where the MTA stopped the message)."""
    for step in ("mail", "rcpt", "data"):
        if report.get(step, 250) != 250:
            return report[step]
    return None


def task_results(plays, name):
    """The results of the role tasks called NAME, as {role: result} for the one host (names are "ROLE : NAME")."""
    results = {}
    for play in plays:
        for task in play["tasks"]:
            role, _sep, task_name = task["task"]["name"].rpartition(" : ")
            if task_name == name:
                results.update({role.rsplit(".", 1)[-1]: result for result in task["hosts"].values()})
    return results


def converge_with(mail, extra_vars):
    run = ansible_playbook_stats(mail.converge, "-e", json.dumps(extra_vars))
    assert run["rc"] == 0, (run["stats"], failure_messages(run["plays"]))


def restore(mail):
    restored = ansible_playbook_stats(mail.converge)
    assert restored["rc"] == 0, restored["stats"]


# Port 25: the closed relay.

def test_relay_from_abroad_to_an_outside_domain_gets_a_5xx(mail):
    report = mail.speak("abroad", 25, "--mail-from", "spammer@abroad.example", "--rcpt", OUTSIDE_ADDRESS)
    assert report["mail"] == 250
    assert report["rcpt"] == mail.relay_refusal[0], report
    assert mail.relay_refusal[1] in report["rcpt_reply"]


def test_mail_for_a_local_user_is_accepted_from_anyone(mail):
    report = mail.speak("abroad", 25, "--mail-from", "friend@abroad.example", "--rcpt", mail.local_address, "--data")
    assert (report["rcpt"], report["data"]) == (250, 250), report


def test_the_trusted_network_may_relay_without_auth(mail):
    report = mail.speak("office", 25, "--mail-from", "scanner@office.example", "--rcpt", OUTSIDE_ADDRESS)
    assert report["rcpt"] == 250, report


def test_port_25_offers_auth_only_after_starttls(mail):
    report = mail.speak("abroad", 25, "--starttls")
    assert report["auth_offered"] == []
    assert report["starttls"] == 220
    assert "PLAIN" in report["auth_offered_after_tls"]


# Port 587: TLS first, AUTH required.

def test_587_offers_no_auth_before_starttls_and_refuses_mail_before_it(mail):
    report = mail.speak("jp", 587, "--mail-from", mail.local_address, "--rcpt", OUTSIDE_ADDRESS)
    assert report["auth_offered"] == []
    assert report["mail"] == 530, report


def test_587_refuses_auth_before_starttls_even_when_the_client_tries(mail):
    report = mail.speak("jp", 587, "--user", mail.user, "--password", mail.password,
                        "--mail-from", mail.local_address, "--rcpt", OUTSIDE_ADDRESS)
    # Exim: 503, AUTH not advertised; Postfix: 530, STARTTLS first.
    assert 500 <= report["auth"] < 600, report
    assert "mail" not in report


@pytest.mark.parametrize("mechanism", ["PLAIN", "LOGIN"])
def test_587_with_a_good_password_after_starttls_queues_mail_for_an_outside_domain(host, mail, mechanism):
    report = mail.speak("jp", 587, *mail.auth(), "--mechanism", mechanism,
                        "--mail-from", mail.local_address, "--rcpt", OUTSIDE_ADDRESS, "--data")
    assert report["auth_offered"] == []
    assert set(report["auth_offered_after_tls"]) >= {"PLAIN", "LOGIN"}
    assert (report["auth"], report["rcpt"], report["data"]) == (235, 250, 250), report
    # The MTA logged the message as received from the authenticated user.
    assert mail.submission_logged(host, report["data_reply"], mail.user), report["data_reply"]


def test_587_refuses_a_wrong_password(mail):
    report = mail.speak("jp", 587, "--starttls", "--user", mail.user, "--password", mail.password + "-wrong",
                        "--mail-from", mail.local_address, "--rcpt", OUTSIDE_ADDRESS)
    assert report["auth"] == 535, report
    assert "mail" not in report


def test_587_refuses_sending_without_auth_even_after_starttls(mail):
    for client, recipient in (("jp", OUTSIDE_ADDRESS), ("jp", mail.local_address), ("office", OUTSIDE_ADDRESS)):
        report = mail.speak(client, 587, "--starttls", "--mail-from", "nobody@jp.example", "--rcpt", recipient)
        assert report["starttls"] == 220
        assert first_refusal(report) >= 500, report


def test_the_mta_runs(host, mail):
    assert host.service(mail.service).is_running
    assert host.service("dovecot").is_running
    assert host.run("doveconf -n").rc == 0


# Variations, each followed by a normal run that puts the converged state back.

def test_without_port25_auth_ehlo_on_25_offers_no_auth_while_587_still_does(mail):
    try:
        converge_with(mail, {"mail_relay_port25_auth": False})
        on_25 = mail.speak("abroad", 25, "--starttls")
        assert on_25["auth_offered"] == [] and on_25["auth_offered_after_tls"] == [], on_25
        tried = mail.speak("abroad", 25, *mail.auth())
        assert tried["auth"] >= 500, tried
        on_587 = mail.speak("jp", 587, *mail.auth())
        assert on_587["auth"] == 235, on_587
    finally:
        restore(mail)


def test_the_client_message_rate_limit_defers_the_message_over_it(mail):
    # abroad2 sends in no other test, so no earlier message counts against it.
    try:
        converge_with(mail, {"mail_relay_message_rate_limit": 2})
        replies = [first_refusal(mail.speak("abroad2", 25, "--mail-from", f"n{number}@abroad.example",
                                            "--rcpt", mail.local_address, "--data"))
                   for number in range(3)]
        assert replies[:2] == [None, None], replies
        assert 400 <= replies[2] < 500, replies
        # The trusted network is exempt.
        office = [first_refusal(mail.speak("office", 25, "--mail-from", "scanner@office.example",
                                           "--rcpt", mail.local_address, "--data")) for _message in range(3)]
        assert office == [None, None, None], office
    finally:
        restore(mail)


BAD_INPUTS = [
    ({"mail_relay_trusted_networks": ["198.51.100.0/24", "10.0.0.1/8"]}, "10.0.0.1/8"),
    ({"mail_relay_trusted_networks": ["0.0.0.0/0"]}, "0.0.0.0/0"),
    ({"mail_relay_message_rate_limit": -1}, "mail_relay_message_rate_limit"),
    ({"mail_submission_tls_cert": "/etc/ssl/certs/missing.pem"}, "/etc/ssl/certs/missing.pem"),
    ({"mail_submission_tls_key": "/etc/ssl/private"}, "/etc/ssl/private"),
    ("the other MTA", None),
]


@pytest.mark.parametrize("extra_vars,named", BAD_INPUTS)
def test_bad_input_fails_before_any_change_leaving_the_mta_running_as_it_was(host, mail, extra_vars, named):
    if extra_vars == "the other MTA":
        extra_vars, named = {"mail_submission_mta": mail.other_mta}, mail.other_mta
    assert_refused_unchanged(host, mail, extra_vars, named)


def assert_refused_unchanged(host, mail, extra_vars, named):
    """A converge run with EXTRA_VARS fails naming NAMED, changes nothing, and the MTA runs as before."""
    before = mail.config_files(host)
    run = ansible_playbook_stats(mail.converge, "-e", json.dumps(extra_vars))
    assert run["rc"] != 0
    assert run["stats"][mail.host_name]["changed"] == 0, run["stats"]
    assert any(named in message for message in failure_messages(run["plays"])), failure_messages(run["plays"])
    assert mail.config_files(host) == before
    assert host.service(mail.service).is_running
    # Still the converged behaviour: the relay is closed.
    report = mail.speak("abroad", 25, "--mail-from", "spammer@abroad.example", "--rcpt", OUTSIDE_ADDRESS)
    assert report["rcpt"] == mail.relay_refusal[0], report


@pytest.mark.parametrize("panel,marker", [("cPanel", "/usr/local/cpanel/cpanel"), ("Plesk", "/usr/local/psa/version"),
                                          ("DirectAdmin", "/usr/local/directadmin/directadmin")])
def test_an_mta_a_control_panel_manages_is_left_to_the_panel(host, mail, panel, marker):
    """Detected by the panel's own file: each panel rewrites the MTA's configuration, so the roles refuse."""
    top = "/".join(marker.split("/")[:4])
    host.run(f"mkdir -p {marker.rsplit('/', 1)[0]} && touch {marker}")
    try:
        assert_refused_unchanged(host, mail, {}, f"{panel} manages the MTA on this host")
    finally:
        host.run(f"rm -rf {top}")


# Every run proves the settings are in force (tasks/verify.yml of both roles).

VERIFY_TASK = "Fail on a setting that is not in force, naming it, its live value and where that comes from"
START_TASK = "Start a daemon that does not run"
KEEP_RUNNING_TASKS = {"postfix": "Keep Postfix running", "exim": "Keep Exim running"}


def test_a_second_run_on_a_clean_host_changes_nothing_and_reads_every_setting_back(mail):
    run = ansible_playbook_stats(mail.converge)
    assert run["rc"] == 0, (run["stats"], failure_messages(run["plays"]))
    assert run["stats"][mail.host_name]["changed"] == 0, changed_tasks(run["plays"])
    verified = task_results(run["plays"], VERIFY_TASK)
    assert set(verified) == {"mail_submission", "mail_relay"}, verified
    assert all(not result.get("skipped") and not result.get("failed") for result in verified.values()), verified
    reads = task_results(run["plays"], "Read back what the MTA and Dovecot run with")
    settings = reads["mail_submission"]["daemons"][mail.mta]["settings"]
    # What was read is the live configuration, not an echo of the expectation.
    assert len(settings) >= 5 and all("source" in value for value in settings.values()), settings


@pytest.mark.parametrize("how", ["killed behind systemd's back", "stopped with systemctl"])
def test_a_stopped_mta_is_started_by_the_next_run_and_reported_changed(host, mail, how):
    killed = how.startswith("killed")
    host.check_output(mail.kill if killed else f"systemctl stop {mail.service}")
    # The daemon takes a moment to close its listening socket after the signal.
    for _attempt in range(20):
        closed = mail.lab.clients["abroad"].tcp(mail.lab.hosts[mail.host_name]["ipv4"], 25)
        if closed["state"] != "open":
            break
        time.sleep(1)
    assert closed["state"] != "open", closed
    unit_active = host.run(f"systemctl is-active {mail.service}").stdout.strip() == "active"
    assert unit_active == (killed and not mail.kill_seen_by_systemd), (how, unit_active)
    run = ansible_playbook_stats(mail.converge)
    assert run["rc"] == 0, (run["stats"], failure_messages(run["plays"]))
    assert run["stats"][mail.host_name]["changed"] >= 1, run["stats"]
    if unit_active:
        # systemd still calls the unit active: only the read-back sees the daemon gone, and restarts it.
        started = task_results(run["plays"], START_TASK)
        assert started["mail_submission"].get("changed"), started
    else:
        # systemd knows the unit is down: the roles' own start brings it back, before the read-back.
        kept = task_results(run["plays"], KEEP_RUNNING_TASKS[mail.mta])
        assert kept["mail_submission"].get("changed"), kept
    # Back, and with the role's settings: the relay is closed from abroad.
    report = mail.speak_when_up("abroad", 25, "rcpt", "--mail-from", "spammer@abroad.example", "--rcpt", OUTSIDE_ADDRESS)
    assert report["rcpt"] == mail.relay_refusal[0], report
