"""bruteforce: fail2ban proven from the network, beside the firewall role's nftables table.

abroad (203.0.113.10) fails SSH logins until it is banned; office (198.51.100.0/24,
bruteforce_ignore_sources in converge.yml) fails as often and is never banned,
and neither is the controller. abroad is banned for failed SMTP AUTH on 587 and
abroad2 for failed FTP logins. One mailbox attacked from office, abroad, abroad2
and jp (once each, below the per-address maxretry) gets abroad, abroad2 and jp
banned (bruteforce_account_action: ban) and is reported; office is not banned. The same for a Dovecot
virtual mailbox (passwd-file passdb), attacked over IMAP, POP3 and SMTP AUTH on 587 (over IPv6), which still
logs in from the office (IMAP, POP3, SMTP AUTH).
Re-converged in report mode, a second account attacked the same way is
reported and nobody is banned.
The firewall role's table (which lets everyone reach these ports) and fail2ban's
table live side by side: re-running the firewall keeps the bans, restarting
fail2ban keeps the firewall's table.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import pytest
from labtools import SMTP_PROBE, Lab, ansible_playbook_stats, audit_enforcement, changed_tasks

LAB = Lab.from_env()
HOST = LAB.hosts["bf1"]
ABROAD, ABROAD2, OFFICE = LAB.clients["abroad"], LAB.clients["abroad2"], LAB.clients["office"]
JP = LAB.clients["jp"]
SCENARIO = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
CONVERGE = str(SCENARIO / "converge.yml")
FIREWALL_RERUN = str(SCENARIO / "firewall-rerun.yml")
MAILBOX = "customer1"  # vars/lab.yml's bruteforce_lab_user
ACCOUNT_REPORT = "/var/lib/hostguard/bruteforce/accounts.jsonl"
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


# Run by the client's python: one IMAP login to an existing mailbox with a wrong password.
FAIL_ONE_IMAP_LOGIN = """
import imaplib, ssl, sys
try:
    imap = imaplib.IMAP4(sys.argv[1], 143, timeout=10)
    imap.starttls(ssl_context=ssl._create_unverified_context())
    imap.login(sys.argv[2], "not-the-password")
except (imaplib.IMAP4.error, OSError):
    pass
"""

# Run by the client's python: FTP logins as a user that does not exist (vsftpd asks PAM, which logs the failure).
FAIL_FTP_LOGINS = """
import ftplib, sys
for attempt in range(int(sys.argv[2])):
    try:
        ftp = ftplib.FTP(sys.argv[1], timeout=10)
        ftp.login("nosuchuser", "wrong-password")
    except (ftplib.all_errors):
        pass
"""


def fail_smtp_auth(client, count):
    """SMTP AUTH on 587 (after STARTTLS) as a user that does not exist, count times; a refused connection ends it."""
    for attempt in range(count):
        client.run(sys.executable, str(SMTP_PROBE), HOST["ipv4"], "587", "--timeout", "10", "--starttls",
                   "--user", "nosuchuser", "--password", "wrong-password", timeout=60)


def closed_within(client, port, seconds):
    """Whether `port` of the host stops answering `client` within `seconds`."""
    deadline = time.monotonic() + seconds
    while client.tcp(HOST["ipv4"], port)["state"] not in ("refused", "timeout", "unreachable"):
        if time.monotonic() > deadline:
            return False
        time.sleep(1)
    return True


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
    assert set(jails) == {"sshd", "dovecot", "postfix-sasl", "vsftpd", "recidive",
                          "hostguard-accounts", "hostguard-account-ban"}


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


def wait_for_bans(host, jail, addresses):
    deadline = time.monotonic() + BAN_WAIT_SECONDS
    while not set(addresses) <= set(banned_addresses(host, jail)) and time.monotonic() < deadline:
        time.sleep(1)


@pytest.fixture(scope="module")
def abroad_banned_from_submission(host):
    """office and abroad fail SMTP AUTH on 587 as often as maxretry; wait (bounded) for abroad's ban."""
    fail_smtp_auth(OFFICE, 3)
    fail_smtp_auth(ABROAD, 3)
    wait_for_ban(host, "postfix-sasl", ABROAD.ipv4)
    yield


