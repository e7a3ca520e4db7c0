"""hostguard-watch, measured: how long from a planted file to its event.

Section ``files``: the watch's service code (watch_service.Service with the files facet, the kernel's inotify and
the collection's webshell rules; no journal is read) runs in this process on a generated docroot owned by a
customer uid and a directory like /tmp. A webshell is written and closed, and the time until its ``file_planted``
line is in events.jsonl is taken, for:

  1. a shell in the docroot                       one at a time, --repeat times
  2. a shell in the temporary directory           the same
  3. a shell at the end of a CMS update            --burst ordinary PHP files written just before it
  4. a shell with no inotify (periodic check)     poll_interval 5 s, the fallback past the watch limit

Every latency includes the facet's settle time (a file is examined once it has been quiet 2 s, so that a file still
being written is not scanned half-way); the issue's bound is 60 s. Nothing is asserted: the table is the result.

Run as root: python3 benchmarks/watch_files_bench.py [--section files] [--repeat 10] [--burst 2000]
Everything lives under --workdir (default /var/tmp/hostguard-bench-watch) and is deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
LINK_PARENT = REPO_ROOT / ".build" / "bench" / "ansible_collections" / "hostguard"
ACCOUNT = 2001
SHELL = b"<?php\n$c = $_REQUEST['c']; system($c);\n"
ORDINARY = b"<?php\nfunction site_title() { return 'Example'; }\necho site_title();\n"
EVENT_TIMEOUT = 120.0


def import_cores():
    """The collection's cores under their import path (a link under .build/, as the unit tests make it)."""
    LINK_PARENT.mkdir(parents=True, exist_ok=True)
    link = LINK_PARENT / "hosting"
    if not link.is_symlink():
        link.symlink_to(REPO_ROOT, target_is_directory=True)
    sys.path.insert(0, str(LINK_PARENT.parent.parent))
    from ansible_collections.hostguard.hosting.plugins.module_utils import watch_config, watch_service  # noqa: E402
    return watch_config, watch_service


class NoJournal(object):
    """The service's journal reader with nothing in it: the files facet reads no journal."""

    def __init__(self):
        self._read, self._write = os.pipe()

    def add_match(self, **_match):
        pass

    def seek_cursor(self, _cursor):
        pass

    def seek_realtime(self, _microseconds):
        pass

    def get_next(self):
        return {}

    def fileno(self):
        return self._read

    def process(self):
        return 0

    def close(self):
        os.close(self._read)
        os.close(self._write)


class Watch(object):
    """The service with the files facet, running on a thread; events read back from events.jsonl."""

    def __init__(self, workdir, docroot, tmp, inotify=True, poll_interval=30):
        watch_config, watch_service = import_cores()
        self.state_dir = os.path.join(workdir, "state")
        shutil.rmtree(self.state_dir, ignore_errors=True)
        os.makedirs(self.state_dir, mode=0o700)
        config = watch_config.validate({"host": "bench", "state_dir": self.state_dir, "facets": {"files": {
            "enabled": True, "paths": [docroot, tmp], "temp_dirs": [tmp], "poll_interval": poll_interval,
            "rules_dir": str(REPO_ROOT / "roles" / "webshell_rules" / "files")}}}, watch_service.FACET_TYPES)
        self.journal = NoJournal()
        self.service = watch_service.Service(config, journal=self.journal, log=lambda text: None)
        if not inotify:
            def no_inotify():
                raise OSError("inotify not used (the periodic check is measured)")
            self.service.facets[0]._inotify_factory = no_inotify
        self.thread = threading.Thread(target=self.service.run_forever, daemon=True)
        self._offset = 0
        self.seen = {}

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 60
        while not os.path.exists(os.path.join(self.state_dir, "state.json")) and time.monotonic() < deadline:
            time.sleep(0.05)  # the facet has started (its first state is saved) before anything is planted
        return self

    def __exit__(self, *exc_info):
        self.service.stop()
        self.thread.join(timeout=30)
        self.journal.close()

    def wait_event(self, path, timeout=EVENT_TIMEOUT):
        """The monotonic time the file_planted line for ``path`` was first seen, or None."""
        deadline = time.monotonic() + timeout
        events = os.path.join(self.state_dir, "events.jsonl")
        while path not in self.seen and time.monotonic() < deadline:
            if os.path.exists(events):
                with open(events, "rb") as stream:
                    stream.seek(self._offset)
                    data = stream.read()
                complete = data[:data.rfind(b"\n") + 1]
                self._offset += len(complete)
                now = time.monotonic()
                for line in complete.splitlines():
                    event = json.loads(line)
                    if event["kind"] == "file_planted":
                        self.seen.setdefault(event["path"], now)
            if path not in self.seen:
                time.sleep(0.02)
        return self.seen.get(path)


