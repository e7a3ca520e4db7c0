# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""File integrity of document roots: walk, stat, hash, database, compare.

Pure standard library: it runs on managed hosts that only have python3.

What makes it fit for hosting incidents, unlike the usual tools:
- nothing is skipped for its owner, mode (000 included) or size, and files
  that cannot be read are reported instead of dropped;
- ``rehash: changed`` reuses a recorded hash only when type, mode, owner,
  size, mtime, ctime and inode are all unchanged; ctime cannot be put back
  from user space, so a file edited and then ``touch -r``'d is re-hashed;
- only content, mode, owner, group, size, type and link target count as
  modifications, so directory mtimes and touched files are no noise;
- file names are kept exactly (bytes decoded with surrogateescape), symlinks
  are recorded and never followed;
- the database is written atomically and can be sealed with an HMAC, so an
  edited baseline is refused instead of trusted.

Database format (one JSON value per line, ASCII only, so it can be grepped):
line 1, the seal: format, version, sha256 of the rest, hmac_sha256 of the
rest (null without a key); line 2, the header: paths, exclude, times, the
entry fields; then one array per entry, sorted by path.
"""

from __future__ import annotations

import base64
import collections
import errno
import fnmatch
import hashlib
import hmac
import json
import os
import re
import stat
import time

from ansible_collections.hostguard.hosting.plugins.module_utils import safe_fs
from ansible_collections.hostguard.hosting.plugins.module_utils.atomic_file import atomic_file
from ansible_collections.hostguard.hosting.plugins.module_utils.cms_versions import find_installs, read_fd as cms_read_fd
from ansible_collections.hostguard.hosting.plugins.module_utils.webshell_rules import RuleError, Scanner

FORMAT = "hostguard-file-integrity"
VERSION = 1
STATES = ("baseline", "check", "update")
REHASH_MODES = ("changed", "always")
READ_CHUNK = 1 << 20
# Handing hashing to the worker processes pays off from a few hundred files or tens of megabytes on.
PROCESS_MIN_JOBS = 256
PROCESS_MIN_BYTES = 32 << 20
# Work handed to a process at a time: enough to amortise the round trip, small enough to balance.
BATCH_BYTES = 16 << 20
SMALL_FILE_COST = 64 << 10  # opening, reading and scanning a small file weighs like this many bytes
_SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")

Entry = collections.namedtuple(
    "Entry", ("type", "mode", "uid", "gid", "size", "mtime_ns", "ctime_ns", "inode", "target", "sha256", "error"))
# The fields that decide whether a recorded hash can be reused (everything up to the inode).
_METADATA_FIELDS = 8
_TYPE = Entry._fields.index("type")
_SHA256 = Entry._fields.index("sha256")

_TYPE_NAMES = {
    stat.S_IFREG: "file", stat.S_IFDIR: "directory", stat.S_IFLNK: "symlink", stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket", stat.S_IFCHR: "char_device", stat.S_IFBLK: "block_device",
}


class IntegrityError(Exception):
    """Bad input or an unusable database; the message names the value."""


class UntrustedDatabaseError(IntegrityError):
    """The database failed verification: its contents must not be trusted."""


def run(paths, database, state="check", exclude=(), rehash="changed", scan=True, database_key=None,
        rule_files=(), allow_sha256=(), workers=0, report_limit=1000, check_mode=False, diff=False, rules_dir=None):
    """Record, check or update the state of ``paths``; return the module result as a dict.

    Every argument is validated before any file is read or written.
    """
    started = time.monotonic()
    roots = _validate_paths(paths)
    database = _validate_database(database, roots)
    if state not in STATES:
        raise IntegrityError("state %r is not one of %s" % (state, ", ".join(STATES)))
    if rehash not in REHASH_MODES:
        raise IntegrityError("rehash %r is not one of %s" % (rehash, ", ".join(REHASH_MODES)))
    exclude = _validate_exclude(exclude)
    for digest in allow_sha256:
        if not isinstance(digest, str) or not _SHA256_HEX.match(digest):
            raise IntegrityError("allow_sha256 entry %r is not a sha256 hex digest" % (digest,))
    if not isinstance(workers, int) or workers < 0:
        raise IntegrityError("workers %r is not a number of processes (0 = one per CPU)" % (workers,))
    if not isinstance(report_limit, int) or report_limit < 0:
        raise IntegrityError("report_limit %r is not a count (0 = no limit)" % (report_limit,))
    try:
        scanner = Scanner(rule_files, allow_sha256, rules_dir) if scan else None
    except RuleError as exc:
        raise IntegrityError(str(exc))
    key = database_key.encode("utf-8") if database_key else None
    database_exists = os.path.exists(database)
    if state == "check" and not database_exists:
        raise IntegrityError("database %s does not exist: record one with state=baseline first" % database)
    if state == "baseline" and database_exists:
        recorded = read_database(database, key)
        _check_recorded(recorded, database, roots, exclude)
        return _result(database, key, changed=False, summary={"entries": len(recorded.entries)},
                       msg="database %s exists; baseline leaves it alone, state=update accepts the current state" % database)

    excluded = _exclude_matcher(exclude)
    previous = read_database(database, key) if database_exists else None
    previous_entries = {}
    if previous is not None:
        if state == "check":
            _check_recorded(previous, database, roots, exclude)
        previous_entries = previous.entries
        if previous.header.get("exclude") != list(exclude):
            # Entries a new exclude pattern covers are dropped, not reported as removed.
            previous_entries = {path: entry for path, entry in previous_entries.items()
                                if not _excluded_with_ancestors(path, roots, excluded)}

    try:
        opened_roots = safe_fs.Roots(roots)
    except safe_fs.UnsafePath as exc:
        raise IntegrityError(str(exc))
    _OPENED.roots = opened_roots
    try:
        snapshot = walk(roots, excluded)
        hashing = hash_entries(snapshot.entries, previous_entries if previous is not None else None,
                               rehash == "always", scanner, workers or _cpu_count())
        return _finish(state, database, key, roots, exclude, previous, previous_entries, snapshot, hashing, scanner,
                       report_limit, check_mode, diff, started)
    finally:
        _OPENED.roots = None
        opened_roots.close()


def _finish(state, database, key, roots, exclude, previous, previous_entries, snapshot, hashing, scanner,
            report_limit, check_mode, diff, started):
    """Compare, scan what is new or changed, write the database where asked, and shape the result."""
    current = snapshot.entries
    comparing = previous is not None
    added, removed, modified = compare(previous_entries, current, snapshot) if comparing else ([], [], [])

    suspicious = []
    if scanner is not None:
        # At a first baseline every file is new, so every file is scanned.
        suspects = (added + [path for path, _changes in modified]) if comparing else sorted(current)
        suspicious = _suspicious(scanner, suspects, current, hashing)

    new_entries = dict(current)
    for path in snapshot.unverified_paths(previous_entries):
        new_entries[path] = previous_entries[path]
    header = {"paths": list(roots), "exclude": list(exclude), "fields": list(Entry._fields)}
    changed = False
    diff_result = None
    if state in ("baseline", "update"):
        changed = previous is None or previous.entries != new_entries or any(
            previous.header.get(name) != header[name] for name in ("paths", "exclude"))
        if changed and not check_mode:
            write_database(database, header, new_entries, key)
        if diff:
            diff_result = _diff(database, previous, header, new_entries, report_limit)

    unreadable = sorted(snapshot.errors(current))
    summary = _summary(current, added, removed, modified, suspicious, unreadable, hashing)
    summary["seconds"] = round(time.monotonic() - started, 3)
    result = _result(
        database, key, changed=changed, summary=summary,
        added=_limited([_describe(path, current[path]) for path in added], report_limit, summary),
        removed=_limited([_describe(path, previous_entries[path]) for path in removed], report_limit, summary),
        modified=_limited([_describe_change(path, previous_entries[path], current[path], changes)
                           for path, changes in modified], report_limit, summary),
        suspicious=_limited(suspicious, report_limit, summary),
        unreadable=_limited([dict(_path_fields(path), error=error) for path, error in unreadable], report_limit, summary),
        cms=[dict(install, **_path_fields(install["path"])) for install in
             find_installs((path for path, entry in current.items() if entry.type == "file"), read=_read_text)],
        msg=_message(state, roots, comparing, summary),
    )
    if diff_result is not None:
        result["diff"] = diff_result
    return result


# --- input ---------------------------------------------------------------------------------------

def _check_recorded(recorded, database, roots, exclude):
    """Refuse to compare against a database that records other paths or exclude patterns."""
    paths_and_exclude = (recorded.header.get("paths"), recorded.header.get("exclude"))
    if paths_and_exclude != (list(roots), list(exclude)):
        raise IntegrityError(
            "database %s records paths %s and exclude %s, not paths %s and exclude %s: record the new ones "
            "with state=update" % (database, paths_and_exclude[0], paths_and_exclude[1], list(roots), list(exclude)))


def _validate_paths(paths):
    if isinstance(paths, str) or not paths:
        raise IntegrityError("paths %r must be a non-empty list of absolute paths" % (paths,))
    roots = []
    for path in paths:
        if not isinstance(path, str) or not os.path.isabs(path):
            raise IntegrityError("path %r is not absolute" % (path,))
        normalized = os.path.normpath(path)
        if normalized.startswith("//"):
            normalized = "/" + normalized.lstrip("/")
        try:
            mode = os.lstat(normalized).st_mode
        except OSError as exc:
            raise IntegrityError("path %s cannot be used: %s" % (path, exc.strerror))
        if stat.S_ISLNK(mode):
            raise IntegrityError("path %s is a symbolic link to %s: give the directory it points to"
                                 % (path, os.path.realpath(normalized)))
        roots.append(normalized)
    # A root inside another root would be walked twice.
    kept = []
    for root in sorted(set(roots)):
        if not any(_is_within(root, outer) for outer in kept):
            kept.append(root)
    return tuple(kept)


def _validate_database(database, roots):
    if not isinstance(database, str) or not os.path.isabs(database):
        raise IntegrityError("database %r is not an absolute path" % (database,))
    database = os.path.normpath(database)
    directory = os.path.dirname(database)
    if not os.path.isdir(directory):
        raise IntegrityError("database directory %s does not exist (database %s)" % (directory, database))
    if os.path.isdir(database):
        raise IntegrityError("database %s is a directory" % database)
    real_database = os.path.join(os.path.realpath(directory), os.path.basename(database))
    for root in roots:
        if _is_within(real_database, os.path.realpath(root)):
            # Anyone who can write the docroot could rewrite it, and writing it would change what is checked.
            raise IntegrityError("database %s is inside path %s: keep it outside the checked paths" % (database, root))
    return database


def _validate_exclude(exclude):
    if isinstance(exclude, str):
        raise IntegrityError("exclude %r must be a list of patterns" % (exclude,))
    for pattern in exclude:
        if not isinstance(pattern, str) or not pattern:
            raise IntegrityError("exclude pattern %r is not a non-empty string" % (pattern,))
    return tuple(exclude)


def _exclude_matcher(exclude):
    """A function telling whether a full path matches one of the glob patterns, or None."""
    if not exclude:
        return None
    return re.compile("|".join(fnmatch.translate(pattern) for pattern in exclude)).match


def _excluded_with_ancestors(path, roots, excluded):
    """Whether the walk would skip ``path``: it, or a directory between it and its root, is excluded."""
    if excluded is None:
        return False
    root = next((root for root in roots if _is_within(path, root)), None)
    while path != root and path:
        if excluded(path):
            return True
        path = os.path.dirname(path)
    return False


def _is_within(path, directory):
    return path == directory or path.startswith(directory.rstrip("/") + "/")


def _cpu_count():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


# --- walk ----------------------------------------------------------------------------------------

class Snapshot(object):
    """What the walk saw: entries by path, and what it could not look at."""

    def __init__(self):
        self.entries = {}
        self.unlisted_directories = []
        self.unstatable = {}

    def errors(self, entries):
        found = [(path, entry.error) for path, entry in entries.items() if entry.error]
        return found + list(self.unstatable.items())

    def unverified(self, path):
        """Whether ``path`` could not be looked at (so its absence proves nothing)."""
        return path in self.unstatable or any(
            path.startswith(directory.rstrip("/") + "/") for directory in self.unlisted_directories)

    def unverified_paths(self, previous_entries):
        if not self.unlisted_directories and not self.unstatable:
            return []
        return [path for path in previous_entries if path not in self.entries and self.unverified(path)]


class _OPENED(object):
    """The roots of the run in progress, opened through safe_fs; forked hashing workers inherit them."""
    roots = None


def _roots_for(roots):
    """The opened roots of the run in progress, or (for a direct call) the roots opened for this call."""
    if _OPENED.roots is not None:
        return _OPENED.roots, False
    return safe_fs.Roots(roots), True


def walk(roots, excluded=None):
    """lstat every path under ``roots`` without following symlinks; nothing is hashed yet.

    Every directory is reached from its root's descriptor one name at a time (safe_fs), so a directory the
    account swaps for a symlink during the walk is reported, never followed, and mount points are not crossed.
    One process: sharing the walk out to workers was measured slower, as
    sending the entries back costs what listing them does.
    """
    snapshot = Snapshot()
    entries = snapshot.entries
    type_names = _TYPE_NAMES
    new_entry = tuple.__new__  # Entry without its Python-level __new__, once per path
    opened, own = _roots_for(roots)
    try:
        for root in roots:
            tree = opened.trees[root]
            entries[root] = _entry_from_stat(tree.info, os.fsencode(root))
            walker = opened.walker(root)
            pending = [((), root)]
            while pending:
                parts, directory = pending.pop()
                try:
                    # scandir reads a duplicate of the descriptor and rewinds it when done.
                    with os.scandir(walker.directory(parts)) as listing:
                        children = list(listing)
                except (OSError, safe_fs.UnsafePath) as exc:
                    entries[directory] = entries[directory]._replace(error="cannot list directory: %s" % _reason(exc))
                    snapshot.unlisted_directories.append(directory)
                    continue
                dir_fd = walker.directory(parts)
                prefix = directory if directory.endswith("/") else directory + "/"
                for child in children:
                    path = prefix + child.name
                    if excluded is not None and excluded(path):
                        continue
                    try:
                        info = child.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        continue  # removed between listing and lstat: it is not there
                    except OSError as exc:
                        snapshot.unstatable[path] = "cannot lstat: %s" % _reason(exc)
                        continue
                    mode = info.st_mode
                    kind = type_names.get(stat.S_IFMT(mode), "unknown")
                    target = error = None
                    if kind == "directory":
                        pending.append((parts + (child.name,), path))
                    elif kind == "symlink":
                        target, error = _link_target(child.name, dir_fd)
                    entries[path] = new_entry(Entry, (kind, stat.S_IMODE(mode), info.st_uid, info.st_gid,
                                                      info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino,
                                                      target, None, error))
    finally:
        if own:
            opened.close()
    return snapshot


def _open_file(path):
    """A read descriptor of the regular file ``path``, reached through its root's descriptor; (fd, stat)."""
    if _OPENED.roots is not None:
        return _OPENED.roots.open(path, "file")
    # Outside a run (a direct call): through the file's own directory, opened as safely.
    with safe_fs.Roots([os.path.dirname(path) or "/"]) as opened:
        return opened.open(path, "file")


