#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mail_senders_info
short_description: Report the busiest senders of mail over the last days, per account, PHP script and SASL user
version_added: "0.3.0"
description:
  - Reads who handed in each message over the last O(days) with the parsers of M(hostguard.hosting.watch)'s mail
    facet, so that both read a line alike.
  - Postfix (from the journal, C(journalctl --since)) - pickup's C(uid=N) for mail given to sendmail (a local account
    or a site's script), the C(X-PHP-Originating-Script) header where cleanup logs it (the watch's INFO rule,
    C(watch_php_mail_header)), smtpd's C(sasl_username) for authenticated submission, and the delivery agents'
    C(to=) for the recipient domains.
  - Exim (C(/var/log/exim4/mainlog) and its rotated copies of the period, C(mainlog.1), C(mainlog.2.gz), ...) -
    C(U=user P=local) for sendmail, C(A=authenticator:user) for SMTP AUTH, the sending process's working directory
    with the log selector C(+arguments), and the recipients of C(=>), C(->), C(**) and C(==) lines.
  - Reports the O(top) busiest sources with their messages, the hour they sent the most in, their top recipient
    domains and scripts. Reads the logs as a stream and keeps counts per source only; reads only.
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
  mta:
    description: The MTA whose logs to read; C(auto) reads the one the host has.
    type: str
    choices: [auto, postfix, exim]
    default: auto
  top:
    description: How many of the busiest sources to return.
    type: int
    default: 10
  exim_mainlog:
    description: Exim's main log (its rotated copies are found beside it).
    type: path
    default: /var/log/exim4/mainlog
seealso:
  - module: hostguard.hosting.logins_info
  - module: hostguard.hosting.mail_queue_info
"""

EXAMPLES = r"""
- name: Read the busiest senders of the last week
  hostguard.hosting.mail_senders_info:
    days: 7
  register: senders

- name: Name the sources that sent over 200 messages in an hour
  ansible.builtin.debug:
    msg: "{{ senders.senders | selectattr('peak_hour.messages', 'gt', 200) | map(attribute='source') | list }}"
"""

RETURN = r"""
mta:
  description: The MTA whose logs were read (postfix or exim); null where O(mta=auto) found none.
  returned: always
  type: str
since:
  description: The start of the period (ISO 8601, UTC).
  returned: always
  type: str
messages:
  description: The messages handed in by any source in the period.
  returned: always
  type: int
sources:
  description: How many sources sent (RV(senders) names the busiest O(top)).
  returned: always
  type: int
senders:
  description: The busiest sources, the busiest first.
  returned: always
  type: list
  elements: dict
  contains:
    source:
      description: "The source's key - C(uid:N), C(user:NAME) (an Exim user with no passwd entry) or C(sasl:USER)."
      type: str
    kind:
      description: uid, user or sasl.
      type: str
    messages:
      description: Its messages in the period.
      type: int
    first:
      description: Its first message (ISO 8601, UTC).
      type: str
    last:
      description: Its last message (ISO 8601, UTC).
      type: str
    peak_hour:
      description: "The hour it sent the most in - C(start) (ISO 8601, UTC) and C(messages)."
      type: dict
    top_recipient_domains:
      description: Its five busiest recipient domains and their recipients.
      type: dict
    scripts:
      description: The PHP scripts that sent its mail (the busiest three).
      type: list
      elements: str
    script:
      description: The busiest of them, or null.
      type: str
    uid:
      description: The local account's uid (null for a SASL user).
      type: int
    account:
      description: The local account's name.
      type: str
    sasl_user:
      description: The SMTP AUTH user.
      type: str
    cwd:
      description: The working directory of its latest sendmail (Exim with +arguments).
      type: str
    command:
      description: The command line of its latest sendmail (Exim with +arguments).
      type: str
  sample:
    - source: "uid:2001"
      kind: uid
      messages: 230
      first: "2026-12-06T01:00:00Z"
      last: "2026-12-06T01:20:00Z"
      peak_hour: {start: "2026-12-06T01:00:00Z", messages: 230}
      top_recipient_domains: {victims.example: 230}
      scripts: [/home/site1/public_html/contact.php]
      script: /home/site1/public_html/contact.php
      uid: 2001
      account: site1
      sasl_user: null
      cwd: null
      command: null
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostguard.hosting.plugins.module_utils.log_activity import (
    LogActivityError,
    iso,
    read_senders,
    stream_command,
)
from ansible_collections.hostguard.hosting.plugins.module_utils.watch_config import ConfigError
from ansible_collections.hostguard.hosting.plugins.module_utils.watch_mail import resolve_mta


def main():
    module = AnsibleModule(
        argument_spec=dict(
            days=dict(type="int", default=7),
            mta=dict(type="str", default="auto", choices=["auto", "postfix", "exim"]),
            top=dict(type="int", default=10),
            exim_mainlog=dict(type="path", default="/var/log/exim4/mainlog"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if not 1 <= params["days"] <= 3650 or params["top"] < 1:
        module.fail_json(msg=f"days must be 1 to 3650 and top 1 or more, got days={params['days']}, top={params['top']}")
    since = time.time() - params["days"] * 86400
    try:
        mta = resolve_mta(params["mta"])
    except ConfigError:
        # auto on a host with no MTA: nothing sent mail through one
        module.exit_json(changed=False, mta=None, since=iso(since), messages=0, sources=0, senders=[])
    try:
        result = read_senders(stream_command, since, mta, params["top"],
                              params["exim_mainlog"])
    except LogActivityError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
