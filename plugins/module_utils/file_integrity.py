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
  edited baseline is refused instead of trusted;
- memory stays flat however many files there are: the walk yields entries in
  one fixed order (the order of their keys, see ``_path_key``), the recorded
  entries are read back from the database in the same order and merged with
  it, and the new database is written as the merge goes, a chunk at a time.

Database format (version 2): an SQLite file with two tables. ``entries`` holds
one row per path, keyed by the path's bytes with "/" written as NUL (so that
the key order is the walk's order: a directory, then its subtree, then its
next sibling); ``meta`` holds the format, the version, the header (JSON:
paths, exclude, entry fields, count, time written) and the seal: the sha256
of the header and of the rows in key order, and an HMAC-SHA256 of that sha256
(null without a key). Version 1 (one JSON value per line) is still read.
"""

from __future__ import annotations

import base64
import collections
import errno
import fnmatch
import hashlib
import hmac
import itertools
import json
import marshal
import os
import re
import stat
import sys
import time

from ansible_collections.hostguard.hosting.plugins.module_utils import safe_fs
from ansible_collections.hostguard.hosting.plugins.module_utils.atomic_file import fsync_directory
from ansible_collections.hostguard.hosting.plugins.module_utils.cms_versions import (
    VERSION_FILES, find_installs, read_fd as cms_read_fd)
from ansible_collections.hostguard.hosting.plugins.module_utils.webshell_rules import RuleError, Scanner

FORMAT = "hostguard-file-integrity"
VERSION = 3
# Earlier versions, still read; state=update replaces them with the current one.
JSON_VERSION = 1  # the line-per-entry JSON database
REPR_SEAL_VERSION = 2  # SQLite, its rows sealed through their repr (3 seals the same rows' marshal bytes)
STATES = ("baseline", "check", "update")
REHASH_MODES = ("changed", "always")
READ_CHUNK = 1 << 20
# Handing hashing to the worker processes pays off from a few hundred files or tens of megabytes on.
PROCESS_MIN_JOBS = 256
PROCESS_MIN_BYTES = 32 << 20
# Work handed to a process at a time: enough to amortise the round trip, small enough to balance.
BATCH_BYTES = 16 << 20
SMALL_FILE_COST = 64 << 10  # opening, reading and scanning a small file weighs like this many bytes
# Entries walked, hashed and written at a time: what bounds memory, whatever the size of the tree.
CHUNK_ENTRIES = 4096
ROWS_AT_ONCE = 4096  # rows fetched from the database at a time
_SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
_SQLITE_MAGIC = b"SQLite format 3\x00"
_CMS_SUFFIXES = tuple(suffix for _cms, suffix, _parser in VERSION_FILES)

Entry = collections.namedtuple(
    "Entry", ("type", "mode", "uid", "gid", "size", "mtime_ns", "ctime_ns", "inode", "target", "sha256", "error"))
# The fields that decide whether a recorded hash can be reused (everything up to the inode).
_METADATA_FIELDS = 8
_COLUMNS = ("key",) + Entry._fields
_MARSHAL_FORMAT = 2
_INODE_SIGN = 1 << 63  # SQLite integers are signed 64-bit; inode numbers are unsigned

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
    _sqlite3()
    try:
        scanner = Scanner(rule_files, allow_sha256, rules_dir) if scan else None
    except RuleError as exc:
        raise IntegrityError(str(exc))
    key = database_key.encode("utf-8") if database_key else None
    database_exists = os.path.exists(database)
    if state == "check" and not database_exists:
        raise IntegrityError("database %s does not exist: record one with state=baseline first" % database)
    if state == "baseline" and database_exists:
        recorded = open_database(database, key)
        _check_recorded(recorded, database, roots, exclude)
        entries = recorded.verify()
        return _result(database, key, changed=False, summary={"entries": entries},
                       msg="database %s exists; baseline leaves it alone, state=update accepts the current state" % database)

    previous = open_database(database, key) if database_exists else None
    if previous is not None and state == "check":
        _check_recorded(previous, database, roots, exclude)
    try:
        opened_roots = safe_fs.Roots(roots)
    except safe_fs.UnsafePath as exc:
        raise IntegrityError(str(exc))
    _OPENED.roots = opened_roots
    run_pass = _Pass(state, database, key, roots, exclude, previous, scanner, rehash == "always",
                     workers or _cpu_count(), report_limit, check_mode, diff)
    try:
        return run_pass.run(started)
    except RuleError as exc:
        # The rule sets are compiled when the first file is matched; users' files were compiled on their own before.
        raise IntegrityError(str(exc))
    finally:
        run_pass.close()
        _OPENED.roots = None
        opened_roots.close()


class _Listing(object):
    """One list of the result: every item counted, the first ``limit`` kept (0 = all)."""

    def __init__(self, limit):
        self.limit = limit
        self.count = 0
        self.items = []

    def add(self, item):
        self.count += 1
        if not self.limit or len(self.items) < self.limit:
            self.items.append(item)

    @property
    def truncated(self):
        return self.count > len(self.items)

    def sorted(self, key=lambda item: item["path"]):
        return sorted(self.items, key=key)


class _Pass(object):
    """One run over the tree: the walk merged with the recorded entries, hashed, compared and written by chunks.

    What it holds grows with a chunk and with the reported lists (``report_limit``), never with the tree.
    """

    def __init__(self, state, database, key, roots, exclude, previous, scanner, rehash_always, workers,
                 report_limit, check_mode, diff):
        self.state, self.database, self.key, self.roots, self.exclude = state, database, key, roots, exclude
        self.previous, self.scanner, self.rehash_always = previous, scanner, rehash_always
        self.workers, self.check_mode, self.diff = workers, check_mode, diff
        self.comparing = previous is not None
        self.recording = state in ("baseline", "update")
        self.excluded = _exclude_matcher(exclude)
        # Entries a new exclude pattern covers are dropped, not reported as removed.
        self.drop_excluded = previous is not None and previous.header.get("exclude") != list(exclude)
        self.header = {"paths": list(roots), "exclude": list(exclude), "fields": list(Entry._fields)}
        self.differs = previous is None or previous.legacy or any(
            previous.header.get(name) != self.header[name] for name in ("paths", "exclude"))
        self.lists = {name: _Listing(report_limit) for name in ("added", "removed", "modified", "suspicious",
                                                                "unreadable")}
        self.report_limit = report_limit
        self.kinds = collections.Counter()
        self.entries = 0
        self.written = 0
        self.files_hashed = 0
        self.bytes_hashed = 0
        self.used_workers = 1
        self.pool = None
        self.pool_failed = False
        self.cms_files = []
        self.diff_paths = _Listing(report_limit)
        self.writer = None
        self.unlisted_directories = []
        self.unstatable = {}
        self.buffer = None

    def close(self):
        if self.pool is not None:
            self.pool.__exit__(None, None, None)
            self.pool = None
        if self.writer is not None:
            self.writer.discard()
            self.writer = None

    def run(self, started):
        if self.recording and not self.check_mode:
            self.writer = _Writer(self.database)
        walked = _walk(self.roots, self.excluded, self, _OPENED.roots)
        recorded = self.previous.rows() if self.previous is not None else iter(())
        # A chunk's files are hashed by the workers while the next chunk is walked and handed to them: the walk
        # and the end of each chunk (its largest file alone in a worker) no longer leave a core idle. Chunks are
        # finished, and their rows written, in the walk's order.
        chunk = []
        started_chunk = None
        for item in _merge(walked, recorded):
            chunk.append(item)
            if len(chunk) >= CHUNK_ENTRIES:
                following = self._start_chunk(chunk)
                if started_chunk is not None:
                    self._finish_chunk(*started_chunk)
                started_chunk = following
                chunk = []
        following = self._start_chunk(chunk)
        if started_chunk is not None:
            self._finish_chunk(*started_chunk)
        self._finish_chunk(*following)
        # The recorded rows are verified as they are read; a row count short of the header's is refused too.
        changed = False
        if self.recording:
            changed = self.differs or self.written != self.previous.count
            if self.writer is not None:
                if changed:
                    self.writer.finish(self.header, self.written, self.key)
                self.writer.discard()
                self.writer = None
        return self._result(changed, started)

    # --- one chunk: decide, hand the files to hash to the workers; then finish each entry in order ---

    def _start_chunk(self, chunk):
        """(chunk, its hashing: results or an iterator of the workers' batches); entries found as recorded are
        marked _REUSED."""
        jobs = []
        reuse = not self.rehash_always
        scanning = self.scanner is not None
        kinds = self.kinds
        cms_files = self.cms_files
        reused = 0
        for item in chunk:
            path, current, row = item[1], item[2], item[4]
            if row is not None and current.__class__ is Entry and current[:_METADATA_FIELDS] == row[1:9] \
                    and current.target is None and current.error is None and row[9] is None and row[11] is None:
                # A file or a directory as recorded (a file with its hash, a directory has none): the recorded row
                # is the current one, as it is. Most entries of a check are these.
                kind = current.type
                if kind == "file":
                    if reuse and row[10] is not None:
                        item[2] = _REUSED
                        reused += 1
                        kinds["file"] += 1
                        if path.endswith(_CMS_SUFFIXES):
                            cms_files.append(path)
                        continue
                elif row[10] is None:
                    item[2] = _REUSED
                    reused += 1
                    kinds[kind] += 1
                    continue
            before = item[3] = _entry_of_row(row) if row is not None else None
            if current is None or current is _UNSTATABLE or current.type != "file":
                continue
            metadata_same = (before is not None and before.sha256 is not None
                             and before[:_METADATA_FIELDS] == current[:_METADATA_FIELDS])
            if metadata_same and reuse:
                item[2] = before  # same metadata, no target, no error: the recorded entry is the current one
            else:
                jobs.append((current.size, path, scanning and not metadata_same))
        self.entries += reused
        return chunk, self._start_hashing(jobs) if jobs else []

    def _finish_chunk(self, chunk, hashing):
        hashed = {result[0]: result for batch in hashing for result in batch}
        rows = []
        finish = self._finish_entry
        for item in chunk:
            if item[2] is _REUSED:
                rows.append(item[4])
            else:
                finish(item, hashed, rows)
        if self.writer is not None and rows:
            self.writer.add(rows)
        self.written += len(rows)

    def _start_hashing(self, jobs):
        """The workers' batches of results, as they come (an iterator), or the results in one batch where the
        files are few (hashed here and now)."""
        # Largest first, so one big file does not finish alone at the end.
        jobs.sort(reverse=True)
        if self.workers > 1 and (len(jobs) >= PROCESS_MIN_JOBS or sum(job[0] for job in jobs) >= PROCESS_MIN_BYTES):
            pool = self._pool()
            if pool is not None:
                self.used_workers = self.workers
                return pool.map_unordered(_hash_in_worker, _batches(jobs))
        return [_hash_jobs(jobs, self.scanner)]

    def _pool(self):
        if self.pool is None and not self.pool_failed:
            pool = WorkerPool(self.workers, self.scanner)
            if pool.available:
                self.pool = pool
            else:
                self.pool_failed = True
        return self.pool

    def _finish_entry(self, item, hashed, rows):
        key, path, current, before, recorded_row = item
        lists = self.lists
        if current is None or current is _UNSTATABLE:
            # Recorded, not seen now.
            if before is None:
                return
            if self._unverified(path):
                rows.append(recorded_row if recorded_row is not None else _row(key, before))
                return
            self.differs = True
            if self.drop_excluded and _excluded_with_ancestors(path, self.roots, self.excluded):
                return
            lists["removed"].add(_describe(path, before))
            self._diff_path(path, before, None)
            return
        scanned = None
        result = hashed.get(path)
        if result is not None:
            _path, fields, error, bytes_read, findings = result
            self.files_hashed += 1
            self.bytes_hashed += bytes_read
            # The metadata of the file that was actually read, in case it changed since the walk.
            current = tuple.__new__(Entry, fields) if fields is not None else current._replace(error=error)
            scanned = findings
        self.entries += 1
        self.kinds[current.type] += 1
        if current.error:
            lists["unreadable"].add(dict(_path_fields(path), error=current.error))
        if current.type == "file" and path.endswith(_CMS_SUFFIXES):
            self.cms_files.append(path)
        suspect = not self.comparing
        if before is None:
            if self.comparing:
                lists["added"].add(_describe(path, current))
                suspect = True
        elif before != current:
            changes = changed_attributes(before, current)
            if changes:
                lists["modified"].add(_describe_change(path, before, current, changes))
                suspect = True
        if suspect and self.scanner is not None:
            self._scan(path, current, scanned)
        if current is before and recorded_row is not None:
            rows.append(recorded_row)
        else:
            rows.append(_row(key, current))
            if before != current:
                self.differs = True
                self._diff_path(path, before, current)

    def _scan(self, path, entry, scanned):
        """Findings for an added, modified or first-recorded entry; a file not scanned while hashed is read again."""
        scanner = self.scanner
        if scanner.allowed(entry.sha256):
            return
        findings = scanner.scan_path(path)
        if scanned is not None:
            findings += scanned
        elif entry.type == "file" and entry.sha256 is not None:
            self.buffer = self.buffer or bytearray(READ_CHUNK)
            content_scan = hash_file(path, self.buffer, scanner.content_scan(path))[4]
            if content_scan is not None:
                findings += content_scan.findings
        for finding in findings:
            self.lists["suspicious"].add(dict(_path_fields(path), sha256=entry.sha256, **finding.as_dict()))

    def _diff_path(self, path, before, after):
        if self.diff and self.recording and self.comparing:
            self.diff_paths.add((path, before, after))

    def _unverified(self, path):
        """Whether ``path`` could not be looked at (so its absence proves nothing)."""
        return path in self.unstatable or any(
            path.startswith(directory.rstrip("/") + "/") for directory in self.unlisted_directories)

    # --- the result ---

    def _result(self, changed, started):
        lists = self.lists
        summary = {
            "entries": self.entries, "files": self.kinds["file"], "directories": self.kinds["directory"],
            "symlinks": self.kinds["symlink"], "added": lists["added"].count, "removed": lists["removed"].count,
            "modified": lists["modified"].count, "suspicious": lists["suspicious"].count,
            "unreadable": lists["unreadable"].count, "files_hashed": self.files_hashed,
            "bytes_hashed": self.bytes_hashed, "workers": self.used_workers,
            "truncated": any(listing.truncated for listing in lists.values()),
        }
        cms = [dict(install, **_path_fields(install["path"]))
               for install in find_installs(self.cms_files, read=_read_text)]
        summary["seconds"] = round(time.monotonic() - started, 3)
        result = _result(
            self.database, self.key, changed=changed, summary=summary,
            added=lists["added"].sorted(), removed=lists["removed"].sorted(), modified=lists["modified"].sorted(),
            suspicious=lists["suspicious"].sorted(),
            unreadable=lists["unreadable"].sorted(key=lambda item: (item["path"], item["error"])),
            cms=cms, msg=_message(self.state, self.roots, self.comparing, summary))
        if self.diff and self.recording:
            result["diff"] = self._diff_result()
        return result

    def _diff_result(self):
        """Before/after of what the database records: counts, and one line per path that changes."""
        # A first baseline changes every path; listing them all would be the megabytes the counts stand for.
        shown = sorted(self.diff_paths.items, key=lambda item: item[0])
        hidden = self.diff_paths.count - len(shown)

        def text(header, count, side):
            if header is None:
                return ""
            lines = ["# database %s" % self.database,
                     "# paths: %s" % ", ".join(header.get("paths", [])),
                     "# exclude: %s" % ", ".join(header.get("exclude", [])),
                     "# entries: %d" % count]
            lines.extend(_diff_line(item[0], item[side]) for item in shown if item[side] is not None)
            if hidden:
                lines.append("# ... %d more changed paths not shown" % hidden)
            return "\n".join(lines) + "\n"

        previous = self.previous
        return {"before_header": self.database, "after_header": self.database,
                "before": text(previous.header if previous is not None else None,
                               previous.count if previous is not None else 0, 1),
                "after": text(self.header, self.written, 2)}


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

_UNSTATABLE = object()  # what the walk yields for a path it could list but not lstat
_REUSED = object()  # an entry found as recorded: its recorded row is written as it is
# os.fsencode, without its Python-level checks: a call per name of the tree.
_FS_ENCODING, _FS_ERRORS = sys.getfilesystemencoding(), sys.getfilesystemencodeerrors()


class _OPENED(object):
    """The roots of the run in progress, opened through safe_fs; forked hashing workers inherit them."""
    roots = None


def _path_key(path):
    """The database key of ``path``: its bytes with "/" as NUL, so that the order of keys is the walk's order."""
    return os.fsencode(path).replace(b"/", b"\0")


def _path_of_key(key):
    return os.fsdecode(key.replace(b"\0", b"/"))


def _walk(roots, excluded, run_pass, opened):
    """Yield [key, path, Entry or _UNSTATABLE] for every path under ``roots``, in key order, without following
    symlinks; nothing is hashed yet.

    Every directory is reached from its root's descriptor one name at a time (safe_fs), so a directory the
    account swaps for a symlink during the walk is reported, never followed, and mount points are not crossed.
    A directory's children are listed and lstat'ed at once, while its descriptor is the one listed, then sorted
    by name; only the directories from the root down to the current one are held.
    """
    for root in sorted(roots, key=_path_key):
        walker = opened.walker(root)
        entry = _entry_from_stat(opened.trees[root].info, os.fsencode(root))
        stack = []
        if entry.type == "directory":
            children, entry = _list_directory(walker, (), root, entry, excluded, run_pass)
            stack.append(((), iter(children)))
        yield _path_key(root), root, entry
        while stack:
            parts, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                continue
            key, path, name, entry = child
            if entry is not _UNSTATABLE and entry.type == "directory":
                below = parts + (name,)
                grandchildren, entry = _list_directory(walker, below, path, entry, excluded, run_pass)
                stack.append((below, iter(grandchildren)))
            yield key, path, entry


def _list_directory(walker, parts, directory, entry, excluded, run_pass):
    """([(key, path, name, Entry or _UNSTATABLE)] of the children in key order, the directory's entry)."""
    try:
        # scandir reads a duplicate of the descriptor and rewinds it when done.
        with os.scandir(walker.directory(parts)) as listing:
            children = list(listing)
    except (OSError, safe_fs.UnsafePath) as exc:
        run_pass.unlisted_directories.append(directory)
        return [], entry._replace(error="cannot list directory: %s" % _reason(exc))
    dir_fd = walker.directory(parts)
    prefix = directory if directory.endswith("/") else directory + "/"
    key_prefix = _path_key(prefix)
    type_names = _TYPE_NAMES
    new_entry = tuple.__new__  # Entry without its Python-level __new__, once per path
    records = []
    for child in children:
        name = child.name
        path = prefix + name
        if excluded is not None and excluded(path):
            continue
        try:
            info = child.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue  # removed between listing and lstat: it is not there
        except OSError as exc:
            error = "cannot lstat: %s" % _reason(exc)
            run_pass.unstatable[path] = error
            run_pass.lists["unreadable"].add(dict(_path_fields(path), error=error))
            records.append((key_prefix + name.encode(_FS_ENCODING, _FS_ERRORS), path, name, _UNSTATABLE))
            continue
        mode = info.st_mode
        kind = type_names.get(mode & 0o170000, "unknown")  # stat.S_IFMT, without a call per name
        target = error = None
        if kind == "symlink":
            target, error = _link_target(name, dir_fd)
        records.append((key_prefix + name.encode(_FS_ENCODING, _FS_ERRORS), path, name,
                        new_entry(Entry, (kind, mode & 0o7777, info.st_uid, info.st_gid, info.st_size,
                                          info.st_mtime_ns, info.st_ctime_ns, info.st_ino, target, None, error))))
    records.sort()  # by key: names are unique, so no two records compare further than their keys
    return records, entry


def _merge(walked, recorded):
    """[key, path, current entry or None, None, recorded row or None] for every key of either; the recorded entry
    (the fourth) is made from the row by ``_Pass._start_chunk`` where it is needed.

    Both come in key order, so this is one pass over each.
    """
    old = next(recorded, None)
    for key, path, current in walked:
        while old is not None and old[0] < key:
            yield [old[0], _path_of_key(old[0]), None, None, old]
            old = next(recorded, None)
        if old is not None and old[0] == key:
            yield [key, path, current, None, old]
            old = next(recorded, None)
        else:
            yield [key, path, current, None, None]
    while old is not None:
        yield [old[0], _path_of_key(old[0]), None, None, old]
        old = next(recorded, None)


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
    # In path order, whatever order the batch came in (largest first): each file is opened through the directories
    # of the one before it (safe_fs's Walker keeps them open), so a directory is opened once, not once per file.
    for _size, path, scan in sorted(jobs, key=_job_path):
        digest, opened, error, bytes_read, content_scan = hash_file(
            path, buffer, scanner.content_scan(path) if scan else None)
        fields = None
        if opened is not None:
            fields = ("file", stat.S_IMODE(opened.st_mode), opened.st_uid, opened.st_gid, opened.st_size,
                      opened.st_mtime_ns, opened.st_ctime_ns, opened.st_ino, None, digest, None)
        results.append((path, fields, error, bytes_read, content_scan.findings if content_scan is not None else None))
    return results


def _job_path(job):
    return job[1]


def hash_file(path, buffer, content_scan=None):
    """Return (sha256 hex, fstat of what was read, error, bytes read, content_scan).

    Opened without following a symlink and without blocking, so a file swapped
    for a symlink or a FIFO after the walk is reported, not followed or waited on.
    """
    try:
        fd, opened = _open_file(path)  # the fstat of the open file
    except safe_fs.UnsafePath as exc:
        if exc.errno == errno.EAGAIN:  # another type now (open_entry checks it)
            return None, None, "no longer a regular file", 0, None
        return None, None, "cannot open: %s" % _reason(exc), 0, None
    except OSError as exc:
        return None, None, "cannot open: %s" % _reason(exc), 0, None
    total = 0
    try:
        if not stat.S_ISREG(opened.st_mode):
            return None, None, "no longer a regular file", 0, None
        if content_scan is not None:
            content_scan.uid = opened.st_uid  # the owner of what is read, not of whatever the path names now
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


# --- database ------------------------------------------------------------------------------------

def _sqlite3():
    try:
        import sqlite3
    except ImportError:
        raise IntegrityError("Python's sqlite3 module is missing on this host: install the python3 package "
                             "(Debian's libpython3-stdlib), not python3-minimal alone")
    return sqlite3


def open_database(path, key=None):
    """The recorded database at ``path``, by its format: SQLite (version 2) or line-per-entry JSON (version 1)."""
    try:
        with open(path, "rb") as handle:
            start = handle.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise IntegrityError("database %s cannot be read: %s" % (path, _reason(exc)))
    if start == _SQLITE_MAGIC:
        return _SqliteDatabase(path, key)
    if start.startswith(b"{"):
        return _JsonDatabase(path, key)
    raise IntegrityError("database %s is not a %s database" % (path, FORMAT))


class Database(object):
    """A database read whole: ``header`` and ``entries`` by path (for small trees and tests)."""

    def __init__(self, header, entries):
        self.header = header
        self.entries = entries


def read_database(path, key=None):
    """Load and verify the whole database at ``path`` (a run never does this: it streams the rows)."""
    recorded = open_database(path, key)
    entries = {_path_of_key(row[0]): _entry_of_row(row) for row in recorded.rows()}
    return Database(recorded.header, entries)


def _seal(header_json, rows_digest, key):
    """(sha256, hmac) of a header and the sha256 of its rows."""
    sha256 = hashlib.sha256(header_json.encode("utf-8") + b"\n" + rows_digest.encode("ascii")).hexdigest()
    return sha256, (hmac.new(key, sha256.encode("ascii"), hashlib.sha256).hexdigest() if key is not None else None)


def _digest_rows(digest, rows):
    # Each row's bytes in marshal's format 2, which has no back-references (format 3 and later mark objects seen
    # twice, which depends on how the row was built): of (bytes, str, int, None) tuples they are exact, the same
    # for a row read back as for the row written, whatever the batches, and made in C without a Python call per
    # row (repr, which version 2 sealed, cost a fifth of a check of an unchanged tree).
    digest.update(b"".join(map(marshal.dumps, rows, itertools.repeat(_MARSHAL_FORMAT))))


def _digest_rows_by_repr(digest, rows):
    """The rows' digest of a version 2 database."""
    digest.update("".join([repr(row) + "\n" for row in rows]).encode("utf-8", "surrogatepass"))


def _row(key, entry):
    """The database row of ``entry``: names as bytes, the inode as a signed 64-bit integer."""
    inode = entry.inode
    return (key, entry.type, entry.mode, entry.uid, entry.gid, entry.size, entry.mtime_ns, entry.ctime_ns,
            inode - (_INODE_SIGN << 1) if inode >= _INODE_SIGN else inode,
            os.fsencode(entry.target) if entry.target is not None else None, entry.sha256,
            entry.error.encode("utf-8", "surrogateescape") if entry.error is not None else None)


def _entry_of_row(row):
    inode = row[8]
    target = row[9]
    error = row[11]
    return tuple.__new__(Entry, (
        row[1], row[2], row[3], row[4], row[5], row[6], row[7], inode + (_INODE_SIGN << 1) if inode < 0 else inode,
        os.fsdecode(target) if target is not None else None, row[10],
        error.decode("utf-8", "surrogateescape") if error is not None else None))


class _SqliteDatabase(object):
    """A version 3 (or 2) database: header and seal read at once, rows streamed in key order and verified as read."""

    legacy = False

    def __init__(self, path, key):
        self.path = path
        self.key = key
        sqlite3 = _sqlite3()
        self._error = sqlite3.Error
        try:
            # Read-only and immutable: a check creates no journal or lock file beside the database.
            from urllib.parse import quote
            self._connection = sqlite3.connect("file:%s?mode=ro&immutable=1" % quote(path), uri=True)
            meta = dict(self._connection.execute("SELECT name, value FROM meta"))
        except sqlite3.Error as exc:
            raise UntrustedDatabaseError("database %s is corrupt or is not a %s database (%s); its contents are "
                                         "not trusted" % (path, FORMAT, exc))
        if meta.get("format") != FORMAT:
            raise IntegrityError("database %s is not a %s database" % (path, FORMAT))
        version = meta.get("version")
        if version not in (str(REPR_SEAL_VERSION), str(VERSION)):
            raise IntegrityError("database %s has format version %r; this module reads versions %d, %d and %d"
                                 % (path, version, JSON_VERSION, REPR_SEAL_VERSION, VERSION))
        # An older version is read and verified as it was sealed; state=update writes the current one.
        self.legacy = version != str(VERSION)
        self._digest_rows = _digest_rows if not self.legacy else _digest_rows_by_repr
        self._header_json = meta.get("header") or ""
        self._sha256 = meta.get("sha256")
        self._hmac = meta.get("hmac_sha256")
        if key is not None and not self._hmac:
            raise UntrustedDatabaseError(
                "database %s carries no HMAC although database_key was given: it was written without a key "
                "or its HMAC was stripped; its contents are not trusted" % path)
        if key is None and self._hmac:
            raise UntrustedDatabaseError("database %s is sealed with a key: give database_key to verify it" % path)
        try:
            self.header = json.loads(self._header_json)
            self.count = int(self.header["entries"])
        except (ValueError, TypeError, KeyError) as exc:
            raise IntegrityError("database %s is malformed: header %s" % (path, exc))

    def rows(self):
        """Yield the rows in key order; after the last row, refuse the database if it was altered."""
        digest = hashlib.sha256()
        digest_rows = self._digest_rows
        count = 0
        try:
            cursor = self._connection.execute("SELECT %s FROM entries ORDER BY key" % ", ".join(_COLUMNS))
            while True:
                rows = cursor.fetchmany(ROWS_AT_ONCE)
                if not rows:
                    break
                digest_rows(digest, rows)
                count += len(rows)
                yield from rows
        except self._error as exc:
            raise UntrustedDatabaseError("database %s is corrupt (%s); its contents are not trusted" % (self.path, exc))
        except (TypeError, ValueError, AttributeError, IndexError) as exc:
            raise IntegrityError("database %s is malformed: %s" % (self.path, exc))
        finally:
            self._connection.close()
        self._verify(digest.hexdigest(), count)

    def _verify(self, rows_digest, count):
        sha256, _unused = _seal(self._header_json, rows_digest, None)
        if self.key is not None:
            expected = hmac.new(self.key, sha256.encode("ascii"), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, str(self._hmac)):
                raise UntrustedDatabaseError(
                    "database %s failed HMAC verification: it was modified after it was written, or the key is "
                    "wrong; its contents are not trusted" % self.path)
        if sha256 != self._sha256:
            raise UntrustedDatabaseError("database %s is corrupt or was edited (its sha256 does not match); "
                                         "its contents are not trusted" % self.path)
        if count != self.count:
            raise IntegrityError("database %s is malformed: %d entries, header says %d" % (self.path, count, self.count))

    def verify(self):
        """Read every row once; return their number."""
        count = 0
        for _row_of_key in self.rows():
            count += 1
        return count


class _Writer(object):
    """A new database built in a temporary file beside the target, rows in key order in one transaction;
    ``finish`` seals it and renames it over the target (readers see the old one or the new one, never half)."""

    def __init__(self, path):
        import tempfile  # pylint: disable=import-outside-toplevel  # a check, which writes nothing, never loads it
        sqlite3 = _sqlite3()
        self.path = path
        directory = os.path.dirname(path)
        fd, self.temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=".tmp")  # mode 0600
        os.close(fd)
        self.digest = hashlib.sha256()
        try:
            self.connection = sqlite3.connect(self.temporary, isolation_level=None)
            # No journal: until the rename the file is nobody's database, and a failure deletes it.
            self.connection.execute("PRAGMA journal_mode=OFF")
            self.connection.execute("PRAGMA synchronous=OFF")
            self.connection.execute("BEGIN")
            self.connection.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
            self.connection.execute(
                "CREATE TABLE entries (key BLOB PRIMARY KEY, type TEXT NOT NULL, mode INTEGER, uid INTEGER, "
                "gid INTEGER, size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER, inode INTEGER, target BLOB, "
                "sha256 TEXT, error BLOB) WITHOUT ROWID")
        except sqlite3.Error as exc:
            self.discard()
            raise IntegrityError("database %s cannot be written: %s" % (path, exc))
        self._insert = "INSERT INTO entries VALUES (%s)" % ", ".join("?" * len(_COLUMNS))

    def add(self, rows):
        _digest_rows(self.digest, rows)
        self.connection.executemany(self._insert, rows)

    def finish(self, header, count, key):
        header = dict(header, entries=count, written=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        header_json = json.dumps(header, sort_keys=True)
        sha256, seal_hmac = _seal(header_json, self.digest.hexdigest(), key)
        meta = {"format": FORMAT, "version": str(VERSION), "header": header_json, "sha256": sha256}
        if seal_hmac is not None:
            meta["hmac_sha256"] = seal_hmac
        self.connection.executemany("INSERT INTO meta VALUES (?, ?)", sorted(meta.items()))
        self.connection.execute("COMMIT")
        self.connection.close()
        self.connection = None
        fd = os.open(self.temporary, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(self.temporary, self.path)
        self.temporary = None
        fsync_directory(os.path.dirname(self.path))

    def discard(self):
        if getattr(self, "connection", None) is not None:
            self.connection.close()
            self.connection = None
        if self.temporary is not None:
            try:
                os.unlink(self.temporary)
            except FileNotFoundError:
                pass
            self.temporary = None


class _JsonDatabase(object):
    """A version 1 database (one JSON value per line), read whole as earlier versions did; state=update
    replaces it with a version 2 database."""

    legacy = True

    def __init__(self, path, key):
        self.path = path
        self.header, self._entries = _read_json_database(path, key)
        self.count = len(self._entries)

    def rows(self):
        entries, self._entries = self._entries, None
        for row_key, path in sorted((_path_key(path), path) for path in entries):
            yield _row(row_key, entries[path])

    def verify(self):
        return self.count


def _read_json_database(path, key=None):
    """(header, entries by path) of the version 1 database at ``path``, verified.

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
    if seal.get("version") != JSON_VERSION:
        raise IntegrityError("database %s has format version %r; this module reads versions %d, %d and %d"
                             % (path, seal.get("version"), JSON_VERSION, REPR_SEAL_VERSION, VERSION))
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
    return header, entries


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


def _diff_line(path, entry):
    shown_path = _path_fields(path)["path"].replace("\n", "\\n")
    detail = entry.sha256 if entry.type == "file" else (entry.target or "")
    return "%s %s %04o %d:%d size=%d mtime_ns=%d ctime_ns=%d inode=%d %s" % (
        shown_path, entry.type, entry.mode, entry.uid, entry.gid, entry.size, entry.mtime_ns, entry.ctime_ns,
        entry.inode, detail or "")
