# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Quarantine of planted files and document roots, and their exact restore.

Pure standard library: it runs on managed hosts that only have python3.

What a quarantine does to each path (a file, or a directory and everything in it):
1. record every entry (type, numeric uid/gid, mode, atime/mtime in ns, size,
   inode, inode generation and link count, sha256 of regular files, symlink
   target, extended attributes including POSIX ACLs, the immutable and
   append-only flags);
2. optionally write an evidence copy (tar.gz with numeric owners and the manifest);
3. write the manifest atomically into a root-only directory;
4. only then lock each entry: owner root:root, mode 0000, optionally the
   immutable flag, top-down so the account is shut out of a tree at once.

A restore checks every recorded entry first (same inode, generation and type,
same content hash) and then puts back exactly what was recorded: owner, xattrs
and mode of the contents, then of the directories deepest first, then the
times, then the recorded flags. Whatever it cannot restore is reported per entry, and the
manifest stays in place until everything is back.

Entries are reached through directory file descriptors opened one component at
a time with O_NOFOLLOW, and every change is made on a descriptor of the entry
that was checked (fchown, fchmod, ioctl), so a directory or file swapped for a
symlink by the compromised account is never followed out of the document root.
The flags are read and set with the FS_IOC_GETFLAGS/FS_IOC_SETFLAGS ioctls
(fcntl), not by running chattr.

