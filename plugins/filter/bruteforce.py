# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of the bruteforce role: validate its variables on the controller, before any change."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.hostguard.hosting.plugins.module_utils.firewall import PolicyError, parse_network


def bruteforce_ignore_list(sources, controller=""):
    """fail2ban's ignoreip entries: the validated sources, then the controller's address unless one covers it."""
    if not isinstance(sources, list):
        raise AnsibleFilterError(f"bruteforce_ignore_sources must be a list of CIDRs, got {sources!r}")
    try:
        networks = [parse_network(source, "bruteforce_ignore_sources") for source in sources]
        if controller:
            controller_network = parse_network(controller, "the controller's address (SSH_CLIENT)")
            if not any(controller_network.subnet_of(network) for network in networks
                       if network.version == controller_network.version):
                networks.append(controller_network)
    except PolicyError as error:
        raise AnsibleFilterError(str(error)) from None
    return [str(network) for network in networks]


def bruteforce_probe_address(address, ignore_entries=()):
    """The address of the role's test ban: one address, outside the networks fail2ban must never ban."""
    try:
        network = parse_network(address, "bruteforce_probe_address")
    except PolicyError as error:
        raise AnsibleFilterError(str(error)) from None
    if network.num_addresses != 1:
        raise AnsibleFilterError(f"bruteforce_probe_address: {address!r} is a network, not a single address")
    for entry in ignore_entries:
        ignored = parse_network(entry, "the ignore list")
        if ignored.version == network.version and network.subnet_of(ignored):
            # fail2ban would be asked to ban an address it must never ban: the office or the controller.
            raise AnsibleFilterError(f"bruteforce_probe_address: {address!r} is in {entry}, which is never banned: "
                                     "choose an address that never connects (a documentation address)")
    return str(network.network_address)


class FilterModule:
    def filters(self):
        return {"bruteforce_ignore_list": bruteforce_ignore_list, "bruteforce_probe_address": bruteforce_probe_address}
