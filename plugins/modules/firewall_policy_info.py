#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: firewall_policy_info
short_description: Tell whether the policy the firewall role recorded is the one in force
version_added: "0.2.0"
description:
  - Reads the policy the C(hostguard.hosting.firewall) role recorded (O(path)) and checks it against the live
    firewall - the digest the live nftables table C(inet hostguard) carries in its comment, or, with firewalld,
    whether the role's zone C(hostguard) is the default zone. A recorded policy that is not live is reported as
    not in force.
  - Reads only.
author:
  - hostguard.hosting contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - hostguard.hosting.read_only
options:
  path:
    description: The record the firewall role wrote (its C(firewall_record_path)).
    type: path
    default: /etc/hostguard/firewall-policy.json
notes:
  - Run it as root (C(become=true)); C(nft) and C(firewall-cmd) need it.
"""

EXAMPLES = r"""
- name: Read whether the recorded firewall policy is live
  hostguard.hosting.firewall_policy_info:
  register: firewall

- name: Fail when it is not
  ansible.builtin.assert:
    that: firewall.in_force or not firewall.recorded
    fail_msg: "the {{ firewall.backend }} rules live are not the recorded policy"
"""

RETURN = r"""
recorded:
  description: Whether the role recorded a policy at O(path).
  returned: always
  type: bool
backend:
  description: V(nftables) or V(firewalld); null without a record.
  returned: always
  type: str
in_force:
  description: Whether the recorded policy is the live one.
  returned: always
  type: bool
live:
  description: The digest the live nftables table carries, or firewalld's default zone; null where there is none.
  returned: always
  type: str
record:
  description: The recorded policy (who may reach which port; see the firewall role), empty without one.
  returned: always
  type: dict
  sample: {backend: nftables, digest: "3f1c...", admin_sources: [198.51.100.0/24], guard: null, services: []}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostguard.hosting.plugins.module_utils.firewall_policy import FirewallPolicyError, policy_state


def main():
    module = AnsibleModule(argument_spec={"path": {"type": "path", "default": "/etc/hostguard/firewall-policy.json"}},
                           supports_check_mode=True)

    def run(argv):
        binary = module.get_bin_path(argv[0], opt_dirs=["/usr/sbin", "/sbin"])
        if binary is None:
            return 127, "", f"{argv[0]}: command not found"
        return module.run_command([binary] + argv[1:], environ_update={"LANG": "C", "LC_ALL": "C"})

    try:
        result = policy_state(module.params["path"], run)
    except (FirewallPolicyError, OSError) as error:
        module.fail_json(msg=str(error))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
