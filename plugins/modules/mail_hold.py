#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mail_hold
short_description: Release the mail hostguard-watch held for a local account
version_added: "0.3.0"
description:
  - When hostguard-watch (role M(hostguard.hosting.watch), C(watch_contain_mail=hold)) saw a local account send
    more mail than allowed, it held the account's queued messages and had the MTA hold its new mail at
    submission. On Postfix it put them on hold (C(postsuper -h)) and added a HOLD rule for the uid to the
    watch's header_checks map; on Exim it froze them (C(exim -Mf)) and added the uid to the list the watch's
    C(acl_not_smtp) freezes local mail of.
  - O(state=released) takes the uid out of the map (reloading Postfix) or the list, and lets go every message the
    watch held for it (C(postsuper -H), C(exim -Mt)). The service sees the release and counts the account's mail
    from zero again.
  - Release only once the sending script is dealt with (quarantined or fixed). To delete the held spam instead,
    purge it with C(playbooks/purge_mail_queue.yml), which exports it as evidence first, and then release the uid.
author:
  - hostguard.hosting contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  uid:
    description: The local account's uid whose mail is held.
    type: int
    required: true
  state:
    description: V(released) lets the account's mail go again.
    type: str
    choices: [released]
    default: released
  mta:
    description: The MTA that holds the mail. V(auto) picks the one the host has (Postfix first, else Exim).
    type: str
    choices: [auto, postfix, exim]
    default: auto
  hold_map:
    description:
      - The watch's Postfix header_checks map, or its Exim list of held uids.
      - Omitted, the role's (C(/etc/postfix/hostguard-watch-hold.regexp), C(/etc/exim4/hostguard-watch/held-uids)).
    type: path
  state_dir:
    description: The watch's state directory, where it keeps the ids of the messages it held.
    type: path
    default: /var/lib/hostguard/watch
attributes:
  check_mode:
    description: Says whether the uid is held and how many messages would be released, changing nothing.
    support: full
  diff_mode:
    support: none
  platform:
    platforms: debian
requirements:
  - Postfix (C(postsuper), C(postfix)) or Debian's Exim (C(exim4)) on the managed host
"""

EXAMPLES = r"""
- name: Let site1's mail go again, once its contact form is fixed
  hostguard.hosting.mail_hold:
    uid: 2001
    state: released
"""

RETURN = r"""
mta:
  description: The MTA that held the mail.
  returned: always
  type: str
  sample: exim
was_held:
  description: Whether the map or list held the uid.
  returned: always
  type: bool
released:
  description: How many messages C(postsuper -H) or C(exim -Mt) released (what it would release, in check mode).
  returned: always
  type: int
queue_ids:
  description: How many message ids the watch had recorded as held for the uid.
  returned: always
  type: int
"""

import shutil

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostguard.hosting.plugins.module_utils import watch_mail


def main():
    module = AnsibleModule(
        argument_spec=dict(
            uid=dict(type="int", required=True),
            state=dict(type="str", choices=["released"], default="released"),
            mta=dict(type="str", choices=["auto", "postfix", "exim"], default="auto"),
            hold_map=dict(type="path"),
            state_dir=dict(type="path", default="/var/lib/hostguard/watch"),
        ),
        supports_check_mode=True,
    )
    uid, hold_map, state_dir = module.params["uid"], module.params["hold_map"], module.params["state_dir"]
    if uid < 0:
        module.fail_json(msg=f"uid: expected a uid (0 or more), got {uid}")
    try:
        mta = watch_mail.resolve_mta(module.params["mta"], shutil.which)
    except ValueError as exc:
        module.fail_json(msg=f"mta: {exc}")
    hold_map = hold_map or watch_mail.MTA_TYPES[mta].HOLD_MAP

    def run(argv, stdin=None):
        return module.run_command(argv, data=stdin, binary_data=True)

    if module.check_mode:
        pending = watch_mail.held_queue_ids(state_dir, uid)
        was_held = uid in watch_mail.MTA_TYPES[mta](run, hold_map).held_uids()
        module.exit_json(changed=was_held or bool(pending), mta=mta, was_held=was_held, released=len(pending),
                         queue_ids=len(pending))
    try:
        result = watch_mail.release(state_dir, hold_map, uid, run, mta)
    except (OSError, RuntimeError) as exc:
        module.fail_json(msg=f"releasing uid {uid}: {exc}")
    module.exit_json(changed=result["was_held"] or result["released"] > 0, mta=mta, was_held=result["was_held"],
                     released=result["released"], queue_ids=result["queue_ids"])


if __name__ == "__main__":
    main()
