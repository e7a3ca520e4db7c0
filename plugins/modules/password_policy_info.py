#!/usr/bin/python
# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: password_policy_info
short_description: Read the password rules pam_pwquality enforces now, and how they differ from the wanted ones
version_added: "0.1.0"
description:
  - Reads libpwquality's effective settings the way C(pam_pwquality) builds them, through libpwquality itself
    (C(ctypes)) - every C(pwquality.conf.d/*.conf) in name order, then C(pwquality.conf), which overrides them,
    then the setting arguments of the C(pam_pwquality.so) line of O(pam_file).
  - Names the file or PAM argument that set each value, and with O(expected) lists each setting whose live value
    differs from the wanted one, with where the live value comes from.
  - Reads the password stack of O(pam_file) - whether C(pam_pwquality) runs there, as requisite, before
    C(pam_unix).
  - Changes nothing.
author:
  - hostguard.hosting contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - hostguard.hosting.read_only
options:
  expected:
    description:
      - The wanted value of each setting to compare, such as C(minlen) 8 and C(dcredit) -1. Booleans count as 1
        and 0; a text setting (C(badwords)) is compared word for word. An empty text means unset.
    type: dict
    default: {}
  pam_file:
    description: The PAM file whose password stack runs C(pam_pwquality) (Debian's C(common-password)).
    type: path
    default: /etc/pam.d/common-password
requirements:
  - libpwquality (Debian's C(libpwquality1), which C(libpam-pwquality) depends on) on the managed host
"""

EXAMPLES = r"""
- name: Read the live password rules and compare them with the wanted ones
  hostguard.hosting.password_policy_info:
    expected:
      minlen: 8
      dcredit: -1
      enforcing: 1
  register: pwquality_live

- name: Fail on a rule that is not in force
  ansible.builtin.assert:
    that: pwquality_live.problems | length == 0
    fail_msg: "{{ pwquality_live.problems | join('; ') }}"
"""

RETURN = r"""
installed:
  description: Whether libpwquality could be loaded. Without it, nothing else is read.
  returned: always
  type: bool
settings:
  description: Every libpwquality setting as pam_pwquality uses it.
  returned: when installed
  type: dict
  sample: {"minlen": 8, "dcredit": -1, "enforcing": 1, "badwords": "example hostguard"}
config_error:
  description: The error at which libpwquality stopped reading its files (pam_pwquality then goes on with the
    settings read so far), or null.
  returned: when installed
  type: str
files:
  description: The configuration files libpwquality reads, in its order.
  returned: when installed
  type: list
  elements: str
sources:
  description: For each setting set somewhere, the file (or the PAM argument) that set it last.
  returned: when installed
  type: dict
pam:
  description:
    - The C(pam_pwquality) line of O(pam_file) (C(control), C(module), C(arguments), C(line) number, or null),
      whether C(pam_unix) is there, whether pam_pwquality runs before it and whether it is C(requisite).
  returned: when installed
  type: dict
differences:
  description: Each setting of O(expected) whose live value differs, with the C(expected) and C(live) values and
    the C(source) of the live one.
  returned: when installed
  type: list
  elements: dict
  sample: [{"setting": "minlen", "expected": 8, "live": 6, "source": "/etc/security/pwquality.conf"}]
problems:
  description: One sentence per way the rules are not in force (the differences, a reading error, a missing or
    misplaced pam_pwquality line); empty when they are.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostguard.hosting.plugins.module_utils.pwquality import (
    Library,
    PwqualityError,
    describe,
    read,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            expected=dict(type="dict", default={}),
            pam_file=dict(type="path", default="/etc/pam.d/common-password"),
        ),
        supports_check_mode=True,
    )
    try:
        library = Library()
    except PwqualityError as exc:
        module.exit_json(changed=False, installed=False, problems=[str(exc)])
    try:
        with open(module.params["pam_file"], encoding="utf-8", errors="replace") as stream:
            pam_text = stream.read()
    except OSError:
        pam_text = ""
    try:
        result = read(library, pam_text, pam_path=module.params["pam_file"], expected=module.params["expected"])
    except (PwqualityError, ValueError) as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, installed=True, problems=describe(result), **result)


if __name__ == "__main__":
    main()
