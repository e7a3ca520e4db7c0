#!/usr/bin/python
# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: nftables_table
short_description: Load one nftables table atomically, with a rollback the host runs by itself
version_added: "0.1.0"
description:
  - Makes the live nftables table the one described by a ruleset file, replacing that table only;
    other tables (fail2ban's, Docker's, the administrator's) are never flushed or edited.
  - Compares by the digest that the table's comment carries (as written by the C(firewall) role),
    read from C(nft list), so a second run with the same file changes nothing.
  - Before loading, saves the current table and arms a transient systemd timer that restores it
    after O(rollback_seconds). Call the module again with O(state=confirmed) once the controller
    has reconnected through the new rules; if it cannot, the host rolls back by itself.
author:
  - hostguard.hosting contributors (!UNKNOWN)
options:
  state:
    description:
      - V(loaded) loads O(path) if the live table differs from it, and arms the rollback.
      - V(confirmed) stops a pending rollback, keeping the loaded table.
    type: str
    choices: [loaded, confirmed]
    default: loaded
  path:
    description:
      - The ruleset file, an nft script that replaces the table (C(table ...; delete table ...; table ... {...})).
      - Required with O(state=loaded).
    type: path
  digest:
    description:
      - The sha256 digest the file's table comment carries; the live table is left alone when it carries the same.
      - Required with O(state=loaded). With O(state=confirmed), the module fails when the live table does not carry
        it (a rollback that fired before the confirmation put the previous table back).
    type: str
  family:
    description: The table's address family.
    type: str
    default: inet
  table:
    description: The table's name.
    type: str
    default: hostguard
  rollback_seconds:
    description:
      - Seconds after which the host restores the previous table unless confirmed. V(0) loads without a rollback.
    type: int
    default: 60
  rollback_path:
    description: Where the script that restores the previous table is kept.
    type: path
    default: /var/lib/hostguard/firewall/rollback.nft
attributes:
  check_mode:
    description: Reports whether the live table would be replaced, without loading or arming anything.
    support: full
  diff_mode:
    description: The ruleset's diff is shown by the task that writes the file, not by this module.
    support: none
requirements:
  - nftables (C(nft)) and systemd (C(systemd-run)) on the managed host
"""

EXAMPLES = r"""
- name: Load the firewall table, armed to roll back in 60 s
  hostguard.hosting.nftables_table:
    path: /etc/hostguard/firewall.nft
    digest: "{{ firewall_plan.digest }}"
    rollback_seconds: 60
  register: firewall_load

- name: Reconnect through the new rules
  ansible.builtin.meta: reset_connection

- name: Prove the controller still gets in
  ansible.builtin.wait_for_connection:
    timeout: 30

- name: Keep the new rules
  hostguard.hosting.nftables_table:
    state: confirmed
"""

RETURN = r"""
digest:
  description: The digest of the table that is (or in check mode would be) live.
  returned: state=loaded
  type: str
previous_digest:
  description: The digest the live table carried before, or null when it had none or did not exist.
  returned: state=loaded
  type: str
table_existed:
  description: Whether the table existed before this run.
  returned: state=loaded
  type: bool
rollback_armed:
  description: Whether a rollback timer was armed (loaded) or was pending and stopped (confirmed).
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostguard.hosting.plugins.module_utils import nftables, rollback


def main():
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["loaded", "confirmed"], "default": "loaded"},
            "path": {"type": "path"},
            "digest": {"type": "str"},
            "family": {"type": "str", "default": "inet"},
            "table": {"type": "str", "default": "hostguard"},
            "rollback_seconds": {"type": "int", "default": 60},
            "rollback_path": {"type": "path", "default": "/var/lib/hostguard/firewall/rollback.nft"},
        },
        required_if=[("state", "loaded", ("path", "digest"))],
        supports_check_mode=True,
    )
    params = module.params
    if params["rollback_seconds"] < 0:
        module.fail_json(msg=f"rollback_seconds: {params['rollback_seconds']} must be 0 or more")

    def run(argv):
        return module.run_command(argv, environ_update={"LANG": "C", "LC_ALL": "C"})

    try:
        if params["state"] == "confirmed":
            if module.check_mode:
                armed = rollback.armed(run)
            else:
                armed = nftables.confirm(run, params["family"], params["table"], params["digest"])
            module.exit_json(changed=armed, rollback_armed=armed)
        result = nftables.load(run, params["path"], params["family"], params["table"], params["digest"],
                               params["rollback_seconds"], params["rollback_path"], module.check_mode)
    except (nftables.NftablesError, rollback.RollbackError, OSError, ValueError) as error:
        module.fail_json(msg=str(error))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
