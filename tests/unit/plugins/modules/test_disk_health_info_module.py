"""The disk_health_info module as Ansible runs it, on this machine (no md driver, no smartctl here)."""

from __future__ import annotations

import os
import shutil

import pytest
from module_process import run_module


@pytest.mark.skipif(os.path.exists("/proc/mdstat") or shutil.which("smartctl") is not None,
                    reason="this machine has software RAID or smartctl")
def test_a_host_without_software_raid_or_smartctl_is_reported_so_and_nothing_fails(tmp_path):
    code, result = run_module("disk_health_info", tmp_path, _ansible_check_mode=True)
    assert code == 0, result
    assert result["changed"] is False and result["smartctl"] is False
    assert result["arrays"] == [] and result["disks"] == []
    assert result["summary"] == {"arrays": 0, "degraded": [], "rebuilding": [], "failing_disks": []}