def _read_text(path):
    """The start of a CMS version file, reached like every other file of the run."""
    try:
        fd, _info = _open_file(path)
    except safe_fs.UnsafePath as exc:
        raise OSError(exc.errno or errno.EPERM, str(exc))
    return cms_read_fd(fd)


def _entry_from_stat(info, path_bytes):
    kind = _TYPE_NAMES.get(stat.S_IFMT(info.st_mode), "unknown")
    target, error = _link_target(path_bytes, None) if kind == "symlink" else (None, None)
    return Entry(kind, stat.S_IMODE(info.st_mode), info.st_uid, info.st_gid, info.st_size,
                 info.st_mtime_ns, info.st_ctime_ns, info.st_ino, target, None, error)


def _link_target(name, dir_fd):
    """(target, error) of a symlink; the target is recorded, never followed."""
    try:
        return os.fsdecode(os.readlink(name, dir_fd=dir_fd)), None
    except OSError as exc:
        return None, "cannot read link: %s" % _reason(exc)


def _reason(exc):
    return getattr(exc, "strerror", None) or str(exc)


# --- hash ----------------------------------------------------------------------------------------

class Hashing(object):
    """Counters of a hashing pass and the content findings of the files it scanned."""

    def __init__(self):
        self.files_hashed = 0
        self.bytes_hashed = 0
        self.workers = 1
        self.scanned = set()
        self.content_findings = {}


