"""`make test`, `make demo` and the lab refuse at once, in one line, where they cannot run.

scripts/setup.sh (the first thing both make targets run) and tests/lab/lab.py
are run for real in the two bad environments: not root, and systemd-nspawn missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

LAB = Path(__file__).resolve().parent / "lab.py"
SETUP = Path(__file__).resolve().parents[2] / "scripts" / "setup.sh"

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                                reason="needs root (and setpriv) to build the bad environments")


def as_nobody(*command):
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *command]


def run(command, env=None):
    return subprocess.run(command, text=True, capture_output=True, timeout=30, check=False, env=env)


@pytest.fixture(name="path_without_nspawn")
def fixture_path_without_nspawn(tmp_path):
    """An environment whose PATH has every command of this machine but systemd-nspawn."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for directory in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        for tool in Path(directory).glob("*") if Path(directory).is_dir() else []:
            if tool.name != "systemd-nspawn" and not (bin_dir / tool.name).exists():
                (bin_dir / tool.name).symlink_to(tool)
    return dict(os.environ, PATH=str(bin_dir))


def test_lab_refuses_when_not_root():
    result = run(as_nobody(sys.executable, str(LAB), "up", "--name", "refusal"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "lab: the lab needs root (it creates network namespaces, mounts and containers): run as root"]


def test_lab_refuses_without_systemd_nspawn(path_without_nspawn):
    result = run([sys.executable, str(LAB), "up", "--name", "refusal"], env=path_without_nspawn)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "lab: systemd-nspawn not found on PATH: apt-get install systemd-container"]


def test_setup_refuses_when_not_root():
    result = run(as_nobody("bash", str(SETUP)))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("setup: needs root"), result.stderr


@pytest.mark.skipif(not shutil.which("systemd-nspawn"), reason="systemd-nspawn is not installed here")
def test_setup_refuses_without_systemd_nspawn(path_without_nspawn):
    # dpkg still lists the package as installed, so reinstalling is what the message must say.
    result = run(["bash", str(SETUP)], env=path_without_nspawn)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "setup: systemd-nspawn not found on PATH although package systemd-container is installed: "
        "check PATH, or reinstall with 'apt-get install --reinstall systemd-container'"]
