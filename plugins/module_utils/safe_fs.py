# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Root's way into a tree that a hostile account controls.

Every root operation on a customer's tree (quarantine, restore, the integrity scan, account removal) goes
through this layer, so that the account can make it refuse, never make it act elsewhere:

- ``open_tree(path)`` opens the top of the tree (a docroot, a home) once, one component at a time from ``/``
  with ``O_NOFOLLOW``: a symlink anywhere on the path is refused, and so is an ancestor that another account
  could change (owned by someone else than root or the account that owns the first non-root component, or
  writable by group or others without the sticky bit).
- ``open_entry(dir_fd, name, kind)`` opens one name below an opened directory: ``openat2`` with
  ``RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV`` where the kernel has it, else ``openat`` with
  ``O_NOFOLLOW`` and a mount check; ``O_NONBLOCK`` always (a FIFO swapped in cannot hang the caller), and the
  type opened is checked against the type expected.
- Symlinks and special files are only ever changed through ``O_PATH | O_NOFOLLOW`` descriptors
  (``fchownat``/``utimensat`` with ``AT_EMPTY_PATH``), never by name.
- ``Walker`` keeps the directories from the top down to the entry being visited, closing the middle of a
  deep chain and coming back up through ``..`` checked against the recorded inode, so a tree's depth is not
  limited by the open-files limit.
- ``data_extents(fd, size)`` and ``read_extent`` read a file's data and skip its holes, so a huge sparse file costs what it
  holds, not what it claims.

Pure standard library (ctypes for the calls the os module lacks).
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
import stat

# linux/openat2.h
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
_SYS_OPENAT2 = 437  # the same number on every architecture (it is newer than the split syscall tables)
AT_EMPTY_PATH = 0x1000
AT_SYMLINK_NOFOLLOW = 0x100

O_PATH = getattr(os, "O_PATH", 0o10000000)
OPEN_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
# Other types are only ever reached through an O_PATH descriptor: opening a device or a FIFO could have effects.
OPEN_PATH = O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
# Reading for a hash must not change atimes a responder may still want to look at.
NOATIME = getattr(os, "O_NOATIME", 0)

TYPE_NAMES = {
    stat.S_IFREG: "file", stat.S_IFDIR: "directory", stat.S_IFLNK: "symlink", stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket", stat.S_IFCHR: "char_device", stat.S_IFBLK: "block_device",
}
SEEK_DATA = getattr(os, "SEEK_DATA", 3)
SEEK_HOLE = getattr(os, "SEEK_HOLE", 4)
READ_CHUNK = 1 << 20
# Directory descriptors a Walker keeps open at most (and at most a quarter of the open-files limit); deeper
# chains are left and re-entered through "..".
WALKER_OPEN_LIMIT = 128


class UnsafePath(Exception):
    """The path cannot be reached without trusting something another account can change; nothing was done.

    ``errno`` is set where an OSError was the cause (ENOENT for a missing component)."""

    def __init__(self, message, error=None):
        super(UnsafePath, self).__init__(message)
        self.errno = error


def kind_of(info):
    return TYPE_NAMES.get(stat.S_IFMT(info.st_mode), "unknown")


# --- the calls the os module lacks -----------------------------------------------------------------

class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


_LIBC = None


def libc():
    """The C library, loaded once: the process's own symbols, which hold libc's (ctypes.util.find_library would
    fork ldconfig and a compiler to find the file, megabytes and tens of milliseconds for nothing)."""
    global _LIBC
    if _LIBC is None:
        _LIBC = ctypes.CDLL(None, use_errno=True)
    return _LIBC


class _Openat2(object):
    """Whether openat2(2) can be used: probed once (old kernels answer ENOSYS, some container runtimes' seccomp
    filters EPERM); tests set ``available`` to False to take the other way."""
    available = None


def _openat2_available():
    if _Openat2.available is None:
        try:
            os.close(_openat2(-100, "/", OPEN_PATH, 0))  # AT_FDCWD
            _Openat2.available = True
        except (OSError, AttributeError):
            _Openat2.available = False
    return _Openat2.available


def _openat2(dir_fd, name, flags, resolve):
    how = _OpenHow(flags, 0, resolve)
    fd = libc().syscall(_SYS_OPENAT2, dir_fd, os.fsencode(name), ctypes.byref(how), ctypes.sizeof(how))
    if fd < 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error), name)
    return fd


def fchown_fd(fd, uid, gid):
    """chown the inode behind ``fd`` itself, also an O_PATH descriptor of a symlink (never its target)."""
    if libc().fchownat(fd, b"", uid, gid, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))


