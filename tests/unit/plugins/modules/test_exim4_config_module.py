"""The exim4_config module as Ansible runs it: a process reading its arguments from a JSON file.

The checks that need no Exim run anywhere; the last test runs Debian's
update-exim4.conf and exim4 on a copy of this machine's /etc/exim4, where it has them.
"""

from __future__ import annotations

import os
import shutil

import pytest
from module_process import run_module


def test_a_bad_trusted_network_fails_naming_it(tmp_path):
    code, result = run_module("exim4_config", tmp_path, trusted_networks=["198.51.100.0/24", "10.0.0.1/8"],
                              confdir=str(tmp_path / "none"))
    assert code != 0 and result["failed"]
    assert "'10.0.0.1/8'" in result["msg"] and "did you mean 10.0.0.0/8" in result["msg"]


def test_a_directory_that_is_not_debians_exim_configuration_fails(tmp_path):
    code, result = run_module("exim4_config", tmp_path, files={"main/00_x": "A = 1\n"}, confdir=str(tmp_path))
    assert code != 0
    assert "update-exim4.conf.conf is missing" in result["msg"]


@pytest.mark.skipif(not (shutil.which("update-exim4.conf") and os.path.isdir("/etc/exim4/conf.d")
                         and os.geteuid() == 0), reason="needs Debian's exim4 and root")
def test_check_mode_on_a_copy_of_debians_configuration_returns_the_diff_and_the_relay_hosts(tmp_path):
    confdir = tmp_path / "exim4"
    shutil.copytree("/etc/exim4", confdir, symlinks=True)
    if (confdir / "exim4.conf").exists():
        pytest.skip("this machine's Exim has a hand-written exim4.conf")
    before = {path: path.read_bytes() for path in confdir.rglob("*") if path.is_file()}
    code, result = run_module("exim4_config", tmp_path, files={"main/00_hostguard_test": "MAIN_TLS_ENABLE = yes\n"},
                              trusted_networks=["198.51.100.0/24"], confdir=str(confdir),
                              _ansible_check_mode=True, _ansible_diff=True)
    assert code == 0, result
    assert result["changed"] and result["files"] == ["main/00_hostguard_test"]
    assert result["relay_hosts"] == "<; 127.0.0.0/8 ; ::1 ; 198.51.100.0/24"
    assert result["diff"][0]["after"] == "MAIN_TLS_ENABLE = yes\n"
    assert {path: path.read_bytes() for path in confdir.rglob("*") if path.is_file()} == before
