# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who logged in from where, and who sent how much mail, over the last days of the journal and the mail log.

The audit's view of what hostguard-watch follows live, read with the watch's own parsers
(plugins/module_utils/watch_logins.py and watch_mail.py), so that the audit and the watch read a line alike:

- logins: sshd/sshd-session, Dovecot 2.3/2.4, Postfix's SMTP AUTH and vsftpd, each line trusted only from the
  daemon's own uid (journald's ``_UID``); per account, service and place (the country from the watch's country
  table, else the address's /24 or /48) the number of logins and the first and last one. A place is unusual for
  its account when it is outside the expected countries the inventory names, or, without them, when the account
  had logged in from elsewhere before, or came only from a country no other account of the host came from.
- senders: Postfix's pickup uid, the X-PHP-Originating-Script header (logged through the watch's INFO rule) and
  SMTP AUTH user from the journal; Exim's ``U=``/``A=`` and the sending process's working directory from its
  main log and the rotated logs of the window. Per source the messages, the busiest hour and the top recipient
  domains.

Both read as a stream (``journalctl --output=json`` through one injected runner, the log files line by line) and
keep only counts per account and place or per source, so a big log costs time, not memory.
"""

from __future__ import annotations

import datetime
import glob
import gzip
import json
import os
import re
import subprocess
import tempfile

from ansible_collections.hostguard.hosting.plugins.module_utils import account_cleanup, watch_logins, watch_mail
from ansible_collections.hostguard.hosting.plugins.module_utils.watch_service import LogLine, line_time

MAX_ADDRESSES = 5  # addresses kept per account, service and place
MAX_QUEUE_IDS = 50000  # messages whose recipients are still being counted
MAX_RECIPIENTS = 100  # recipients remembered per message, so that a retried delivery is not counted twice
MAX_NAMES = 200  # recipient domains and scripts kept per source (the busiest, once over)
TOP_DOMAINS = 5
TOP_SCRIPTS = 3


class LogActivityError(ValueError):
    """A setting or a log that cannot be used; the message names it."""


def iso(when):
    return datetime.datetime.fromtimestamp(when, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- reading ----------------------------------------------------------------------------------------------------------
def journal_argv(since, identifiers):
    """journalctl's argv for the lines of `identifiers` since the epoch time `since`, one JSON object a line."""
    argv = ["journalctl", "--no-pager", "--quiet", "--output=json", "--since", "@%d" % int(since)]
    for identifier in sorted(set(identifiers)):
        argv += ["--identifier", identifier]
    return argv


def stream_command(argv):
    """The lines a command prints, as it prints them (a big journal never sits in memory); LogActivityError when it
    cannot run or fails. The C locale: the daemons' lines are read as they are, but journalctl's own words too."""
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as errors:
        try:
            process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errors, text=True, errors="replace",
                                       env=dict(os.environ, LC_ALL="C", LANG="C"))
        except OSError as exc:
            raise LogActivityError(f"{argv[0]} cannot run: {exc}") from None
        with process:
            yield from process.stdout
        if process.returncode != 0:
            errors.seek(0)
            raise LogActivityError(f"{' '.join(argv)} failed (rc {process.returncode}): {errors.read(2000).strip()}")


def journal_lines(stream):
    """LogLines of `journalctl --output=json` text lines (a message journald kept as bytes is decoded)."""
    for text in stream:
        try:
            entry = json.loads(text)
        except ValueError:
            continue
        message = entry.get("MESSAGE")
        if isinstance(message, list):  # journald's JSON for a message that is not UTF-8
            message = bytes(byte for byte in message if isinstance(byte, int) and 0 <= byte < 256).decode(
                "utf-8", "replace")
        if not isinstance(message, str):
            continue
        try:
            when = int(entry.get("__REALTIME_TIMESTAMP")) / 1e6
        except (TypeError, ValueError):
            continue
        yield LogLine(when, entry.get("SYSLOG_IDENTIFIER", ""), message, entry.get("_PID"), None, entry.get("_UID"),
                      entry.get("_SYSTEMD_UNIT"))


def rotated_files(path, since):
    """`path` and its rotated copies (PATH.1, PATH.2.gz, ...) that may hold lines since `since`, oldest first."""
    found = []
    for name in glob.glob(glob.escape(path) + ".*"):
        match = re.match(r"^\.(\d+)(\.gz)?$", name[len(path):])
        if match:
            found.append((int(match.group(1)), name))
    files = [name for _number, name in sorted(found, reverse=True)]
    if os.path.exists(path):
        files.append(path)
    # a rotated file last written before the window holds nothing of it
    return [name for name in files if name == path or os.stat(name).st_mtime >= since]


def exim_line_time(text):
    return line_time(text, None)


def file_lines(path, since, time_of=exim_line_time):
    """LogLines of `path` and its rotated copies within the window (each line's own time), named by `path`."""
    for name in rotated_files(path, since):
        opener = gzip.open if name.endswith(".gz") else open
        try:
            with opener(name, "rt", encoding="utf-8", errors="replace") as stream:
                for text in stream:
                    text = text.rstrip("\n")
                    when = time_of(text)
                    if when is not None and when >= since:
                        yield LogLine(when, path, text, None, None, None, None)
        except (OSError, EOFError) as exc:
            raise LogActivityError(f"{name}: cannot be read: {exc}") from None


