# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that hold a proposed password to the providers' rules."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.hostguard.hosting.plugins.module_utils.password_policy import problems


def password_problems(password, account=None, domain=None):
    if not isinstance(password, str):
        raise AnsibleFilterError("password_problems expects the password as a string")
    return problems(password, account=account, domain=domain)


class FilterModule:
    def filters(self):
        return {"password_problems": password_problems}
