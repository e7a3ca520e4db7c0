# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import datetime
import json

from ansible_collections.hostguard.hosting.plugins.module_utils import watch_events

DAY = 86400.0
NOW = 1_800_000_000.0


def stamp(seconds):
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat(timespec="seconds")


def write(path, events, tail=""):
    path.write_text("".join(json.dumps(event) + "\n" for event in events) + tail)


def test_only_the_period_is_read_newest_kept_and_counted_per_kind(tmp_path):
    path = tmp_path / "events.jsonl"
    events = [{"time": stamp(NOW - 10 * DAY), "kind": "mail_rate", "summary": "old"}]
    events += [{"time": stamp(NOW - DAY + n), "kind": "mail_rate" if n % 2 else "file_planted", "summary": str(n)}
               for n in range(5000)]  # more than one block
    write(path, events, tail='{"time": "2026-12-0')  # a line cut short at the end
    result = watch_events.read_events(str(path), NOW - 7 * DAY, limit=3)
    assert result["present"] and result["malformed"] == 1 and result["truncated"]
    assert result["counts"] == {"mail_rate": 2500, "file_planted": 2500}
    assert [event["summary"] for event in result["events"]] == ["4997", "4998", "4999"]


def test_no_log_is_no_events(tmp_path):
    result = watch_events.read_events(str(tmp_path / "missing.jsonl"), NOW)
    assert (result["present"], result["events"], result["counts"]) == (False, [], {})


def test_a_symlink_in_place_of_the_log_is_not_followed(tmp_path):
    target = tmp_path / "elsewhere"
    write(target, [{"time": stamp(NOW), "kind": "mail_rate"}])
    (tmp_path / "events.jsonl").symlink_to(target)
    try:
        watch_events.read_events(str(tmp_path / "events.jsonl"), NOW - DAY)
    except OSError as exc:
        assert exc.errno == 40  # ELOOP: O_NOFOLLOW
    else:
        raise AssertionError("a symlinked events log was read")
