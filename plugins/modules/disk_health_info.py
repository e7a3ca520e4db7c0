#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: disk_health_info
short_description: Report degraded or rebuilding software RAID arrays and disks whose SMART health check fails
version_added: "0.2.0"
description:
  - Reads the kernel's C(/proc/mdstat) and reports each software RAID array with its members, the failed and
    spare ones, how many members work of how many it wants (C([2/1] [U_]) is a mirror running on one disk),
    and a rebuild, resync or check under way with its progress.
  - Where smartmontools' C(smartctl) is installed (version 7 or later, for its JSON output), asks it for each
    disk it finds (C(smartctl --scan)) and reports the disk's overall SMART health verdict. Without it,
    RV(smartctl) is V(false) and no disk is reported; nothing is installed.
  - Reads only.
author:
  - hostguard.hosting contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - hostguard.hosting.read_only
"""

EXAMPLES = r"""
- name: Read the arrays and the disks
  hostguard.hosting.disk_health_info:
  register: disks

- name: Fail on a degraded array
  ansible.builtin.assert:
    that: disks.summary.degraded | length == 0
    fail_msg: "degraded: {{ disks.summary.degraded | join(', ') }}"
"""

RETURN = r"""
arrays:
  description: Each software RAID array of C(/proc/mdstat).
  returned: always
  type: list
  elements: dict
  sample:
    - name: md1
      state: active
      level: raid1
      members: [sdb2, sda2]
      failed: [sdb2]
      spares: []
      wanted: 2
      working: 1
      map: U_
      action: null
      progress: null
      finish: null
      degraded: true
      healthy: false
disks:
  description: Each disk smartctl found, with its model, serial and SMART verdict (C(passed) null where it gave none, with C(error)).
  returned: always
  type: list
  elements: dict
  sample:
    - {device: /dev/sda, type: sat, model: WDC WD20EFRX, serial: WD-1, passed: true, error: null}
smartctl:
  description: Whether smartctl is installed (without it no disk is reported).
  returned: always
  type: bool
summary:
  description: The number of arrays, the names of degraded and rebuilding arrays, and the disks failing their check.
  returned: always
  type: dict
  sample: {arrays: 2, degraded: [md1], rebuilding: [], failing_disks: []}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostguard.hosting.plugins.module_utils.disk_health import MDSTAT, DiskHealthError, report


def main():
    module = AnsibleModule(argument_spec={}, supports_check_mode=True)
    smartctl = module.get_bin_path("smartctl", opt_dirs=["/usr/sbin", "/sbin"])

    def run(argv):
        if smartctl is None:
            raise OSError(2, "smartctl is not installed")
        return module.run_command([smartctl] + argv[1:], environ_update={"LC_ALL": "C"})

    try:
        with open(MDSTAT) as stream:
            mdstat = stream.read()
    except OSError:
        mdstat = None  # no md driver loaded: no software RAID
    try:
        result = report(mdstat, run)
    except DiskHealthError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
