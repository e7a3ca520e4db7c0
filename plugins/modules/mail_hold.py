#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mail_hold
short_description: Release the mail hostguard-watch held for a local account or a SASL user, or hold a SASL user
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
  - With O(sasl_user), the same for a mailbox sending through authenticated submission. The watch held its queued
    messages and listed the user where the MTA holds its new mail at the end of DATA (Postfix's
    C(check_sasl_access) map in C(smtpd_end_of_data_restrictions), staged and proven with C(postmap -q) before it
    is live; on Exim the list the watch's DATA ACL freezes authenticated users' mail of).
    O(state=held) holds a SASL user by hand (its password leaked, say) with the messages of it the watch saw queued;
    O(state=released) lets it go. Holding fails before any change (in check mode too) where the MTA does not read
    the watch's map or list (the role's mail facet not applied), where the user would be listed and its mail still flow.
  - A hold records the messages it held, and a second hold of the same user skips them, so it is no change (in check
    mode too). A message an administrator let go by hand since (C(postsuper -H) of one queue ID) is one of those;
    it stays released, as the administrator decided.
  - Release only once the sending script is dealt with (quarantined or fixed). To delete the held spam instead,
    purge it with C(playbooks/purge_mail_queue.yml), which exports it as evidence first, and then release the uid.
author:
  - hostguard.hosting contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
options:
  uid:
    description: The local account's uid whose mail is held. One of O(uid) and O(sasl_user) is required.
    type: int
  sasl_user:
    description:
      - The SASL user (the mailbox's login name, as the alert named it) whose mail is held or to hold.
      - Letters, digits and C(. _ % + @ = -), starting with a letter or digit.
    type: str
  state:
    description:
      - V(released) lets the account's or SASL user's mail go again.
      - V(held) holds a SASL user's new mail at submission and its queued messages the watch saw (O(sasl_user)
        only, since the watch holds a uid itself).
    type: str
    choices: [held, released]
    default: released
  mta:
    description: The MTA that holds the mail. V(auto) picks the one the host has (Postfix first, else Exim).
    type: str
    choices: [auto, postfix, exim]
    default: auto
  hold_map:
    description:
      - The watch's Postfix header_checks map, or its Exim list of held uids; with O(sasl_user), its Postfix
        C(check_sasl_access) map or its Exim list of held SASL users.
      - Omitted, the role's (C(/etc/postfix/hostguard-watch-hold.regexp), C(/etc/exim4/hostguard-watch/held-uids);
        C(/etc/postfix/hostguard-watch-sasl-hold), C(/etc/exim4/hostguard-watch/held-sasl-users)).
    type: path
  state_dir:
    description: The watch's state directory, where it keeps the ids of the messages it held.
    type: path
    default: /var/lib/hostguard/watch
attributes:
  check_mode:
    description: Says whether the uid or SASL user is held and how many messages would be released or held, changing nothing.
    support: full
  diff_mode:
    support: none
  platform:
    platforms: debian
requirements:
  - Postfix (C(postsuper), C(postfix), C(postmap)) or Debian's Exim (C(exim4)) on the managed host
"""

EXAMPLES = r"""
- name: Let site1's mail go again, once its contact form is fixed
  hostguard.hosting.mail_hold:
    uid: 2001
    state: released

- name: Let the mailbox info@site1.example send again, once its password is changed
  hostguard.hosting.mail_hold:
    sasl_user: info@site1.example
    state: released

- name: Hold a mailbox whose password leaked, until it is changed
  hostguard.hosting.mail_hold:
    sasl_user: info@site1.example
    state: held
"""

RETURN = r"""
mta:
  description: The MTA that held the mail.
  returned: always
  type: str
  sample: exim
was_held:
  description: Whether the map or list held the uid or SASL user before.
  returned: always
  type: bool
released:
  description: How many messages C(postsuper -H) or C(exim -Mt) released (what it would release, in check mode).
  returned: when O(state=released)
  type: int
held:
  description: How many queued messages C(postsuper -h) or C(exim -Mf) held (what it would hold, in check mode).
  returned: when O(state=held)
  type: int
