#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: file_integrity
short_description: Record document roots and report what changed and which new files look like webshells
version_added: "0.1.0"
description:
  - Records the state of every file, directory and symlink under O(paths) (numeric uid and gid, mode, size,
    mtime, ctime, inode, file type, link target and sha256) in a database on the managed host, and compares
    the current state with it.
  - Nothing is skipped because of its owner, its mode (V(000) included) or its size. File names that are not
    valid UTF-8 or contain newlines are recorded exactly. Symlinks are recorded and never followed. Files that
    cannot be read are reported in RV(unreadable), not dropped.
  - With O(rehash=changed) a file is hashed again only when its size, ctime, mtime, inode, mode, owner or type
    changed. The ctime cannot be set back from user space, so a file modified and then given its old mtime
    with C(touch -r) is still hashed again.
  - Only changes of content, mode, owner, group, size, type and link target count as modifications; mtime,
    ctime and inode changes alone (deploys, directory updates) are not reported.
  - Added and modified files are scanned for webshell tells (see O(scan)); CMS installs under O(paths) are
    reported with their versions, read from their version files as text and never executed.
  - The core runs with the Python standard library only, and hashes large batches in one process per CPU.
  - Memory stays flat as the tree grows; the walk, the hashing and the database go a chunk of entries at a time.
author:
  - hostguard.hosting contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: O(state=check) never writes; O(state=baseline) and O(state=update) report what they would write.
  diff_mode:
    support: full
    details: A before and after summary of what the database records (counts, and one line per changed path).
  platform:
    platforms: posix
options:
  paths:
    description:
      - Absolute paths of the directories (or files) to record and check, usually document roots.
      - They must exist and must not be symlinks. A path inside another one is walked once.
    type: list
    elements: path
    required: true
  database:
    description:
      - Absolute path of the database file on the managed host. Its directory must exist.
      - It must be outside O(paths). It is written atomically with mode V(0600).
      - An SQLite file (Python's C(sqlite3) module, part of Debian's C(python3)), indexed by path and read back
        and written in the walk's order, so the memory a run takes does not grow with the number of files.
      - A database written by earlier versions (one JSON line per path) is still read and verified;
        O(state=update) replaces it with the SQLite format once (reported as changed).
    type: path
    required: true
  state:
    description:
      - V(baseline) records the current state when the database does not exist yet, and leaves an existing
        database alone.
      - V(check) compares the current state with the database and never writes anything.
      - V(update) accepts the current state, also for changed O(paths) or O(exclude); it reports what it
        accepts.
    type: str
    choices: [baseline, check, update]
    default: check
  exclude:
    description:
      - Shell-style patterns matched against full paths; a matching path is not recorded, and a matching
        directory is not entered. V(*) also matches C(/).
    type: list
    elements: str
    default: []
  rehash:
    description:
      - V(changed) hashes only the files whose type, size, mode, owner, group, mtime, ctime or inode changed,
        and reuses the recorded hash of the others.
      - V(always) hashes every file.
    type: str
    choices: [changed, always]
    default: changed
  scan:
    description:
      - Scan added and modified files (every file at the first baseline) for webshell tells with YARA, and
        report them in RV(suspicious). Needs YARA's Python binding on the managed host (Debian's
        C(python3-yara)); without it the task fails naming the package.
      - The collection's rules (C(php_content.yar), C(php_content_gated.yar) and C(raw_bytes.yar) in O(rules_dir)) match PHP files with
        comments removed, escapes decoded and names hidden in pieces put back together, and the raw bytes of
        every file. They cover runners fed by decoders, request data or request headers (also through a
        variable), variable functions and callbacks, XOR and encrypted payload shells (Godzilla, Behinder),
        includes of images and icons, reverse shells, uploaders, mass mailers, password-protected shells,
        PHP in images, and known shell kits. Files with an open tag are PHP whatever their name (C(.txt),
        C(.ico), short C(<?) tags).
    type: bool
    default: true
  rules_dir:
    description:
      - Directory on the managed host holding the collection's rule files C(php_content.yar),
        C(php_content_gated.yar) and C(raw_bytes.yar). The C(hostguard.hosting.webshell_rules) role copies them there and installs
        C(python3-yara); the C(hostguard.hosting.audit) playbook runs it before it scans.
    type: path
    default: /usr/local/share/hostguard/yara
  rule_files:
    description:
      - Users' own YARA rule files on the managed host (files, or directories whose C(.yar) and C(.yara) files
        are used), compiled with the collection's rules and matched against the raw bytes of each scanned
        file, such as PHP Malware Finder's C(php.yar) or signature-base's webshell rules.
      - The external variables C(filename), C(filepath) (the full path), C(extension) (with its dot,
        lowercase), C(filetype) (C(php), C(gif), C(jpeg), C(png), C(elf) or empty) and C(owner) (user name)
        are set for every file.
      - A rule file that does not compile fails the task, naming the file and the line, before anything is
        scanned.
      - "This replaces the regular-expression C(rules) option of earlier versions; a rule C(pattern) becomes
        C(rule name { strings: $a = /pattern/ nocase condition: $a })."
    type: list
    elements: path
    default: []
  allow_sha256:
    description:
      - sha256 digests (hex) of files that are known to be good; they are not reported as suspicious.
    type: list
    elements: str
    default: []
  database_key:
    description:
      - Key of an HMAC-SHA256 over the database. When given, the database is written with the HMAC and read
        only if the HMAC matches; an edited database, a database without HMAC, or a wrong key make the task
        fail with RV(database_trusted=false) instead of trusting the data.
      - A database written with a key cannot be read without it.
    type: str
  workers:
    description:
      - Number of processes that hash and scan when there are many files or many bytes to read (a baseline,
        O(rehash=always)). V(0) uses one per CPU the task may run on; V(1) keeps everything in one process.
    type: int
    default: 0
  report_limit:
    description:
      - Maximum number of items returned in each list. The counts in RV(summary) are always complete, and
        RV(summary.truncated) tells whether a list was cut. V(0) returns everything.
    type: int
    default: 1000
