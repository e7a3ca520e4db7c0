#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: account_password
short_description: Give a system account a new password so that its old one never works again, and lift its lock
version_added: "0.1.0"
description:
  - The leaked-password runbook's step for a mailbox (Dovecot's PAM passdb serves system accounts) or another
    customer's system account whose password someone else used.
  - Sets O(password) with C(chpasswd) (the host's own hashing; the password goes on its standard input, never on
    a command line) while the lock that hostguard-watch or M(hostguard.hosting.account_cleanup) recorded is still
    in force. That lock expired the account, so every login is refused until it is lifted, and C(chpasswd) has
    replaced the locked old hash, so the old password is never accepted again, not for an instant.
  - Then ends the account's open Dovecot sessions (C(doveadm kick)), which were opened with the old password,
    and, with O(unlock), lifts the recorded lock with the new password in place - the expiry is put back, the
    password field left alone - keeping the lock record, closed, with C(unlocked_at) and
    C(unlocked_with=new_password) (M(hostguard.hosting.account_locks_info) shows it as V(unlocked)). Without
    O(unlock) the password is locked again, so that the lock stays whole.
  - Records the change in O(record_dir)C(/ACCOUNT.json) (no password, no hash), where the audit reads it back.
  - Every run is a change - a second run sets a second password - so the module always reports changed.
    Accounts under O(min_uid) and root are refused, and an account the host does not have, before any change.
author:
  - hostguard.hosting contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Changes nothing; says whether a lock would be lifted and how many sessions are open now.
  diff_mode:
    support: full
  platform:
    platforms: posix
options:
  account:
    description: The system account (a name from C(/etc/passwd)).
    type: str
    required: true
  password:
    description:
      - The new password, 8 or more characters on one line (draw it with the C(hostguard.hosting.strong_password)
        lookup). Required, except in check mode, which sets nothing.
    type: str
  unlock:
    description: Lift the account's recorded lock once the new password is in place.
    type: bool
    default: true
  record_dir:
    description: Where the change is recorded on the host (the audit's C(audit_password_changes_dir)).
    type: path
    default: /var/lib/hostguard/password_changes
  state_dir:
    description: Where M(hostguard.hosting.account_cleanup) and hostguard-watch record their locks.
    type: path
    default: /var/lib/hostguard/account_cleanup
  min_uid:
    description: Accounts with a lower uid are the system's own, never changed.
    type: int
    default: 1000
requirements:
  - C(chpasswd) and C(chage) (Debian's C(passwd)); C(doveadm) where Dovecot runs
notes:
  - Run it as root (C(become=true)).
  - Dovecot 2.4's C(doveadm kick) says how many connections it ended; 2.3's names the users only, so there the
    count is what C(doveadm who) listed just before.
seealso:
  - module: hostguard.hosting.account_cleanup
  - module: hostguard.hosting.account_locks_info
"""

EXAMPLES = r"""
- name: Draw the new password
  ansible.builtin.set_fact:
    new_password: "{{ lookup('hostguard.hosting.strong_password', account='mbox1', domain='site1.example') }}"
  no_log: true

- name: Change it under the lock, end the sessions, lift the lock
  hostguard.hosting.account_password:
    account: mbox1
    password: "{{ new_password }}"
  become: true
"""

RETURN = r"""
account:
  description: The account.
  returned: always
  type: str
  sample: mbox1
changed_at:
  description: When the password was changed (UTC).
  returned: always
  type: str
  sample: "2026-12-07T01:30:00Z"
lock:
  description: The recorded lock found before the change (its C(locked_at), C(state) V(in_force) or V(undone), and what of it was C(undone)), or null.
  returned: always
  type: dict
  sample: {locked_at: "2026-12-07T01:20:00Z", state: in_force, undone: []}
sessions_open:
  description: The account's Dovecot connections before the change (null where C(doveadm who) could not tell).
  returned: always
  type: int
  sample: 1
sessions_ended:
  description: The sessions C(doveadm kick) ended; null in check mode.
  returned: always
  type: int
  sample: 1
unlocked:
  description: Whether the recorded lock was lifted (in check mode, whether it would be).
  returned: always
  type: bool
  sample: true
record:
  description: The change record on the host.
  returned: always
  type: str
  sample: /var/lib/hostguard/password_changes/mbox1.json
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostguard.hosting.plugins.module_utils.account_cleanup import AccountCleanupError, Paths
from ansible_collections.hostguard.hosting.plugins.module_utils.account_password import PasswordChangeError, change


def main():
    module = AnsibleModule(
        argument_spec=dict(
            account=dict(type="str", required=True),
            password=dict(type="str", no_log=True),
            unlock=dict(type="bool", default=True),
            record_dir=dict(type="path", default="/var/lib/hostguard/password_changes"),
            state_dir=dict(type="path", default="/var/lib/hostguard/account_cleanup"),
            min_uid=dict(type="int", default=1000),
        ),
        supports_check_mode=True,
    )
    params = module.params

    def run(argv, data=None):
        if not module.get_bin_path(argv[0]):
            return 127, "", "%s: command not found" % argv[0]
        return module.run_command(argv, data=data, environ_update={"LANG": "C", "LC_ALL": "C"})

    try:
        result = change(Paths(state_dir=params["state_dir"]), run, params["account"], params["password"],
                        unlock=params["unlock"], record_dir=params["record_dir"], min_uid=params["min_uid"],
                        check_mode=module.check_mode)
    except (PasswordChangeError, AccountCleanupError, OSError, ValueError) as exc:
        module.fail_json(msg=str(exc))
    lock = result["lock"]
    before = "password: the old one\nlock: %s\nsessions: %s\n" % (
        lock["state"] if lock else "none recorded", result["sessions_open"])
    after = "password: a new one\nlock: %s\nsessions: 0\n" % (
        "lifted (with the new password)" if result["unlocked"] else lock["state"] if lock else "none recorded")
    if module._diff:
        result["diff"] = {"before": before, "after": after, "before_header": result["account"],
                          "after_header": result["account"]}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
