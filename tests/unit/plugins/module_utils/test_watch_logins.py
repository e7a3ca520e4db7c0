# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import ipaddress
import json
import os
import time

import pytest

from ansible_collections.hostguard.hosting.plugins.module_utils import watch_config, watch_logins, watch_service
from ansible_collections.hostguard.hosting.plugins.module_utils.firewall import load_countries

from ansible_collections.hostguard.hosting.tests.unit.plugins.module_utils.watch_fakes import (
    Clock, FakeJournal, Runner, step)

START = 1_800_000_000.0
DAY = 86400
ROOT = {"_UID": 0}
TABLE = "198.18.0.0 198.18.0.255 JP\n203.0.113.0 203.0.113.255 MD\n2001:db8:203:: 2001:db8:203::ffff:ffff:ffff:ffff MD\n"

# The login lines as the daemons write them on Debian 12 (OpenSSH 9.2, Dovecot 2.3.19, Postfix 3.7, vsftpd 3.0.3)
# and Debian 13 (OpenSSH 10.0's sshd-session, Dovecot 2.4.1, Postfix 3.10, vsftpd 3.0.5); the Debian 13 lines were
# read from the lab's journal.
LINES = [
    ("bookworm", "sshd", "Accepted password for site1 from 203.0.113.10 port 50522 ssh2",
     ("site1", "ssh", "203.0.113.10")),
    ("trixie", "sshd-session", "Accepted publickey for root from 10.213.1.1 port 43380 ssh2: ED25519 "
     "SHA256:w5TXhqLhPfSgmdb1oEVfz7jXoUZuikTkkXSnBpJ9lNs", ("root", "ssh", "10.213.1.1")),
    ("trixie", "sshd-session", "Accepted keyboard-interactive/pam for site1 from 2001:db8:203::a port 40022 ssh2",
     ("site1", "ssh", "2001:db8:203::a")),
    ("bookworm", "dovecot", "imap-login: Login: user=<mbox1>, method=PLAIN, rip=203.0.113.10, lip=10.213.1.11, "
     "mpid=1234, TLS, session=<QoWpZe5hIJXLAHEK>", ("mbox1", "imap", "203.0.113.10")),
    ("bookworm", "dovecot", "pop3-login: Login: user=<info@example.jp>, method=PLAIN, rip=198.18.0.10, "
     "lip=10.213.1.11, mpid=1240, TLS, session=<vECsZe5hLODLAHEK>", ("info@example.jp", "pop3", "198.18.0.10")),
    ("trixie", "dovecot", "imap-login: Logged in: user=<mbox1>, method=PLAIN, rip=203.0.113.10, lip=10.213.1.11, "
     "mpid=296, TLS, session=<MdgdZu5hJJXLAHEK>", ("mbox1", "imap", "203.0.113.10")),
    ("trixie", "dovecot", "pop3-login: Logged in: user=<mbox1>, method=PLAIN, rip=203.0.113.10, lip=10.213.1.11, "
     "mpid=301, TLS, session=<vlEkZu5hNuDLAHEK>", ("mbox1", "pop3", "203.0.113.10")),
    ("trixie", "dovecot", "submission-login: Logged in: user=<mbox1>, method=PLAIN, rip=2001:db8:18::a, "
     "lip=fdbb:6a7:1::b, mpid=310, TLS, session=<abc>", ("mbox1", "submission", "2001:db8:18::a")),
    ("bookworm", "postfix/submission/smtpd", "4F1C01E0A2: client=unknown[203.0.113.10], sasl_method=PLAIN, "
     "sasl_username=mbox1", ("mbox1", "smtp", "203.0.113.10")),
    ("trixie", "postfix/smtpd", "9B2D41E0B7: client=mail.example.md[203.0.113.11]:42311, sasl_method=LOGIN, "
     "sasl_username=info@example.jp", ("info@example.jp", "smtp", "203.0.113.11")),
    ("trixie", "vsftpd", "[pid 285] [mbox1] OK LOGIN: Client \"::ffff:203.0.113.10\"",
     ("mbox1", "ftp", "::ffff:203.0.113.10")),
]
# Lines that are no successful login.
NOT_LOGINS = [
    ("dovecot", "imap-login: Login aborted: Connection closed (auth failed, 1 attempts in 0 secs) (auth_failed): "
     "user=<mbox1>, rip=203.0.113.10, lip=10.213.1.11, session=<QoWpZe5hIJXLAHEK>"),
    ("dovecot", "imap-login: Disconnected: Connection closed (auth failed, 3 attempts in 15 secs): user=<mbox1>, "
     "method=PLAIN, rip=203.0.113.10, lip=10.213.1.11, TLS, session=<x>"),
    ("dovecot", "auth: pam(mbox1,203.0.113.10,<x>): pam_authenticate() failed: Authentication failure"),
    ("sshd-session", "Failed password for site1 from 203.0.113.10 port 50522 ssh2"),
    ("sshd", "Invalid user admin from 203.0.113.10 port 50522"),
    ("postfix/smtpd", "4F1C01E0A2: client=unknown[203.0.113.10]"),
    ("postfix/smtpd", "warning: unknown[203.0.113.10]: SASL PLAIN authentication failed: authentication failure"),
    ("vsftpd", "[pid 290] [mbox1] FAIL LOGIN: Client \"::ffff:203.0.113.10\""),
]


