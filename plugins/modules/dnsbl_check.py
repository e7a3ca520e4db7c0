#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: dnsbl_check
short_description: Check IP addresses against DNS blocklists (DNSBLs)
version_added: 0.1.0
description:
  - Looks up every address in every zone, concurrently, and classifies each answer with the zone's documented return codes.
  - Each address and zone gets exactly one status. V(listed) is an abuse listing. V(policy) is a listing that says
    nothing about abuse by the address, such as Spamhaus PBL. V(not_listed) is reported only for an NXDOMAIN answer.
    V(error) covers an error code such as Spamhaus's V(127.255.255.254), an answer outside V(127.0.0.0/8), SERVFAIL,
    REFUSED or an answer without an A record. V(timeout) means no server answered.
  - Before the addresses, every zone is tested through every nameserver with the RFC 5782 test points.
    V(127.0.0.2) must be listed and V(127.0.0.1) must not (a listed V(127.0.0.1) means something intercepts the queries).
    Addresses are looked up only through nameservers that passed. A zone that passed nowhere is not queried;
    its checks report V(timeout) when it never answered and V(error) otherwise.
  - The curated zone data (return codes, meanings, delisting pages, sources) is versioned; its version is returned
    as RV(zone_data_version). SORBS is deliberately absent because the service has shut down.
  - A zone the data does not know is classified by a generic rule. Answers outside V(127.0.0.0/8), V(127.0.0.1) and
    V(127.255.255.0/24) are errors; any other V(127.0.0.0/8) answer is a listing.
  - 'The module only reads DNS; it never reports a change. Run it where the blocklists can be queried, usually with
    C(delegate_to: localhost).'
author:
  - hostguard.hosting contributors (!UNKNOWN)
requirements:
  - dnspython >= 2.0 (C(apt-get install python3-dnspython) on Debian/Ubuntu, or C(pip install dnspython))
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: The module is read-only; check mode runs the same lookups.
  diff_mode:
    support: none
  platform:
    support: full
    platforms: posix
options:
  addresses:
    description:
      - IPv4 and IPv6 addresses to check. Duplicates are checked once.
      - An invalid address fails the task before any query, naming the address.
    type: list
    elements: str
    required: true
  zones:
    description:
      - Blocklist zones to query. Defaults to the curated list
        V(zen.spamhaus.org), V(bl.spamcop.net), V(b.barracudacentral.org), V(psbl.surriel.com),
        V(bl.mailspike.net) and V(dnsbl-1.uceprotect.net).
      - A string is a zone name. Curated names (the defaults, plus V(dnsbl-2.uceprotect.net) and
        V(dnsbl-3.uceprotect.net), whose listings are classed as policy) use the curated return codes;
        any other name is classified by the generic rule.
      - 'A dict describes a custom zone: C(name) (required); C(codes), a mapping of return code to
        C({class: listed|policy|error, meaning: text}); or C(codes_from), the name of a curated zone whose codes apply
        (for example a Spamhaus DQS zone C(KEY.zen.dq.spamhaus.net) with C(codes_from: zen.spamhaus.org));
        and optionally C(description), C(delist_url), C(notes).'
      - An invalid zone name or definition fails the task before any query, naming it.
    type: list
    elements: raw
  nameservers:
    description:
      - Nameservers to send the queries to, as V(ip), V(ip:port) or V([ipv6]:port).
      - When several are given, each is health-checked per zone and the healthy ones are tried in order.
      - Defaults to the nameservers of C(/etc/resolv.conf). Spamhaus refuses queries that come through public
        resolvers, so use a local recursive resolver.
      - An invalid nameserver fails the task before any query, naming it.
    type: list
    elements: str
  timeout:
    description:
      - Seconds to wait for each answer before trying again or reporting V(timeout).
    type: float
    default: 3
  retries:
    description:
      - Extra rounds over the nameservers after a timeout or an error answer such as SERVFAIL.
    type: int
    default: 1
  concurrency:
    description:
      - Most queries in flight at once.
    type: int
    default: 64
  health_check:
    description:
      - Test each zone through each nameserver with the RFC 5782 test points first, and query addresses only through
        nameservers where the zone passed.
      - Disable only for a zone that does not publish the test points; its answers are then trusted unchecked.
    type: bool
    default: true
  query_txt:
    description:
      - For each listing, also fetch the zone's TXT record, the reason it gives, into RV(checks[].reason).
    type: bool
    default: true
  fail_on_listed:
    description:
      - Fail the task when any address has an abuse listing (status V(listed)); the results are still returned.
      - When false (the default), listings are only reported, so an audit can collect results across a fleet.
      - Policy listings, errors and timeouts never fail the task; test RV(summary.complete) for those.
    type: bool
    default: false
