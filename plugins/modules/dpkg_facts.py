#!/usr/bin/python
# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: dpkg_facts
short_description: The installed Debian packages as facts, without python3-apt
version_added: "0.1.0"
description:
  - Sets C(ansible_facts.packages) as M(ansible.builtin.package_facts) does (name to a list of C(name),
    C(version), C(arch), C(source)), read with C(dpkg-query), which every Debian host has.
  - M(ansible.builtin.package_facts) needs C(python3-apt), which a minimal Debian install lacks; there it fails
    with "Could not detect a supported package manager". This module reads the same without it, and changes
    nothing.
  - Only installed packages are listed (not those removed with their configuration files left).
author:
  - hostguard.hosting contributors (!UNKNOWN)
options: {}
attributes:
  check_mode:
    description: Reads only; runs the same in check mode.
    support: full
  diff_mode:
    description: Nothing to show; nothing is changed.
    support: none
  facts:
    description: Sets C(ansible_facts.packages).
    support: full
requirements:
  - dpkg (C(dpkg-query)) on the managed host
"""

EXAMPLES = r"""
- name: Read the installed packages
  hostguard.hosting.dpkg_facts:

- name: Act only where fail2ban is installed
  ansible.builtin.debug:
    msg: "fail2ban {{ ansible_facts.packages['fail2ban'][0].version }}"
  when: "'fail2ban' in ansible_facts.packages"
"""

RETURN = r"""
ansible_facts:
  description: The installed packages.
  returned: always
  type: complex
  contains:
    packages:
      description: Package name to a list of its installed instances (one per architecture).
      returned: always
      type: dict
      sample: {"fail2ban": [{"name": "fail2ban", "version": "1.0.2-2", "arch": "all", "source": "dpkg"}]}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostguard.hosting.plugins.module_utils import dpkg_packages


def main():
    module = AnsibleModule(argument_spec={}, supports_check_mode=True)
    try:
        packages = dpkg_packages.installed_packages(
            lambda argv: module.run_command(argv, environ_update={"LANG": "C", "LC_ALL": "C"}))
    except dpkg_packages.DpkgError as error:
        module.fail_json(msg=str(error))
    module.exit_json(changed=False, ansible_facts={"packages": packages})


if __name__ == "__main__":
    main()
