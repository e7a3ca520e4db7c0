# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the audit role: its result (hostguard_audit) and the lines it prints, from module_utils/audit_report.py."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.hostguard.hosting.plugins.module_utils.audit_report import (
    AuditInputError,
    build_result,
    enforcement_records,
    report_lines,
)
from ansible_collections.hostguard.hosting.plugins.module_utils.fleet_report import default_directory, directory_problem
from ansible_collections.hostguard.hosting.plugins.module_utils.safe_browsing import SafeBrowsingInputError, site_targets


def audit_result(facets, host, time, system=None):
    try:
        return build_result(facets, host, time, system)
    except AuditInputError as error:
        raise AnsibleFilterError(str(error)) from None


def audit_lines(result):
    return report_lines(result)


def audit_safe_browsing_targets(sites, urls=()):
    """The URLs one host asks Google Safe Browsing about: [{site, url}] from its sites' domains and its extra URLs."""
    try:
        return site_targets(sites, urls)
    except SafeBrowsingInputError as error:
        raise AnsibleFilterError(str(error)) from None


def audit_report_dir_problem(directory, inventory_sources=()):
    """Why the fleet report cannot go to the directory, or an empty string."""
    return directory_problem(directory, inventory_sources) or ""


class FilterModule:
    def filters(self):
        return {"audit_result": audit_result, "audit_lines": audit_lines,
                "audit_enforcement_records": enforcement_records,
                "audit_safe_browsing_targets": audit_safe_browsing_targets,
                "audit_report_default_dir": default_directory, "audit_report_dir_problem": audit_report_dir_problem}