notes:
  - Queries go out over UDP, and over TCP when an answer is truncated.
  - B(Barracuda) answers only resolvers registered with it. From an unregistered resolver expect V(error) or V(timeout).
seealso:
  - name: RFC 5782 (DNS Blacklists and Whitelists)
    description: Query format and the 127.0.0.2 / 127.0.0.1 test points.
    link: https://www.rfc-editor.org/rfc/rfc5782
"""

EXAMPLES = r"""
- name: Check the fleet's outgoing addresses against the curated blocklists
  hostguard.hosting.dnsbl_check:
    addresses: "{{ ansible_facts.all_ipv4_addresses + ansible_facts.all_ipv6_addresses }}"
    nameservers: ["127.0.0.1"]
  delegate_to: localhost
  register: dnsbl

- name: Show where each listed address is listed
  ansible.builtin.debug:
    msg: "{{ dnsbl.checks | selectattr('status', 'eq', 'listed') | map(attribute='zone') | list }}"
  when: dnsbl.listed

- name: Chosen zones, an alternative resolver port, and fail when listed
  hostguard.hosting.dnsbl_check:
    addresses: ["203.0.113.25", "2001:db8::25"]
    zones: [zen.spamhaus.org, bl.spamcop.net]
    nameservers: ["127.0.0.1", "127.0.0.1:5353", "[::1]:53"]
    timeout: 3
    concurrency: 64
    fail_on_listed: true
  delegate_to: localhost

- name: Spamhaus through a DQS key, plus a custom zone with its own codes
  hostguard.hosting.dnsbl_check:
    addresses: ["203.0.113.25"]
    zones:
      - name: "{{ spamhaus_dqs_key }}.zen.dq.spamhaus.net"
        codes_from: zen.spamhaus.org
      - name: rbl.example.net
        codes:
          127.0.0.2: {class: listed, meaning: "spam source"}
          127.0.0.5: {class: policy, meaning: "dynamic range"}
        delist_url: https://rbl.example.net/remove
  delegate_to: localhost
  register: dnsbl

- name: Fail the audit when a blocklist could not be checked
  ansible.builtin.assert:
    that: dnsbl.summary.complete
    fail_msg: "Unchecked: {{ dnsbl.summary.unhealthy_zones }}; {{ dnsbl.summary.counts }}"
"""

RETURN = r"""
listed:
  description: Whether any address has an abuse listing (status V(listed)) in any zone.
  returned: success
  type: bool
  sample: true
checks:
  description: One entry per address and zone, addresses in the order given.
  returned: success
  type: list
  elements: dict
  contains:
    address:
      description: The address, normalised.
      type: str
      sample: 203.0.113.25
    zone:
      description: The zone queried.
      type: str
      sample: zen.spamhaus.org
    query:
      description: The name looked up (reversed octets, or 32 reversed nibbles for IPv6).
      type: str
      sample: 25.113.0.203.zen.spamhaus.org
    status:
      description: One of V(listed), V(policy), V(not_listed), V(error), V(timeout).
      type: str
      sample: listed
    codes:
      description: The A records answered, each with its class and meaning from the zone data.
      type: list
      elements: dict
      sample: [{"code": "127.0.0.2", "class": "listed", "meaning": "SBL: Spamhaus-verified spam source or spam operation"}]
    reason:
      description: The zone's TXT record for a listing, when it gives one and O(query_txt) is enabled.
      type: str
      sample: "Listed in SBL, see https://check.spamhaus.org/"
    nameserver:
      description: The nameserver that gave the answer; V(null) when the zone was not queried.
      type: str
      sample: "127.0.0.1:53"
    error:
      description: Why the status is V(error) or V(timeout); V(null) otherwise.
      type: str
      sample: "error answer: 127.255.255.254 (query came through a public or open resolver, ...)"
    delist_url:
      description: Where to request delisting, for V(listed) and V(policy) results when known.
      type: str
      sample: https://check.spamhaus.org/
