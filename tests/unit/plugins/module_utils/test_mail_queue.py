"""Mail queue core: Postfix queue files and Exim spool files read as data, selected, summarised,
exported and deleted.

Postfix queue files are written here in Postfix's record format (type byte, base-128 length, data),
shaped like the ones Postfix 3.7 writes on the lab (postcat -e of a deferred message). The Exim spool
files under fixtures/ were written by Exim itself: exim-4.96 by the lab's bookworm Exim (16-character
IDs), exim-4.98 by Debian trixie's Exim 4.98.2 (23-character IDs), each queuing the same messages: a
script's spam, a bounce, a message with one recipient delivered and one deferred (frozen), one received
over SMTP with DSN parameters, a frozen one, and, split_spool_directory on, one in input/h/.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import tarfile
import time

from pathlib import Path

import pytest

from ansible_collections.hostguard.hosting.plugins.module_utils import mail_queue
from ansible_collections.hostguard.hosting.plugins.module_utils.mail_queue import MailQueueError, QueueFileError

NOW = 1795615131
FIXTURES = Path(__file__).parent / "fixtures"


def record(record_type, data):
    data = data.encode() if isinstance(data, str) else data
    length, encoded = len(data), bytearray()
    while True:
        byte = length & 0x7F
        length >>= 7
        encoded.append(byte | 0x80 if length else byte)
        if not length:
            return record_type.encode() + bytes(encoded) + data


def queue_file(sender, recipients, arrival=NOW, content=b"", done=(), extracted=b""):
    """A queue file as cleanup writes it: size record, envelope, content, extracted segment, end."""
    envelope = [record("T", "%d 647499" % arrival), record("A", "rewrite_context=local"), record("F", "root"),
                record("S", sender)]
    for address in done:
        envelope += [record("O", address), record("D", address)]
    for address in recipients:
        envelope += [record("O", address), record("R", address)]
    envelope = b"".join(envelope)
    body = record("N", "Subject: test") + record("N", "") + content
    size_length = len(record("C", "%15d %15d %15d %15d %15d %15d" % (0, 0, 0, 0, 0, 0)))
    data_offset = size_length + len(envelope) + len(record("M", ""))
    size = record("C", "%15d %15d %15d %15d %15d %15d" % (len(body), data_offset, len(recipients), 0, len(body), 0))
    return size + envelope + record("M", "") + body + record("X", "") + extracted + record("E", "")


def parse(data):
    return mail_queue.parse_envelope(lambda offset, size: data[offset:offset + size])


def write_queue(directory, queue_name, queue_id, data):
    path = directory / queue_name / queue_id[0] / queue_id
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def message(queue_id, sender, recipients, arrival=NOW, size=300):
    return mail_queue.Message(queue_id, "deferred", "/nowhere/" + queue_id, sender, recipients, arrival, size)


# --- queue files --------------------------------------------------------------------------------

def test_the_envelope_of_a_deferred_message_is_read():
    data = queue_file("spammer@site1.example", ["victim@outside.example", "other@other.example"])
    sender, recipients, arrival, size = parse(data)
    assert (sender, recipients, arrival) == ("spammer@site1.example", ["victim@outside.example", "other@other.example"], NOW)
    assert size == len(record("N", "Subject: test") + record("N", ""))


def test_delivered_recipients_are_not_pending():
    assert parse(queue_file("info@site1.example", ["b@outside.example"], done=["a@outside.example"]))[1] == [
        "b@outside.example"]


def test_the_content_is_skipped_not_parsed():
    # Bytes that are no valid record: reading them as records would fail.
    data = queue_file("info@site1.example", ["a@outside.example"], content=b"\xff\xff\xff\xff\xff\xff\xff")
    assert parse(data)[:2] == ("info@site1.example", ["a@outside.example"])


def test_recipients_in_the_extracted_segment_are_read():
    data = queue_file("info@site1.example", ["a@outside.example"], extracted=record("R", "bcc@outside.example"))
    assert parse(data)[1] == ["a@outside.example", "bcc@outside.example"]


def test_pointer_records_are_followed():
    # A recipient appended at the end of the file (as a milter adds one) and a pointer back.
    head = record("S", "info@site1.example") + record("R", "a@outside.example")
    pointer_length = len(record("p", "%15d" % 0))
    after_pointer = len(head) + pointer_length
    appended_at = after_pointer + len(record("E", ""))
    data = (head + record("p", "%15d" % appended_at) + record("E", "")
            + record("R", "added@outside.example") + record("p", "%15d" % after_pointer))
    assert parse(data)[1] == ["a@outside.example", "added@outside.example"]


def test_a_maildrop_file_without_a_size_record_is_read_through():
    data = record("T", str(NOW)) + record("S", "") + record("R", "a@outside.example") + record("M", "") \
        + record("N", "Subject: x") + record("X", "") + record("E", "")
    assert parse(data) == ("", ["a@outside.example"], NOW, None)


def test_a_long_record_length_is_decoded():
    recipient = "x" * 300 + "@outside.example"
    assert parse(queue_file("info@site1.example", [recipient]))[1] == [recipient]


def test_an_envelope_larger_than_a_read_block_is_read_from_the_file(tmp_path):
    recipients = ["customer%04d@outside.example" % number for number in range(400)]
    path = write_queue(tmp_path, "deferred", "B788D1A6042",
                       queue_file("info@site1.example", recipients, content=record("N", "x" * 100) * 200))
    assert os.path.getsize(path) > 4 * mail_queue.READ_SIZE
    read = mail_queue.read_queue_file(str(path), "deferred")
    assert (read.queue_id, read.sender, read.recipients, read.arrival_time) == (
        "B788D1A6042", "info@site1.example", recipients, NOW)


def test_a_queue_file_that_vanished_is_skipped(tmp_path):
    assert mail_queue.read_queue_file(str(tmp_path / "gone"), "active") is None


def test_a_truncated_queue_file_is_refused():
    data = queue_file("info@site1.example", ["a@outside.example"])
    with pytest.raises(QueueFileError, match="truncated"):
        parse(data[:120])


def test_the_queues_are_walked_through_their_hashed_subdirectories(tmp_path):
    write_queue(tmp_path, "deferred", "9E1F91A603F", queue_file("spammer@site1.example", ["v@outside.example"]))
    write_queue(tmp_path, "hold", "B788D1A6042", queue_file("info@site1.example", ["a@outside.example"]))
    write_queue(tmp_path, "active", "A48731A6002", b"C\x05broken")
    (tmp_path / "bounce").mkdir()
    write_queue(tmp_path, "bounce", "9E1F91A603F", b"not a queue")
    messages, unreadable = mail_queue.scan_queue(str(tmp_path))
    assert sorted((m.queue_name, m.queue_id, m.sender) for m in messages) == [
        ("deferred", "9E1F91A603F", "spammer@site1.example"), ("hold", "B788D1A6042", "info@site1.example")]
    assert len(unreadable) == 1 and "A48731A6002" in unreadable[0]


# --- selection ----------------------------------------------------------------------------------

QUEUE = [
    message("S1", "spammer@site1.example", ["v1@outside.example"], NOW - 7200),
    message("S2", "Spammer@Site1.example", ["v2@other.example"], NOW - 60),
    message("L1", "info@site1.example", ["customer@outside.example"], NOW - 3 * 86400),
    message("B1", "", ["spammer@site1.example"], NOW - 600),
]


def selected(**criteria):
    return sorted(m.queue_id for m in mail_queue.select(QUEUE, now=NOW, **criteria))


def test_selection_by_sender_ignores_case():
    assert selected(senders=mail_queue.normalise_patterns(["spammer@site1.example"], "sender")) == ["S1", "S2"]


def test_selection_by_sender_domain_and_null_sender():
    assert selected(senders=["@site1.example"]) == ["L1", "S1", "S2"]
    assert selected(senders=["<>"]) == ["B1"]


def test_selection_by_any_recipient():
    assert selected(recipients=["@outside.example"]) == ["L1", "S1"]


def test_selection_by_age():
    assert selected(older_than=mail_queue.parse_age("2h")) == ["L1", "S1"]


def test_criteria_are_combined():
    assert selected(senders=["@site1.example"], older_than=3600) == ["L1", "S1"]


def test_nothing_is_selected_without_a_criterion_unless_all():
    assert selected() == []
    assert selected(select_all=True) == ["B1", "L1", "S1", "S2"]


@pytest.mark.parametrize("text, seconds", [("30m", 1800), ("2h", 7200), ("3d", 259200), ("1d12h", 129600), ("1w", 604800)])
def test_ages_are_parsed(text, seconds):
    assert mail_queue.parse_age(text) == seconds


@pytest.mark.parametrize("text", ["2", "2 hours", "-1h", "h", ""])
def test_a_malformed_age_is_refused_by_value(text):
    with pytest.raises(MailQueueError, match="older_than '%s' is not an age" % text):
        mail_queue.parse_age(text)


@pytest.mark.parametrize("pattern", ["spammer", "spammer@", "a@b@c", "<spammer@site1.example>", "@"])
def test_a_malformed_address_is_refused_by_value(pattern):
    with pytest.raises(MailQueueError, match="sender '%s' is neither" % pattern):
        mail_queue.normalise_patterns([pattern], "sender")


# --- summary and export -------------------------------------------------------------------------

def test_the_summary_counts_senders_domains_and_the_oldest():
    summary = mail_queue.summarise(QUEUE, top=2, now=NOW)
    assert (summary["count"], summary["size"], summary["senders"], summary["recipient_domains"]) == (4, 1200, 4, 3)
    assert summary["by_recipient_domain"] == [{"name": "outside.example", "count": 2},
                                              {"name": "other.example", "count": 1}]
    assert summary["oldest"] == {"queue_id": "L1", "sender": "info@site1.example", "arrival_time": NOW - 3 * 86400,
                                 "age_seconds": 3 * 86400}
    assert mail_queue.summarise([], now=NOW)["oldest"] is None


def test_the_export_holds_each_queue_file_and_its_sha256(tmp_path):
    queue_dir = tmp_path / "spool"
    contents = {queue_id: queue_file(sender, ["v@outside.example"]) for queue_id, sender in
                [("S1", "spammer@site1.example"), ("L1", "info@site1.example")]}
    for queue_id, data in contents.items():
        write_queue(queue_dir, "deferred", queue_id, data)
    messages = mail_queue.scan_queue(str(queue_dir))[0]
    spam = mail_queue.select(messages, senders=["spammer@site1.example"])
    archive_path, digest = mail_queue.export(spam, str(tmp_path / "evidence"), now=NOW)
    assert oct(os.stat(archive_path).st_mode & 0o777) == "0o600"
    assert oct(os.stat(tmp_path / "evidence").st_mode & 0o777) == "0o700"
    assert hashlib.sha256(open(archive_path, "rb").read()).hexdigest() == digest
    with tarfile.open(archive_path) as archive:
        (entry,) = json.load(archive.extractfile("manifest.json"))["messages"]
        assert archive.extractfile(entry["files"][0]["file"]).read() == contents["S1"]
    assert entry == {"queue_id": "S1", "queue_name": "deferred",
                     "files": [{"file": "queue/deferred/S1", "sha256": hashlib.sha256(contents["S1"]).hexdigest()}],
                     "sender": "spammer@site1.example", "recipients": ["v@outside.example"],
                     "size": spam[0].size, "arrival_time": NOW}
    assert sorted(os.listdir(tmp_path / "evidence")) == [os.path.basename(archive_path)]


def test_an_export_that_fails_midway_leaves_no_partial_archive(tmp_path):
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    with pytest.raises(OSError):
        mail_queue.export([message("S1", "spammer@site1.example", [])], str(evidence))
    assert os.listdir(evidence) == []


def test_the_evidence_archives_of_past_purges_are_listed_newest_first_with_their_messages(tmp_path):
    queue_dir, evidence = tmp_path / "spool", tmp_path / "evidence"
    for queue_id, sender in [("S1", "spammer@site1.example"), ("S2", "spammer@site1.example"),
                             ("L1", "info@site1.example")]:
        write_queue(queue_dir, "deferred", queue_id, queue_file(sender, ["v@outside.example"]))
    messages = mail_queue.scan_queue(str(queue_dir))[0]
    first, first_digest = mail_queue.export(messages[:1], str(evidence), now=NOW - 86400)
    second, second_digest = mail_queue.export(messages, str(evidence), now=NOW)
    (evidence / "mail-queue-20261101T000000Z.tar.gz").write_bytes(b"cut short")
    (evidence / "notes.txt").write_text("not an archive")
    archives = mail_queue.evidence_archives(str(evidence), top=1)
    assert [item["path"] for item in archives] == [second, first, str(evidence / "mail-queue-20261101T000000Z.tar.gz")]
    purged_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW))
    assert archives[0] == {"path": second, "purged_at": purged_at,
                           "size": os.path.getsize(second), "sha256": second_digest, "messages": 3,
                           "by_sender": [{"name": "spammer@site1.example", "count": 2}], "error": None}
    assert (archives[1]["sha256"], archives[1]["messages"]) == (first_digest, 1)
    assert archives[2]["messages"] is None and archives[2]["error"].startswith("ReadError")
    assert mail_queue.evidence_archives(str(tmp_path / "none")) == []


# --- a queue of 100,000 messages ----------------------------------------------------------------

def test_a_queue_of_100000_messages_is_read_in_one_pass_without_subprocesses(tmp_path, monkeypatch):
    spam = queue_file("spammer@site1.example", ["victim@outside.example"], content=record("N", "buy") * 50)
    legitimate = queue_file("info@site1.example", ["customer@outside.example"])
    for number in range(100000):
        queue_id = "%011X" % (0xA000000000 + number)
        write_queue(tmp_path, "deferred", queue_id, legitimate if number % 100 == 0 else spam)

    def no_subprocess(*args, **kwargs):
        raise AssertionError("a subprocess was started: %r" % (args,))

    opened = []
    real_open = os.open
    monkeypatch.setattr(subprocess, "Popen", no_subprocess)
    monkeypatch.setattr(os, "open", lambda path, *args, **kwargs: opened.append(path) or real_open(path, *args, **kwargs))
    messages, unreadable = mail_queue.scan_queue(str(tmp_path))
    chosen = mail_queue.select(messages, senders=["spammer@site1.example"])
    assert unreadable == []
    assert len(opened) == len(set(opened)) == 100000
    assert (len(messages), len(chosen)) == (100000, 99000)
    assert mail_queue.summarise(messages)["by_sender"] == [{"name": "spammer@site1.example", "count": 99000},
                                                           {"name": "info@site1.example", "count": 1000}]


def test_a_whole_file_read_at_once_needs_no_further_read():
    data = queue_file("spammer@site1.example", ["victim@outside.example"], content=record("N", "buy") * 20)
    reads = []
    result = mail_queue.parse_envelope(lambda offset, size: reads.append(offset) or data[offset:offset + size],
                                       data, head_is_whole_file=True)
    assert result[:3] == ("spammer@site1.example", ["victim@outside.example"], NOW)
    assert reads == []


def test_a_head_shorter_than_the_file_is_read_on_from_the_file():
    recipients = ["customer%04d@outside.example" % number for number in range(50)]
    data = queue_file("info@site1.example", recipients)
    result = mail_queue.parse_envelope(lambda offset, size: data[offset:offset + size], data[:100])
    assert result[1] == recipients


# --- taking Postfix messages out of the queue ---------------------------------------------------

def spam_and_kept(tmp_path, spam_ids, kept_ids, queue_name="deferred"):
    """Queue files (and a defer log each) from the spammer and from a legitimate sender."""
    for queue_id in spam_ids:
        write_queue(tmp_path, queue_name, queue_id, queue_file("spammer@site1.example", ["v@outside.example"]))
        write_queue(tmp_path, "defer", queue_id, b"defer log")
    for queue_id in kept_ids:
        write_queue(tmp_path, queue_name, queue_id, queue_file("info@site1.example", ["a@outside.example"]))
        write_queue(tmp_path, "defer", queue_id, b"defer log " + queue_id.encode())
    return mail_queue.select(mail_queue.scan_queue(str(tmp_path))[0], senders=["spammer@site1.example"])


def queue_tree(tmp_path):
    """{path under the queue directory: content} of every file outside the held directories."""
    return {str(path.relative_to(tmp_path)): path.read_bytes() for path in tmp_path.rglob("*")
            if path.is_file() and not path.relative_to(tmp_path).parts[0].startswith("hostguard-")}


def test_moving_out_takes_the_queue_file_and_its_logs_as_postsuper_deletes_them(tmp_path):
    """Two of four in each directory: the files are moved one by one."""
    chosen = spam_and_kept(tmp_path, ["9E1F91A603F", "9A1F91A6040"], ["9B88D1A6042", "9C88D1A6043"])
    write_queue(tmp_path, "bounce", "9E1F91A603F", b"bounce log")
    write_queue(tmp_path, "trace", "9E1F91A603F", b"trace log")
    directory = tmp_path / "deferred" / "9"
    inode = directory.stat().st_ino
    before = queue_tree(tmp_path)
    moved = mail_queue.move_postfix_messages(str(tmp_path), chosen)
    assert (sorted(moved.queue_ids), moved.errors) == (["9A1F91A6040", "9E1F91A603F"], [])
    kept = {path: data for path, data in before.items() if "9A1F" not in path and "9E1F" not in path}
    assert queue_tree(tmp_path) == kept
    held = Path(moved.held)
    assert held.parent == tmp_path and held.name.startswith("hostguard-purged-")
    assert {str(path.relative_to(held)) for path in held.rglob("*") if path.is_file()} == {
        "deferred/9/9E1F91A603F", "deferred/9/9A1F91A6040", "defer/9/9E1F91A603F", "defer/9/9A1F91A6040",
        "bounce/9/9E1F91A603F", "trace/9/9E1F91A603F"}
    assert directory.stat().st_ino == inode
    assert mail_queue.held_directories(str(tmp_path)) == [moved.held]
    mail_queue.remove_held(str(tmp_path), moved.held)
    assert not held.exists() and queue_tree(tmp_path) == kept


def test_a_directory_of_mostly_selected_messages_is_moved_whole_and_made_anew_as_it_was(tmp_path):
    chosen = spam_and_kept(tmp_path, ["9E1F91A603F", "9A1F91A6040", "9D1F91A6041"], ["9B88D1A6042"])
    directory = tmp_path / "deferred" / "9"
    directory.chmod(0o750)
    os.chown(directory, 4321, 4322)
    try:
        os.setxattr(directory, "user.hostguard", b"label")
    except OSError:
        pytest.skip("no user extended attributes on this file system")
    old = directory.stat()
    before = queue_tree(tmp_path)
    moved = mail_queue.move_postfix_messages(str(tmp_path), chosen)
    assert (len(moved.queue_ids), moved.errors) == (3, [])
    new = directory.stat()
    assert new.st_ino != old.st_ino  # moved whole, made anew
    assert (new.st_mode, new.st_uid, new.st_gid) == (old.st_mode, 4321, 4322)
    assert os.getxattr(directory, "user.hostguard") == b"label"
    assert queue_tree(tmp_path) == {path: data for path, data in before.items() if "9B88" in path}
    assert sorted(os.listdir(Path(moved.held) / "deferred" / "9")) == ["9A1F91A6040", "9D1F91A6041", "9E1F91A603F"]


def test_maildrop_is_never_moved_whole_since_postdrop_writes_to_it_while_postfix_is_stopped(tmp_path):
    write_queue(tmp_path, "maildrop", "9E1F91A603F", queue_file("spammer@site1.example", ["v@outside.example"]))
    maildrop = tmp_path / "maildrop" / "9"
    inode = maildrop.stat().st_ino
    (message,) = mail_queue.scan_queue(str(tmp_path))[0]
    assert mail_queue.move_postfix_messages(str(tmp_path), [message]).queue_ids == ["9E1F91A603F"]
    assert maildrop.stat().st_ino == inode and os.listdir(maildrop) == []


def test_a_directory_with_subdirectories_is_not_moved_whole(tmp_path):
    """Queue files at two depths, as after a change of hash_queue_depth: each kept file stays where it was."""
    chosen = spam_and_kept(tmp_path, ["9E1F91A603F"], ["9B88D1A6042"])
    (tmp_path / "deferred" / "9A1F91A6040").write_bytes(queue_file("spammer@site1.example", ["v@outside.example"]))
    chosen = mail_queue.select(mail_queue.scan_queue(str(tmp_path))[0], senders=["spammer@site1.example"])
    inode = (tmp_path / "deferred").stat().st_ino
    moved = mail_queue.move_postfix_messages(str(tmp_path), chosen)
    assert (sorted(moved.queue_ids), moved.errors) == (["9A1F91A6040", "9E1F91A603F"], [])
    assert (tmp_path / "deferred").stat().st_ino == inode
    assert sorted(queue_tree(tmp_path)) == ["defer/9/9B88D1A6042", "deferred/9/9B88D1A6042"]


def test_a_message_that_vanished_is_not_counted_as_moved(tmp_path):
    write_queue(tmp_path, "deferred", "9E1F91A603F", queue_file("spammer@site1.example", ["v@outside.example"]))
    (message,) = mail_queue.scan_queue(str(tmp_path))[0]
    os.unlink(message.path)
    assert mail_queue.move_postfix_messages(str(tmp_path), [message])[1:] == ([], [])


def test_a_kept_file_that_cannot_be_moved_back_is_named_and_never_cleaned_away(tmp_path, monkeypatch):
    chosen = spam_and_kept(tmp_path, ["9E1F91A603F", "9A1F91A6040"], ["9B88D1A6042"])
    rename = os.rename

    def failing_rename(source, destination):
        if str(destination) == str(tmp_path / "deferred" / "9" / "9B88D1A6042"):
            raise OSError(5, "Input/output error")
        rename(source, destination)

    monkeypatch.setattr(mail_queue.os, "rename", failing_rename)
    moved = mail_queue.move_postfix_messages(str(tmp_path), chosen)
    assert moved.errors == ["%s: kept, but left in %s: Input/output error" % (
        tmp_path / "deferred" / "9" / "9B88D1A6042", moved.held + "/deferred/9")]
    assert os.path.basename(moved.held).startswith("hostguard-purge-incomplete-")
    assert (Path(moved.held) / "deferred" / "9" / "9B88D1A6042").is_file()
    assert mail_queue.held_directories(str(tmp_path)) == []
    with pytest.raises(MailQueueError, match="is not a directory of purged messages"):
        mail_queue.remove_held(str(tmp_path), moved.held)


def test_a_directory_that_cannot_be_made_anew_is_put_back_and_its_files_moved_one_by_one(tmp_path, monkeypatch):
    chosen = spam_and_kept(tmp_path, ["9E1F91A603F", "9A1F91A6040"], ["9B88D1A6042"])
    inode = (tmp_path / "deferred" / "9").stat().st_ino

    def failing_chown(*args):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(mail_queue.os, "chown", failing_chown)
    moved = mail_queue.move_postfix_messages(str(tmp_path), chosen)
    assert (len(moved.queue_ids), moved.errors) == (2, [])
    assert (tmp_path / "deferred" / "9").stat().st_ino == inode
    assert sorted(queue_tree(tmp_path)) == ["defer/9/9B88D1A6042", "deferred/9/9B88D1A6042"]


def test_a_directory_that_cannot_be_renamed_has_its_files_moved_one_by_one(tmp_path, monkeypatch):
    chosen = spam_and_kept(tmp_path, ["9E1F91A603F", "9A1F91A6040"], ["9B88D1A6042"])
    rename = os.rename

    def no_directory_renames(source, destination):
        if os.path.isdir(source):
            raise OSError(18, "Invalid cross-device link")
        rename(source, destination)

    monkeypatch.setattr(mail_queue.os, "rename", no_directory_renames)
    moved = mail_queue.move_postfix_messages(str(tmp_path), chosen)
    assert (len(moved.queue_ids), moved.errors) == (2, [])
    assert sorted(queue_tree(tmp_path)) == ["defer/9/9B88D1A6042", "deferred/9/9B88D1A6042"]


@pytest.mark.parametrize("held", ["/var/spool/postfix/deferred", "{queue}/deferred", "{queue}/hostguard-purge-incomplete-x",
                                  "{queue}/../hostguard-purged-x"])
def test_only_a_held_directory_of_the_queue_is_ever_removed(tmp_path, held):
    path = held.format(queue=tmp_path)
    with pytest.raises(MailQueueError, match="is not a directory of purged messages in"):
        mail_queue.remove_held(str(tmp_path), path)


# --- Exim spools --------------------------------------------------------------------------------

EXIM_SPOOLS = {
    # version: (id of the spam, the bounce, the one partly delivered, the DSN one, the frozen one, the split one)
    "exim-4.96": ("1xWF4U-0004Zr-1f", "1xWF4U-0004Zt-1h", "1xWF4U-0004Zv-1j", "1xWF4U-0004a3-1t",
                  "1xWF4U-0004a5-1v", "1xWF4h-0004kc-00"),
    "exim-4.98": ("1xWF4U-000000004eI-3AtJ", "1xWF4U-000000004eK-3Df9", "1xWF4U-000000004eM-3GJo",
                  "1xWF4U-000000004eU-3SrG", "1xWF4U-000000004eW-3VeZ", "1xWF4h-000000004ob-0VdA"),
}


@pytest.mark.parametrize("version", sorted(EXIM_SPOOLS))
def test_an_exim_spool_is_read_split_and_unsplit_with_ids_of_either_length(version):
    spam, bounce, partly, dsn, frozen, split = EXIM_SPOOLS[version]
    messages, unreadable = mail_queue.scan_exim_spool(str(FIXTURES / version))
    assert unreadable == []
    read = {message.queue_id: message for message in messages}
    assert {queue_id: (m.sender, m.recipients, m.queue_name) for queue_id, m in read.items()} == {
        spam: ("spammer@site1.example", ["victim1@outside.example"], "queued"),
        bounce: ("", ["spammer@site1.example"], "queued"),
        # customer@mail.site1.example was delivered: it is in the non-recipients tree.
        partly: ("info@site1.example", ["customer9@outside.example"], "frozen"),
        dsn: ("info@site1.example", ["customer1@outside.example", "customer2@other.example"], "queued"),
        frozen: ("spammer@site1.example", ["victim2@outside.example"], "frozen"),
        split: ("spammer@site1.example", ["victim3@outside.example"], "queued"),
    }
    assert len(spam) == (16 if version == "exim-4.96" else 23)
    assert read[split].path == str(FIXTURES / version / "input" / "h" / (split + "-H"))
    for queue_id, message in read.items():
        # The fourth line of the -H file: "<arrival time> <delay warnings sent>".
        assert message.arrival_time == int(Path(message.path).read_text().splitlines()[3].split()[0])
        # Exim's IDs begin with the time of arrival in base 62.
        assert abs(message.arrival_time - mail_queue.exim_message_id_time(queue_id)) <= 1
        assert [name for name, _path in message.files] == ["input/%s-H" % queue_id, "input/%s-D" % queue_id]


@pytest.mark.parametrize("version", sorted(EXIM_SPOOLS))
def test_the_size_of_an_exim_message_is_its_headers_and_body(version):
    spam = EXIM_SPOOLS[version][0]
    (message,) = [m for m in mail_queue.scan_exim_spool(str(FIXTURES / version))[0] if m.queue_id == spam]
    header = (FIXTURES / version / "input" / (spam + "-H")).read_bytes()
    headers = header[header.index(b"\n\n") + 2:]
    body = (FIXTURES / version / "input" / (spam + "-D")).read_bytes().split(b"\n", 1)[1]
    # Each header is "<length><flag> <text>": the lengths count the text only.
    lengths = [int(match) for match in re.findall(rb"(?m)^(\d{3})[A-Z* ] ", headers)]
    assert message.size == sum(lengths) + len(body)


def test_exim_recipient_lines_of_every_form_give_the_address():
    assert mail_queue._exim_recipient("a@outside.example") == "a@outside.example"
    # Exim 3 and early Exim 4 forms, with parent numbers.
    assert mail_queue._exim_recipient("a@outside.example 0,1,0") == "a@outside.example"
    assert mail_queue._exim_recipient("a@outside.example 2") == "a@outside.example"
    # Current: ORCPT and errors_to (written as Exim 4.96 and 4.98 write them, see the fixtures).
    assert mail_queue._exim_recipient(
        "a b@outside.example rfc822;a@outside.example 24,12 bounces@site1.example 21,-1#3") == "a b@outside.example"
    assert mail_queue._exim_recipient("a@outside.example  0,0  0,-1#3") == "a@outside.example"


def exim_header(*options, tree=b"XX\n", recipients=(b"victim@outside.example",), first=b"1xWF4U-0004Zr-1f-H"):
    return b"".join([first + b"\n", b"root 0 0\n", b"<spammer@site1.example>\n", b"1795621090 0\n",
                     *options, tree, b"%d\n" % len(recipients), *(r + b"\n" for r in recipients), b"\n",
                     b"021  Subject: cheap pills\n"])


def test_acl_variables_spanning_lines_are_skipped_by_their_length():
    # "-aclm <name> <length>", then <length> bytes that may hold newlines and look like options or recipients.
    data = exim_header(b"-aclc 0 8\n-frozen1\n", b"-aclm _spam 12\nXX\n9\nY@x\n-N\n\n", b"-ident root\n")
    assert mail_queue.parse_exim_header(data) == ("spammer@site1.example", ["victim@outside.example"], 1795621090, 21,
                                                  False)


def test_a_non_recipients_tree_of_several_nodes_is_read_whole():
    tree = b"YY b@outside.example\nNN a@outside.example\nNY c@outside.example\nNN d@outside.example\n"
    data = exim_header(tree=tree, recipients=[b"%s@outside.example" % name for name in (b"a", b"b", b"c", b"d", b"e")])
    assert mail_queue.parse_exim_header(data)[1] == ["e@outside.example"]


@pytest.mark.parametrize("data, problem", [
    (exim_header(first=b"1xWF4U-0004Zr-1f-D"), "is not the file's name"),
    (exim_header().replace(b"<spammer@site1.example>", b"spammer@site1.example"), "is not <address>"),
    (exim_header(b"-aclc 0 500\n"), "ACL variable"),
    (exim_header()[:-10], "truncated"),
    (exim_header().replace(b"\n1\nvictim", b"\nx\nvictim"), "no recipient count"),
])
def test_a_damaged_exim_header_file_is_refused(data, problem):
    with pytest.raises(QueueFileError, match=problem):
        mail_queue.parse_exim_header(data)


def test_a_damaged_header_file_is_reported_and_the_rest_of_the_spool_read(tmp_path):
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "1xWF4U-0004Zr-1f-H").write_bytes(exim_header())
    (tmp_path / "input" / "1xWF4U-0004Zs-1f-H").write_bytes(b"1xWF4U-0004Zs-1f-H\nroot 0 0\n")
    (tmp_path / "input" / "hdr.1234").write_bytes(b"a header file Exim is still writing")
    messages, unreadable = mail_queue.scan_exim_spool(str(tmp_path))
    assert [m.queue_id for m in messages] == ["1xWF4U-0004Zr-1f"]
    assert len(unreadable) == 1 and "1xWF4U-0004Zs-1f-H" in unreadable[0]


def test_an_exim_spool_without_input_is_empty(tmp_path):
    assert mail_queue.scan_exim_spool(str(tmp_path)) == ([], [])


def test_the_export_of_an_exim_message_holds_its_header_and_data_files(tmp_path):
    messages = mail_queue.scan_exim_spool(str(FIXTURES / "exim-4.98"))[0]
    spam = mail_queue.select(messages, senders=["spammer@site1.example"])
    archive_path, _manifest = mail_queue.export(spam, str(tmp_path), now=NOW)
    with tarfile.open(archive_path) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))["messages"]
        for entry in manifest:
            for item, suffix in zip(entry["files"], ("-H", "-D")):
                content = archive.extractfile(item["file"]).read()
                assert content.startswith((entry["queue_id"] + suffix + "\n").encode())
                assert item["sha256"] == hashlib.sha256(content).hexdigest()
    assert sorted(entry["queue_id"] for entry in manifest) == sorted(m.queue_id for m in spam)
    assert len(spam) == 3


def test_exim_daemons_are_found_by_their_command_line(tmp_path):
    for pid, argv in [(10, [b"/usr/sbin/exim4", b"-bd", b"-q30m"]), (11, [b"/usr/sbin/exim4", b"-Mc", b"1x"]),
                      (12, [b"/usr/sbin/exim", b"-q1h"]), (13, [b"/usr/bin/python3", b"-bd"])]:
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "cmdline").write_bytes(b"\0".join(argv) + b"\0")
    (tmp_path / "self").mkdir()
    assert mail_queue.exim_daemons(str(tmp_path)) == [(10, "/usr/sbin/exim4 -bd -q30m"), (12, "/usr/sbin/exim -q1h")]


def test_exim_removal_output_is_read_as_exim_prints_it():
    output = ("Message 1xWF4U-0004Zr-1f has been removed\n"
              "Spool data file for 1xWF4U-0000xx-00 does not exist\nContinuing, to ensure all files removed\n"
              "Message 1xWF4U-0000xx-00 has been removed or did not exist\n")
    assert mail_queue.exim_removed(output) == ["1xWF4U-0004Zr-1f"]


def test_a_spool_of_100000_exim_messages_is_read_one_open_per_message(tmp_path, monkeypatch):
    template = (FIXTURES / "exim-4.98" / "input" / "1xWF4U-000000004eI-3AtJ-H").read_bytes()
    (tmp_path / "input").mkdir()
    for number in range(20000):
        queue_id = "1xWF4U-%011d-%04d" % (number, 0)
        (tmp_path / "input" / (queue_id + "-H")).write_bytes(
            template.replace(b"1xWF4U-000000004eI-3AtJ", queue_id.encode()))
    opened = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda path, *args, **kwargs: opened.append(path) or real_open(path, *args, **kwargs))
    messages, unreadable = mail_queue.scan_exim_spool(str(tmp_path))
    assert (len(messages), unreadable) == (20000, [])
    assert len(opened) == len(set(opened)) == 20000


# What mail_queue_info reports. Neither MTA runs here: which() and the MTA's configuration tool are stand-ins
# answering as postconf and exim do; the queues read are real files (the lab's scenarios mail_queue and
# mail_queue_exim read live ones).
def which_of(*present):
    return lambda name: f"/usr/sbin/{name}" if name in present else None


@pytest.mark.parametrize("present,wanted,expected", [
    (("postsuper", "exim4"), "auto", ("postfix", "/usr/sbin/postsuper")),
    (("exim4",), "auto", ("exim", "/usr/sbin/exim4")),
    (("exim",), "exim", ("exim", "/usr/sbin/exim")),
    (("postsuper", "exim4"), "exim", ("exim", "/usr/sbin/exim4")),
])
def test_the_mta_is_found_by_its_commands(present, wanted, expected):
    assert mail_queue.find_mta(which_of(*present), wanted) == expected


@pytest.mark.parametrize("present,wanted,message", [
    ((), "auto", "found neither Postfix (postsuper) nor Exim (exim4, exim)"),
    (("exim4",), "postfix", "found no postsuper command"),
    (("postsuper",), "exim", "found no exim4 or exim command"),
])
def test_a_missing_mta_is_named(present, wanted, message):
    with pytest.raises(MailQueueError, match=re.escape(message)):
        mail_queue.find_mta(which_of(*present), wanted)


def test_the_queue_directory_is_the_one_the_mta_is_configured_with():
    asked = []

    def run(argv):
        asked.append(argv)
        return (0, "/var/spool/postfix\n", "") if argv[0].endswith("postconf") else (
            0, "spool_directory = /var/spool/exim4\n", "")

    which = which_of("postconf")
    assert mail_queue.configured_queue_directory(run, which, "postfix", "/usr/sbin/postsuper") == "/var/spool/postfix"
    assert mail_queue.configured_queue_directory(run, which, "exim", "/usr/sbin/exim4") == "/var/spool/exim4"
    assert asked == [["/usr/sbin/postconf", "-h", "queue_directory"], ["/usr/sbin/exim4", "-bP", "spool_directory"]]
    with pytest.raises(MailQueueError, match="exim4 -bP spool_directory failed"):
        mail_queue.configured_queue_directory(lambda argv: (1, "", "no config"), which, "exim", "/usr/sbin/exim4")


def test_the_report_of_a_postfix_queue_names_the_busiest_sender_and_purged_mail_left_behind(tmp_path):
    spam_and_kept(tmp_path, ["A1", "A2", "A3"], ["B1"])
    held = tmp_path / (mail_queue.HELD_PREFIX + "20261125T000000Z-interrupted")
    held.mkdir()
    before = queue_tree(tmp_path)
    report = mail_queue.queue_report(lambda argv: (0, str(tmp_path) + "\n", ""), which_of("postsuper", "postconf"))
    assert (report["mta"], report["service"], report["queue_directory"]) == ("postfix", "postfix", str(tmp_path))
    assert report["queue"]["count"] == 4
    assert report["queue"]["by_sender"] == [{"name": "spammer@site1.example", "count": 3},
                                            {"name": "info@site1.example", "count": 1}]
    assert report["held_directories"] == [str(held)]
    assert queue_tree(tmp_path) == before and held.is_dir()


@pytest.mark.parametrize("version", ["exim-4.96", "exim-4.98"])
def test_the_report_of_an_exim_spool_written_by_exim(version):
    def never_run(argv):
        raise AssertionError(f"the directory was given: nothing to ask ({argv})")

    report = mail_queue.queue_report(never_run, which_of("exim4"), directory=str(FIXTURES / version), top=3)
    assert (report["mta"], report["service"], report["held_directories"]) == ("exim", "exim4", [])
    assert report["queue"]["count"] == len(mail_queue.scan_exim_spool(str(FIXTURES / version))[0]) > 0
    assert len(report["queue"]["by_sender"]) <= 3
