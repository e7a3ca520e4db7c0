#!/usr/bin/python
# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: fail2ban_enforcement
short_description: Prove that fail2ban's jails are in force, restarting fail2ban where a reload left them without
version_added: "0.1.0"
description:
  - Asks the running fail2ban server, jail by jail, whether each jail of O(jails) runs, reads the log source it
    was configured with (the systemd journal or files) and has at least one action (C(fail2ban-client get JAIL
    actions)). A jail without actions logs its bans and blocks nobody, as a C(fail2ban-client reload) has been
    seen to leave every jail on Debian 13.
  - Waits up to O(timeout) seconds for the jails of a fail2ban that is still starting.
  - Where a jail is missing, reads another source or has no action, restarts fail2ban (reported as a change)
    and asks again. A jail still wrong after the restart fails the module, naming the jail and what is wrong.
  - With O(probe_jail) and O(probe_address), then bans the address in that jail, requires it in the jail's set
    in fail2ban's nftables table (C(inet f2b-table)), lifts the ban and requires it gone. Use an address that
    never connects (a documentation address), since it is blocked for that moment.
author:
  - hostguard.hosting contributors (!UNKNOWN)
options:
  jails:
    description:
      - The jails that must be in force, name to the log source they read, V(journal) (the C(systemd) backend)
        or V(file) (C(auto), C(polling) or C(pyinotify)).
    type: dict
    required: true
  probe_jail:
    description: The jail to ban O(probe_address) in; an nftables ban action's jail. No test ban without it.
    type: str
  probe_address:
    description: A single IPv4 or IPv6 address to ban for a moment, not already banned in O(probe_jail).
    type: str
  timeout:
    description: Seconds to wait for fail2ban's jails to start, before and after a restart.
    type: int
    default: 30
attributes:
  check_mode:
    description:
      - Reads the jails. A restart it would make is reported as a change (RV(would_restart)) and not made, and no
        test ban is made.
    support: full
  diff_mode:
    description: Nothing to show; no file is changed.
    support: none
requirements:
  - fail2ban (C(fail2ban-client)), systemd and, for the test ban, nftables (C(nft)) on the managed host
"""

EXAMPLES = r"""
- name: Prove the jails are live and that a ban reaches nftables
  hostguard.hosting.fail2ban_enforcement:
    jails:
      sshd: journal
      recidive: file
    probe_jail: recidive
    probe_address: 203.0.113.254
"""

RETURN = r"""
jails:
  description: Each jail of O(jails) as the server reports it (after a restart, if one was made).
  returned: always
  type: dict
  sample: {"sshd": {"running": true, "backend": "journal", "actions": ["nftables-multiport"]}}
restarted:
  description: Whether fail2ban was restarted to bring jails into force.
  returned: always
  type: bool
repaired:
  description: What was wrong with each jail before the restart.
  returned: always
  type: dict
  sample: {"sshd": "runs without any action (it would ban nobody)"}
would_restart:
  description: In check mode, what a restart would repair.
  returned: in check mode, when a jail is not in force
  type: str
probe:
  description: The test ban, when one was made.
  returned: always
  type: dict
  sample: {"jail": "recidive", "address": "203.0.113.254", "set": "inet f2b-table addr-set-recidive",
           "blocked": true, "lifted": true}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostguard.hosting.plugins.module_utils import fail2ban


def main():
    module = AnsibleModule(
        argument_spec={
            "jails": {"type": "dict", "required": True},
            "probe_jail": {"type": "str"},
            "probe_address": {"type": "str"},
            "timeout": {"type": "int", "default": 30},
        },
        required_together=[("probe_jail", "probe_address")],
        supports_check_mode=True,
    )

    def run(argv):
        return module.run_command(argv, environ_update={"LANG": "C", "LC_ALL": "C"})

    params = module.params
    try:
        result = fail2ban.enforce(run, {name: str(kind) for name, kind in params["jails"].items()},
                                  probe_jail=params["probe_jail"], probe_address=params["probe_address"],
                                  check_mode=module.check_mode, timeout=params["timeout"])
    except fail2ban.Fail2banError as error:
        module.fail_json(msg=str(error))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