queue_ids:
  description: How many message ids the watch had recorded as held for the uid or SASL user (or, holding, as queued).
  returned: always
  type: int
"""

import shutil

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostguard.hosting.plugins.module_utils import watch_mail


def main():
    module = AnsibleModule(
        argument_spec=dict(
            uid=dict(type="int"),
            sasl_user=dict(type="str"),
            state=dict(type="str", choices=["held", "released"], default="released"),
            mta=dict(type="str", choices=["auto", "postfix", "exim"], default="auto"),
            hold_map=dict(type="path"),
            state_dir=dict(type="path", default="/var/lib/hostguard/watch"),
        ),
        mutually_exclusive=[("uid", "sasl_user")],
        required_one_of=[("uid", "sasl_user")],
        supports_check_mode=True,
    )
    uid, hold_map, state_dir = module.params["uid"], module.params["hold_map"], module.params["state_dir"]
    user, state = module.params["sasl_user"], module.params["state"]
    if uid is not None and uid < 0:
        module.fail_json(msg=f"uid: expected a uid (0 or more), got {uid}")
    if user is not None:
        try:
            watch_mail.check_sasl_user(user)
        except ValueError as exc:
            module.fail_json(msg=f"sasl_user: {exc}")
    elif state == "held":
        module.fail_json(msg="state=held: only a sasl_user is held by hand (the watch holds a uid itself)")
    try:
        mta = watch_mail.resolve_mta(module.params["mta"], shutil.which)
    except ValueError as exc:
        module.fail_json(msg=f"mta: {exc}")

    def run(argv, stdin=None):
        return module.run_command(argv, data=stdin, binary_data=True)

    kind = watch_mail.MTA_TYPES[mta]
    if user is not None:
        hold_map = hold_map or kind.SASL_HOLD_MAP
        was_held = user in kind(run, sasl_map_path=hold_map).held_sasl_users()
        if state == "held":
            hold(module, mta, hold_map, state_dir, run, was_held)
        release(module, mta, f"SASL user {user}", was_held, watch_mail.held_queue_ids(state_dir, sasl_user=user),
                lambda: watch_mail.release_sasl_user(state_dir, hold_map, user, run, mta))
    hold_map = hold_map or kind.HOLD_MAP
    was_held = uid in kind(run, hold_map).held_uids()
    release(module, mta, f"uid {uid}", was_held, watch_mail.held_queue_ids(state_dir, uid),
            lambda: watch_mail.release(state_dir, hold_map, uid, run, mta))


def release(module, mta, who, was_held, pending, act):
    """Say what a release would do (check mode), or do it with `act`; exits the module."""
    if module.check_mode:
        module.exit_json(changed=was_held or bool(pending), mta=mta, was_held=was_held, released=len(pending),
                         queue_ids=len(pending))
    try:
        result = act()
    except (OSError, RuntimeError) as exc:
        module.fail_json(msg=f"releasing {who}: {exc}")
    module.exit_json(changed=result["was_held"] or result["released"] > 0, mta=mta, was_held=result["was_held"],
                     released=result["released"], queue_ids=result["queue_ids"])


def hold(module, mta, hold_map, state_dir, run, was_held):
    """Hold a SASL user by hand with its queued messages the watch saw; exits the module."""
    user = module.params["sasl_user"]
    queued = watch_mail.ids_to_hold(state_dir, user)
    if module.check_mode:
        try:
            watch_mail.require_sasl_hold_live(watch_mail.MTA_TYPES[mta](run, sasl_map_path=hold_map))
        except RuntimeError as exc:
            module.fail_json(msg=f"holding SASL user {user}: {exc}")
        module.exit_json(changed=not was_held or bool(queued), mta=mta, was_held=was_held, held=len(queued),
                         queue_ids=len(queued))
    try:
        result = watch_mail.hold_sasl_user(state_dir, hold_map, user, run, mta)
    except (OSError, RuntimeError) as exc:
        module.fail_json(msg=f"holding SASL user {user}: {exc}")
    module.exit_json(changed=not was_held or result["held"] > 0, mta=mta, was_held=was_held,
                     held=result["held"], queue_ids=result["queue_ids"])


if __name__ == "__main__":
    main()
