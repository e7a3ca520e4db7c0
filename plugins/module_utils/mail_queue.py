# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Postfix and Exim mail queues read as data: summarised, selected, exported before a purge.

Pure standard library: it runs on managed hosts that only have python3.

The queue is read from the queue files themselves, not through ``postqueue -j``
(which needs the master running, and a purge must happen with it stopped) nor
through one ``postcat`` per message (far too slow on a queue of 100,000 spam
messages). Each queue file is a sequence of records: a type byte, a length in
base 128 (low 7 bits first, high bit set on every byte but the last) and the
data (Postfix's ``rec_type.h`` and ``record.c``). Only the envelope is read:
the message content is skipped with the offsets of the size record, and pointer
records are followed, as Postfix's queue manager does.

Exim's queue is read from the ``-H`` (envelope and headers) files of its spool's
``input`` directory, split into one-character subdirectories or not, the way
Exim's ``spool_read_header()`` reads them, not through one ``exim -Mvh`` per
message nor ``exiqgrep``, which re-reads every header file per query.
"""

from __future__ import annotations

import collections
import hashlib
import io
import json
import os
import re
import shutil
import stat
import tarfile
import tempfile
import time

from ansible_collections.hostguard.hosting.plugins.module_utils.atomic_file import atomic_file

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
# Read at once from the start of a queue file: the whole of most messages.
HEAD_SIZE = 16384
# A queue file follows only a few pointers; more means it is damaged, not a longer envelope.
MAX_POINTERS = 10000


class MailQueueError(Exception):
    pass


class QueueFileError(MailQueueError):
    pass


# files: (name in the evidence archive, path) of every file of the message, its envelope file first.
Message = collections.namedtuple("Message", "queue_id queue_name path sender recipients arrival_time size files")
Message.__new__.__defaults__ = ((),)


def parse_age(text):
    """Seconds in an age such as '90m', '2h', '3d' or '1d12h'."""
    text = str(text).strip()
    if not AGE_PATTERN.match(text):
        raise MailQueueError("older_than %r is not an age such as 30m, 2h, 3d or 1d12h" % text)
    return sum(int(number) * AGE_UNITS[unit] for number, unit in re.findall(r"(\d+)([smhdw])", text))


def parse_envelope(read_at, head=b"", head_is_whole_file=False):
    """(sender, recipients, arrival_time, content_size) of a queue file; None where it has no such record.

    read_at(offset, size) -> bytes reads the file; head holds its first bytes when the caller has
    them already (one read holds the whole file of most messages, and then no other read is made). The message content is skipped
    (the size record says where it ends) and pointer records are followed; reading stops at the end
    record or at the end of the file. One loop without helper calls: it runs once per queued message.
    """
    sender, arrival_time, size = None, None, None
    recipients = []
    # buffer holds the file's bytes from offset start on; complete: up to the end of the file.
    buffer, start, complete = head, 0, head_is_whole_file
    offset, content_end, pointers = 0, None, 0
    while True:
        position = offset - start
        if position < 0 or (position + 6 > len(buffer) and not complete):
            buffer, start, position = read_at(offset, READ_SIZE), offset, 0
            complete = len(buffer) < READ_SIZE
        if position >= len(buffer):
            break
        record_type = buffer[position]
        if len(buffer) - position < 2:
            raise QueueFileError("record at offset %d has a truncated length" % offset)
        byte = buffer[position + 1]
        if byte < 0x80:
            length, data_at = byte, position + 2
        else:
            length, shift, cursor = 0, 0, position + 1
            while True:
                if cursor >= len(buffer):
                    raise QueueFileError("record at offset %d has a truncated length" % offset)
                byte = buffer[cursor]
                length |= (byte & 0x7F) << shift
                cursor += 1
                if not byte & 0x80:
                    break
                shift += 7
                if shift > 35:
                    raise QueueFileError("record at offset %d has an impossible length" % offset)
            data_at = cursor
        if data_at + length > len(buffer):
            header_length = data_at - position
            wanted = max(READ_SIZE, header_length + length)
            buffer, start = read_at(offset, wanted), offset
            position, data_at, complete = 0, header_length, len(buffer) < wanted
            if len(buffer) < data_at + length:
                raise QueueFileError("record at offset %d is truncated" % offset)
        offset += data_at - position + length
        if record_type == REC_RCPT:
            recipients.append(buffer[data_at:data_at + length].decode("utf-8", "surrogateescape"))
        elif record_type == REC_END:
            break
        elif record_type == REC_FROM:
            if sender is None:
                sender = buffer[data_at:data_at + length].decode("utf-8", "surrogateescape")
        elif record_type == REC_TIME:
            if arrival_time is None:
                arrival_time = int(buffer[data_at:data_at + length].split()[0])
        elif record_type == REC_SIZE:
            if content_end is None:
                fields = buffer[data_at:data_at + length].split()
                if size is None and fields:
                    size = int(fields[0])
                if len(fields) >= 2:
                    content_end = int(fields[0]) + int(fields[1])
        elif record_type == REC_MESG:
            if content_end is not None:
                offset = content_end
        elif record_type == REC_PTR:
            target = int(buffer[data_at:data_at + length] or b"0")
            if target:
                pointers += 1
                if pointers > MAX_POINTERS:
                    raise QueueFileError("too many pointer records")
                offset = target
    return sender, recipients, arrival_time, size


def read_queue_file(path, queue_name):
    """The Message in one queue file, or None when it vanished (delivered) while the queue was read."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    try:
        status = os.fstat(descriptor)
        head = os.pread(descriptor, HEAD_SIZE, 0)
        try:
            sender, recipients, arrival_time, size = parse_envelope(
                lambda offset, length: os.pread(descriptor, length, offset), head, len(head) < HEAD_SIZE)
        except (QueueFileError, ValueError) as error:
            raise QueueFileError("%s: %s" % (path, error))
    finally:
        os.close(descriptor)
    queue_id = os.path.basename(path)
    return Message(
        queue_id=queue_id, queue_name=queue_name, path=path,
        sender=sender or "", recipients=recipients,
        arrival_time=arrival_time if arrival_time is not None else int(status.st_mtime),
        size=size if size is not None else status.st_size,
        files=(("queue/%s/%s" % (queue_name, queue_id), path),),
    )


def _queue_entries(directory):
    """Every non-directory entry under a Postfix queue directory, whatever its hashing; none if it is missing."""
    pending = [directory]
    while pending:
        try:
            entries = list(os.scandir(pending.pop()))
        except FileNotFoundError:
            continue
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                pending.append(entry.path)
            else:
                yield entry


def scan_queue(queue_directory, queue_names=QUEUE_NAMES):
    """Every message in the queues, walking their hashed subdirectories; (messages, unreadable)."""
    messages, unreadable = [], []
    for queue_name in queue_names:
        for entry in _queue_entries(os.path.join(queue_directory, queue_name)):
            if not entry.is_file(follow_symlinks=False):
                continue
            try:
                message = read_queue_file(entry.path, queue_name)
            except QueueFileError as error:
                unreadable.append(str(error))
                continue
            if message is not None:
                messages.append(message)
    return messages, unreadable


# Per-message logs that postsuper -d removes with the queue file (postsuper.c, delete_one()).
LOG_QUEUE_NAMES = ("bounce", "defer", "trace")


def log_files(queue_directory):
    """{queue_id: [path, ...]} of the bounce, defer and trace logs, whatever the queues' hashing."""
    found = collections.defaultdict(list)
    for queue_name in LOG_QUEUE_NAMES:
        for entry in _queue_entries(os.path.join(queue_directory, queue_name)):
            found[entry.name].append(entry.path)
    return found


# The directory the selected messages are moved into, inside the queue directory (so on its file system:
# moving is a rename) and under a name no Postfix program reads.
HELD_PREFIX = "hostguard-purged-"
# ... and what it is renamed to when a file could not be moved: looked at by a person, never deleted by the module.
INCOMPLETE_PREFIX = "hostguard-purge-incomplete-"
# Queues only Postfix's own daemons write to: with Postfix stopped nothing adds a file to them, so a
# directory whose entries are mostly selected can be moved out whole and the few kept ones moved back.
# maildrop is left out: postdrop (the sendmail command) writes to it while Postfix is stopped.
WHOLE_DIRECTORY_QUEUES = ("incoming", "active", "deferred", "hold") + LOG_QUEUE_NAMES


# held: the directory the messages were moved to; queue_ids: those moved; errors: what went wrong, per file.
MovedOut = collections.namedtuple("MovedOut", "held queue_ids errors")


def move_postfix_messages(queue_directory, messages, now=None):
    """Move the messages out of the queue, as postsuper -d takes them out (each message's bounce, defer
    and trace logs and its queue file), into a new directory under the queue directory that no Postfix
    program reads; delete it with remove_held() once Postfix runs again. Postfix must be stopped (it
    reuses queue IDs).

    Renames instead of unlinks: freeing 100,000 files is the slow part of a purge and need not
    happen while the MTA is down. A directory of a queue only Postfix writes (WHOLE_DIRECTORY_QUEUES)
    whose entries are mostly selected is renamed away whole, then its kept entries are renamed back.
    Returns a MovedOut; each of its errors names a file left where it was, or a kept file that is now
    in the held directory (then the held directory must not be removed).
    """
    logs = log_files(queue_directory)
    by_directory = collections.defaultdict(set)
    message_paths = {}
    for message in messages:
        for path in list(logs.get(message.queue_id, ())) + [message.path]:
            by_directory[os.path.dirname(path)].add(os.path.basename(path))
        message_paths[message.path] = message.queue_id
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    held = tempfile.mkdtemp(prefix=HELD_PREFIX + stamp + "-", dir=queue_directory)
    moved_paths, errors = set(), []
    for directory in sorted(by_directory):
        relative = os.path.relpath(directory, queue_directory)
        names = by_directory[directory]
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:
            continue
        # Only a directory without subdirectories is moved whole (a hashed queue's leaf, or an unhashed queue).
        whole = (relative.split(os.sep)[0] in WHOLE_DIRECTORY_QUEUES and 2 * len(names) > len(entries)
                 and not any(entry.is_dir(follow_symlinks=False) for entry in entries))
        move = _move_directory_keeping if whole else _move_entries
        moved, failed = move(directory, os.path.join(held, relative), names)
        moved_paths.update(os.path.join(directory, name) for name in moved)
        errors.extend(failed)
    if errors:
        # Renamed out of held_directories()' sight: state=cleaned must not delete a kept message left in it.
        incomplete = held.replace(HELD_PREFIX, INCOMPLETE_PREFIX, 1)
        os.rename(held, incomplete)
        errors = [error.replace(held, incomplete) for error in errors]
        held = incomplete
    return MovedOut(held, [queue_id for path, queue_id in message_paths.items() if path in moved_paths], errors)


def _move_entries(directory, target, names):
    """Rename each of names from directory into target; (names moved, errors)."""
    moved, errors = [], []
    os.makedirs(target, mode=0o700, exist_ok=True)
    for name in sorted(names):
        try:
            os.rename(os.path.join(directory, name), os.path.join(target, name))
        except FileNotFoundError:
            continue
        except OSError as error:
            errors.append("%s: not moved out of the queue: %s" % (os.path.join(directory, name), error.strerror))
            continue
        moved.append(name)
    return moved, errors


def _move_directory_keeping(directory, target, names):
    """Rename the directory to target, make it anew as it was (owner, mode, extended attributes), and
    rename back every entry not in names; (names moved, errors). If it cannot be made anew, the old
    one is put back and the names are moved one by one."""
    status = os.lstat(directory)
    os.makedirs(os.path.dirname(target), mode=0o700, exist_ok=True)
    try:
        os.rename(directory, target)
    except OSError:  # a queue directory mounted apart, for one
        return _move_entries(directory, target, names)
    try:
        os.mkdir(directory, 0o700)
        os.chown(directory, status.st_uid, status.st_gid)
        os.chmod(directory, stat.S_IMODE(status.st_mode))
        _copy_xattrs(target, directory)
    except OSError:
        if os.path.isdir(directory):
            os.rmdir(directory)  # empty: made just now
        os.rename(target, directory)
        return _move_entries(directory, target, names)
    moved, errors = [], []
    for name in os.listdir(target):
        if name in names:
            moved.append(name)
            continue
        try:
            os.rename(os.path.join(target, name), os.path.join(directory, name))
        except OSError as error:
            errors.append("%s: kept, but left in %s: %s" % (os.path.join(directory, name), target, error.strerror))
    return moved, errors


def _copy_xattrs(source, destination):
    """Extended attributes (an SELinux label, for one) of the directory made anew, as the old one had them."""
    if not hasattr(os, "listxattr"):
        return
    for name in os.listxattr(source, follow_symlinks=False):
        os.setxattr(destination, name, os.getxattr(source, name, follow_symlinks=False), follow_symlinks=False)


def held_directories(queue_directory):
    """Directories of moved-out messages that are still waiting to be removed."""
    try:
        return sorted(entry.path for entry in os.scandir(queue_directory)
                      if entry.name.startswith(HELD_PREFIX) and entry.is_dir(follow_symlinks=False))
    except FileNotFoundError:
        return []


def remove_held(queue_directory, held):
    """Delete a directory move_postfix_messages() made, and nothing else."""
    if os.path.dirname(os.path.normpath(held)) != os.path.normpath(queue_directory) or \
            not os.path.basename(held).startswith(HELD_PREFIX):
        raise MailQueueError("%s is not a directory of purged messages in %s" % (held, queue_directory))
    shutil.rmtree(held)


# --- Exim -----------------------------------------------------------------------------------------

# Message IDs: time, process and fraction in base 62; 6-6-2 characters up to Exim 4.96, 6-11-4 from 4.97 on.
# A 4.97+ spool may still hold messages with IDs of the older form.
EXIM_ID = re.compile(r"^(?:[0-9A-Za-z]{6}-[0-9A-Za-z]{6}-[0-9A-Za-z]{2}|[0-9A-Za-z]{6}-[0-9A-Za-z]{11}-[0-9A-Za-z]{4})$")
EXIM_ID_TIME_LENGTH = 6
# Exim's own limit on a header file's recipients (spool_in.c).
EXIM_MAX_RECIPIENTS = 16384


class _Lines:
    """Lines of a -H file as spool_in.c reads them with fgets, plus the byte counts it reads with fread."""

    def __init__(self, data):
        self.data, self.offset = data, 0

    def line(self):
        if self.offset >= len(self.data):
            raise QueueFileError("ends before its envelope does")
        end = self.data.find(b"\n", self.offset)
        end = len(self.data) if end < 0 else end + 1
        line, self.offset = self.data[self.offset:end], end
        return line

    def skip(self, count):
        if self.offset + count > len(self.data):
            raise QueueFileError("ends inside an ACL variable")
        self.offset += count


def _exim_nonrecipients(lines, first):
    """The addresses of the non-recipients tree (delivered or otherwise done), written in preorder as
    "<left><right> address" with Y or N telling whether a left and a right subtree follow."""
    done, pending = set(), [first]
    while pending:
        line = pending.pop() or lines.line()
        if len(line) < 4 or line[0:1] not in b"YN" or line[1:2] not in b"YN" or line[2:3] != b" ":
            raise QueueFileError("malformed non-recipients line %r" % line[:80])
        done.add(line[3:].rstrip(b"\n").decode("utf-8", "surrogateescape"))
        # Read the left subtree before the right one: push markers for them in reverse order.
        pending.extend([None] * ((line[0:1] == b"Y") + (line[1:2] == b"Y")))
    return done


def _exim_recipient(line):
    """The address of a recipient line, without the data Exim appends (read from the end, as spool_in.c does).

    Forms: "address"; Exim 3 "address d,d,d"; early Exim 4 "address d"; current
    "address orcpt len,dsn_flags errors_to len,pno#3" (bit 1: errors_to and parent number, bit 2: DSN ORCPT).
    """
    match = re.search(r"#(\d+)$", line)
    if match and line[:match.start()][-1:].isdigit():
        flags, rest = int(match.group(1)), line[:match.start()]
        for bit in (0x01, 0x02):
            if flags & bit:
                field = re.search(r" (\d+),(-?\d+)$", rest)
                if not field:
                    raise QueueFileError("malformed recipient line %r" % line[:80])
                rest = rest[:field.start() - int(field.group(1))]
            rest = rest[:-1]  # the space before the field
        return rest
    match = re.search(r" \d+(?:,\d+,\d+)?$", line)
    return line[:match.start()] if match else line


def parse_exim_header(data, name=None):
    """(sender, pending recipients, arrival time, header size, frozen) of an Exim -H file's bytes.

    name, the file name (ID-H), must match the first line, which Exim checks too.
    """
    lines = _Lines(data)
    first = lines.line().rstrip(b"\n").decode("ascii", "replace")
    if not (first.endswith("-H") and EXIM_ID.match(first[:-2])) or (name is not None and first != name):
        raise QueueFileError("first line %r is not the file's name" % first[:80])
    lines.line()  # the login, uid and gid of the submitter
    sender = lines.line().rstrip(b"\n")
    if not (sender.startswith(b"<") and sender.endswith(b">")):
        raise QueueFileError("sender line %r is not <address>" % sender[:80])
    sender = sender[1:-1].decode("utf-8", "surrogateescape")
    try:
        arrival_time = int(lines.line().split()[0])
    except (IndexError, ValueError):
        raise QueueFileError("no arrival time on the fourth line")
    frozen = False
    line = lines.line()
    while line.startswith(b"-"):
        option = line[2:] if line.startswith(b"--") else line[1:]  # "--": a tainted value
        if option.startswith((b"aclc ", b"aclm ", b"acl ")):
            # An ACL variable: "-aclc <name> <length>" and then <length> bytes and a newline.
            try:
                lines.skip(int(option.split()[-1]) + 1)
            except ValueError:
                raise QueueFileError("malformed ACL variable line %r" % line[:80])
        elif option.startswith(b"frozen"):
            frozen = True
        line = lines.line()
    done = set() if line == b"XX\n" else _exim_nonrecipients(lines, line)
    try:
        count = int(lines.line())
    except ValueError:
        raise QueueFileError("no recipient count after the envelope options")
    if not 0 <= count <= EXIM_MAX_RECIPIENTS:
        raise QueueFileError("impossible recipient count %d" % count)
    recipients = []
    for _number in range(count):
        address = _exim_recipient(lines.line().rstrip(b"\n").decode("utf-8", "surrogateescape"))
        if address not in done:
            recipients.append(address)
    if lines.line() != b"\n":
        raise QueueFileError("no blank line before the headers")
    # Headers: "<length><flag> <text>", the text <length> bytes long; "*" flags a header not transmitted.
    header_size, offset = 0, lines.offset
    header = re.compile(rb"(\d+)(.) ")
    while offset < len(data):
        match = header.match(data, offset)
        if not match:
            raise QueueFileError("malformed header at offset %d" % offset)
        length = int(match.group(1))
        if match.group(2) != b"*":
            header_size += length
        offset = match.end() + length
    if offset > len(data):
        raise QueueFileError("the last header is truncated")
    return sender, recipients, arrival_time, header_size, frozen


def exim_message_id_time(message_id):
    """The time (seconds) encoded in the first six base-62 characters of an Exim message ID."""
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    seconds = 0
    for character in message_id[:EXIM_ID_TIME_LENGTH]:
        seconds = seconds * 62 + digits.index(character)
    return seconds


def read_exim_message(header_path):
    """The Message of one -H file, or None when it vanished (delivered) while the spool was read.

    Its -D file (the body) is only stat'ed, for the size: one open per message.
    """
    name = os.path.basename(header_path)
    queue_id = name[:-2]
    try:
        descriptor = os.open(header_path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    try:
        chunks = []
        while True:
            chunk = os.read(descriptor, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(descriptor)
    try:
        sender, recipients, arrival_time, header_size, frozen = parse_exim_header(b"".join(chunks), name)
    except QueueFileError as error:
        raise QueueFileError("%s: %s" % (header_path, error))
    data_path = header_path[:-1] + "D"
    try:
        # The -D file starts with its own name on a line; the body follows.
        body_size = max(0, os.stat(data_path).st_size - len(queue_id) - 3)
    except FileNotFoundError:
        body_size = 0
    return Message(
        queue_id=queue_id, queue_name="frozen" if frozen else "queued", path=header_path,
        sender=sender, recipients=recipients, arrival_time=arrival_time, size=header_size + body_size,
        files=(("input/%s-H" % queue_id, header_path), ("input/%s-D" % queue_id, data_path)),
    )


def scan_exim_spool(spool_directory):
    """Every message of an Exim spool, from input/ and its one-character split subdirectories; (messages, unreadable).

    Both are read whatever split_spool_directory says, as Exim itself looks in both.
    """
    messages, unreadable = [], []
    input_directory = os.path.join(spool_directory, "input")
    directories = [input_directory]
    try:
        directories += sorted(entry.path for entry in os.scandir(input_directory)
                              if len(entry.name) == 1 and entry.is_dir(follow_symlinks=False))
    except FileNotFoundError:
        return messages, unreadable
    for directory in directories:
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:
            continue
        for entry in entries:
            # Only finished header files: Exim writes hdr.<pid> and renames it to <id>-H.
            if not (entry.name.endswith("-H") and EXIM_ID.match(entry.name[:-2])
                    and entry.is_file(follow_symlinks=False)):
                continue
            try:
                message = read_exim_message(entry.path)
            except QueueFileError as error:
                unreadable.append(str(error))
                continue
            if message is not None:
                messages.append(message)
    return messages, unreadable


def exim_daemons(proc="/proc"):
    """[(pid, command line)] of the running Exim daemons and queue runners (exim or exim4 with -bd or -q...)."""
    found = []
    for entry in os.listdir(proc):
        if not entry.isdigit():
            continue
        try:
            with open(os.path.join(proc, entry, "cmdline"), "rb") as cmdline:
                argv = cmdline.read().split(b"\0")
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        argv = [argument.decode("utf-8", "replace") for argument in argv if argument]
        if argv and os.path.basename(argv[0]) in ("exim", "exim4") and any(
                argument == "-bd" or argument.startswith("-q") for argument in argv[1:]):
            found.append((int(entry), " ".join(argv)))
    return sorted(found)


def exim_removed(output):
    """The IDs that exim -Mrm reports removed: "Message <id> has been removed", not "... or did not exist"."""
    return re.findall(r"^Message (\S+) has been removed$", output, re.MULTILINE)


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
    """Write every file of the messages, and a manifest with their sha256, into a tar.gz in export_dir.

    The archive is written with atomic_file, so a file with the final name is always
    a whole copy, on disk. Returns (archive path, its sha256).
    """
    os.makedirs(export_dir, mode=0o700, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
    archive_path = os.path.join(export_dir, "mail-queue-%s.tar.gz" % stamp)
    manifest = []
    with atomic_file(archive_path, mode=0o600, suffix=".tar.gz") as raw, \
            tarfile.open(fileobj=raw, mode="w:gz") as archive:
        for message in messages:
            files = []
            for name, path in message.files or (("queue/%s/%s" % (message.queue_name, message.queue_id), message.path),):
                with open(path, "rb") as queue_file:
                    content = queue_file.read()
                member = tarfile.TarInfo(name)
                member.size, member.mtime, member.mode = len(content), message.arrival_time, 0o600
                archive.addfile(member, io.BytesIO(content))
                files.append({"file": name, "sha256": hashlib.sha256(content).hexdigest()})
            manifest.append({
                "queue_id": message.queue_id, "queue_name": message.queue_name, "files": files,
                "sender": message.sender or NULL_SENDER, "recipients": message.recipients,
                "size": message.size, "arrival_time": message.arrival_time})
        listing = json.dumps({"messages": manifest}, indent=1, sort_keys=True).encode("utf-8")
        member = tarfile.TarInfo("manifest.json")
        member.size, member.mtime, member.mode = len(listing), int(time.time()), 0o600
        archive.addfile(member, io.BytesIO(listing))
    digest = hashlib.sha256()
    with open(archive_path, "rb") as written:
        for block in iter(lambda: written.read(1 << 20), b""):
            digest.update(block)
    return archive_path, digest.hexdigest()


ARCHIVE_NAME = re.compile(r"^mail-queue-([0-9]{8}T[0-9]{6}Z)\.tar\.gz$")


def evidence_archives(export_dir, top=5):
    """The archives ``export`` left in export_dir (the purges that kept evidence), newest first.

    Reads only. Each: path, purged_at (from its name), size, sha256, and from its manifest.json the number of
    messages and the busiest senders; an archive whose manifest cannot be read is listed with its ``error``.
    A directory that does not exist holds none.
    """
    try:
        names = sorted((name for name in os.listdir(export_dir) if ARCHIVE_NAME.match(name)), reverse=True)
    except FileNotFoundError:
        return []
    archives = []
    for name in names:
        path = os.path.join(export_dir, name)
        stamp = ARCHIVE_NAME.match(name).group(1)
        purged_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.strptime(stamp, "%Y%m%dT%H%M%SZ"))
        item = {"path": path, "purged_at": purged_at, "size": None, "sha256": None, "messages": None,
                "by_sender": [], "error": None}
        try:
            digest = hashlib.sha256()
            with open(path, "rb") as stream:
                for block in iter(lambda: stream.read(1 << 20), b""):
                    digest.update(block)
                item["size"] = stream.tell()
            item["sha256"] = digest.hexdigest()
            with tarfile.open(path, mode="r:gz") as archive:
                listing = archive.extractfile(archive.getmember("manifest.json"))
                messages = json.loads(listing.read().decode("utf-8"))["messages"]
            senders = collections.Counter(message.get("sender") or NULL_SENDER for message in messages)
            item["messages"] = len(messages)
            item["by_sender"] = [{"name": sender, "count": count} for sender, count in senders.most_common(top)]
        except (OSError, KeyError, ValueError, TypeError, AttributeError, tarfile.TarError) as error:
            item["error"] = "%s: %s" % (type(error).__name__, error)
        archives.append(item)
    return archives


def find_mta(which, wanted="auto"):
    """(mta, command): postsuper's path for Postfix, the exim command's for Exim. which(name): a path or None."""
    if wanted in ("auto", "postfix"):
        postsuper = which("postsuper")
        if postsuper:
            return "postfix", postsuper
        if wanted == "postfix":
            raise MailQueueError("found no postsuper command on this host: is Postfix installed?")
    exim = which("exim4") or which("exim")
    if exim:
        return "exim", exim
    raise MailQueueError("found neither Postfix (postsuper) nor Exim (exim4, exim) on this host"
                         if wanted == "auto" else "found no exim4 or exim command on this host")


def configured_queue_directory(run, which, mta, command):
    """The queue directory the MTA is configured with, as its own configuration tool says."""
    if mta == "postfix":
        postconf = which("postconf")
        if not postconf:
            raise MailQueueError("found no postconf command on this host")
        argv = [postconf, "-h", "queue_directory"]
    else:
        argv = [command, "-bP", "spool_directory"]
    rc, out, err = run(argv)
    if rc != 0:
        raise MailQueueError("%s failed (rc=%d): %s" % (" ".join(argv), rc, (err or out).strip()))
    # Exim answers "spool_directory = /var/spool/exim4".
    return out.strip() if mta == "postfix" else out.partition("=")[2].strip()


def queue_report(run, which, wanted="auto", directory=None, top=20):
    """The queue as read from its files, and purged mail still waiting to be deleted. Reads only."""
    mta, command = find_mta(which, wanted)
    directory = directory or configured_queue_directory(run, which, mta, command)
    messages, unreadable = (scan_queue if mta == "postfix" else scan_exim_spool)(directory)
    return {"mta": mta, "service": "postfix" if mta == "postfix" else os.path.basename(command),
            "queue_directory": directory, "queue": summarise(messages, top), "unreadable": unreadable,
            "held_directories": held_directories(directory) if mta == "postfix" else []}
