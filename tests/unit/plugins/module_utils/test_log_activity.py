"""The audit's logins and senders facets read the journal and Exim's main log with the watch's parsers: real lines of
Debian 12 and 13 daemons (the shapes of test_watch_logins.py, test_watch_mail.py and the Exim fixtures), streamed."""

from __future__ import annotations

import calendar
import gzip
import json
import os
import time
from pathlib import Path

import pytest

from ansible_collections.hostguard.hosting.plugins.module_utils import log_activity
from ansible_collections.hostguard.hosting.plugins.module_utils.watch_logins import CountryTable

FIXTURES = Path(__file__).parent / "fixtures" / "watch_exim"
TABLE = CountryTable("198.18.0.0 198.18.0.255 JP\n203.0.113.0 203.0.113.255 MD\n"
                     "2001:db8:203:: 2001:db8:203::ffff:ffff:ffff:ffff MD\n")
START = calendar.timegm((2026, 12, 6, 0, 0, 0))
HOUR = 3600
ROOT, POSTFIX_UID = 0, 101


def entry(when, identifier, message, uid=ROOT):
    """One line of `journalctl --output=json`, as journald writes it (times in microseconds, as strings)."""
    return json.dumps({"__REALTIME_TIMESTAMP": str(int(when * 1e6)), "SYSLOG_IDENTIFIER": identifier,
                       "MESSAGE": message, "_UID": str(uid), "_PID": "42"}) + "\n"


class Journal(object):
    """The injected runner: records the argv and hands the lines out one by one, as a pipe would."""

    def __init__(self, lines):
        self.lines, self.argv, self.read = lines, None, 0

    def __call__(self, argv):
        self.argv = argv
        for line in self.lines:
            self.read += 1
            yield line


# Debian 12: OpenSSH 9.2 (sshd), Dovecot 2.3 ("Login:"), Postfix 3.7; Debian 13: sshd-session, Dovecot 2.4
# ("Logged in:"), Postfix 3.10.
SEIZED_MAILBOX = [
    entry(START, "dovecot", "imap-login: Login: user=<mbox1>, method=PLAIN, rip=198.18.0.10, lip=10.213.1.11, "
                            "mpid=1234, TLS, session=<QoWpZe5hIJXLAHEK>"),
    entry(START + HOUR, "dovecot", "pop3-login: Logged in: user=<mbox1>, method=PLAIN, rip=198.18.0.11, "
                                   "lip=10.213.1.11, mpid=301, TLS, session=<vlEkZu5hNuDLAHEK>"),
    entry(START + 2 * HOUR, "sshd", "Accepted password for site1 from 198.18.0.20 port 50522 ssh2"),
    entry(START + 3 * HOUR, "sshd-session", "Accepted publickey for root from 10.213.1.1 port 43380 ssh2: ED25519 "
                                            "SHA256:w5TXhqLhPfSgmdb1oEVfz7jXoUZuikTkkXSnBpJ9lNs"),
    # the seed: the mailbox used from Moldova for a day, over IMAP and SMTP AUTH
    entry(START + 10 * HOUR, "dovecot", "imap-login: Logged in: user=<mbox1>, method=PLAIN, rip=203.0.113.10, "
                                        "lip=10.213.1.11, mpid=296, TLS, session=<MdgdZu5hJJXLAHEK>"),
    entry(START + 11 * HOUR, "postfix/submission/smtpd", "4F1C01E0A2: client=unknown[203.0.113.10], sasl_method=PLAIN, "
                                                         "sasl_username=mbox1", uid=POSTFIX_UID),
    entry(START + 12 * HOUR, "dovecot", "imap-login: Logged in: user=<mbox1>, method=PLAIN, rip=203.0.113.12, "
                                        "lip=10.213.1.11, mpid=297, TLS, session=<MdgdZu5hJJXLAHEL>"),
    # webmail on the host, and a customer's program calling itself sshd: neither is a login from somewhere
    entry(START + 13 * HOUR, "dovecot", "imap-login: Logged in: user=<mbox1>, method=PLAIN, rip=127.0.0.1, "
                                        "lip=127.0.0.1, mpid=2"),
    entry(START + 14 * HOUR, "sshd", "Accepted password for mbox1 from 203.0.113.99 port 1 ssh2", uid=2001),
]