def utime_fd(fd, atime_ns, mtime_ns):
    """Set the times of the inode behind ``fd`` itself, also an O_PATH descriptor of a symlink."""
    times = (_Timespec * 2)(_Timespec(*divmod(atime_ns, 10 ** 9)), _Timespec(*divmod(mtime_ns, 10 ** 9)))
    if libc().utimensat(fd, b"", times, AT_EMPTY_PATH) != 0:
        error = ctypes.get_errno()
        raise OSError(error, os.strerror(error))


def mount_id(fd):
    """The mount a descriptor is on (from /proc/self/fdinfo), or None where /proc does not tell it."""
    try:
        with open("/proc/self/fdinfo/%d" % fd, "rb") as info:
            for line in info:
                if line.startswith(b"mnt_id:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


# --- opening ----------------------------------------------------------------------------------------

def check_name(name):
    """One directory entry's name: never empty, '.', '..' or containing '/' (which would walk elsewhere)."""
    raw = os.fsencode(name)
    if not raw or raw in (b".", b"..") or b"/" in raw or b"\0" in raw:
        raise UnsafePath("%r is not a single entry name" % (name,))
    return name


def _flags_for(kind, noatime):
    if kind == "directory":
        return OPEN_DIRECTORY | (NOATIME if noatime else 0)
    if kind == "file":
        return OPEN_FILE | (NOATIME if noatime else 0)
    return OPEN_PATH


def open_entry(dir_fd, name, kind, noatime=False, parent_mount=None):
    """Open ``name`` below the directory ``dir_fd`` as ``kind`` (file, directory, or any other type through
    O_PATH); return (fd, stat). Never follows a symlink, never leaves the directory's mount, never blocks.

    Raises OSError (ELOOP for a symlink where another type was expected, EXDEV for a mount point) and
    UnsafePath when the entry is not of ``kind``.
    """
    check_name(name)
    flags = _flags_for(kind, noatime)
    try:
        fd = _open_below(dir_fd, name, flags, parent_mount)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            _raise_if_symlink(dir_fd, name)
        if exc.errno == errno.EXDEV:
            raise OSError(errno.EXDEV, "a mount point (another file system or a bind mount): never crossed", name)
        raise
    try:
        info = os.fstat(fd)
        found = kind_of(info)
        if found != kind:
            raise UnsafePath("%s is a %s now, not a %s" % (_text(name), found, kind), errno.EAGAIN)
    except BaseException:
        os.close(fd)
        raise
    return fd, info


def _raise_if_symlink(dir_fd, name):
    """A symlink where something else was expected is named as such (O_DIRECTORY says ENOTDIR for it)."""
    try:
        if stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode):
            target = os.readlink(name, dir_fd=dir_fd)
            raise UnsafePath("%s is a symlink (-> %s): not followed" % (_text(name), _text(target)), errno.ELOOP)
    except OSError:
        pass


def _open_below(dir_fd, name, flags, parent_mount):
    if _openat2_available():
        return _open_retrying_noatime(
            lambda fl: _openat2(dir_fd, name, fl, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV
                                | RESOLVE_NO_MAGICLINKS), flags)
    fd = _open_retrying_noatime(lambda fl: os.open(name, fl, dir_fd=dir_fd), flags)
    # Without openat2: a mount point below the directory is refused after the fact, before any use.
    parent = parent_mount if parent_mount is not None else mount_id(dir_fd)
    mount = mount_id(fd)
    crossed = mount != parent if parent is not None and mount is not None else \
        os.fstat(fd).st_dev != os.fstat(dir_fd).st_dev
    if crossed:
        os.close(fd)
        raise OSError(errno.EXDEV, "a mount point (another file system or a bind mount): never crossed", name)
    return fd


def _open_retrying_noatime(opener, flags):
    try:
        return opener(flags)
    except PermissionError:
        # O_NOATIME needs ownership or CAP_FOWNER; without it, open as usual.
        if not flags & NOATIME:
            raise
        return opener(flags & ~NOATIME)


class OpenedTree(object):
    """The top directory of a tree, opened once; everything below is reached from ``fd``."""

    def __init__(self, path, fd, info, owner):
        self.path, self.fd, self.info, self.owner = path, fd, info, owner
        self.mount = mount_id(fd)

    @property
    def identity(self):
        """What tells this directory apart from one put in its place later: device, inode."""
        return (self.info.st_dev, self.info.st_ino)

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()


