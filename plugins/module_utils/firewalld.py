# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Put the firewall role's firewalld configuration in place safely.

The role's policy is one zone (made the default zone) and its ipsets, as
firewalld permanent configuration files (firewall.render_firewalld). This
writes only those files and the DefaultZone line of firewalld.conf, and
removes only stale files of its own (zones/hostguard.xml, ipsets/hg_*.xml).

Order of a change: the new configuration is checked on a staging copy of the
whole configuration directory (firewall-offline-cmd --system-config COPY
--check-config) before any live file is touched; the files about to change are
saved with a script that puts them back; a transient systemd timer armed to
run that script; only then the files are written and firewalld reloaded. The
controller confirms once it has reconnected through the new rules, which stops
the timer; if it cannot, the host puts the previous configuration back by
itself.

Pure Python over a `run(argv) -> (rc, stdout, stderr)` callable, so the logic
is unit-tested without a host.
"""

from __future__ import annotations

import difflib
import os
import re
import shlex
import shutil
import tempfile

from ansible_collections.hostguard.hosting.plugins.module_utils import rollback
from ansible_collections.hostguard.hosting.plugins.module_utils.atomic_file import write_atomically

MANAGED_RE = re.compile(r"^(?:zones/hostguard\.xml|ipsets/hg_[A-Za-z0-9_]+\.xml)$")
CONF_FILE = "firewalld.conf"
DEFAULT_ZONE_RE = re.compile(r"(?m)^[ \t]*DefaultZone[ \t]*=[ \t]*(\S*)[ \t]*$")
# firewalld loads a configuration with a bad rule or entry, dropping it with a
# WARNING (exit 0): a warning is a refusal here, or a rule would silently be missing.
CHECK_REFUSES_RE = re.compile(r"(?m)^(?:WARNING|ERROR|Configuration error)\b.*$")
FILE_MODE = 0o644


class FirewalldError(RuntimeError):
    pass


def _read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def managed_files(config_dir):
    """The files of this module's that exist under config_dir, relative to it."""
    found = []
    for sub in ("zones", "ipsets"):
        directory = os.path.join(config_dir, sub)
        if os.path.isdir(directory):
            found += [f"{sub}/{name}" for name in sorted(os.listdir(directory)) if MANAGED_RE.match(f"{sub}/{name}")]
    return found


def default_zone(conf_text):
    match = DEFAULT_ZONE_RE.search(conf_text or "")
    return match.group(1) if match else None


def with_default_zone(conf_text, zone):
    """firewalld.conf with DefaultZone set to zone, every other line as it was."""
    if DEFAULT_ZONE_RE.search(conf_text):
        return DEFAULT_ZONE_RE.sub(f"DefaultZone={zone}", conf_text, count=1)
    return conf_text.rstrip("\n") + f"\nDefaultZone={zone}\n"


def plan_changes(config_dir, files, zone):
    """What must change: {path relative to config_dir: new content, or None to remove}."""
    changes = {}
    for rel, content in files.items():
        if not MANAGED_RE.match(rel):
            raise FirewalldError(f"{rel} is not a file this module manages (zones/hostguard.xml, ipsets/hg_*.xml)")
        if _read(os.path.join(config_dir, rel)) != content:
            changes[rel] = content
    for rel in managed_files(config_dir):
        if rel not in files:
            changes[rel] = None
    # No firewalld.conf (firewalld not installed yet, in check mode): firewalld's defaults, which name no zone.
    conf = _read(os.path.join(config_dir, CONF_FILE)) or ""
    if default_zone(conf) != zone:
        changes[CONF_FILE] = with_default_zone(conf, zone)
    return changes


def diff(config_dir, changes):
    """Ansible's diff: one unified diff over the files that change (a 10 000-entry ipset shows only its edits)."""
    lines = []
    for rel, content in sorted(changes.items()):
        path = os.path.join(config_dir, rel)
        before = _read(path)
        lines += difflib.unified_diff((before or "").splitlines(keepends=True), (content or "").splitlines(keepends=True),
                                      fromfile=path if before is not None else "/dev/null",
                                      tofile=path if content is not None else "/dev/null")
    return {"prepared": "".join(lines)}


def running(run):
    rc, out, _err = run(["firewall-cmd", "--state"])
    return rc == 0 and out.strip() == "running"


def runtime_default_zone(run):
    rc, out, _err = run(["firewall-cmd", "--get-default-zone"])
    return out.strip() if rc == 0 else None


