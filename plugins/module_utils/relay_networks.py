# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one check of a trusted relay network, shared by the Postfix and Exim cores."""

from __future__ import annotations

import ipaddress


def trusted_network(cidr):
    """CIDR as an ip_network; ValueError naming the value when it is malformed, has host bits, or is everything."""
    try:
        network = ipaddress.ip_network(str(cidr), strict=True)
    except ValueError as error:
        hint = ""
        try:
            hint = f" (did you mean {ipaddress.ip_network(str(cidr), strict=False)}?)"
        except ValueError:
            pass
        raise ValueError(f"trusted network {cidr!r} is not a network in CIDR notation: {error}{hint}") from None
    if network.prefixlen == 0:
        raise ValueError(f"trusted network {cidr!r} is every address: that would be an open relay")
    return network
