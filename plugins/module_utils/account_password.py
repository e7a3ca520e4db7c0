# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Give a system account a new password so that its old one is never accepted again, not for an instant.

The leaked-password runbook's answer to a mailbox someone else logged in to (Dovecot's PAM passdb serves system
accounts). The order is what makes it safe:

1. The new password is set with ``chpasswd`` (the host's own hashing, the password on stdin) while the lock that
   hostguard-watch or account_cleanup recorded is still in force: the lock expired the account (``chage -E 0``),
   so PAM refuses every login until the lock is lifted, and chpasswd has replaced the locked old hash, so nothing
   can ever put it back. Without a lock the old hash is replaced in one rename of /etc/shadow.
2. The account's open Dovecot sessions are ended (``doveadm kick``): whoever holds one logged in with the old
   password. No new one can be opened with it any more.
3. The lock is lifted with the new password in place (account_cleanup's ``unlock_with_new_password``: the expiry
   is put back, the password field is left alone) and its record is kept, closed, saying so. Asked not to lift
   it, the password is locked again (``usermod --lock``) so that the lock stays whole.
4. The change is recorded on the host (``record_dir/ACCOUNT.json``), where the audit reads it back.

Every run is a change: a second run sets a second new password. The password itself is never written on the
host other than as chpasswd's hash.
"""

from __future__ import annotations

import json
import os
import re
import time

from ansible_collections.hostguard.hosting.plugins.module_utils import account_cleanup
from ansible_collections.hostguard.hosting.plugins.module_utils.atomic_file import write_atomically

ACCOUNT_NAME = re.compile(r"^[a-z_][a-z0-9_.-]{0,31}$")
# Dovecot 2.4: "1 connections kicked" (also "0 connections kicked", with exit code 0).
KICKED = re.compile(r"\b(\d+) connections? kicked\b")
# Dovecot 2.3 names the users instead (exit code 0), or says "no users kicked" with exit code 68.
KICKED_USERS = "kicked connections from the following users"
DOVEADM_NOT_FOUND = 68
DOVEADM_TEMPFAIL = 75  # anvil's socket refused: Dovecot is not running, so it holds no session
NOT_INSTALLED = 127


class PasswordChangeError(Exception):
    """Bad input, or a step that failed; the message says what was changed before it."""


def check_account_name(name):
    if not isinstance(name, str) or not ACCOUNT_NAME.match(name):
        raise PasswordChangeError("account %r is not an account name (lower-case letters, digits, _ . -, "
                                  "at most 32, not starting with a digit): nothing was changed" % (name,))


def check_password(password):
    """chpasswd reads NAME:PASSWORD lines: a password with a line break could set another account's."""
    if not isinstance(password, str) or len(password) < 8 or "\n" in password or "\r" in password:
        raise PasswordChangeError("the new password must be 8 or more characters on one line: nothing was changed")


def open_sessions(run, name):
    """The account's Dovecot connections as `doveadm who -1 NAME` lists them; 0 where Dovecot is not installed or
    not running (no session can exist then)."""
    rc, out, _err = run(["doveadm", "who", "-1", name])
    if rc in (NOT_INSTALLED, DOVEADM_TEMPFAIL):
        return 0
    if rc != 0:
        return None  # unknown: the kick's own answer decides
    return sum(1 for line in out.splitlines()[1:] if line.split() and line.split()[0] == name)


def end_sessions(run, name, listed=None):
    """End every Dovecot session of `name`; return how many were ended (0 when there was none).

    Dovecot 2.4 says how many; 2.3 only names the users, so its count is what `doveadm who` listed before the
    kick (at least one, since it kicked)."""
    rc, out, err = run(["doveadm", "kick", name])
    text = "%s\n%s" % (out, err)
    counted = KICKED.search(text)
    if rc == 0 and counted:
        return int(counted.group(1))
    if rc == 0 and KICKED_USERS in text:
        return max(listed or 0, 1)
    if rc in (DOVEADM_NOT_FOUND, NOT_INSTALLED) or (rc == DOVEADM_TEMPFAIL and "anvil" in text):
        return 0
    raise PasswordChangeError("doveadm kick %s failed (rc %d): %s" % (name, rc, text.strip()))


def change(paths, run, name, password, unlock=True, record_dir="/var/lib/hostguard/password_changes",
           min_uid=1000, check_mode=False, now=None):
    """Change `name`'s password, end its sessions, lift its recorded lock (when `unlock`), record the change.

    `run(argv, data=None)` -> (rc, stdout, stderr), rc 127 for a command that is not installed. Returns the
    result: account, changed_at, sessions_open (before), sessions_ended, lock (the recorded lock found, or None),
    unlocked, record (the change record's path) and, in check mode, what would be done.
    """
    check_account_name(name)
    if not check_mode:  # check mode needs no password: nothing is set
        check_password(password)
    entry = next((e for e in account_cleanup.parse_passwd(account_cleanup.read_text(paths.passwd))
                  if e["name"] == name), None)
    if entry is None:
        raise PasswordChangeError("this host has no account %s: nothing was changed" % name)
    if entry["uid"] == 0 or entry["uid"] < min_uid:
        raise PasswordChangeError("%s has uid %d, below %d: a system account, not a customer's (nothing was "
                                  "changed)" % (name, entry["uid"], min_uid))
    if not os.path.isabs(record_dir):
        raise PasswordChangeError("record_dir %r is not an absolute path: nothing was changed" % (record_dir,))
    host = account_cleanup.Host(paths, run, check_mode=check_mode, now=now)
    record, undone = account_cleanup.recorded_system_lock(paths, name)
    lock = None
    if record is not None:
        lock = {"locked_at": record.get("locked_at"), "state": "undone" if undone else "in_force", "undone": undone}
    changed_at = account_cleanup.iso(int(now if now is not None else time.time()))
    result = {"account": name, "changed": True, "changed_at": changed_at, "lock": lock,
              "sessions_open": open_sessions(run, name), "sessions_ended": 0, "unlocked": False,
              "record": os.path.join(record_dir, "%s.json" % name)}
    if check_mode:
        result.update(sessions_ended=None, unlocked=bool(unlock and record is not None))
        return result

    rc, out, err = run(["chpasswd"], data="%s:%s" % (name, password))
    if rc != 0:
        raise PasswordChangeError("chpasswd failed for %s (rc %d): %s; its password was not changed"
                                  % (name, rc, (err or out).strip()))
    done = "the password of %s was changed" % name
    try:
        if record is not None and not unlock and not record.get("password_was_locked"):
            host.command("usermod", "--lock", name)  # chpasswd dropped the lock's "!": the lock stays whole
        result["sessions_ended"] = end_sessions(run, name, result["sessions_open"])
        done += " and %d session(s) ended" % result["sessions_ended"]
        if unlock and record is not None:
            result["unlocked"] = host.unlock_with_new_password(name) is not None
    except (account_cleanup.AccountCleanupError, PasswordChangeError, OSError) as exc:
        _write_change(result)
        raise PasswordChangeError("%s, then: %s. The lock, if any, is still in force; run again for another new "
                                  "password, or lift it with account_cleanup mode=unlock" % (done, exc)) from exc
    _write_change(result)
    return result


def _write_change(result):
    """The host's record of the change (no password, no hash): what the audit reads back."""
    record = {key: result[key] for key in ("account", "changed_at", "sessions_ended", "unlocked", "record")}
    record["lock_locked_at"] = (result["lock"] or {}).get("locked_at")
    os.makedirs(os.path.dirname(result["record"]), mode=0o700, exist_ok=True)
    write_atomically(result["record"], (json.dumps(record, indent=1, sort_keys=True) + "\n").encode(), 0o600)