@pytest.fixture(scope="module")
def abroad2_banned_from_ftp(host):
    """office and abroad2 fail FTP logins as often as maxretry; wait (bounded) for abroad2's ban."""
    for client in (OFFICE, ABROAD2):
        client.run(sys.executable, "-c", FAIL_FTP_LOGINS, HOST["ipv4"], "3", timeout=120)
    wait_for_ban(host, "vsftpd", ABROAD2.ipv4)
    yield


@pytest.fixture(scope="module")
def mailbox_attacked_from_many(host, abroad_banned_from_submission, abroad2_banned_from_ftp):
    """Lift the earlier bans, then office, abroad, abroad2 and jp each fail once on one mailbox over IMAP.

    One IMAP failure is logged twice (PAM and imap-login): below the dovecot jail's maxretry of 3 for each
    address, while the mailbox gets four failures, converge.yml's bruteforce_account_maxretry.
    """
    host.run("fail2ban-client unban --all")
    for client in (OFFICE, ABROAD, ABROAD2, JP):
        client.run(sys.executable, "-c", FAIL_ONE_IMAP_LOGIN, HOST["ipv4"], MAILBOX, timeout=60)
    wait_for_bans(host, "hostguard-account-ban", [ABROAD.ipv4, ABROAD2.ipv4, JP.ipv4])
    yield


def test_failed_smtp_auth_on_submission_gets_an_address_banned(host, abroad_banned_from_submission):
    assert ABROAD.ipv4 in banned_addresses(host, "postfix-sasl")
    assert ABROAD.tcp(HOST["ipv4"], 587)["state"] in ("refused", "timeout", "unreachable")
    # office failed as often and still reaches 587; the firewall lets everyone in, so only the ban stops abroad.
    assert OFFICE.ipv4 not in banned_addresses(host, "postfix-sasl")
    assert OFFICE.tcp(HOST["ipv4"], 587)["state"] == "open"


def test_failed_ftp_logins_get_an_address_banned(host, abroad2_banned_from_ftp):
    assert ABROAD2.ipv4 in banned_addresses(host, "vsftpd")
    assert ABROAD2.tcp(HOST["ipv4"], 21)["state"] in ("refused", "timeout", "unreachable")
    assert OFFICE.ipv4 not in banned_addresses(host, "vsftpd")
    assert OFFICE.tcp(HOST["ipv4"], 21)["state"] == "open"


def test_one_mailbox_attacked_from_many_addresses_gets_them_banned(host, mailbox_attacked_from_many):
    assert set(banned_addresses(host, "hostguard-account-ban")) == {ABROAD.ipv4, ABROAD2.ipv4, JP.ipv4}
    # Each address alone stayed below the per-address maxretry: jp, new to this host, was not banned by dovecot.
    assert JP.ipv4 not in banned_addresses(host, "dovecot")
    for client in (ABROAD, ABROAD2, JP):
        assert client.tcp(HOST["ipv4"], 143)["state"] in ("refused", "timeout", "unreachable"), client.name
    # The office failed on the same mailbox and is never banned.
    assert OFFICE.tcp(HOST["ipv4"], 143)["state"] == "open"
    assert OFFICE.tcp(HOST["ipv4"], 22)["state"] == "open"


def test_the_attacked_mailbox_is_reported_in_the_journal_and_the_report(host, mailbox_attacked_from_many):
    # What an operator reads: journalctl -t hostguard-bruteforce (the action adds the account as a field).
    listing = host.check_output("journalctl -q -t hostguard-bruteforce --no-pager")
    assert f"account {MAILBOX} attacked from 4 addresses" in listing, listing
    entries = [json.loads(line) for line in
               host.check_output(f"journalctl -q -o json HOSTGUARD_ACCOUNT={MAILBOX}").splitlines()]
    assert entries, "no journal entry carries the account as a field"
    entry = entries[-1]
    assert set(entry["HOSTGUARD_BANNED"].split()) == {ABROAD.ipv4, ABROAD2.ipv4, JP.ipv4}
    assert f"account {MAILBOX} attacked from 4 addresses" in entry["MESSAGE"]
    report = [json.loads(line) for line in host.file(ACCOUNT_REPORT).content_string.splitlines()]
    record = [record for record in report if record["account"] == MAILBOX][-1]
    assert record["addresses"] == [OFFICE.ipv4, ABROAD.ipv4, ABROAD2.ipv4, JP.ipv4]
    assert record["ignored"] == [OFFICE.ipv4]
    assert record["action"] == "ban"
    assert record["failures"] == 4