def source_for(identifier):
    return next(source for source in watch_logins.JOURNAL_SOURCES if identifier in source.IDENTIFIERS)


@pytest.mark.parametrize("release, identifier, message, expected", LINES,
                         ids=[f"{line[0]}-{line[1]}-{index}" for index, line in enumerate(LINES)])
def test_each_daemon_s_login_line_is_read_on_both_releases(release, identifier, message, expected):
    assert source_for(identifier).parse(message) == watch_logins.Login(*expected)


@pytest.mark.parametrize("identifier, message", NOT_LOGINS)
def test_failures_and_other_lines_are_no_login(identifier, message):
    assert source_for(identifier).parse(message) is None


@pytest.mark.parametrize("use_localtime", [False, True])
def test_vsftpd_s_own_log_lines_are_read_in_gmt_or_local_time(use_localtime):
    line = 'Sun Dec  6 03:06:36 2026 [pid 285] [mbox1] OK LOGIN: Client "::ffff:203.0.113.10"'
    when, login = watch_logins.parse_vsftpd_line(line, use_localtime)
    assert login == watch_logins.Login("mbox1", "ftp", "::ffff:203.0.113.10")
    parsed = time.strptime("Sun Dec  6 03:06:36 2026", "%a %b %d %H:%M:%S %Y")
    assert when == (time.mktime(parsed) if use_localtime else 1796526396)
    assert watch_logins.parse_vsftpd_line('Sun Dec  6 03:06:36 2026 [pid 286] CONNECT: Client "::ffff:1.2.3.4"',
                                          False) is None


# -- the country table ----------------------------------------------------------------------------------------------------
def test_the_country_table_merges_a_country_s_ranges_and_looks_addresses_up():
    countries = load_countries({"JP": ["198.18.0.0/25", "198.18.0.128/25", "2001:db8:18::/64"],
                                "MD": ["203.0.113.0/24", "203.0.113.64/26"]})
    text = watch_logins.build_country_table(countries)
    assert text == ("198.18.0.0 198.18.0.255 JP\n203.0.113.0 203.0.113.255 MD\n"
                    "2001:db8:18:: 2001:db8:18:0:ffff:ffff:ffff:ffff JP\n")
    table = watch_logins.CountryTable(text)
    assert len(table) == 3
    lookups = {address: table.country(ipaddress.ip_address(address))
               for address in ("198.18.0.0", "198.18.0.255", "198.18.1.0", "203.0.113.77", "203.0.112.255",
                               "2001:db8:18::a", "2001:db8:19::a", "10.0.0.1")}
    assert lookups == {"198.18.0.0": "JP", "198.18.0.255": "JP", "198.18.1.0": None, "203.0.113.77": "MD",
                       "203.0.112.255": None, "2001:db8:18::a": "JP", "2001:db8:19::a": None, "10.0.0.1": None}


