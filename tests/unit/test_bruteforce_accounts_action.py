"""The bruteforce role's fail2ban action for one account attacked from many addresses.

roles/bruteforce/files/hostguard-accounts.py runs inside fail2ban on the managed host; fail2ban is not
installed on the controller, so these tests load the file on its own and give the action class a stand-in
jail (the only mock here: its filter's ignore list). molecule/bruteforce proves it inside a real fail2ban,
and runs the filter (files/hostguard-accounts.conf) through fail2ban-regex on the lab host against PAM's and
Dovecot's lines, since fail2ban cannot be imported here.
"""

from __future__ import annotations

import importlib.util
import ipaddress
import json
import subprocess
from pathlib import Path

import pytest

ACTION_FILE = Path(__file__).resolve().parents[2] / "roles" / "bruteforce" / "files" / "hostguard-accounts.py"
SPEC = importlib.util.spec_from_file_location("hostguard_accounts_action", ACTION_FILE)
action = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(action)


def pam_line(address, account="customer1", ruser=None):
    ruser = account if ruser is None else ruser
    return (f"bf1 auth[2525]: pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 "
            f"tty=dovecot ruser={ruser} rhost={address}  user={account}")


MATCHES = [pam_line("198.51.100.10"), pam_line("203.0.113.10"), pam_line("203.0.113.11"),
           pam_line("203.0.113.10"), pam_line("198.18.0.10")]
OFFICE = ipaddress.ip_network("198.51.100.0/24")


def in_office(address):
    return ipaddress.ip_address(address) in OFFICE


def test_addresses_are_read_in_order_of_first_failure_each_once():
    assert action.addresses_in(MATCHES) == ["198.51.100.10", "203.0.113.10", "203.0.113.11", "198.18.0.10"]


def test_ipv4_clients_of_an_ipv6_listener_are_read_as_ipv4():
    # vsftpd listens on IPv6 and logs rhost=::ffff:198.51.100.10 for an IPv4 client.
    lines = [pam_line("::ffff:198.51.100.10"), pam_line("198.51.100.10"), pam_line("2001:db8:203::a")]
    assert action.addresses_in(lines) == ["198.51.100.10", "2001:db8:203::a"]


def test_an_address_a_client_wrote_into_the_login_name_is_not_read():
    forged = pam_line("203.0.113.99", ruser="x rhost=198.51.100.10  user=customer1")
    assert action.addresses_in([forged]) == ["203.0.113.99"]


def test_report_mode_bans_nobody():
    record = action.plan("customer1", MATCHES, "report", in_office)
    assert record == {"account": "customer1", "failures": 5,
                      "addresses": ["198.51.100.10", "203.0.113.10", "203.0.113.11", "198.18.0.10"],
                      "ignored": ["198.51.100.10"], "action": "report", "banned": []}


def test_ban_mode_bans_every_address_but_the_ignored():
    record = action.plan("customer1", MATCHES, "ban", in_office)
    assert record["banned"] == ["203.0.113.10", "203.0.113.11", "198.18.0.10"]
    assert "198.51.100.10" not in record["banned"]


def test_an_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="'block'"):
        action.plan("customer1", MATCHES, "block", in_office)


def test_the_summary_names_the_account_the_addresses_and_the_bans():
    text = action.summary(action.plan("customer1", MATCHES, "ban", in_office))
    assert text.startswith("account customer1 attacked from 4 addresses (5 failed logins): 198.51.100.10 ")
    assert "never banned (ignoreip): 198.51.100.10" in text
    assert text.endswith("banned: 203.0.113.10 203.0.113.11 198.18.0.10")


class StandInFilter:
    def inIgnoreIPList(self, address, log_ignore=True):  # noqa: N802 - fail2ban's name
        return in_office(address)


class StandInJail:
    name = "hostguard-accounts"
    filter = StandInFilter()


class RecordingLog:
    def __init__(self):
        self.lines = []

    def warning(self, text, *args):
        self.lines.append(text % args)

    error = warning


def make_action(tmp_path, monkeypatch, mode):
    calls = []

    def fake_run(argv, **kwargs):
        calls.append(argv)
        return subprocess.CompletedProcess(argv, 0, "3", "")

    monkeypatch.setattr(action.subprocess, "run", fake_run)
    monkeypatch.setattr(action, "to_journal", lambda record, text: calls.append(["journal", text]))
    instance = action.HostguardAccountsAction.__new__(action.HostguardAccountsAction)
    instance._jail, instance._name, instance._logSys = StandInJail(), "hostguard-accounts", RecordingLog()
    instance.reload(mode=mode, report=str(tmp_path / "bruteforce" / "accounts.jsonl"))
    return instance, calls