def open_tree(path, what="path", account_uid=None, group_writable_ok=False):
    """Open the absolute directory ``path`` from ``/``, one component at a time, and return an OpenedTree.

    Refused (UnsafePath naming the component): a symlink anywhere on the path; a component that is not a
    directory; an ancestor owned by neither root nor the account that owns the first non-root ancestor
    (the account's own directory); an ancestor writable by group or others without the sticky bit. The
    tree's top itself may belong to anyone: it is the account's.
    ``owner`` of the result is the uid of the account whose directory the path runs through (the first
    non-root component, the top included), or 0 when every component is root's.
    With ``account_uid``, every ancestor must be root's or that account's (a home nested in another account's
    directory is refused); with ``group_writable_ok``, a group-writable ancestor is accepted (Debian's
    /var/mail, writable by the mail group).
    """
    if not isinstance(path, str) or not path.startswith("/"):
        raise UnsafePath("%s %r is not an absolute path" % (what, path))
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise UnsafePath("%s %s contains '..'" % (what, _text(path)))
    fd = os.open("/", OPEN_DIRECTORY)
    info = os.fstat(fd)
    owner = 0 if account_uid is None else account_uid
    walked = ""
    try:
        for index, part in enumerate(parts):
            _check_ancestor(what, path, walked or "/", info, owner, group_writable_ok)
            walked += "/" + part
            try:
                child = os.open(part, OPEN_DIRECTORY, dir_fd=fd)
            except OSError as exc:
                error = exc.errno
                if error == errno.ENOTDIR and stat.S_ISLNK(os.lstat(part, dir_fd=fd).st_mode):
                    error = errno.ELOOP
                raise UnsafePath(_open_problem(what, path, walked, error), error)
            os.close(fd)
            fd = child
            info = os.fstat(fd)
            if info.st_uid != 0:
                if owner == 0 and account_uid is None:
                    owner = info.st_uid
                elif info.st_uid != owner and index < len(parts) - 1:
                    raise UnsafePath("%s %s runs through %s, owned by uid %d inside the directory of uid %d: "
                                     "another account can change it" % (what, _text(path), _text(walked),
                                                                        info.st_uid, owner))
    except BaseException:
        os.close(fd)
        raise
    return OpenedTree("/" + "/".join(parts), fd, info, owner)


def _check_ancestor(what, path, walked, info, owner, group_writable_ok=False):
    mode = stat.S_IMODE(info.st_mode)
    if info.st_uid not in (0, owner):
        raise UnsafePath("%s %s runs through %s, owned by uid %d: another account can change it"
                         % (what, _text(path), _text(walked), info.st_uid))
    writable = mode & (0o002 if group_writable_ok else 0o022)
    if writable and not mode & stat.S_ISVTX:
        raise UnsafePath("%s %s runs through %s, which is writable by %s (mode %04o, no sticky bit): another "
                         "account can change it" % (what, _text(path), _text(walked),
                                                    "group and others" if mode & 0o022 == 0o022 else
                                                    "its group" if mode & 0o020 else "others", mode))


def _open_problem(what, path, walked, error):
    if error == errno.ELOOP:
        try:
            target = os.readlink(walked)
        except OSError:
            target = "?"
        return "%s %s runs through the symlink %s (-> %s): give the path without symlinks" % (
            what, _text(path), _text(walked), _text(target))
    if error == errno.ENOTDIR:
        return "%s %s: %s is not a directory" % (what, _text(path), _text(walked))
    if error == errno.ENOENT:
        return "%s %s does not exist (%s is missing)" % (what, _text(path), _text(walked))
    return "%s %s: cannot open %s: %s" % (what, _text(path), _text(walked), os.strerror(error))


# --- walking ----------------------------------------------------------------------------------------