by_address:
  description:
    - Per address, whether it is listed, whether it has a policy listing, and its status in each zone.
  returned: success
  type: dict
  sample:
    203.0.113.25:
      listed: true
      policy: false
      statuses: {"zen.spamhaus.org": "listed", "bl.spamcop.net": "not_listed"}
zones:
  description:
    - Per zone, its RFC 5782 health check result and what the zone data says about it.
    - C(healthy) is true when the zone passed through at least one nameserver; C(problem) says why not.
    - C(nameservers) holds each nameserver's result, with the statuses of the two test points.
    - C(origin) is V(curated), V(custom) (codes given or copied with C(codes_from)) or V(generic).
  returned: success
  type: dict
  sample:
    zen.spamhaus.org:
      healthy: true
      problem: null
      origin: curated
      description: "Spamhaus ZEN: SBL, CSS, XBL, DROP and PBL in one zone"
      delist_url: https://check.spamhaus.org/
      notes: "Public mirrors refuse public resolvers (127.255.255.254). ..."
      source: "https://www.spamhaus.org/faq/section/DNSBL%20Usage (return codes); ..."
      nameservers:
        "127.0.0.1:53":
          healthy: true
          problem: null
          test_point_listed: listed
          test_point_not_listed: not_listed
          timed_out: false
nameservers:
  description: The nameservers used, as V(ip:port).
  returned: success
  type: list
  elements: str
  sample: ["127.0.0.1:53"]
summary:
  description: Totals over all checks.
  returned: success
  type: dict
  contains:
    addresses:
      description: Number of distinct addresses checked.
      type: int
    zones:
      description: Number of zones.
      type: int
    checks:
      description: Number of address and zone pairs.
      type: int
    queries:
      description: DNS queries sent, health checks, retries and TXT lookups included.
      type: int
    seconds:
      description: Wall-clock time of the lookups.
      type: float
    counts:
      description: Number of checks per status.
      type: dict
      sample: {"listed": 1, "policy": 0, "not_listed": 10, "error": 1, "timeout": 0}
    listed_addresses:
      description: Addresses with at least one abuse listing.
      type: list
      elements: str
    policy_addresses:
      description: Addresses with at least one policy listing.
      type: list
      elements: str
    unhealthy_zones:
      description: Zones that failed their health check through every nameserver.
      type: list
      elements: str
    complete:
      description: True when no check ended in V(error) or V(timeout).
      type: bool
zone_data_version:
  description: Version of the curated zone data that classified the answers.
  returned: success
  type: str
  sample: "2026.11.25"
"""

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.hostguard.hosting.plugins.module_utils import dnsbl


def listing_message(result):
    """Name each listed address and the zones that list it."""
    parts = []
    for address, entry in result["by_address"].items():
        zones = [zone for zone, status in entry["statuses"].items() if status == dnsbl.STATUS_LISTED]
        if zones:
            parts.append("%s on %s" % (address, ", ".join(zones)))
    return "Listed: " + "; ".join(parts)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            addresses=dict(type="list", elements="str", required=True),
            zones=dict(type="list", elements="raw"),
            nameservers=dict(type="list", elements="str"),
            timeout=dict(type="float", default=3),
            retries=dict(type="int", default=1),
            concurrency=dict(type="int", default=64),
            health_check=dict(type="bool", default=True),
            query_txt=dict(type="bool", default=True),
            fail_on_listed=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    if not dnsbl.HAS_DNSPYTHON:
        module.fail_json(
            msg="%s. %s" % (missing_required_lib("dnspython"), dnsbl.DNSPYTHON_INSTALL_HINT),
            exception=dnsbl.DNSPYTHON_IMPORT_TRACEBACK,
        )

    params = module.params
    try:
        request = dnsbl.parse_request(
            params["addresses"],
            zones=params["zones"],
            nameservers=params["nameservers"],
            timeout=params["timeout"],
            retries=params["retries"],
            concurrency=params["concurrency"],
            health_check=params["health_check"],
            query_txt=params["query_txt"],
        )
        result = dnsbl.run_check(request)
    except dnsbl.DnsblInputError as error:
        module.fail_json(msg=str(error))

    if params["fail_on_listed"] and result["listed"]:
        module.fail_json(msg=listing_message(result), changed=False, **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
