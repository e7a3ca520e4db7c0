#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: logins_info
short_description: Report the logins of each account over the last days, by service and country, and the unusual ones
version_added: "0.3.0"
description:
  - Reads the successful logins of the last O(days) from the journal (C(journalctl --since)) with the parsers of
    M(hostguard.hosting.watch)'s logins facet, so that both read a line alike. sshd and sshd-session
    (C(Accepted METHOD for USER from ADDR)), Dovecot 2.3 and 2.4 (C(imap-login), C(pop3-login) and
    C(submission-login)), Postfix's SMTP AUTH (C(sasl_username)) and vsftpd (in the journal with C(syslog_enable),
    else in its own C(vsftpd_log_file) and the rotated copies of the period).
  - A line is trusted only from the daemon's own user (journald's C(_UID)); a customer's program may call itself
    sshd. Loopback logins (webmail on the host) have no place and are skipped.
  - Reports, per account, service and place, the number of logins and the first and last one. The place is the
    address's country from O(countries), or without country data its network (/24, or /48 for IPv6).
  - A place is unusual for its account when its country is outside O(expected_countries); otherwise (or for a
    place without country data) when the account had logged in from another place before, or when the account
    came only from a country no other account of the host came from.
  - Reads the journal as a stream and keeps counts per account and place only; reads only.
author:
  - hostguard.hosting contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - hostguard.hosting.read_only
options:
  days:
    description: How many days back to read.
    type: int
    default: 7
  countries:
    description:
      - The country table, one C(FIRST LAST CC) address range a line, sorted (what the filter
        C(hostguard.hosting.watch_country_table) builds from C(watch_country_cidrs)).
      - Empty, places are networks.
    type: str
    default: ""
  expected_countries:
    description:
      - The two-letter codes of the countries the host's users log in from. A login from another country is
        unusual whatever the account did before.
      - Empty, each account's own earlier places are its usual ones.
    type: list
    elements: str
    default: []
  vsftpd_conf:
    description: vsftpd's configuration, which says whether it logs to the journal or to its own file.
    type: path
    default: /etc/vsftpd.conf
seealso:
  - module: hostguard.hosting.mail_senders_info
"""

EXAMPLES = r"""
- name: Read the logins of the last week, with countries, expecting logins from Japan only
  hostguard.hosting.logins_info:
    days: 7
    countries: "{{ watch_country_cidrs | hostguard.hosting.watch_country_table }}"
    expected_countries: [JP]
  register: logins

- name: Name the unusual ones
  ansible.builtin.debug:
    msg: "{{ logins.unusual | map(attribute='account') | list }}"
"""

RETURN = r"""
accounts:
  description: Each account that logged in, with its places.
  returned: always
  type: list
  elements: dict
  contains:
    account: {description: The account (a system user or a mailbox)., type: str}
    logins: {description: Its logins in the period., type: int}
    usual: {description: The places it logged in from first in the period., type: list, elements: str}
    places:
      description:
        - One entry per service and place, C(account), C(service) (ssh, imap, pop3, submission, smtp, ftp),
          C(place), C(country) (null without country data), C(network), C(count), C(first) and C(last)
          (ISO 8601, UTC), up to five C(addresses), and C(unusual) (null, or why it is unusual).
      type: list
      elements: dict
  sample:
    - account: mbox1
      logins: 3
      usual: [JP]
      places:
        - {account: mbox1, service: imap, place: JP, country: JP, network: 198.18.0.0/24, count: 2,
           first: "2026-12-06T01:00:00Z", last: "2026-12-06T02:00:00Z", addresses: [198.18.0.10], unusual: null}
        - {account: mbox1, service: imap, place: MD, country: MD, network: 203.0.113.0/24, count: 1,
           first: "2026-12-06T03:00:00Z", last: "2026-12-06T03:00:00Z", addresses: [203.0.113.10],
           unusual: "a new place for the account (it logged in from JP before)"}
unusual:
  description: The places of RV(accounts) that are unusual for their account, as they are there.
  returned: always
  type: list
  elements: dict
expected_countries:
  description: The expected countries, upper-case.
  returned: always
  type: list
  elements: str
country_data:
  description: Whether a country table was given (without one, places are networks).
  returned: always
  type: bool
logins:
  description: The logins read.
  returned: always
  type: int
untrusted_lines:
  description: Login lines logged by a process that is not the daemon's (ignored).
  returned: always
  type: int
since:
  description: The start of the period (ISO 8601, UTC).
  returned: always
  type: str
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostguard.hosting.plugins.module_utils.log_activity import (
    LogActivityError,
    check_countries,
    read_logins,
    stream_command,
)
from ansible_collections.hostguard.hosting.plugins.module_utils.watch_logins import CountryError, CountryTable


def main():
    module = AnsibleModule(
        argument_spec=dict(
            days=dict(type="int", default=7),
            countries=dict(type="str", default=""),
            expected_countries=dict(type="list", elements="str", default=[]),
            vsftpd_conf=dict(type="path", default="/etc/vsftpd.conf"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if not 1 <= params["days"] <= 3650:
        module.fail_json(msg=f"days: expected 1 to 3650, got {params['days']}")
    try:
        countries = CountryTable(params["countries"] or "")
    except CountryError as exc:
        module.fail_json(msg=f"countries: {exc}")
    try:
        expected = check_countries(params["expected_countries"])
        result = read_logins(stream_command, time.time() - params["days"] * 86400, countries, expected,
                             params["vsftpd_conf"])
    except LogActivityError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