def hash_entries(entries, previous, rehash_always, scanner, workers=1):
    """Fill in sha256 of the regular files in ``entries`` (updated in place).

    A recorded hash is reused when nothing in the file's metadata changed,
    unless ``rehash_always``. ``previous`` is None at a first baseline. Files
    that are new or whose metadata changed are scanned while they are read,
    so a suspect file is read once.
    """
    jobs = []
    for path, entry in entries.items():
        if entry[_TYPE] != "file":
            continue
        before = previous.get(path) if previous is not None else None
        metadata_same = (before is not None and before[_SHA256] is not None
                         and before[:_METADATA_FIELDS] == entry[:_METADATA_FIELDS])
        if metadata_same and not rehash_always:
            entries[path] = before  # same metadata, no target, no error: the recorded entry is the current one
        else:
            jobs.append((entry.size, path, scanner is not None and not metadata_same))
    # Largest first, so one big file does not finish alone at the end.
    jobs.sort(reverse=True)
    hashing = Hashing()
    results = None
    if workers > 1 and (len(jobs) >= PROCESS_MIN_JOBS or sum(job[0] for job in jobs) >= PROCESS_MIN_BYTES):
        with WorkerPool(workers, scanner) as pool:
            if pool.available:
                hashing.workers = workers
                results = [result for batch in pool.map_unordered(_hash_in_worker, _batches(jobs)) for result in batch]
    if results is None:
        results = _hash_jobs(jobs, scanner)
    new_entry = tuple.__new__
    for path, fields, error, bytes_read, findings in results:
        hashing.files_hashed += 1
        hashing.bytes_hashed += bytes_read
        # The metadata of the file that was actually read, in case it changed since the walk.
        entries[path] = new_entry(Entry, fields) if fields is not None else entries[path]._replace(error=error)
        if findings is not None:
            hashing.scanned.add(path)
            if findings:
                hashing.content_findings[path] = findings
    return hashing


