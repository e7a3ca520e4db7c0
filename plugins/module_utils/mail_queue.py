# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Postfix mail queue read as data: summarised, selected, exported before a purge.

Pure standard library: it runs on managed hosts that only have python3.

The queue is read from the queue files themselves, not through ``postqueue -j``
(which needs the master running, and a purge must happen with it stopped) nor
through one ``postcat`` per message (far too slow on a queue of 100,000 spam
messages). Each queue file is a sequence of records: a type byte, a length in
base 128 (low 7 bits first, high bit set on every byte but the last) and the
data (Postfix's ``rec_type.h`` and ``record.c``). Only the envelope is read:
the message content is skipped with the offsets of the size record, and pointer
records are followed, as Postfix's queue manager does.
"""

from __future__ import annotations

import collections
import hashlib
import io
import json
import os
import re
import tarfile
import tempfile
import time

# Record types (rec_type.h) that the envelope summary needs.
REC_SIZE = ord("C")  # "content_size data_offset rcpt_count ...", the first record of a queue file
REC_TIME = ord("T")  # arrival time: "seconds [microseconds]"
REC_FROM = ord("S")  # envelope sender, empty for the null sender
REC_RCPT = ord("R")  # a recipient not yet delivered ("D" once done, "Y" when cancelled)
REC_MESG = ord("M")  # start of the message content
REC_PTR = ord("p")   # pointer: where reading continues (0: the next record)
REC_END = ord("E")

# The queues that hold messages, in the order mail passes through them.
QUEUE_NAMES = ("maildrop", "incoming", "active", "deferred", "hold")
AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
AGE_PATTERN = re.compile(r"^(?:\d+[smhdw])+$")
NULL_SENDER = "<>"
READ_SIZE = 4096
# A queue file follows only a few pointers; more means it is damaged, not a longer envelope.
MAX_POINTERS = 10000


class MailQueueError(Exception):
    pass


class QueueFileError(MailQueueError):
    pass


Message = collections.namedtuple("Message", "queue_id queue_name path sender recipients arrival_time size")


def parse_age(text):
    """Seconds in an age such as '90m', '2h', '3d' or '1d12h'."""
    text = str(text).strip()
    if not AGE_PATTERN.match(text):
        raise MailQueueError("older_than %r is not an age such as 30m, 2h, 3d or 1d12h" % text)
    return sum(int(number) * AGE_UNITS[unit] for number, unit in re.findall(r"(\d+)([smhdw])", text))


def _records(read_at):
    """Yield (type, data) from a queue file, given read_at(offset, size) -> bytes.

    The message content is skipped (the size record says where it ends) and pointer
    records are followed; reading stops at the end record or at the end of the file.
    """
    offset = 0
    content_end = None
    pointers = 0
    while True:
        header = read_at(offset, 6)
        if not header:
            return
        record_type = header[0]
        length, shift, position = 0, 0, 1
        while True:
            if position >= len(header):
                raise QueueFileError("record at offset %d has a truncated length" % offset)
            byte = header[position]
            length |= (byte & 0x7F) << shift
            position += 1
            if not byte & 0x80:
                break
            shift += 7
            if shift > 35:
                raise QueueFileError("record at offset %d has an impossible length" % offset)
        data = read_at(offset + position, length) if length else b""
        if len(data) < length:
            raise QueueFileError("record at offset %d is truncated" % offset)
        offset += position + length
        yield record_type, data
        if record_type == REC_END:
            return
        if record_type == REC_SIZE and content_end is None:
            fields = data.split()
            if len(fields) >= 2:
                content_end = int(fields[0]) + int(fields[1])
        elif record_type == REC_MESG and content_end is not None:
            offset = content_end
        elif record_type == REC_PTR:
            target = int(data or b"0")
            if target:
                pointers += 1
                if pointers > MAX_POINTERS:
                    raise QueueFileError("too many pointer records")
                offset = target


def parse_envelope(read_at):
    """(sender, recipients, arrival_time, content_size) of a queue file; None where it has no such record."""
    sender, arrival_time, size = None, None, None
    recipients = []
    for record_type, data in _records(read_at):
        if record_type == REC_FROM and sender is None:
            sender = data.decode("utf-8", "surrogateescape")
        elif record_type == REC_RCPT:
            recipients.append(data.decode("utf-8", "surrogateescape"))
        elif record_type == REC_TIME and arrival_time is None:
            arrival_time = int(data.split()[0])
        elif record_type == REC_SIZE and size is None:
            size = int(data.split()[0])
    return sender, recipients, arrival_time, size


class _BlockReader:
    """read_at(offset, size) on a file descriptor, a block at a time: most envelopes fit in the first block."""

    def __init__(self, descriptor):
        self.descriptor = descriptor
        self.start, self.block = 0, b""

    def read_at(self, offset, size):
        if not (self.start <= offset and offset + size <= self.start + len(self.block)):
            self.start, self.block = offset, os.pread(self.descriptor, max(size, READ_SIZE), offset)
        return self.block[offset - self.start:offset - self.start + size]


def read_queue_file(path, queue_name):
    """The Message in one queue file, or None when it vanished (delivered) while the queue was read."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    try:
        status = os.fstat(descriptor)
        reader = _BlockReader(descriptor)
        try:
            sender, recipients, arrival_time, size = parse_envelope(reader.read_at)
        except (QueueFileError, ValueError) as error:
            raise QueueFileError("%s: %s" % (path, error))
    finally:
        os.close(descriptor)
    return Message(
        queue_id=os.path.basename(path), queue_name=queue_name, path=path,
        sender=sender or "", recipients=recipients,
        arrival_time=arrival_time if arrival_time is not None else int(status.st_mtime),
        size=size if size is not None else status.st_size,
    )


def scan_queue(queue_directory, queue_names=QUEUE_NAMES):
    """Every message in the queues, walking their hashed subdirectories; (messages, unreadable)."""
    messages, unreadable = [], []
    for queue_name in queue_names:
        pending = [os.path.join(queue_directory, queue_name)]
        while pending:
            try:
                entries = list(os.scandir(pending.pop()))
            except FileNotFoundError:
                continue
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    pending.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    try:
                        message = read_queue_file(entry.path, queue_name)
                    except QueueFileError as error:
                        unreadable.append(str(error))
                        continue
                    if message is not None:
                        messages.append(message)
    return messages, unreadable


def _domain(address):
    return address.rpartition("@")[2].lower() if "@" in address else ""


def _address_matches(address, patterns):
    """An address matches '<>' (the null sender), '@domain' (any address there) or itself, ignoring case."""
    address = address.lower()
    for pattern in patterns:
        if pattern == NULL_SENDER:
            if address == "":
                return True
        elif pattern.startswith("@"):
            if _domain(address) == pattern[1:]:
                return True
        elif address == pattern:
            return True
    return False


def normalise_patterns(patterns, option):
    """Lower-cased patterns, each an address, '@domain' or '<>'; anything else is refused by name."""
    normalised = []
    for pattern in patterns or []:
        text = str(pattern).strip().lower()
        if text != NULL_SENDER and (not re.match(r"^[^@\s<>]*@[^@\s<>]+$", text) or text.endswith("@")):
            raise MailQueueError("%s %r is neither an address (user@domain), a domain (@domain) nor <>" % (option, pattern))
        normalised.append(text)
    return normalised


def select(messages, senders=None, recipients=None, older_than=None, select_all=False, now=None):
    """The messages that match every criterion given: a sender, any recipient, arrived before now - older_than.

    Nothing is selected without a criterion unless select_all is true.
    """
    if not (senders or recipients or older_than is not None or select_all):
        return []
    cutoff = None if older_than is None else (time.time() if now is None else now) - older_than
    return [
        message for message in messages
        if (not senders or _address_matches(message.sender, senders))
        and (not recipients or any(_address_matches(address, recipients) for address in message.recipients))
        and (cutoff is None or message.arrival_time <= cutoff)
    ]


def _top(counter, limit):
    return [{"name": name, "count": count} for name, count in counter.most_common(limit)]


def summarise(messages, top=20, now=None):
    """Count, size, the busiest senders and recipient domains, and the oldest message."""
    senders = collections.Counter(message.sender or NULL_SENDER for message in messages)
    domains = collections.Counter(
        domain for message in messages for domain in {_domain(address) for address in message.recipients})
    queues = collections.Counter(message.queue_name for message in messages)
    oldest = min(messages, key=lambda message: message.arrival_time) if messages else None
    now = time.time() if now is None else now
    return {
        "count": len(messages),
        "size": sum(message.size for message in messages),
        "by_queue": dict(sorted(queues.items())),
        "senders": len(senders),
        "by_sender": _top(senders, top),
        "recipient_domains": len(domains),
        "by_recipient_domain": _top(domains, top),
        "oldest": None if oldest is None else {
            "queue_id": oldest.queue_id, "sender": oldest.sender or NULL_SENDER,
            "arrival_time": oldest.arrival_time, "age_seconds": max(0, int(now - oldest.arrival_time))},
    }


def export(messages, export_dir, now=None):
    """Write the queue files of messages, and a manifest with their sha256, into a tar.gz in export_dir.

    The archive is written under a temporary name and renamed once complete, so a
    file with the final name is always a whole copy. Returns (archive path, its sha256).
    """
    os.makedirs(export_dir, mode=0o700, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    archive_path = os.path.join(export_dir, "mail-queue-%s.tar.gz" % stamp)
    descriptor, temporary = tempfile.mkstemp(prefix=".mail-queue-", suffix=".tar.gz", dir=export_dir)
    try:
        manifest = []
        with os.fdopen(descriptor, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as archive:
            for message in messages:
                with open(message.path, "rb") as queue_file:
                    content = queue_file.read()
                name = "queue/%s/%s" % (message.queue_name, message.queue_id)
                member = tarfile.TarInfo(name)
                member.size, member.mtime, member.mode = len(content), message.arrival_time, 0o600
                archive.addfile(member, io.BytesIO(content))
                manifest.append({
                    "queue_id": message.queue_id, "queue_name": message.queue_name, "file": name,
                    "sender": message.sender or NULL_SENDER, "recipients": message.recipients,
                    "size": message.size, "arrival_time": message.arrival_time,
                    "sha256": hashlib.sha256(content).hexdigest()})
            listing = json.dumps({"messages": manifest}, indent=1, sort_keys=True).encode("utf-8")
            member = tarfile.TarInfo("manifest.json")
            member.size, member.mtime, member.mode = len(listing), int(time.time()), 0o600
            archive.addfile(member, io.BytesIO(listing))
        digest = hashlib.sha256()
        with open(temporary, "rb") as written:
            for block in iter(lambda: written.read(1 << 20), b""):
                digest.update(block)
        os.rename(temporary, archive_path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    return archive_path, digest.hexdigest()