def test_a_ban_holds_although_the_firewall_allows_the_port(host, mailbox_attacked_from_many):
    firewall = host.check_output("nft -s list table inet hostguard")
    # The firewall role accepts IMAP from anywhere; fail2ban's chain runs first and rejects the banned address.
    assert "143" in firewall
    assert JP.tcp(HOST["ipv4"], 143)["state"] in ("refused", "timeout", "unreachable")
    assert JP.ipv4 in host.check_output("nft list table inet f2b-table")


def test_a_firewall_rerun_keeps_the_bans(host, mailbox_attacked_from_many):
    firewall_before = host.check_output("nft -s list table inet hostguard")
    try:
        run = ansible_playbook_stats(FIREWALL_RERUN, "-e", json.dumps(
            {"bruteforce_lab_extra_services": {"lab_app": {"ports": [9000], "proto": "tcp", "sources": "any"}}}))
        assert run["rc"] == 0, run["stats"]
        assert any(stats["changed"] for stats in run["stats"].values()), "the firewall did not reload its table"
        assert "9000" in host.check_output("nft -s list table inet hostguard")
        assert JP.ipv4 in host.check_output("nft list table inet f2b-table")
        assert JP.tcp(HOST["ipv4"], 143)["state"] in ("refused", "timeout", "unreachable")
        assert JP.ipv4 in banned_addresses(host, "hostguard-account-ban")
    finally:
        restore = ansible_playbook_stats(FIREWALL_RERUN)
    assert restore["rc"] == 0, restore["stats"]
    assert host.check_output("nft -s list table inet hostguard") == firewall_before


def test_restarting_fail2ban_leaves_the_firewall_table_alone(host, mailbox_attacked_from_many):
    firewall_before = host.check_output("nft -s list table inet hostguard")
    host.check_output("systemctl restart fail2ban")
    # fail2ban restores its bans from its database at start; wait (bounded) for it.
    deadline = time.monotonic() + BAN_WAIT_SECONDS
    while JP.ipv4 not in host.run("nft list table inet f2b-table").stdout and time.monotonic() < deadline:
        time.sleep(1)
    assert host.check_output("nft -s list table inet hostguard") == firewall_before
    assert JP.ipv4 in host.check_output("nft list table inet f2b-table")
    assert JP.tcp(HOST["ipv4"], 143)["state"] in ("refused", "timeout", "unreachable")
    assert OFFICE.tcp(HOST["ipv4"], 143)["state"] == "open"


VIRTUAL_MAILBOX = "info@example.com"  # vars/lab.yml's bruteforce_lab_mailbox, in Dovecot's passwd-file
VIRTUAL_PASSWORD = "lab-only-Mailb0x"

# Run by the client's python: one IMAP login; prints the server's answer.
IMAP_LOGIN = """
import imaplib, ssl, sys
try:
    imap = imaplib.IMAP4(sys.argv[1], 143, timeout=10)
    imap.starttls(ssl_context=ssl._create_unverified_context())
    print(imap.login(sys.argv[2], sys.argv[3])[0])
    print(imap.select("INBOX")[0])
    imap.logout()
except (imaplib.IMAP4.error, OSError) as error:
    print("failed", error)
"""


# Run by the client's python: one POP3 login (after STLS, as Dovecot requires); prints the server's answer.
POP3_LOGIN = """
import poplib, ssl, sys
try:
    pop = poplib.POP3(sys.argv[1], 110, timeout=10)
    pop.stls(context=ssl._create_unverified_context())
    pop.user(sys.argv[2])
    print(pop.pass_(sys.argv[3]).split()[0].decode())
    pop.quit()
except (poplib.error_proto, OSError) as error:
    print("failed", error)
"""


def smtp_auth(client, user, password, address=HOST["ipv4"]):
    result = client.run(sys.executable, str(SMTP_PROBE), address, "587", "--timeout", "10", "--starttls",
                        "--user", user, "--password", password, timeout=60)
    return json.loads(result.stdout) if result.stdout.strip() else {}


