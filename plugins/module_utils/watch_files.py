# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostguard-watch's planted-files facet: new PHP in the document roots and temporary directories, at once.

Every directory under the watched paths carries an inotify watch; a file that is
written (closed after writing), created or moved in is examined a moment after
its last change, with the same code the audit uses for the temporary
directories (planted_files.examine: the webshell rules of webshell_rules, PHP by
name or open tag, ELF by its magic). Said, as ``file_planted``:

- a rule hit anywhere: one event per file, naming the path, the rule, the line
  and the owner;
- any PHP or ELF file that appears in a temporary directory (``temp_dirs``):
  nothing belongs there that a site could need. A burst of them (an archive
  unpacked in /tmp) is said file by file up to ``burst`` a minute, the rest in
  one summary, so 2,000 files are not 2,000 alerts.

An ordinary PHP file in a document root (a CMS update) is no event.

A hostile customer owns the document roots and races the watch with symlinks:
every directory and file is reached from the watched path's descriptor one name
at a time (safe_fs), never through a symlink or across a mount point, and a
watch is added on the descriptor of the directory that was opened that way
(``/proc/self/fd/N``), never on a name the customer could swap meanwhile. The
kernel's inotify is called directly (ctypes, as safe_fs calls openat2), so that
watches go only where the walk went.

Where inotify cannot be used (no inotify instance left, or the watch limit
``fs.inotify.max_user_watches`` reached, which is said once as an event), the
tree is checked every ``poll_interval`` seconds instead: a walk for files whose
inode changed (ctime, which an account cannot set back) since the last check.
The same walk catches up, at start, on what changed while the service was
stopped, and after the kernel's event queue overflowed.

Containment (``contain: quarantine``): a newly planted file with a rule hit in a
document root is quarantined with the quarantine core (its manifest, owner
root:root, mode 0000), and the alert says how to restore it. A file that
existed before and was changed is named, not locked: locking a site's
index.php takes the site down, which the administrator decides.
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import shlex
import stat
import struct

from ansible_collections.hostguard.hosting.plugins.module_utils import planted_files, quarantine, safe_fs, watch_config
from ansible_collections.hostguard.hosting.plugins.module_utils import webshell_rules
from ansible_collections.hostguard.hosting.plugins.module_utils.watch_facet import Facet

# linux/inotify.h
IN_MODIFY = 0x00000002
IN_CLOSE_WRITE = 0x00000008
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_EXCL_UNLINK = 0x04000000
IN_ISDIR = 0x40000000
# No IN_DONT_FOLLOW: the watch is added through /proc/self/fd/N, a link to the directory that was opened safely.
WATCH_MASK = IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK
_EVENT = struct.Struct("iIII")
MAX_WATCHES_FILE = "/proc/sys/fs/inotify/max_user_watches"

RUNBOOK = "planted-files.md"
# A file still being written is examined once it has been quiet this long, or at the latest after MAX_WAIT.
MAX_WAIT = 10.0
# A walk looks back this far before the time it covers from, for clocks and inode times a little apart.
WALK_SLACK = 2.0
# Files examined recently, by path, with the inode and ctime they had: a second event for the same
# unchanged file (an inotify event and a walk) is not examined twice.
RECENT_LIMIT = 20000
BURST_WINDOW = 60.0
# Work per tick (the service's loop sends the watchdog between ticks): directories walked, files examined.
WALK_BUDGET = 2000
EXAMINE_BUDGET = 1000
# How far the time covered may lag before it is saved: a restart walks this much again, and says nothing twice.
COVERED_STEP = 30.0


class WatchLimit(OSError):
    """inotify's watch limit (or the kernel's memory for watches) is reached."""