# -- logins -----------------------------------------------------------------------------------------------------------
class Logins(object):
    """Logins per account, service and place, from the journal (and vsftpd's own log file where it keeps one)."""

    def __init__(self, countries, expected_countries=()):
        self.countries = countries
        self.expected = sorted(set(expected_countries))
        sources = [source() for source in watch_logins.JOURNAL_SOURCES]
        self.by_identifier = {identifier: source for source in sources for identifier in source.IDENTIFIERS}
        self.places = {}
        self.untrusted = 0
        self.lines = 0

    def identifiers(self):
        return list(self.by_identifier)

    def on_line(self, line):
        parsed = watch_logins.journal_login(self.by_identifier, line)
        if parsed is None:
            return
        login, trusted = parsed
        if not trusted:
            self.untrusted += 1  # another program calling itself sshd or dovecot: not a login
            return
        self.add(login, line.time)

    def on_vsftpd_line(self, text, localtime):
        parsed = watch_logins.parse_vsftpd_line(text, localtime)
        if parsed:
            self.add(parsed[1], parsed[0])

    def add(self, login, when):
        located = watch_logins.locate(self.countries, login.address)
        if located is None:
            return
        address, place, country, network = located
        self.lines += 1
        key = (login.account, login.service, place)
        entry = self.places.get(key)
        if entry is None:
            entry = self.places[key] = {"account": login.account, "service": login.service, "place": place,
                                        "country": country, "network": network, "count": 0, "first": when,
                                        "last": when, "addresses": []}
        entry["count"] += 1
        entry["first"], entry["last"] = min(entry["first"], when), max(entry["last"], when)
        if address not in entry["addresses"] and len(entry["addresses"]) < MAX_ADDRESSES:
            entry["addresses"].append(address)

    def result(self):
        """{accounts: [{account, places: [...]}], unusual: [...]}: each place with its times in ISO 8601 and whether
        (and why) it is unusual for the account."""
        by_account = {}
        for entry in self.places.values():
            by_account.setdefault(entry["account"], []).append(entry)
        # the places each account came from first, for "no other account of the host came from there"
        host_places = {}
        for entry in self.places.values():
            host_places.setdefault(entry["place"], set()).add(entry["account"])
        accounts, unusual = [], []
        for account in sorted(by_account):
            entries = sorted(by_account[account], key=lambda item: (item["first"], item["service"]))
            first_of_place = {}
            for entry in entries:
                first_of_place[entry["place"]] = min(entry["first"], first_of_place.get(entry["place"], entry["first"]))
            earliest = min(first_of_place.values())
            places = []
            for entry in entries:
                shaped = dict(entry, first=iso(entry["first"]), last=iso(entry["last"]))
                shaped["unusual"] = self.why_unusual(entry, first_of_place, earliest, host_places)
                places.append(shaped)
                if shaped["unusual"]:
                    unusual.append(shaped)
            accounts.append({"account": account, "logins": sum(entry["count"] for entry in entries),
                             "usual": sorted(place for place, first in first_of_place.items() if first == earliest),
                             "places": places})
        return {"accounts": accounts, "unusual": unusual, "expected_countries": self.expected,
                "country_data": len(self.countries) > 0, "logins": self.lines, "untrusted_lines": self.untrusted}

    def why_unusual(self, entry, first_of_place, earliest, host_places):
        """None, or why the account's logins from this place are unusual."""
        if self.expected and entry["country"]:
            if entry["country"] in self.expected:
                return None
            return "outside the expected countries (%s)" % ", ".join(self.expected)
        if first_of_place[entry["place"]] > earliest:
            before = sorted(place for place, first in first_of_place.items() if first < first_of_place[entry["place"]])
            return "a new place for the account (it logged in from %s before)" % ", ".join(before)
        # a country (not a network: the admins' own networks have none) that only this account came from
        if entry["country"] and len(first_of_place) == 1 and host_places[entry["place"]] == {entry["account"]} \
                and len(host_places) > 1:
            return "no other account of the host logged in from that country"
        return None


def vsftpd_log(conf_path):
    """(vsftpd's own log file, whether it writes local time), or (None, False) where it logs to syslog or is not
    installed."""
    text = account_cleanup.read_text(conf_path)
    if text is None:
        return None, False
    settings = account_cleanup.parse_vsftpd_conf(text)
    if settings.get("syslog_enable", "NO").upper() == "YES":
        return None, False
    return settings["vsftpd_log_file"], settings["use_localtime"]


def vsftpd_line_time(localtime):
    def time_of(text):
        parsed = watch_logins.parse_vsftpd_line(text, localtime)
        return parsed[0] if parsed else None
    return time_of