def attack_virtual_mailbox():
    """office and abroad fail once each over IMAP, jp once over POP3 and abroad2 once over SMTP AUTH on 587, on the
    virtual mailbox.

    Over IPv6, whose addresses the tests before have not used: each address stays below the per-address maxretry
    of 3 (the dovecot jail counts pam_unix's line and imap-login's for an IMAP failure, and pam_unix's for SMTP
    AUTH; postfix-sasl Postfix's line); the mailbox gets four failures, converge.yml's bruteforce_account_maxretry.
    """
    for client in (OFFICE, ABROAD):
        client.run(sys.executable, "-c", IMAP_LOGIN, HOST["ipv6"], VIRTUAL_MAILBOX, "not-the-password", timeout=60)
    answer = JP.run(sys.executable, "-c", POP3_LOGIN, HOST["ipv6"], VIRTUAL_MAILBOX, "not-the-password", timeout=60)
    assert answer.stdout.startswith("failed") and "-ERR" in answer.stdout, answer.stdout
    smtp_auth(ABROAD2, VIRTUAL_MAILBOX, "not-the-password", HOST["ipv6"])


# The order of attack_virtual_mailbox's failures.
VIRTUAL_ATTACKERS = (OFFICE, ABROAD, JP, ABROAD2)


def test_the_filter_reads_dovecots_passwd_file_lines(host):
    """fail2ban-regex with the installed filter: the mailbox is the failure id, a line without an address never counts."""
    lines = [
        # IMAP (and POP3): Dovecot's own client address and session.
        "Nov 25 16:42:08 bf1 dovecot[1909]: auth: passwd-file(info@example.com,203.0.113.10,<4ZbfgRxhsI7LAHEK>): "
        "Password mismatch",
        # SMTP AUTH through Dovecot's SASL socket: the address Postfix passed, no session.
        "Nov 25 16:42:18 bf1 dovecot[1909]: auth: passwd-file(info@example.com,203.0.113.11): Password mismatch",
        "Nov 25 16:42:18 bf1 dovecot[1909]: auth: passwd-file(info@example.com,2001:db8:203::a,<Ab+c>): "
        "Password mismatch",
        # Dovecot 2.4 (Debian 13): the mechanism in the parenthesis, the session after it; SMTP AUTH without one.
        "Dec 05 18:36:05 bf1 dovecot[1727]: auth(info@example.com,203.0.113.12,sasl:plain)<UUHJQ+dhzMfGEgAK>: "
        "passwd-file: Password mismatch",
        "Dec 05 18:36:12 bf1 dovecot[1727]: auth(info@example.com,2001:db8:203::b,sasl:login): passwd-file: "
        "Password mismatch",
        # No client address (doveadm auth test, a client that passed none): never counted.
        "Nov 25 16:42:22 bf1 dovecot[1909]: auth: passwd-file(info@example.com): Password mismatch",
        "Dec 05 18:36:12 bf1 dovecot[1727]: auth(info@example.com,sasl:plain): passwd-file: Password mismatch",
        "Dec 05 18:36:12 bf1 dovecot[1727]: auth(info@example.com): passwd-file: Password mismatch",
        "Nov 25 16:42:22 bf1 dovecot[1909]: auth: passwd-file(info@example.com,<4ZbfgRxhsI7LAHEK>): Password mismatch",
        # A name that is no mailbox, a host name instead of an address, a login name carrying an address.
        "Nov 25 16:42:14 bf1 dovecot[1909]: auth: passwd-file(nobody@example.com,198.18.0.10,<crY+g>): unknown user",
        "Nov 25 16:42:14 bf1 dovecot[1909]: auth: passwd-file(info@example.com,mx.example.net,<crY+g>): "
        "Password mismatch",
        "Nov 25 16:42:14 bf1 dovecot[1909]: auth: passwd-file(x,198.51.100.10,203.0.113.10,<crY+g>): Password mismatch",
        # PAM's line for a system account, as before.
        "Nov 25 16:42:06 bf1 auth[1914]: pam_unix(dovecot:auth): authentication failure; logname= uid=0 euid=0 "
        "tty=dovecot ruser=customer1 rhost=203.0.113.10  user=customer1",
    ]
    sample = "/tmp/hostguard-accounts-samples.log"
    host.check_output(f"printf '%s\\n' {' '.join(repr(line) for line in lines)} > {sample}")
    found = host.check_output(f"fail2ban-regex -o '<F-ID> <ip>' {sample} "
                              "/etc/fail2ban/filter.d/hostguard-accounts.conf").splitlines()
    assert found == ["info@example.com 203.0.113.10", "info@example.com 203.0.113.11",
                     "info@example.com 2001:db8:203::a", "info@example.com 203.0.113.12",
                     "info@example.com 2001:db8:203::b", "customer1 203.0.113.10"]


