# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostguard-watch's events log read back: what the watch saw since a given time, for the audit.

Read-only and pure standard library. The log is one JSON object a line, appended by the service; a line cut short
(a full disk, a crash) is counted and skipped, never fatal. The file is read backwards from its end in blocks, so
an audit of the last days reads those days, not the host's whole history.
"""

from __future__ import annotations

import datetime
import json
import os

BLOCK = 65536


def _lines_backwards(fd):
    """The file's lines, last first, as bytes (a partial last line included)."""
    position = os.fstat(fd).st_size
    rest = b""
    while position > 0:
        size = min(BLOCK, position)
        position -= size
        data = os.pread(fd, size, position) + rest
        lines = data.split(b"\n")
        rest = lines.pop(0)
        for line in reversed(lines):
            if line:
                yield line
    if rest:
        yield rest


def _time(text):
    try:
        return datetime.datetime.fromisoformat(text).timestamp()
    except (TypeError, ValueError):
        return None


def read_events(path, since, limit=200):
    """{present, events (oldest first, at most `limit`, newest kept), counts per kind, malformed, truncated}.

    `since`: seconds since the epoch; events older than that are not read.
    """
    result = {"path": path, "present": False, "events": [], "counts": {}, "malformed": 0, "truncated": False}
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return result
    result["present"] = True
    newest_first = []
    try:
        for line in _lines_backwards(fd):
            try:
                event = json.loads(line)
            except ValueError:
                result["malformed"] += 1
                continue
            when = _time(event.get("time")) if isinstance(event, dict) else None
            if when is None or not event.get("kind"):
                result["malformed"] += 1
                continue
            if when < since:
                break  # appended in time order: everything before is older still
            result["counts"][event["kind"]] = result["counts"].get(event["kind"], 0) + 1
            if len(newest_first) < limit:
                newest_first.append(event)
            else:
                result["truncated"] = True
    finally:
        os.close(fd)
    result["events"] = list(reversed(newest_first))
    return result