def read_logins(stream, since, countries, expected_countries=(), vsftpd_conf="/etc/vsftpd.conf"):
    """The logins since `since`: the journal through `stream(argv)` (an iterable of its output's lines)."""
    logins = Logins(countries, expected_countries)
    for line in journal_lines(stream(journal_argv(since, logins.identifiers()))):
        logins.on_line(line)
    path, localtime = vsftpd_log(vsftpd_conf)
    if path:
        for line in file_lines(path, since, vsftpd_line_time(localtime)):
            logins.on_vsftpd_line(line.message, localtime)
    return dict(logins.result(), since=iso(since))


# -- senders ----------------------------------------------------------------------------------------------------------
def _trim(counts):
    if len(counts) > MAX_NAMES:  # keep the busiest: a spam run's recipients are many domains
        for name in sorted(counts, key=counts.get)[:MAX_NAMES // 2]:
            del counts[name]


def _top(counts, number):
    return sorted(counts, key=lambda name: (-counts[name], name))[:number]


class Senders(object):
    """Messages per source; the sink the watch's Postfix and Exim line readers tell what a line says."""

    def __init__(self):
        self.sources = {}
        self.queue_ids = {}  # queue id -> [source key, recipients seen], oldest first
        self.messages = 0

    def submitted(self, key, line, queue_id, **identity):
        source = self.sources.get(key)
        if source is None:
            source = self.sources[key] = {"source": key, "messages": 0, "hours": {}, "domains": {}, "scripts": {},
                                          "first": line.time, "last": line.time}
            source.update({name: value for name, value in identity.items() if name in ("uid", "sasl_user", "account")})
            if "uid" in identity:
                source["account"] = watch_mail.account_name(identity["uid"])
        for name in ("cwd", "command"):  # where the latest message came from (Exim's +arguments)
            if identity.get(name):
                source[name] = identity[name]
        source["messages"] += 1
        self.messages += 1
        hour = int(line.time // 3600)
        source["hours"][hour] = source["hours"].get(hour, 0) + 1
        source["first"], source["last"] = min(source["first"], line.time), max(source["last"], line.time)
        self.queue_ids[queue_id] = [key, set()]
        while len(self.queue_ids) > MAX_QUEUE_IDS:
            del self.queue_ids[next(iter(self.queue_ids))]

    def script(self, queue_id, script):
        known, script = self.queue_ids.get(queue_id), script.strip()
        if known and script:
            scripts = self.sources[known[0]]["scripts"]
            scripts[script] = scripts.get(script, 0) + 1
            _trim(scripts)

    def recipient(self, queue_id, address):
        known = self.queue_ids.get(queue_id)
        if known is None or "@" not in address or address in known[1]:
            return  # a delivery tried again names the recipient again
        if len(known[1]) < MAX_RECIPIENTS:
            known[1].add(address)
        domains = self.sources[known[0]]["domains"]
        domain = address.rsplit("@", 1)[1].lower()
        domains[domain] = domains.get(domain, 0) + 1
        _trim(domains)

    def removed(self, queue_id):
        self.queue_ids.pop(queue_id, None)

    def held_at_submission(self, queue_id, **what):
        """A message the watch's hold took in: counted like the others (the MTA logged its submission too)."""

    def result(self, top):
        sources = sorted(self.sources.values(), key=lambda item: (-item["messages"], item["source"]))[:top]
        shaped = []
        for source in sources:
            peak = max(source["hours"], key=lambda hour: (source["hours"][hour], -hour))
            entry = {"source": source["source"], "kind": source["source"].split(":", 1)[0],
                     "messages": source["messages"], "first": iso(source["first"]), "last": iso(source["last"]),
                     "peak_hour": {"start": iso(peak * 3600), "messages": source["hours"][peak]},
                     "top_recipient_domains": {name: source["domains"][name]
                                               for name in _top(source["domains"], TOP_DOMAINS)},
                     "scripts": _top(source["scripts"], TOP_SCRIPTS)}
            for name in ("uid", "account", "sasl_user", "cwd", "command"):
                entry[name] = source.get(name)
            entry["script"] = entry["scripts"][0] if entry["scripts"] else None
            shaped.append(entry)
        return shaped


def read_senders(stream, since, mta, top=10, exim_mainlog=watch_mail.Exim.MAINLOG):
    """The busiest `top` sources of mail since `since`: Postfix's journal lines through `stream(argv)`, or Exim's
    main log and its rotated copies."""
    senders = Senders()
    if mta == "exim":
        reader = watch_mail.Exim(None, mainlog=exim_mainlog)
        lines = file_lines(exim_mainlog, since)
    else:
        reader = watch_mail.Postfix(None)
        lines = journal_lines(stream(journal_argv(since, reader.identifiers())))
    for line in lines:
        reader.on_line(line, senders)
    return {"mta": mta, "since": iso(since), "messages": senders.messages, "sources": len(senders.sources),
            "senders": senders.result(top)}


def check_countries(codes):
    """The expected country codes, upper-case, or LogActivityError naming the one that is not a code."""
    checked = []
    for code in codes or []:
        if not isinstance(code, str) or not re.match(r"^[A-Za-z]{2}$", code):
            raise LogActivityError(f"expected_countries: {code!r} is not a two-letter country code")
        checked.append(code.upper())
    return checked