class WorkerPool(object):
    """Forked processes that hash and scan batches of files.

    Processes, not threads: hashlib releases the GIL on large buffers, but the
    per-file work and the webshell regexes run Python code, and most files of
    a docroot are small. Where processes cannot be had (no fork, no semaphores
    without /dev/shm) the caller hashes in its own process.
    """

    def __init__(self, workers, scanner):
        # Imported here: only a large hashing pass needs it, and a check of an unchanged tree should start fast.
        import multiprocessing
        try:
            # Forked workers inherit the scanner: its compiled regexes are not pickled.
            self._pool = multiprocessing.get_context("fork").Pool(
                workers, initializer=_worker_context.update, initargs=({"scanner": scanner},))
        except (OSError, ValueError):
            self._pool = None

    @property
    def available(self):
        return self._pool is not None

    def map_unordered(self, function, tasks):
        return self._pool.imap_unordered(function, tasks)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()


_worker_context = {}


def _batches(jobs):
    """Consecutive slices of ``jobs`` holding about BATCH_BYTES each (a big file alone)."""
    batches = []
    start = 0
    size = 0
    for index, job in enumerate(jobs):
        size += job[0] + SMALL_FILE_COST
        if size >= BATCH_BYTES:
            batches.append(jobs[start:index + 1])
            start = index + 1
            size = 0
    if start < len(jobs):
        batches.append(jobs[start:])
    return batches


