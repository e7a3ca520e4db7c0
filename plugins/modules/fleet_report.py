#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fleet_report
short_description: Write the audit's fleet report (one HTML page and JSON) on the controller
version_added: "0.2.0"
description:
  - Takes every host's C(hostguard_audit) (the result of the C(hostguard.hosting.audit) role) and writes
    C(report.json) and C(index.html) in O(dir) on the controller, each atomically.
  - C(report.json) is described by C(roles/audit/files/hostguard_fleet_report.schema.json) - the time, the fleet's
    counts, each host's result, and the C(changes) since the C(report.json) a previous run left in O(dir)
    (findings new and closed, hosts added and removed).
  - C(index.html) is one self-contained page (inline CSS, no script, no external asset) - what changed at the top,
    a table of the hosts sorted by worst finding with one red, amber or green cell per facet, each also labelled
    in words, and each host's findings with their evidence and remedy below. Every string a host reported is
    escaped.
  - Never reports C(changed) - the report is the audit's output on the controller, not a change to a host, and
    the audit changes nothing; C(fleet_changed) says whether the fleet changed since the previous report (a first
    report, a finding new or closed, a host added or removed). In check mode nothing is written.
  - A host of the previous report that is still in the inventory but not in this run (C(--limit)) is named as not
    audited, not as removed.
  - The audit role runs it once per play at its end (C(audit_report_enabled), C(audit_report_dir)).
author:
  - hostguard.hosting contributors (!UNKNOWN)
options:
  dir:
    description:
      - The directory on the controller for C(report.json) and C(index.html); created (mode 0700) if missing. The
        files are written mode 0600 - they name accounts, paths and addresses.
      - Refused inside a directory named in O(inventory_sources) - Ansible would read the report as inventory.
    type: path
    required: true
  hosts:
    description:
      - The inventory names of the hosts to report on (C(ansible_play_hosts_all)); each one's C(hostguard_audit) fact
        is its result. A host without the fact (unreachable, or the audit failed on it) is listed as having no
        result.
    type: list
    elements: str
    required: true
  inventory_sources:
    description: The inventory sources of the run (C(ansible_inventory_sources)), to refuse a O(dir) inside one.
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - action_common_attributes
  - action_common_attributes.conn
  - action_common_attributes.flow
attributes:
  action:
    support: full
  async:
    support: none
  become:
    support: none
  bypass_host_loop:
    support: none
  connection:
    support: none
  check_mode:
    support: full
    details: Writes nothing; reports whether the report would say something new.
  delegation:
    support: none
    details: Always runs on the controller.
  diff_mode:
    support: full
    details: The findings of the previous report and of this one, one line each, where the fleet changed.
  platform:
    platforms: all
"""

EXAMPLES = r"""
- name: Write the fleet report once the audit ran on every host
  hostguard.hosting.fleet_report:
    dir: "{{ inventory_dir }}/hostguard-report"
    hosts: "{{ ansible_play_hosts_all }}"
    inventory_sources: "{{ ansible_inventory_sources }}"
  run_once: true
  register: fleet

- name: Show the fleet at a glance
  ansible.builtin.debug:
    msg: "{{ fleet.summary }}"
  run_once: true
"""

RETURN = r"""
dir:
  description: The report's directory.
  returned: always
  type: str
paths:
  description: The files written (none in check mode).
  returned: always
  type: list
  elements: str
  sample: [/srv/ansible/inventories/prod/hostguard-report/report.json, /srv/ansible/inventories/prod/hostguard-report/index.html]
fleet_changed:
  description: Whether the fleet changed since the previous report - a first report, a finding new or closed, a host
    added or removed.
  returned: always
  type: bool
written:
  description: Whether the files were written.
  returned: always
  type: bool
summary:
  description: The lines for the terminal - the hosts by worst finding with their counts, and what changed.
  returned: always
  type: list
  elements: str
  sample: ["fleet: 2 hosts: 1 critical, 1 ok", "web1: critical (1 critical, 2 warning, 0 info)",
           "mail1: ok (0 critical, 0 warning, 0 info)", "since 2026-12-07T06:00:04Z: 1 new findings; 0 closed"]
changes:
  description: What changed since the previous report (C(changes) of C(report.json)).
  returned: always
  type: dict
  sample: {previous: "2026-12-07T06:00:04Z", hosts_added: [], hosts_removed: [], hosts_not_audited: [], closed: [],
           new: [{host: web1, facet: integrity, severity: critical, summary: "/var/www/site1/x.php looks planted (php_eval)"}]}
"""
