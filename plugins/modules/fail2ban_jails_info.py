#!/usr/bin/python
# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fail2ban_jails_info
short_description: Read whether fail2ban's jails are in force, changing nothing
version_added: "0.2.0"
description:
  - Asks the running fail2ban server, jail by jail, whether each jail of O(jails) runs, reads the log source it
    was configured with (the systemd journal or files) and has at least one action, as
    M(hostguard.hosting.fail2ban_enforcement) does, and names each jail that is not in force. A jail without
    actions logs its bans and blocks nobody.
  - Restarts nothing and bans nothing; M(hostguard.hosting.fail2ban_enforcement) (the bruteforce role) repairs.
author:
  - hostguard.hosting contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - hostguard.hosting.read_only
options:
  jails:
    description:
      - The jails that must be in force, name to the log source they read, V(journal) (the C(systemd) backend)
        or V(file) (C(auto), C(polling) or C(pyinotify)).
    type: dict
    required: true
  timeout:
    description: Seconds to wait for the jails of a fail2ban that is still starting them.
    type: int
    default: 5
requirements:
  - fail2ban (C(fail2ban-client)) on the managed host
"""

EXAMPLES = r"""
- name: Read whether the bruteforce role's jails are in force
  hostguard.hosting.fail2ban_jails_info:
    jails:
      sshd: journal
      recidive: file
  register: jails

- name: Name each jail that bans nobody
  ansible.builtin.debug:
    msg: "{{ jails.problems }}"
"""

RETURN = r"""
jails:
  description: Each jail of O(jails) as the server reports it.
  returned: always
  type: dict
  sample: {"sshd": {"running": true, "backend": "journal", "actions": ["nftables-multiport"]}}
problems:
  description: One sentence per jail that is not in force; empty when every jail is.
  returned: always
  type: list
  elements: str
  sample: ["jail sshd runs without any action (it would ban nobody)"]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostguard.hosting.plugins.module_utils import fail2ban


def main():
    module = AnsibleModule(
        argument_spec={
            "jails": {"type": "dict", "required": True},
            "timeout": {"type": "int", "default": 5},
        },
        supports_check_mode=True,
    )

    def run(argv):
        return module.run_command(argv, environ_update={"LANG": "C", "LC_ALL": "C"})

    if not module.get_bin_path("fail2ban-client"):
        module.exit_json(changed=False, jails={}, problems=["fail2ban is not installed (no fail2ban-client): "
                                                            "none of the jails is in force"])
    try:
        result = fail2ban.inspect(run, {name: str(kind) for name, kind in module.params["jails"].items()},
                                  timeout=module.params["timeout"])
    except fail2ban.Fail2banError as error:
        module.fail_json(msg=str(error))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