def _hash_in_worker(jobs):
    return _hash_jobs(jobs, _worker_context["scanner"])


def _hash_jobs(jobs, scanner):
    """[(path, Entry fields from fstat and the hash or None, error, bytes read, findings or None if not scanned)].

    Plain tuples: they come back from worker processes by the ten thousand.
    """
    buffer = bytearray(READ_CHUNK)
    results = []
    for _size, path, scan in jobs:
        digest, opened, error, bytes_read, content_scan = hash_file(
            path, buffer, scanner.content_scan(path) if scan else None)
        fields = None
        if opened is not None:
            fields = ("file", stat.S_IMODE(opened.st_mode), opened.st_uid, opened.st_gid, opened.st_size,
                      opened.st_mtime_ns, opened.st_ctime_ns, opened.st_ino, None, digest, None)
        results.append((path, fields, error, bytes_read, content_scan.findings if content_scan is not None else None))
    return results


def hash_file(path, buffer, content_scan=None):
    """Return (sha256 hex, fstat of what was read, error, bytes read, content_scan).

    Opened without following a symlink and without blocking, so a file swapped
    for a symlink or a FIFO after the walk is reported, not followed or waited on.
    """
    try:
        fd, _info = _open_file(path)
    except safe_fs.UnsafePath as exc:
        if exc.errno == errno.EAGAIN:  # another type now (open_entry checks it)
            return None, None, "no longer a regular file", 0, None
        return None, None, "cannot open: %s" % _reason(exc), 0, None
    except OSError as exc:
        return None, None, "cannot open: %s" % _reason(exc), 0, None
    total = 0
    try:
        opened = os.fstat(fd)
        if not stat.S_ISREG(opened.st_mode):
            return None, None, "no longer a regular file", 0, None
        digest = hashlib.sha256()
        view = memoryview(buffer)
        while True:
            count = os.readv(fd, [buffer])
            if not count:
                break
            total += count
            digest.update(view[:count])
            if content_scan is not None:
                content_scan.feed(view[:count])
            if count < len(buffer) and total >= opened.st_size:
                break  # a short read at the recorded size is the end; saves a read per small file
        return digest.hexdigest(), opened, None, total, content_scan
    except OSError as exc:
        return None, None, "cannot read: %s" % _reason(exc), total, None
    finally:
        os.close(fd)