notes:
  - Run it as root (C(become=true)) to read files of every owner; files the remote user cannot read are
    reported in RV(unreadable).
  - Keep the database (and a copy of it) where the accounts that own the document roots cannot write.
seealso:
  - name: AIDE
    description: Advanced Intrusion Detection Environment, the general-purpose file integrity checker.
    link: https://aide.github.io/
"""

EXAMPLES = r"""
- name: Record the known-good state of the document roots
  hostguard.hosting.file_integrity:
    paths: [/var/www/site1, /home/user/www]
    database: /var/lib/hostguard/integrity/site1.db
    state: baseline
    exclude: ["*/cache/*", "*.log"]
    database_key: "{{ vault_integrity_key }}"

- name: Check what changed and which new files look like webshells
  hostguard.hosting.file_integrity:
    paths: [/var/www/site1, /home/user/www]
    database: /var/lib/hostguard/integrity/site1.db
    state: check
    exclude: ["*/cache/*", "*.log"]
    rehash: changed
    scan: true
    database_key: "{{ vault_integrity_key }}"
  register: integrity

- name: Stop when something looks planted
  ansible.builtin.fail:
    msg: "{{ integrity.suspicious | map(attribute='path') | unique | list }}"
  when: integrity.summary.suspicious > 0

- name: Add PHP Malware Finder's rules and allow a known-good file that a rule flags
  hostguard.hosting.file_integrity:
    paths: [/var/www/site1]
    database: /var/lib/hostguard/integrity/site1.db
    rule_files:
      - /usr/local/share/php-malware-finder/php.yar
    allow_sha256:
      - edb89d09b913b577efbd63f53446d060c97d339166531661a5196a0cf6b796bd

- name: Accept the state after a reviewed deploy
  hostguard.hosting.file_integrity:
    paths: [/var/www/site1, /home/user/www]
    database: /var/lib/hostguard/integrity/site1.db
    state: update
    exclude: ["*/cache/*", "*.log"]
    database_key: "{{ vault_integrity_key }}"
  diff: true
"""

RETURN = r"""
added:
  description: Paths that are not in the database, with what is recorded for them now. Empty at a first baseline.
  returned: always
  type: list
  elements: dict
  sample:
    - path: /var/www/site1/wp-content/uploads/2024/05/cache.php
      type: file
      mode: "0644"
      uid: 33
      gid: 33
      size: 1377
      sha256: 5e880acfd99667c3e91e62fa7414caa1e8e8794335ef9635583fd8c925bfdc4b
removed:
  description: Paths in the database that are gone, with what was recorded for them.
  returned: always
  type: list
  elements: dict
modified:
  description:
    - Paths whose content, mode, owner, group, size, type or link target changed.
    - C(changes) lists which, using V(content), V(mode), V(owner), V(group), V(size), V(type) and V(link_target);
      C(before) and C(after) hold the recorded and the current attributes.
  returned: always
  type: list
  elements: dict
  sample:
    - path: /var/www/site1/wp-includes/load.php
      changes: [content]
      before:
        type: file
        mode: "0644"
        uid: 33
        gid: 33
        size: 52407
        sha256: 6db7d803e74f1ffa7d8f5adc0bf95b3e15bf4c8373fffadf546227cc6c6742cb
      after:
        type: file
        mode: "0644"
        uid: 33
        gid: 33
        size: 52407
        sha256: f39592393ef0859cb196a52693d2cea00fb2df784b3c04ae54aa7cadb8e562f8
