# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The CMS installs of a site, with WordPress's plugins and themes and their versions.

A customer owns the tree and may race the survey with symlinks: every directory and file is reached from the
docroot through safe_fs descriptors that never follow a symlink nor cross a mount, and every file is read as
text, never run.
"""

from __future__ import annotations

import errno
import os
import re

from ansible_collections.hostguard.hosting.plugins.module_utils import safe_fs
from ansible_collections.hostguard.hosting.plugins.module_utils.cms_versions import VERSION_FILES

# An install at the docroot or in a directory up to this many levels below it (/blog, /shop/wp).
INSTALL_DEPTH = 2
# WordPress reads a plugin's or a theme's header from the first 8 KiB of the file (get_file_data).
HEADER_LIMIT = 8 * 1024
# Directories that hold no install of their own, or so many entries that looking into them costs more than it tells.
NOT_AN_INSTALL = frozenset(("wp-admin", "wp-content", "wp-includes", "administrator", "libraries", "vendor",
                            "node_modules", "cache", "uploads", "images", "media", "tmp", ".git", ".svn"))
# Plugins and themes read per install, at most: the survey of a hostile tree stays bounded.
EXTENSION_LIMIT = 500
# What makes a file read by name be skipped: missing, a symlink, a mount point, not readable.
SKIPPED_ERRORS = (errno.ENOENT, errno.ELOOP, errno.ENOTDIR, errno.EXDEV, errno.EACCES, errno.EPERM)


class SurveyError(Exception):
    pass


def header_fields(text, names):
    """The values of WordPress's file header fields (``Plugin Name:``, ``Version:``), read as WordPress reads them:
    a line, optionally after comment marks, starting with the field's name."""
    found = {}
    for name in names:
        match = re.search(r"^(?:[ \t]*<\?php)?[ \t/*#@]*" + re.escape(name) + r":(.*)$", text, re.M | re.I)
        if match:
            value = re.sub(r"\s*(?:\*/|\?>).*$", "", match.group(1)).strip()
            if value:
                found[name] = value
    return found


def survey(docroot, depth=INSTALL_DEPTH):
    """Every CMS install at or below ``docroot`` (to ``depth`` levels), each a dict with ``cms``, ``path``,
    ``version``, ``version_file`` and, for WordPress, ``plugins`` and ``themes`` (``slug``, ``name``,
    ``version``, ``path``). Raises SurveyError naming the docroot where it cannot be opened safely."""
    try:
        tree = safe_fs.open_tree(docroot, "docroot")
    except (safe_fs.UnsafePath, OSError) as exc:
        raise SurveyError("%s: %s" % (docroot, exc)) from None
    installs = []
    with tree:
        _survey_directory(tree.fd, tree.path, depth, installs, tree.mount)
    return sorted(installs, key=lambda install: install["path"])


def _survey_directory(dir_fd, path, depth, installs, mount):
    for cms, suffix, parser in VERSION_FILES:
        text = _read_below(dir_fd, suffix.strip("/").split("/"), mount, limit=None)
        if text is None:
            continue
        install = {"cms": cms, "path": path, "version": parser(text), "version_file": path.rstrip("/") + suffix}
        if cms == "wordpress":
            install["plugins"] = _plugins(dir_fd, path, mount)
            install["themes"] = _themes(dir_fd, path, mount)
        installs.append(install)
        break  # the other version files are of the same CMS's older releases
    if depth <= 0:
        return
    for name in _subdirectories(dir_fd):
        if name in NOT_AN_INSTALL:
            continue
        child = _open_directory(dir_fd, [name], mount)
        if child is None:
            continue
        try:
            _survey_directory(child, path.rstrip("/") + "/" + name, depth - 1, installs, mount)
        finally:
            os.close(child)


def _plugins(install_fd, path, mount):
    """wp-content/plugins/SLUG/: the top-level PHP file whose header names the plugin (as WordPress finds it)."""
    found = []
    plugins_fd = _open_directory(install_fd, ["wp-content", "plugins"], mount)
    if plugins_fd is None:
        return found
    try:
        for slug in _subdirectories(plugins_fd)[:EXTENSION_LIMIT]:
            plugin_fd = _open_directory(plugins_fd, [slug], mount)
            if plugin_fd is None:
                continue
            try:
                names = sorted(name for name in os.listdir(plugin_fd) if name.endswith(".php"))
                # The file named after the directory first: WordPress's own convention, and one read in most cases.
                names.sort(key=lambda name: name != slug + ".php")
                for name in names[:20]:
                    fields = header_fields(_read_below(plugin_fd, [name], mount) or "", ("Plugin Name", "Version"))
                    if "Plugin Name" in fields:
                        found.append({"slug": slug, "name": fields["Plugin Name"], "version": fields.get("Version"),
                                      "path": "%s/wp-content/plugins/%s/%s" % (path.rstrip("/"), slug, name)})
                        break
            finally:
                os.close(plugin_fd)
    finally:
        os.close(plugins_fd)
    return found


def _themes(install_fd, path, mount):
    """wp-content/themes/SLUG/style.css, whose header names the theme."""
    found = []
    themes_fd = _open_directory(install_fd, ["wp-content", "themes"], mount)
    if themes_fd is None:
        return found
    try:
        for slug in _subdirectories(themes_fd)[:EXTENSION_LIMIT]:
            fields = header_fields(_read_below(themes_fd, [slug, "style.css"], mount) or "", ("Theme Name", "Version"))
            if "Theme Name" in fields:
                found.append({"slug": slug, "name": fields["Theme Name"], "version": fields.get("Version"),
                              "path": "%s/wp-content/themes/%s/style.css" % (path.rstrip("/"), slug)})
    finally:
        os.close(themes_fd)
    return found


def _subdirectories(dir_fd):
    names = []
    for name in sorted(os.listdir(dir_fd)):
        try:
            info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except OSError:
            continue
        if safe_fs.kind_of(info) == "directory":
            names.append(name)
    return names


def _open_directory(dir_fd, parts, mount):
    """The directory ``parts`` below ``dir_fd``, or None where it is missing, a symlink or another type."""
    fd = dir_fd
    try:
        for part in parts:
            try:
                child, _info = safe_fs.open_entry(fd, part, "directory", parent_mount=mount)
            except (OSError, safe_fs.UnsafePath):
                return None
            if fd != dir_fd:
                os.close(fd)
            fd = child
        return fd if fd != dir_fd else os.dup(dir_fd)
    except BaseException:
        if fd != dir_fd:
            os.close(fd)
        raise


def _read_below(dir_fd, parts, mount, limit=HEADER_LIMIT):
    """The start of the regular file ``parts`` below ``dir_fd`` as text, or None where it is not one."""
    parent = _open_directory(dir_fd, parts[:-1], mount) if len(parts) > 1 else os.dup(dir_fd)
    if parent is None:
        return None
    try:
        try:
            fd, _info = safe_fs.open_entry(parent, parts[-1], "file", parent_mount=mount)
        except (OSError, safe_fs.UnsafePath) as exc:
            if isinstance(exc, OSError) and exc.errno not in SKIPPED_ERRORS:
                raise
            return None
        with os.fdopen(fd, "rb") as handle:
            data = handle.read(limit) if limit else handle.read(256 * 1024)
        return data.decode("utf-8", "replace")
    finally:
        os.close(parent)