# --- compare -------------------------------------------------------------------------------------

def compare(previous, current, snapshot=None):
    """Return (added paths, removed paths, [(modified path, [change kinds])]), each sorted."""
    added = []
    modified = []
    for path, entry in current.items():
        before = previous.get(path)
        if before is None:
            added.append(path)
        elif before != entry:
            changes = changed_attributes(before, entry)
            if changes:
                modified.append((path, changes))
    removed = [path for path in previous.keys() - current.keys()
               if snapshot is None or not snapshot.unverified(path)]
    return sorted(added), sorted(removed), sorted(modified)


def changed_attributes(before, after):
    """What changed between two entries of the same path: content, mode, owner, group, size, type, link_target.

    mtime, ctime and inode only decide whether to re-hash: on their own they are
    the noise of deploys and directory updates, not a modification.
    """
    changes = []
    if before.type == "file" and after.type == "file":
        if before.sha256 and after.sha256 and before.sha256 != after.sha256:
            changes.append("content")
    if before.mode != after.mode and "symlink" not in (before.type, after.type):
        changes.append("mode")
    if before.uid != after.uid:
        changes.append("owner")
    if before.gid != after.gid:
        changes.append("group")
    if before.type == "file" and after.type == "file" and before.size != after.size:
        changes.append("size")
    if before.type != after.type:
        changes.append("type")
    elif before.type == "symlink" and before.target != after.target:
        changes.append("link_target")
    return changes


# --- scan ----------------------------------------------------------------------------------------

