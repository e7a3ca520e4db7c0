"""`make test` and `make demo` refuse at once, in one line, where they cannot run.

scripts/setup.sh is the first thing both run; these tests run it for real in
the two bad environments: not root, and systemd-nspawn missing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SETUP = Path(__file__).resolve().parents[2] / "scripts" / "setup.sh"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to build the bad environments")


def test_refuses_in_one_line_when_not_root():
    result = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "bash", str(SETUP)],
                            text=True, capture_output=True, timeout=30, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("setup: needs root"), result.stderr


@pytest.mark.skipif(not shutil.which("systemd-nspawn"), reason="systemd-nspawn is not installed here")
def test_refuses_in_one_line_when_systemd_nspawn_is_missing(tmp_path):
    # Every command of this machine but systemd-nspawn, whose package dpkg still
    # lists as installed: reinstalling is what the message must say.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for directory in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        for tool in Path(directory).glob("*") if Path(directory).is_dir() else []:
            if tool.name != "systemd-nspawn" and not (bin_dir / tool.name).exists():
                (bin_dir / tool.name).symlink_to(tool)
    result = subprocess.run(["bash", str(SETUP)], text=True, capture_output=True, timeout=30, check=False,
                            env=dict(os.environ, PATH=str(bin_dir)))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "setup: systemd-nspawn not found on PATH although package systemd-container is installed: "
        "check PATH, or reinstall with 'apt-get install --reinstall systemd-container'"]