def test_one_network_given_to_two_countries_is_refused_naming_both():
    countries = load_countries({"JP": ["198.18.0.0/24"], "MD": ["198.18.0.128/25"]}, variable="watch_country_cidrs")
    with pytest.raises(watch_logins.CountryError, match=r"198\.18\.0\.128/25 \(MD\) overlaps 198\.18\.0\.0/24 \(JP\)"):
        watch_logins.build_country_table(countries)


@pytest.mark.parametrize("text, message", [
    ("198.18.0.0 JP\n", "line 1: expected 'FIRST LAST CC'"),
    ("198.18.0.9 198.18.0.0 JP\n", "line 1: .* is not a range"),
    ("198.18.0.0 2001:db8:: JP\n", "line 1: .* is not a range"),
    ("198.18.0.0 198.18.0.255 jp\n", "is not a range of one family and a country code"),
    ("203.0.113.0 203.0.113.255 MD\n198.18.0.0 198.18.0.255 JP\n", "line 2: .* is not after the line before it"),
])
def test_a_damaged_table_is_refused_naming_the_line(text, message):
    with pytest.raises(watch_logins.CountryError, match=message):
        watch_logins.CountryTable(text)


# -- the facet in the service -----------------------------------------------------------------------------------------------
def make_service(tmp_path, journal, runner, clock, mail=False, **logins):
    table = tmp_path / "countries.txt"
    table.write_text(TABLE)
    vsftpd_conf = tmp_path / "vsftpd.conf"
    if not vsftpd_conf.exists():
        vsftpd_conf.write_text(f"xferlog_enable=YES\nvsftpd_log_file={tmp_path / 'vsftpd.log'}\n")
    settings = {"enabled": True, "country_table": str(table), "vsftpd_conf": str(vsftpd_conf),
                "lock_state_dir": str(tmp_path / "locks")}
    settings.update(logins)
    config = watch_config.validate({"host": "web1.example", "state_dir": str(tmp_path / "state"),
                                    "facets": {"logins": settings, "mail": {"enabled": mail}}},
                                   watch_service.FACET_TYPES)
    os.makedirs(config["state_dir"], exist_ok=True)
    service = watch_service.Service(config, journal=journal, run=runner, clock=clock, log=lambda text: None)
    service.state.load()
    service.open_journal()
    for facet in service.facets:
        facet.start()
    return service


def facet_of(service):
    return next(facet for facet in service.facets if facet.NAME == "logins")


def imap(journal, when, user, address, **fields):
    journal.add(when, "dovecot", f"imap-login: Logged in: user=<{user}>, method=PLAIN, rip={address}, "
                                 f"lip=10.213.1.11, mpid=296, TLS, session=<x>", **(fields or ROOT))


def events(tmp_path):
    path = tmp_path / "state" / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def learned(tmp_path, journal, clock):
    """A service that learned at first start that mbox1 logs in from JP, and root from the office network."""
    imap(journal, START - 10 * DAY, "mbox1", "198.18.0.10")
    journal.add(START - 2 * DAY, "sshd-session", "Accepted publickey for root from 198.51.100.10 port 1 ssh2", **ROOT)
    service = make_service(tmp_path, journal, Runner(), clock)
    assert service.read_journal() == 2
    return service


def test_the_first_start_learns_the_history_without_alerting_and_a_new_country_is_said_once(tmp_path):
    journal, clock = FakeJournal(), Clock(START)
    imap(journal, START - 40 * DAY, "mbox1", "203.0.113.10")  # older than the history: not read
    service = learned(tmp_path, journal, clock)
    assert events(tmp_path) == []
    assert set(service.state.facet("logins")["accounts"]["mbox1"]) == {"JP"}

    imap(journal, START + 60, "mbox1", "198.18.0.11")  # from JP again
    imap(journal, START + 120, "mbox1", "203.0.113.10")  # from Moldova
    imap(journal, START + 180, "mbox1", "203.0.113.11")  # Moldova again: no longer new
    clock.now = START + 200
    service.read_journal()

    found = events(tmp_path)
    assert [event["kind"] for event in found] == ["login_new_country"]
    event = found[0]
    assert (event["account"], event["service"], event["address"], event["country"]) == \
        ("mbox1", "imap", "203.0.113.10", "MD")
    assert event["known_places"] == ["JP"] and event["host"] == "web1.example"
    assert "mbox1" in event["summary"] and "MD" in event["summary"] and "IMAP" in event["summary"]
    assert "action" not in event  # containment is off unless named


