# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the firewall role: validate its variables on the controller, before any change."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.hostguard.hosting.plugins.module_utils.firewall import PolicyError, build_plan


def firewall_plan(services, country_cidrs=None, admin_sources=None, guard=None, ftp_passive_ports=None,
                  restrict_smtp=False, base_dir=None):
    try:
        return build_plan(services, country_cidrs=country_cidrs, admin_sources=admin_sources, guard=guard,
                          ftp_passive_ports=ftp_passive_ports, restrict_smtp=restrict_smtp, base_dir=base_dir)
    except PolicyError as error:
        raise AnsibleFilterError(str(error)) from None


class FilterModule:
    def filters(self):
        return {"firewall_plan": firewall_plan}