def test_the_dovecot_filter_reads_dovecot_23_and_24_failed_logins(host):
    """fail2ban-regex with the role's dovecot filter: a failed login's end of connection, as Dovecot 2.3 and 2.4
    write it, counts for the client's address, also where the login name carries another one."""
    lines = [
        "Nov 25 16:42:08 bf1 dovecot[1909]: imap-login: Aborted login (auth failed, 1 attempts in 2 secs): "
        "user=<info@example.com>, method=PLAIN, rip=203.0.113.10, lip=10.0.0.11, TLS, session=<4ZbfgRxhsI7LAHEK>",
        "Dec 05 18:36:07 bf1 dovecot[1727]: imap-login: Login aborted: Connection closed (auth failed, 1 attempts in "
        "5 secs) (auth_failed): user=<info@example.com>, method=PLAIN, rip=203.0.113.11, lip=10.213.1.11, "
        "TLS: Connection closed, session=<UUHJQ+dhzMfGEgAK>",
        "Dec 05 18:36:07 bf1 dovecot[1727]: pop3-login: Login aborted: Logged out (auth failed, 3 attempts in "
        "9 secs) (auth_failed): user=<info@example.com>, method=PLAIN, rip=2001:db8:203::a, lip=fdbb::b, "
        "session=<UUHJQ+dhzMfGEgAL>",
        # The login name is the client's: it may spell out another address, which must never be the one counted.
        "Dec 05 18:36:07 bf1 dovecot[1727]: imap-login: Login aborted: Connection closed (auth failed, 1 attempts in "
        "5 secs) (auth_failed): user=<x>, rip=198.18.0.77, lip=10.0.0.1, x>, method=PLAIN, rip=203.0.113.12, "
        "lip=10.213.1.11, session=<UUHJQ+dhzMfGEgAM>",
        # A login that succeeded, and a client that gave up before trying: not failures.
        "Dec 05 18:36:09 bf1 dovecot[1727]: imap-login: Login: user=<info@example.com>, method=PLAIN, "
        "rip=198.18.0.10, lip=10.213.1.11, mpid=1830, TLS, session=<UUHJQ+dhzMfGEgAN>",
        "Dec 05 18:36:09 bf1 dovecot[1727]: imap-login: Login aborted: Connection closed (no auth attempts in 0 secs) "
        "(no_auth_attempts): user=<>, rip=198.18.0.10, lip=10.213.1.11, session=<UUHJQ+dhzMfGEgAO>",
    ]
    sample = "/tmp/hostguard-dovecot-samples.log"
    host.check_output(f"printf '%s\\n' {' '.join(repr(line) for line in lines)} > {sample}")
    found = host.check_output(f"fail2ban-regex -o '<ip>' {sample} /etc/fail2ban/filter.d/hostguard-dovecot.conf")
    assert found.splitlines() == ["203.0.113.10", "203.0.113.11", "2001:db8:203::a", "203.0.113.12"]
    assert host.check_output("fail2ban-client get dovecot journalmatch").splitlines()[-1] == (
        "_SYSTEMD_UNIT=dovecot.service _UID=0")


def test_dovecot_logs_failed_logins_per_mailbox_only_while_the_account_jail_is_on(host):
    conf = host.file("/etc/dovecot/conf.d/99-hostguard-bruteforce.conf")
    assert conf.exists
    assert host.check_output("doveconf -h auth_verbose") == "yes"