def test_without_country_data_the_network_stands_in(tmp_path):
    journal, clock = FakeJournal(), Clock(START)
    service = learned(tmp_path, journal, clock)
    journal.add(START + 10, "sshd-session", "Accepted publickey for root from 198.51.100.77 port 2 ssh2", **ROOT)
    journal.add(START + 20, "sshd-session", "Accepted publickey for root from 2001:db8:51:1::5 port 3 ssh2", **ROOT)
    clock.now = START + 30
    service.read_journal()
    found = events(tmp_path)
    assert len(found) == 1  # 198.51.100.77 is in the office's /24, which root used before
    assert (found[0]["country"], found[0]["network"]) == (None, "2001:db8:51::/48")
    assert "network 2001:db8:51::/48" in found[0]["summary"]


def test_an_account_without_history_is_said_only_from_a_place_no_account_came_from(tmp_path):
    journal, clock = FakeJournal(), Clock(START)
    service = learned(tmp_path, journal, clock)
    imap(journal, START + 10, "newcustomer", "198.18.0.50")  # a new mailbox used from JP like the others
    imap(journal, START + 20, "dormant", "203.0.113.10")  # a mailbox nobody used for a month, from Moldova
    clock.now = START + 30
    service.read_journal()
    assert [(e["account"], e["country"], e["known_places"]) for e in events(tmp_path)] == [("dormant", "MD", [])]


def test_a_place_older_than_the_history_is_new_again(tmp_path):
    journal, clock = FakeJournal(), Clock(START)
    service = learned(tmp_path, journal, clock)
    imap(journal, START + 1 * DAY, "mbox1", "203.0.113.10")
    clock.now = START + DAY + 1
    service.read_journal()
    imap(journal, START + 35 * DAY, "mbox1", "198.18.0.10")
    imap(journal, START + 40 * DAY, "mbox1", "203.0.113.10")  # 39 days after the first: not within 30 days
    clock.now = START + 40 * DAY + 1
    service.read_journal()
    assert [e["time"][:10] for e in events(tmp_path)] == ["2027-01-16", "2027-02-24"]


@pytest.mark.parametrize("identifier, message, fields", [
    # a customer's program (uid 2001) that calls itself dovecot or sshd, and a line with no uid at all
    ("dovecot", "imap-login: Logged in: user=<mbox1>, method=PLAIN, rip=203.0.113.10, lip=10.213.1.11, mpid=2",
     {"_UID": 2001, "_SYSTEMD_UNIT": "dovecot.service"}),
    ("sshd", "Accepted password for mbox1 from 203.0.113.10 port 1 ssh2", {"_UID": 2001}),
    ("dovecot", "imap-login: Logged in: user=<mbox1>, method=PLAIN, rip=203.0.113.10, lip=10.213.1.11, mpid=2",
     {"_SYSTEMD_UNIT": "dovecot.service"}),
    # webmail on the host: loopback says nothing of where the user is
    ("dovecot", "imap-login: Logged in: user=<mbox1>, method=PLAIN, rip=127.0.0.1, lip=127.0.0.1, mpid=2", ROOT),
    ("dovecot", "imap-login: Logged in: user=<mbox1>, method=PLAIN, rip=::1, lip=::1, mpid=2", ROOT),
], ids=["customer-as-dovecot", "customer-as-sshd", "no-uid", "loopback", "loopback6"])
def test_a_line_not_from_the_daemon_or_from_loopback_changes_nothing(tmp_path, identifier, message, fields):
    journal, clock = FakeJournal(), Clock(START)
    service = learned(tmp_path, journal, clock)
    journal.add(START + 10, identifier, message, **fields)
    clock.now = START + 20
    assert service.read_journal() == 1
    assert events(tmp_path) == []
    assert set(service.state.facet("logins")["accounts"]["mbox1"]) == {"JP"}


