#!/usr/bin/python
# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: exim4_config
short_description: Add files to Debian's split Exim configuration, validated before they are live
version_added: "0.1.0"
description:
  - Makes files of your own under C(/etc/exim4/conf.d) carry the given content, leaving every file the exim4-config
    package ships untouched, so that its updates keep applying.
  - Those files are read only in Debian's split configuration scheme. On a host that uses the non-split scheme
    (C(dc_use_split_config='false'), Debian's default), the module switches C(update-exim4.conf.conf) to split,
    but only when the split files generate exactly the configuration the template generates (compared without
    comments and blank lines); otherwise C(exim4.conf.template) or C(exim4.conf.localmacros) carries local edits
    the switch would drop, and the module fails and changes nothing.
  - With O(validate=true), the edits are first made on a staging copy of O(confdir), from which
    C(update-exim4.conf --confdir STAGING --output FILE) generates the configuration that C(exim4 -C FILE -bV)
    must accept. Only then are the files written, each with an atomic rename. The validation runs in check mode
    too (it writes only to a temporary directory), so C(--check) reports a configuration Exim would refuse.
  - Fails before reading anything else when C(/etc/exim4/exim4.conf) exists, since Exim then reads that
    hand-written file and ignores C(conf.d).
  - The module does not regenerate the live configuration or reload Exim; notify a handler that reloads the
    C(exim4) service (Debian's reload runs C(update-exim4.conf) first).
author:
  - hostguard.hosting contributors (!UNKNOWN)
options:
  files:
    description:
      - Files under C(conf.d), C(SECTION/NAME) (for example C(main/00_local_tls) or C(acl/50_local_checks)) to
        their content. SECTION is one of C(main), C(acl), C(router), C(transport), C(retry), C(rewrite),
        C(auth); NAME may hold only letters, digits, C(_) and C(-), the only names C(update-exim4.conf) reads.
      - Files are concatenated in name order within a section; macros that override Debian's defaults must sort
        before C(main/01_exim4-config_listmacrosdefs).
      - An empty content (or V(null)) removes the file.
    type: dict
    default: {}
  readable_by_exim:
    description:
      - Paths that Exim's user (C(exim4 -bP exim_user), C(Debian-exim)) must be able to read, such as the TLS
        certificate and key, which Exim opens as that user on every TLS connection. One it cannot read fails the
        module before anything is written, naming the path.
    type: list
    elements: path
    default: []
  trusted_networks:
    description:
      - Networks (CIDRs, IPv4 or IPv6, without host bits) to check and return, with loopback, as the Exim host
        list RV(relay_hosts). A malformed CIDR, or one that is every address, fails the module, naming the value.
    type: list
    elements: str
  confdir:
    description: Debian's Exim configuration directory.
    type: path
    default: /etc/exim4
  validate:
    description: Check the edits on a staging copy with C(update-exim4.conf) and C(exim4 -bV) before they are made live.
    type: bool
    default: true
attributes:
  check_mode:
    description: Reports what would change, with the diff, after validating it, without writing anything.
    support: full
  diff_mode:
    description: Before and after of every file that changes, and of the scheme switch.
    support: full
requirements:
  - Debian's exim4 (C(exim4), C(update-exim4.conf)) on the managed host
notes:
  - Control panels (cPanel, DirectAdmin) keep their own C(exim.conf) and are not Debian's scheme; do not use this
    module there.
"""

EXAMPLES = r"""
- name: Enable TLS with the host's certificate
  hostguard.hosting.exim4_config:
    files:
      main/00_local_tls: |
        MAIN_TLS_ENABLE = yes
        MAIN_TLS_CERTIFICATE = /etc/ssl/certs/mail.pem
        MAIN_TLS_PRIVATEKEY = /etc/ssl/private/mail.key
    readable_by_exim:
      - /etc/ssl/certs/mail.pem
      - /etc/ssl/private/mail.key
  notify: Reload Exim

- name: Check the office network and get the relay host list
  hostguard.hosting.exim4_config:
    trusted_networks: [198.51.100.0/24, "2001:db8:51::/48"]
  register: relay

- name: Remove a file added before
  hostguard.hosting.exim4_config:
    files:
      acl/50_local_checks: ""
  notify: Reload Exim
"""

RETURN = r"""
files:
  description: The files under C(conf.d) that were (or in check mode would be) written or removed.
  returned: always
  type: list
  elements: str
  sample: ["main/00_local_tls"]
split_enabled:
  description: Whether the host was (or would be) switched to Debian's split configuration scheme.
  returned: always
  type: bool
  sample: false
relay_hosts:
  description: Loopback and O(trusted_networks) as an Exim host list, for C(MAIN_RELAY_NETS).
  returned: when O(trusted_networks) is given
  type: str
  sample: "<; 127.0.0.0/8 ; ::1 ; 198.51.100.0/24"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostguard.hosting.plugins.module_utils import exim


def main():
    module = AnsibleModule(
        argument_spec={
            "files": {"type": "dict", "default": {}},
            "readable_by_exim": {"type": "list", "elements": "path", "default": []},
            "trusted_networks": {"type": "list", "elements": "str"},
            "confdir": {"type": "path", "default": "/etc/exim4"},
            "validate": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    params = module.params
    extra = {}
    try:
        if params["trusted_networks"] is not None:
            extra["relay_hosts"] = exim.relay_hosts(params["trusted_networks"])
    except exim.EximError as error:
        module.fail_json(msg=str(error))

    def run(argv):
        return module.run_command(argv, environ_update={"LANG": "C", "LC_ALL": "C"})

    files = {name: "" if content is None else str(content) for name, content in params["files"].items()}
    try:
        result = exim.apply(run, params["confdir"], files, params["readable_by_exim"],
                            check_mode=module.check_mode, validate=params["validate"])
    except (exim.EximError, OSError, KeyError) as error:
        module.fail_json(msg=str(error))
    diff = result.pop("diff")
    if module._diff and diff:
        result["diff"] = diff
    module.exit_json(**result, **extra)


if __name__ == "__main__":
    main()
