#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: account_cleanup_info
short_description: Report unused and leavers' accounts (system, FTP, mail) and locks no longer in force
version_added: "0.2.0"
description:
  - What M(hostguard.hosting.account_cleanup) reports in its V(report) mode, from a module that has no other mode -
    the accounts unused for O(unused_days) (last login from lastlog, wtmp, the journal, vsftpd's log and Dovecot's
    last_login; creation evidence where there is none) and those named in O(remove), and every lock
    M(hostguard.hosting.account_cleanup) recorded with its state (V(in_force), V(undone), V(gone)).
  - Protected accounts (root, uids below O(min_uid), C(nobody), O(keep), the connecting account) are never flagged;
    naming one in O(remove) fails, naming it.
  - Reads only; it runs the core in check mode, so it cannot change anything whatever a caller passes.
author:
  - hostguard.hosting contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - hostguard.hosting.read_only
options:
  unused_days:
    description: An account whose last use (or creation) is older than this many days is flagged.
    type: int
    default: 180
  min_uid:
    description: System accounts with a uid below this are protected.
    type: int
    default: 1000
  keep:
    description: Accounts never flagged.
    type: list
    elements: str
    default: []
  remove:
    description: Leavers, flagged whatever their last use.
    type: list
    elements: str
    default: []
  connection_user:
    description: The account Ansible connects as (C(ansible_user)); it is protected.
    type: str
  state_dir:
    description: Where M(hostguard.hosting.account_cleanup) keeps its lock records.
    type: path
    default: /var/lib/hostguard/account_cleanup
  pureftpd_passwd:
    description: pure-ftpd's virtual users file.
    type: path
    default: /etc/pure-ftpd/pureftpd.passwd
notes:
  - Run it as root (C(become=true)); it reads C(/etc/shadow) and the login records.
"""

EXAMPLES = r"""
- name: Find the accounts nobody used for a year
  hostguard.hosting.account_cleanup_info:
    unused_days: 365
    keep: [deploy]
  register: unused
"""

RETURN = r"""
accounts:
  description: Each flagged account with its kind, last use and its source, the reason, and V(reported) as action.
  returned: always
  type: list
  elements: dict
  sample:
    - {name: tanaka, kind: system, last_used: "2025-02-01T09:12:44Z", last_used_source: lastlog,
       reason: "no login for 297 days (last: 2025-02-01T09:12:44Z, lastlog)", action: reported}
locks:
  description: Every recorded lock with its C(state) (V(in_force), V(undone), V(gone)), what was C(undone), and why the
    account is C(protected) now (or null).
  returned: always
  type: list
  elements: dict
protected:
  description: Accounts that would be flagged but are protected, with the reason.
  returned: always
  type: list
  elements: dict
absent:
  description: Names in O(remove) that exist nowhere on the host.
  returned: always
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostguard.hosting.plugins.module_utils.account_cleanup import (
    AccountCleanupError,
    Paths,
    command_runner,
    journal_command,
    run,
    session_users,
)


def main():
    module = AnsibleModule(
        argument_spec={
            "unused_days": {"type": "int", "default": 180},
            "min_uid": {"type": "int", "default": 1000},
            "keep": {"type": "list", "elements": "str", "default": []},
            "remove": {"type": "list", "elements": "str", "default": []},
            "connection_user": {"type": "str"},
            "state_dir": {"type": "path", "default": "/var/lib/hostguard/account_cleanup"},
            "pureftpd_passwd": {"type": "path", "default": "/etc/pure-ftpd/pureftpd.passwd"},
        },
        supports_check_mode=True,
    )
    params = module.params
    paths = Paths(state_dir=params["state_dir"], pureftpd_passwd=params["pureftpd_passwd"],
                  pureftpd_pdb=os.path.join(os.path.dirname(params["pureftpd_passwd"]), "pureftpd.pdb"))

    def output(argv):
        """A command's output, or None where it is missing or fails (the account kinds it serves are then absent)."""
        if not module.get_bin_path(argv[0]):
            return None
        rc, out, _err = module.run_command(argv)
        return out if rc == 0 else None

    try:
        result = run(paths, command_runner(module.run_command, module.get_bin_path), mode="report",
                     unused_days=params["unused_days"], min_uid=params["min_uid"], keep=params["keep"],
                     remove=params["remove"], connection_users=session_users(params["connection_user"]),
                     doveconf_text=output(["doveconf", "-n"]), journal_text=output(journal_command()), check_mode=True)
    except AccountCleanupError as exc:
        module.fail_json(msg=str(exc))
    result.pop("diff", None)
    result["changed"] = False
    module.exit_json(**result)


if __name__ == "__main__":
    main()
