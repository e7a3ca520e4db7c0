#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mail_queue_info
short_description: Report the Postfix or Exim mail queue and purged mail not yet deleted
version_added: "0.2.0"
description:
  - Reads the queue from the MTA's own files (Postfix's queue files, Exim's spool headers) and summarises it -
    the count, the size, the busiest senders and recipient domains, and the oldest message. A queue of thousands
    from one sender is a spam outbreak; M(hostguard.hosting.mail_queue) with O(hostguard.hosting.mail_queue#module:state=purged) deletes it.
  - Names the directories of purged Postfix messages an interrupted purge left behind
    (M(hostguard.hosting.mail_queue) with O(hostguard.hosting.mail_queue#module:state=cleaned) deletes them).
  - Reads only.
author:
  - hostguard.hosting contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - hostguard.hosting.read_only
options:
  mta:
    description: The MTA whose queue to read; V(auto) takes Postfix where C(postsuper) exists, else Exim.
    type: str
    choices: [auto, postfix, exim]
    default: auto
  queue_directory:
    description: The queue (Postfix) or spool (Exim) directory; by default the one the MTA is configured with.
    type: path
  top:
    description: How many of the busiest senders and recipient domains to name.
    type: int
    default: 20
  evidence_dir:
    description:
      - Where purges kept their evidence (the O(hostguard.hosting.mail_queue#module:export_dir) of
        M(hostguard.hosting.mail_queue)); its archives are listed in RV(evidence). Not given, none are listed.
    type: path
notes:
  - Run it as root (C(become=true)); the queue files are readable by the MTA and root only.
"""

EXAMPLES = r"""
- name: Read the mail queue
  hostguard.hosting.mail_queue_info:
    top: 5
  register: mail_queue

- name: Name the busiest sender of a large queue
  ansible.builtin.debug:
    msg: "{{ mail_queue.queue.count }} queued, {{ mail_queue.queue.by_sender[0].name }} sent the most"
  when: mail_queue.queue.count > 1000
"""

RETURN = r"""
mta:
  description: V(postfix) or V(exim).
  returned: always
  type: str
service:
  description: The MTA's systemd service (C(postfix), or the exim command's name, C(exim4) on Debian).
  returned: always
  type: str
queue_directory:
  description: The directory read.
  returned: always
  type: str
queue:
  description: The queue's summary.
  returned: always
  type: dict
  sample:
    count: 220
    size: 60280
    by_queue: {deferred: 220}
    senders: 2
    by_sender: [{name: spammer@site1.example, count: 200}, {name: info@site1.example, count: 20}]
    recipient_domains: 1
    by_recipient_domain: [{name: outside.example, count: 220}]
    oldest: {queue_id: 9E1F91A603F, sender: spammer@site1.example, arrival_time: 1795615131, age_seconds: 7200}
unreadable:
  description: Queue files that could not be read, with why.
  returned: always
  type: list
  elements: dict
held_directories:
  description: Directories of purged Postfix messages still waiting to be deleted.
  returned: always
  type: list
  elements: str
evidence:
  description:
    - The evidence archives of past purges in O(evidence_dir), newest first - C(path), C(purged_at), C(size),
      C(sha256), the number of C(messages) and the busiest senders (C(by_sender)) from the archive's manifest, and
      C(error) where the archive cannot be read.
  returned: always
  type: list
  elements: dict
  sample:
    - path: /var/lib/hostguard/evidence/mail-queue-20261206T101500Z.tar.gz
      purged_at: "2026-12-06T10:15:00Z"
      size: 48213
      sha256: 5f0c3e1b9a7d2c4e6f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6
      messages: 200
      by_sender: [{name: wordpress@site1.example, count: 200}]
      error: null
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostguard.hosting.plugins.module_utils.mail_queue import (
    MailQueueError,
    evidence_archives,
    queue_report,
)


def main():
    module = AnsibleModule(
        argument_spec={
            "mta": {"type": "str", "choices": ["auto", "postfix", "exim"], "default": "auto"},
            "queue_directory": {"type": "path"},
            "top": {"type": "int", "default": 20},
            "evidence_dir": {"type": "path"},
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        result = queue_report(module.run_command, module.get_bin_path, params["mta"], params["queue_directory"],
                              params["top"])
        result["evidence"] = evidence_archives(params["evidence_dir"], params["top"]) if params["evidence_dir"] else []
    except (MailQueueError, OSError) as error:
        module.fail_json(msg=str(error))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
