"""Disk health: /proc/mdstat read array by array, smartctl's verdict disk by disk.

/proc/mdstat is the kernel's text (this machine has no md driver loaded, and the lab's hosts share its
kernel), so the arrays below are written in its format as Linux 6.x prints it; smartctl runs through a
stand-in that answers with smartmontools 7's JSON.
"""

from __future__ import annotations

import json

import pytest

from ansible_collections.hostguard.hosting.plugins.module_utils import disk_health
from ansible_collections.hostguard.hosting.plugins.module_utils.disk_health import DiskHealthError

MDSTAT = """Personalities : [raid1] [raid6] [raid5] [raid4]
md0 : active raid1 sdb1[1] sda1[0]
      1953382464 blocks super 1.2 [2/2] [UU]
      bitmap: 0/15 pages [0KB], 65536KB chunk

md1 : active raid1 sdb2[2](F) sda2[0]
      976630336 blocks super 1.2 [2/1] [U_]

md2 : active raid5 sdd1[4] sdc1[2] sdb1[1] sda1[0]
      5860147200 blocks super 1.2 level 5, 512k chunk, algorithm 2 [4/3] [UUU_]
      [=>...................]  recovery =  8.5% (166448512/1953382400) finish=254.4min speed=117056K/sec

md3 : active (auto-read-only) raid1 sdf1[1] sde1[0]
      104320 blocks [2/2] [UU]
        resync=PENDING

md4 : inactive sdg1[1](S)
      976630336 blocks super 1.2

unused devices: <none>
"""


def arrays():
    return {array["name"]: array for array in disk_health.parse_mdstat(MDSTAT)}


def test_a_healthy_mirror_is_healthy():
    md0 = arrays()["md0"]
    expected = ("raid1", ["sdb1", "sda1"], 2, 2, "UU")
    assert (md0["level"], md0["members"], md0["wanted"], md0["working"], md0["map"]) == expected
    assert md0["degraded"] is False and md0["healthy"] is True and md0["action"] is None


def test_a_mirror_with_a_failed_member_is_degraded_naming_it():
    md1 = arrays()["md1"]
    assert md1["failed"] == ["sdb2"] and (md1["working"], md1["map"]) == (1, "U_")
    assert md1["degraded"] is True and md1["healthy"] is False


def test_a_rebuild_is_reported_with_its_progress():
    md2 = arrays()["md2"]
    assert (md2["level"], md2["action"], md2["progress"], md2["finish"]) == ("raid5", "recovery", 8.5, "254.4min")
    assert md2["degraded"] is True and md2["healthy"] is False


def test_a_pending_resync_and_an_inactive_array():
    found = arrays()
    assert (found["md3"]["action"], found["md3"]["progress"], found["md3"]["finish"]) == ("resync", None, "pending")
    assert found["md3"]["degraded"] is False
    assert found["md4"]["state"] == "inactive" and found["md4"]["spares"] == ["sdg1"] and found["md4"]["healthy"] is False
    assert set(found) == {"md0", "md1", "md2", "md3", "md4"}


def test_no_arrays():
    assert disk_health.parse_mdstat("Personalities : \nunused devices: <none>\n") == []


class FakeSmartctl(object):
    def __init__(self, disks, missing=False):
        self.disks = disks
        self.missing = missing

    def run(self, argv):
        if self.missing:
            raise OSError(2, "No such file or directory")
        if argv == disk_health.SCAN:
            return 0, json.dumps({"devices": [{"name": name, "type": "sat"} for name in self.disks]}), ""
        assert argv[:6] == ["smartctl", "--health", "--info", "--json", "--device", "sat"]
        return self.disks[argv[6]]


def test_each_disk_has_smartctls_verdict_and_a_failing_one_is_named():
    smart = FakeSmartctl({
        "/dev/sda": (0, json.dumps({"model_name": "WDC WD20EFRX", "serial_number": "WD-1",
                                    "smart_status": {"passed": True}}), ""),
        "/dev/sdb": (8, json.dumps({"model_name": "WDC WD20EFRX", "serial_number": "WD-2",
                                    "smart_status": {"passed": False}}), ""),
        "/dev/sdc": (4, json.dumps({"smartctl": {"messages": [{"string": "SMART not supported", "severity": "error"}]}}),
                     ""),
    })
    result = disk_health.report(MDSTAT, smart.run)
    disks = {disk["device"]: disk for disk in result["disks"]}
    assert disks["/dev/sda"]["passed"] is True and disks["/dev/sda"]["serial"] == "WD-1"
    assert disks["/dev/sdb"]["passed"] is False
    assert disks["/dev/sdc"]["passed"] is None and disks["/dev/sdc"]["error"] == "SMART not supported"
    assert result["summary"] == {"arrays": 5, "degraded": ["md1", "md2"], "rebuilding": ["md2", "md3"],
                                 "failing_disks": ["/dev/sdb"]}


def test_without_smartctl_or_mdstat_the_report_says_so():
    result = disk_health.report(None, FakeSmartctl({}, missing=True).run)
    assert result["smartctl"] is False and result["disks"] == [] and result["arrays"] == []


def test_a_scan_that_is_not_json_fails_with_smartctls_words():
    with pytest.raises(DiskHealthError, match="smartctl --scan --json printed no JSON: garbage"):
        disk_health.smart_health(lambda argv: (0, "garbage", ""))
