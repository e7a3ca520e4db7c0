# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the firewall role: validate its variables on the controller, before any change."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.hostguard.hosting.plugins.module_utils.firewall import (
    PolicyError,
    build_plan,
    exposure_findings,
    policy_record,
)


def firewall_plan(services, country_cidrs=None, admin_sources=None, guard=None, ftp_passive_ports=None,
                  restrict_smtp=False, base_dir=None):
    try:
        return build_plan(services, country_cidrs=country_cidrs, admin_sources=admin_sources, guard=guard,
                          ftp_passive_ports=ftp_passive_ports, restrict_smtp=restrict_smtp, base_dir=base_dir)
    except PolicyError as error:
        raise AnsibleFilterError(str(error)) from None


def firewall_record(plan, backend, ruleset_path=None):
    """The policy as the audit reads it back from the host (firewall_record_path)."""
    return policy_record(plan, backend, ruleset_path)


def firewall_exposure(findings, record):
    """Each audit finding (a dict with `port` and `advice`) with what the firewall policy in force does
    with its port (see exposure_findings in module_utils/firewall.py)."""
    return exposure_findings(findings, record)


class FilterModule:
    def filters(self):
        return {"firewall_plan": firewall_plan, "firewall_record": firewall_record,
                "firewall_exposure": firewall_exposure}
