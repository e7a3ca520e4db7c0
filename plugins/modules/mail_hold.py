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
    more mail than allowed, it put the account's queued messages on hold and added a HOLD rule for its uid to the
    watch's Postfix header_checks map, so that its new mail is held at submission.
  - O(state=released) takes the uid's rule out of the map, reloads Postfix, and releases from hold
    (C(postsuper -H)) every message the watch held for it. The service sees the release and counts the account's
    mail from zero again.
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
  hold_map:
    description: The watch's header_checks map.
    type: path
    default: /etc/postfix/hostguard-watch-hold.regexp
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
  - Postfix (C(postsuper), C(postfix)) on the managed host
"""

EXAMPLES = r"""
- name: Let site1's mail go again, once its contact form is fixed
  hostguard.hosting.mail_hold:
    uid: 2001
    state: released
"""

RETURN = r"""
was_held:
  description: Whether the map held the uid.
  returned: always
  type: bool
released:
  description: How many messages C(postsuper -H) released (what it would release, in check mode).
  returned: always
  type: int
queue_ids:
  description: How many message ids the watch had recorded as held for the uid.
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostguard.hosting.plugins.module_utils import watch_mail


def main():
    module = AnsibleModule(
        argument_spec=dict(
            uid=dict(type="int", required=True),
            state=dict(type="str", choices=["released"], default="released"),
            hold_map=dict(type="path", default="/etc/postfix/hostguard-watch-hold.regexp"),
            state_dir=dict(type="path", default="/var/lib/hostguard/watch"),
        ),
        supports_check_mode=True,
    )
    uid, hold_map, state_dir = module.params["uid"], module.params["hold_map"], module.params["state_dir"]
    if uid < 0:
        module.fail_json(msg=f"uid: expected a uid (0 or more), got {uid}")

    def run(argv, stdin=None):
        return module.run_command(argv, data=stdin, binary_data=True)

    if module.check_mode:
        pending = watch_mail.held_queue_ids(state_dir, uid)
        was_held = uid in watch_mail.read_held_uids(hold_map)
        module.exit_json(changed=was_held or bool(pending), was_held=was_held, released=len(pending),
                         queue_ids=len(pending))
    try:
        result = watch_mail.release(state_dir, hold_map, uid, run)
    except (OSError, RuntimeError) as exc:
        module.fail_json(msg=f"releasing uid {uid}: {exc}")
    module.exit_json(changed=result["was_held"] or result["released"] > 0, was_held=result["was_held"],
                     released=result["released"], queue_ids=result["queue_ids"])


if __name__ == "__main__":
    main()