def test_smtp_auth_logins_count_as_the_account_s_too(tmp_path):
    journal, clock = FakeJournal(), Clock(START)
    service = learned(tmp_path, journal, clock)
    journal.add(START + 10, "postfix/submission/smtpd", "4F1C01E0A2: client=unknown[203.0.113.10], "
                "sasl_method=PLAIN, sasl_username=mbox1", **ROOT)
    clock.now = START + 20
    service.read_journal()
    assert [(e["account"], e["service"], e["country"]) for e in events(tmp_path)] == [("mbox1", "smtp", "MD")]


def test_a_restart_repeats_no_alert_and_keeps_the_history(tmp_path):
    journal, clock = FakeJournal(), Clock(START)
    service = learned(tmp_path, journal, clock)
    imap(journal, START + 10, "mbox1", "203.0.113.10")
    clock.now = START + 20
    service.read_journal()
    service.state.save()
    imap(journal, START + 30, "mbox1", "203.0.113.12")
    again = make_service(tmp_path, journal, Runner(), clock)
    assert again.learning_until is None and again.read_journal() == 1
    assert len(events(tmp_path)) == 1


# -- vsftpd's own log file ----------------------------------------------------------------------------------------------
def vsftpd_line(when, user, address):
    stamp = time.strftime("%a %b %e %H:%M:%S %Y", time.gmtime(when))
    return f'{stamp} [pid 285] [{user}] OK LOGIN: Client "::ffff:{address}"\n'


def test_vsftpd_s_log_file_is_tailed_across_restarts_and_rotation(tmp_path):
    log = tmp_path / "vsftpd.log"
    log.write_text(vsftpd_line(START - 5 * DAY, "ftp1", "198.18.0.10")
                   + f'{time.strftime("%a %b %e %H:%M:%S %Y", time.gmtime(START - DAY))} [pid 2] CONNECT: Client "x"\n')
    journal, clock = FakeJournal(), Clock(START)
    journal.add(START - DAY, "sshd-session", "Accepted publickey for root from 198.18.0.10 port 1 ssh2", **ROOT)
    service = make_service(tmp_path, journal, Runner(), clock)  # the first start reads the file: learning
    step(service)
    assert events(tmp_path) == [] and set(service.state.facet("logins")["accounts"]["ftp1"]) == {"JP"}

    with open(log, "a") as stream:
        stream.write(vsftpd_line(START + 10, "ftp1", "203.0.113.10"))
        stream.write(vsftpd_line(START + 11, "ftp1", "198.18.0.10")[:30])  # vsftpd still writing this one
    clock.now = START + 20
    step(service)
    assert [(e["account"], e["service"], e["country"]) for e in events(tmp_path)] == [("ftp1", "ftp", "MD")]
    service.state.save()
    clock.now = START + 25
    step(service)
    assert not service.state.dirty  # nothing new in the file: no state to write

    # logrotate renames the file while the service is stopped: the rest of the old one is read, then the new one
    with open(log, "a") as stream:
        stream.write(vsftpd_line(START + 11, "ftp1", "198.18.0.10")[30:])
        stream.write(vsftpd_line(START + 12, "ftp2", "198.18.0.12"))
    os.rename(log, str(log) + ".1")
    log.write_text(vsftpd_line(START + 13, "ftp2", "2001:db8:203::a").replace("::ffff:", ""))
    clock.now = START + 30
    again = make_service(tmp_path, journal, Runner(), clock)
    step(again)
    places = again.state.facet("logins")["accounts"]
    assert set(places["ftp1"]) == {"JP", "MD"} and set(places["ftp2"]) == {"JP", "MD"}
    said = [(e["account"], e["address"]) for e in events(tmp_path)]
    assert said == [("ftp1", "203.0.113.10"), ("ftp2", "2001:db8:203::a")]