suspicious:
  description:
    - Added and modified files (every file at a first baseline) that match a webshell rule, one item per
      file and rule, with the rule's description, the matched line trimmed to 200 characters and its line
      number (null for rules on the path). For PHP files the line is shown as the rules saw it, with comments
      removed and hidden names put back together.
  returned: always
  type: list
  elements: dict
  sample:
    - path: /var/www/site1/wp-content/uploads/2024/05/cache.php
      rule: eval_decoded
      description: "eval/assert/system/include fed by a decoder (base64_decode, gzinflate, str_rot13, ...): a payload hidden
        from readers"
      line: "<?php @eval(base64_decode($_POST['z'])); ?>"
      line_number: 1
      sha256: 5e880acfd99667c3e91e62fa7414caa1e8e8794335ef9635583fd8c925bfdc4b
unreadable:
  description: Paths that could not be read, listed or examined, with the reason. Their absence proves nothing,
    so entries below them are kept and not reported as removed.
  returned: always
  type: list
  elements: dict
  sample:
    - path: /home/user/www/private
      error: "cannot list directory: Permission denied"
cms:
  description: CMS installs found under O(paths) (WordPress, Joomla), with the version read from their version file.
  returned: always
  type: list
  elements: dict
  sample:
    - cms: wordpress
      path: /var/www/site1
      version: 6.4.3
      version_file: /var/www/site1/wp-includes/version.php
summary:
  description: Counts, work done and time taken.
  returned: always
  type: dict
  contains:
    entries:
      description: Number of paths recorded now.
      type: int
    files:
      description: Number of regular files among them.
      type: int
    directories:
      description: Number of directories among them.
      type: int
    symlinks:
      description: Number of symlinks among them.
      type: int
    added:
      description: Number of added paths (before O(report_limit)).
      type: int
    removed:
      description: Number of removed paths.
      type: int
    modified:
      description: Number of modified paths.
      type: int
    suspicious:
      description: Number of findings.
      type: int
    unreadable:
      description: Number of paths that could not be read.
      type: int
    files_hashed:
      description: Number of files read and hashed in this run.
      type: int
    bytes_hashed:
      description: Number of bytes read and hashed in this run.
      type: int
    workers:
      description: Number of processes that hashed in this run.
      type: int
    truncated:
      description: Whether a list was cut to O(report_limit) items.
      type: bool
    seconds:
      description: Wall-clock time of the run.
      type: float
  sample:
    entries: 41230
    files: 40112
    directories: 1118
    symlinks: 0
    added: 1
    removed: 0
    modified: 1
    suspicious: 2
    unreadable: 0
    files_hashed: 2
    bytes_hashed: 53784
    workers: 2
    truncated: false
    seconds: 0.41
database:
  description: The database path.
  returned: always
  type: str
  sample: /var/lib/hostguard/integrity/site1.db
database_signed:
  description: Whether the database is read and written with an HMAC (O(database_key) given).
  returned: always
  type: bool
database_trusted:
  description: V(false) when the task failed because the database did not pass verification.
  returned: failure
  type: bool
  sample: false
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostguard.hosting.plugins.module_utils.file_integrity import (
    IntegrityError,
    UntrustedDatabaseError,
    run,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            paths=dict(type="list", elements="path", required=True),
            database=dict(type="path", required=True),
            state=dict(type="str", choices=["baseline", "check", "update"], default="check"),
            exclude=dict(type="list", elements="str", default=[]),
            rehash=dict(type="str", choices=["changed", "always"], default="changed"),
            scan=dict(type="bool", default=True),
            rules_dir=dict(type="path", default="/usr/local/share/hostguard/yara"),
            rule_files=dict(type="list", elements="path", default=[]),
            allow_sha256=dict(type="list", elements="str", default=[]),
            database_key=dict(type="str", no_log=True),
            workers=dict(type="int", default=0),
            report_limit=dict(type="int", default=1000),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        result = run(
            paths=params["paths"], database=params["database"], state=params["state"], exclude=params["exclude"],
            rehash=params["rehash"], scan=params["scan"], database_key=params["database_key"],
            rules_dir=params["rules_dir"], rule_files=params["rule_files"],
            allow_sha256=params["allow_sha256"], workers=params["workers"], report_limit=params["report_limit"],
            check_mode=module.check_mode, diff=module._diff,
        )
    except UntrustedDatabaseError as exc:
        module.fail_json(msg=str(exc), database=params["database"], database_trusted=False)
    except IntegrityError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
