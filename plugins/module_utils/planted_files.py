# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""PHP and ELF files dropped in the temporary directories, found without a baseline.

A web process that was made to run code leaves its tools where anyone may write: a shell in ``/dev/shm``
(memory, gone at reboot), a miner or a proxy in ``/var/tmp``, a mailer in ``/tmp`` (PHP-FPM's private
``/tmp`` included, under ``/tmp/systemd-private-*``). Nothing belongs there that a baseline could vouch for,
so every PHP file (by name or by an open tag) and every ELF binary is reported with its owner, and each file is
matched with the webshell rules (webshell_rules.Scanner) for the rule, line and excerpt.

Every account may write in these trees and race the scan: directories and files are reached from the tree's
descriptor one name at a time (safe_fs), never through a symlink and never across a mount point; what was
swapped meanwhile is named in ``errors``, not followed.
"""

from __future__ import annotations

import datetime
import errno
import grp
import hashlib
import os
import pwd
import stat

from ansible_collections.hostguard.hosting.plugins.module_utils import safe_fs
from ansible_collections.hostguard.hosting.plugins.module_utils.webshell_rules import is_php

DEFAULT_PATHS = ("/tmp", "/var/tmp", "/dev/shm")
# Past this size a file is classified by its start only (a backup or an upload left in /var/tmp), not matched.
DEFAULT_MAX_SIZE = 64 << 20
# How much of a file is read to tell PHP by an open tag; the rules see the whole file.
HEAD = 1 << 20
ELF_MAGIC = b"\x7fELF"
READ_CHUNK = 1 << 20


class PlantedFile(object):
    """One PHP or ELF file, or one a rule matched, with what a responder needs to judge it."""

    def __init__(self, path, kind, info, sha256, scanned, findings):
        self.path = path
        self.kind = kind
        self.info = info
        self.sha256 = sha256
        self.scanned = scanned
        self.findings = findings

    def as_dict(self):
        info = self.info
        return {
            "path": self.path,
            "kind": self.kind,
            "owner": _user(info.st_uid),
            "uid": info.st_uid,
            "group": _group(info.st_gid),
            "gid": info.st_gid,
            "mode": "%04o" % stat.S_IMODE(info.st_mode),
            "executable": bool(info.st_mode & 0o111),
            "size": info.st_size,
            "mtime": datetime.datetime.fromtimestamp(info.st_mtime, datetime.timezone.utc).isoformat(),
            "sha256": self.sha256,
            "scanned": self.scanned,
            "findings": [finding.as_dict() for finding in self.findings],
        }


class Report(object):
    def __init__(self):
        self.files = []
        self.errors = []
        self.absent = []
        self.examined = 0

    def as_dict(self):
        files = [planted.as_dict() for planted in sorted(self.files, key=lambda planted: planted.path)]
        return {
            "files": files,
            "errors": sorted(self.errors, key=lambda error: error["path"]),
            "absent": self.absent,
            "summary": {
                "examined": self.examined,
                "php": sum(1 for planted in files if planted["kind"] == "php"),
                "elf": sum(1 for planted in files if planted["kind"] == "elf"),
                "with_findings": sum(1 for planted in files if planted["findings"]),
            },
        }


def validate_paths(paths):
    """The absolute, normalised paths; ValueError naming a path that is relative or holds '..'."""
    checked = []
    for path in paths:
        if not isinstance(path, str) or not path.startswith("/") or ".." in path.split("/"):
            raise ValueError("paths: %r is not an absolute path without '..'" % (path,))
        normal = os.path.normpath(path)
        if normal not in checked:
            checked.append(normal)
    return checked


def scan(paths, scanner, max_size=DEFAULT_MAX_SIZE):
    """A Report of the PHP and ELF files under ``paths`` (absent ones are listed, not an error)."""
    report = Report()
    for root in validate_paths(paths):
        try:
            tree = safe_fs.open_tree(root, "temporary directory")
        except safe_fs.UnsafePath as exc:
            if exc.errno == errno.ENOENT:
                report.absent.append(root)
            else:
                report.errors.append({"path": root, "error": str(exc)})
            continue
        with tree, safe_fs.Walker(tree.fd) as walker:
            _scan_tree(root, walker, scanner, max_size, report)
    return report


def _scan_tree(root, walker, scanner, max_size, report):
    buffer = bytearray(READ_CHUNK)
    pending = [((), root)]
    while pending:
        parts, directory = pending.pop()
        try:
            dir_fd = walker.directory(parts)
            # scandir reads a duplicate of the descriptor and rewinds it when done.
            with os.scandir(dir_fd) as listing:
                children = [(child.name, child.is_dir(follow_symlinks=False), child.is_file(follow_symlinks=False))
                            for child in listing]
        except (OSError, safe_fs.UnsafePath) as exc:
            report.errors.append({"path": directory, "error": "cannot list directory: %s" % _reason(exc)})
            continue
        prefix = directory.rstrip("/") + "/"
        for name, is_dir, is_file in children:
            path = prefix + name
            if is_dir:
                pending.append((parts + (name,), path))
            elif is_file:
                report.examined += 1
                try:
                    planted = examine(path, walker.directory(parts), name, walker.mount, scanner, max_size, buffer)
                except (OSError, safe_fs.UnsafePath) as exc:
                    if getattr(exc, "errno", None) != errno.ENOENT:  # removed meanwhile: it is not there
                        report.errors.append({"path": path, "error": "not read: %s" % _reason(exc)})
                    continue
                if planted is not None:
                    report.files.append(planted)


def examine(path, dir_fd, name, mount, scanner, max_size, buffer):
    """The PlantedFile for the regular file ``name`` in ``dir_fd``, or None when it is neither PHP nor ELF and no
    rule matched it."""
    fd, info = safe_fs.open_entry(dir_fd, name, "file", noatime=True, parent_mount=mount)
    try:
        digest = hashlib.sha256()
        view = memoryview(buffer)
        content_scan = scanner.content_scan(path, info.st_uid) if info.st_size <= max_size else None
        head = bytearray()
        while True:
            count = os.readv(fd, [buffer])
            if not count:
                break
            digest.update(view[:count])
            if len(head) < HEAD:
                head += view[:min(count, HEAD - len(head))]
            if content_scan is not None:
                content_scan.feed(view[:count])
            elif len(head) >= HEAD:
                break  # too big to match: classified by its start, and not hashed whole
    finally:
        os.close(fd)
    findings = content_scan.findings if content_scan is not None else []
    if head.startswith(ELF_MAGIC):
        kind = "elf"
    elif is_php(name, bytes(head)):
        kind = "php"
    elif findings:
        kind = "other"
    else:
        return None
    sha256 = digest.hexdigest() if content_scan is not None else None
    if scanner.allowed(sha256):
        return None
    return PlantedFile(path, kind, info, sha256, content_scan is not None, findings)


def _user(uid):
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group(gid):
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _reason(exc):
    return getattr(exc, "strerror", None) or str(exc)
