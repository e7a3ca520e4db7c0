# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostguard-watch: the service that notices incidents as they start.

It reads the journal (python3-systemd) and the log files facets name (Exim's
mainlog) from where it stopped, hands each line to the facets that asked for
its syslog identifier or file, lets facets with timers
look at the host every so often, and turns what they find into events: one
JSON line each in ``events.jsonl``, an alert, and, where the administrator
named it, containment. The journal cursor, each file's inode and offset, each facet's counters and what was
already said live in ``state.json``, written atomically, so a restart loses no
line and repeats no alert.

Pure standard library plus python3-systemd and python3-yaml, both Debian
packages: it runs from the collection's module_utils on the managed host.
"""

from __future__ import annotations

import argparse
import collections
import datetime
import json
import os
import re
import select
import signal
import subprocess
import sys
import time

from ansible_collections.hostguard.hosting.plugins.module_utils import watch_config
from ansible_collections.hostguard.hosting.plugins.module_utils.atomic_file import write_atomically
from ansible_collections.hostguard.hosting.plugins.module_utils.watch_alerts import (
    Alerter, EmailSink, JournalSink, WebhookSink)
from ansible_collections.hostguard.hosting.plugins.module_utils.watch_logins import LoginsFacet
from ansible_collections.hostguard.hosting.plugins.module_utils.watch_files import FilesFacet
from ansible_collections.hostguard.hosting.plugins.module_utils.watch_mail import MailFacet
from ansible_collections.hostguard.hosting.plugins.module_utils.watch_queue import QueueFacet
from ansible_collections.hostguard.hosting.plugins.module_utils.watch_dnsbl import DnsblFacet
from ansible_collections.hostguard.hosting.plugins.module_utils.watch_bans import BansFacet

FACET_TYPES = {facet.NAME: facet for facet in (MailFacet, LoginsFacet, QueueFacet, DnsblFacet, BansFacet, FilesFacet)}

STATE_VERSION = 1
SAVE_EVERY = 5.0  # state and cursor are saved together: a crash re-reads at most these seconds

# uid and unit are journald's own _UID and _SYSTEMD_UNIT, which no logging process can choose: a facet that acts on
# a line (locks an account) checks them, as a customer's program may call itself sshd or dovecot.
LogLine = collections.namedtuple("LogLine", "time identifier message pid cursor uid unit", defaults=(None, None))
# A log file line's own time, as Exim and most daemons writing files put it first (local time).
FILE_TIME_RE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)")


def _log(text):
    """The service's own messages: stderr, which systemd puts in the journal under the unit."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


