#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: pending_updates_info
short_description: Report the updates a Debian host has not installed, the security ones first, and whether it installs them itself
version_added: "0.2.0"
description:
  - Asks apt what an upgrade would install (C(apt-get -s dist-upgrade), a simulation that takes no lock and
    changes nothing) and reports each package with its installed and candidate versions and the archives the
    candidate comes from; a candidate from the security archive (label C(Debian-Security), or a suite ending in
    C(-security)) is a security update.
  - The package lists are not refreshed (that would change the host); their age is reported in
    RV(lists_age_days), so that few pending updates on old lists are read as such.
  - Also reports the packages on hold, whether C(unattended-upgrades) is installed and enabled
    (C(APT::Periodic::Unattended-Upgrade)) and when it last ran, and whether the host asks for a reboot
    (C(/run/reboot-required)).
author:
  - hostguard.hosting contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - hostguard.hosting.read_only
seealso:
  - name: unattended-upgrades
    description: Debian's automatic installation of security updates.
    link: https://wiki.debian.org/UnattendedUpgrades
"""

EXAMPLES = r"""
- name: Read the pending updates
  hostguard.hosting.pending_updates_info:
  register: updates

- name: Name the security updates not installed
  ansible.builtin.debug:
    msg: "{{ updates.summary.security }} security updates pending: {{ updates.security | join(', ') }}"
"""

RETURN = r"""
upgrades:
  description: Every package an upgrade would install or upgrade.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: The package., type: str}
    installed: {description: The installed version (null for a new package)., type: str}
    candidate: {description: The version an upgrade installs., type: str}
    arch: {description: The architecture., type: str}
    sources:
      description: The archives the candidate comes from (C(label), C(version), C(archive)).
      type: list
      elements: dict
    security: {description: Whether the candidate comes from a security archive., type: bool}
  sample:
    - name: libgcrypt20
      installed: 1.10.1-3
      candidate: 1.10.1-3+deb12u1
      arch: amd64
      sources:
        - {label: Debian, version: "12.15", archive: oldstable}
        - {label: Debian-Security, version: "12", archive: oldstable-security}
      security: true
security:
  description: The names of the packages with a security update pending.
  returned: always
  type: list
  elements: str
held:
  description: The packages on hold (C(apt-mark showhold)), which an upgrade leaves as they are.
  returned: always
  type: list
  elements: str
lists_updated:
  description: When the package lists were last refreshed (ISO 8601 in UTC), or null where none were.
  returned: always
  type: str
lists_age_days:
  description: Their age in days.
  returned: always
  type: float
unattended_upgrades:
  description: Whether C(unattended-upgrades) is installed and enabled, whether the lists are refreshed daily, and its last run.
  returned: always
  type: dict
  sample: {installed: true, enabled: true, lists_refreshed: true, last_run: "2026-12-05T06:25:12+00:00"}
reboot_required:
  description: Whether C(/run/reboot-required) exists (an updated kernel or library waits for a reboot).
  returned: always
  type: bool
summary:
  description: Counts of pending upgrades, security updates and held packages.
  returned: always
  type: dict
  sample: {upgrades: 136, security: 93, held: 0}
"""

import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostguard.hosting.plugins.module_utils.pending_updates import UpdatesError, report


def _mtime(path):
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None


def _listdir(path):
    try:
        return os.listdir(path)
    except OSError:
        return []


def main():
    module = AnsibleModule(argument_spec={}, supports_check_mode=True)

    def run(argv):
        # apt's output is parsed: the C locale keeps its words as the parser knows them.
        return module.run_command(argv, environ_update={"LC_ALL": "C", "LANG": "C"})

    try:
        result = report(run, _mtime, _listdir, time.time())
    except UpdatesError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
