#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: planted_files_info
short_description: Find PHP and ELF files dropped in the temporary directories, with their owners and the webshell rules they match
version_added: "0.2.0"
description:
  - Walks O(paths) (by default C(/tmp), C(/var/tmp) and C(/dev/shm), where every account and web process may
    write) and reports every PHP file (by its name, or by an open tag whatever its name, the short C(<?)
    included) and every ELF binary, with its owner, mode, size, mtime and sha256, and the webshell rules each
    matches with the line and an excerpt. Files of other kinds are reported only when a rule matches them.
  - No baseline is needed, as nothing in these directories is vouched for. A web process that was made to run
    code leaves its tools there (a shell in memory in C(/dev/shm), a miner or a proxy in C(/var/tmp), a mailer
    in PHP-FPM's private C(/tmp), which lies under C(/tmp/systemd-private-*)).
  - Directories and files are reached from each path's descriptor one name at a time, never through a symlink
    and never across a mount point, so an account racing the walk cannot make it read another tree; what cannot
    be read is named in RV(errors).
  - Reads only; needs YARA's Python binding (Debian's C(python3-yara)) and the collection's rule files, which
    the C(hostguard.hosting.webshell_rules) role ships.
author:
  - hostguard.hosting contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - hostguard.hosting.read_only
options:
  paths:
    description:
      - Absolute paths of the directories to walk. One that does not exist is listed in RV(absent).
    type: list
    elements: path
    default: [/tmp, /var/tmp, /dev/shm]
  max_size:
    description:
      - Files larger than this many bytes are classified by their first megabyte only, not matched with the
        rules nor hashed (RV(files[].scanned=false)).
    type: int
    default: 67108864
  rules_dir:
    description:
      - Directory on the managed host holding the collection's rule files C(php_content.yar),
        C(php_content_gated.yar) and C(raw_bytes.yar), as the C(hostguard.hosting.webshell_rules) role ships them.
    type: path
    default: /usr/local/share/hostguard/yara
  rule_files:
    description:
      - Users' own YARA rule files on the managed host (files, or directories of C(.yar) and C(.yara) files),
        compiled with the collection's rules, as for M(hostguard.hosting.file_integrity). One that does not
        compile fails the task, naming the file and the line, before anything is read.
    type: list
    elements: path
    default: []
  allow_sha256:
    description:
      - sha256 digests (hex) of files known to be good; they are not reported.
    type: list
    elements: str
    default: []
seealso:
  - module: hostguard.hosting.file_integrity
  - module: hostguard.hosting.quarantine
"""

EXAMPLES = r"""
- name: Look for PHP and ELF files dropped in the temporary directories
  hostguard.hosting.planted_files_info:
  register: dropped

- name: Name each one and its owner
  ansible.builtin.debug:
    msg: "{{ item.path }} ({{ item.kind }}, owner {{ item.owner }}): {{ item.findings | map(attribute='rule') | join(', ') }}"
  loop: "{{ dropped.files }}"
"""

RETURN = r"""
files:
  description: The PHP and ELF files found (and files of other kinds a rule matched), sorted by path.
  returned: always
  type: list
  elements: dict
  contains:
    path: {description: Full path., type: str}
    kind: {description: "V(php), V(elf), or V(other) for a file only a rule tells.", type: str}
    owner: {description: The owner's user name (the uid where it has none)., type: str}
    uid: {description: The owner's uid., type: int}
    group: {description: The group's name (the gid where it has none)., type: str}
    gid: {description: The group's gid., type: int}
    mode: {description: Permission bits in octal., type: str, sample: "0755"}
    executable: {description: Whether any execute bit is set., type: bool}
    size: {description: Size in bytes., type: int}
    mtime: {description: Modification time (ISO 8601 in UTC)., type: str}
    sha256: {description: The content's sha256 (null for a file larger than O(max_size))., type: str}
    scanned: {description: Whether the rules were matched against the whole file., type: bool}
    findings:
      description: The rules it matched.
      type: list
      elements: dict
      contains:
        rule: {description: The rule's name., type: str}
        description: {description: What the rule catches., type: str}
        line: {description: The matched line (trimmed)., type: str}
        line_number: {description: Its 1-based line number., type: int}
  sample:
    - path: /dev/shm/.sess.php
      kind: php
      owner: www-data
      uid: 33
      group: www-data
      gid: 33
      mode: "0644"
      executable: false
      size: 31
      mtime: "2026-12-05T08:14:03+00:00"
      sha256: 0f3c...
      scanned: true
      findings:
        - {rule: eval_request, description: eval/assert/system/include fed by request data, line: "<?php eval($_POST['x']);", line_number: 1}
errors:
  description: Paths that could not be listed or read (swapped for a symlink during the walk, unreadable), with why.
  returned: always
  type: list
  elements: dict
absent:
  description: Paths of O(paths) that do not exist on the host.
  returned: always
  type: list
  elements: str
summary:
  description: Counts of files examined, PHP and ELF files found, and files with findings.
  returned: always
  type: dict
  sample: {examined: 214, php: 1, elf: 1, with_findings: 1}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostguard.hosting.plugins.module_utils.planted_files import scan, validate_paths
from ansible_collections.hostguard.hosting.plugins.module_utils.webshell_rules import RuleError, Scanner


def main():
    module = AnsibleModule(
        argument_spec=dict(
            paths=dict(type="list", elements="path", default=["/tmp", "/var/tmp", "/dev/shm"]),
            max_size=dict(type="int", default=64 << 20),
            rules_dir=dict(type="path", default="/usr/local/share/hostguard/yara"),
            rule_files=dict(type="list", elements="path", default=[]),
            allow_sha256=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params["max_size"] < 0:
        module.fail_json(msg="max_size must be 0 or more, not %d" % params["max_size"])
    try:
        paths = validate_paths(params["paths"])
        scanner = Scanner(rule_files=params["rule_files"], allow_sha256=params["allow_sha256"],
                          rules_dir=params["rules_dir"])
    except (ValueError, RuleError) as exc:
        module.fail_json(msg=str(exc))
    report = scan(paths, scanner, max_size=params["max_size"])
    module.exit_json(changed=False, **report.as_dict())


if __name__ == "__main__":
    main()
