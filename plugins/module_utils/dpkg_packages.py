# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The installed Debian packages, read with dpkg-query, which every Debian host has.

ansible.builtin.package_facts reads them through python3-apt, which a minimal Debian install lacks: it then
fails with "Could not detect a supported package manager", naming neither the package nor the fix. dpkg-query
needs nothing beyond dpkg, so the roles' read-only preflights work on any Debian host.

Pure Python over a `run(argv) -> (rc, stdout, stderr)` callable.
"""

from __future__ import annotations

# One line a package: dpkg's abbreviated status, then the fields package_facts returns.
QUERY = ["dpkg-query", "--show", "--showformat", "${db:Status-Abbrev}\\t${Package}\\t${Version}\\t${Architecture}\\n"]
# The second letter of the abbreviated status: n not installed, c only its configuration files left.
# Every other state (installed, half-installed or half-configured, unpacked, triggers pending) has files on disk.
ABSENT_STATES = ("n", "c")


class DpkgError(RuntimeError):
    pass


def parse(output):
    """package_facts' shape: name -> [{name, version, arch, source}], installed packages only."""
    packages = {}
    for line in output.splitlines():
        fields = line.split("\t")
        if len(fields) != 4 or len(fields[0]) < 2 or fields[0][1] in ABSENT_STATES:
            continue
        _status, name, version, arch = fields
        packages.setdefault(name, []).append({"name": name, "version": version, "arch": arch, "source": "dpkg"})
    return packages


def installed_packages(run):
    rc, out, err = run(QUERY)
    if rc != 0:
        raise DpkgError(f"dpkg-query failed (exit {rc}): {(err or out).strip()}: is this a Debian host?")
    return parse(out)
