# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sites whose files an integrity baseline records, held to what file_integrity and the audit rely on.

Each site is ``{name, paths, exclude}``; its database is ``<database_dir>/<name>.db``. Everything is checked as
data, before any host is touched, and each problem is one sentence naming the value.
"""

from __future__ import annotations

import posixpath
import re

# The database's file name is the site's name: no directory separator, no dot first (".", "..", hidden files).
_SITE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _absolute_problem(what, path):
    """Why ``path`` is not a plain absolute path (no "." or ".." parts, not "/"), or None."""
    if not isinstance(path, str) or not path:
        return "%s %r is not a path" % (what, path)
    if not path.startswith("/"):
        return "%s %s is not an absolute path" % (what, path)
    if any(part in (".", "..") for part in path.split("/")):
        return "%s %s has a '.' or '..' part: give the path itself" % (what, path)
    if posixpath.normpath(path) == "/":
        return "%s is /: give the site's own directories" % what
    return None


def _inside(path, root):
    path, root = posixpath.normpath(path), posixpath.normpath(root)
    return path == root or path.startswith(root.rstrip("/") + "/")


def site_problems(sites, database_dir):
    """One sentence per problem with the sites or the database directory; an empty list when there is none."""
    problems = []
    directory_problem = _absolute_problem("the database directory", database_dir)
    if directory_problem:
        problems.append(directory_problem)
    if not isinstance(sites, list):
        return problems + ["the sites %r are not a list of {name, paths, exclude}" % (sites,)]
    seen = set()
    for index, site in enumerate(sites):
        if not isinstance(site, dict):
            problems.append("site %d (%r) is not a dict with name and paths" % (index + 1, site))
            continue
        name = site.get("name")
        label = "site %s" % name if isinstance(name, str) and name else "site %d" % (index + 1)
        if not isinstance(name, str) or not _SITE_NAME.match(name):
            problems.append("%s: name %r is not a file name (letters, digits, '.', '_' and '-', not first a dot):"
                            " the database is <name>.db" % (label, name))
        elif name in seen:
            problems.append("%s: the name is given twice, and both would share one database" % label)
        else:
            seen.add(name)
        paths = site.get("paths")
        if not isinstance(paths, list) or not paths:
            problems.append("%s: paths %r is not a non-empty list of absolute paths" % (label, paths))
            paths = []
        for path in paths:
            problem = _absolute_problem("path", path)
            if problem:
                problems.append("%s: %s" % (label, problem))
            elif not directory_problem and _inside(database_dir, path):
                problems.append("%s: the database directory %s is inside path %s, where the site's accounts could"
                                " change it" % (label, database_dir, path))
        exclude = site.get("exclude", [])
        if not isinstance(exclude, list) or not all(isinstance(pattern, str) and pattern for pattern in exclude):
            problems.append("%s: exclude %r is not a list of patterns" % (label, exclude))
    return problems