def test_vsftpd_logging_to_syslog_is_read_from_the_journal_only(tmp_path):
    (tmp_path / "vsftpd.conf").write_text("syslog_enable=YES\n")
    journal, clock = FakeJournal(), Clock(START)
    service = learned(tmp_path, journal, clock)
    assert facet_of(service).log_files() == []
    journal.add(START + 10, "vsftpd", '[pid 285] [mbox1] OK LOGIN: Client "::ffff:203.0.113.10"', **ROOT)
    clock.now = START + 20
    service.read_journal()
    assert [(e["account"], e["service"]) for e in events(tmp_path)] == [("mbox1", "ftp")]


# -- locking ----------------------------------------------------------------------------------------------------------
DOVECONF_24 = """# 2.4.1-4 (7d8c0e5759): /etc/dovecot/dovecot.conf
dovecot_config_version = 2.4.0
passdb pam {
}
passdb passwd-file {
  passwd_file_path = USERS
}
userdb passwd {
}
"""


@pytest.fixture
def host_files(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n"
                                         "site1:x:2001:2001::/home/site1:/bin/bash\n")
    (root / "etc" / "shadow").write_text("root:$y$j9T$a:20000:0:99999:7:::\nsite1:$y$j9T$b:20000:0:99999:7:::\n")
    users = tmp_path / "dovecot-users"
    users.write_text("mbox1:{CRYPT}$y$j9T$c:5000:5000::/home/vmail/mbox1::userdb_mail=maildir:~/Maildir\n")
    (tmp_path / "locks").mkdir()
    return root, users


def locking_service(tmp_path, host_files, clock):
    root, users = host_files
    runner = Runner({("doveconf", "-n"): (0, DOVECONF_24.replace("USERS", str(users)), ""),
                     ("doveadm", "kick"): (0, "1 connections kicked\n", "")})  # as doveadm 2.4 says it
    journal = FakeJournal()
    imap(journal, START - DAY, "mbox1", "198.18.0.10")
    imap(journal, START - DAY, "site1", "198.18.0.10")
    journal.add(START - DAY, "sshd-session", "Accepted publickey for root from 198.18.0.10 port 1 ssh2", **ROOT)
    service = make_service(tmp_path, journal, runner, clock, contain="lock")
    facet = facet_of(service)
    facet.locker = watch_logins.Locker(runner, str(tmp_path / "locks"), 1000, root=str(root))
    service.read_journal()
    return service, journal, runner


def test_a_mailbox_logged_into_from_a_new_country_is_locked_the_way_account_cleanup_locks(tmp_path, host_files):
    _root, users = host_files
    journal_clock = Clock(START)
    service, journal, runner = locking_service(tmp_path, host_files, journal_clock)
    imap(journal, START + 10, "mbox1", "203.0.113.10")
    journal_clock.now = START + 20
    service.read_journal()

    event = events(tmp_path)[0]
    assert event["action"]["kind"] == "lock" and not event["action"].get("failed")
    assert "mail account mbox1 is locked" in event["action"]["done"]
    assert "1 open Dovecot session(s) were ended" in event["action"]["done"]
    assert "mode=unlock unlock=mbox1" in event["action"]["undo"] and "web1.example" in event["action"]["undo"]
    assert users.read_text().rstrip().endswith("nologin=y fail=y")
    record = json.loads((tmp_path / "locks" / "locks" / "mail-mbox1.json").read_text())
    assert record["line"].startswith("mbox1:{CRYPT}") and "nologin" not in record["line"]
    assert ["doveadm", "kick", "mbox1"] in [argv for argv, _stdin in runner.calls]


def test_a_system_account_is_locked_with_usermod_and_chage_and_root_never(tmp_path, host_files):
    clock = Clock(START)
    service, journal, runner = locking_service(tmp_path, host_files, clock)
    imap(journal, START + 10, "site1", "203.0.113.10")
    journal.add(START + 20, "sshd-session", "Accepted publickey for root from 203.0.113.10 port 1 ssh2", **ROOT)
    clock.now = START + 30
    service.read_journal()

    site1, root = events(tmp_path)
    assert site1["action"]["done"].startswith("system account site1 is locked")
    argvs = [argv for argv, _stdin in runner.calls]
    assert ["usermod", "--lock", "site1"] in argvs and ["chage", "--expiredate", "0", "site1"] in argvs
    assert root["action"]["failed"] and "never locked" in root["action"]["done"]
    assert not [argv for argv in argvs if argv[-1] == "root" and argv[0] in ("usermod", "chage")]