Manifests: ``<manifest_dir>/<key>.json`` while a path is quarantined (the key
is derived from its resolved path), moved to ``restored/`` once restored and to
``superseded/`` when the file at the path was replaced by another one.
Names that are not UTF-8 are kept as base64 of their bytes beside a readable
form, so every name round-trips exactly.
"""

from __future__ import annotations

import array
import base64
import collections
import errno
import fcntl
import hashlib
import itertools
import json
import os
import socket
import stat
import struct
import tarfile
import time

from ansible_collections.hostguard.hosting.plugins.module_utils import safe_fs
from ansible_collections.hostguard.hosting.plugins.module_utils.atomic_file import (
    atomic_file,
    fsync_directory,
    write_atomically,
)

FORMAT = "hostguard-quarantine"
VERSION = 1
STATES = ("quarantined", "restored")
DEFAULT_MANIFEST_DIR = "/var/lib/hostguard/quarantine"
STATUSES = ("quarantined", "already_quarantined", "restored", "not_quarantined", "refused", "failed")
# Never a document root: quarantining one of these would take the system down with the site.
SYSTEM_DIRECTORIES = frozenset((
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32", "/media", "/mnt",
    "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/usr/bin", "/usr/lib",
    "/usr/local", "/usr/sbin", "/usr/share", "/var", "/var/backups", "/var/cache", "/var/lib", "/var/log",
    "/var/mail", "/var/spool", "/var/tmp",
))

# linux/fs.h: FS_IOC_GETFLAGS = _IOR('f', 1, long), FS_IOC_SETFLAGS = _IOW('f', 2, long) in the generic
# ioctl encoding (x86, arm); the kernel reads and writes an int.
_LONG_SIZE = struct.calcsize("l")
FS_IOC_GETFLAGS = 0x80006601 | (_LONG_SIZE << 16)
FS_IOC_SETFLAGS = 0x40006602 | (_LONG_SIZE << 16)
# FS_IOC_GETVERSION = _IOR('v', 1, long): the inode generation, which tells a file apart from a later file
# that was given the same inode number (ext4 reuses them at once).
FS_IOC_GETVERSION = 0x80007601 | (_LONG_SIZE << 16)
FLAG_BITS = collections.OrderedDict((("immutable", 0x10), ("append", 0x20)))
_PROTECTIVE_FLAGS = 0x10 | 0x20
_FLAGS_UNSUPPORTED = (errno.ENOTTY, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EINVAL)
CAP_LINUX_IMMUTABLE = 9

READ_CHUNK = safe_fs.READ_CHUNK


class QuarantineError(Exception):
    """Bad input, raised before anything is changed; the message names the value."""


class _EntryProblem(Exception):
    """One entry cannot be handled; ``status`` is ``failed`` or ``refused``."""

    def __init__(self, status, reason):
        super(_EntryProblem, self).__init__(reason)
        self.status = status
        self.reason = reason


class Target(object):
    """A path to quarantine or restore: as given, normalized, the document root it lies in (an opened
    safe_fs.OpenedTree) and its names below that root (empty for the docroot itself)."""

    def __init__(self, given, real, docroot, tree=None):
        self.given = given
        self.real = real
        self.docroot = docroot
        self.tree = tree
        self.parts = tuple(part for part in real[len(docroot):].split("/") if part)
        self.key = hashlib.sha256(os.fsencode(real)).hexdigest()[:32]


def run(paths, state, docroots, manifest_dir=DEFAULT_MANIFEST_DIR, immutable=False, evidence_dir=None,
        check_mode=False, diff=False):
    """Quarantine or restore ``paths``; return the module result as a dict.

    Every argument is validated before anything is changed; a bad one raises QuarantineError.
    """
    if state not in STATES:
        raise QuarantineError("state %r is not one of %s" % (state, ", ".join(STATES)))
    roots = validate_docroots(docroots)
    try:
        manifest_dir = _validate_private_dir("manifest_dir", manifest_dir, roots)
        if evidence_dir is not None:
            evidence_dir = _validate_private_dir("evidence_dir", evidence_dir, roots)
        if state == "quarantined" and immutable:
            _require_immutable_capability()
        targets = validate_paths(paths, roots, must_exist=state == "quarantined", manifest_dir=manifest_dir)
        store = ManifestStore(manifest_dir, check_mode)
        # Outer paths first, so a file inside a directory of the same run is covered by the directory.
        ordered = sorted(targets, key=lambda target: (target.real.count("/"), target.real))
        results, diffs = [], []
        for target in ordered:
            if state == "quarantined":
                result, before, after = quarantine_target(target, store, immutable, evidence_dir, check_mode)
            else:
                result, before, after = restore_target(target, store, check_mode)
            results.append(result)
            if before is not None:
                diffs.append((before, after))
    finally:
        for root in roots.values():
            root.close()
    return _module_result(state, results, diffs, store, check_mode, diff)


# --- input ---------------------------------------------------------------------------------------

def validate_docroots(docroots):
    """The document roots as {path: safe_fs.OpenedTree}, each opened once from ``/`` without following a
    symlink and without trusting an ancestor another account can change; no system directory. The caller
    closes them."""
    if isinstance(docroots, (str, bytes)) or not docroots:
        raise QuarantineError("docroots %r must be a non-empty list of absolute paths" % (docroots,))
    roots = collections.OrderedDict()
    try:
        for docroot in docroots:
            normalized = _normalized_absolute("docroot", docroot)
            if normalized in SYSTEM_DIRECTORIES:
                raise QuarantineError("docroot %s is a system directory, never a document root" % docroot)
            if normalized in roots:
                continue
            try:
                roots[normalized] = safe_fs.open_tree(normalized, "docroot")
            except safe_fs.UnsafePath as exc:
                raise QuarantineError(str(exc))
    except BaseException:
        for root in roots.values():
            root.close()
        raise
    return roots


def validate_paths(paths, roots, must_exist, manifest_dir=None):
    """Targets for ``paths`` (strings, or dicts with ``path`` and optionally ``path_base64``). A path is taken
    as given: it must lie under a docroot by its names, and no directory between the docroot and the path
    may be a symlink (the account could point it anywhere)."""
    if isinstance(paths, (str, bytes, dict)) or not paths:
        raise QuarantineError("path %r must be a non-empty list of absolute paths (or of dicts with a path key)"
                              % (paths,))
    targets = collections.OrderedDict()
    for item in paths:
        given = _path_from_item(item)
        normalized = _normalized_absolute("path", given)
        docroot = max((root for root in roots if _is_within(normalized, root)), key=len, default=None)
        if docroot is None:
            raise QuarantineError("path %s is outside the docroots %s" % (_text(given), ", ".join(roots)))
        target = Target(normalized, normalized, docroot, roots[docroot])
        if must_exist and not _exists_below(target):
            # A quarantined path that vanished is reported by the run, not refused as a typo.
            if manifest_dir is None or not os.path.exists(os.path.join(manifest_dir, target.key + ".json")):
                raise QuarantineError("path %s does not exist" % _text(given))
        targets.setdefault(normalized, target)
    return list(targets.values())


def _exists_below(target):
    """Whether something is at the target's path, reached from its docroot; a symlink or a mount point
    between the docroot and the path is refused (QuarantineError naming it)."""
    if not target.parts:
        return True
    try:
        with safe_fs.Walker(target.tree.fd) as walker:
            dir_fd, name = walker.locate(target.parts)
            os.lstat(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    except (OSError, safe_fs.UnsafePath) as exc:
        if getattr(exc, "errno", None) == errno.ENOENT:
            return False
        raise QuarantineError("path %s cannot be reached from docroot %s without following a symlink or leaving "
                              "its file system (%s): nothing changed" % (_text(target.real), target.docroot,
                                                                         _reason(exc)))
    return True


def _path_from_item(item):
    if isinstance(item, dict):
        if item.get("path_base64"):
            try:
                return os.fsdecode(base64.b64decode(item["path_base64"], validate=True))
            except (TypeError, ValueError):
                raise QuarantineError("path_base64 %r is not valid base64" % (item["path_base64"],))
        if "path" not in item:
            raise QuarantineError("path item %r has no path key" % (item,))
        item = item["path"]
    if not isinstance(item, str):
        raise QuarantineError("path %r is not a string" % (item,))
    return item


def _normalized_absolute(what, value):
    if not isinstance(value, str) or not value:
        raise QuarantineError("%s %r is not a path" % (what, value))
    if "\0" in value:
        raise QuarantineError("%s %r contains a NUL byte" % (what, value))
    if not value.startswith("/"):
        raise QuarantineError("%s %s is not absolute" % (what, _text(value)))
    parts = [part for part in value.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise QuarantineError("%s %s contains '..': give the path without it" % (what, _text(value)))
    return "/" + "/".join(parts)


def _validate_private_dir(what, path, roots):
    normalized = _normalized_absolute(what, path)
    real = os.path.realpath(normalized)
    for root in roots:
        if _is_within(real, root) or _is_within(root, real):
            # The account owning the docroot could rename it; quarantining the docroot would lock it.
            raise QuarantineError("%s %s overlaps docroot %s: keep it outside the document roots" % (what, path, root))
    if os.path.lexists(normalized):
        info = os.lstat(normalized)
        if not stat.S_ISDIR(info.st_mode):
            raise QuarantineError("%s %s exists and is not a directory" % (what, path))
        if info.st_uid != 0 or info.st_mode & 0o077:
            raise QuarantineError("%s %s must be owned by root with mode 0700 (it is %d:%d %04o)" % (
                what, path, info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)))
    return normalized


def _require_immutable_capability():
    try:
        with open("/proc/self/status") as status:
            effective = next(int(line.split()[1], 16) for line in status if line.startswith("CapEff:"))
    except (OSError, StopIteration, ValueError):
        return
    if not effective & (1 << CAP_LINUX_IMMUTABLE):
        raise QuarantineError("immutable=true needs the CAP_LINUX_IMMUTABLE capability, which this process lacks "
                              "(containers often drop it): run without immutable, or where it is granted")


def _is_within(path, directory):
    return path == directory or path.startswith(directory.rstrip("/") + "/")


# --- manifests -----------------------------------------------------------------------------------

class ManifestStore(object):
    """The manifest directory: active manifests by key, and the archive of restored and superseded ones."""

    def __init__(self, directory, check_mode):
        self.directory = directory
        self.check_mode = check_mode
        self.written = 0
        # Keys quarantined or restored by this run, so check mode answers as the real run would.
        self.planned_active = set()
        self.planned_inactive = set()

    def path(self, key):
        return os.path.join(self.directory, key + ".json")

    def is_active(self, key):
        if key in self.planned_inactive:
            return False
        return key in self.planned_active or os.path.exists(self.path(key))

    def covering(self, target):
        """The active manifest of a directory above ``target``, as (path, manifest file), or None."""
        parent = os.path.dirname(target.real)
        while _is_within(parent, target.docroot):
            key = Target(parent, parent, target.docroot).key
            if self.is_active(key):
                return parent, self.path(key)
            if parent == target.docroot:
                break
            parent = os.path.dirname(parent)
        return None

    def load(self, key):
        path = self.path(key)
        with open(path, "rb") as stream:
            manifest = json.loads(stream.read().decode("ascii"))
        if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
            raise _EntryProblem("failed", "manifest %s is not a %s v%d manifest" % (path, FORMAT, VERSION))
        return manifest

    def write(self, key, manifest_text):
        self.planned_active.add(key)
        self.planned_inactive.discard(key)
        if self.check_mode:
            return self.path(key)
        _make_private_dir(self.directory)
        write_atomically(self.path(key), manifest_text.encode("ascii"))
        self.written += 1
        return self.path(key)

    def retire(self, key, reason):
        """Move an active manifest to the ``reason`` archive; return its new path."""
        self.planned_inactive.add(key)
        self.planned_active.discard(key)
        archived = os.path.join(self.directory, reason, "%s-%s.json" % (key, _stamp()))
        if not self.check_mode:
            _make_private_dir(os.path.dirname(archived))
            os.rename(self.path(key), archived)
            fsync_directory(self.directory)
            self.written += 1
        return archived


def manifest_text(target, entries, immutable, evidence):
    """The manifest as ASCII JSON with one entry per line, so it can be grepped."""
    header = collections.OrderedDict((
        ("format", FORMAT), ("version", VERSION),
    ))
    header.update(_name_fields("path", target.real))
    header.update((
        ("docroot", target.docroot), ("docroot_device", target.tree.identity[0]),
        ("docroot_inode", target.tree.identity[1]), ("host", socket.gethostname()), ("quarantined_at", _stamp()),
        ("immutable", bool(immutable)), ("evidence", evidence),
    ))
    head = json.dumps(header)[:-1]
    body = ",\n".join(json.dumps(entry, sort_keys=True) for entry in entries)
    return '%s, "entries": [\n%s\n]}\n' % (head, body)


def _make_private_dir(path):
    if not os.path.isdir(path):
        os.makedirs(path, mode=0o700)
        os.chmod(path, 0o700)


def _stamp():
    now = time.time()
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + ".%06dZ" % int((now % 1) * 1000000)


# --- what is quarantined now (read only) ----------------------------------------------------------

def restore_command(docroot, path):
    """The command that puts ``path`` back (playbooks/restore.yml), for reports."""
    return ("ansible-playbook hostguard.hosting.restore -l HOST -e '%s'"
            % json.dumps({"quarantine_docroots": [docroot], "quarantine_restore_paths": [path]}))


def quarantined(manifest_dir=DEFAULT_MANIFEST_DIR):
    """Every path with an active manifest in ``manifest_dir``, and whether its lock is in force now.

    Reads only: the manifests, and the top entry of each path, reached from its docroot the way a restore
    reaches it (no symlink followed). Returns ``{"manifest_dir", "quarantined": [...], "unreadable": [...]}``;
    each item names the path, its docroot, when it was quarantined, the manifest, the evidence copy, how many
    entries it holds, the ``lock`` (V(in_force); V(undone) when the top entry is no longer root:root 0000;
    V(gone) when nothing is at the path; V(replaced) when another file is; V(unknown) with the reason when it
    cannot be reached) and the restore command.
    """
    result = {"manifest_dir": manifest_dir, "quarantined": [], "unreadable": []}
    try:
        names = sorted(name for name in os.listdir(manifest_dir) if name.endswith(".json"))
    except FileNotFoundError:
        return result
    for name in names:
        path = os.path.join(manifest_dir, name)
        try:
            with open(path, "rb") as stream:
                manifest = json.loads(stream.read().decode("ascii"))
            if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
                raise ValueError("not a %s v%d manifest" % (FORMAT, VERSION))
            real, top = _name_from_fields("path", manifest), manifest["entries"][0]
            docroot = manifest["docroot"]
        except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
            result["unreadable"].append({"manifest": path, "reason": _reason(exc)})
            continue
        item = _name_fields("path", real)
        item.update(docroot=docroot, quarantined_at=manifest.get("quarantined_at"), manifest=path,
                    evidence=manifest.get("evidence"), immutable=bool(manifest.get("immutable")),
                    entries=len(manifest["entries"]), type=top.get("type"))
        item.update(_lock_now(real, docroot, top))
        item["restore"] = restore_command(docroot, item["path"])
        result["quarantined"].append(item)
    return result


def _lock_now(real, docroot, top):
    """``{"lock": state, "lock_problem": why or None}`` for the top entry of a quarantined path."""
    try:
        roots = validate_docroots([docroot])
    except QuarantineError as exc:
        return {"lock": "unknown", "lock_problem": str(exc)}
    try:
        target = Target(real, real, docroot, roots[docroot])
        with Tree(target) as tree:
            with tree.open(".") as opened:
                try:
                    info = opened.check_same(top)
                except _EntryProblem as exc:
                    return {"lock": "replaced", "lock_problem": exc.reason}
        mode = stat.S_IMODE(info.st_mode)
        if (info.st_uid, info.st_gid) != (0, 0) or (top.get("type") != "symlink" and mode != 0):
            return {"lock": "undone", "lock_problem": "owner %d:%d, mode %04o now (locked: 0:0 0000)"
                    % (info.st_uid, info.st_gid, mode)}
        return {"lock": "in_force", "lock_problem": None}
    except FileNotFoundError:
        return {"lock": "gone", "lock_problem": "nothing is at the path now"}
    except _EntryProblem as exc:
        return {"lock": "unknown", "lock_problem": exc.reason}
    except (OSError, safe_fs.UnsafePath) as exc:
        return {"lock": "unknown", "lock_problem": _reason(exc)}
    finally:
        for root in roots.values():
            root.close()


# --- the tree of one target ----------------------------------------------------------------------

class Tree(object):
    """The entries of one target, reached from its docroot's descriptor by their names below the target
    (``rel``: ``.`` for the target itself), never following a symlink nor leaving the docroot's file system.
    """

    def __init__(self, target):
        self.target = target
        self.top_name = os.path.basename(target.real)
        self._walker = safe_fs.Walker(target.tree.fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._walker.close()

    def parts(self, rel):
        return self.target.parts if rel == "." else self.target.parts + tuple(rel.split("/"))

    def open(self, rel, kind=None):
        """The entry ``rel`` opened as ``kind`` (by default: as the type found there now)."""
        parts = self.parts(rel)
        if not parts:
            if kind not in (None, "directory"):
                raise _EntryProblem("refused", "the docroot is a directory, recorded as a %s" % kind)
            fd = os.dup(self.target.tree.fd)
            return _Opened(fd, os.fstat(fd), "directory")
        try:
            dir_fd, name = self._walker.locate(parts)
        except safe_fs.UnsafePath as exc:
            if exc.errno == errno.ENOENT:
                raise FileNotFoundError(errno.ENOENT, str(exc))
            raise _EntryProblem("refused", "a directory above it cannot be reached safely: %s" % exc)
        if kind is None:
            kind = _kind(os.lstat(name, dir_fd=dir_fd))
        try:
            fd, info = safe_fs.open_entry(dir_fd, name, kind, noatime=True, parent_mount=self._walker.mount)
        except safe_fs.UnsafePath as exc:
            raise _EntryProblem("refused", "%s: left alone" % exc)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise _EntryProblem("refused", "a symlink is at this path now, not the recorded %s: left alone" % kind)
            if exc.errno == errno.EXDEV:
                raise _EntryProblem("refused", "a mount point (another file system): never crossed")
            raise
        return _Opened(fd, info, kind)


class _Opened(object):
    """An entry opened through safe_fs: a read descriptor for files and directories, an O_PATH descriptor for
    symlinks and special files. Every read and change goes through the descriptor, never through the name."""

    def __init__(self, fd, info, kind):
        self.fd, self.info, self.kind = fd, info, kind

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        os.close(self.fd)

    @property
    def has_flags(self):
        return self.kind in ("file", "directory")

    def stat(self):
        return os.fstat(self.fd)

    def chown(self, uid, gid):
        if self.has_flags:
            os.fchown(self.fd, uid, gid)
        else:
            safe_fs.fchown_fd(self.fd, uid, gid)

    def chmod(self, mode):
        if self.kind == "symlink":
            return
        if self.has_flags:
            os.fchmod(self.fd, mode)
        else:
            # The /proc link of an O_PATH descriptor is the inode itself (fchmod refuses O_PATH descriptors).
            os.chmod("/proc/self/fd/%d" % self.fd, mode)

    def utime(self, atime_ns, mtime_ns):
        if self.has_flags:
            os.utime(self.fd, ns=(atime_ns, mtime_ns))
        else:
            safe_fs.utime_fd(self.fd, atime_ns, mtime_ns)

    def readlink(self):
        return os.readlink("", dir_fd=self.fd)

    def _read_int_ioctl(self, request):
        """An int the file system tells through an ioctl, or None where it has none to tell."""
        if not self.has_flags:
            return None
        buffer = array.array("i", [0])
        try:
            fcntl.ioctl(self.fd, request, buffer, True)
        except OSError as exc:
            if exc.errno in _FLAGS_UNSUPPORTED:
                return None
            raise
        return buffer[0]

    def flags(self):
        """The inode flags, or None where the file system (or the file type) has none."""
        return self._read_int_ioctl(FS_IOC_GETFLAGS)

    def set_flags(self, flags):
        fcntl.ioctl(self.fd, FS_IOC_SETFLAGS, array.array("i", [flags]))

    def generation(self):
        """The inode generation, or None where the file system does not tell it."""
        generation = self._read_int_ioctl(FS_IOC_GETVERSION)
        return None if generation is None else generation & 0xFFFFFFFF

    def check_same(self, entry):
        """Raise unless this is the recorded entry: same type, inode and (where known) generation."""
        info = self.stat()
        generation = self.generation() if "generation" in entry else None
        reused_inode = generation is not None and generation != entry["generation"]
        if info.st_ino != entry["inode"] or _kind(info) != entry["type"] or reused_inode:
            raise _EntryProblem("refused", "a different %s is at this path now (inode %d%s, recorded: %s inode %d): "
                                "left alone" % (_kind(info), info.st_ino, " reused" if reused_inode else "",
                                                entry["type"], entry["inode"]))
        return info

    def xattrs(self):
        if not self.has_flags:
            return {}
        try:
            names = os.listxattr(self.fd)
        except OSError as exc:
            if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
                return {}
            raise
        return dict((name, os.getxattr(self.fd, name)) for name in names)

    def set_xattr(self, name, value):
        os.setxattr(self.fd, name, value)

    def content(self, entry):
        """The file's content as a _Content: read from the descriptor, holes of a sparse file skipped."""
        return _Content(self.fd, entry["size"], safe_fs.is_sparse(self.info))