def check_staged(run, config_dir, changes, staging_root):
    """Check the configuration as it would be, on a copy: nothing live is touched."""
    staging = tempfile.mkdtemp(prefix="firewalld-check-", dir=staging_root)
    try:
        copy = os.path.join(staging, "firewalld")
        shutil.copytree(config_dir, copy, symlinks=True)
        _apply_files(copy, changes)
        rc, out, err = run(["firewall-offline-cmd", "--system-config", copy, "--check-config"])
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    complaints = CHECK_REFUSES_RE.findall(f"{out}\n{err}")
    if rc != 0 or complaints:
        detail = "; ".join(complaints) or (err or out).strip() or f"exit {rc}"
        raise FirewalldError(f"firewall-offline-cmd --check-config refused the new configuration, nothing was "
                             f"changed: {detail.replace(staging + '/firewalld', config_dir)}")


def _apply_files(config_dir, changes):
    for rel, content in changes.items():
        path = os.path.join(config_dir, rel)
        if content is None:
            if os.path.exists(path):
                os.remove(path)
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            mode = os.stat(path).st_mode & 0o7777 if os.path.exists(path) else FILE_MODE
            write_atomically(path, content.encode("utf-8"), mode=mode)


def save_backup(config_dir, changes, backup_dir, was_running):
    """Copy what is about to change, and write the script that puts it back. Returns the script's path."""
    shutil.rmtree(backup_dir, ignore_errors=True)
    os.makedirs(backup_dir, mode=0o700)
    lines = ["#!/bin/sh",
             "# Written by hostguard.hosting.firewall: puts the previous firewalld configuration back.",
             "set -e"]
    for rel in sorted(changes):
        live = os.path.join(config_dir, rel)
        if os.path.exists(live):
            saved = os.path.join(backup_dir, "files", rel)
            os.makedirs(os.path.dirname(saved), exist_ok=True)
            shutil.copy2(live, saved)
            lines.append(f"cp -p {shlex.quote(saved)} {shlex.quote(live)}")
        else:
            lines.append(f"rm -f {shlex.quote(live)}")
    # firewalld was started for these rules: stopping it is what puts the host back.
    lines.append("firewall-cmd --reload" if was_running else "systemctl stop firewalld.service")
    script = os.path.join(backup_dir, "rollback.sh")
    write_atomically(script, ("\n".join(lines) + "\n").encode("utf-8"), mode=0o700)
    return script


def apply(run, config_dir, files, zone, rollback_seconds, backup_dir, check_mode):
    """Make firewalld's permanent and runtime configuration the role's. Returns a result dict."""
    changes = plan_changes(config_dir, files, zone)
    was_running = running(run)
    live_zone = runtime_default_zone(run) if was_running else None
    # Files already right but not in force (firewalld stopped, or reloaded by nobody since): reload only.
    reload_needed = bool(changes) or not was_running or live_zone != zone
    result = {"changed": reload_needed, "files": sorted(changes), "started": reload_needed and not was_running,
              "rollback_armed": False, "diff": diff(config_dir, changes)}
    if not reload_needed or check_mode:
        return result
    os.makedirs(os.path.dirname(backup_dir), mode=0o700, exist_ok=True)
    check_staged(run, config_dir, changes, os.path.dirname(backup_dir))
    script = save_backup(config_dir, changes, backup_dir, was_running)
    if rollback_seconds > 0:
        rollback.arm(run, ["/bin/sh", script], rollback_seconds)
        result["rollback_armed"] = True
    try:
        _apply_files(config_dir, changes)
        command = ["firewall-cmd", "--reload"] if was_running else ["systemctl", "start", "firewalld.service"]
        rc, out, err = run(command)
        if rc != 0:
            raise FirewalldError(f"{' '.join(command)} failed: {(err or out).strip()}")
    except (FirewalldError, OSError) as error:
        rollback.disarm(run)
        rc, out, err = run(["/bin/sh", script])
        restored = "the previous configuration is back" if rc == 0 else \
            f"putting the previous configuration back failed too ({(err or out).strip()}): run {script}"
        raise FirewalldError(f"{error}; {restored}") from None
    return result


def confirm(run, config_dir, files, zone):
    """Stop the pending rollback; then make sure the configuration confirmed is the one in force.

    A rollback that fired before the controller confirmed (a window too short
    for a slow reconnect) has put the previous files back and reloaded: say so
    instead of reporting success for rules that are not in force.
    """
    was_armed = rollback.disarm(run)
    if files is not None:
        stale = sorted(plan_changes(config_dir, files, zone))
        if stale or runtime_default_zone(run) != zone:
            raise FirewalldError("the rollback ran before the controller confirmed: the previous configuration is "
                                 "in force, not the new one; raise firewall_rollback_seconds and run again")
    return was_armed
