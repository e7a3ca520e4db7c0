# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: strong_password
version_added: "0.1.0"
short_description: Generate a password that follows the providers' password rules
description:
  - Draws a random password from letters, digits and symbols with Python's C(secrets) module until it passes every
    rule of the C(hostguard.hosting.password_problems) filter for the given account and domain.
author:
  - hostguard.hosting contributors (!UNKNOWN)
options:
  length:
    description: The number of characters, 8 or more.
    type: int
    default: 16
  account:
    description: The account the password is for; it will not contain its name.
    type: str
  domain:
    description: The account's domain; the password will not contain it.
    type: str
"""

EXAMPLES = r"""
- name: A replacement password for a mailbox whose password leaked
  ansible.builtin.set_fact:
    new_password: "{{ lookup('hostguard.hosting.strong_password', account='info', domain='example.com') }}"
  no_log: true
"""

RETURN = r"""
_raw:
  description: One generated password.
  type: list
  elements: str
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.hostguard.hosting.plugins.module_utils.password_policy import generate


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        try:
            return [generate(self.get_option("length"), account=self.get_option("account"),
                             domain=self.get_option("domain"))]
        except ValueError as error:
            raise AnsibleLookupError(f"strong_password: {error}") from None