@pytest.fixture(scope="module")
def virtual_mailbox_attacked(host, mailbox_attacked_from_many):
    """Lift the earlier bans, then attack the Dovecot virtual mailbox from office, abroad, abroad2 and jp."""
    host.run("fail2ban-client unban --all")
    attack_virtual_mailbox()
    wait_for_bans(host, "hostguard-account-ban", [ABROAD.ipv6, ABROAD2.ipv6, JP.ipv6])
    yield


def test_a_virtual_mailbox_attacked_from_many_addresses_gets_them_banned(host, virtual_mailbox_attacked):
    assert set(banned_addresses(host, "hostguard-account-ban")) == {ABROAD.ipv6, ABROAD2.ipv6, JP.ipv6}
    # Each address alone stayed below the per-address maxretry.
    for jail in ("dovecot", "postfix-sasl"):
        assert not {client.ipv6 for client in VIRTUAL_ATTACKERS} & set(banned_addresses(host, jail)), jail
    for client in (ABROAD, ABROAD2, JP):
        for port in (143, 110, 587, 22):
            assert client.tcp(HOST["ipv6"], port)["state"] in ("refused", "timeout", "unreachable"), (client.name, port)
    # The office (2001:db8:51::/64 is in bruteforce_ignore_sources) failed on the same mailbox and is never banned.
    assert OFFICE.tcp(HOST["ipv6"], 143)["state"] == "open"
    report = [json.loads(line) for line in host.file(ACCOUNT_REPORT).content_string.splitlines()]
    record = [record for record in report if record["account"] == VIRTUAL_MAILBOX][-1]
    assert record["addresses"] == [client.ipv6 for client in VIRTUAL_ATTACKERS]
    assert record["ignored"] == [OFFICE.ipv6]
    assert record["banned"] == [ABROAD.ipv6, JP.ipv6, ABROAD2.ipv6]
    assert record["failures"] == 4
    assert f"account {VIRTUAL_MAILBOX} attacked from 4 addresses" in host.check_output(
        "journalctl -q -t hostguard-bruteforce --no-pager")


def test_the_virtual_mailbox_still_logs_in_from_the_office(host, virtual_mailbox_attacked):
    for address in (HOST["ipv6"], HOST["ipv4"]):
        answer = OFFICE.run(sys.executable, "-c", IMAP_LOGIN, address, VIRTUAL_MAILBOX, VIRTUAL_PASSWORD,
                            timeout=60).stdout.split()
        assert answer == ["OK", "OK"], (address, answer)
        pop3 = OFFICE.run(sys.executable, "-c", POP3_LOGIN, address, VIRTUAL_MAILBOX, VIRTUAL_PASSWORD, timeout=60)
        assert pop3.stdout.split() == ["+OK"], (address, pop3.stdout)
        assert smtp_auth(OFFICE, VIRTUAL_MAILBOX, VIRTUAL_PASSWORD, address).get("auth") == 235, address
    assert OFFICE.ipv6 not in banned_addresses(host, "hostguard-account-ban")


# Run by the client's python: one FTP login to an existing account with a wrong password.
FAIL_ONE_FTP_LOGIN = """
import ftplib, sys
try:
    ftplib.FTP(sys.argv[1], timeout=10).login(sys.argv[2], "not-the-password")
except ftplib.all_errors:
    pass
"""


