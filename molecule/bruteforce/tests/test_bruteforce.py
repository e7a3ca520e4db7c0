"""bruteforce: fail2ban proven from the network.

abroad (203.0.113.10) fails SSH logins until it is banned; office (198.51.100.0/24,
bruteforce_ignore_sources in converge.yml) fails as often and is never banned,
and neither is the controller.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
from labtools import Lab, ansible_playbook_stats

LAB = Lab.from_env()
HOST = LAB.hosts["bf1"]
ABROAD, ABROAD2, OFFICE = LAB.clients["abroad"], LAB.clients["abroad2"], LAB.clients["office"]
CONVERGE = str(Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"]) / "converge.yml")
JAIL_FILE = "/etc/fail2ban/jail.d/hostguard.local"
# converge.yml's bruteforce_maxretry is 3: one more failure than that leaves no doubt.
FAILED_LOGINS = 4
BAN_WAIT_SECONDS = 30


def fail_ssh_logins(client):
    """Log in as a user that does not exist: sshd logs 'Invalid user ... from ADDRESS', which the sshd filter counts.

    BatchMode offers no password, so every attempt fails without a prompt. A ban that lands while an
    attempt is under way makes it hang, so timeout ends it.
    """
    for attempt in range(FAILED_LOGINS):
        client.run("timeout", "10", "ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                   "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5",
                   f"nosuchuser@{HOST['ipv4']}", "true", timeout=30)


# Run by the client's python: log in to IMAP (after STARTTLS, as Dovecot requires) as a user that does
# not exist. Dovecot logs each failure twice (PAM and imap-login), both counted by the dovecot filter.
# Once the ban lands, connections are refused or time out: that ends the attempts.
FAIL_IMAP_LOGINS = f"""
import imaplib, ssl, sys
for attempt in range({FAILED_LOGINS}):
    try:
        imap = imaplib.IMAP4(sys.argv[1], 143, timeout=10)
        imap.starttls(ssl_context=ssl._create_unverified_context())  # the lab's certificate is self-signed
        imap.login("nosuchuser", "wrong-password")
    except (imaplib.IMAP4.error, OSError):
        pass
"""


def wait_for_ban(host, jail, address):
    deadline = time.monotonic() + BAN_WAIT_SECONDS
    while address not in banned_addresses(host, jail) and time.monotonic() < deadline:
        time.sleep(1)


def banned_addresses(host, jail):
    status = host.check_output(f"fail2ban-client status {jail}")
    banned_line = next(line for line in status.splitlines() if "Banned IP list:" in line)
    return banned_line.split(":", 1)[1].split()


def nft_tables(host):
    return set(host.check_output("nft list tables").splitlines())


@pytest.fixture(scope="module")
def abroad_banned(host):
    """office and abroad both fail to log in; wait (bounded) for abroad's ban. Unbans everything afterwards."""
    tables_before = nft_tables(host)
    fail_ssh_logins(OFFICE)
    fail_ssh_logins(ABROAD)
    wait_for_ban(host, "sshd", ABROAD.ipv4)
    yield tables_before
    host.run("fail2ban-client unban --all")


@pytest.fixture(scope="module")
def abroad2_banned_from_mail(host):
    """abroad2 fails IMAP logins; wait (bounded) for its ban by the dovecot jail. Unbans it afterwards."""
    ABROAD2.run(sys.executable, "-c", FAIL_IMAP_LOGINS, HOST["ipv4"], timeout=120)
    wait_for_ban(host, "dovecot", ABROAD2.ipv4)
    yield
    host.run(f"fail2ban-client unban {ABROAD2.ipv4}")


def test_fail2ban_runs_and_starts_at_boot(host):
    service = host.service("fail2ban")
    assert service.is_running
    assert service.is_enabled


def test_a_jail_runs_for_every_installed_login_service(host):
    status = host.check_output("fail2ban-client status")
    jails = status.split("Jail list:", 1)[1].replace(",", " ").split()
    assert set(jails) == {"sshd", "dovecot", "postfix-sasl", "vsftpd", "recidive"}


def test_the_sshd_jail_bans_on_the_ports_sshd_listens_on(host):
    # converge.yml adds port 2222 beside 22.
    assert "[sshd]\nenabled = true\nport = 22,2222\n" in host.file(JAIL_FILE).content_string


def test_the_office_and_the_controller_are_ignored(host):
    # One entry a line, after a tree prefix: "|- 198.51.100.0/24".
    listing = host.check_output("fail2ban-client get sshd ignoreip").splitlines()[1:]
    ignored = {line.split()[-1] for line in listing}
    assert {"198.51.100.0/24", LAB.state["controller_ipv4"]} <= ignored


def test_repeated_failed_logins_from_abroad_get_it_banned(host, abroad_banned):
    assert ABROAD.ipv4 in banned_addresses(host, "sshd")
    for port in (22, 2222):
        assert ABROAD.tcp(HOST["ipv4"], port)["state"] in ("refused", "timeout", "unreachable"), port
    # abroad2, in the same network but innocent, still gets through.
    assert ABROAD2.tcp(HOST["ipv4"], 22)["state"] == "open"


def test_the_office_fails_as_often_and_is_not_banned(host, abroad_banned):
    assert OFFICE.ipv4 not in banned_addresses(host, "sshd")
    for port in (22, 2222):
        assert OFFICE.tcp(HOST["ipv4"], port)["state"] == "open", port


def test_the_controller_is_not_banned(host, abroad_banned):
    assert LAB.state["controller_ipv4"] not in banned_addresses(host, "sshd")
    assert host.run("true").rc == 0


def test_bans_live_in_fail2bans_own_table_beside_the_others(host, abroad_banned):
    tables_after = nft_tables(host)
    assert "table inet f2b-table" in tables_after
    # Banning added fail2ban's table and removed none of the tables already there (the firewall role's among them).
    assert abroad_banned <= tables_after
    f2b_table = host.check_output("nft list table inet f2b-table")
    assert ABROAD.ipv4 in f2b_table


def test_failed_imap_logins_get_an_address_banned_from_the_mail_ports(host, abroad2_banned_from_mail):
    assert ABROAD2.ipv4 in banned_addresses(host, "dovecot")
    assert ABROAD2.tcp(HOST["ipv4"], 143)["state"] in ("refused", "timeout", "unreachable")
    # The dovecot jail bans the mail ports only: SSH is still open to it.
    assert ABROAD2.tcp(HOST["ipv4"], 22)["state"] == "open"


def test_a_network_with_host_bits_fails_before_any_change(host):
    jail_before = host.file(JAIL_FILE).content_string
    run = ansible_playbook_stats(CONVERGE, "-e", json.dumps({"bruteforce_ignore_sources": ["198.51.100.1/24"]}))
    assert run["rc"] != 0
    assert all(stats["changed"] == 0 for stats in run["stats"].values()), run["stats"]
    assert "did you mean 198.51.100.0/24" in json.dumps(run["plays"])
    assert host.file(JAIL_FILE).content_string == jail_before
    assert host.service("fail2ban").is_running
