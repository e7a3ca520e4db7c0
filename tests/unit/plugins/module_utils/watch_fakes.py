# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stand-ins for what hostguard-watch reads and runs, for unit tests (the lab runs the real journal)."""

from __future__ import annotations

import datetime


class FakeJournal(object):
    """systemd.journal.Reader's methods the service uses, over a list of entries."""

    def __init__(self):
        self.entries = []
        self.matches = []
        self.position = 0

    def add(self, when, identifier, message, **fields):
        """An entry; `fields` are journald's own (_UID=0, _SYSTEMD_UNIT="dovecot.service")."""
        cursor = f"c{len(self.entries)}"
        self.entries.append({"__REALTIME_TIMESTAMP": datetime.datetime.fromtimestamp(when, datetime.timezone.utc),
                             "SYSLOG_IDENTIFIER": identifier, "MESSAGE": message, "__CURSOR": cursor, **fields})
        return cursor

    def add_match(self, **match):
        self.matches.append(match)

    def seek_cursor(self, cursor):
        self.position = int(cursor[1:])

    def seek_realtime(self, microseconds):
        self.position = next((index for index, entry in enumerate(self.entries)
                              if entry["__REALTIME_TIMESTAMP"].timestamp() * 1e6 >= microseconds), len(self.entries))

    def get_next(self):
        wanted = {match["SYSLOG_IDENTIFIER"] for match in self.matches}
        while self.position < len(self.entries):
            entry = self.entries[self.position]
            self.position += 1
            if entry["SYSLOG_IDENTIFIER"] in wanted:
                return entry
        return {}

    def fileno(self):
        return -1

    def process(self):
        return 0


class Runner(object):
    """Records argv and stdin; answers from a table of argv[0:2] -> (rc, out, err)."""

    def __init__(self, answers=None):
        self.calls = []
        self.answers = answers or {}

    def __call__(self, argv, stdin=None, timeout=120):
        self.calls.append((list(argv), stdin))
        return self.answers.get(tuple(argv[:2]), (0, "", ""))


class Clock(object):
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


def start_service(tmp_path, facets, journal=None, runner=None, clock=None):
    """A Service with only `facets` ({name: settings}) enabled, its state in tmp_path/state, journal opened."""
    import os

    from ansible_collections.hostguard.hosting.plugins.module_utils import watch_config, watch_service

    facets = {name: dict(settings, enabled=True) for name, settings in facets.items()}
    for name in watch_service.FACET_TYPES:
        facets.setdefault(name, {"enabled": False})
    config = watch_config.validate({"host": "mail1.example", "state_dir": str(tmp_path / "state"), "facets": facets},
                                   watch_service.FACET_TYPES)
    os.makedirs(config["state_dir"], exist_ok=True)
    service = watch_service.Service(config, journal=journal or FakeJournal(), run=runner or Runner(),
                                    clock=clock or Clock(0), log=lambda text: None)
    service.state.load()
    service.open_journal()
    return service


def read_events(tmp_path):
    """events.jsonl as a list of dicts."""
    import json

    path = tmp_path / "state" / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def step(service):
    """One turn of the service's loop: the followed files, the journal, then the facets' periodic checks."""
    service.read_files()
    service.read_journal()
    service.tick()