class Inotify(object):
    """An inotify instance: watches added on opened directories, events read as (wd, mask, name)."""

    def __init__(self):
        self._libc = safe_fs.libc()
        fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if fd < 0:
            error = ctypes.get_errno()
            raise OSError(error, "inotify_init1: %s" % os.strerror(error))
        self.fd = fd

    def add(self, dir_fd):
        """A watch on the directory open as ``dir_fd`` (the same wd when it is watched already)."""
        wd = self._libc.inotify_add_watch(self.fd, b"/proc/self/fd/%d" % dir_fd, WATCH_MASK)
        if wd < 0:
            error = ctypes.get_errno()
            if error in (errno.ENOSPC, errno.ENOMEM):
                raise WatchLimit(error, os.strerror(error))
            raise OSError(error, "inotify_add_watch: %s" % os.strerror(error))
        return wd

    def remove(self, wd):
        self._libc.inotify_rm_watch(self.fd, wd)

    def read(self):
        """The events queued now: [(wd, mask, name as bytes)]."""
        events = []
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return events
            if not data:
                return events
            offset = 0
            while offset + _EVENT.size <= len(data):
                wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
                offset += _EVENT.size
                name = data[offset:offset + length].rstrip(b"\0")
                offset += length
                events.append((wd, mask, name))

    def close(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def max_user_watches():
    try:
        with open(MAX_WATCHES_FILE, encoding="ascii") as stream:
            return int(stream.read().strip())
    except (OSError, ValueError):
        return None


def _is_within(path, directory):
    return path == directory or path.startswith(directory.rstrip("/") + "/")


class Root(object):
    """One watched path: its opened tree (None while it is missing or refused), and how it is watched."""

    def __init__(self, path, temp):
        self.path, self.temp = path, temp
        self.tree = None
        self.walker = None  # safe_fs.Walker from the tree's descriptor, kept across ticks
        self.polled = False  # checked by walking, every poll_interval (no inotify, or past the watch limit)
        self.problem = None

    def name(self, parts):
        return self.path.rstrip("/") + "/" + "/".join(os.fsdecode(part) for part in parts) if parts else self.path

    def close(self):
        if self.walker is not None:
            self.walker.close()
            self.walker = None
        if self.tree is not None:
            self.tree.close()
            self.tree = None


class FilesFacet(Facet):
    NAME = "files"
    INTERVAL = 1
    DEFAULTS = {
        "paths": list(planted_files.DEFAULT_PATHS),
        "temp_dirs": list(planted_files.DEFAULT_PATHS),
        "contain": "none",
        "manifest_dir": quarantine.DEFAULT_MANIFEST_DIR,
        "rules_dir": "/usr/local/share/hostguard/yara",
        "rule_files": [],
        "max_size": planted_files.DEFAULT_MAX_SIZE,
        "poll_interval": 30,
        "settle": 2,
        "burst": 10,
    }

    @staticmethod
    def validate(settings, where):
        for key in ("paths", "temp_dirs", "rule_files"):
            value = settings[key]
            if not isinstance(value, list):
                raise watch_config.ConfigError(f"{where}.{key}: expected a list of absolute paths, got {value!r}")
            try:
                settings[key] = planted_files.validate_paths(value)
            except ValueError as exc:
                raise watch_config.ConfigError(f"{where}.{exc}") from exc
        if not settings["paths"]:
            raise watch_config.ConfigError(f"{where}.paths: expected at least one path to watch, got []")
        watch_config.check_choice(settings["contain"], f"{where}.contain", ("none", "quarantine"))
        watch_config.check_absolute_path(settings["manifest_dir"], f"{where}.manifest_dir")
        watch_config.check_absolute_path(settings["rules_dir"], f"{where}.rules_dir")
        watch_config.check_integer(settings["max_size"], f"{where}.max_size", 1)
        watch_config.check_integer(settings["poll_interval"], f"{where}.poll_interval", 5, 3600)
        watch_config.check_integer(settings["settle"], f"{where}.settle", 1, 30)
        watch_config.check_integer(settings["burst"], f"{where}.burst", 1)
        for path in settings["paths"]:
            outer = next((other for other in settings["paths"] if other != path and _is_within(path, other)), None)
            if outer is not None:  # watched twice, said twice, quarantined twice
                raise watch_config.ConfigError(f"{where}.paths: {path} is inside {outer}, also watched: give one of them")
            if _is_within(settings["manifest_dir"], path):
                raise watch_config.ConfigError(f"{where}.manifest_dir: {settings['manifest_dir']} is inside the "
                                               f"watched path {path}: keep the manifests out of the customers' trees")
            temp = any(_is_within(path, temp_dir) for temp_dir in settings["temp_dirs"])
            if settings["contain"] == "quarantine" and not temp and path in quarantine.SYSTEM_DIRECTORIES:
                raise watch_config.ConfigError(
                    f"{where}.paths: {path} is a system directory, never a document root, and contain is quarantine: "
                    f"watch the sites' document roots instead")

    @staticmethod
    def check_host(settings, where):
        try:
            webshell_rules.Scanner(settings["rule_files"], rules_dir=settings["rules_dir"]).compile()
        except webshell_rules.RuleError as exc:
            raise watch_config.ConfigError(f"{where}.rules_dir: {exc}") from exc
        for path in settings["paths"]:
            try:
                safe_fs.open_tree(path, "watched path").close()
            except safe_fs.UnsafePath as exc:
                if exc.errno != errno.ENOENT:  # a path that is not there yet is watched once it appears
                    raise watch_config.ConfigError(f"{where}.paths: {exc}") from exc

    def __init__(self, context, inotify_factory=Inotify):
        super().__init__(context)
        self.roots = [Root(path, any(_is_within(path, temp) for temp in self.settings["temp_dirs"]))
                      for path in self.settings["paths"]]
        self._inotify_factory = inotify_factory
        self.inotify = None
        self.scanner = None
        self._watches = {}  # wd -> (root, parts)
        self._pending = {}  # (root index, parts) -> {"first", "last", "new", "found"}
        self._directories = []  # directories still to walk: (root index, parts, since, watch), depth first
        self._recent = {}
        self._next_poll = 0.0
        self._polled_from = None  # the time the last walk of the polled trees covered from
        self._overflowed = False
        self._buffer = None
        self._burst = {}  # root path -> {"start", "said", "more": [paths], "owners": {}}

    # -- start and stop ----------------------------------------------------------------------------------------
    def start(self):
        settings = self.settings
        # Compiled at the start, not at the first planted file: a service that cannot match fails now.
        self.scanner = webshell_rules.Scanner(settings["rule_files"], rules_dir=settings["rules_dir"]).compile()
        self._buffer = bytearray(planted_files.READ_CHUNK)
        try:
            self.inotify = self._inotify_factory()
        except OSError as exc:
            self.context.log(f"files: inotify cannot be used ({exc}): every watched path is checked every "
                             f"{settings['poll_interval']} s instead")
            self.inotify = None
        now = self.context.service.clock()
        since = self.context.state.get("covered_until")
        for index, root in enumerate(self.roots):
            self._open_root(index, root, since)
        self.context.state["covered_until"] = now if since is None else since
        self.context.changed()
        self._polled_from = now
        self._next_poll = now + settings["poll_interval"]

    def stop(self):
        if self.inotify is not None:
            self.inotify.close()
            self.inotify = None
        for root in self.roots:
            root.close()
        self._watches = {}

    def fds(self):
        return [self.inotify.fd] if self.inotify is not None else []

    def _open_root(self, index, root, since):
        """Open a watched path and watch everything under it; files changed since ``since`` are examined."""
        try:
            root.tree = safe_fs.open_tree(root.path, "watched path")
        except safe_fs.UnsafePath as exc:
            if exc.errno != errno.ENOENT and str(exc) != root.problem:
                self.context.log(f"files: {exc}: not watched")
            root.problem = str(exc)
            return False
        root.walker = safe_fs.Walker(root.tree.fd)
        root.problem = None
        root.polled = self.inotify is None
        self._walk(index, (), since, watch=True)
        return True

    # -- walking -----------------------------------------------------------------------------------------------
    def _walk(self, index, start, since, watch):
        """Walk the root's tree from the directory ``start`` (names below the root), over the next ticks: add
        watches (``watch``), and queue the files whose inode changed since ``since`` (True: every file; None:
        none)."""
        self._directories.append((index, tuple(start), since, watch))

    def _walk_some(self):
        """Walk up to WALK_BUDGET directories: a big tree is watched over several ticks, none of them long."""
        budget = WALK_BUDGET
        while self._directories and budget > 0:
            index, parts, since, watch = self._directories.pop()
            root = self.roots[index]
            if root.walker is None:
                continue
            budget -= 1
            try:
                dir_fd = root.walker.directory(parts)
                if watch and not root.polled:
                    self._watch(index, parts, dir_fd)
                # the watch first, then the listing: a file made in between is in one or the other
                with os.scandir(dir_fd) as listing:
                    children = [(child.name, child.stat(follow_symlinks=False)) for child in listing]
            except (OSError, safe_fs.UnsafePath) as exc:
                if getattr(exc, "errno", None) != errno.ENOENT:
                    self.context.log(f"files: cannot list {root.name(parts)}: {exc}")
                continue
            for name, info in children:
                if stat.S_ISDIR(info.st_mode):
                    self._directories.append((index, parts + (name,), since, watch))
                elif stat.S_ISREG(info.st_mode) and since is not None and (
                        since is True or info.st_ctime >= since - WALK_SLACK):
                    self._queue(index, parts + (name,), new=since is True, found=since is not True)

    def _watch(self, index, parts, dir_fd):
        root = self.roots[index]
        try:
            wd = self.inotify.add(dir_fd)
        except WatchLimit:
            root.polled = True
            limit = max_user_watches()
            summary = (f"inotify's watch limit is reached ({limit} watches, fs.inotify.max_user_watches): "
                       f"{root.path} is checked every {self.settings['poll_interval']} s instead of at once")
            self.context.log(f"files: {summary}")
            self.context.emit("files_watch_limit", root.path, summary, severity="warning",
                              evidence={"path": root.path, "limit": limit, "watches": len(self._watches),
                                        "poll_interval": self.settings["poll_interval"]})
            return
        self._watches[wd] = (index, parts)

    # -- events ------------------------------------------------------------------------------------------------
    def on_readable(self, fd):
        now = self.context.service.clock()
        new_directories = {}  # walked once per read, however often an account renames them back and forth
        for wd, mask, name in self.inotify.read():
            if mask & IN_Q_OVERFLOW:
                # the kernel dropped events: walk every tree for what changed since the last batch
                self._overflowed = True
                continue
            where = self._watches.get(wd)
            if where is None:
                continue
            if mask & IN_IGNORED:
                del self._watches[wd]
                continue
            if not name:
                continue  # an event of the watched directory itself (deleted or moved away)
            index, parts = where
            path = parts + (os.fsdecode(name),)
            if mask & IN_ISDIR:
                if mask & (IN_CREATE | IN_MOVED_TO):
                    new_directories[(index, path)] = True
            else:
                self._queue(index, path, new=bool(mask & (IN_CREATE | IN_MOVED_TO)), now=now)
        for index, path in new_directories:
            # a new directory: watch it and what is in it already; the files in it are new
            if self.roots[index].tree is not None:
                self._walk(index, path, True, watch=True)

    def _queue(self, index, parts, new=False, found=False, now=None):
        now = self.context.service.clock() if now is None else now
        entry = self._pending.get((index, parts))
        if entry is None:
            self._pending[(index, parts)] = {"first": now, "last": now, "new": new, "found": found}
        else:
            entry["last"] = now
            entry["new"] = entry["new"] or new

    # -- every second ------------------------------------------------------------------------------------------
    def tick(self, now):
        settings = self.settings
        if self.inotify is not None:
            self.on_readable(self.inotify.fd)  # what happened until now is queued before it counts as covered
        if now >= self._next_poll or self._overflowed:
            self._poll(now)
        self._walk_some()
        ready = [key for key, entry in self._pending.items()
                 if now - entry["last"] >= settings["settle"] or now - entry["first"] >= MAX_WAIT][:EXAMINE_BUDGET]
        for key in ready:
            entry = self._pending.pop(key)
            try:
                self._examine(key[0], key[1], entry, now)
            except Exception as exc:  # one file must not stop the others
                self.context.log(f"files: could not examine {self.roots[key[0]].name(key[1])}: {exc!r}")
        self._flush_bursts(now)
        # A restart walks for what changed after this: pending files, and the polled trees since their last walk.
        covered = [entry["first"] for entry in self._pending.values()] + [now]
        if self._directories:
            covered.append(self.context.state.get("covered_until", now))  # a walk is under way: not covered yet
        if any(root.polled for root in self.roots if root.tree is not None):
            covered.append(self._polled_from)
        covered = min(covered)
        before = self.context.state.get("covered_until", 0)
        if covered < before or covered - before >= COVERED_STEP:  # not a state write every second
            self.context.state["covered_until"] = covered
            self.context.changed()

    def _poll(self, now):
        """Every poll_interval: watch the paths that appeared or were replaced, walk the polled trees (all of them
        after the kernel's event queue overflowed) for what changed since the last walk."""
        since = min(self._polled_from, self.context.state["covered_until"]) if self._overflowed else self._polled_from
        self._polled_from = now
        for index, root in enumerate(self.roots):
            if root.tree is not None and self._replaced(root):
                self.context.log(f"files: {root.path} was replaced by another directory: watching the new one")
                root.close()
            if root.tree is None:
                self._open_root(index, root, None)
            elif (root.polled or self._overflowed) and not any(item[0] == index for item in self._directories):
                self._walk(index, (), since, watch=False)
        if self._overflowed:
            self.context.log("files: the kernel's event queue overflowed: the watched paths were walked")
        self._overflowed = False
        self._next_poll = now + self.settings["poll_interval"]

    @staticmethod
    def _replaced(root):
        try:
            with safe_fs.open_tree(root.path, "watched path") as now:
                return now.identity != root.tree.identity
        except safe_fs.UnsafePath:
            return True

    def _examine(self, index, parts, entry, now):
        root = self.roots[index]
        if root.walker is None:
            return
        path = root.name(parts)
        walker = root.walker
        try:
            dir_fd, name = walker.locate(parts)
            info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode):
                return
            seen = (info.st_ino, info.st_ctime_ns, info.st_size)
            if self._recent.get(path) == seen:
                return
            planted = planted_files.examine(path, dir_fd, name, walker.mount, self.scanner,
                                            self.settings["max_size"], self._buffer)
        except (OSError, safe_fs.UnsafePath) as exc:
            if getattr(exc, "errno", None) not in (errno.ENOENT, errno.ELOOP, errno.EAGAIN):
                self.context.log(f"files: cannot read {path}: {exc}")
            return  # gone, or a symlink or another type now: nothing was followed
        self._recent.pop(path, None)
        self._recent[path] = seen
        if len(self._recent) > RECENT_LIMIT:
            del self._recent[next(iter(self._recent))]
        if planted is None:
            return
        if planted.findings:
            self._say(root, planted, entry)
        elif root.temp and planted.kind in ("php", "elf"):
            burst = self._burst.setdefault(root.path, {"start": now, "said": 0, "more": [], "owners": {}})
            if burst["said"] < self.settings["burst"]:
                burst["said"] += 1
                self._say(root, planted, entry)
            else:
                owner = planted.as_dict()["owner"]
                burst["more"].append(planted.path)
                burst["owners"][owner] = burst["owners"].get(owner, 0) + 1

    def _say(self, root, planted, entry):
        described = planted.as_dict()
        # the rule that names a line tells most; a rule on the path alone (PHP in an upload directory) comes after
        first = next((finding for finding in planted.findings if finding.line_number), None) or \
            (planted.findings[0] if planted.findings else None)
        change = "new" if entry["new"] else "found by the periodic check" if entry.get("found") else "changed"
        evidence = {
            "path": planted.path, "rule": first.rule if first else None,
            "rules": [finding.rule for finding in planted.findings], "owner": described["owner"],
            "uid": described["uid"], "file_type": planted.kind, "size": described["size"],
            "mode": described["mode"], "sha256": planted.sha256, "change": change,
            "watched_path": root.path, "in": "temporary directory" if root.temp else "document root",
        }
        if first is not None:
            evidence.update(description=first.description, line=first.line, line_number=first.line_number)
            what = f"{first.rule} matched {planted.path}" + (f" line {first.line_number}" if first.line_number else "")
            severity = "critical"
        else:
            what = f"a {planted.kind.upper()} file appeared in {root.path}: {planted.path}"
            severity = "warning"
        summary = f"{what} ({change}, owner {described['owner']})"
        action = None
        if first is not None and not root.temp and self.settings["contain"] == "quarantine":
            action = self._quarantine(root, planted, entry)
        self.context.emit("file_planted", planted.path, summary, severity=severity, runbook=RUNBOOK,
                          evidence=evidence, action=action)

    def _flush_bursts(self, now):
        for path in list(self._burst):
            burst = self._burst[path]
            if now - burst["start"] < BURST_WINDOW:
                continue
            del self._burst[path]
            more = burst["more"]
            if not more:
                continue
            owners = ", ".join(f"{owner} ({count})" for owner, count in
                               sorted(burst["owners"].items(), key=lambda item: -item[1]))
            summary = (f"{len(more)} more PHP or ELF files appeared in {path} within a minute, after the "
                       f"{burst['said']} said one by one (owners: {owners})")
            self.context.emit("file_planted_burst", f"{path}@{int(burst['start'])}", summary, severity="warning",
                              runbook=RUNBOOK, evidence={"path": path, "count": len(more), "owners": burst["owners"],
                                                         "examples": more[:20]})

    # -- containment -------------------------------------------------------------------------------------------
    def _quarantine(self, root, planted, entry):
        path = planted.path
        if not entry["new"]:
            return {"kind": "quarantine", "failed": True, "path": path,
                    "done": f"nothing: {path} was there before and was changed (or was found by the periodic "
                            f"check, which cannot tell new from changed), so it is named, not locked",
                    "undo": "nothing to undo; to lock it: " + self._command("quarantine", root, path)}
        try:
            result = quarantine.run([path], "quarantined", [root.path], manifest_dir=self.settings["manifest_dir"])
            outcome = result["results"][0]
        except (quarantine.QuarantineError, OSError) as exc:
            outcome = {"status": "failed", "msg": str(exc), "manifest": None}
        if outcome["status"] not in ("quarantined", "already_quarantined"):
            self.context.log(f"files: could not quarantine {path}: {outcome['msg']}")
            return {"kind": "quarantine", "failed": True, "path": path,
                    "done": f"nothing: quarantining {path} failed ({outcome['msg']})",
                    "undo": "nothing to undo; quarantine it by hand: " + self._command("quarantine", root, path)}
        action = {"kind": "quarantine", "path": path, "manifest": outcome["manifest"],
                  "done": f"{path} is quarantined: owner root:root, mode 0000, so the site's PHP can neither read "
                          f"nor run it (manifest {outcome['manifest']})",
                  "undo": self._command("restore", root, path)}
        recorded = _recorded_sha256(outcome["manifest"])
        if recorded and planted.sha256 and recorded != planted.sha256:
            action["done"] += "; the file was replaced between the scan and the quarantine (another sha256)"
        return action

    def _command(self, playbook, root, path):
        key = "quarantine_restore_paths" if playbook == "restore" else "quarantine_paths"
        hosts = "restore_hosts" if playbook == "restore" else "quarantine_hosts"
        extra = json.dumps({hosts: self.context.host, "quarantine_docroots": [root.path], key: [path]})
        return f"ansible-playbook hostguard.hosting.{playbook} -e {shlex.quote(extra)}"


def _recorded_sha256(manifest_path):
    try:
        with open(manifest_path, "rb") as stream:
            entries = json.loads(stream.read().decode("ascii")).get("entries") or [{}]
        return entries[0].get("sha256")
    except (OSError, ValueError, TypeError):
        return None