def _suspicious(scanner, paths, entries, hashing):
    """Findings for ``paths``; files not scanned while hashing are read once more here."""
    suspicious = []
    buffer = None
    for path in paths:
        entry = entries[path]
        if scanner.allowed(entry.sha256):
            continue
        findings = scanner.scan_path(path)
        if path in hashing.scanned:
            findings += hashing.content_findings.get(path, [])
        elif entry.type == "file" and entry.sha256 is not None:
            buffer = buffer or bytearray(READ_CHUNK)
            content_scan = hash_file(path, buffer, scanner.content_scan(path))[4]
            if content_scan is not None:
                findings += content_scan.findings
        for finding in findings:
            suspicious.append(dict(_path_fields(path), sha256=entry.sha256, **finding.as_dict()))
    return suspicious


# --- database ------------------------------------------------------------------------------------

class Database(object):
    def __init__(self, header, entries):
        self.header = header
        self.entries = entries


def read_database(path, key=None):
    """Load and verify the database at ``path``.

    With ``key``, the HMAC must be present and match; without it, a sealed
    database is refused rather than read unverified, and the plain sha256
    catches corruption and truncation.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise IntegrityError("database %s cannot be read: %s" % (path, _reason(exc)))
    seal_line, _newline, payload = data.partition(b"\n")
    try:
        seal = json.loads(seal_line)
    except ValueError:
        seal = None
    if not isinstance(seal, dict) or seal.get("format") != FORMAT:
        raise IntegrityError("database %s is not a %s database" % (path, FORMAT))
    if seal.get("version") != VERSION:
        raise IntegrityError("database %s has format version %r; this module reads version %d"
                             % (path, seal.get("version"), VERSION))
    recorded_hmac = seal.get("hmac_sha256")
    if key is not None:
        if not recorded_hmac:
            raise UntrustedDatabaseError(
                "database %s carries no HMAC although database_key was given: it was written without a key "
                "or its HMAC was stripped; its contents are not trusted" % path)
        if not hmac.compare_digest(hmac.new(key, payload, hashlib.sha256).hexdigest(), str(recorded_hmac)):
            raise UntrustedDatabaseError(
                "database %s failed HMAC verification: it was modified after it was written, or the key is wrong; "
                "its contents are not trusted" % path)
    elif recorded_hmac:
        raise UntrustedDatabaseError("database %s is sealed with a key: give database_key to verify it" % path)
    if hashlib.sha256(payload).hexdigest() != seal.get("sha256"):
        raise UntrustedDatabaseError("database %s is corrupt or was edited (its sha256 does not match); "
                                     "its contents are not trusted" % path)
    header_line, _newline, body = payload.partition(b"\n")
    try:
        header = json.loads(header_line)
        rows = json.loads(b"[" + body.strip(b"\n").replace(b"\n", b",") + b"]")
        new_entry = tuple.__new__  # Entry without its Python-level __new__: a database holds many
        entries = {row[0]: new_entry(Entry, row[1:]) for row in rows}
    except (ValueError, TypeError, IndexError) as exc:
        raise IntegrityError("database %s is malformed: %s" % (path, exc))
    if header.get("entries") != len(entries):
        raise IntegrityError("database %s is malformed: %d entries, header says %r" % (path, len(entries), header.get("entries")))
    return Database(header, entries)


def write_database(path, header, entries, key=None):
    """Write the sealed database atomically (readers see the old one or the new one, never half)."""
    header = dict(header, entries=len(entries), written=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    lines = [json.dumps(header, sort_keys=True)]
    lines.extend(json.dumps([name] + list(entries[name]), separators=(",", ":")) for name in sorted(entries))
    payload = ("\n".join(lines) + "\n").encode("ascii")
    seal = {"format": FORMAT, "version": VERSION, "sha256": hashlib.sha256(payload).hexdigest(),
            "hmac_sha256": hmac.new(key, payload, hashlib.sha256).hexdigest() if key is not None else None}
    with atomic_file(path, 0o600, suffix=".tmp") as handle:
        handle.write(json.dumps(seal, sort_keys=True).encode("ascii") + b"\n")
        handle.write(payload)


# --- result --------------------------------------------------------------------------------------

def _path_fields(path):
    """``path`` for the report; a name that is not UTF-8 also gets its exact bytes in base64."""
    try:
        path.encode("utf-8")
        return {"path": path}
    except UnicodeEncodeError:
        raw = path.encode("utf-8", "surrogateescape")
        return {"path": raw.decode("utf-8", "backslashreplace"), "path_base64": base64.b64encode(raw).decode("ascii")}


def _attributes(entry):
    attributes = {"type": entry.type, "mode": "%04o" % entry.mode, "uid": entry.uid, "gid": entry.gid}
    if entry.type == "file":
        attributes["size"] = entry.size
        attributes["sha256"] = entry.sha256
    elif entry.type == "symlink":
        attributes["target"] = _path_fields(entry.target)["path"] if entry.target is not None else None
    return attributes


def _describe(path, entry):
    return dict(_path_fields(path), **_attributes(entry))


def _describe_change(path, before, after, changes):
    return dict(_path_fields(path), changes=changes, before=_attributes(before), after=_attributes(after))


def _limited(items, limit, summary):
    if limit and len(items) > limit:
        summary["truncated"] = True
        return items[:limit]
    return items


def _summary(entries, added, removed, modified, suspicious, unreadable, hashing):
    kinds = collections.Counter(entry.type for entry in entries.values())
    return {
        "entries": len(entries), "files": kinds["file"], "directories": kinds["directory"],
        "symlinks": kinds["symlink"], "added": len(added), "removed": len(removed), "modified": len(modified),
        "suspicious": len(suspicious), "unreadable": len(unreadable), "files_hashed": hashing.files_hashed,
        "bytes_hashed": hashing.bytes_hashed, "workers": hashing.workers, "truncated": False,
    }


def _message(state, roots, compared, summary):
    counts = "%(suspicious)d suspicious, %(unreadable)d unreadable" % summary
    if not compared:
        return "%s of %s: recorded %d entries, %s" % (state, ", ".join(roots), summary["entries"], counts)
    return "%s of %s: %d added, %d removed, %d modified, %s" % (
        state, ", ".join(roots), summary["added"], summary["removed"], summary["modified"], counts)


def _result(database, key, changed, summary, msg, **lists):
    result = {"changed": changed, "database": database, "database_signed": key is not None, "msg": msg,
              "summary": summary}
    for name in ("added", "removed", "modified", "suspicious", "unreadable", "cms"):
        result[name] = lists.get(name, [])
    return result


def _diff(database, previous, header, entries, limit):
    """Before/after of what the database records: counts, and one line per path that changes."""
    before_entries = previous.entries if previous is not None else {}
    # A first baseline changes every path; listing them all would be the megabytes the counts stand for.
    changed_paths = [] if previous is None else sorted(
        path for path in before_entries.keys() | entries.keys() if before_entries.get(path) != entries.get(path))
    shown = changed_paths[:limit] if limit else changed_paths

    def text(recorded_header, recorded_entries):
        if recorded_header is None:
            return ""
        lines = ["# database %s" % database,
                 "# paths: %s" % ", ".join(recorded_header.get("paths", [])),
                 "# exclude: %s" % ", ".join(recorded_header.get("exclude", [])),
                 "# entries: %d" % len(recorded_entries)]
        lines.extend(_diff_line(path, recorded_entries[path]) for path in shown if path in recorded_entries)
        if len(shown) < len(changed_paths):
            lines.append("# ... %d more changed paths not shown" % (len(changed_paths) - len(shown)))
        return "\n".join(lines) + "\n"

    return {"before_header": database, "after_header": database,
            "before": text(previous.header if previous is not None else None, before_entries),
            "after": text(header, entries)}


def _diff_line(path, entry):
    shown_path = _path_fields(path)["path"].replace("\n", "\\n")
    detail = entry.sha256 if entry.type == "file" else (entry.target or "")
    return "%s %s %04o %d:%d size=%d mtime_ns=%d ctime_ns=%d inode=%d %s" % (
        shown_path, entry.type, entry.mode, entry.uid, entry.gid, entry.size, entry.mtime_ns, entry.ctime_ns,
        entry.inode, detail or "")
