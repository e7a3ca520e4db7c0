#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: quarantine
short_description: Lock planted files or whole document roots away from the compromised account, and restore them exactly
version_added: "0.1.0"
description:
  - With O(state=quarantined), records every entry of each O(path) (a file, or a directory and everything in it) in a
    manifest, then makes it owned by C(root:root) with mode V(0000), so neither the account that owns it nor the web
    server can read, run, change or re-chmod it. Directories are locked too, so the account can no longer list,
    rename or delete what is inside.
  - The manifest records, for every file, directory and symlink, the type, numeric uid and gid, mode, atime and
    mtime in nanoseconds, size, inode, inode generation and link count, the sha256 of regular files, symlink
    targets, extended attributes (POSIX ACLs included) and the immutable and append-only flags. It is written atomically into
    O(manifest_dir) before anything is changed. File names that are not valid UTF-8 are recorded exactly.
  - The account is shut out first. Metadata is recorded and the manifest written, every entry is locked, and only then
    are the contents hashed (and copied to O(evidence_dir)) from the locked inodes, and the manifest completed with the
    hashes. So a file the account keeps rewriting, or a huge sparse file, cannot keep the tree open while it is read.
    A sparse file is hashed over its data only (C(sha256_data), over each data extent as C(start:length) and its bytes), so
    its holes are never read; its evidence copy is a GNU sparse member that C(tar) extracts with its holes.
  - With O(state=restored), checks every recorded entry first (the same inode and type, the same content hash) and
    then puts back exactly what the manifest recorded, numeric owners, modes, xattrs, times and flags included.
    The inode generation tells the quarantined file apart from a new file that was given its inode number
    (ext4 reuses them at once); file systems without it (tmpfs) are checked by inode number alone.
    An entry whose content changed, that was removed, or where a different file appeared since, is left as it is
    and reported in RV(results[].failures); the manifest is kept until everything is restored.
  - Quarantining a quarantined path changes nothing (entries unlocked since are locked again); restoring a path
    that is not quarantined changes nothing.
  - Root never acts outside the docroot, whatever the account does meanwhile. Each docroot is opened once, one component
    at a time from C(/) without following symlinks, and refused when a symlink is on its path or when an ancestor can be
    changed by another account (owned by neither root nor the account whose directory it lies in, or writable by group or
    others without the sticky bit). Everything else is reached from that descriptor, one name at a time, with
    C(openat2) (C(RESOLVE_BENEATH), C(RESOLVE_NO_SYMLINKS), C(RESOLVE_NO_XDEV)) where the kernel has it, else with
    C(O_NOFOLLOW) and a mount check, and changed through a descriptor of the entry that was checked. Symlinks and special
    files are changed through C(O_PATH) descriptors, never by name. Mount points are never crossed. A file with hard links
    owned by another account than the docroot's is left alone (reported), as locking it would lock a file outside.
  - The manifest records the docroot's device and inode; a restore that finds another directory at the docroot's path fails
    and says so, and one that finds a symlink there is refused.
  - What each level protects against. Owner C(root:root) and mode V(0000) stop the account (and the web server)
    from reading, executing, writing or re-chmodding the entries; a plain C(chmod 000) would not, since the owner
    can chmod back. A quarantined directory also stops the account from renaming or deleting anything inside it.
    The owner of the B(parent) directory of a quarantined path can still rename or delete that path (losing the
    evidence or putting a new file at the path); O(immutable=true) stops that too, and stops root processes from
    changing the entries until the flag is cleared. O(evidence_dir) keeps a copy in any case.
  - Neither level closes descriptors that are already open; stop the account's processes (PHP-FPM pool, cron,
    shells) first, or a running process may keep writing to a file it opened before.
author:
  - hostguard.hosting contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports per path what would be quarantined or restored (restores verify content hashes) and writes nothing.
  diff_mode:
    support: full
    details: Owner and mode of each path before and after; for a directory, counts of owners and modes over the tree.
  platform:
    platforms: posix
    details: Linux. The immutable flag needs a file system that has it (ext4, XFS, Btrfs, tmpfs) and CAP_LINUX_IMMUTABLE.
