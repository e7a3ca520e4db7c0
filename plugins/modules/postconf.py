#!/usr/bin/python
# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: postconf
short_description: Set Postfix main.cf parameters and master.cf services, validated before they are live
version_added: "0.1.0"
description:
  - Makes the Postfix configuration carry the given main.cf parameters and master.cf services, reading and
    writing through C(postconf) so that neither file is parsed or written by hand.
  - Changes nothing (and reports no change) when every value is already as given; values are compared with
    whitespace collapsed, as C(postconf -n) and C(postconf -M) print them.
  - With O(validate=true), the edits are first made to a staging copy of O(config_dir), which must pass
    C(postfix -c STAGING check) without a warning the live configuration does not already have (such as an
    unknown parameter name). Only then are the staged C(main.cf) and C(master.cf) moved over the live ones.
  - The module does not reload Postfix; notify a handler when it reports a change.
author:
  - hostguard.hosting contributors (!UNKNOWN)
options:
  parameters:
    description:
      - main.cf parameters, name to value. A value that is a list is joined with C(, ).
    type: dict
    default: {}
  trusted_networks:
    description:
      - Sets C(mynetworks) to loopback plus these networks (CIDRs, IPv4 or IPv6, without host bits), the
        clients Postfix lets relay without authenticating. A malformed CIDR, or one that is every address,
        fails the module before anything is read or written, naming the value.
      - Omitted, C(mynetworks) is left as it is (unless set in O(parameters)).
    type: list
    elements: str
  services:
    description:
      - master.cf services, C(NAME/TYPE) (for example C(submission/inet)) to a mapping with C(fields), the
        entry's fields after name and type (C(n - y - - smtpd)), C(options), its C(-o) overrides as a
        mapping (values may not contain spaces), and C(state), V(present) or V(absent).
    type: dict
    default: {}
  config_dir:
    description: The Postfix configuration directory.
    type: path
    default: /etc/postfix
  validate:
    description: Check the edits on a staging copy with C(postfix check) before they are made live.
    type: bool
    default: true
attributes:
  check_mode:
    description: Reports what would change, with the diff, without writing anything.
    support: full
  diff_mode:
    description: Before and after of every parameter and service that changes.
    support: full
requirements:
  - Postfix (C(postconf), C(postfix)) on the managed host
"""

EXAMPLES = r"""
- name: Require TLS and SMTP AUTH on the submission port
  hostguard.hosting.postconf:
    parameters:
      smtpd_sasl_type: dovecot
      smtpd_sasl_path: private/auth
    services:
      submission/inet:
        fields: n - y - - smtpd
        options:
          syslog_name: postfix/submission
          smtpd_tls_security_level: encrypt
          smtpd_sasl_auth_enable: "yes"
          smtpd_client_restrictions: permit_sasl_authenticated,reject
  notify: Reload Postfix

- name: Relay without AUTH only for loopback and the office
  hostguard.hosting.postconf:
    trusted_networks: [198.51.100.0/24, "2001:db8:51::/48"]
  notify: Reload Postfix

- name: Remove the smtps service
  hostguard.hosting.postconf:
    services:
      smtps/inet:
        state: absent
"""

RETURN = r"""
parameters:
  description: The main.cf parameters that were (or in check mode would be) changed, with their new values.
  returned: always
  type: dict
  sample: {"smtpd_relay_restrictions": "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination"}
services:
  description: The master.cf services that were (or would be) changed, with their new entries; null for removed ones.
  returned: always
  type: dict
  sample: {"submission/inet": "submission inet n - y - - smtpd -o smtpd_tls_security_level=encrypt"}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostguard.hosting.plugins.module_utils import postfix


def main():
    module = AnsibleModule(
        argument_spec={
            "parameters": {"type": "dict", "default": {}},
            "trusted_networks": {"type": "list", "elements": "str"},
            "services": {"type": "dict", "default": {}},
            "config_dir": {"type": "path", "default": "/etc/postfix"},
            "validate": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    params = module.params
    parameters = {name: ", ".join(str(item) for item in value) if isinstance(value, list) else value
                  for name, value in params["parameters"].items()}

    if params["trusted_networks"] is not None:
        try:
            parameters["mynetworks"] = postfix.mynetworks(params["trusted_networks"])
        except postfix.PostfixError as error:
            module.fail_json(msg=str(error))

    def run(argv):
        return module.run_command(argv, environ_update={"LANG": "C", "LC_ALL": "C"})

    try:
        result = postfix.apply(run, params["config_dir"], parameters, params["services"],
                               check_mode=module.check_mode, validate=params["validate"])
    except (postfix.PostfixError, OSError) as error:
        module.fail_json(msg=str(error))
    diff = result.pop("diff")
    if module._diff and diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