def test_report_mode_reports_an_attacked_account_and_bans_nobody(host, mailbox_attacked_from_many):
    """converge.yml again with bruteforce_account_action=report; a second account, failed once over FTP from each
    of office, abroad, abroad2 and jp, and the virtual mailbox, attacked again, are reported and nobody is banned."""
    host.check_output("id customer2 || useradd --shell /usr/sbin/nologin customer2")
    # The same addresses attack again within bruteforce_findtime: a higher per-address maxretry keeps the
    # per-address jails out of it, so that any ban here could only come from the account jail.
    overrides = {"bruteforce_account_action": "report", "bruteforce_maxretry": 10}
    run = ansible_playbook_stats(CONVERGE, "-e", json.dumps(overrides))
    assert run["rc"] == 0, run["stats"]
    jails = host.check_output("fail2ban-client status").split("Jail list:", 1)[1].replace(",", " ").split()
    assert "hostguard-accounts" in jails
    assert "hostguard-account-ban" not in jails
    host.run("fail2ban-client unban --all")
    reports_before = len(host.file(ACCOUNT_REPORT).content_string.splitlines())
    for client in (OFFICE, ABROAD, ABROAD2, JP):
        client.run(sys.executable, "-c", FAIL_ONE_FTP_LOGIN, HOST["ipv4"], "customer2", timeout=60)
    # The Dovecot virtual mailbox, attacked as in ban mode (IMAP and SMTP AUTH).
    attack_virtual_mailbox()
    deadline = time.monotonic() + BAN_WAIT_SECONDS
    while len(new_reports(host, reports_before)) < 2 and time.monotonic() < deadline:
        time.sleep(1)
    records = {record["account"]: record for record in new_reports(host, reports_before)}
    assert set(records) == {"customer2", VIRTUAL_MAILBOX}, records
    assert records["customer2"]["addresses"] == [OFFICE.ipv4, ABROAD.ipv4, ABROAD2.ipv4, JP.ipv4]
    assert records[VIRTUAL_MAILBOX]["addresses"] == [client.ipv6 for client in VIRTUAL_ATTACKERS]
    for account, record in records.items():
        assert record["action"] == "report", account
        assert record["banned"] == [], account
        assert f"account {account} attacked from 4 addresses" in host.check_output(
            "journalctl -q -t hostguard-bruteforce --no-pager")
    for client in (ABROAD, ABROAD2, JP):
        assert client.tcp(HOST["ipv4"], 21)["state"] == "open", client.name
        assert client.tcp(HOST["ipv6"], 143)["state"] == "open", client.name
        assert client.tcp(HOST["ipv6"], 587)["state"] == "open", client.name


def new_reports(host, count_before):
    lines = host.file(ACCOUNT_REPORT).content_string.splitlines()[count_before:]
    return [json.loads(line) for line in lines]


# Every run proves the protection is in force: the jails read back from fail2ban, a test ban seen in nftables.

PROOF_TASK = "Prove every jail runs with its log source and ban action, and that a test ban reaches nftables"
PROBE_ADDRESS = "203.0.113.254"  # the role's default bruteforce_probe_address: no lab client has it


def proof(run):
    """The result of the role's read-back task in a converge run."""
    # A role's task is named "ROLE : NAME".
    results = [result for play in run["plays"] for task in play["tasks"]
               if task["task"]["name"].split(" : ", 1)[-1] == PROOF_TASK for result in task["hosts"].values()]
    assert len(results) == 1, [task["task"]["name"] for play in run["plays"] for task in play["tasks"]]
    return results[0]


def jail_actions(host, jail):
    return host.check_output(f"fail2ban-client get {jail} actions")


@pytest.mark.parametrize("breakage", [
    # What a reload did on Debian 13: the jail runs, counts and logs "Ban", and has no action to block with.
    "fail2ban-client set sshd delaction nftables-multiport",
    # What a failed reload leaves: the jail is gone from the server, its file still in place.
    "fail2ban-client stop sshd",
])
def test_the_next_run_restarts_fail2ban_where_a_jail_is_not_in_force(host, breakage):
    assert audit_enforcement("bf1")["bruteforce"]["in_force"] is True
    host.check_output(breakage)
    # "; true": fail2ban-client exits 255 for a jail that is gone, which the SSH backend takes for its own failure.
    assert "nftables-multiport" not in host.run("fail2ban-client get sshd actions 2>&1; true").stdout
    # The audit names it, and repairs nothing.
    problems = audit_enforcement("bf1")["bruteforce"]["problems"]
    assert problems == ["jail sshd " + ("runs without any action (it would ban nobody)" if "delaction" in breakage
                                        else "not running")], problems
    assert "nftables-multiport" not in host.run("fail2ban-client get sshd actions 2>&1; true").stdout
    run = ansible_playbook_stats(CONVERGE)
    assert run["rc"] == 0, run["stats"]
    result = proof(run)
    assert result["restarted"] is True and "sshd" in result["repaired"], result
    assert [task for task in changed_tasks(run["plays"]) if task.endswith(PROOF_TASK)], changed_tasks(run["plays"])
    assert "nftables-multiport" in jail_actions(host, "sshd")
    assert result["jails"]["sshd"] == {"running": True, "backend": "journal", "actions": ["nftables-multiport"]}
    if "delaction" in breakage:
        # Repaired for real: failed logins from abroad get it banned, and it no longer reaches SSH.
        try:
            fail_ssh_logins(ABROAD)
            wait_for_ban(host, "sshd", ABROAD.ipv4)
            # fail2ban lists the ban before its action has added the address to the set: give it seconds.
            assert closed_within(ABROAD, 22, seconds=15)
        finally:
            host.run("fail2ban-client unban --all")