@pytest.fixture(autouse=True)
def postfix_is_uid_101(monkeypatch):
    # The watch's sources trust root and, for smtpd, the postfix user as this machine's passwd names it.
    from ansible_collections.hostguard.hosting.plugins.module_utils import watch_logins
    real = watch_logins._uids

    def uids(names):
        return real(names) | ({POSTFIX_UID} if "postfix" in names else set())
    monkeypatch.setattr(watch_logins, "_uids", uids)


def logins(lines=None, countries=TABLE, expected=(), tmp_path=None):
    journal = Journal(SEIZED_MAILBOX if lines is None else lines)
    conf = str(tmp_path / "vsftpd.conf") if tmp_path else "/nonexistent/vsftpd.conf"
    return log_activity.read_logins(journal, START - HOUR, countries, expected, conf), journal


def places(result, account):
    (found,) = [item for item in result["accounts"] if item["account"] == account]
    return {(place["service"], place["place"]): place for place in found["places"]}


def test_the_journal_is_asked_for_the_window_and_the_login_daemons_only():
    _result, journal = logins()
    assert journal.argv[:6] == ["journalctl", "--no-pager", "--quiet", "--output=json", "--since", "@%d" % (START - HOUR)]
    identifiers = {journal.argv[i + 1] for i, word in enumerate(journal.argv) if word == "--identifier"}
    assert {"sshd", "sshd-session", "dovecot", "postfix/smtpd", "postfix/submission/smtpd", "vsftpd"} <= identifiers


def test_logins_are_counted_per_account_service_and_country_with_first_and_last_time():
    result, _journal = logins()
    mbox1 = places(result, "mbox1")
    assert set(mbox1) == {("imap", "JP"), ("pop3", "JP"), ("imap", "MD"), ("smtp", "MD")}
    abroad = mbox1[("imap", "MD")]
    assert (abroad["count"], abroad["first"], abroad["last"]) == (2, "2026-12-06T10:00:00Z", "2026-12-06T12:00:00Z")
    assert abroad["addresses"] == ["203.0.113.10", "203.0.113.12"] and abroad["network"] == "203.0.113.0/24"
    # the lab network has no country: its /24 stands in
    assert places(result, "root")[("ssh", "network 10.213.1.0/24")]["country"] is None
    # loopback is skipped, the impostor's line is counted as untrusted, not as a login
    assert result["logins"] == 7 and result["untrusted_lines"] == 1
    assert "203.0.113.99" not in json.dumps(result)


def test_a_country_new_for_the_account_is_unusual_and_its_usual_one_is_not():
    result, _journal = logins()
    unusual = {(place["account"], place["service"], place["place"]): place["unusual"] for place in result["unusual"]}
    assert unusual == {("mbox1", "imap", "MD"): "a new place for the account (it logged in from JP before)",
                       ("mbox1", "smtp", "MD"): "a new place for the account (it logged in from JP before)"}
    (mbox1,) = [item for item in result["accounts"] if item["account"] == "mbox1"]
    assert mbox1["usual"] == ["JP"] and mbox1["logins"] == 5


def test_with_expected_countries_a_login_from_elsewhere_is_unusual_even_as_the_first():
    lines = [entry(START, "dovecot", "imap-login: Logged in: user=<info@example.jp>, method=PLAIN, rip=2001:db8:203::a, "
                                     "lip=fdbb:6a7:1::b, mpid=310, TLS, session=<abc>"),
             entry(START + HOUR, "dovecot", "imap-login: Logged in: user=<info@example.jp>, method=PLAIN, "
                                            "rip=198.18.0.10, lip=10.213.1.11, mpid=311, TLS, session=<abd>")]
    result, _journal = logins(lines, expected=["JP"])
    assert [(place["place"], place["unusual"]) for place in result["unusual"]] == [
        ("MD", "outside the expected countries (JP)")]
    # without the list the first place is the account's usual one
    result, _journal = logins(lines)
    assert [place["place"] for place in result["unusual"]] == ["JP"]


def test_without_country_data_places_are_networks():
    result, _journal = logins(countries=CountryTable(""))
    assert result["country_data"] is False
    assert {place["place"] for place in result["unusual"]} == {"network 203.0.113.0/24"}


