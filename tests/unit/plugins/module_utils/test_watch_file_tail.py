# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostguard-watch's log file source: real files in a temporary directory, renamed as logrotate renames them."""

from __future__ import annotations

import os
import time

from ansible_collections.hostguard.hosting.plugins.module_utils import watch_config, watch_service

from ansible_collections.hostguard.hosting.tests.unit.plugins.module_utils.watch_fakes import Clock, FakeJournal

START = 1_800_000_000.0


def write(path, text, mode="a"):
    with open(path, mode, encoding="utf-8") as stream:
        stream.write(text)


def stamp(when):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when))


class Recorder(object):
    """A facet that keeps every line of the file it names."""

    NAME = "recorder"
    LOOKBACK = 3600
    DEFAULTS = {"path": "/var/log/x"}
    seen = []

    @staticmethod
    def validate(settings, where):
        pass

    @staticmethod
    def check_host(settings, where):
        pass

    def __init__(self, context):
        self.context, self.path = context, context.settings["path"]

    def identifiers(self):
        return []

    def log_files(self):
        return [self.path]

    def on_line(self, line):
        Recorder.seen.append((line.identifier, line.message, line.time))
        if "alert" in line.message:
            self.context.emit("test", line.message, line.message, when=line.time)

    def start(self):
        pass

    def stop(self):
        pass

    def fds(self):
        return []


def make_service(tmp_path, monkeypatch, clock):
    monkeypatch.setattr(watch_service, "FACET_TYPES", {"recorder": Recorder})
    Recorder.seen = []
    config = watch_config.validate({"host": "h", "state_dir": str(tmp_path / "state"),
                                    "facets": {"recorder": {"enabled": True, "path": str(tmp_path / "mainlog")}}},
                                   watch_service.FACET_TYPES)
    os.makedirs(config["state_dir"], exist_ok=True)
    service = watch_service.Service(config, journal=FakeJournal(), clock=clock, log=lambda text: None)
    service.state.load()
    service.open_journal()
    return service


def read(service):
    handled = service.read_files()
    service.read_journal()
    return handled


def messages():
    return [message for _path, message, _when in Recorder.seen]


def test_new_lines_are_read_whole_and_a_partial_line_waits_for_its_end(tmp_path, monkeypatch):
    log = tmp_path / "mainlog"
    write(log, "")
    service = make_service(tmp_path, monkeypatch, Clock(START))
    read(service)
    write(log, f"{stamp(START)} one\n{stamp(START)} tw")
    assert read(service) == 1 and messages() == [f"{stamp(START)} one"]
    write(log, "o\n")
    read(service)
    assert messages() == [f"{stamp(START)} one", f"{stamp(START)} two"]
    assert Recorder.seen[0][0] == str(log) and Recorder.seen[0][2] == START  # the line's own time
    assert service.journal.matches == []  # no facet reads the journal: no reader without matches


def test_first_start_reads_the_look_back_only_and_alerts_on_nothing_already_past(tmp_path, monkeypatch):
    log = tmp_path / "mainlog"
    write(log, f"{stamp(START - 7200)} too old\n{stamp(START - 600)} alert past\n")
    service = make_service(tmp_path, monkeypatch, Clock(START))
    read(service)
    assert messages() == [f"{stamp(START - 600)} alert past"]
    assert not (tmp_path / "state" / "events.jsonl").exists()
    write(log, f"{stamp(START + 1)} alert now\n")
    service.clock.now = START + 2
    read(service)
    said = (tmp_path / "state" / "events.jsonl").read_text().splitlines()
    assert len(said) == 1 and "alert now" in said[0]


def test_a_restart_goes_on_from_the_saved_offset(tmp_path, monkeypatch):
    log = tmp_path / "mainlog"
    write(log, f"{stamp(START)} one\n")
    clock = Clock(START + 1)
    service = make_service(tmp_path, monkeypatch, clock)
    read(service)
    service.state.save()
    write(log, f"{stamp(START + 2)} two\n")
    again = make_service(tmp_path, monkeypatch, clock)
    read(again)
    assert messages() == [f"{stamp(START + 2)} two"]


def test_rotation_while_running_reads_the_rest_of_the_old_file_then_the_new_one(tmp_path, monkeypatch):
    log = tmp_path / "mainlog"
    write(log, "")
    service = make_service(tmp_path, monkeypatch, Clock(START))
    read(service)
    write(log, f"{stamp(START)} before\n")
    read(service)
    write(log, f"{stamp(START)} last of the old file\n")
    os.rename(log, str(log) + ".1")  # logrotate: rename, then a new file
    write(log, f"{stamp(START)} first of the new file\n", mode="w")
    read(service)
    assert messages()[1:] == [f"{stamp(START)} last of the old file", f"{stamp(START)} first of the new file"]
    assert service.state.data["files"][str(log)]["inode"] == os.stat(log).st_ino


def test_rotation_while_stopped_loses_nothing(tmp_path, monkeypatch):
    log = tmp_path / "mainlog"
    write(log, f"{stamp(START)} one\n")
    clock = Clock(START + 1)
    service = make_service(tmp_path, monkeypatch, clock)
    read(service)
    service.state.save()
    write(log, f"{stamp(START + 2)} written before the rotation\n")
    os.rename(log, str(log) + ".1")
    write(log, f"{stamp(START + 3)} written after it\n", mode="w")
    again = make_service(tmp_path, monkeypatch, clock)
    read(again)
    assert messages() == [f"{stamp(START + 2)} written before the rotation", f"{stamp(START + 3)} written after it"]


def test_a_truncated_file_is_read_from_its_start(tmp_path, monkeypatch):
    log = tmp_path / "mainlog"
    write(log, "")
    service = make_service(tmp_path, monkeypatch, Clock(START))
    read(service)
    write(log, f"{stamp(START)} a long line before the truncation\n")
    read(service)
    write(log, f"{stamp(START)} new\n", mode="w")  # copytruncate
    read(service)
    assert messages()[-1] == f"{stamp(START)} new"


def test_a_file_that_does_not_exist_yet_is_read_once_it_does(tmp_path, monkeypatch):
    log = tmp_path / "mainlog"
    service = make_service(tmp_path, monkeypatch, Clock(START))
    assert read(service) == 0
    write(log, f"{stamp(START)} hello\n")
    read(service)
    assert messages() == [f"{stamp(START)} hello"]