def test_nothing_is_locked_for_what_the_first_start_reads(tmp_path, host_files):
    _root, users = host_files
    clock = Clock(START)
    before = users.read_text()
    runner = Runner({("doveconf", "-n"): (0, DOVECONF_24.replace("USERS", str(users)), "")})
    journal = FakeJournal()
    imap(journal, START - 2 * DAY, "mbox1", "198.18.0.10")
    imap(journal, START - DAY, "mbox1", "203.0.113.10")
    service = make_service(tmp_path, journal, runner, clock, contain="lock")
    service.read_journal()
    assert events(tmp_path) == [] and users.read_text() == before and runner.calls == []


@pytest.mark.parametrize("settings, message", [
    ({"history_days": 0}, "facets.logins.history_days: expected a whole number from 1 to 3650, got 0"),
    ({"contain": "remove"}, "facets.logins.contain: expected one of none, lock, got 'remove'"),
    ({"country_table": "countries.txt"}, "facets.logins.country_table: expected an absolute path"),
])
def test_bad_settings_are_refused_naming_the_value(settings, message):
    with pytest.raises(watch_config.ConfigError, match=message):
        watch_config.validate({"host": "web1.example", "facets": {"logins": dict(enabled=True, **settings)}},
                              watch_service.FACET_TYPES)


def test_check_refuses_a_damaged_table_and_a_missing_lock_directory(tmp_path):
    table = tmp_path / "countries.txt"
    table.write_text("198.18.0.0 JP\n")
    with pytest.raises(watch_config.ConfigError, match=r"facets.logins.country_table: .*line 1"):
        watch_logins.LoginsFacet.check_host(dict(watch_logins.LoginsFacet.DEFAULTS, country_table=str(table)),
                                            "facets.logins")
    with pytest.raises(watch_config.ConfigError, match="facets.logins.lock_state_dir: /nonexistent does not exist"):
        watch_logins.LoginsFacet.check_host(dict(watch_logins.LoginsFacet.DEFAULTS, contain="lock",
                                                 lock_state_dir="/nonexistent"), "facets.logins")


def test_the_first_start_reads_back_the_history_for_logins_but_each_facet_only_its_own_look_back(tmp_path):
    journal, clock = FakeJournal(), Clock(START)
    journal.add(START - 2 * 3600, "postfix/pickup", "AB000001: uid=2001 from=<site1>")
    journal.add(START - 600, "postfix/pickup", "AB000002: uid=2001 from=<site1>")
    imap(journal, START - 10 * DAY, "mbox1", "198.18.0.10")
    service = make_service(tmp_path, journal, Runner(), clock, mail=True)
    assert service.read_journal() == 3
    mail = service.state.facet("mail")["sources"]["uid:2001"]
    assert sum(mail["minutes"].values()) == 1  # the mail facet looks back one hour
    assert set(service.state.facet("logins")["accounts"]["mbox1"]) == {"JP"}


def test_an_ssh_login_and_a_kept_account_are_said_and_never_locked(tmp_path, host_files):
    clock = Clock(START)
    service, journal, runner = locking_service(tmp_path, host_files, clock)
    facet_of(service).locker.keep = ("mbox1",)
    journal.add(START + 10, "sshd-session", "Accepted password for site1 from 203.0.113.10 port 1 ssh2", **ROOT)
    imap(journal, START + 20, "mbox1", "203.0.113.10")
    clock.now = START + 30
    service.read_journal()

    site1, mbox1 = events(tmp_path)
    assert site1["service"] == "ssh" and site1["action"]["failed"] and "SSH login is said, never locked" in site1["action"]["done"]
    assert mbox1["action"]["failed"] and "mbox1 is never locked (in watch_logins_keep" in mbox1["action"]["done"]
    argvs = [argv for argv, _stdin in runner.calls]
    assert not [argv for argv in argvs if argv[0] in ("usermod", "chage", "doveadm")]
    assert "nologin" not in host_files[1].read_text()
