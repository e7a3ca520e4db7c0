# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the mail roles: what mail_settings_info must read back after the roles' edits."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.hostguard.hosting.plugins.module_utils import mail_settings, postfix


def postfix_expected(parameters, services=None, apply_to=None):
    return mail_settings.postfix_expected(parameters or {}, services or {}, apply_to or [])


def postfix_mynetworks(trusted_networks):
    try:
        return postfix.mynetworks(trusted_networks or [])
    except postfix.PostfixError as error:
        raise AnsibleFilterError(str(error)) from None


def exim_expected_files(files):
    return mail_settings.exim_expected_files(files or {})


class FilterModule:
    def filters(self):
        return {"postfix_expected": postfix_expected, "postfix_mynetworks": postfix_mynetworks,
                "exim_expected_files": exim_expected_files}
