#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: account_locks_info
short_description: Check that every lock account_cleanup recorded is still in force
version_added: "0.1.0"
description:
  - Reads the lock records that M(hostguard.hosting.account_cleanup) wrote under O(state_dir)C(/locks) and checks
    each lock on the host as it is now. A system account must have its password locked (a C(!) before its hash in
    C(/etc/shadow)) and be expired (expiry day 0, so that sshd refuses its keys and PAM every service); a Dovecot passwd-file
    user must have C(nologin=y) and C(fail=y) on its line; a pure-ftpd or vsftpd virtual user must be absent from
    C(pureftpd.passwd) or the C(pam_userdb) database (read with C(db_dump)).
  - An account that no longer exists is V(gone) (nothing is left to log in with). A lock of an account that is
    protected now (root, the account Ansible connects as, one in O(keep), a uid below O(min_uid)) is named as such.
  - A lock that M(hostguard.hosting.account_password) lifted once the account had a new password is V(unlocked),
    with C(unlocked_at) and C(unlocked_with) (V(new_password)); its record is kept, closed.
  - Changes nothing.
author:
  - hostguard.hosting contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - hostguard.hosting.read_only
options:
  keep:
    description: Accounts protected by account_cleanup_keep.
    type: list
    elements: str
    default: []
  min_uid:
    description: System accounts with a uid below this are protected.
    type: int
    default: 1000
  connection_user:
    description: The account Ansible connects as (C(ansible_user)); it is protected.
    type: str
  state_dir:
    description: Where M(hostguard.hosting.account_cleanup) keeps its lock records.
    type: path
    default: /var/lib/hostguard/account_cleanup
requirements:
  - C(db_dump) (Debian's C(db-util)) where vsftpd virtual users were locked
notes:
  - Run it as root (C(become=true)), since it reads C(/etc/shadow).
"""

EXAMPLES = r"""
- name: Check the recorded locks
  hostguard.hosting.account_locks_info:
  register: locks

- name: Fail on a lock that was undone
  ansible.builtin.assert:
    that: locks.problems | length == 0
    fail_msg: "{{ locks.problems | join('; ') }}"
"""

RETURN = r"""
locks:
  description: Every recorded lock, with its C(state) (V(in_force), V(undone), V(gone) or V(unlocked), the last with
    C(unlocked_at) and C(unlocked_with)), what of it was C(undone), and why the account is C(protected) now (or null).
  returned: always
  type: list
  elements: dict
  sample:
    - name: oldssh
      kind: system
      store: null
      locked_at: "2026-11-02T03:00:00Z"
      state: undone
      undone: ["password unlocked in /etc/shadow"]
      protected: null
problems:
  description: One sentence per lock of an unprotected account that is not in force; empty when every one is.
  returned: always
  type: list
  elements: str
  sample: ["system oldssh (locked 2026-11-02T03:00:00Z): password unlocked in /etc/shadow"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostguard.hosting.plugins.module_utils.account_cleanup import (
    AccountCleanupError,
    Paths,
    command_runner,
    lock_problems,
    lock_states,
    session_users,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            keep=dict(type="list", elements="str", default=[]),
            min_uid=dict(type="int", default=1000),
            connection_user=dict(type="str"),
            state_dir=dict(type="path", default="/var/lib/hostguard/account_cleanup"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        locks = lock_states(Paths(state_dir=params["state_dir"]), command_runner(module.run_command, module.get_bin_path),
                            keep=params["keep"], connection_users=session_users(params["connection_user"]),
                            min_uid=params["min_uid"])
    except (AccountCleanupError, OSError, ValueError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, locks=locks, problems=lock_problems(locks))


if __name__ == "__main__":
    main()