class _Content(object):
    """A regular file's content, read once for its digest and, where asked, for the evidence copy.

    A file without holes worth skipping is hashed as ``sha256`` (what sha256sum prints), holes read as
    zeros. A sparse file is hashed as ``sha256_data``: over each data extent as ``start:length\\n`` and
    its bytes, so a 16 TiB file of holes costs what it holds; its evidence member is a GNU sparse 1.0
    member that tar restores with its holes.
    """

    def __init__(self, fd, size, sparse):
        self.fd, self.size, self.sparse = fd, size, sparse
        self.extents = safe_fs.data_extents(fd, size)
        self.field = "sha256_data" if sparse else "sha256"
        self.digest = hashlib.sha256()

    def chunks(self):
        """The bytes of the file as stored in the evidence (sparse: only the data), hashing as it goes;
        a file cut short meanwhile reads as zeros to its recorded size, so the copy keeps its layout."""
        position = 0
        for start, end in self.extents:
            if not self.sparse and start > position:
                for zeros in _zeros(start - position):
                    self.digest.update(zeros)
                    yield zeros
            if self.sparse:
                self.digest.update(b"%d:%d\n" % (start, end - start))
            got = start
            for data in safe_fs.read_extent(self.fd, start, end):
                self.digest.update(data)
                got += len(data)
                yield data
            for zeros in _zeros(end - got):
                self.digest.update(zeros)
                yield zeros
            position = end
        if not self.sparse and position < self.size:
            for zeros in _zeros(self.size - position):
                self.digest.update(zeros)
                yield zeros

    def hexdigest(self):
        for _chunk in self.chunks():
            pass
        return self.digest.hexdigest()

    def sparse_map(self):
        """The GNU sparse 1.0 map that opens a sparse member's data, padded to a tar block."""
        pairs = "".join("%d\n%d\n" % (start, end - start) for start, end in self.extents)
        text = ("%d\n" % len(self.extents) + pairs).encode("ascii")
        return text + b"\0" * (-len(text) % tarfile.BLOCKSIZE)


