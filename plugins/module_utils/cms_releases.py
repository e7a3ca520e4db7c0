# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What is current for each CMS, WordPress plugin and theme, and how old an install is against it.

The releases document (roles/audit/files/cms_releases.yml is the one the collection ships; a user may pin their
own)::

    as_of: "2025-12-02"            # when the data was read
    source: ...                    # where from
    cms:
      wordpress:
        latest: "6.9"
        # The newest release of each branch that still gets security fixes. An install on a listed branch but
        # older than its entry misses a security release; one on a branch not listed gets no fixes at all.
        branches: {"6.9": "6.9", "6.8": "6.8.3"}
    plugins: {akismet: "5.6"}      # WordPress plugins by slug: the latest version
    themes: {twentytwentyfive: "1.3"}

The projects' own services give the same data online: WordPress's stable-check (each release said latest,
outdated or insecure), its plugin and theme directories, and Joomla's downloads API.
"""

from __future__ import annotations

import re

# What a judgement means for the responder, worst first.
STATUSES = ("unsupported", "insecure", "outdated", "current", "unknown")


class ReleasesError(Exception):
    pass


def version_key(version):
    """The comparable form of a version: its leading dotted numbers (6.8.3-beta1 -> (6, 8, 3)); None if it has none."""
    match = re.match(r"\s*v?(\d+(?:\.\d+)*)", str(version or ""))
    if not match:
        return None
    numbers = [int(part) for part in match.group(1).split(".")]
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers.pop()  # 6.9 == 6.9.0
    return tuple(numbers)


def branch_of(version):
    key = version_key(version)
    return None if key is None else ".".join(str(part) for part in (key + (0,))[:2])


def validate(document, where="releases"):
    """The releases document, checked; ReleasesError naming the first value that is not what it must be."""
    if not isinstance(document, dict):
        raise ReleasesError("%s: expected a mapping with cms, plugins and themes, got %s"
                            % (where, type(document).__name__))
    for cms, data in (document.get("cms") or {}).items():
        if not isinstance(data, dict) or version_key(data.get("latest")) is None:
            raise ReleasesError("%s: cms.%s.latest must be a version, got %r"
                                % (where, cms, (data or {}).get("latest") if isinstance(data, dict) else data))
        for branch, release in (data.get("branches") or {}).items():
            if version_key(release) is None:
                raise ReleasesError("%s: cms.%s.branches.%s must be a version, got %r" % (where, cms, branch, release))
    for kind in ("plugins", "themes"):
        for slug, release in (document.get(kind) or {}).items():
            if version_key(release) is None:
                raise ReleasesError("%s: %s.%s must be a version, got %r" % (where, kind, slug, release))
    return document


def judge_core(cms, version, releases):
    """How an install of ``cms`` at ``version`` stands: status (STATUSES), the latest release and, where a newer
    release of its own branch fixes security problems, that release."""
    data = (releases.get("cms") or {}).get(cms)
    installed = version_key(version)
    if not data or installed is None:
        return {"status": "unknown", "latest": (data or {}).get("latest")}
    latest = version_key(data["latest"])
    branches = {branch_of(branch): release for branch, release in (data.get("branches") or {}).items()}
    verdict = {"latest": data["latest"]}
    if installed >= latest:
        return dict(verdict, status="current")
    fixed = branches.get(branch_of(version))
    if branches and fixed is None:
        return dict(verdict, status="unsupported")
    if fixed is not None and installed < version_key(fixed):
        return dict(verdict, status="insecure", fixed_in=fixed)
    return dict(verdict, status="outdated")


def judge_extension(kind, slug, version, releases):
    """A WordPress plugin or theme against the latest version its directory lists."""
    latest = (releases.get(kind) or {}).get(slug)
    installed = version_key(version)
    if latest is None or installed is None:
        return {"status": "unknown", "latest": latest}
    return {"status": "current" if installed >= version_key(latest) else "outdated", "latest": latest}


def judge(installs, releases):
    """The installs (cms_survey.survey's) with each one's and each plugin's and theme's judgement merged in."""
    judged = []
    for install in installs:
        item = dict(install, **judge_core(install["cms"], install.get("version"), releases))
        for kind in ("plugins", "themes"):
            if kind in install:
                item[kind] = [dict(extension, **judge_extension(kind, extension["slug"], extension.get("version"),
                                                                releases))
                              for extension in install[kind]]
        judged.append(item)
    return judged


def wordpress_branches(stable_check):
    """WordPress's stable-check answer ({"6.8.3": "outdated", "6.9": "latest", "6.8.2": "insecure", ...}) as the
    releases document's latest and branches: each branch's newest release not said insecure."""
    if not isinstance(stable_check, dict) or not stable_check:
        raise ReleasesError("WordPress's stable-check answered %r, not releases by version" % (stable_check,))
    latest = [version for version, status in stable_check.items() if status == "latest"]
    if len(latest) != 1 or version_key(latest[0]) is None:
        raise ReleasesError("WordPress's stable-check names %d latest releases, not one" % len(latest))
    branches = {}
    for version, status in stable_check.items():
        if status in ("latest", "outdated") and version_key(version) is not None:
            branch = branch_of(version)
            if branch not in branches or version_key(version) > version_key(branches[branch]):
                branches[branch] = version
    return {"latest": latest[0], "branches": dict(sorted(branches.items(), key=lambda item: version_key(item[0]),
                                                         reverse=True))}


def joomla_branches(answer):
    """Joomla's downloads API (/latest/cms: {"branches": [{"branch": "Joomla! 5", "version": "5.4.1"}, ...]}): every
    branch it lists is supported, and only its newest release gets fixes."""
    listed = [item.get("version") for item in (answer or {}).get("branches") or [] if isinstance(item, dict)]
    listed = [version for version in listed if version_key(version) is not None]
    if not listed:
        raise ReleasesError("Joomla's downloads API answered %r, with no branch and version" % (answer,))
    return {"latest": max(listed, key=version_key),
            "branches": {branch_of(version): version for version in sorted(listed, key=version_key, reverse=True)}}


WORDPRESS_API = "https://api.wordpress.org"
JOOMLA_API = "https://downloads.joomla.org/api/v1"
DIRECTORY_SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,199}$")


def fetch_releases(fetch, fallback, plugins=(), themes=(), wordpress_api=WORDPRESS_API, joomla_api=JOOMLA_API,
                   today=None):
    """The releases document read from the projects' services through ``fetch(url) -> parsed JSON`` (raising on any
    failure), over the ``fallback`` document (the shipped or pinned one): what could not be read stays as the
    fallback says, and ``errors`` names it. ``source`` says which parts came from where."""
    document = {"as_of": fallback.get("as_of"), "cms": dict(fallback.get("cms") or {}),
                "plugins": dict(fallback.get("plugins") or {}), "themes": dict(fallback.get("themes") or {})}
    errors, online, unlisted = [], [], []

    def ask(what, url, shape):
        try:
            result = shape(fetch(url))
        except Exception as exc:  # pylint: disable=broad-except  # a service down is said, never fatal
            errors.append("%s: %s: %s" % (what, url, exc))
            return None
        online.append(what)
        return result

    wordpress = ask("wordpress", wordpress_api.rstrip("/") + "/core/stable-check/1.0/", wordpress_branches)
    if wordpress:
        document["cms"]["wordpress"] = wordpress
    joomla = ask("joomla", joomla_api.rstrip("/") + "/latest/cms", joomla_branches)
    if joomla:
        document["cms"]["joomla"] = joomla
    for kind, action, slugs in (("plugins", "plugin_information", plugins), ("themes", "theme_information", themes)):
        for slug in sorted(set(slugs)):
            if not DIRECTORY_SLUG.match(slug):
                unlisted.append("%s %s" % (kind[:-1], slug))  # a name the directory cannot hold
                continue
            url = "%s/%s/info/1.2/?action=%s&request%%5Bslug%%5D=%s" % (wordpress_api.rstrip("/"), kind, action, slug)
            try:
                answer = fetch(url)
            except Exception as exc:  # pylint: disable=broad-except
                errors.append("%s %s: %s: %s" % (kind[:-1], slug, url, exc))
                continue
            version = answer.get("version") if isinstance(answer, dict) else None
            if version_key(version) is None:
                unlisted.append("%s %s" % (kind[:-1], slug))  # a premium or custom one: the directory has none
            else:
                online.append("%s %s" % (kind[:-1], slug))
                document[kind][slug] = version
    if wordpress or joomla:
        # the date says how fresh the CMS releases are: plugins read online do not make stale core data current
        document["as_of"] = today
    document["source"] = {"online": online, "errors": errors, "unlisted": unlisted}
    return validate(document, "the releases read")