def run_command(argv, stdin=None, timeout=120):
    """The runner every facet gets: argv -> (rc, stdout, stderr); rc 127 when the command is missing."""
    try:
        done = subprocess.run(argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        return 127, "", str(exc)
    except subprocess.TimeoutExpired:
        return 124, "", f"{argv[0]} did not finish in {timeout} s"
    return done.returncode, done.stdout, done.stderr


def line_time(text, default):
    """The time at the start of a log file's line (local time, as the daemon wrote it), else `default`."""
    match = FILE_TIME_RE.match(text)
    if not match:
        return default
    try:
        return time.mktime(time.strptime(match.group(1), "%Y-%m-%d %H:%M:%S"))
    except ValueError:
        return default


class FileTail(object):
    """Follow one log file by inode and offset, across rotation (logrotate's rename to PATH.1) and truncation.

    `saved` is what position() returned before a restart: reading goes on from there, in the rotated file
    first when the file was rotated meanwhile, so no line is lost and none handled twice.
    """

    CHUNK = 1 << 16

    def __init__(self, path, saved=None):
        self.path = path
        self.stream = None
        self.inode = None
        self.offset = 0
        self.fresh = not saved  # never read before: the caller skips what is older than its look-back
        self._reopen(saved)

    def _stat(self, path):
        try:
            return os.stat(path)
        except FileNotFoundError:
            return None

    def _open(self, path, offset):
        # kept open while the file is followed, so the rest of a rotated file can still be read
        stream = open(path, "rb")  # pylint: disable=consider-using-with
        info = os.fstat(stream.fileno())
        if offset > info.st_size:  # truncated since
            offset = 0
        stream.seek(offset)
        if self.stream is not None:
            self.stream.close()
        self.stream, self.inode, self.offset = stream, info.st_ino, offset

    def _reopen(self, saved):
        current = self._stat(self.path)
        if saved:
            if current is not None and current.st_ino == saved["inode"]:
                self._open(self.path, saved["offset"])
                return
            rotated = self._stat(self.path + ".1")
            if rotated is not None and rotated.st_ino == saved["inode"]:
                self._open(self.path + ".1", saved["offset"])  # the rest of it first, then the new file
                return
        if current is not None:
            self._open(self.path, 0)

    def position(self):
        return {"inode": self.inode, "offset": self.offset} if self.inode is not None else None

    def lines(self, limit):
        """Up to `limit` complete lines (str, without the newline); a partial last line waits for its end."""
        found = []
        if self.stream is None:
            self._reopen(None)
            if self.stream is None:
                return found
        while len(found) < limit:
            raw = self.stream.readline(self.CHUNK)
            if raw.endswith(b"\n") or len(raw) == self.CHUNK:
                self.offset += len(raw)
                found.append(raw.rstrip(b"\n").decode("utf-8", "replace"))
                continue
            self.stream.seek(self.offset)  # nothing, or a line still being written: read it whole later
            if not self._moved_on():
                break
        return found

    def _moved_on(self):
        """At the end of the file: switch to the file now at the path when ours was rotated or truncated."""
        current = self._stat(self.path)
        if current is None:
            return False
        if current.st_ino != self.inode:
            self._open(self.path, 0)
            return True
        if current.st_size < self.offset:
            self._open(self.path, 0)
            return True
        return False

    def close(self):
        if self.stream is not None:
            self.stream.close()
            self.stream = None


class State(object):
    """state.json: the journal cursor, each facet's own dict, and when each (kind, key) was last said."""

    def __init__(self, path):
        self.path = path
        self.data = {"version": STATE_VERSION, "cursor": None, "files": {}, "facets": {}, "said": {}}
        self.dirty = False

    def load(self):
        try:
            with open(self.path, encoding="utf-8") as stream:
                data = json.load(stream)
        except FileNotFoundError:
            return self
        if data.get("version") == STATE_VERSION:
            # Facets are made before the state is loaded and keep their own dict: update those in place, so a
            # facet sees what it saved, and the defaults it set for keys an older state does not have.
            facets = self.data["facets"]
            for name, saved in (data.get("facets") or {}).items():
                facets.setdefault(name, {}).update(saved)
            data["facets"] = facets
            self.data = data
            self.data.setdefault("files", {})
        return self

    def facet(self, name):
        return self.data["facets"].setdefault(name, {})

    def save(self):
        write_atomically(self.path, json.dumps(self.data, sort_keys=True).encode(), mode=0o600)
        self.dirty = False


class EventLog(object):
    """events.jsonl: one JSON object a line, appended and flushed as it happens (the audit reads it)."""

    def __init__(self, path):
        self.path = path

    def append(self, event):
        line = (json.dumps(event, sort_keys=True) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)


class Context(object):
    """What a facet gets: its settings, its state, the runner, and emit()."""

    def __init__(self, service, name, settings):
        self.service, self.name, self.settings = service, name, settings
        self.host = service.config["host"]
        self.run = service.run
        self.log = service.log

    @property
    def state(self):
        return self.service.state.facet(self.name)

    def changed(self):
        self.service.state.dirty = True

    def emit(self, kind, key, summary, severity="warning", runbook=None, evidence=None, action=None, when=None):
        return self.service.emit(kind, key, summary, severity, runbook, evidence or {}, action, when)


def _iso(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat(timespec="seconds")


class Service(object):
    def __init__(self, config, journal=None, run=run_command, clock=time.time, log=None, alerter=None):
        self.config, self.run, self.clock = config, run, clock
        self.log = log or _log
        self.state = State(os.path.join(config["state_dir"], "state.json"))
        self.events = EventLog(os.path.join(config["state_dir"], "events.jsonl"))
        self.journal = journal
        self.alerter = alerter
        self.learning_until = None
        self.running = True
        self.facets = []
        for name, facet_type in FACET_TYPES.items():
            settings = config["facets"][name]
            if settings["enabled"]:
                self.facets.append(facet_type(Context(self, name, settings)))
        self._by_identifier = collections.defaultdict(list)
        self._by_file = collections.defaultdict(list)
        for facet in self.facets:
            for identifier in facet.identifiers():
                self._by_identifier[identifier].append(facet)
            for path in facet.log_files():
                self._by_file[path].append(facet)
        self.tails = {}
        self._skip_before = {}  # path -> the look-back's start, while a never-read file is read the first time
        self._files_behind = False
        self._next_tick = {}

    # -- events ------------------------------------------------------------------------------------------
    def emit(self, kind, key, summary, severity, runbook, evidence, action, when):
        """Record an event once per (kind, key) and alert interval; False when it was already said."""
        now = self.clock()
        if self.learning_until is not None and (when or now) < self.learning_until:
            return False
        said_key = f"{kind}\0{key}"
        last = self.state.data["said"].get(said_key)
        # a containment that was done is always said; anything else once per interval
        if last is not None and now - last < self.config["alerts"]["interval"] and (not action or action.get("failed")):
            return False
        event = {
            "time": _iso(when or now),
            "host": self.config["host"], "kind": kind, "key": key, "summary": summary, "severity": severity,
            "runbook": runbook, "evidence": evidence,
        }
        for field, value in evidence.items():  # the kind's evidence at the top level too, as the contract says
            event.setdefault(field, value)
        if action:
            event["action"] = action
            if not action.get("failed"):
                # when the containment was done, which may be later than `when` (the log line it answers)
                action.setdefault("at", _iso(now))
        self.state.data["said"][said_key] = now
        self.state.dirty = True
        self.events.append(event)
        if self.alerter is not None:
            self.alerter.submit(event)
        return True

    def forget_old_said(self):
        horizon = self.clock() - self.config["alerts"]["interval"]
        said = self.state.data["said"]
        for key in [key for key, when in said.items() if when < horizon]:
            del said[key]

    # -- the journal ---------------------------------------------------------------------------------------
    def open_journal(self):
        """Position the reader: after the saved cursor, or at the facets' look-back; learning at the first start.

        The first start (no journal cursor and no file position saved) reads the look-back to learn, saying
        nothing; after that, everything new is said, also from a file followed for the first time.
        """
        lookback = max([facet.LOOKBACK for facet in self.facets] or [0])
        now = self.clock()
        cursor = self.state.data.get("cursor")
        if not cursor and not any(self.state.data["files"].values()):
            self.learning_until = now
        self.open_files(now - lookback)
        if not self._by_identifier:
            return  # no facet reads the journal: a reader without matches would hand over every entry
        for identifier in sorted(self._by_identifier):
            self.journal.add_match(SYSLOG_IDENTIFIER=identifier)
        if cursor:
            self.journal.seek_cursor(cursor)
            self.journal.get_next()  # the entry at the cursor was handled before the stop
            return
        self.journal.seek_realtime(int((now - lookback) * 1_000_000))  # an int is microseconds

    def read_journal(self, limit=5000):
        """Hand up to `limit` new journal entries to the facets; the number handled."""
        handled = 0
        while handled < limit and self._by_identifier:
            entry = self.journal.get_next()
            if not entry:
                break
            handled += 1
            stamp = entry.get("__REALTIME_TIMESTAMP")
            line = LogLine(stamp.timestamp() if stamp else self.clock(), entry.get("SYSLOG_IDENTIFIER", ""),
                           entry.get("MESSAGE", ""), entry.get("_PID"), entry.get("__CURSOR"), entry.get("_UID"),
                           entry.get("_SYSTEMD_UNIT"))
            if isinstance(line.message, bytes):
                line = line._replace(message=line.message.decode("utf-8", "replace"))
            self.dispatch(line)
            self.state.data["cursor"] = line.cursor
            self.state.dirty = True
        if self.learning_until is not None and handled < limit and not self._files_behind:
            self.learning_until = None  # caught up: from here on, what the facets find is said
        return handled

    # -- log files -----------------------------------------------------------------------------------------
    def open_files(self, since):
        """Follow every file a facet reads: from the saved position, or (never read) from `since` on."""
        for path in sorted(self._by_file):
            tail = self.tails[path] = FileTail(path, self.state.data["files"].get(path))
            if tail.fresh:
                self._skip_before[path] = since

    def read_files(self, limit=5000):
        """Hand up to `limit` new lines of each followed file to its facets; the number handled."""
        handled, behind = 0, False
        for path, tail in self.tails.items():
            lines = tail.lines(limit)
            behind = behind or len(lines) >= limit
            since = self._skip_before.get(path)
            for text in lines:
                when = line_time(text, self.clock())
                if since is not None and when < since:
                    continue  # older than the look-back at first start
                line = LogLine(when, path, text, None, None)
                for facet in self._by_file[path]:
                    try:
                        facet.on_line(line)
                    except Exception as exc:  # one odd line must not stop the watch
                        self.log(f"{facet.NAME}: could not handle {path} line {text!r}: {exc!r}")
            if lines or tail.position() != self.state.data["files"].get(path):
                self.state.data["files"][path] = tail.position()
                self.state.dirty = True
            if lines and since is not None and not behind:
                self._skip_before.pop(path, None)
            handled += len(lines)
        self._files_behind = behind  # read_journal ends the learning once both are caught up
        return handled

    def dispatch(self, line):
        for facet in self._by_identifier.get(line.identifier, ()):
            if self.learning_until is not None and line.time < self.learning_until - facet.LOOKBACK:
                continue  # the first start reads back as far as the facet that looks furthest; each learns its own
            try:
                facet.on_line(line)
            except Exception as exc:  # one odd line must not stop the watch
                self.log(f"{facet.NAME}: could not handle {line.identifier} line {line.message!r}: {exc!r}")

    def tick(self):
        now = self.clock()
        for facet in self.facets:
            interval = getattr(facet, "INTERVAL", None)
            if interval is None:
                continue
            if now >= self._next_tick.get(facet.NAME, 0):
                self._next_tick[facet.NAME] = now + interval
                try:
                    facet.tick(now)
                except Exception as exc:
                    self.log(f"{facet.NAME}: periodic check failed: {exc!r}")

    # -- the loop ------------------------------------------------------------------------------------------
    def run_forever(self, notify=lambda state: None):
        os.makedirs(self.config["state_dir"], mode=0o700, exist_ok=True)
        self.state.load()
        self.open_journal()
        if self.alerter is not None:
            self.alerter.start()
        for facet in self.facets:
            facet.start()
        notify("READY=1")
        last_save = self.clock()
        while self.running:
            handled = self.read_files() + self.read_journal()
            self.tick()
            if self.state.dirty and (self.clock() - last_save >= SAVE_EVERY or not self.running):
                self.forget_old_said()
                self.state.save()
                last_save = self.clock()
            notify("WATCHDOG=1")
            if handled == 0 and self.running:
                self.wait(1.0)
        for facet in self.facets:
            facet.stop()
        for tail in self.tails.values():
            tail.close()
        self.state.save()
        if self.alerter is not None:
            self.alerter.drain(timeout=20)

    def wait(self, timeout):
        """Until the journal or a facet's descriptor has news, or `timeout` (followed files are read then)."""
        fds = [self.journal.fileno()] if self._by_identifier else []
        for facet in self.facets:
            fds.extend(facet.fds())
        try:
            readable = select.select(fds, [], [], timeout)[0]
        except InterruptedError:
            return
        if self._by_identifier and self.journal.fileno() in readable:
            self.journal.process()
        for facet in self.facets:
            for fd in facet.fds():
                if fd in readable:
                    facet.on_readable(fd)

    def stop(self, *_):
        self.running = False


def build_alerter(config, log):
    from systemd import journal  # python3-systemd

    alerts = config["alerts"]
    sinks = [JournalSink(journal.send)]
    if alerts["email"]:
        sender = alerts["email_from"] or f"hostguard-watch@{config['host']}"
        sinks.append(EmailSink(alerts["email"], sender, alerts["smtp_host"], alerts["smtp_port"], alerts["timeout"]))
    if alerts["webhook_url"]:
        sinks.append(WebhookSink(alerts["webhook_url"], alerts["timeout"]))
    return Alerter(sinks, alerts["runbooks_url"], alerts["max_per_hour"], log)


def check(path):
    """--check: the configuration as the service would run it, every facet's own checks included."""
    config = watch_config.load(path, FACET_TYPES)
    for name, facet_type in FACET_TYPES.items():
        if config["facets"][name]["enabled"]:
            facet_type.check_host(config["facets"][name], f"facets.{name}")
    return config


def main(argv=None):
    parser = argparse.ArgumentParser(prog="hostguard-watch", description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--config", default="/etc/hostguard/watch.yml")
    parser.add_argument("--check", metavar="CONFIG", help="check CONFIG and exit: 0 when the service would run it")
    options = parser.parse_args(argv)
    try:
        config = check(options.check or options.config)
    except watch_config.ConfigError as exc:
        _log(f"hostguard-watch: {exc}")
        return 1
    if options.check:
        enabled = [name for name, facet in config["facets"].items() if facet["enabled"]]
        sys.stdout.write(f"hostguard-watch: {options.check} is valid (facets: {', '.join(enabled) or 'none'})\n")
        return 0

    from systemd import daemon, journal  # python3-systemd

    service = Service(config, journal=journal.Reader(), log=_log, alerter=build_alerter(config, _log))
    signal.signal(signal.SIGTERM, service.stop)
    signal.signal(signal.SIGINT, service.stop)
    service.run_forever(notify=daemon.notify)
    return 0
