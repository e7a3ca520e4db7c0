# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The updates a Debian host has not installed, which of them are security updates, and whether it installs
them by itself.

Software left old is the way in of every compromise the providers describe. apt itself says what an upgrade
would install: `apt-get -s dist-upgrade` (a simulation, without the lock, changing nothing) prints one `Inst`
line per package with the archives its new version comes from, e.g.
`Inst libgcrypt20 [1.10.1-3] (1.10.1-3+deb12u1 Debian:12.15/oldstable, Debian-Security:12/oldstable-security [amd64])`;
a version from the security archive (label Debian-Security, or a suite ending in -security) is a security
update, as monitoring-plugins' check_apt and unattended-upgrades' default origins count it. The package lists
are not refreshed here (that would change the host): their age is reported instead, so that a short list on
lists a month old is read as such.

Pure Python over a `run(argv) -> (rc, stdout, stderr)` callable and a `stat(path)` callable.
"""

from __future__ import annotations

import datetime
import re

SIMULATE = ["apt-get", "-s", "-q", "-o", "Debug::NoLocking=true", "dist-upgrade"]
HOLDS = ["apt-mark", "showhold"]
APT_CONFIG = ["apt-config", "dump", "APT::Periodic"]
UNATTENDED_STATUS = ["dpkg-query", "--show", "--showformat", "${db:Status-Abbrev}", "unattended-upgrades"]
# Where apt records when it last refreshed the lists and when unattended-upgrades last ran (apt.systemd.daily).
LISTS_DIR = "/var/lib/apt/lists"
UPDATE_STAMP = "/var/lib/apt/periodic/update-success-stamp"
UNATTENDED_STAMP = "/var/lib/apt/periodic/unattended-upgrades-stamp"
UNATTENDED_LOG = "/var/log/unattended-upgrades/unattended-upgrades.log"
REBOOT_REQUIRED = "/run/reboot-required"

# "Inst NAME [INSTALLED] (CANDIDATE SOURCE, SOURCE [ARCH]) [BROKEN]"; INSTALLED is absent for a new package.
_INST = re.compile(r"^Inst (?P<name>\S+)(?: \[(?P<installed>[^\]]+)\])? \((?P<candidate>\S+) (?P<sources>.*) \[(?P<arch>[^\]]+)\]\)")
# One source: "LABEL:VERSION/ARCHIVE" (VERSION may be empty); a local repository may name only itself.
_SOURCE = re.compile(r"^(?P<label>[^:/]+):(?P<version>[^/]*)/(?P<archive>\S+)$")
_PERIODIC = re.compile(r'^APT::Periodic::(?P<key>[\w-]+) "(?P<value>[^"]*)";$')


class UpdatesError(RuntimeError):
    pass


def parse_simulation(output):
    """The upgrades of `apt-get -s dist-upgrade`: [{name, installed, candidate, arch, sources, security}]."""
    upgrades = []
    for line in output.splitlines():
        match = _INST.match(line)
        if match is None:
            continue
        sources = []
        for text in match.group("sources").split(", "):
            source = _SOURCE.match(text.strip())
            sources.append(source.groupdict() if source else {"label": text.strip(), "version": "", "archive": ""})
        upgrades.append({
            "name": match.group("name"),
            "installed": match.group("installed"),
            "candidate": match.group("candidate"),
            "arch": match.group("arch"),
            "sources": sources,
            "security": any(is_security(source) for source in sources),
        })
    return upgrades


def is_security(source):
    return source["label"] == "Debian-Security" or source["archive"].endswith("-security")


def parse_periodic(output):
    """{key: value} of `apt-config dump APT::Periodic`."""
    settings = {}
    for line in output.splitlines():
        match = _PERIODIC.match(line.strip())
        if match:
            settings[match.group("key")] = match.group("value")
    return settings


def _enabled(value):
    # APT::Periodic values are day counts ("1" daily, "0" never), or "always" and durations in newer apt.
    value = (value or "0").strip()
    return value not in ("", "0", "false", "no")


def _time(seconds):
    if seconds is None:
        return None
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).isoformat()


def report(run, mtime, listdir, now):
    """What a host has not installed and whether it installs updates by itself.

    ``mtime(path)`` is the modification time of a path or None; ``listdir(path)`` its names or [];
    ``now`` the current time in seconds.
    """
    rc, out, err = run(SIMULATE)
    if rc != 0:
        raise UpdatesError("apt-get -s dist-upgrade failed (exit %d): %s" % (rc, (err or out).strip()[-500:]))
    upgrades = parse_simulation(out)
    rc, out, err = run(HOLDS)
    held = sorted(out.split()) if rc == 0 else []
    rc, out, _err = run(APT_CONFIG)
    periodic = parse_periodic(out) if rc == 0 else {}
    rc, out, _err = run(UNATTENDED_STATUS)
    unattended_installed = rc == 0 and out[1:2] not in ("n", "c", "")
    lists = [mtime(LISTS_DIR + "/" + name) for name in listdir(LISTS_DIR)
             if name.endswith(("_Release", "_InRelease"))]
    lists_updated = max([stamp for stamp in lists + [mtime(UPDATE_STAMP)] if stamp is not None], default=None)
    last_run = max([stamp for stamp in (mtime(UNATTENDED_STAMP), mtime(UNATTENDED_LOG)) if stamp is not None],
                   default=None)
    security = [upgrade["name"] for upgrade in upgrades if upgrade["security"]]
    return {
        "upgrades": upgrades,
        "security": security,
        "held": held,
        "lists_updated": _time(lists_updated),
        "lists_age_days": None if lists_updated is None else round((now - lists_updated) / 86400.0, 1),
        "unattended_upgrades": {
            "installed": unattended_installed,
            "lists_refreshed": _enabled(periodic.get("Update-Package-Lists")),
            "enabled": unattended_installed and _enabled(periodic.get("Unattended-Upgrade")),
            "last_run": _time(last_run),
        },
        "reboot_required": mtime(REBOOT_REQUIRED) is not None,
        "summary": {"upgrades": len(upgrades), "security": len(security), "held": len(held)},
    }