def test_an_account_seen_only_from_where_no_other_account_came_is_unusual():
    lines = [entry(START, "dovecot", "imap-login: Login: user=<a>, method=PLAIN, rip=198.18.0.10, lip=10.213.1.11, mpid=1"),
             entry(START, "dovecot", "imap-login: Login: user=<b>, method=PLAIN, rip=198.18.0.11, lip=10.213.1.11, mpid=2"),
             entry(START, "dovecot", "imap-login: Login: user=<dormant>, method=PLAIN, rip=203.0.113.5, "
                                     "lip=10.213.1.11, mpid=3")]
    result, _journal = logins(lines)
    assert [(place["account"], place["unusual"]) for place in result["unusual"]] == [
        ("dormant", "no other account of the host logged in from that country")]
    # an account that only ever logs in from a network without a country (the admins' own) is not judged by it
    assert "root" not in {place["account"] for place in logins()[0]["unusual"]}


def test_vsftpd_s_own_log_and_its_rotated_copy_are_read_within_the_window(tmp_path):
    log = tmp_path / "vsftpd.log"
    (tmp_path / "vsftpd.conf").write_text(f"listen=YES\nvsftpd_log_file={log}\n")
    (tmp_path / "vsftpd.log.1").write_text(
        'Sat Dec  5 20:00:00 2026 [pid 280] [mbox1] OK LOGIN: Client "::ffff:198.18.0.10"\n'  # before the window
        'Sun Dec  6 01:00:00 2026 [pid 281] [mbox1] OK LOGIN: Client "::ffff:198.18.0.10"\n')
    log.write_text('Sun Dec  6 03:06:36 2026 [pid 285] [mbox1] OK LOGIN: Client "::ffff:203.0.113.10"\n'
                   'Sun Dec  6 03:06:37 2026 [pid 285] [mbox1] FAIL LOGIN: Client "::ffff:203.0.113.11"\n')
    result, _journal = logins([], tmp_path=tmp_path)
    ftp = places(result, "mbox1")
    assert {key: place["count"] for key, place in ftp.items()} == {("ftp", "JP"): 1, ("ftp", "MD"): 1}
    assert ftp[("ftp", "MD")]["unusual"] and ftp[("ftp", "MD")]["addresses"] == ["203.0.113.10"]


def test_the_journal_is_read_as_a_stream_keeping_counts_not_lines():
    many = (entry(START + number, "dovecot", "imap-login: Logged in: user=<mbox1>, method=PLAIN, "
                                             "rip=198.18.0.%d, lip=10.213.1.11, mpid=1" % (number % 200))
            for number in range(20000))
    result, journal = logins(many)
    assert journal.read == 20000 and result["logins"] == 20000
    (place,) = result["accounts"][0]["places"]
    assert place["count"] == 20000 and len(place["addresses"]) == log_activity.MAX_ADDRESSES


def test_expected_countries_must_be_country_codes():
    assert log_activity.check_countries(["jp", "MD"]) == ["JP", "MD"]
    with pytest.raises(log_activity.LogActivityError, match="'Japan'"):
        log_activity.check_countries(["JP", "Japan"])


# -- senders ----------------------------------------------------------------------------------------------------------
def postfix_message(when, queue_id, uid=2001, script=None, to=("buyer@victims.example",), retried=False):
    lines = [entry(when, "postfix/pickup", f"{queue_id}: uid={uid} from=<site{uid}>", uid=POSTFIX_UID)]
    if script:
        lines.append(entry(when, "postfix/cleanup", f"{queue_id}: info: header X-PHP-Originating-Script: {uid}:{script} "
                                                    f"from local; from=<site{uid}@mail1.example>", uid=POSTFIX_UID))
    for address in to:
        lines.append(entry(when, "postfix/smtp", f"{queue_id}: to=<{address}>, relay=none, delay=0.1, "
                                                 "status=deferred (connect to victims.example: Network is unreachable)",
                           uid=POSTFIX_UID))
        if retried:
            lines.append(entry(when + 600, "postfix/smtp", f"{queue_id}: to=<{address}>, relay=none, delay=600, "
                                                           "status=deferred (Network is unreachable)", uid=POSTFIX_UID))
    return lines


