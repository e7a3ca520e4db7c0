# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostguard-watch's logins facet: a successful login to an account from somewhere new, and locking it.

The login lines it reads, each from the daemon's own process only (journald's
``_UID``, which no logging process can choose: a customer's program may call
itself sshd or dovecot and log "Accepted ... for someone"):

- sshd (Debian 12) and sshd-session (Debian 13): ``Accepted METHOD for USER from ADDR port N``, as root;
- Dovecot 2.3 (Debian 12) ``imap-login: Login: user=<U>, ..., rip=ADDR`` and 2.4 (Debian 13)
  ``imap-login: Logged in: user=<U>, ..., rip=ADDR``, pop3 and submission alike, from Dovecot's log process
  (root; the IMAP processes that run as the mailbox's owner share its unit);
- Postfix smtpd's SMTP AUTH: ``QUEUEID: client=NAME[ADDR], sasl_method=M, sasl_username=U``, as postfix or root;
- vsftpd: ``[pid N] [USER] OK LOGIN: Client "ADDR"`` in its own log file (vsftpd_log_file, which the
  service follows for the facet, across logrotate's rename), or in the journal where vsftpd.conf says syslog_enable.

Each address's country comes from a table built on the controller from
``watch_country_cidrs`` (one ``FIRST LAST CC`` range a line, sorted, looked up
by bisect); without country data its network (/24, or /48 for IPv6) stands in.
An account that logs in from a country (or network) it has not logged in from
in ``history_days`` is said (``login_new_country``). An account with no history
in that window is said only for a place no account of the host came from: a
new customer logging in from home is not news, a dormant mailbox used from
abroad is. Loopback logins (webmail on the host) have no place and are skipped.

Locking (``contain: lock``) is account_cleanup's lock, with its record under
account_cleanup's state directory, so that ``account_cleanup`` with
``mode=unlock`` undoes it exactly; Dovecot's open sessions of the account are
ended (``doveadm kick``). An SSH login is said but never locked (SSH is how
administrators get in), nor are the accounts in ``keep`` (the role adds the
account Ansible connects as), root, or system accounts (uid below ``min_uid``):
the alert says why.
"""

from __future__ import annotations

import bisect
import calendar
import ipaddress
import os
import pwd
import re
import time

from ansible_collections.hostguard.hosting.plugins.module_utils import account_cleanup, watch_config
from ansible_collections.hostguard.hosting.plugins.module_utils.watch_facet import Facet

ADDRESS = r"(?P<address>[0-9A-Fa-f:.]+)"
SSHD_RE = re.compile(r"^Accepted \S+ for (?P<user>\S+) from " + ADDRESS + r" port \d+")
DOVECOT_RE = re.compile(r"^(?P<protocol>imap|pop3|submission)-login: (?:Login|Logged in): user=<(?P<user>[^>]*)>, "
                        r"(?:.*?, )?rip=" + ADDRESS + r"[,\s]")
SMTPD_RE = re.compile(r"^[0-9A-Za-z]+: client=[^\[\s]*\[" + ADDRESS + r"\](?::\d+)?, (?:.*?, )?"
                      r"sasl_username=(?P<user>[^,\s]+)")
VSFTPD_RE = re.compile(r"\[pid \d+\] \[(?P<user>[^\]]+)\] OK LOGIN: Client \"" + ADDRESS + "\"")
VSFTPD_TIME_RE = re.compile(r"^(?P<when>\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}) ")

RUNBOOK = "leaked-password.md"
MAIL_SERVICES = ("imap", "pop3", "submission", "smtp")
MAX_PLACES = 50


class CountryError(ValueError):
    """A country table that cannot be used; the message names the value."""


# -- where an address is ---------------------------------------------------------------------------------------------
def build_country_table(countries):
    """{code: [ip_network]} (firewall.load_countries) -> the table's text: one "FIRST LAST CC" range a line, adjacent
    and overlapping ranges of a country merged, sorted. Overlapping ranges of two countries are refused, naming both:
    an address must have one country."""
    ranges = []
    for code, networks in countries.items():
        for network in networks:
            ranges.append((network.version, int(network.network_address), int(network.broadcast_address), code,
                           str(network)))
    ranges.sort()
    merged = []
    for version, first, last, code, text in ranges:
        if merged and merged[-1][0] == version and first <= merged[-1][2] + 1:
            previous = merged[-1]
            if first <= previous[2] and previous[3] != code:
                raise CountryError(f"watch_country_cidrs: {text} ({code}) overlaps {previous[4]} ({previous[3]})")
            if previous[3] == code:
                merged[-1] = (version, previous[1], max(previous[2], last), code, previous[4])
                continue
        merged.append((version, first, last, code, text))
    lines = []
    for version, first, last, code, _text in merged:
        make = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
        lines.append(f"{make(first)} {make(last)} {code}\n")
    return "".join(lines)


class CountryTable(object):
    """The table's ranges per address family, looked up by bisect."""

    def __init__(self, text=""):
        self.starts = {4: [], 6: []}
        self.ends = {4: [], 6: []}
        self.codes = {4: [], 6: []}
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip() or line.startswith("#"):
                continue
            try:
                first, last, code = line.split()
                first, last = ipaddress.ip_address(first), ipaddress.ip_address(last)
            except ValueError:
                raise CountryError(f"line {number}: expected 'FIRST LAST CC', got {line!r}") from None
            if first.version != last.version or int(last) < int(first) or not re.match(r"^[A-Z]{2}$", code):
                raise CountryError(f"line {number}: {line!r} is not a range of one family and a country code")
            starts = self.starts[first.version]
            if starts and int(first) <= self.ends[first.version][-1]:
                raise CountryError(f"line {number}: {line!r} is not after the line before it")
            starts.append(int(first))
            self.ends[first.version].append(int(last))
            self.codes[first.version].append(code)

    @classmethod
    def load(cls, path):
        if not path:
            return cls()
        try:
            with open(path, encoding="ascii") as stream:
                return cls(stream.read())
        except (OSError, UnicodeDecodeError) as exc:
            raise CountryError(f"{path}: cannot be read: {exc}") from None
        except CountryError as exc:
            raise CountryError(f"{path}: {exc}") from None

    def __len__(self):
        return len(self.starts[4]) + len(self.starts[6])

    def country(self, address):
        """The country code of an ip_address, or None."""
        number, version = int(address), address.version
        index = bisect.bisect_right(self.starts[version], number) - 1
        if index >= 0 and number <= self.ends[version][index]:
            return self.codes[version][index]
        return None


def normalized(text):
    """An ip_address from a log's address text (IPv4-mapped IPv6, as vsftpd writes it, as IPv4), or None."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address


def network_of(address):
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def locate(countries, text):
    """(address, place, country, network) of a login's address text: the place is the country code of the
    CountryTable `countries`, or without one the address's network. None for loopback and unspecified addresses:
    webmail on the host logs in from 127.0.0.1, which says nothing of where the user is."""
    address = normalized(text)
    if address is None or address.is_loopback or address.is_unspecified:
        return None
    country, network = countries.country(address), network_of(address)
    return str(address), (country or f"network {network}"), country, network


# -- the daemons' login lines -------------------------------------------------------------------------------------------
class Login(object):
    __slots__ = ("account", "service", "address")

    def __init__(self, account, service, address):
        self.account, self.service, self.address = account, service, address

    def __eq__(self, other):
        return (self.account, self.service, self.address) == (other.account, other.service, other.address)

    def __repr__(self):
        return f"Login({self.account!r}, {self.service!r}, {self.address!r})"


def _uids(names):
    uids = set()
    for name in names:
        try:
            uids.add(pwd.getpwnam(name).pw_uid)
        except KeyError:
            pass
    return uids


class _Source(object):
    """A daemon's login lines in the journal: its syslog identifiers, the users it logs as, and its parser."""

    IDENTIFIERS = ()
    USERS = ("root",)

    def __init__(self):
        self.uids = _uids(self.USERS) | {0}

    def trusted(self, line):
        try:
            return line.uid is not None and int(line.uid) in self.uids
        except (TypeError, ValueError):
            return False


class Sshd(_Source):
    IDENTIFIERS = ("sshd", "sshd-session")

    @staticmethod
    def parse(message):
        match = SSHD_RE.match(message)
        return Login(match.group("user"), "ssh", match.group("address")) if match else None


class Dovecot(_Source):
    IDENTIFIERS = ("dovecot",)

    @staticmethod
    def parse(message):
        match = DOVECOT_RE.match(message)
        return Login(match.group("user"), match.group("protocol"), match.group("address")) if match else None


class PostfixSmtpd(_Source):
    IDENTIFIERS = ("postfix/smtpd", "postfix/submission/smtpd", "postfix/smtps/smtpd")
    USERS = ("root", "postfix")

    @staticmethod
    def parse(message):
        match = SMTPD_RE.match(message)
        return Login(match.group("user"), "smtp", match.group("address")) if match else None


class Vsftpd(_Source):
    """vsftpd with syslog_enable=YES; its own log file is read by VsftpdLog."""

    IDENTIFIERS = ("vsftpd",)

    @staticmethod
    def parse(message):
        match = VSFTPD_RE.search(message)
        return Login(match.group("user"), "ftp", match.group("address")) if match else None


JOURNAL_SOURCES = (Sshd, Dovecot, PostfixSmtpd, Vsftpd)


def journal_login(by_identifier, line):
    """(Login, whether its daemon's own uid logged it) of a journal line, or None where it is no login line.
    `by_identifier`: syslog identifier -> an instance of one of JOURNAL_SOURCES."""
    source = by_identifier.get(line.identifier)
    login = source.parse(line.message) if source is not None else None
    if login is None:
        return None
    return login, source.trusted(line)


def parse_vsftpd_line(line, localtime):
    """(time, Login) of a line of vsftpd's own log, or None. use_localtime=NO (vsftpd's default) writes GMT."""
    match, stamp = VSFTPD_RE.search(line), VSFTPD_TIME_RE.match(line)
    if not match or not stamp:
        return None
    try:
        parsed = time.strptime(stamp.group("when"), "%a %b %d %H:%M:%S %Y")
    except ValueError:
        return None
    when = time.mktime(parsed) if localtime else calendar.timegm(parsed)
    return float(when), Login(match.group("user"), "ftp", match.group("address"))


# -- locking ------------------------------------------------------------------------------------------------------------
class Locker(object):
    """account_cleanup's lock of the account a login used, recorded where account_cleanup's unlock finds it."""

    def __init__(self, run, state_dir, min_uid, keep=(), root="/"):
        self.run, self.min_uid, self.keep = run, min_uid, tuple(keep)
        self.paths = account_cleanup.Paths(root=root, state_dir=state_dir)

    def _command(self, argv):
        return self.run(list(argv))

    def lock(self, name, service, host_name):
        """The action: what was done (or why nothing was) and how to undo it."""
        undo = f"ansible {host_name} -m hostguard.hosting.account_cleanup -a 'mode=unlock unlock={name}'"
        # SSH is how administrators reach the host, wherever they travel: said, never locked
        if service == "ssh":
            return {"kind": "lock", "failed": True, "account": name, "undo": "nothing to undo",
                    "done": "nothing: an SSH login is said, never locked (the way administrators get in)"}
        if name in self.keep:
            return {"kind": "lock", "failed": True, "account": name, "undo": "nothing to undo",
                    "done": f"nothing: {name} is never locked (in watch_logins_keep, or the account Ansible connects as)"}
        host = account_cleanup.Host(self.paths, self._command)
        rc, doveconf, _err = self._command(["doveconf", "-n"])
        accounts = account_cleanup.collect(self.paths, min_uid=self.min_uid, doveconf_text=doveconf if rc == 0 else None,
                                           userdb_dump=lambda path: host.command("db_dump", "-p", path),
                                           doveconf_setting=host.doveconf_setting)
        account = self.choose([a for a in accounts if a["name"] == name], service)
        if account is None:
            return {"kind": "lock", "failed": True, "account": name, "undo": "nothing to undo",
                    "done": f"nothing: no account {name} that {service} logs in to was found"}
        why = account_cleanup.protection(account, (), ())
        if why:
            return {"kind": "lock", "failed": True, "account": name, "undo": "nothing to undo",
                    "done": f"nothing: {account['kind']} account {name} is never locked ({why})"}
        if account["locked"]:
            done = f"{account['kind']} account {name} was already locked"
        else:
            try:
                host.lock(account, account["source"])
            except (account_cleanup.AccountCleanupError, OSError) as exc:
                return {"kind": "lock", "failed": True, "account": name, "undo": "nothing to undo",
                        "done": f"nothing: locking {account['kind']} account {name} failed ({exc})"}
            done = f"{account['kind']} account {name} is locked ({self.how(account)})"
        if service in MAIL_SERVICES or "mail" in account["services"]:
            rc, out, err = self._command(["doveadm", "kick", name])
            kicked = re.search(r"(\d+) connections? kicked", out + err)
            if rc == 0 and kicked and int(kicked.group(1)):
                done += f"; its {kicked.group(1)} open Dovecot session(s) were ended (doveadm kick)"
        return {"kind": "lock", "account": name, "account_kind": account["kind"], "done": done, "undo": undo}

    @staticmethod
    def choose(accounts, service):
        """The account the login used: Dovecot's own mailbox for mail, the FTP user for FTP, else the system account
        (for mail and FTP, only where that service logs system users in)."""
        reach = "mail" if service in MAIL_SERVICES else service
        for account in accounts:
            if account["kind"] == reach and reach in ("mail", "ftp"):
                return account
        for account in accounts:
            if account["kind"] == "system" and reach in account["services"]:
                return account
        return None

    @staticmethod
    def how(account):
        if account["kind"] == "system":
            return "password locked and account expired: usermod --lock, chage --expiredate 0"
        if account["kind"] == "mail":
            return f"nologin=y fail=y on its line in {account['source']}"
        return f"taken out of {account['source']}"


# -- the facet -----------------------------------------------------------------------------------------------------------
class LoginsFacet(Facet):
    NAME = "logins"
    LOOKBACK = 30 * 86400
    INTERVAL = 5
    DEFAULTS = {
        "history_days": 30,
        "country_table": None,
        "contain": "none",
        "vsftpd_conf": "/etc/vsftpd.conf",
        "lock_state_dir": "/var/lib/hostguard/account_cleanup",
        "min_uid": 1000,
        "keep": [],
    }

    @staticmethod
    def validate(settings, where):
        watch_config.check_integer(settings["history_days"], f"{where}.history_days", 1, 3650)
        if settings["country_table"] is not None:
            watch_config.check_absolute_path(settings["country_table"], f"{where}.country_table")
        watch_config.check_choice(settings["contain"], f"{where}.contain", ("none", "lock"))
        watch_config.check_absolute_path(settings["vsftpd_conf"], f"{where}.vsftpd_conf")
        watch_config.check_absolute_path(settings["lock_state_dir"], f"{where}.lock_state_dir")
        watch_config.check_integer(settings["min_uid"], f"{where}.min_uid", 1)
        if not isinstance(settings["keep"], list) or not all(isinstance(name, str) for name in settings["keep"]):
            raise watch_config.ConfigError(f"{where}.keep: expected a list of account names, got {settings['keep']!r}")

    @staticmethod
    def check_host(settings, where):
        try:
            CountryTable.load(settings["country_table"])
        except CountryError as exc:
            raise watch_config.ConfigError(f"{where}.country_table: {exc}") from None
        if settings["contain"] == "lock" and not os.path.isdir(settings["lock_state_dir"]):
            raise watch_config.ConfigError(f"{where}.lock_state_dir: {settings['lock_state_dir']} does not exist")

    def __init__(self, context):
        super(LoginsFacet, self).__init__(context)
        self.history = self.settings["history_days"] * 86400
        self.LOOKBACK = self.history  # the first start learns the whole window from the journal
        self.countries = CountryTable.load(self.settings["country_table"])
        self.sources = [source() for source in JOURNAL_SOURCES]
        self.by_identifier = {identifier: source for source in self.sources for identifier in source.IDENTIFIERS}
        self.locker = Locker(context.run, self.settings["lock_state_dir"], self.settings["min_uid"], self.settings["keep"])
        # vsftpd logs to its own file unless vsftpd.conf says syslog_enable; the service follows that file
        text = account_cleanup.read_text(self.settings["vsftpd_conf"])
        vsftpd = account_cleanup.parse_vsftpd_conf(text)
        self.vsftpd_localtime = vsftpd["use_localtime"]
        syslog = vsftpd.get("syslog_enable", "NO").upper() == "YES"
        self.vsftpd_log = vsftpd["vsftpd_log_file"] if text is not None and not syslog else None
        self.next_prune = 0

    def identifiers(self):
        return list(self.by_identifier)

    def log_files(self):
        return [self.vsftpd_log] if self.vsftpd_log else []

    def start(self):
        # Here, not in __init__: the service loads the saved state after making its facets.
        self.context.state.setdefault("accounts", {})
        self.context.state.setdefault("places", {})

    def on_line(self, line):
        if line.identifier == self.vsftpd_log:
            parsed = parse_vsftpd_line(line.message, self.vsftpd_localtime)
            if parsed and parsed[0] >= self.context.service.clock() - self.history:
                self.login(parsed[1], parsed[0])
            return
        parsed = journal_login(self.by_identifier, line)
        if parsed is None:
            return
        login, trusted = parsed
        if not trusted:
            self.context.log(f"logins: ignored a login line from uid {line.uid} ({line.unit}), not "
                             f"{line.identifier}'s own: {line.message!r}")
            return
        self.login(login, line.time)

    def tick(self, now):
        if now >= self.next_prune:
            self.next_prune = now + 3600
            self.prune(now)

    # -- judging ------------------------------------------------------------------------------------------------------
    def login(self, login, when):
        located = locate(self.countries, login.address)
        if located is None:
            return
        address, place, country, network = located
        state = self.context.state
        horizon = when - self.history
        known = {name: seen for name, seen in state["accounts"].get(login.account, {}).items() if seen >= horizon}
        host_known = {name for name, seen in state["places"].items() if seen >= horizon}
        new = place not in known and bool(known or (host_known and place not in host_known))
        places = state["accounts"].setdefault(login.account, {})
        places[place] = max(when, places.get(place, 0))
        if len(places) > MAX_PLACES:
            del places[min(places, key=places.get)]
        state["places"][place] = max(when, state["places"].get(place, 0))
        self.context.changed()
        if new:
            self.alert(login, address, place, country, network, sorted(known), when)

    def alert(self, login, address, place, country, network, before, when):
        days = self.settings["history_days"]
        where = country or f"network {network} (no country data)"
        summary = (f"{login.account} logged in over {login.service.upper()} from {address} ({where}), "
                   f"where it has not logged in from in {days} days"
                   + (f" (before: {', '.join(before)})" if before else " (no login of it in that time)"))
        evidence = {"account": login.account, "service": login.service, "address": address, "country": country,
                    "network": network, "known_places": before}
        action = None
        if self.settings["contain"] == "lock" and self.context.service.learning_until is None:
            action = self.locker.lock(login.account, login.service, self.context.host)
            if action.get("failed"):
                self.context.log(f"logins: {action['done']}")
        self.context.emit("login_new_country", f"{login.account} {place}", summary, severity="critical",
                          runbook=RUNBOOK, evidence=evidence, action=action, when=when)

    def prune(self, now):
        horizon = now - self.history
        state = self.context.state
        for name in list(state["accounts"]):
            places = state["accounts"][name]
            for place in [p for p, seen in places.items() if seen < horizon]:
                del places[place]
            if not places:
                del state["accounts"][name]
        for place in [p for p, seen in state["places"].items() if seen < horizon]:
            del state["places"][place]
        self.context.changed()
