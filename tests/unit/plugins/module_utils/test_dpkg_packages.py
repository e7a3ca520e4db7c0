"""The installed packages from dpkg-query, in package_facts' shape, without python3-apt."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from ansible_collections.hostguard.hosting.plugins.module_utils import dpkg_packages

OUTPUT = ("ii \tfail2ban\t1.0.2-2\tall\n"
          "rc \tpython3-apt\t2.6.0\tamd64\n"   # removed, its configuration files left
          "un \tpython3-systemd\t\t\n"          # known to dpkg, never installed
          "iU \tpostfix\t3.7.11-0+deb12u1\tamd64\n"  # unpacked, not yet configured: its files are there
          "ii \tlibc6\t2.36-9\tamd64\n"
          "ii \tlibc6\t2.36-9\ti386\n")


def test_installed_packages_in_package_facts_shape():
    packages = dpkg_packages.parse(OUTPUT)
    assert set(packages) == {"fail2ban", "postfix", "libc6"}
    assert packages["fail2ban"] == [{"name": "fail2ban", "version": "1.0.2-2", "arch": "all", "source": "dpkg"}]
    assert [entry["arch"] for entry in packages["libc6"]] == ["amd64", "i386"]


def test_a_failing_dpkg_query_names_itself():
    with pytest.raises(dpkg_packages.DpkgError, match=r"dpkg-query failed \(exit 127\).*Debian host"):
        dpkg_packages.installed_packages(lambda argv: (127, "", "dpkg-query: not found"))


@pytest.mark.skipif(not shutil.which("dpkg-query"), reason="needs a Debian machine")
def test_this_machines_packages_are_read():
    def run(argv):
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        return result.returncode, result.stdout, result.stderr

    assert "dpkg" in dpkg_packages.installed_packages(run)