def _zeros(count):
    while count > 0:
        size = min(count, READ_CHUNK)
        yield bytes(size)
        count -= size


def record(target):
    """Every entry of ``target`` in pre-order (directories before their contents, names sorted), with its
    metadata; contents are hashed later, from the locked inodes (``hash_entries``)."""
    entries = []
    pending = ["."]
    with Tree(target) as tree:
        while pending:
            rel = pending.pop()
            entry, children = _record_entry(tree, rel)
            entries.append(entry)
            prefix = "" if rel == "." else rel + "/"
            pending.extend(prefix + child for child in sorted(children, reverse=True))
    return entries


def _record_entry(tree, rel):
    with tree.open(rel) as opened:
        info, kind = opened.info, opened.kind
        entry = _name_fields("path", rel)
        entry.update(type=kind, uid=info.st_uid, gid=info.st_gid, mode="%04o" % stat.S_IMODE(info.st_mode),
                     size=info.st_size, atime_ns=info.st_atime_ns, mtime_ns=info.st_mtime_ns,
                     inode=info.st_ino, nlink=info.st_nlink)
        children = []
        if kind == "directory":
            children = os.listdir(opened.fd)
        elif kind == "symlink":
            entry.update(_name_fields("target", opened.readlink()))
        elif kind in ("char_device", "block_device"):
            entry["rdev"] = info.st_rdev
        generation = opened.generation()
        if generation is not None:
            entry["generation"] = generation
        flags = opened.flags()
        if flags is not None and flags & _PROTECTIVE_FLAGS:
            entry["flags"] = [flag for flag, bit in FLAG_BITS.items() if flags & bit]
        xattrs = opened.xattrs()
        if xattrs:
            entry["xattrs"] = dict((key, base64.b64encode(value).decode("ascii")) for key, value in xattrs.items())
    return entry, children


