"""Pending updates: apt's simulation read package by package, security updates told by their archive."""

from __future__ import annotations

import pytest

from ansible_collections.hostguard.hosting.plugins.module_utils import pending_updates
from ansible_collections.hostguard.hosting.plugins.module_utils.pending_updates import UpdatesError

# apt-get -s dist-upgrade on a Debian 12 host (lines as apt 2.6 prints them).
SIMULATION = """NOTE: This is only a simulation!
Reading package lists...
Calculating upgrade...
The following packages will be upgraded:
  base-files libgcrypt20 liblzma5 linux-image-amd64
Inst base-files [12.4+deb12u11] (12.4+deb12u15 Debian:12.15/oldstable [amd64])
Inst libgcrypt20 [1.10.1-3] (1.10.1-3+deb12u1 Debian:12.15/oldstable, Debian-Security:12/oldstable-security [amd64])
Inst liblzma5 [5.4.1-1] (5.4.1-1+deb12u2 Debian-Security:12/oldstable-security [amd64]) []
Inst linux-image-6.1.0-41-amd64 (6.1.158-1 Debian-Security:12/oldstable-security [amd64])
Inst openssl [3.5.1-1] (3.5.4-1~deb13u1 Debian:13.2/stable-updates [amd64])
Inst hostguard-probe [1.0] (1.1 Ubuntu:24.04/noble-security [all])
Conf base-files (12.4+deb12u15 Debian:12.15/oldstable [amd64])
Remv oldlib [1.0]
"""
PERIODIC = 'APT::Periodic "";\nAPT::Periodic::Update-Package-Lists "1";\nAPT::Periodic::Unattended-Upgrade "1";\n'
NOW = 1_800_000_000.0
DAY = 86400.0


class FakeHost(object):
    def __init__(self, simulation=SIMULATION, periodic=PERIODIC, unattended="ii ", holds="", files=None, rc=0):
        self.outputs = {tuple(pending_updates.SIMULATE): (rc, simulation, "E: Could not open lock file" if rc else ""),
                        tuple(pending_updates.HOLDS): (0, holds, ""),
                        tuple(pending_updates.APT_CONFIG): (0, periodic, ""),
                        tuple(pending_updates.UNATTENDED_STATUS): (0 if unattended else 1, unattended, "")}
        self.files = files if files is not None else {
            "/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease": NOW - 3 * DAY,
            "/var/lib/apt/lists/security.debian.org_dists_bookworm-security_InRelease": NOW - 2 * DAY,
            "/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages": NOW,
        }
        self.ran = []

    def run(self, argv):
        self.ran.append(argv)
        return self.outputs[tuple(argv)]

    def mtime(self, path):
        return self.files.get(path)

    def listdir(self, path):
        return [name.rsplit("/", 1)[1] for name in self.files if name.rsplit("/", 1)[0] == path]

    def report(self):
        return pending_updates.report(self.run, self.mtime, self.listdir, NOW)


def test_each_upgrade_is_read_with_versions_and_archives():
    upgrades = {item["name"]: item for item in pending_updates.parse_simulation(SIMULATION)}
    assert set(upgrades) == {"base-files", "libgcrypt20", "liblzma5", "linux-image-6.1.0-41-amd64", "openssl",
                             "hostguard-probe"}
    assert upgrades["libgcrypt20"]["installed"] == "1.10.1-3"
    assert upgrades["libgcrypt20"]["candidate"] == "1.10.1-3+deb12u1"
    assert upgrades["libgcrypt20"]["sources"] == [
        {"label": "Debian", "version": "12.15", "archive": "oldstable"},
        {"label": "Debian-Security", "version": "12", "archive": "oldstable-security"}]
    assert upgrades["linux-image-6.1.0-41-amd64"]["installed"] is None  # a new package
    assert upgrades["hostguard-probe"]["arch"] == "all"


def test_a_security_update_is_told_by_its_label_or_a_security_suite_and_no_other():
    report = FakeHost().report()
    assert report["security"] == ["libgcrypt20", "liblzma5", "linux-image-6.1.0-41-amd64", "hostguard-probe"]
    assert report["summary"] == {"upgrades": 6, "security": 4, "held": 0}


def test_the_simulation_takes_no_lock_and_nothing_else_is_run_but_reads():
    host = FakeHost()
    host.report()
    assert host.ran[0] == ["apt-get", "-s", "-q", "-o", "Debug::NoLocking=true", "dist-upgrade"]
    assert all(argv[0] in ("apt-get", "apt-mark", "apt-config", "dpkg-query") for argv in host.ran)
    assert not any("update" in argv or "install" in argv or "upgrade" in argv for argv in host.ran)


def test_unattended_upgrades_on_and_the_lists_age_from_the_newest_release_file():
    report = FakeHost(files={
        "/var/lib/apt/lists/deb.debian.org_debian_dists_bookworm_InRelease": NOW - 3 * DAY,
        "/var/lib/apt/lists/security.debian.org_dists_bookworm-security_InRelease": NOW - 2 * DAY,
        "/var/lib/apt/periodic/unattended-upgrades-stamp": NOW - DAY / 2}).report()
    assert report["lists_age_days"] == 2.0
    assert report["lists_updated"].startswith("2027-01-13")
    assert report["unattended_upgrades"] == {"installed": True, "lists_refreshed": True, "enabled": True,
                                             "last_run": "2027-01-14T20:00:00+00:00"}


@pytest.mark.parametrize(("unattended", "periodic"), [
    ("", PERIODIC),  # not installed
    ("rc ", PERIODIC),  # removed, its configuration left
    ("ii ", 'APT::Periodic::Update-Package-Lists "1";\nAPT::Periodic::Unattended-Upgrade "0";\n'),
    ("ii ", ""),  # installed, never configured
])
def test_unattended_upgrades_off_is_reported_off(unattended, periodic):
    assert FakeHost(unattended=unattended, periodic=periodic).report()["unattended_upgrades"]["enabled"] is False


def test_no_lists_no_stamps_no_reboot():
    report = FakeHost(files={}).report()
    assert (report["lists_updated"], report["lists_age_days"], report["reboot_required"]) == (None, None, False)
    assert report["unattended_upgrades"]["last_run"] is None


def test_held_packages_and_a_reboot_request_are_reported():
    report = FakeHost(holds="linux-image-amd64\nexim4-base\n", files={"/run/reboot-required": NOW}).report()
    assert report["held"] == ["exim4-base", "linux-image-amd64"] and report["reboot_required"] is True


def test_a_failed_simulation_fails_with_apts_words():
    with pytest.raises(UpdatesError, match="apt-get -s dist-upgrade failed .exit 100.: E: Could not open lock file"):
        FakeHost(rc=100).report()
