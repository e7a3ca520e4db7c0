#!/usr/bin/python
# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: firewalld_policy
short_description: Put one firewalld zone and its ipsets in place, with a rollback the host runs by itself
version_added: "0.1.0"
description:
  - Writes a zone (C(zones/hostguard.xml)) and ipsets (C(ipsets/hg_*.xml)) under firewalld's permanent configuration
    directory, removes stale ipsets of its own, makes the zone the default zone (the C(DefaultZone) line of
    C(firewalld.conf)), and reloads firewalld, or starts it when it is stopped. No other zone, ipset, service or
    policy file is touched.
  - The new configuration is checked with C(firewall-offline-cmd --system-config COPY --check-config) on a staging copy
    of the whole directory before any live file changes. firewalld loads a configuration with a bad rule or entry by
    dropping it with a warning; such a warning counts as a refusal here.
  - Before writing, saves the files it changes and arms a transient systemd timer that puts them back and reloads
    after O(rollback_seconds). Call the module again with O(state=confirmed) once the controller has reconnected
    through the new rules; if it cannot, the host rolls back by itself.
  - Compares the files and the runtime default zone, so a second run with the same files changes nothing.
author:
  - hostguard.hosting contributors (!UNKNOWN)
options:
  state:
    description:
      - V(loaded) puts O(files) in place if they differ, or reloads if they are not in force, and arms the rollback.
      - V(confirmed) stops a pending rollback, keeping the new configuration.
    type: str
    choices: [loaded, confirmed]
    default: loaded
  files:
    description:
      - Path relative to O(config_dir) to file content, as rendered by the C(hostguard.hosting.firewall_plan) filter
        (its C(firewalld) key). Only C(zones/hostguard.xml) and C(ipsets/hg_*.xml) are accepted.
      - Required with O(state=loaded). With O(state=confirmed), the module fails when the files on disk or the runtime
        default zone are not these (a rollback that fired before the confirmation put the previous ones back).
    type: dict
  zone:
    description: The zone to make the default zone.
    type: str
    default: hostguard
  config_dir:
    description: firewalld's permanent configuration directory.
    type: path
    default: /etc/firewalld
  rollback_seconds:
    description:
      - Seconds after which the host puts the previous configuration back unless confirmed. V(0) applies without a
        rollback.
    type: int
    default: 60
  backup_dir:
    description:
      - Where the previous files and the script that puts them back are kept. Its parent also holds the short-lived
        staging copy that is checked.
    type: path
    default: /var/lib/hostguard/firewall/firewalld-previous
attributes:
  check_mode:
    description: Reports which files would change, without writing, checking, reloading or arming anything.
    support: full
  diff_mode:
    description: Shows a unified diff of every file that would change.
    support: full
requirements:
  - firewalld (C(firewall-cmd), C(firewall-offline-cmd)) and systemd (C(systemd-run)) on the managed host
seealso:
  - module: hostguard.hosting.nftables_table
"""

EXAMPLES = r"""
- name: Put the policy in place, armed to roll back in 60 s
  hostguard.hosting.firewalld_policy:
    files: "{{ firewall_plan.firewalld }}"
    rollback_seconds: 60
  register: firewall_load

- name: Reconnect through the new rules
  ansible.builtin.meta: reset_connection

- name: Prove the controller still gets in
  ansible.builtin.wait_for_connection:
    timeout: 30

- name: Keep the new configuration
  hostguard.hosting.firewalld_policy:
    state: confirmed
    files: "{{ firewall_plan.firewalld }}"
"""

RETURN = r"""
files:
  description: The files (relative to O(config_dir)) that were, or in check mode would be, written or removed.
  returned: state=loaded
  type: list
  elements: str
  sample: [firewalld.conf, ipsets/hg_admin_v4.xml, zones/hostguard.xml]
started:
  description: Whether firewalld was (or in check mode would be) started because it was not running.
  returned: state=loaded
  type: bool
rollback_armed:
  description: Whether a rollback timer was armed (loaded) or was pending and stopped (confirmed).
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostguard.hosting.plugins.module_utils import firewalld, rollback


def main():
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["loaded", "confirmed"], "default": "loaded"},
            "files": {"type": "dict"},
            "zone": {"type": "str", "default": "hostguard"},
            "config_dir": {"type": "path", "default": "/etc/firewalld"},
            "rollback_seconds": {"type": "int", "default": 60},
            "backup_dir": {"type": "path", "default": "/var/lib/hostguard/firewall/firewalld-previous"},
        },
        required_if=[("state", "loaded", ("files",))],
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
                armed = firewalld.confirm(run, params["config_dir"], params["files"], params["zone"])
            module.exit_json(changed=armed, rollback_armed=armed)
        result = firewalld.apply(run, params["config_dir"], params["files"], params["zone"],
                                 params["rollback_seconds"], params["backup_dir"], module.check_mode)
    except (firewalld.FirewalldError, rollback.RollbackError, OSError) as error:
        module.fail_json(msg=str(error))
    changes_diff = result.pop("diff")
    if module._diff:
        result["diff"] = changes_diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