def _kind(info):
    return safe_fs.kind_of(info)


def check_top(target, entry):
    """Raise FileNotFoundError when nothing is at the target's path, _EntryProblem when another file is."""
    with Tree(target) as tree:
        with tree.open(".") as opened:
            opened.check_same(entry)


def _check_docroot(target, manifest):
    """Raise _EntryProblem when the docroot is not the directory the manifest was written for."""
    recorded = (manifest.get("docroot_device"), manifest.get("docroot_inode"))
    if recorded[1] is not None and tuple(recorded) != target.tree.identity:
        raise _EntryProblem("failed", "the docroot %s was replaced since the quarantine (device %d inode %d now, "
                            "recorded device %d inode %d): nothing restored; find where the quarantined tree went"
                            % (target.docroot, target.tree.identity[0], target.tree.identity[1],
                               recorded[0], recorded[1]))


def _recorded_flags(entry):
    return sum(FLAG_BITS[flag] for flag in entry.get("flags", ()))


def entry_rel(entry):
    return _name_from_fields("path", entry)


def _open_entry(tree, entry, removed="after it was recorded"):
    """The recorded entry opened as its recorded type, or an _EntryProblem saying why not."""
    # Tree.open already turns an unsafe path into an _EntryProblem and a missing one into FileNotFoundError.
    try:
        return tree.open(entry_rel(entry), entry["type"])
    except FileNotFoundError:
        raise _EntryProblem("failed", "missing: removed %s" % removed)
    except OSError as exc:
        raise _EntryProblem("failed", "cannot reach it: %s" % _reason(exc))


# --- quarantine ----------------------------------------------------------------------------------

def quarantine_target(target, store, immutable, evidence_dir, check_mode):
    """Quarantine one target; return (result, diff before, diff after).

    The account is shut out first: the entries are recorded (metadata only), the manifest is written, and
    every entry is locked through its checked descriptor. Only then are the contents hashed, and the
    evidence copy written, from the locked inodes: a file the account keeps rewriting or a huge sparse file
    cannot keep the tree open to it while it is read.
    """
    covering = store.covering(target)
    if covering is not None:
        return _target_result(target, "already_quarantined", "already quarantined as part of %s (manifest %s)"
                              % (_text(covering[0]), covering[1]), manifest=covering[1], covered_by=_text(covering[0])), \
            None, None
    superseded = None
    if store.is_active(target.key):
        outcome = _requarantine(target, store, immutable, check_mode)
        if outcome is not None:
            return outcome
        superseded = store.retire(target.key, "superseded")
    try:
        entries = record(target)
    except (OSError, _EntryProblem, safe_fs.UnsafePath) as exc:
        return _target_result(target, "failed", "not quarantined, nothing changed: cannot record it: %s"
                              % _reason(exc)), None, None
    if immutable and entries[0]["type"] != "symlink":
        problem = _immutable_unsupported(target)
        if problem:
            return _target_result(target, "failed", problem), None, None
    before = _describe_entries(target, entries)
    after = _describe_locked(target, entries, immutable)
    evidence = None
    if evidence_dir is not None:
        evidence = os.path.join(evidence_dir, "%s-%s.tar.gz" % (target.key, _stamp()))
    manifest = store.write(target.key, manifest_text(target, entries, immutable, evidence))
    changed, failures = lock(target, entries, immutable, dry_run=check_mode)
    warnings = []
    if not check_mode:
        try:
            warnings = hash_and_copy(target, entries, evidence, immutable)
        except (OSError, tarfile.TarError) as exc:
            warnings.append("locked, but the evidence copy %s could not be written: %s" % (evidence, _reason(exc)))
            evidence = None
            warnings.extend(hash_and_copy(target, entries, None, immutable))
        store.write(target.key, manifest_text(target, entries, immutable, evidence))
    extra = {"evidence": evidence, "entries": len(entries), "changed_entries": changed, "failures": failures,
             "links_outside": _links_outside(entries), "warnings": warnings}
    if superseded:
        extra["superseded_manifest"] = superseded
    verb = "would quarantine" if check_mode else "quarantined"
    lock_text = "owner root:root, mode 0000%s" % (", immutable" if immutable else "")
    if failures:
        msg = "%s %d of %s (%s); %d could not be locked; manifest %s" % (
            verb, len(entries) - len(failures), _entries(len(entries)), lock_text, len(failures), manifest)
        return _target_result(target, "failed", msg, manifest=manifest, **extra), before, after
    msg = "%s %s (%s); manifest %s" % (verb, _entries(len(entries)), lock_text, manifest)
    if superseded:
        msg += "; the file quarantined before was replaced since, its manifest moved to %s" % superseded
    return _target_result(target, "quarantined", msg, manifest=manifest, **extra), before, after


def _requarantine(target, store, immutable, check_mode):
    """For a target with an active manifest: lock again what was unlocked since, or None when the file
    quarantined before is no longer at the path and the new one must be quarantined on its own."""
    manifest_path = store.path(target.key)
    try:
        manifest = store.load(target.key)
        entries = manifest["entries"]
    except (OSError, ValueError, KeyError, _EntryProblem) as exc:
        return _target_result(target, "failed", "cannot read its manifest %s: %s" % (manifest_path, _reason(exc)),
                              manifest=manifest_path), None, None
    try:
        check_top(target, entries[0])
    except FileNotFoundError:
        return _target_result(target, "failed", "quarantined before (manifest %s) but gone now: the owner of its "
                              "parent directory removed it" % manifest_path, manifest=manifest_path), None, None
    except _EntryProblem:
        return None
    except OSError as exc:
        return _target_result(target, "failed", "cannot examine it: %s" % _reason(exc), manifest=manifest_path), \
            None, None
    wanted_immutable = immutable or manifest.get("immutable", False)
    before = _describe_current(target, entries)
    changed, failures = lock(target, entries, wanted_immutable, dry_run=check_mode)
    extra = {"manifest": manifest_path, "evidence": manifest.get("evidence"), "entries": len(entries),
             "changed_entries": changed, "failures": failures, "links_outside": _links_outside(entries)}
    if failures:
        return _target_result(target, "failed", "quarantined before (manifest %s), but %s cannot be locked "
                              "again" % (manifest_path, _entries(len(failures))), **extra), None, None
    if not changed:
        return _target_result(target, "already_quarantined", "already quarantined (manifest %s)" % manifest_path,
                              **extra), None, None
    msg = "%s %s that were unlocked since the quarantine (manifest %s)" % (
        "would lock again" if check_mode else "locked again", _entries(changed), manifest_path)
    after = _describe_locked(target, entries, wanted_immutable)
    return _target_result(target, "quarantined", msg, **extra), before, after


