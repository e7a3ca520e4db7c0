# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters on IP addresses that the playbooks need without extra Python libraries."""

from __future__ import annotations

import ipaddress

from ansible.errors import AnsibleFilterError


def public_addresses(addresses):
    """Keep the globally routable addresses: the ones DNS blocklists can list."""
    if not isinstance(addresses, list):
        raise AnsibleFilterError(f"public_addresses expects a list of addresses, got {addresses!r}")
    public = []
    for address in addresses:
        try:
            parsed = ipaddress.ip_address(str(address).split("%", 1)[0])
        except ValueError as error:
            raise AnsibleFilterError(f"public_addresses: {address!r} is not an IP address: {error}") from None
        if parsed.is_global and str(parsed) not in public:
            public.append(str(parsed))
    return public


class FilterModule:
    def filters(self):
        return {"public_addresses": public_addresses}
