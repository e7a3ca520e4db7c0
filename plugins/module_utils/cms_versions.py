# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""CMS installs and their versions, read from the version files as text.

The files are PHP, but they are never executed: a planted or edited version
file must not run code on the host that inspects it.
"""

from __future__ import annotations

import os
import re

VERSION_FILE_LIMIT = 256 * 1024


def _wordpress_version(text):
    match = re.search(r"\$wp_version\s*=\s*(['\"])([^'\"]+)\1\s*;", text)
    return match.group(2) if match else None


def _joomla_version(text):
    # Joomla 3.8+: const MAJOR_VERSION = 4; const MINOR_VERSION = 2; const PATCH_VERSION = 8;
    parts = []
    for name in ("MAJOR_VERSION", "MINOR_VERSION", "PATCH_VERSION"):
        match = re.search(r"\bconst\s+" + name + r"\s*=\s*(\d+)\s*;", text)
        if not match:
            return None
        parts.append(match.group(1))
    version = ".".join(parts)
    extra = re.search(r"\bconst\s+EXTRA_VERSION\s*=\s*'([^']+)'\s*;", text)
    return version + "-" + extra.group(1) if extra else version


def _joomla_legacy_version(text):
    # Joomla 1.6 to 3.7: RELEASE = '3.7' and DEV_LEVEL = '5', as constants or public properties.
    release = re.search(r"(?:\bconst\s+|\bpublic\s+\$)RELEASE\s*=\s*'([^']+)'\s*;", text)
    level = re.search(r"(?:\bconst\s+|\bpublic\s+\$)DEV_LEVEL\s*=\s*'([^']+)'\s*;", text)
    if not release:
        return None
    return release.group(1) + "." + level.group(1) if level else release.group(1)


# (cms, path of the version file below the install root, parser)
VERSION_FILES = (
    ("wordpress", "/wp-includes/version.php", _wordpress_version),
    ("joomla", "/libraries/src/Version.php", _joomla_version),
    ("joomla", "/libraries/cms/version/version.php", _joomla_legacy_version),
)
_SUFFIXES = tuple(suffix for _cms, suffix, _parser in VERSION_FILES)


def read_text(path):
    """The start of the file at ``path`` as text, without following a symlink."""
    return read_fd(os.open(os.fsencode(path), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)))


def read_fd(fd):
    """The start of the open file ``fd`` as text; the descriptor is closed."""
    with os.fdopen(fd, "rb") as handle:
        return handle.read(VERSION_FILE_LIMIT).decode("utf-8", "replace")


def find_installs(file_paths, read=read_text):
    """CMS installs recognised among ``file_paths`` (regular files, as str).

    Returns dicts with ``cms``, ``path`` (the install root), ``version`` (None
    when the file could not be read or parsed) and ``version_file``; when the
    file cannot be read, ``error`` says why.
    """
    installs = []
    for path in file_paths:
        if not path.endswith(_SUFFIXES):
            continue
        for cms, suffix, parser in VERSION_FILES:
            if not path.endswith(suffix):
                continue
            install = {"cms": cms, "path": path[:-len(suffix)] or "/", "version": None, "version_file": path}
            try:
                install["version"] = parser(read(path))
            except (OSError, ValueError) as exc:
                install["error"] = getattr(exc, "strerror", None) or str(exc)
            installs.append(install)
    return sorted(installs, key=lambda install: install["path"])