def _immutable_unsupported(target):
    with Tree(target) as tree:
        with tree.open(".") as opened:
            if opened.has_flags and opened.flags() is None:
                return ("not quarantined, nothing changed: immutable=true, but the file system of %s has no "
                        "immutable flag" % _text(target.real))
    return None


def lock(target, entries, immutable, dry_run=False):
    """Lock every recorded entry, top-down; return (entries changed, failures)."""
    changed, failures = 0, []
    with Tree(target) as tree:
        for entry in entries:
            try:
                with _open_entry(tree, entry) as opened:
                    if _lock_entry(target, opened, entry, immutable, dry_run):
                        changed += 1
            except _EntryProblem as problem:
                failures.append(_failure(target, entry, problem.status, problem.reason))
            except OSError as exc:
                failures.append(_failure(target, entry, "failed", _reason(exc)))
    return changed, failures


def _lock_entry(target, opened, entry, immutable, dry_run):
    """Make one entry root:root 0000 (and immutable if asked); True when it changed it."""
    info = opened.check_same(entry)
    kind = opened.kind
    if kind != "directory" and info.st_nlink > 1 and info.st_uid not in (target.tree.owner, 0):
        # Another name of this inode may lie outside the tree (a file of another account, or of the system
        # where protected_hardlinks is off): locking it would lock that file too.
        raise _EntryProblem("refused", "a hard link (%d names) to a file of uid %d, not of the tree's owner uid %d: "
                            "it may be a file outside the tree; left alone" % (info.st_nlink, info.st_uid,
                                                                               target.tree.owner))
    flags = opened.flags()
    wanted_flags = 0
    if opened.has_flags:
        wanted_flags = _recorded_flags(entry) | (FLAG_BITS["immutable"] if immutable else 0)
    current_flags = (flags or 0) & _PROTECTIVE_FLAGS
    owned = info.st_uid == 0 and info.st_gid == 0
    if owned and (kind == "symlink" or stat.S_IMODE(info.st_mode) == 0) and current_flags == wanted_flags:
        return False
    if dry_run:
        return True
    if current_flags:
        opened.set_flags(flags & ~_PROTECTIVE_FLAGS)
    opened.chown(0, 0)
    opened.chmod(0)
    if wanted_flags:
        if flags is None:
            raise _EntryProblem("failed", "locked, but its file system has no immutable flag")
        opened.set_flags((flags & ~_PROTECTIVE_FLAGS) | wanted_flags)
    return True


def _links_outside(entries):
    """Hard links to recorded files from outside the target: they share the locked inode."""
    names = collections.Counter(entry["inode"] for entry in entries if entry["type"] != "directory")
    return sum(entry["nlink"] - names[entry["inode"]] for entry in _first_of_each_inode(entries)
               if entry["type"] != "directory" and entry["nlink"] > names[entry["inode"]])


def _first_of_each_inode(entries):
    seen = set()
    for entry in entries:
        if entry["inode"] not in seen:
            seen.add(entry["inode"])
            yield entry


def hash_and_copy(target, entries, evidence, immutable=False):
    """Hash every recorded file from its (locked) inode into its entry, and write the evidence copy
    ``evidence`` (a tar.gz of every entry, numeric owners, the manifest last) in the same read when given;
    return warnings. A file that cannot be reached is left without a hash and named in a warning."""
    warnings = []
    if evidence is None:
        with Tree(target) as tree:
            for entry in _first_of_each_inode(entries):
                if entry["type"] == "file":
                    _hash_entry(tree, target, entry, warnings)
        _copy_hashes(entries)
        return warnings
    _make_private_dir(os.path.dirname(evidence))
    with atomic_file(evidence, 0o600, suffix=".tar.gz") as stream:
        with tarfile.open(fileobj=stream, mode="w:gz", format=tarfile.PAX_FORMAT, encoding="utf-8",
                          errors="surrogateescape", compresslevel=6) as tar:
            _add_entries(tar, target, entries, warnings)
            _copy_hashes(entries)
            text = manifest_text(target, entries, immutable, evidence).encode("ascii")
            manifest = tarfile.TarInfo("manifest.json")
            manifest.size, manifest.mode, manifest.mtime = len(text), 0o600, time.time()
            tar.addfile(manifest, _ChunkReader(iter([text])))
    return warnings


def _hash_entry(tree, target, entry, warnings, tar=None, info=None):
    try:
        with _open_entry(tree, entry) as opened:
            opened.check_same(entry)
            content = opened.content(entry)
            if tar is None:
                entry[content.field] = content.hexdigest()
                return
            if content.sparse:
                info.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0", "GNU.sparse.name": info.name,
                                    "GNU.sparse.realsize": str(entry["size"])}
                head, tail = os.path.split(info.name)
                info.name = (head + "/" if head else "") + "GNUSparseFile.0/" + tail
                sparse_map = content.sparse_map()
                info.size = len(sparse_map) + sum(end - start for start, end in content.extents)
                tar.addfile(info, _ChunkReader(itertools.chain([sparse_map], content.chunks())))
            else:
                info.size = entry["size"]
                tar.addfile(info, _ChunkReader(content.chunks()))
            entry[content.field] = content.digest.hexdigest()
    except (_EntryProblem, OSError) as exc:
        warnings.append("%s: content not hashed%s: %s" % (_text(_full_path(target, entry)),
                                                          "" if tar is None else " nor copied", _reason(exc)))


def _copy_hashes(entries):
    """Every name of a hard-linked file gets the hash read through its first name."""
    digests = {}
    for entry in entries:
        for field in ("sha256", "sha256_data"):
            if field in entry:
                digests[entry["inode"]] = (field, entry[field])
    for entry in entries:
        if entry["type"] == "file" and entry["inode"] in digests:
            field, value = digests[entry["inode"]]
            entry[field] = value


class _ChunkReader(object):
    """A file object over an iterator of byte chunks, for tarfile.addfile."""

    def __init__(self, chunks):
        self._chunks = iter(chunks)
        self._buffer = b""

    def read(self, size=-1):
        while size is None or size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, None)
            if chunk is None:
                break
            self._buffer += chunk
        if size is None or size < 0:
            size = len(self._buffer)
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


