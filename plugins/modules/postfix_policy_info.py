#!/usr/bin/python
# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: postfix_policy_info
short_description: Ask a Postfix policy service a real policy query and return its answer
version_added: "0.1.0"
description:
  - Speaks Postfix's policy delegation protocol to the service on the Unix socket O(socket), as Postfix's smtpd
    does - C(request=smtpd_access_policy), the O(attributes), an empty line - and returns the action it answers.
  - A policy daemon can run and listen and still answer nothing (it closes the connection, or hangs), and Postfix
    then defers every message that asks it. Compare RV(action) with the answer the service's configuration must
    give to prove it is in force.
  - While nothing listens on O(socket) yet (no such socket, or connection refused, as while a daemon starts), asks again
    every second for up to O(wait) seconds.
  - Changes nothing itself; what the service does with the query is its own (ask in a way it does not count, such
    as for a login whose limit is 0).
author:
  - hostguard.hosting contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - hostguard.hosting.read_only
options:
  socket:
    description: The Unix socket the policy service listens on, as a path on the host.
    type: path
    required: true
  attributes:
    description:
      - The attributes of the query after C(request=smtpd_access_policy), such as C(protocol_state=RCPT) and
        C(sasl_username). Names without C(=), values on one line.
    type: dict
    default: {}
  timeout:
    description: Seconds to wait for the answer once connected (Postfix's own default is 100).
    type: float
    default: 10
  wait:
    description: Seconds to keep trying while nothing listens on O(socket).
    type: int
    default: 10
"""

EXAMPLES = r"""
- name: Ask policyd-rate-limit about a login whose limit is 0
  hostguard.hosting.postfix_policy_info:
    socket: /var/spool/postfix/ratelimit/policy
    attributes:
      protocol_state: RCPT
      protocol_name: ESMTP
      sasl_username: policy-probe@hostguard.invalid
  register: policy_answer

- name: Fail unless it refuses, as its configuration says
  ansible.builtin.assert:
    that: policy_answer.action == "450 4.7.1 Too many messages from this user, try again later"
    fail_msg: "{{ policy_answer.error or policy_answer.action }}"
"""

RETURN = r"""
answered:
  description: Whether the service answered with an action.
  returned: always
  type: bool
action:
  description: The action it answered (the text after C(action=)), or null.
  returned: always
  type: str
  sample: dunno
reply:
  description: Every attribute of the answer.
  returned: always
  type: dict
  sample: {"action": "dunno"}
listening:
  description: Whether something accepted the connection on O(socket).
  returned: always
  type: bool
error:
  description: Why there is no answer (nothing listens, the connection was closed without one, no answer within
    O(timeout) seconds, an answer without an action), or null.
  returned: always
  type: str
  sample: closed the connection without an answer
attempts:
  description: How many times the service was asked.
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostguard.hosting.plugins.module_utils import postfix_policy


def main():
    module = AnsibleModule(
        argument_spec={
            "socket": {"type": "path", "required": True},
            "attributes": {"type": "dict", "default": {}},
            "timeout": {"type": "float", "default": 10},
            "wait": {"type": "int", "default": 10},
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        result = postfix_policy.ask_until_listening(postfix_policy.connect_unix, params["socket"],
                                                    params["attributes"], params["timeout"], params["wait"])
    except postfix_policy.PolicyError as error:
        module.fail_json(msg=str(error))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