def ticket(restored=0):
    return {"fid": "customer1", "matches": "\n".join(MATCHES), "restored": restored}


def test_ban_mode_asks_fail2ban_to_ban_in_the_ban_jail_and_appends_the_report(tmp_path, monkeypatch):
    instance, calls = make_action(tmp_path, monkeypatch, "ban")
    instance.ban(ticket())
    instance.ban(ticket())
    assert calls[0] == ["fail2ban-client", "set", "hostguard-account-ban", "banip",
                        "203.0.113.10", "203.0.113.11", "198.18.0.10"]
    report = [json.loads(line) for line in (tmp_path / "bruteforce" / "accounts.jsonl").read_text().splitlines()]
    assert len(report) == 2
    assert report[0]["banned"] == ["203.0.113.10", "203.0.113.11", "198.18.0.10"]
    assert "account customer1 attacked" in instance._logSys.lines[0]


def test_report_mode_calls_no_ban(tmp_path, monkeypatch):
    instance, calls = make_action(tmp_path, monkeypatch, "report")
    instance.ban(ticket())
    assert [call for call in calls if call[0] == "fail2ban-client"] == []
    assert json.loads((tmp_path / "bruteforce" / "accounts.jsonl").read_text())["action"] == "report"


def test_a_ban_restored_at_restart_is_not_reported_again(tmp_path, monkeypatch):
    instance, calls = make_action(tmp_path, monkeypatch, "ban")
    instance.ban(ticket(restored=1))
    assert calls == []
    assert not (tmp_path / "bruteforce" / "accounts.jsonl").exists()


def test_the_action_survives_a_fail2ban_reload():
    # fail2ban drops, on reload, a python action lacking either of these.
    assert callable(action.HostguardAccountsAction.clearAllParams)
    assert callable(action.HostguardAccountsAction.reload)


def dovecot_line(address, mailbox="info@example.com", session=",<4ZbfgRxhsI7LAHEK>"):
    """The line Dovecot's auth process logs (auth_verbose) for a wrong password of a passwd-file mailbox."""
    where = f",{address}" if address else ""
    return f"bf1 dovecot[1909]: auth: passwd-file({mailbox}{where}{session}): Password mismatch"


def test_the_addresses_of_a_dovecot_passwd_file_mailbox_are_read():
    # IMAP with Dovecot's session, SMTP AUTH through Dovecot's SASL socket with Postfix's address and none.
    lines = [dovecot_line("198.51.100.10"), dovecot_line("203.0.113.10"), dovecot_line("203.0.113.11", session=""),
             dovecot_line("2001:db8:203::a"), dovecot_line("203.0.113.10")]
    assert action.addresses_in(lines) == ["198.51.100.10", "203.0.113.10", "203.0.113.11", "2001:db8:203::a"]


def test_a_dovecot_line_without_an_address_names_none():
    lines = [dovecot_line(""), dovecot_line("", session=""), dovecot_line("mx.example.net")]
    assert action.addresses_in(lines) == []
    record = action.plan("info@example.com", lines, "ban", in_office)
    assert record["banned"] == []


def test_pam_and_dovecot_lines_are_read_together():
    lines = [pam_line("198.51.100.10"), dovecot_line("203.0.113.10"), pam_line("198.18.0.10")]
    record = action.plan("info@example.com", lines, "ban", in_office)
    assert record["addresses"] == ["198.51.100.10", "203.0.113.10", "198.18.0.10"]
    assert record["banned"] == ["203.0.113.10", "198.18.0.10"]


def dovecot24_line(address, mailbox="info@example.com", mechanism="plain", session="<UUHJQ+dhzMfGEgAK>"):
    """The line Dovecot 2.4's auth process logs (auth_verbose) for a wrong password of a passwd-file mailbox."""
    where = f",{address}" if address else ""
    return f"bf1 dovecot[1727]: auth({mailbox}{where},sasl:{mechanism}){session}: passwd-file: Password mismatch"


def test_the_addresses_of_a_dovecot_24_passwd_file_mailbox_are_read():
    # IMAP with Dovecot's session, SMTP AUTH through Dovecot's SASL socket without one.
    lines = [dovecot24_line("198.51.100.10"), dovecot24_line("203.0.113.10", mechanism="login"),
             dovecot24_line("2001:db8:203::b", session=""), dovecot24_line("203.0.113.10")]
    assert action.addresses_in(lines) == ["198.51.100.10", "203.0.113.10", "2001:db8:203::b"]


def test_a_dovecot_24_line_without_an_address_names_none():
    lines = [dovecot24_line(""), dovecot24_line("mx.example.net"),
             "bf1 dovecot[1727]: auth(info@example.com): passwd-file: Password mismatch"]
    assert action.addresses_in(lines) == []