_TAR_TYPES = {"file": tarfile.REGTYPE, "directory": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
              "fifo": tarfile.FIFOTYPE, "char_device": tarfile.CHRTYPE, "block_device": tarfile.BLKTYPE}


def _add_entries(tar, target, entries, warnings):
    first_name = {}
    with Tree(target) as tree:
        for entry in entries:
            if entry["type"] not in _TAR_TYPES:
                warnings.append("%s: a %s cannot be stored in the evidence copy" % (
                    _text(_full_path(target, entry)), entry["type"]))
                continue
            rel = entry_rel(entry)
            info = tarfile.TarInfo(tree.top_name if rel == "." else tree.top_name + "/" + rel)
            info.type = _TAR_TYPES[entry["type"]]
            info.uid, info.gid, info.uname, info.gname = entry["uid"], entry["gid"], "", ""
            info.mode = int(entry["mode"], 8)
            info.mtime = entry["mtime_ns"] / 1e9
            if entry["type"] == "symlink":
                info.linkname = _name_from_fields("target", entry)
            elif "rdev" in entry:
                info.devmajor, info.devminor = os.major(entry["rdev"]), os.minor(entry["rdev"])
            if entry["type"] != "file":
                tar.addfile(info)
                continue
            if entry["inode"] in first_name:
                info.type, info.linkname = tarfile.LNKTYPE, first_name[entry["inode"]]
                tar.addfile(info)
                continue
            first_name[entry["inode"]] = info.name
            _hash_entry(tree, target, entry, warnings, tar, info)


# --- restore -------------------------------------------------------------------------------------

def restore_target(target, store, check_mode):
    """Restore one target from its manifest; return (result, diff before, diff after)."""
    if not store.is_active(target.key):
        covering = store.covering(target)
        if covering is not None:
            return _target_result(target, "refused", "inside %s, which is quarantined as a whole (manifest %s): "
                                  "restore %s" % (_text(covering[0]), covering[1], _text(covering[0])),
                                  manifest=covering[1], covered_by=_text(covering[0])), None, None
        return _target_result(target, "not_quarantined", "not quarantined: no manifest for it in %s"
                              % store.directory), None, None
    manifest_path = store.path(target.key)
    try:
        manifest = store.load(target.key)
        entries = manifest["entries"]
        if _name_from_fields("path", manifest) != target.real:
            raise _EntryProblem("failed", "it records %s" % manifest["path"])
    except (OSError, ValueError, KeyError, _EntryProblem) as exc:
        return _target_result(target, "failed", "cannot use its manifest %s: %s" % (manifest_path, _reason(exc)),
                              manifest=manifest_path), None, None
    try:
        _check_docroot(target, manifest)
    except _EntryProblem as problem:
        return _target_result(target, "failed", "%s (manifest %s kept)" % (problem.reason, manifest_path),
                              manifest=manifest_path), None, None
    try:
        check_top(target, entries[0])
    except FileNotFoundError:
        return _target_result(target, "failed", "quarantined (manifest %s) but gone now: nothing to restore"
                              % manifest_path, manifest=manifest_path), None, None
    except _EntryProblem as problem:
        return _target_result(target, "refused", "%s; it appeared after the quarantine, so the recorded state is not "
                              "applied to it (manifest %s kept)" % (problem.reason, manifest_path),
                              manifest=manifest_path), None, None
    except (OSError, safe_fs.UnsafePath) as exc:
        return _target_result(target, "failed", "cannot examine it: %s" % _reason(exc), manifest=manifest_path), \
            None, None
    before = _describe_current(target, entries)
    planned, in_place, failures = plan_restore(target, entries)
    if not check_mode and planned:
        failures.extend(apply_restore(target, entries, planned))
    restored = len(planned) - len([failure for failure in failures if failure.get("stage") == "apply"])
    extra = {"evidence": manifest.get("evidence"), "entries": len(entries), "changed_entries": restored,
             "failures": [_without_stage(failure) for failure in failures], "links_outside": _links_outside(entries)}
    after = _describe_entries(target, entries)
    if failures:
        msg = "%s %s (%d already were as recorded); %d could not be restored and stay as they are " \
              "(manifest %s kept)" % ("would restore" if check_mode else "restored", _entries(restored), in_place,
                                      len(failures), manifest_path)
        return _target_result(target, "failed", msg, manifest=manifest_path, **extra), before, after
    archived = store.retire(target.key, "restored")
    msg = "%s %s exactly as recorded (%d already were); manifest %s %s" % (
        "would restore" if check_mode else "restored", _entries(restored), in_place,
        "would move to" if check_mode else "moved to", archived)
    return _target_result(target, "restored", msg, manifest=archived, **extra), before, after


def plan_restore(target, entries):
    """Check every entry without changing anything: (indexes to restore, count already as recorded, failures)."""
    planned, in_place, failures = [], 0, []
    with Tree(target) as tree:
        for index, entry in enumerate(entries):
            try:
                with _open_entry(tree, entry, "since the quarantine") as opened:
                    if _needs_restore(opened, entry):
                        planned.append(index)
                    else:
                        in_place += 1
            except _EntryProblem as problem:
                failures.append(_failure(target, entry, problem.status, problem.reason))
            except OSError as exc:
                failures.append(_failure(target, entry, "failed", _reason(exc)))
    return planned, in_place, failures


def _needs_restore(opened, entry):
    info = opened.check_same(entry)
    if opened.kind == "file":
        field = "sha256_data" if "sha256_data" in entry else "sha256"
        if field not in entry:
            raise _EntryProblem("failed", "its content was never hashed (see the quarantine's warnings): left "
                                "quarantined, restore it by hand after checking it")
        content = opened.content(entry)
        digest = content.hexdigest()
        if content.field != field or digest != entry[field]:
            raise _EntryProblem("failed", "content changed since the quarantine (%s %s, recorded %s %s): left "
                                "quarantined" % (content.field, digest, field, entry[field]))
    flags = opened.flags()
    same = (info.st_uid == entry["uid"] and info.st_gid == entry["gid"]
            and "%04o" % stat.S_IMODE(info.st_mode) == entry["mode"]
            and info.st_mtime_ns == entry["mtime_ns"] and info.st_atime_ns == entry["atime_ns"]
            and (flags or 0) & _PROTECTIVE_FLAGS == _recorded_flags(entry)
            and _recorded_xattrs(entry) == dict((key, value) for key, value in opened.xattrs().items()
                                                if key in _recorded_xattrs(entry)))
    return not same