def write(path, content, uid=ACCOUNT):
    with open(path, "wb") as stream:
        stream.write(content)
    os.chown(path, uid, uid)


def make_trees(workdir):
    docroot = os.path.join(workdir, "site1", "public_html")
    tmp = os.path.join(workdir, "tmp")
    shutil.rmtree(workdir, ignore_errors=True)
    os.makedirs(docroot)
    os.chmod(workdir, 0o755)
    for path in (os.path.dirname(docroot), docroot):
        os.chown(path, ACCOUNT, ACCOUNT)
    for directory in range(40):  # a WordPress-like tree to watch: 40 directories of 50 PHP files
        part = os.path.join(docroot, "wp-content", "plugins", f"plugin-{directory:02d}")
        os.makedirs(part)
        for number in range(50):
            write(os.path.join(part, f"file{number}.php"), ORDINARY)
    os.makedirs(os.path.join(docroot, "wp-content", "uploads"))
    os.mkdir(tmp)
    os.chmod(tmp, 0o1777)
    return docroot, tmp


def latencies(watch, paths_and_writers):
    found = []
    for path, write_it in paths_and_writers:
        written = write_it()
        seen = watch.wait_event(path)
        found.append(None if seen is None else seen - written)
    return found


def plant(path):
    def write_it():
        write(path, SHELL)
        return time.monotonic()
    return write_it


def plant_after_burst(directory, burst, path):
    def write_it():
        os.makedirs(directory, exist_ok=True)
        for number in range(burst):
            write(os.path.join(directory, f"updated{number}.php"), ORDINARY)
        write(path, SHELL)
        return time.monotonic()
    return write_it


def bench_files(options):
    workdir = options.workdir
    docroot, tmp = make_trees(workdir)
    rows = []
    try:
        with Watch(workdir, docroot, tmp) as watch:
            rows.append(("shell in the docroot", latencies(watch, [
                (f"{docroot}/wp-content/uploads/shell{n}.php", plant(f"{docroot}/wp-content/uploads/shell{n}.php"))
                for n in range(options.repeat)])))
            rows.append(("shell in the temporary directory", latencies(watch, [
                (f"{tmp}/.sess{n}.php", plant(f"{tmp}/.sess{n}.php")) for n in range(options.repeat)])))
            rows.append((f"shell after {options.burst} updated files", latencies(watch, [
                (f"{docroot}/wp-includes/update{n}/zz-shell.php",
                 plant_after_burst(f"{docroot}/wp-includes/update{n}", options.burst,
                                   f"{docroot}/wp-includes/update{n}/zz-shell.php"))
                for n in range(max(1, options.repeat // 3))])))
        with Watch(workdir, docroot, tmp, inotify=False, poll_interval=5) as watch:
            rows.append(("no inotify: periodic check (5 s)", latencies(watch, [
                (f"{tmp}/polled{n}.php", plant(f"{tmp}/polled{n}.php")) for n in range(max(1, options.repeat // 2))])))
    finally:
        if not options.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print(f"{'files: planted file -> file_planted event':44} {'runs':>4} {'median s':>9} {'max s':>7} {'missed':>6}")
    for name, found in rows:
        measured = [value for value in found if value is not None]
        median = f"{statistics.median(measured):9.2f}" if measured else f"{'-':>9}"
        worst = f"{max(measured):7.2f}" if measured else f"{'-':>7}"
        print(f"{name:44} {len(found):4d} {median} {worst} {len(found) - len(measured):6d}")
    print("(each includes the 2 s settle; the issue's bound is 60 s; a miss is no event within "
          f"{EVENT_TIMEOUT:.0f} s)")
    return 0


SECTIONS = {"files": bench_files}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--section", choices=sorted(SECTIONS), action="append",
                        help="the section to run (default: all)")
    parser.add_argument("--repeat", type=int, default=10, help="planted files per row (default 10)")
    parser.add_argument("--burst", type=int, default=2000, help="ordinary files written before the shell (default 2000)")
    parser.add_argument("--workdir", default="/var/tmp/hostguard-bench-watch")
    parser.add_argument("--keep", action="store_true", help="leave the work directory in place")
    options = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("watch_files_bench: run it as root (the trees belong to a customer uid)", file=sys.stderr)
        return 2
    status = 0
    for name in options.section or sorted(SECTIONS):
        status = max(status, SECTIONS[name](options))
    return status


if __name__ == "__main__":
    sys.exit(main())