def _descriptor_budget():
    """How many directories a Walker may keep open: WALKER_OPEN_LIMIT, or a quarter of what the open-files
    limit leaves to this process now."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        return WALKER_OPEN_LIMIT
    try:
        in_use = len(os.listdir("/proc/self/fd"))
    except OSError:
        in_use = 0
    return min(WALKER_OPEN_LIMIT, (soft - in_use) // 4)


class Walker(object):
    """Reaches entries below an opened directory by their tuple of names, keeping the directories from the
    top down to the current parent open, so a walk in pre-order opens each directory once.

    Past WALKER_OPEN_LIMIT open levels the middle ones are closed and re-entered later through ".." from
    the level below, which is accepted only when it is the same directory (device and inode) as before:
    a directory moved elsewhere meanwhile is refused, never followed.
    """

    def __init__(self, top_fd, open_limit=None):
        if open_limit is None:
            open_limit = _descriptor_budget()
        top = os.dup(top_fd)
        info = os.fstat(top)
        self.mount = mount_id(top)
        # One level: [names from the top, fd or None, (st_dev, st_ino)]
        self._stack = [[(), top, (info.st_dev, info.st_ino)]]
        self._open_limit = max(3, open_limit)
        self._open = 1

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        while self._stack:
            fd = self._stack.pop()[1]
            if fd is not None:
                os.close(fd)
        self._open = 0

    def directory(self, parts):
        """A descriptor of the directory ``parts`` (a tuple of names below the top); owned by the Walker."""
        parts = tuple(parts)
        while self._stack[-1][0] != parts[:len(self._stack[-1][0])]:
            self._pop()
        while len(self._stack[-1][0]) < len(parts):
            opened, fd, _identity = self._stack[-1]
            name = parts[len(opened)]
            child, info = open_entry(fd, name, "directory", parent_mount=self.mount)
            self._stack.append([opened + (name,), child, (info.st_dev, info.st_ino)])
            self._open += 1
            if self._open > self._open_limit:
                self._shed()
        return self._stack[-1][1]

    def locate(self, parts):
        """(descriptor of the parent directory, the entry's name) for the entry ``parts`` (at least one name)."""
        parts = tuple(parts)
        return self.directory(parts[:-1]), check_name(parts[-1])

    def _shed(self):
        # Close the shallowest open level below the top and its next level down, keeping the top and the
        # deepest levels (those the walk is in).
        for level in self._stack[1:-2]:
            if level[1] is not None:
                os.close(level[1])
                level[1] = None
                self._open -= 1
                return

    def _pop(self):
        parts, fd, _identity = self._stack.pop()
        above = self._stack[-1]
        if above[1] is None:
            try:
                parent = os.open("..", OPEN_DIRECTORY, dir_fd=fd)
            finally:
                os.close(fd)
                self._open -= 1
            info = os.fstat(parent)
            if (info.st_dev, info.st_ino) != above[2]:
                os.close(parent)
                raise UnsafePath("%s was moved during the walk: not followed" % _text("/".join(above[0])),
                                 errno.EAGAIN)
            above[1] = parent
            self._open += 1
            return
        os.close(fd)
        self._open -= 1


# --- reading ----------------------------------------------------------------------------------------

def data_extents(fd, size):
    """[(start, end)] of the data of the regular file ``fd`` up to ``size``, its holes left out
    (SEEK_DATA/SEEK_HOLE); one extent of everything where the file system cannot tell holes."""
    extents, offset = [], 0
    while offset < size:
        try:
            start = os.lseek(fd, offset, SEEK_DATA)
            end = min(os.lseek(fd, start, SEEK_HOLE), size)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # no data past offset: the rest is a hole
                break
            if exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP):
                raise
            start, end = offset, size
        if start >= size:
            break
        extents.append((start, end))
        offset = end
    return extents


def read_extent(fd, start, end, chunk=READ_CHUNK):
    """Yield the bytes of ``fd`` from ``start`` to ``end`` (pread: the descriptor's offset is not used); a file
    cut short meanwhile yields what is there."""
    position = start
    while position < end:
        data = os.pread(fd, min(chunk, end - position), position)
        if not data:
            return
        yield data
        position += len(data)


def is_sparse(info):
    """Whether a file's blocks hold less than its size says (it has holes worth skipping)."""
    return stat.S_ISREG(info.st_mode) and info.st_blocks * 512 < info.st_size


def _text(path):
    return os.fsencode(path).decode("utf-8", "backslashreplace")


class Roots(object):
    """Several trees opened by ``open_tree``, and files below them opened by their full path through the trees'
    descriptors (never by path from ``/``). Forked workers inherit the descriptors; each process keeps its own
    Walker per tree."""

    def __init__(self, paths, what="path"):
        self.trees = {}
        try:
            for path in paths:
                self.trees[path] = open_tree(path, what)
        except BaseException:
            self.close()
            raise
        self._walkers = {}

    def close(self):
        for walker in self._walkers.values():
            walker.close()
        self._walkers = {}
        for tree in self.trees.values():
            tree.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def split(self, path):
        """(root, tuple of names below it) for ``path``, under the innermost root that holds it."""
        for root in sorted(self.trees, key=len, reverse=True):
            if path == root:
                return root, ()
            prefix = root if root.endswith("/") else root + "/"
            if path.startswith(prefix):
                return root, tuple(part for part in path[len(prefix):].split("/") if part)
        raise UnsafePath("%s is under none of %s" % (_text(path), ", ".join(sorted(self.trees))))

    def walker(self, root):
        key = (os.getpid(), root)
        if key not in self._walkers:
            self._walkers[key] = Walker(self.trees[root].fd)
        return self._walkers[key]

    def open(self, path, kind="file", noatime=True):
        """(fd, stat) of ``path`` opened as ``kind`` through its tree: never following a symlink on the way,
        never crossing a mount point, never blocking."""
        root, parts = self.split(path)
        if not parts:
            fd = os.dup(self.trees[root].fd)
            return fd, os.fstat(fd)
        walker = self.walker(root)
        dir_fd, name = walker.locate(parts)
        return open_entry(dir_fd, name, kind, noatime=noatime, parent_mount=walker.mount)