def apply_restore(target, entries, planned):
    """Put back the planned entries; return failures (each marked with the stage ``apply``)."""
    failures = []
    contents = [index for index in planned if entries[index]["type"] != "directory"]
    directories = [index for index in planned if entries[index]["type"] == "directory"]
    # Contents first, then directories deepest first, so a locked directory opens to the account only when
    # everything in it is back. Nothing done to an entry moves the times of another one (chown, chmod and
    # xattrs change only the entry's own ctime), so each entry's times can go last in its own step.
    with Tree(target) as tree:
        for index in contents + directories[::-1]:
            entry = entries[index]
            try:
                with _open_entry(tree, entry, "since the quarantine") as opened:
                    opened.check_same(entry)
                    _restore_entry(opened, entry)
            except (OSError, _EntryProblem) as exc:
                failure = _failure(target, entry, getattr(exc, "status", "failed"), _reason(exc))
                failure["stage"] = "apply"
                failures.append(failure)
    return failures


def _restore_entry(opened, entry):
    flags = opened.flags()
    if flags is not None and flags & _PROTECTIVE_FLAGS:
        opened.set_flags(flags & ~_PROTECTIVE_FLAGS)
    # chown first: it clears setuid/setgid bits and file capabilities, which the xattrs and the mode put back;
    # the ACL goes before the mode, since chmod rewrites the ACL's mask from the mode.
    opened.chown(entry["uid"], entry["gid"])
    current = opened.xattrs()
    for name, value in sorted(_recorded_xattrs(entry).items()):
        if current.get(name) != value:
            opened.set_xattr(name, value)
    opened.chmod(int(entry["mode"], 8))
    # Times after every other change to the entry, and the recorded flags last: an immutable inode takes no utime.
    opened.utime(entry["atime_ns"], entry["mtime_ns"])
    recorded = _recorded_flags(entry)
    if recorded:
        opened.set_flags((flags or 0) & ~_PROTECTIVE_FLAGS | recorded)


def _recorded_xattrs(entry):
    return dict((name, base64.b64decode(value)) for name, value in entry.get("xattrs", {}).items())


def _without_stage(failure):
    return dict((key, value) for key, value in failure.items() if key != "stage")


# --- results -------------------------------------------------------------------------------------

def _target_result(target, status, msg, manifest=None, **extra):
    result = _name_fields("path", target.real)
    result.update(status=status, msg=msg, manifest=manifest)
    if target.given != target.real:
        result["given"] = _text(target.given)
    for name, default in (("evidence", None), ("entries", 0), ("changed_entries", 0), ("failures", []),
                          ("links_outside", 0), ("warnings", [])):
        result[name] = extra.pop(name, default)
    result.update(extra)
    return result


def _failure(target, entry, status, reason):
    failure = _name_fields("path", _full_path(target, entry))
    failure.update(status=status, reason=reason)
    return failure


def _full_path(target, entry):
    rel = entry_rel(entry)
    return target.real if rel == "." else target.real + "/" + rel


def _module_result(state, results, diffs, store, check_mode, diff):
    counts = collections.OrderedDict((status, 0) for status in STATUSES)
    for result in results:
        counts[result["status"]] += 1
    counts["entries_changed"] = sum(result["changed_entries"] for result in results)
    counts["entries_failed"] = sum(len(result["failures"]) for result in results)
    changed = counts["entries_changed"] > 0 or store.written > 0 or (
        check_mode and (counts["quarantined"] + counts["restored"]) > 0)
    problems = counts["failed"] + counts["refused"]
    summary = ", ".join("%d %s" % (count, status) for status, count in counts.items()
                        if count and status in STATUSES)
    result = {"changed": changed, "state": state, "manifest_dir": store.directory, "results": results,
              "counts": dict(counts), "failed": problems > 0,
              "msg": "%s%s" % ("check mode: " if check_mode else "", summary)}
    if problems:
        result["msg"] += "; see results[].msg and results[].failures for each path that was not %s" % state
    if diff:
        result["diff"] = {"before": "".join(before for before, _after in diffs),
                          "after": "".join(after for _before, after in diffs)}
    return result


def _describe_entries(target, entries):
    return _describe(target, [(entry["type"], entry["uid"], entry["gid"], int(entry["mode"], 8),
                               bool(entry.get("flags"))) for entry in entries])


def _describe_locked(target, entries, immutable):
    return _describe(target, [(entry["type"], 0, 0, 0, immutable and entry["type"] in ("file", "directory")
                               or bool(entry.get("flags"))) for entry in entries])


def _describe_current(target, entries):
    states = []
    with Tree(target) as tree:
        for entry in entries:
            try:
                with tree.open(entry_rel(entry)) as opened:
                    info = opened.info
                states.append((_kind(info), info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode), False))
            except (OSError, _EntryProblem, safe_fs.UnsafePath):
                states.append(("missing", -1, -1, 0, False))
    return _describe(target, states)


def _describe(target, states):
    """One line per target: owner:mode of a single entry, or counts of each for a tree."""
    path = _text(target.real)
    if len(states) == 1:
        kind, uid, gid, mode, flagged = states[0]
        return "%s %s %d:%d %04o%s\n" % (path, kind, uid, gid, mode, " (immutable or append-only)" if flagged else "")
    owners = collections.Counter("%d:%d" % (uid, gid) for _kind_, uid, gid, _mode, _flagged in states)
    modes = collections.Counter("%04o" % mode for kind, _uid, _gid, mode, _flagged in states if kind != "symlink")
    flagged = sum(1 for state in states if state[4])
    return "%s tree of %d entries: owners %s; modes %s%s\n" % (
        path, len(states), _counted(owners), _counted(modes), "; %d immutable or append-only" % flagged if flagged else "")


def _entries(count):
    return "%d entr%s" % (count, "y" if count == 1 else "ies")


def _counted(counter):
    return ", ".join("%s x%d" % (value, count) for value, count in sorted(counter.items(), key=lambda item: -item[1]))


def _reason(exc):
    if isinstance(exc, _EntryProblem):
        return exc.reason
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)


def _text(path):
    """A path for messages; bytes that are not UTF-8 are shown as backslash escapes."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _name_fields(field, name):
    """``{field: text}``, plus ``field_base64`` with the exact bytes when the name is not UTF-8."""
    raw = os.fsencode(name)
    fields = collections.OrderedDict()
    try:
        fields[field] = raw.decode("utf-8")
    except UnicodeDecodeError:
        fields[field] = raw.decode("utf-8", "backslashreplace")
        fields[field + "_base64"] = base64.b64encode(raw).decode("ascii")
    return fields


def _name_from_fields(field, fields):
    if field + "_base64" in fields:
        return os.fsdecode(base64.b64decode(fields[field + "_base64"]))
    return fields[field]