options:
  path:
    description:
      - Absolute paths to quarantine or restore; each a file or a directory (quarantined with everything in it).
      - An item may also be a dict with a C(path) key (and optionally C(path_base64), the exact bytes of a name that
        is not UTF-8), so the RV(hostguard.hosting.file_integrity#module:suspicious) list of
        M(hostguard.hosting.file_integrity) can be given as it is. Paths given more than once are handled once.
      - Each must lie under one of O(docroots) as given, with no symlink between the docroot and it (refused, naming
        it); the last component is never followed, so a planted symlink is quarantined as a symlink.
      - With O(state=quarantined) each must exist (unless it was quarantined before and has vanished since, which is
        reported).
    type: list
    elements: raw
    required: true
    aliases: [paths]
  state:
    description:
      - V(quarantined) records and locks the paths; V(restored) puts them back as the manifest recorded.
    type: str
    choices: [quarantined, restored]
    default: quarantined
  docroots:
    description:
      - The document roots the paths must lie under. A docroot may be given in O(path) to quarantine all of it.
      - Each must be an existing directory given without symlinks (a docroot on a symlinked path is refused, naming the
        symlink and where it points), whose ancestors no other account can change. V(/) and system directories (V(/etc),
        V(/usr), V(/var), V(/home), V(/var/lib), ...) are refused.
    type: list
    elements: path
    required: true
  manifest_dir:
    description:
      - Where manifests are kept, created with mode V(0700) if absent. It must be owned by root and not accessible
        by group or others, and must be outside O(docroots).
      - C(<key>.json) is the manifest of a quarantined path, moved to C(restored/) once restored and to
        C(superseded/) when another file took the quarantined file's place.
    type: path
    default: /var/lib/hostguard/quarantine
  immutable:
    description:
      - Also set the immutable flag (C(chattr +i)) on every locked file and directory, so the owner of a parent
        directory cannot rename or delete them either. Symlinks and special files cannot carry the flag.
      - Needs CAP_LINUX_IMMUTABLE (often dropped in containers) and a file system with the flag; the task fails
        before any change where either is missing.
    type: bool
    default: false
  evidence_dir:
    description:
      - When given, a C(<key>-<time>.tar.gz) with the manifest and a copy of every recorded entry (numeric owners,
        modes and times, sparse files with their holes) is written here, read from the locked entries. If it cannot be
        written the path stays quarantined and a warning says so. It must be outside O(docroots); it is created with
        mode V(0700).
    type: path
notes:
  - Run it as root (C(become=true)).
  - The inode change time (ctime) cannot be set from user space, so it is the only recorded attribute a restore
    cannot put back.
  - The flags are read and set with the C(FS_IOC_GETFLAGS) and C(FS_IOC_SETFLAGS) ioctls in their generic
    encoding (x86, ARM); where the encoding differs the file system is reported as having no flags.
  - The task fails when any path was refused or could not be handled completely, after handling all the others.
seealso:
  - module: hostguard.hosting.file_integrity
  - name: Linux Malware Detect quarantine
    description: Moves files away and restores owners by name; this module locks in place and restores numeric ids.
    link: https://www.rfxn.com/projects/linux-malware-detect/
"""

EXAMPLES = r"""
- name: Find what was planted
  hostguard.hosting.file_integrity:
    paths: [/var/www/site1]
    database: /var/lib/hostguard/integrity/site1.db
  register: integrity

- name: Quarantine every suspicious file, with an evidence copy
  hostguard.hosting.quarantine:
    path: "{{ integrity.suspicious }}"
    docroots: [/var/www/site1]
    immutable: true
    evidence_dir: /var/lib/hostguard/evidence
  when: integrity.suspicious | length > 0

- name: Quarantine a whole document root where the damage is spreading
  hostguard.hosting.quarantine:
    path: [/var/www/site2]
    docroots: [/var/www/site2]
  diff: true

- name: Put the document root back once it is clean
  hostguard.hosting.quarantine:
    path: [/var/www/site2]
    docroots: [/var/www/site2]
    state: restored
"""

RETURN = r"""
results:
  description:
    - One item per path, outer paths first.
    - C(status) is V(quarantined), V(already_quarantined), V(restored), V(not_quarantined), V(refused) (not touched,
      for the reason in C(msg)) or V(failed) (C(msg) and C(failures) say what was and was not done).
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The path with the symlinks of its parent directories resolved.
      type: str
    path_base64:
      description: The exact bytes of RV(results[].path), present only when it is not valid UTF-8.
      type: str
    given:
      description: The path as given, present only when it differs from RV(results[].path).
      type: str
    status:
      description: What happened to the path.
      type: str
    msg:
      description: One line saying what was done, or why not.
      type: str
    manifest:
      description: The manifest of the path (after a restore, where it was moved to).
      type: str
    evidence:
      description: The evidence copy, if one was made.
      type: str
    entries:
      description: Number of entries recorded for the path.
      type: int
    changed_entries:
      description: Number of entries locked or restored (that would be, in check mode).
      type: int
    failures:
      description: Each entry that could not be locked or restored, with C(path), C(status) (V(failed) or
        V(refused)) and C(reason).
      type: list
      elements: dict
    links_outside:
      description: Hard links to the recorded files from outside the path. They share the locked inodes, so they
        are locked as well.
      type: int
    warnings:
      description: Files that changed while the evidence copy was made, and entries a tar file cannot hold.
      type: list
      elements: str
    covered_by:
      description: The quarantined directory a path lies in, when that is why it was not handled on its own.
      type: str
    superseded_manifest:
      description: Where the manifest of a file that was replaced at the path since its quarantine was moved.
      type: str
  sample:
    - path: /var/www/site1/wp-content/uploads/2024/05/cache.php
      status: quarantined
      msg: "quarantined 1 entry (owner root:root, mode 0000, immutable); manifest /var/lib/hostguard/quarantine/5d1f0c2a9e6b4f7d8a3c1e0b9f2d4a6c.json"
      manifest: /var/lib/hostguard/quarantine/5d1f0c2a9e6b4f7d8a3c1e0b9f2d4a6c.json
      evidence: /var/lib/hostguard/evidence/5d1f0c2a9e6b4f7d8a3c1e0b9f2d4a6c-20261125T131500.000000Z.tar.gz
      entries: 1
      changed_entries: 1
      failures: []
      links_outside: 0
      warnings: []
counts:
  description: Number of paths with each status, and of entries changed and failed over all paths.
  returned: always
  type: dict
  sample:
    quarantined: 1
    already_quarantined: 0
    restored: 0
    not_quarantined: 0
    refused: 0
    failed: 0
    entries_changed: 1
    entries_failed: 0
manifest_dir:
  description: The manifest directory.
  returned: always
  type: str
  sample: /var/lib/hostguard/quarantine
state:
  description: The requested state.
  returned: always
  type: str
  sample: quarantined
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostguard.hosting.plugins.module_utils.quarantine import (
    DEFAULT_MANIFEST_DIR,
    QuarantineError,
    run,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="list", elements="raw", required=True, aliases=["paths"]),
            state=dict(type="str", choices=["quarantined", "restored"], default="quarantined"),
            docroots=dict(type="list", elements="path", required=True),
            manifest_dir=dict(type="path", default=DEFAULT_MANIFEST_DIR),
            immutable=dict(type="bool", default=False),
            evidence_dir=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        result = run(
            paths=params["path"], state=params["state"], docroots=params["docroots"],
            manifest_dir=params["manifest_dir"], immutable=params["immutable"], evidence_dir=params["evidence_dir"],
            check_mode=module.check_mode, diff=module._diff,
        )
    except QuarantineError as exc:
        module.fail_json(msg=str(exc))
    if result.pop("failed"):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