def test_every_run_proves_a_test_ban_reaches_nftables_and_lifts_it(host):
    run = ansible_playbook_stats(CONVERGE)
    assert run["rc"] == 0, run["stats"]
    result = proof(run)
    assert result["changed"] is False
    assert result["probe"] == {"jail": "recidive", "address": PROBE_ADDRESS,
                               "set": "inet f2b-table addr-set-recidive", "blocked": True, "lifted": True}
    assert set(result["jails"]) == {"sshd", "dovecot", "postfix-sasl", "vsftpd", "recidive",
                                    "hostguard-accounts", "hostguard-account-ban"}
    assert all(jail["actions"] for jail in result["jails"].values()), result["jails"]
    log = host.file("/var/log/fail2ban.log").content_string
    assert f"[recidive] Ban {PROBE_ADDRESS}" in log and f"[recidive] Unban {PROBE_ADDRESS}" in log
    assert PROBE_ADDRESS not in host.check_output("nft list table inet f2b-table")
    assert PROBE_ADDRESS not in banned_addresses(host, "recidive")


# Packages a minimal Debian install lacks. The lab's hosts reach no mirror: a package removed here is rebuilt
# from its installed files first and put back afterwards.
SAVE_PACKAGE = """set -e
tree=$(mktemp -d)
dpkg-query -L "$1" | while read -r path; do
  if [ -f "$path" ] || [ -L "$path" ]; then echo "$path"; fi
done | tar -cf - --no-recursion -T - 2>/dev/null | tar -xf - -C "$tree"
mkdir "$tree/DEBIAN"
dpkg-query -s "$1" | grep -v -e '^Status:' -e '^Conffiles:' > "$tree/DEBIAN/control"
dpkg-deb --build "$tree" "/root/$1-saved.deb" >/dev/null
rm -rf "$tree"
"""


@pytest.fixture()
def without_package(host, request):
    package = request.param
    host.check_output(f"sh -s {package} <<'SAVE'\n{SAVE_PACKAGE}SAVE")
    host.check_output(f"dpkg --remove --force-depends {package}")
    yield package
    host.check_output(f"dpkg -i /root/{package}-saved.deb && rm -f /root/{package}-saved.deb")
    assert f"ii  {package} " in host.check_output(f"dpkg -l {package}")


# Debian's fail2ban only recommends python3-systemd, which the journal jails need. With no mirror to install it
# from, the role must refuse before any change, naming it.
@pytest.mark.parametrize("without_package", ["python3-systemd"], indirect=True)
def test_without_python3_systemd_the_role_refuses_before_any_change_naming_it(host, without_package):
    jail_before = host.file(JAIL_FILE).content_string
    # A changed setting: the jail file would be rewritten if the role went on.
    run = ansible_playbook_stats(CONVERGE, "-e", json.dumps({"bruteforce_maxretry": 7}))
    assert run["rc"] != 0
    failures = [result["msg"] for play in run["plays"] for task in play["tasks"]
                for result in task["hosts"].values() if result.get("failed")]
    assert any("need python3-systemd" in msg and "apt-get install python3-systemd" in msg for msg in failures), failures
    assert host.file(JAIL_FILE).content_string == jail_before


# A minimal install has no python3-apt, which package_facts needs: the preflights of bruteforce and
# mail_submission (and the firewall role before them) read the packages without it, and the run changes nothing.
@pytest.mark.parametrize("without_package", ["python3-apt"], indirect=True)
def test_without_python3_apt_the_roles_run_as_before(host, without_package):
    assert host.run("python3 -c 'import apt_pkg'").rc != 0
    run = ansible_playbook_stats(CONVERGE)
    assert run["rc"] == 0, run["stats"]
    assert changed_tasks(run["plays"]) == []
    assert proof(run)["probe"]["blocked"] is True
