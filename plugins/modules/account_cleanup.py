#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: account_cleanup
short_description: Report, lock or remove unused and leavers' accounts (system, FTP, mail), archiving first
version_added: "0.1.0"
description:
  - Finds, in one pass on the host, every account of three kinds. V(system) accounts are C(/etc/passwd) entries
    (the services each reaches are C(ssh), C(ftp) when vsftpd lets it log in, and C(mail) when Dovecot
    authenticates system users). V(ftp) accounts are pure-ftpd virtual users (its C(pureftpd.passwd) file) and
    vsftpd virtual users (with C(guest_enable=YES), the keys of the C(pam_userdb) database of its PAM service,
    read with C(db_dump); a host with such a database and no C(db_dump) fails before any change).
    V(mail) accounts are the users of Dovecot's passwd-file passdbs (read from C(doveconf -n), Dovecot 2.3 and 2.4).
  - The last use of an account is the newest of its lastlog record, its wtmp and C(wtmp.1) records (read as the
    binary records they are), the login lines of sshd, Dovecot, pure-ftpd and vsftpd in the journal (only those the
    daemons logged themselves, matched by their units or by root's sshd, never lines another process forged), vsftpd's own
    log (C(vsftpd_log_file)) for its virtual users, and Dovecot's C(last_login) plugin when that writes to a
    C(file:) dict.
  - An account with no login record at all counts from its creation evidence instead, the password change date
    of C(/etc/shadow) or, without one, the ctime of its home directory. An account with no evidence at all is not
    flagged.
  - An account is flagged when its last use (or creation) is older than O(unused_days), or when it is named in
    O(remove). O(mode) decides what happens to the flagged accounts.
  - Protected accounts are never flagged or changed, and naming one in O(remove) fails before any change. They are
    root, system accounts with a uid below O(min_uid), C(nobody), the accounts in O(keep), and the account
    Ansible connects as (O(connection_user), C(SUDO_USER) and the login uid of the session).
  - An account with running processes or a crontab is reported but neither locked nor removed unless it is named
    in O(remove). When it is named and removed, it is locked and its processes are killed first, before anything is
    archived.
  - Removal archives and deletes through descriptors, never following a symlink nor crossing a mount point, and
    refuses a home whose path runs through a symlink or a directory another account owns or can write; each entry
    is deleted only while it is the file that was archived.
  - Every lock recorded under O(state_dir)C(/locks) is checked on every run (the password lock and expiry of a
    system account, the extra fields of a Dovecot user's line, a virtual user's absence from pure-ftpd's file or
    vsftpd's database). In V(lock) and V(remove) mode a lock undone behind the module's back (C(usermod -U),
    C(chage -E -1), an edited line, a database rebuilt from an old text file) is applied again, used or not, and
    reported as V(relocked); only O(mode=unlock) lifts a lock. V(report) mode names it. A lock of an account that
    is protected now is reported, never applied again.
  - When one account's lock, removal or unlock fails, the module stops and fails; its message names the accounts
    already handled in that run (with their actions), the one that failed and those not attempted, and it
    still returns RV(accounts).
author:
  - hostguard.hosting contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reports every flagged account with the action it would take and changes nothing.
  diff_mode:
    support: full
    details: One line per account changed, before and after (can log in, locked, removed with its archive).
  platform:
    platforms: posix
    details: Linux with the shadow tools (usermod, chage, userdel); C(db_dump) and C(db_load) for vsftpd virtual users.
options:
  mode:
    description:
      - V(report) only reports.
      - V(lock) disables each flagged account without deleting anything. A system account gets C(usermod --lock)
        and C(chage --expiredate 0), so sshd refuses its password and its keys and PAM refuses its FTP and mail
        logins. A Dovecot passwd-file user gets the extra fields C(nologin=y fail=y). A pure-ftpd user leaves
        C(pureftpd.passwd) (and C(pure-pw mkdb) rebuilds its database). A vsftpd virtual user leaves the
        C(pam_userdb) database, which C(db_load) rebuilds beside it and which replaces the old one once it reads
        back. What each lock replaced is recorded under O(state_dir)C(/locks).
      - V(remove) writes an archive and a manifest into O(archive_dir) first, then deletes the account everywhere
        it exists. A removal whose archive failed does not happen.
      - V(unlock) puts back what the locks of the accounts named in O(unlock) replaced.
    type: str
    choices: [report, lock, remove, unlock]
    default: report
  unused_days:
    description: Days without a login (or, for an account that never logged in, since its creation) after which
      an account counts as unused.
    type: int
    default: 180
  min_uid:
    description: System accounts with a uid below this are never touched.
    type: int
    default: 1000
  keep:
    description: Accounts never flagged or changed.
    type: list
    elements: str
    default: []
  remove:
    description:
      - Accounts flagged whatever their last use (leavers, test accounts); they are handled by O(mode) like the
        unused ones, also when they have running processes or a crontab. Names that do not exist are reported in
        RV(absent).
    type: list
    elements: str
    default: []
  unlock:
    description: The accounts to unlock with O(mode=unlock).
    type: list
    elements: str
    default: []
  connection_user:
    description: The account Ansible connects as (C(ansible_user)); it is protected.
    type: str
  archive_dir:
    description: Where O(mode=remove) writes C(<name>-<kind>-<time>.tar.gz) and C(.manifest.json), created with
      mode V(0700). It must not lie in the home of an account that may be removed.
    type: path
    default: /var/lib/hostguard/account_archive
  state_dir:
    description: Where lock records are kept, so that a lock can be undone.
    type: path
    default: /var/lib/hostguard/account_cleanup
  pureftpd_passwd:
    description: pure-ftpd's virtual users file.
    type: path
    default: /etc/pure-ftpd/pureftpd.passwd
notes:
  - Run it as root (C(become=true)).
  - Dovecot passwd-file paths with C(%) variables are not read.
seealso:
  - name: Dovecot passwd-file and its extra fields
    description: Where C(nologin) and C(fail) are described.
    link: https://doc.dovecot.org/2.3/configuration_manual/authentication/password_database_extra_fields/
"""

EXAMPLES = r"""
- name: Report accounts unused for a year
  hostguard.hosting.account_cleanup:
    unused_days: 365
  register: accounts

- name: Lock them, except the shared deploy account
  hostguard.hosting.account_cleanup:
    mode: lock
    unused_days: 365
    keep: [deploy]

- name: Remove the accounts of people who left, archiving their files first
  hostguard.hosting.account_cleanup:
    mode: remove
    remove: [tanaka, test1]
    archive_dir: /srv/archive/accounts

- name: Give a locked account back
  hostguard.hosting.account_cleanup:
    mode: unlock
    unlock: [suzuki]
"""

RETURN = r"""
accounts:
  description: Each flagged account (each changed one, with O(mode=unlock)).
  returned: always, also when the module fails after handling some accounts
  type: list
  elements: dict
  contains:
    name:
      description: The account name.
      type: str
    kind:
      description: V(system), V(ftp) (pure-ftpd or vsftpd virtual user) or V(mail) (Dovecot passwd-file user).
      type: str
    last_used:
      description: The last login found (UTC, ISO 8601), or null when none was found.
      type: str
    last_used_source:
      description: Where the last login was found (V(lastlog), V(wtmp), V(journal (dovecot)), ...).
      type: str
    created:
      description: The creation evidence used when no login was found (UTC, ISO 8601).
      type: str
    created_source:
      description: What the creation evidence is (the password change date, the home directory ctime).
      type: str
    reason:
      description: Why the account is flagged, and why it was not acted on, if so.
      type: str
    action:
      description:
        - V(reported), V(locked), V(already_locked), V(relocked) (a recorded lock that had been undone, applied
          again), V(removed) or V(unlock). In check mode, what would be done.
        - When the run failed, V(failed) for the account whose change failed and V(not_attempted) for those after it.
      type: str
    error:
      description: Why the change of this account failed.
      type: str
      returned: when its action is V(failed)
    services:
      description: The services the account can log in to (V(ssh), V(ftp), V(mail)).
      type: list
      elements: str
    archive:
      description: The archive of a removed account.
      type: str
    manifest:
      description: The manifest of that archive.
      type: str
  sample:
    - name: tanaka
      kind: system
      uid: 1003
      last_used: "2025-02-01T09:12:44Z"
      last_used_source: lastlog
      reason: "no login for 297 days (last: 2025-02-01T09:12:44Z, lastlog)"
      action: locked
      services: [ssh, ftp, mail]
locks:
  description:
    - Every recorded lock as it was found before this run changed anything, with V(state) V(in_force), V(undone)
      (C(undone) says what no longer holds), V(gone) (the account no longer exists) or V(unlocked) (lifted by
      M(hostguard.hosting.account_password) with a new password in place; with C(unlocked_at) and C(unlocked_with)),
      and C(protected), the reason a lock of an account protected now is left alone (or null).
    - Empty with O(mode=unlock).
  returned: always
  type: list
  elements: dict
  sample:
    - name: tanaka
      kind: system
      store: null
      locked_at: "2026-11-02T03:00:00Z"
      state: undone
      undone: ["password unlocked in /etc/shadow", "no longer expired (expiry never)"]
      protected: null
protected:
  description: Accounts that would be flagged but are protected, with the reason.
  returned: always
  type: list
  elements: dict
  sample:
    - name: deploy
      kind: system
      reason: in account_cleanup_keep
absent:
  description: Names in O(remove) that exist nowhere on the host (already removed).
  returned: always
  type: list
  elements: str
  sample: [test1]
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostguard.hosting.plugins.module_utils.account_cleanup import (
    AccountCleanupError,
    AccountCleanupPartialError,
    Paths,
    command_runner,
    journal_command,
    run,
    session_users,
)


def command_output(module, argv):
    if not module.get_bin_path(argv[0]):
        return None
    rc, out, _err = module.run_command(argv)
    return out if rc == 0 else None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            mode=dict(type="str", choices=["report", "lock", "remove", "unlock"], default="report"),
            unused_days=dict(type="int", default=180),
            min_uid=dict(type="int", default=1000),
            keep=dict(type="list", elements="str", default=[]),
            remove=dict(type="list", elements="str", default=[]),
            unlock=dict(type="list", elements="str", default=[]),
            connection_user=dict(type="str"),
            archive_dir=dict(type="path", default="/var/lib/hostguard/account_archive"),
            state_dir=dict(type="path", default="/var/lib/hostguard/account_cleanup"),
            pureftpd_passwd=dict(type="path", default="/etc/pure-ftpd/pureftpd.passwd"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    paths = Paths(state_dir=params["state_dir"], pureftpd_passwd=params["pureftpd_passwd"],
                  pureftpd_pdb=os.path.join(os.path.dirname(params["pureftpd_passwd"]), "pureftpd.pdb"))
    doveconf = command_output(module, ["doveconf", "-n"])
    journal = command_output(module, journal_command())
    runner = command_runner(module.run_command, module.get_bin_path)
    try:
        result = run(paths, runner, mode=params["mode"], unused_days=params["unused_days"],
                     min_uid=params["min_uid"], keep=params["keep"], remove=params["remove"],
                     connection_users=session_users(params["connection_user"]), archive_dir=params["archive_dir"],
                     unlock=params["unlock"], doveconf_text=doveconf, journal_text=journal,
                     check_mode=module.check_mode)
    except AccountCleanupPartialError as exc:
        # Some accounts were handled before one failed: say which, and return the report so far.
        partial = exc.result
        if not module._diff:
            partial.pop("diff")
        module.fail_json(msg=str(exc), **partial)
    except AccountCleanupError as exc:
        module.fail_json(msg=str(exc))
    if not module._diff:
        result.pop("diff")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
