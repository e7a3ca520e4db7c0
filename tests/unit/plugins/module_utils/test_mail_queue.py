"""Mail queue core: Postfix queue files read as data, selected, summarised and exported.

Queue files are written here in Postfix's record format (type byte, base-128 length, data), shaped
like the ones Postfix 3.7 writes on the lab (postcat -e of a deferred message).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tarfile

import pytest

from ansible_collections.hostguard.hosting.plugins.module_utils import mail_queue
from ansible_collections.hostguard.hosting.plugins.module_utils.mail_queue import MailQueueError, QueueFileError

NOW = 1795615131


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
        assert archive.extractfile(entry["file"]).read() == contents["S1"]
    assert entry == {"queue_id": "S1", "queue_name": "deferred", "file": "queue/deferred/S1",
                     "sender": "spammer@site1.example", "recipients": ["v@outside.example"],
                     "size": spam[0].size, "arrival_time": NOW, "sha256": hashlib.sha256(contents["S1"]).hexdigest()}
    assert sorted(os.listdir(tmp_path / "evidence")) == [os.path.basename(archive_path)]


def test_an_export_that_fails_midway_leaves_no_partial_archive(tmp_path):
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    with pytest.raises(OSError):
        mail_queue.export([message("S1", "spammer@site1.example", [])], str(evidence))
    assert os.listdir(evidence) == []


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