def test_postfix_senders_per_uid_script_and_sasl_user_with_the_busiest_hour_and_domains():
    lines = []
    for number in range(30):  # the seed: a contact form pumping mail abroad, 30 messages in one hour
        lines += postfix_message(START + 10 * HOUR + number, f"AB{number:06d}", script="contact.php",
                                 to=(f"r{number}@victims.example", f"r{number}@mail.example.ru"), retried=True)
    for number in range(3):  # an ordinary form, one message an hour
        lines += postfix_message(START + number * HOUR, f"CD{number:06d}", uid=2002, script="form.php",
                                 to=("owner@site2.example",))
    lines.append(entry(START + 5 * HOUR, "postfix/submission/smtpd", "9B2D41E0B7: client=mail.example.md"
                                                                     "[203.0.113.11]:42311, sasl_method=LOGIN, "
                                                                     "sasl_username=info@example.jp", uid=POSTFIX_UID))
    lines.append(entry(START + 5 * HOUR, "postfix/smtp", "9B2D41E0B7: to=<friend@example.org>, relay=mx.example.org"
                                                         "[192.0.2.25]:25, delay=1, status=sent (250 2.0.0 Ok)",
                       uid=POSTFIX_UID))
    lines.append(entry(START + 5 * HOUR, "postfix/qmgr", "9B2D41E0B7: removed", uid=POSTFIX_UID))
    journal = Journal(lines)
    result = log_activity.read_senders(journal, START - HOUR, "postfix")
    assert "--identifier" in journal.argv and "postfix/pickup" in journal.argv and "postfix/cleanup" in journal.argv
    assert (result["mta"], result["messages"], result["sources"]) == ("postfix", 34, 3)
    busiest, form, mailbox = result["senders"]
    assert (busiest["source"], busiest["kind"], busiest["uid"], busiest["messages"]) == ("uid:2001", "uid", 2001, 30)
    assert busiest["script"] == "contact.php" and busiest["scripts"] == ["contact.php"]
    assert busiest["peak_hour"] == {"start": "2026-12-06T10:00:00Z", "messages": 30}
    # each recipient once, though its delivery was tried twice
    assert busiest["top_recipient_domains"] == {"mail.example.ru": 30, "victims.example": 30}
    assert (form["source"], form["peak_hour"]["messages"], form["script"]) == ("uid:2002", 1, "form.php")
    assert (mailbox["kind"], mailbox["sasl_user"], mailbox["top_recipient_domains"]) == (
        "sasl", "info@example.jp", {"example.org": 1})
    assert log_activity.read_senders(Journal(lines), START - HOUR, "postfix", top=1)["senders"] == [busiest]


def local(text):
    return time.mktime(time.strptime(text, "%Y-%m-%d %H:%M:%S"))


def test_exim_s_mainlog_and_its_rotated_copies_are_read_within_the_window(tmp_path):
    mainlog = tmp_path / "mainlog"
    lines = (FIXTURES / "mainlog-4.98").read_text().splitlines(keepends=True)
    # the fixture's day in the rotated copies, a later day in the live log
    with gzip.open(tmp_path / "mainlog.2.gz", "wt") as stream:
        stream.write("2026-11-01 03:00:00 [100] 1xa3Dw-000000000AA-06Ag <= site9@ex13.lab.example U=site9 P=local S=4\n")
    os.utime(tmp_path / "mainlog.2.gz", (local("2026-11-01 03:00:00"),) * 2)
    (tmp_path / "mainlog.1").write_text("".join(lines))
    mainlog.write_text("".join(line.replace("2026-12-06 03:4", "2026-12-07 05:4") for line in lines))
    result = log_activity.read_senders(None, local("2026-12-06 00:00:00"), "exim", exim_mainlog=str(mainlog))
    by_source = {sender["source"]: sender for sender in result["senders"]}
    assert "user:site9" not in by_source  # the rotated copy last written before the window is not read
    arrivals = sum(1 for line in lines if " <= " in line and "U=site1 " in line)
    site1 = by_source.get("user:site1") or by_source["uid:2001"]
    assert site1["messages"] == 2 * arrivals
    assert site1["cwd"] == "/home/site1/public_html" and site1["script"] == "contact.php"
    assert site1["top_recipient_domains"]["victims.example"] >= 2
    # within the window only: from the later day on, half of them
    later = log_activity.read_senders(None, local("2026-12-07 00:00:00"), "exim", exim_mainlog=str(mainlog))
    assert {s["source"]: s["messages"] for s in later["senders"]}[site1["source"]] == arrivals


def test_a_command_that_fails_is_an_error_naming_it():
    with pytest.raises(log_activity.LogActivityError, match="false"):
        list(log_activity.stream_command(["false"]))
    with pytest.raises(log_activity.LogActivityError, match="cannot run"):
        list(log_activity.stream_command(["/nonexistent/journalctl"]))
    assert list(log_activity.stream_command(["printf", "a\\nb\\n"])) == ["a\n", "b\n"]
