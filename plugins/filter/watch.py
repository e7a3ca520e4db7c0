# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the watch role: build what the service reads on the host, on the controller, before any change."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.hostguard.hosting.plugins.module_utils.firewall import PolicyError, load_countries
from ansible_collections.hostguard.hosting.plugins.module_utils.watch_logins import CountryError, build_country_table


def watch_country_table(country_cidrs, base_dir=None):
    """watch_country_cidrs (the firewall role's format) -> the logins facet's table: one 'FIRST LAST CC' a line."""
    try:
        return build_country_table(load_countries(country_cidrs, base_dir, variable="watch_country_cidrs"))
    except (PolicyError, CountryError) as error:
        raise AnsibleFilterError(str(error)) from None


class FilterModule:
    def filters(self):
        return {"watch_country_table": watch_country_table}
