#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: watch_events_info
short_description: Read what hostguard-watch saw on a host since a given number of days
version_added: "0.3.0"
description:
  - Reads the events log of C(hostguard-watch) (role M(hostguard.hosting.watch)), one JSON object a line, from its
    end back to O(days) days ago, and returns those events (the newest O(limit)) with a count per kind.
  - Lines cut short are counted as C(malformed) and skipped.
  - Reads only.
author:
  - hostguard.hosting contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - hostguard.hosting.read_only
options:
  path:
    description: The events log.
    type: path
    default: /var/lib/hostguard/watch/events.jsonl
  days:
    description: How far back to read.
    type: int
    default: 7
  limit:
    description: Return at most this many events, the newest.
    type: int
    default: 200
  mta:
    description:
      - The MTA whose hold map and list of held SASL users are read back (C(held)); V(auto) takes the one the host has.
    type: str
    choices: [auto, postfix, exim]
    default: auto
"""

EXAMPLES = r"""
- name: What the watch saw this week
  hostguard.hosting.watch_events_info:
    days: 7
  register: watch_week
"""

RETURN = r"""
present:
  description: Whether the events log exists (false where the watch is not installed or has seen nothing yet).
  returned: always
  type: bool
events:
  description: The events, oldest first, each as the service wrote it (C(time), C(host), C(kind), C(summary), C(severity), evidence).
  returned: always
  type: list
  elements: dict
counts:
  description: Events per kind in the period (all of them, also beyond O(limit)).
  returned: always
  type: dict
malformed:
  description: Lines that were not a whole event.
  returned: always
  type: int
truncated:
  description: Whether there were more events than O(limit).
  returned: always
  type: bool
held:
  description:
    - The uids and SASL users whose mail the watch's containment holds now, read from the MTA's hold map and list
      (what the MTA consults, not what the events say); empty lists where the host has no MTA or nothing is held.
  returned: always
  type: dict
  sample: {"uids": [2001], "sasl_users": []}
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostguard.hosting.plugins.module_utils.watch_events import read_events
from ansible_collections.hostguard.hosting.plugins.module_utils.watch_mail import held_now


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", default="/var/lib/hostguard/watch/events.jsonl"),
            days=dict(type="int", default=7),
            limit=dict(type="int", default=200),
            mta=dict(type="str", default="auto", choices=["auto", "postfix", "exim"]),
        ),
        supports_check_mode=True,
    )
    if module.params["days"] < 1 or module.params["limit"] < 1:
        module.fail_json(msg=f"days and limit must be 1 or more, got days={module.params['days']}, "
                             f"limit={module.params['limit']}")
    try:
        result = read_events(module.params["path"], time.time() - module.params["days"] * 86400,
                             module.params["limit"])
    except OSError as exc:
        module.fail_json(msg=f"{module.params['path']}: cannot be read: {exc.strerror}")
    try:
        result["held"] = held_now(module.params["mta"])
    except OSError as exc:
        module.fail_json(msg=f"the watch's hold map cannot be read: {exc}")
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
