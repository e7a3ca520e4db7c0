# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Find unused and leavers' accounts (system, FTP, mail) and report, lock or remove them.

Pure standard library: it runs on managed hosts that only have python3.

Accounts, by kind:
- ``system``: /etc/passwd entries with a uid of at least ``min_uid`` (never
  ``nobody``); the services they reach are ``ssh``, ``ftp`` (vsftpd with
  local_enable and the user not refused by /etc/ftpusers or its user_list) and
  ``mail`` (Dovecot with a pam, shadow or passwd passdb).
- ``ftp``: pure-ftpd virtual users (its pureftpd.passwd text file).
- ``mail``: Dovecot passwd-file users (the files of its passwd-file passdbs).

Last use is the newest of: lastlog (binary records, by uid), wtmp and wtmp.1
(binary utmp records), journal login lines of sshd, Dovecot and pure-ftpd, and
Dovecot's last_login plugin when it writes to a ``file:`` dict. An account with
none of these never logged in as far as the host knows; its age is then taken
from its creation evidence: the password change date in /etc/shadow, else the
ctime of its home directory. An account without any evidence is not flagged.

Lock disables without deleting: system accounts get ``usermod -L`` (no
password) and ``chage -E 0`` (expired: sshd refuses keys too, PAM refuses
FTP and mail); Dovecot passwd-file users get ``nologin=y fail=y`` (every
Dovecot login, SMTP AUTH through Dovecot included, fails); pure-ftpd users
leave its passwd file. Each lock writes a record of what it replaced under
``state_dir/locks``, which unlock puts back. A system account whose password was
changed under its lock (change_password) is unlocked without its old password:
only the expiry is put back, and the record stays, closed, saying so.

Remove writes a tar.gz (numeric owners) of the home directory, mail spool and
crontab plus a manifest with the sha256 of the archive and of every file in it,
checks the archive reads back, and only then deletes the account from every
place it exists. A failed archive leaves the account untouched.
"""

from __future__ import annotations

import calendar
import datetime
import errno
import hashlib
import io
import json
import os
import re
import stat
import struct
import tarfile
import tempfile
import time

from ansible_collections.hostguard.hosting.plugins.module_utils import safe_fs
from ansible_collections.hostguard.hosting.plugins.module_utils.atomic_file import atomic_file, write_atomically

# struct lastlog of glibc on Linux: int32 ll_time, char ll_line[32], char ll_host[256].
LASTLOG = struct.Struct("<i32s256s")
# struct utmp of glibc on Linux (x86_64, arm64): 384 bytes.
UTMP = struct.Struct("<hxxi32s4s32s256shhiii16s20x")
USER_PROCESS = 7
NOBODY_UID = 65534
# Home directories that are never archived or deleted as an account's own, whoever owns them.
SHARED_DIRS = frozenset([
    "/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib64", "/nonexistent", "/opt", "/proc", "/root",
    "/run", "/sbin", "/srv", "/sys", "/tmp", "/usr", "/var", "/var/lib", "/var/mail", "/var/spool", "/var/www",
    "/var/vmail", "/home/vmail",
])
LOCK_FIELDS = ("nologin=y", "fail=y")
SYSTEM_PASSDB_DRIVERS = ("pam", "shadow", "passwd")

# Dovecot 2.3 logs "Login: user=<...>", 2.4 "Logged in: user=<...>".
DOVECOT_LOGIN = re.compile(r"\b(?:imap|pop3|submission|managesieve)-login: (?:Login|Logged in): user=<([^>]*)>")
PUREFTPD_LOGIN = re.compile(r"\[INFO\] (\S+) is now logged in")
SSHD_LOGIN = re.compile(r"\bAccepted \S+ for (\S+) from ")
# vsftpd names the login as typed: a virtual user's own name, not its guest_username.
VSFTPD_LOGIN = re.compile(r"\[(\S+)\] OK LOGIN: ")
PAM_TOKENS = re.compile(r"\[[^\]]*\]|\S+")


class AccountCleanupError(Exception):
    """Bad input or a host the module cannot read: nothing was changed."""


class AccountCleanupPartialError(AccountCleanupError):
    """One account's lock, removal or unlock failed after others were handled in the same run.

    ``result`` is the run's result so far: the accounts handled (with their actions), the one that failed
    (action ``failed``, with ``error``) and those not attempted (action ``not_attempted``).
    """

    def __init__(self, message, result):
        super().__init__(message)
        self.result = result


def _partial_failure(result, failed, pending, exc):
    """The error for a run stopped by one account: what was done, what failed, what was left."""
    failed.update(action="failed", error=str(exc))
    result["accounts"].append(failed)
    for item in pending:
        item["action"] = "not_attempted"
        result["accounts"].append(item)
    done = ["%s %s (%s)" % (item["kind"], item["name"], item["action"]) for item in result["accounts"]
            if item["action"] in ("locked", "removed", "unlock")]
    return AccountCleanupPartialError(
        "%s %s failed: %s. Already done in this run: %s. Not attempted: %s." % (
            failed["kind"], failed["name"], exc, ", ".join(done) or "none",
            ", ".join("%s %s" % (item["kind"], item["name"]) for item in pending) or "none"), result)


class Paths:
    """Where the host keeps what is read and changed; tests point these into a temporary directory."""

    def __init__(self, root="/", state_dir="/var/lib/hostguard/account_cleanup", **overrides):
        def at(path):
            return os.path.join(root, path.lstrip("/"))
        self.passwd = at("/etc/passwd")
        self.shadow = at("/etc/shadow")
        self.lastlog = at("/var/log/lastlog")
        self.wtmp = [at("/var/log/wtmp"), at("/var/log/wtmp.1")]
        self.vsftpd_conf = at("/etc/vsftpd.conf")
        self.ftpusers = at("/etc/ftpusers")
        self.pam_dir = at("/etc/pam.d")
        self.root = root
        self.pureftpd_passwd = at("/etc/pure-ftpd/pureftpd.passwd")
        self.pureftpd_pdb = at("/etc/pure-ftpd/pureftpd.pdb")
        self.mail_spool = at("/var/mail")
        self.crontabs = at("/var/spool/cron/crontabs")
        self.proc = at("/proc")
        self.state_dir = state_dir
        for key, value in overrides.items():
            if value is not None:
                setattr(self, key, value)


# --------------------------------------------------------------------------- parsing

def read_text(path):
    try:
        with open(path, "r", encoding="utf-8", errors="surrogateescape") as stream:
            return stream.read()
    except FileNotFoundError:
        return None
    except PermissionError as exc:
        raise AccountCleanupError("cannot read %s: run as root (become: true)" % path) from exc


def parse_passwd(text):
    """/etc/passwd lines as dicts (name, uid, gid, home, shell)."""
    accounts = []
    for line in (text or "").splitlines():
        fields = line.split(":")
        if len(fields) < 7 or line.startswith(("#", "+", "-")):
            continue
        try:
            uid, gid = int(fields[2]), int(fields[3])
        except ValueError:
            continue
        accounts.append({"name": fields[0], "uid": uid, "gid": gid, "home": fields[5], "shell": fields[6]})
    return accounts


def parse_shadow(text):
    """/etc/shadow as {name: {password, lastchg (days or None), expire (days or None)}}."""
    entries = {}
    for line in (text or "").splitlines():
        fields = line.split(":")
        if len(fields) < 8:
            continue
        entries[fields[0]] = {"password": fields[1], "lastchg": _int_or_none(fields[2]),
                              "expire": _int_or_none(fields[7])}
    return entries


def _int_or_none(value):
    try:
        return int(value)
    except ValueError:
        return None


def read_lastlog(path, uids):
    """{uid: (time, line, host)} from the binary lastlog file, for the uids that have a record."""
    found = {}
    try:
        with open(path, "rb") as stream:
            for uid in uids:
                stream.seek(uid * LASTLOG.size)
                record = stream.read(LASTLOG.size)
                if len(record) < LASTLOG.size:
                    continue
                when, line, host = LASTLOG.unpack(record)
                if when > 0:
                    found[uid] = (when, _cstr(line), _cstr(host))
    except FileNotFoundError:
        pass
    return found


def read_wtmp(paths):
    """{user: (time, line, host)}: the newest login (USER_PROCESS record) of each user in the wtmp files."""
    found = {}
    for path in paths:
        try:
            with open(path, "rb") as stream:
                data = stream.read()
        except FileNotFoundError:
            continue
        for offset in range(0, len(data) - UTMP.size + 1, UTMP.size):
            fields = UTMP.unpack_from(data, offset)
            if fields[0] != USER_PROCESS:
                continue
            user, when = _cstr(fields[4]), fields[9]
            if user and when > found.get(user, (0,))[0]:
                found[user] = (when, _cstr(fields[2]), _cstr(fields[5]))
    return found


def _cstr(raw):
    return raw.split(b"\0", 1)[0].decode("utf-8", "replace")


def parse_vsftpd_conf(text):
    """The vsftpd settings that decide which system users may log in, with vsftpd's defaults."""
    settings = {"local_enable": "NO", "userlist_enable": "NO", "userlist_deny": "YES",
                "userlist_file": "/etc/vsftpd.user_list", "guest_enable": "NO", "pam_service_name": "ftp",
                "vsftpd_log_file": "/var/log/vsftpd.log", "use_localtime": "NO"}
    for line in (text or "").splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            settings[key.strip()] = value.strip()
    for key in ("local_enable", "userlist_enable", "userlist_deny", "guest_enable", "use_localtime"):
        settings[key] = settings[key].upper() in ("YES", "TRUE", "1")
    return settings


def name_list(text):
    return {line.strip() for line in (text or "").splitlines() if line.strip() and not line.startswith("#")}


def pam_userdb_files(pam_text):
    """The Berkeley DB files of the pam_userdb lines of the auth stack (db=PATH names PATH.db)."""
    files = []
    for line in (pam_text or "").splitlines():
        tokens = PAM_TOKENS.findall(line.split("#", 1)[0])
        if len(tokens) < 3 or tokens[0].lstrip("-") != "auth" or not tokens[2].endswith("pam_userdb.so"):
            continue
        for arg in tokens[3:]:
            if arg.startswith("db=") and len(arg) > 3 and arg[3:] + ".db" not in files:
                files.append(arg[3:] + ".db")
    return files


def parse_db_dump(text):
    """`db_dump -p` output: (header lines, [(key line, value line)]) with the lines as printed (escaped)."""
    header, pairs, data, pending = [], [], False, None
    for line in (text or "").splitlines():
        if not data:
            header.append(line)
            data = line == "HEADER=END"
        elif line == "DATA=END":
            break
        elif line.startswith(" "):
            if pending is None:
                pending = line
            else:
                pairs.append((pending, line))
                pending = None
    if not data or pending is not None:
        raise AccountCleanupError("db_dump printed no complete key/value data")
    return header, pairs


def unprint(line):
    """A `db_dump -p` item as text: a leading space, backslash doubled, other bytes as backslash and two hex digits."""
    out, index, raw = bytearray(), 0, line[1:].encode("utf-8", "surrogateescape")
    while index < len(raw):
        if raw[index:index + 1] == b"\\":
            if raw[index + 1:index + 2] == b"\\":
                out += b"\\"
                index += 2
                continue
            out.append(int(raw[index + 1:index + 3], 16))
            index += 3
            continue
        out.append(raw[index])
        index += 1
    return out.decode("utf-8", "surrogateescape")


def parse_vsftpd_log(text, localtime=False):
    """vsftpd's own log (vsftpd_log_file): {user: newest OK LOGIN time}."""
    found = {}
    for line in (text or "").splitlines():
        match = VSFTPD_LOGIN.search(line)
        if not match:
            continue
        try:
            parsed = time.strptime(line[:24], "%a %b %d %H:%M:%S %Y")
        except ValueError:
            continue
        # use_localtime=NO (the default) writes GMT.
        when = int(time.mktime(parsed) if localtime else calendar.timegm(parsed))
        found[match.group(1)] = max(when, found.get(match.group(1), 0))
    return found


def vsftpd_allows(name, settings, ftpusers, user_list):
    """Whether vsftpd (with Debian's PAM file, which refuses /etc/ftpusers) lets a system user log in."""
    if not settings["local_enable"] or name in ftpusers:
        return False
    if settings["userlist_enable"]:
        return (name not in user_list) if settings["userlist_deny"] else (name in user_list)
    return True


# `doveconf -n` prints a sensitive value (last_login_key among them) as this comment; `doveconf -h` prints it.
HIDDEN = "# hidden"


def doveconf_tree(text):
    """`doveconf -n` as (version, tree); a tree is {"settings": {name: value}, "sections": [(header, tree)]}, the
    sections in order (2.3's passdb sections have no name to tell them apart)."""
    version, root = None, {"settings": {}, "sections": []}
    stack = [root]
    for raw in (text or "").splitlines():
        line = raw.strip()
        if line.startswith("#"):
            match = re.match(r"#\s*(\d+\.\d+)", line)
            if match and version is None:
                version = match.group(1)
        elif line.endswith("{"):
            section = {"settings": {}, "sections": []}
            stack[-1]["sections"].append((" ".join(line[:-1].split()), section))
            stack.append(section)
        elif line == "}":
            if len(stack) > 1:
                stack.pop()
        elif "=" in line:
            key, value = line.split("=", 1)
            value = value.strip()
            stack[-1]["settings"][key.strip()] = None if value.startswith(HIDDEN) else value
    return version, root


def _sections(tree, kind):
    """(name, settings, tree) of the sections of ``tree`` whose header starts with ``kind``."""
    for header, section in tree["sections"]:
        words = header.split(None, 1)
        if words[0] == kind:
            yield (words[1] if len(words) > 1 else ""), section["settings"], section


class Dovecot23(object):
    """Dovecot 2.3 (Debian 12): passdb { driver, args = [options] PATH, deny }; the last_login plugin's settings
    in plugin { last_login_dict = file:PATH, last_login_key }."""

    key_setting = "plugin/last_login_key"
    default_key = "last-login/%u"

    @staticmethod
    def passdb(_name, settings, _defaults):
        paths = [token for token in settings.get("args", "").split() if "=" not in token]
        return {"driver": settings.get("driver", ""), "path": paths[-1] if paths else "",
                "deny": settings.get("deny") == "yes"}

    @staticmethod
    def last_login(tree):
        plugin = {}
        for _name, settings, _section in _sections(tree, "plugin"):
            plugin.update(settings)
        uri = plugin.get("last_login_dict") or ""
        return {"path": uri[len("file:"):] if uri.startswith("file:") else None, "key": plugin.get("last_login_key")}


class Dovecot24(object):
    """Dovecot 2.4 (Debian 13): passdb NAME { driver (the name unless set), passwd_file_path, deny }; the
    last_login plugin's last_login_key and its named filter last_login { dict file { path } }."""

    key_setting = "last_login_key"
    default_key = "last-login/%{user}"

    @staticmethod
    def passdb(name, settings, defaults):
        # A setting outside the section is every section's default (passwd_file_path set once for all).
        return {"driver": settings.get("driver") or name,
                "path": settings.get("passwd_file_path") or defaults.get("passwd_file_path") or "",
                "deny": settings.get("deny", defaults.get("deny")) == "yes"}

    @staticmethod
    def last_login(tree):
        found = {"path": None, "key": tree["settings"].get("last_login_key")}
        for _name, settings, section in _sections(tree, "last_login"):
            if "key" in settings:
                found["key"] = settings["key"]
            for driver, dict_settings, _dict in _sections(section, "dict"):
                if driver == "file":
                    found["path"] = dict_settings.get("path") or dict_settings.get("dict_file_path")
        return found


def parse_doveconf(text, setting=None):
    """`doveconf -n` output of Dovecot 2.3 or 2.4: {'version', 'passdbs': [{driver, path, deny}], 'last_login':
    {path (of its file dict, or None), key}}. ``setting(name)`` gives `doveconf -h NAME` (a hidden or default key)."""
    version, tree = doveconf_tree(text)
    newer = version is not None and tuple(int(part) for part in version.split(".")) >= (2, 4) or \
        "dovecot_config_version" in tree["settings"]
    generation = Dovecot24() if newer else Dovecot23()
    passdbs = [generation.passdb(name, settings, tree["settings"])
               for name, settings, _section in _sections(tree, "passdb")]
    last_login = generation.last_login(tree)
    if last_login["path"] and not last_login["key"]:
        last_login["key"] = (setting(generation.key_setting) if setting else None) or generation.default_key
    return {"version": version, "passdbs": passdbs, "last_login": last_login}


def dovecot_passwd_files(config):
    """The literal file paths of Dovecot's passwd-file passdbs (deny lists and %-variable paths left out)."""
    files = []
    for passdb in config["passdbs"]:
        if passdb["driver"] == "passwd-file" and not passdb["deny"] and passdb["path"] and \
                "%" not in passdb["path"] and passdb["path"] not in files:
            files.append(passdb["path"])
    return files


def dovecot_serves_system_users(config):
    return any(passdb["driver"] in SYSTEM_PASSDB_DRIVERS and not passdb["deny"] for passdb in config["passdbs"])


def parse_colon_file(text):
    """Dovecot passwd-file or pure-ftpd passwd file: [{name, password, uid, gid, home, extra, line}]."""
    entries = []
    for number, line in enumerate((text or "").splitlines()):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split(":")
        entries.append({
            "name": fields[0], "password": fields[1] if len(fields) > 1 else "",
            "uid": _int_or_none(fields[2]) if len(fields) > 2 else None,
            "home": fields[5] if len(fields) > 5 else "",
            # Extra fields may hold colons themselves (userdb_mail=maildir:~/Maildir).
            "extra": ":".join(fields[7:]).split(),
            "line": line, "number": number,
        })
    return entries


def parse_file_dict(text, key_pattern="last-login/%u"):
    """Dovecot's file dict (key and value on alternating lines) as {user: time} for the last_login keys."""
    parts = key_pattern.replace("%{user}", "%u").split("%u", 1)
    prefix, suffix = parts[0], parts[1] if len(parts) > 1 else ""
    found = {}
    lines = (text or "").splitlines()
    for key, value in zip(lines[0::2], lines[1::2]):
        key = key.split("/", 1)[1] if key.startswith(("shared/", "priv/")) else key
        if not (key.startswith(prefix) and key.endswith(suffix)):
            continue
        user = key[len(prefix):len(key) - len(suffix) if suffix else None]
        when = _int_or_none(value.strip())
        if user and when:
            while when > 10 ** 11:  # last_login_precision ms, us or ns
                when //= 1000
            found[user] = max(when, found.get(user, 0))
    return found


# Where the journal's login lines may come from: fields journald sets itself, which no local process can choose.
# A customer's program can call itself sshd and log "Accepted ... for leaver" (PHP's syslog() can too), but it
# cannot run as root, nor inside the units of daemons that run no customer program. ssh.service is not one of
# those: where pam_systemd does not move logins into session scopes, a customer's shell stays in it.
JOURNAL_GREP = "Login: user=<|Logged in: user=<|is now logged in|Accepted |OK LOGIN: "
JOURNAL_SOURCES = (
    ("_UID=0", "_COMM=sshd", "_COMM=sshd-session"),
    ("_SYSTEMD_UNIT=dovecot.service",),
    ("_SYSTEMD_UNIT=pure-ftpd.service",),
    ("_SYSTEMD_UNIT=vsftpd.service",),
)


def session_users(given=None, environ=None, loginuid_path="/proc/self/loginuid"):
    """The account of this session: the given user (ansible_user), sudo's caller and the audit login uid."""
    environ = os.environ if environ is None else environ
    users = [given, environ.get("SUDO_USER")]
    try:
        with open(loginuid_path) as stream:
            loginuid = int(stream.read().strip())
        if loginuid != 4294967295:
            import pwd
            users.append(pwd.getpwuid(loginuid).pw_name)
    except (OSError, ValueError, KeyError):
        pass
    return [user for user in users if user]


def command_runner(run_command, which):
    """The runner the core gets: argv -> (rc, out, err), rc 127 for a command that is not installed."""
    def runner(argv):
        if not which(argv[0]):
            return 127, "", "%s: command not found" % argv[0]
        return run_command(argv)
    return runner


def journal_command():
    """journalctl's argv for the login lines, from trusted sources only (groups joined with '+')."""
    argv = ["journalctl", "--no-pager", "--quiet", "--output=short-unix", "--grep", JOURNAL_GREP]
    for index, group in enumerate(JOURNAL_SOURCES):
        if index:
            argv.append("+")
        argv.extend(group)
    return argv


def parse_journal_logins(text):
    """`journalctl -o short-unix` lines: {'ssh'|'mail'|'ftp': {user: newest time}}."""
    found = {"ssh": {}, "mail": {}, "ftp": {}, "vsftpd": {}}
    for line in (text or "").splitlines():
        stamp = line.split(" ", 1)[0]
        try:
            when = int(float(stamp))
        except ValueError:
            continue
        for service, pattern in (("mail", DOVECOT_LOGIN), ("ftp", PUREFTPD_LOGIN), ("ssh", SSHD_LOGIN),
                                 ("vsftpd", VSFTPD_LOGIN)):
            match = pattern.search(line)
            if match:
                users = found[service]
                users[match.group(1)] = max(when, users.get(match.group(1), 0))
    return found


# --------------------------------------------------------------------------- collection

def iso(when):
    if when is None:
        return None
    return datetime.datetime.fromtimestamp(when, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _newest(evidence):
    """(time, source) of the newest piece of evidence, or (None, None)."""
    present = [(when, source) for when, source in evidence if when]
    return max(present) if present else (None, None)


def _ctime(path):
    try:
        return int(os.stat(path).st_ctime)
    except OSError:
        return None


def processes_by_uid(proc):
    counts = {}
    try:
        pids = [entry for entry in os.listdir(proc) if entry.isdigit()]
    except OSError:
        return counts
    for pid in pids:
        status = read_text(os.path.join(proc, pid, "status")) or ""
        for line in status.splitlines():
            if line.startswith("Uid:"):
                uid = int(line.split()[1])
                counts[uid] = counts.get(uid, 0) + 1
                break
    return counts


def collect(paths, min_uid=1000, doveconf_text=None, journal_text=None, now=None, userdb_dump=None,
            doveconf_setting=None):
    """Every candidate account with its kind, services, last use and creation evidence.

    userdb_dump(path) gives the `db_dump -p` text of a pam_userdb database (vsftpd's virtual users);
    doveconf_setting(name) the value `doveconf -h NAME` prints, or None.
    """
    now = int(now if now is not None else time.time())
    passwd = parse_passwd(read_text(paths.passwd))
    shadow = parse_shadow(read_text(paths.shadow))
    dovecot = parse_doveconf(doveconf_text, doveconf_setting)
    journal = parse_journal_logins(journal_text)
    last_login = {}
    if dovecot["last_login"]["path"]:
        last_login = parse_file_dict(read_text(dovecot["last_login"]["path"]), dovecot["last_login"]["key"])
    vsftpd_text = read_text(paths.vsftpd_conf)
    vsftpd = parse_vsftpd_conf(vsftpd_text) if vsftpd_text is not None else None
    ftpusers = name_list(read_text(paths.ftpusers))
    user_list = name_list(read_text(vsftpd["userlist_file"])) if vsftpd and vsftpd["userlist_enable"] else set()
    system_mail = dovecot_serves_system_users(dovecot)
    processes = processes_by_uid(paths.proc)

    system = [entry for entry in passwd if entry["uid"] != NOBODY_UID]
    lastlog = read_lastlog(paths.lastlog, sorted({entry["uid"] for entry in system}))
    wtmp = read_wtmp(paths.wtmp)
    accounts = []
    for entry in system:
        name, uid = entry["name"], entry["uid"]
        services = ["ssh"]
        if vsftpd is not None and vsftpd_allows(name, vsftpd, ftpusers, user_list):
            services.append("ftp")
        if system_mail:
            services.append("mail")
        logins = [
            (lastlog.get(uid, (None,))[0], "lastlog"),
            (wtmp.get(name, (None,))[0], "wtmp"),
            (journal["ssh"].get(name), "journal (sshd)"),
        ]
        if system_mail:
            logins += [(journal["mail"].get(name), "journal (dovecot)"), (last_login.get(name), "dovecot last_login")]
        lastchg = shadow.get(name, {}).get("lastchg")
        created = [(lastchg * 86400 if lastchg else None, "password change date (/etc/shadow)")]
        if not created[0][0]:
            created = [(_ctime(entry["home"]), "home directory ctime")]
        account = _account(name, "system", uid, entry["home"], services, logins, created, now)
        account.update(protected_uid=uid < min_uid or uid == 0, processes=processes.get(uid, 0),
                       crontab=os.path.exists(os.path.join(paths.crontabs, name)),
                       locked=_system_locked(shadow.get(name)), source=paths.passwd)
        accounts.append(account)

    for path in dovecot_passwd_files(dovecot):
        for entry in parse_colon_file(read_text(path)):
            logins = [(journal["mail"].get(entry["name"]), "journal (dovecot)"),
                      (last_login.get(entry["name"]), "dovecot last_login")]
            created = [(_ctime(entry["home"]) if entry["home"] else None, "home directory ctime")]
            account = _account(entry["name"], "mail", entry["uid"], entry["home"], ["mail"], logins, created, now)
            account.update(locked=all(field in entry["extra"] for field in LOCK_FIELDS), source=path)
            accounts.append(account)

    for entry in parse_colon_file(read_text(paths.pureftpd_passwd)):
        logins = [(journal["ftp"].get(entry["name"]), "journal (pure-ftpd)")]
        created = [(_ctime(entry["home"]) if entry["home"] else None, "home directory ctime")]
        account = _account(entry["name"], "ftp", entry["uid"], entry["home"], ["ftp"], logins, created, now)
        account.update(locked=False, source=paths.pureftpd_passwd, store="pureftpd")
        accounts.append(account)

    # vsftpd virtual users (guest_enable): the pam_userdb databases of its PAM service.
    if vsftpd is not None and vsftpd["guest_enable"]:
        vsftpd_log = parse_vsftpd_log(read_text(_under(paths, vsftpd["vsftpd_log_file"])), vsftpd["use_localtime"])
        pam_text = read_text(os.path.join(paths.pam_dir, vsftpd["pam_service_name"]))
        for db in pam_userdb_files(pam_text):
            if not os.path.exists(_under(paths, db)):
                continue
            if userdb_dump is None:
                raise AccountCleanupError("vsftpd's virtual users are in %s, which needs db_dump to read" % db)
            for key, _value in parse_db_dump(userdb_dump(_under(paths, db)))[1]:
                name = unprint(key)
                logins = [(vsftpd_log.get(name), "vsftpd log"), (journal["vsftpd"].get(name), "journal (vsftpd)")]
                created = [(_mtime(_under(paths, db)), "database mtime (%s)" % db)]
                account = _account(name, "ftp", None, "", ["ftp"], logins, created, now)
                account.update(locked=False, source=_under(paths, db), store="userdb")
                accounts.append(account)

    # FTP users that a lock took out of their file or database are still accounts: locked ones.
    for record in _lock_records(paths, "ftp"):
        store = record.get("store", "pureftpd")
        if not any(a["kind"] == "ftp" and a["name"] == record["name"] and a.get("store") == store for a in accounts):
            account = _account(record["name"], "ftp", None, record.get("home", ""), ["ftp"],
                               [(record.get("last_used"), record.get("last_used_source"))],
                               [(record.get("created"), record.get("created_source"))], now)
            account.update(locked=True, source=record.get("file", paths.pureftpd_passwd), store=store)
            accounts.append(account)
    return accounts


def _under(paths, path):
    """A path the host's configuration names, inside the tree the Paths point at."""
    return os.path.join(paths.root, path.lstrip("/"))


def _mtime(path):
    try:
        return int(os.stat(path).st_mtime)
    except OSError:
        return None


def _account(name, kind, uid, home, services, logins, created, now):
    last_used, last_source = _newest(logins)
    created_at, created_source = _newest(created)
    return {"name": name, "kind": kind, "uid": uid, "home": home, "services": services,
            "last_used": last_used, "last_used_source": last_source,
            "created": created_at, "created_source": created_source,
            "protected_uid": False, "processes": 0, "crontab": False}


def _system_locked(shadow_entry):
    return bool(shadow_entry) and shadow_entry["password"].startswith("!") and shadow_entry["expire"] == 0


# --------------------------------------------------------------------------- decision

def protection(account, keep, connection_users):
    """Why an account must never be touched, or None."""
    if account["name"] == "root" or (account["kind"] == "system" and account["uid"] == 0):
        return "root"
    if account["name"] in connection_users:
        return "the account Ansible connects as"
    if account["name"] in keep:
        return "in account_cleanup_keep"
    if account["protected_uid"]:
        return "system account (uid below account_cleanup_min_uid)"
    return None


def check_removals(accounts, remove, keep, connection_users, min_uid):
    """Fail, naming the value, when an account to remove is protected."""
    for name in remove:
        if not isinstance(name, str) or not name or any(c in name for c in ":\n/") or name in (".", ".."):
            raise AccountCleanupError("account_cleanup_remove: %r is not an account name" % (name,))
        for account in accounts:
            if account["name"] != name:
                continue
            why = protection(account, keep, connection_users)
            if why:
                raise AccountCleanupError(
                    "account_cleanup_remove names %s (%s account, uid %s), which is protected: %s; "
                    "min_uid is %d. Nothing was changed." % (name, account["kind"], account["uid"], why, min_uid))


def plan(accounts, mode, unused_days, keep, remove, connection_users, now=None):
    """Flag unused and named accounts; decide each one's action. Returns (flagged, protected)."""
    now = int(now if now is not None else time.time())
    threshold = now - unused_days * 86400
    flagged, protected = [], []
    for account in accounts:
        why = protection(account, keep, connection_users)
        named = account["name"] in remove
        if why:
            if account["last_used"] is None or account["last_used"] < threshold:
                protected.append({"name": account["name"], "kind": account["kind"], "reason": why})
            continue
        if named:
            reason = "named in account_cleanup_remove (leaver)"
        elif account["last_used"] is not None:
            if account["last_used"] >= threshold:
                continue
            reason = "no login for %d days (last: %s, %s)" % (
                (now - account["last_used"]) // 86400, iso(account["last_used"]), account["last_used_source"])
        elif account["created"] is not None:
            if account["created"] >= threshold:
                continue
            reason = "never logged in; created %d days ago (%s: %s)" % (
                (now - account["created"]) // 86400, account["created_source"], iso(account["created"]))
        else:
            continue
        action = "report"
        hold = None
        if account["processes"] or account["crontab"]:
            hold = ", ".join(filter(None, [
                "%d running processes" % account["processes"] if account["processes"] else "",
                "a crontab" if account["crontab"] else ""]))
        if mode == "lock":
            action = "already_locked" if account["locked"] else "lock"
        elif mode == "remove":
            action = "remove"
        if action in ("lock", "remove") and hold and not named:
            action = "report"
            reason += "; not %s: it has %s (name it in account_cleanup_remove)" % (
                "locked" if mode == "lock" else "removed", hold)
        item = {"name": account["name"], "kind": account["kind"], "last_used": iso(account["last_used"]),
                "reason": reason, "action": action, "uid": account["uid"], "services": account["services"],
                "last_used_source": account["last_used_source"], "created": iso(account["created"]),
                "created_source": account["created_source"], "locked": account["locked"],
                "processes": account["processes"], "crontab": account["crontab"]}
        flagged.append(item)
    return flagged, protected


# --------------------------------------------------------------------------- changes

class Host:
    """Applies the decisions; `run` is a callable(argv) -> (rc, stdout, stderr)."""

    def __init__(self, paths, run, check_mode=False, now=None):
        self.paths = paths
        self.run = run
        self.check_mode = check_mode
        self.now = now

    def command(self, *argv):
        rc, out, err = self.run(list(argv))
        if rc == 127 and argv[0] in ("db_dump", "db_load"):
            raise AccountCleanupError("%s is not installed (Debian: db-util); vsftpd's virtual users are in a "
                                      "Berkeley DB that only it reads and writes" % argv[0])
        if rc != 0:
            raise AccountCleanupError("%s failed (rc %d): %s" % (" ".join(argv), rc, (err or out).strip()))
        return out

    def doveconf_setting(self, name):
        """What `doveconf -h NAME` prints, or None where Dovecot is missing or does not know the setting."""
        rc, out, _err = self.run(["doveconf", "-h", name])
        return (out.strip() or None) if rc == 0 else None

    # ---- lock / unlock

    def lock(self, account, source):
        kind, name = account["kind"], account["name"]
        record = {"name": name, "kind": kind, "locked_at": iso(int(self.now or time.time())),
                  "last_used": account["last_used"], "last_used_source": account["last_used_source"],
                  "created": account["created"], "created_source": account["created_source"]}
        if kind == "system":
            entry = parse_shadow(read_text(self.paths.shadow)).get(name, {})
            record.update(password_was_locked=entry.get("password", "").startswith("!"),
                          expire_before=entry.get("expire"))
            if self.check_mode:
                return
            self._write_record(record)
            if not record["password_was_locked"]:  # usermod would add a second "!" that unlock leaves behind
                self.command("usermod", "--lock", name)
            self.command("chage", "--expiredate", "0", name)
        elif kind == "mail":
            record.update(file=source)
            self._edit_colon_file(source, name, record, with_lock_fields)
        elif account.get("store") == "userdb":
            header, pairs = self._userdb_read(source)
            entry = [pair for pair in pairs if unprint(pair[0]) == name]
            record.update(file=source, store="userdb", entry=list(entry[0]) if entry else None)
            if not entry or self.check_mode:
                return
            self._write_record(record)
            self._userdb_write(source, header, [pair for pair in pairs if unprint(pair[0]) != name])
        elif kind == "ftp":
            record.update(file=source, home=account.get("home", ""))
            self._edit_colon_file(source, name, record, lambda line: None)
            self._pureftpd_mkdb()

    def unlock(self, account):
        kind, name = account["kind"], account["name"]
        record_path = self._record_path(kind, name)
        record = json.loads(read_text(record_path) or "null")
        if record is None or record.get("unlocked_at"):
            return False
        if self.check_mode:
            return True
        if kind == "system":
            if not record.get("password_was_locked"):
                self.command("usermod", "--unlock", name)
            expire = record.get("expire_before")
            self.command("chage", "--expiredate", str(expire) if expire is not None else "-1", name)
        elif kind == "mail":
            self._replace_line(record["file"], name, record["line"])
        elif record.get("store") == "userdb":
            header, pairs = self._userdb_read(record["file"])
            if not any(unprint(key) == name for key, _value in pairs):
                self._userdb_write(record["file"], header, pairs + [tuple(record["entry"])])
        elif kind == "ftp":
            text = read_text(record["file"]) or ""
            if not any(e["name"] == name for e in parse_colon_file(text)):
                self._rewrite(record["file"], text + ("" if not text or text.endswith("\n") else "\n")
                              + record["line"] + "\n")
                self._pureftpd_mkdb()
        os.unlink(record_path)
        return True

    def unlock_with_new_password(self, name):
        """Lift the recorded lock of system account `name` whose password was changed while the lock held.

        The new hash is in /etc/shadow already (chpasswd replaced the locked old one), so the password field is
        left alone - `usermod --unlock` has nothing of the old password to put back - and only the expiry the
        lock set is undone. The record is kept, closed: when the lock was lifted, and that it was with a new
        password. Returns the closed record, or None when no lock of the account is recorded (or it was closed).
        """
        record_path = self._record_path("system", name)
        record = json.loads(read_text(record_path) or "null")
        if record is None or record.get("unlocked_at"):
            return None
        record.update(unlocked_at=iso(int(self.now or time.time())), unlocked_with="new_password")
        if self.check_mode:
            return record
        expire = record.get("expire_before")
        self.command("chage", "--expiredate", str(expire) if expire is not None else "-1", name)
        write_atomically(record_path, (json.dumps(record, indent=1, sort_keys=True) + "\n").encode(), 0o600)
        return record

    # ---- remove

    def remove(self, account, source, archive_dir, vsftpd_user_list=None):
        """Shut the account out, archive, verify the archive, then delete. Returns (archive, manifest) paths.

        A system account is locked and its processes ended first, so nothing it runs can change its files while
        they are archived or race the deletion. Every file is reached through descriptors (safe_fs): the home
        is opened once, refused when its path runs through a symlink or a directory another account can change,
        never crossed out of at a mount point, and each entry is deleted only when it is the one archived.
        """
        kind, name, uid = account["kind"], account["name"], account["uid"]
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self.now or time.time()))
        base = os.path.join(archive_dir, "%s-%s-%s" % (name.replace("/", "_"), kind, stamp))
        archive, manifest_path = base + ".tar.gz", base + ".manifest.json"
        with _Members() as members:
            home = account.get("home") or ""
            if home and self._owns(home, account, source):
                members.add_tree(home, uid if kind == "system" else None)
            if kind == "system":
                members.add_file(os.path.join(self.paths.mail_spool, name), uid)
                members.add_file(os.path.join(self.paths.crontabs, name), None)
            if self.check_mode:
                return archive, manifest_path
            if kind == "system":
                self.lock(account, source)
                self._end_processes(account)
            lines = self._account_lines(account, source)
            entries = self._archive(account, members, lines, archive, manifest_path)
            # Only now, with the archive written and read back, is anything deleted.
            if kind == "system":
                self.command("userdel", name)
                members.delete(entries)
                if vsftpd_user_list and os.path.exists(vsftpd_user_list):
                    text = read_text(vsftpd_user_list)
                    kept = [line for line in text.splitlines() if line.strip() != name]
                    if len(kept) != len(text.splitlines()):
                        self._rewrite(vsftpd_user_list, "\n".join(kept) + ("\n" if kept else ""))
            elif account.get("store") == "userdb":
                header, pairs = self._userdb_read(source)
                self._userdb_write(source, header, [pair for pair in pairs if unprint(pair[0]) != name])
            else:
                self._edit_colon_file(source, name, None, lambda line: None)
                if kind == "ftp":
                    self._pureftpd_mkdb()
                members.delete(entries)
        self._discard_record(kind, name)
        return archive, manifest_path

    def _end_processes(self, account):
        """KILL every process of the (locked) account, and check that none is left."""
        uid = account["uid"]
        for _attempt in range(10):
            if not processes_by_uid(self.paths.proc).get(uid):
                return
            self.run(["pkill", "--signal", "KILL", "--uid", str(uid)])
            time.sleep(0.2)
        if processes_by_uid(self.paths.proc).get(uid):
            raise AccountCleanupError("%s %s is locked, but its processes keep running after pkill: not archived nor "
                                      "removed" % (account["kind"], account["name"]))

    def _owns(self, home, account, source):
        """Whether a home directory is the account's own to archive and delete (not shared, not a system one)."""
        home = os.path.normpath(home)
        if home in SHARED_DIRS or os.path.dirname(home) == "/":
            return False
        if account["kind"] == "system":
            try:
                return os.lstat(home).st_uid == account["uid"]
            except OSError:
                return False
        if account["kind"] == "ftp":
            return False  # a pure-ftpd user's home is a site of a system account: archived only with that account
        others = [e for e in parse_colon_file(read_text(source)) if e["name"] != account["name"]]
        return not any(os.path.normpath(e["home"]) == home or home.startswith(os.path.normpath(e["home"]) + "/")
                       for e in others if e["home"])

    def _account_lines(self, account, source):
        lines = {}
        if account["kind"] == "system":
            for label, path in (("passwd", self.paths.passwd), ("shadow", self.paths.shadow)):
                lines[label] = [line for line in (read_text(path) or "").splitlines()
                                if line.split(":", 1)[0] == account["name"]]
        elif account.get("store") == "userdb":
            # The key and value as db_dump -p prints them, which db_load reads back.
            lines[source] = [line for pair in self._userdb_read(source)[1] if unprint(pair[0]) == account["name"]
                             for line in pair]
        else:
            lines[source] = [e["line"] for e in parse_colon_file(read_text(source)) if e["name"] == account["name"]]
        return lines

    def _archive(self, account, members, lines, archive, manifest_path):
        """Write and read back the archive and its manifest; return the manifest's entries."""
        entries = []
        try:
            os.makedirs(os.path.dirname(archive), mode=0o700, exist_ok=True)
            with atomic_file(archive, mode=0o600) as stream:
                with tarfile.open(fileobj=stream, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
                    members.archive(tar, entries)
                    record = json.dumps({"account": _public(account), "lines": lines}, indent=1).encode()
                    info = tarfile.TarInfo("hostguard-account.json")
                    info.size, info.mtime, info.mode = len(record), int(time.time()), 0o600
                    tar.addfile(info, io.BytesIO(record))
            digest = _sha256_file(archive)
            with tarfile.open(archive, "r:gz") as tar:
                names = set(tar.getnames())
            missing = [e["path"] for e in entries if e.get("archived", True) and e["path"].lstrip("/") not in names]
            if missing:
                raise AccountCleanupError("the archive %s lacks %s" % (archive, ", ".join(missing[:5])))
            manifest = {"format": "hostguard-account-archive", "version": 1, "account": _public(account),
                        "archive": archive, "archive_sha256": digest, "created": iso(int(time.time())),
                        "lines": lines, "entries": [_without_private(entry) for entry in entries]}
            write_atomically(manifest_path, (json.dumps(manifest, indent=1, sort_keys=True) + "\n").encode(), 0o600)
        except (OSError, tarfile.TarError, safe_fs.UnsafePath) as exc:
            for path in (archive, manifest_path):
                if os.path.exists(path):
                    os.unlink(path)
            locked = " (it stays locked: mode=unlock undoes that)" if account["kind"] == "system" else ""
            raise AccountCleanupError("archiving %s %s into %s failed, so it was not removed%s: %s"
                                      % (account["kind"], account["name"], archive, locked, exc)) from exc
        return entries

    # ---- files

    def _record_path(self, kind, name):
        return os.path.join(self.paths.state_dir, "locks", "%s-%s.json" % (kind, name.replace("/", "_")))

    def _write_record(self, record):
        path = self._record_path(record["kind"], record["name"])
        previous = json.loads(read_text(path) or "null")
        if previous is not None and not previous.get("unlocked_at"):  # the state before the first lock is kept
            return
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        write_atomically(path, (json.dumps(record, indent=1, sort_keys=True) + "\n").encode(), 0o600)

    def _discard_record(self, kind, name):
        path = self._record_path(kind, name)
        if os.path.exists(path):
            os.unlink(path)

    def _edit_colon_file(self, path, name, record, change):
        """Replace (or, when change gives None, drop) the line of `name`; record the old line first."""
        text = read_text(path)
        if text is None:
            raise AccountCleanupError("%s is gone" % path)
        out, old = [], None
        for line in text.splitlines():
            if line.split(":", 1)[0] == name and not line.startswith("#") and old is None:
                old = line
                new = change(line)
                if new is not None:
                    out.append(new)
            else:
                out.append(line)
        if old is None or self.check_mode:
            return
        if record is not None:
            record["line"] = old
            self._write_record(record)
        self._rewrite(path, "\n".join(out) + ("\n" if out else ""))

    def _replace_line(self, path, name, line):
        text = read_text(path) or ""
        out = [line if existing.split(":", 1)[0] == name else existing for existing in text.splitlines()]
        self._rewrite(path, "\n".join(out) + "\n")

    @staticmethod
    def _rewrite(path, text):
        """Replace a file atomically, keeping its owner and mode (a Dovecot file is often root:dovecot 0640)."""
        st = os.stat(path)
        with atomic_file(path, mode=stat.S_IMODE(st.st_mode)) as stream:
            os.fchown(stream.fileno(), st.st_uid, st.st_gid)
            stream.write(text.encode("utf-8", "surrogateescape"))

    def _userdb_read(self, path):
        return parse_db_dump(self.command("db_dump", "-p", path))

    def _userdb_write(self, path, header, pairs):
        """Rebuild a pam_userdb database with db_load beside it, check it reads back, then rename it over."""
        st = os.stat(path)
        directory = os.path.dirname(path)
        fd, dump = tempfile.mkstemp(dir=directory, prefix=".hostguard-", suffix=".dump")  # 0600: it holds passwords
        new = dump[:-len(".dump")] + ".db"
        try:
            with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as stream:
                stream.write("\n".join(header + [line for pair in pairs for line in pair] + ["DATA=END"]) + "\n")
            self.command("db_load", "-f", dump, new)
            if sorted(parse_db_dump(self.command("db_dump", "-p", new))[1]) != sorted(tuple(pair) for pair in pairs):
                raise AccountCleanupError("the rebuilt %s does not read back as written" % path)
            os.chown(new, st.st_uid, st.st_gid)
            os.chmod(new, stat.S_IMODE(st.st_mode))
            os.replace(new, path)
        finally:
            for leftover in (dump, new):
                if os.path.exists(leftover):
                    os.unlink(leftover)

    def _pureftpd_mkdb(self):
        if self.check_mode:  # the passwd file was not changed either
            return
        if os.path.exists(self.paths.pureftpd_pdb) or os.path.exists(os.path.dirname(self.paths.pureftpd_pdb)):
            rc, _out, _err = self.run(["pure-pw", "mkdb", self.paths.pureftpd_pdb, "-f", self.paths.pureftpd_passwd])
            if rc not in (0, 127):
                raise AccountCleanupError("pure-pw mkdb failed (rc %d)" % rc)


def with_lock_fields(line):
    """A passwd-file line with nologin=y and fail=y among its extra fields (the 8th field on)."""
    fields = line.split(":")
    fields += [""] * (8 - len(fields))
    extra = ":".join(fields[7:]).split()
    extra += [field for field in LOCK_FIELDS if field not in extra]
    return ":".join(fields[:7] + [" ".join(extra)])


def _lock_records(paths, kind, closed=False):
    """The lock records of `kind` (every kind for ""); with `closed`, also those of locks lifted with a new
    password (they carry unlocked_at)."""
    directory = os.path.join(paths.state_dir, "locks")
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    records = []
    for entry in names:
        if entry.startswith(kind + "-" if kind else "") and entry.endswith(".json"):
            record = json.loads(read_text(os.path.join(directory, entry)) or "null")
            if record and (closed or not record.get("unlocked_at")):
                records.append(record)
    return records


# --------------------------------------------------------------------------- locks in force

class _SystemLock(object):
    """usermod --lock and chage --expiredate 0: both must hold (keys still log in to an account that only has
    its password locked; a password still logs in where only the expiry was undone)."""

    def undone(self, record, host, passwd, shadow):
        """(gone, [what of the lock no longer holds])."""
        if record["name"] not in passwd:
            return True, []
        entry = shadow.get(record["name"])
        if entry is None:
            return False, ["no /etc/shadow entry"]
        undone = []
        if not entry["password"].startswith("!"):
            undone.append("password unlocked in /etc/shadow")
        if entry["expire"] != 0:
            expiry = "never" if entry["expire"] is None else "day %d" % entry["expire"]
            undone.append("no longer expired (expiry %s)" % expiry)
        return False, undone


class _DovecotLock(object):
    """nologin=y fail=y among the extra fields of the user's passwd-file line."""

    def undone(self, record, host, passwd, shadow):
        entries = [e for e in parse_colon_file(read_text(record["file"])) if e["name"] == record["name"]]
        if not entries:
            return True, []
        return False, ["%s missing from its line in %s" % (field, record["file"])
                       for field in LOCK_FIELDS if field not in entries[0]["extra"]]


class _PureftpdLock(object):
    """The user's line out of pureftpd.passwd."""

    def undone(self, record, host, passwd, shadow):
        if any(e["name"] == record["name"] for e in parse_colon_file(read_text(record["file"]))):
            return False, ["back in %s" % record["file"]]
        return False, []


class _UserdbLock(object):
    """The virtual user's key out of vsftpd's pam_userdb database."""

    def undone(self, record, host, passwd, shadow):
        if not os.path.exists(record["file"]):
            return False, []
        if any(unprint(key) == record["name"] for key, _value in host._userdb_read(record["file"])[1]):
            return False, ["back in the database %s" % record["file"]]
        return False, []


def _lock_kind(record):
    if record["kind"] == "system":
        return _SystemLock()
    if record["kind"] == "mail":
        return _DovecotLock()
    return _UserdbLock() if record.get("store") == "userdb" else _PureftpdLock()


def lock_states(paths, runner, keep=(), connection_users=(), min_uid=1000):
    """Every lock recorded under state_dir/locks, with whether it is still in force.

    Each item: name, kind, store, locked_at, state (V(in_force), V(undone), V(gone) for an account that no longer
    exists: nothing is left to log in with, or V(unlocked) for a lock lifted with a new password, with its
    unlocked_at and unlocked_with), undone (what of the lock no longer holds) and protected (why the account must
    not be changed, or None: such a lock is reported, never applied again).
    """
    host = Host(paths, runner)
    passwd = {entry["name"]: entry for entry in parse_passwd(read_text(paths.passwd))}
    shadow = parse_shadow(read_text(paths.shadow))
    connection_users = set(u for u in connection_users if u) | {"root"}
    states = []
    for record in _lock_records(paths, "", closed=True):
        uid = passwd[record["name"]]["uid"] if record["kind"] == "system" and record["name"] in passwd else None
        account = {"name": record["name"], "kind": record["kind"], "uid": uid,
                   "protected_uid": uid is not None and uid < min_uid}
        state = {"name": record["name"], "kind": record["kind"], "store": record.get("store"),
                 "locked_at": record.get("locked_at"), "protected": protection(account, keep, connection_users)}
        if record.get("unlocked_at"):
            state.update(state="unlocked", undone=[], unlocked_at=record["unlocked_at"],
                         unlocked_with=record.get("unlocked_with"))
        else:
            gone, undone = _lock_kind(record).undone(record, host, passwd, shadow)
            state.update(state="gone" if gone else "undone" if undone else "in_force", undone=undone)
        states.append(state)
    return states


def recorded_system_lock(paths, name):
    """The lock recorded for system account `name` and not lifted yet, with what of it no longer holds on the
    host: (record, [undone]), or (None, []) when none is recorded."""
    record = next((r for r in _lock_records(paths, "system") if r["name"] == name), None)
    if record is None:
        return None, []
    passwd = {entry["name"]: entry for entry in parse_passwd(read_text(paths.passwd))}
    _gone, undone = _SystemLock().undone(record, None, passwd, parse_shadow(read_text(paths.shadow)))
    return record, undone


def lock_problems(states):
    """One sentence per recorded lock of an unprotected account that is no longer in force."""
    return ["%s %s (locked %s): %s" % (s["kind"], s["name"], s["locked_at"], ", ".join(s["undone"]))
            for s in states if s["state"] == "undone" and not s["protected"]]


class _Members(object):
    """What a removal archives and deletes (the home tree, the mail spool, the crontab), each opened once through
    safe_fs and from then on reached only through descriptors."""

    def __init__(self):
        self._trees = []   # (path, OpenedTree of the parent, name, OpenedTree of the home)
        self._files = []   # (path, OpenedTree of the directory, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        for _path, parent, _name, tree in self._trees:
            parent.close()
            tree.close()
        for _path, directory, _name in self._files:
            directory.close()

    def add_tree(self, path, account_uid):
        """The home ``path``: every ancestor must be root's (or the account's own), no symlink on the way."""
        try:
            tree = safe_fs.open_tree(path, "home", account_uid=account_uid)
        except safe_fs.UnsafePath as exc:
            if exc.errno == errno.ENOENT:
                return
            raise AccountCleanupError(str(exc))
        try:
            parent = safe_fs.open_tree(os.path.dirname(tree.path), "home", account_uid=account_uid)
        except safe_fs.UnsafePath as exc:
            tree.close()
            raise AccountCleanupError(str(exc))
        self._trees.append((tree.path, parent, os.path.basename(tree.path), tree))

    def add_file(self, path, owner_uid):
        """A spool or crontab file, when it is a regular file (of ``owner_uid`` where given). Its directory
        may be group-writable (Debian's /var/mail is, for the mail group) but never a symlinked path."""
        try:
            directory = safe_fs.open_tree(os.path.dirname(path), "file", group_writable_ok=True)
        except safe_fs.UnsafePath as exc:
            if exc.errno == errno.ENOENT:
                return
            raise AccountCleanupError(str(exc))
        name = os.path.basename(path)
        try:
            info = os.lstat(name, dir_fd=directory.fd)
        except OSError:
            directory.close()
            return
        if not stat.S_ISREG(info.st_mode) or owner_uid is not None and info.st_uid != owner_uid:
            directory.close()
            return
        self._files.append((path, directory, name))

    def archive(self, tar, entries):
        """Add every member to ``tar`` and to ``entries`` (with the identity each deletion checks)."""
        for path, _parent, _name, tree in self._trees:
            with safe_fs.Walker(tree.fd) as walker:
                pending = [()]
                while pending:
                    parts = pending.pop()
                    if parts:
                        dir_fd, name = walker.locate(parts)
                    else:
                        dir_fd, name = None, None
                    children = _archive_entry(tar, entries, walker, parts, dir_fd, name, tree,
                                              path + "".join("/" + part for part in parts))
                    pending.extend(parts + (child,) for child in sorted(children, reverse=True))
        for path, directory, name in self._files:
            _archive_entry(tar, entries, None, (), directory.fd, name, directory, path)

    def delete(self, entries):
        """Delete what was archived, deepest first, each entry only when it is the one archived."""
        by_path = {entry["path"]: entry for entry in entries}
        for path, parent, name, tree in self._trees:
            inside = [entry for entry in entries if entry["path"].startswith(path + "/")]
            with safe_fs.Walker(tree.fd) as walker:
                for entry in reversed(inside):
                    parts = tuple(entry["path"][len(path) + 1:].split("/"))
                    dir_fd, entry_name = walker.locate(parts)
                    _delete_entry(dir_fd, entry_name, entry)
            _delete_entry(parent.fd, name, by_path[path])
        for path, directory, name in self._files:
            _delete_entry(directory.fd, name, by_path[path])


def _archive_entry(tar, entries, walker, parts, dir_fd, name, tree, path):
    """Archive one entry reached through descriptors; return the names of a directory's children."""
    info = tree.info if dir_fd is None else os.lstat(name, dir_fd=dir_fd)
    kind = safe_fs.kind_of(info)
    entry = {"path": path, "type": _type(info.st_mode), "uid": info.st_uid, "gid": info.st_gid,
             "mode": "%04o" % stat.S_IMODE(info.st_mode), "size": info.st_size, "mtime": int(info.st_mtime),
             "_identity": (info.st_dev, info.st_ino, kind)}
    entries.append(entry)
    member = tarfile.TarInfo(path.lstrip("/"))
    member.uid, member.gid, member.uname, member.gname = info.st_uid, info.st_gid, "", ""
    member.mode, member.mtime = stat.S_IMODE(info.st_mode), int(info.st_mtime)
    if kind == "directory":
        fd = tree.fd if dir_fd is None else walker.directory(parts)
        member.type = tarfile.DIRTYPE
        tar.addfile(member)
        return os.listdir(fd)
    if kind == "file":
        fd, opened = safe_fs.open_entry(dir_fd, name, "file", noatime=True)
        try:
            if (opened.st_dev, opened.st_ino) != (info.st_dev, info.st_ino):
                raise safe_fs.UnsafePath("%s changed while it was archived" % path)
            reader = _HashingReader(fd, opened.st_size)
            member.size = opened.st_size
            tar.addfile(member, reader)
            entry["sha256"] = reader.digest.hexdigest()
        finally:
            os.close(fd)
        return ()
    if kind == "symlink":
        member.type, member.linkname = tarfile.SYMTYPE, os.readlink(name, dir_fd=dir_fd)
    elif kind == "fifo":
        member.type = tarfile.FIFOTYPE
    else:
        # A socket (a left-over agent's) or a device holds no data tar can keep: the manifest lists it, the
        # archive does not.
        entry["archived"] = False
        return ()
    tar.addfile(member)
    return ()


class _HashingReader(object):
    """Reads a file for tar through its descriptor, hashing it; cut short meanwhile, it reads as zeros to the
    size tar was told, so the archive stays whole."""

    def __init__(self, fd, size):
        self.fd, self.left = fd, size
        self.digest = hashlib.sha256()

    def read(self, size=-1):
        size = self.left if size is None or size < 0 else min(size, self.left)
        data = os.read(self.fd, size) if size else b""
        if len(data) < size and not data:
            data = bytes(size)
        self.left -= len(data)
        self.digest.update(data)
        return data


def _delete_entry(dir_fd, name, entry):
    """Unlink (or rmdir) ``name`` when it is still the archived entry; anything else there is left alone."""
    info = os.lstat(name, dir_fd=dir_fd)
    device, inode, kind = entry["_identity"]
    if (info.st_dev, info.st_ino, safe_fs.kind_of(info)) != (device, inode, kind):
        raise AccountCleanupError("%s is not the %s that was archived (it was replaced meanwhile): left alone, and "
                                  "the removal stops here" % (entry["path"], kind))
    if kind == "directory":
        os.rmdir(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)


def _without_private(entry):
    return {key: value for key, value in entry.items() if not key.startswith("_")}


def _type(mode):
    for test, name in ((stat.S_ISDIR, "directory"), (stat.S_ISREG, "file"), (stat.S_ISLNK, "symlink"),
                       (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "other"


def _sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _public(account):
    return {key: account.get(key) for key in ("name", "kind", "uid", "home", "services")}


# --------------------------------------------------------------------------- the whole run

def enforce_recorded_locks(states, flagged, sources, mode):
    """A recorded lock undone behind the role's back (usermod -U, an edited passwd-file line, a rebuilt database)
    is applied again in lock and remove mode, whether the account is unused or not: only mode=unlock lifts a lock.
    Report mode names it. Locks of accounts that are protected now are left as they are."""
    by_account = {(item["kind"], item["name"]): item for item in flagged}
    for state in states:
        account = sources.get((state["kind"], state["name"]))
        if state["state"] != "undone" or state["protected"] or account is None:
            continue
        note = "locked on %s, but the lock was undone: %s" % (state["locked_at"], ", ".join(state["undone"]))
        item = by_account.get((state["kind"], state["name"]))
        if item is None:
            item = {"name": account["name"], "kind": account["kind"], "last_used": iso(account["last_used"]),
                    "reason": note, "action": "report", "uid": account["uid"], "services": account["services"],
                    "last_used_source": account["last_used_source"], "created": iso(account["created"]),
                    "created_source": account["created_source"], "locked": False,
                    "processes": account["processes"], "crontab": account["crontab"]}
            flagged.append(item)
        else:
            item["reason"] += "; " + note
        item["undone"] = ", ".join(state["undone"])
        # A removal locks first anyway; anything else the lock mode or a recorded lock asks for is a lock again.
        if mode in ("lock", "remove") and item["action"] != "remove":
            item["action"] = "relock"


def run(paths, runner, mode="report", unused_days=180, min_uid=1000, keep=(), remove=(), connection_users=(),
        archive_dir="/var/lib/hostguard/account_archive", unlock=(), doveconf_text=None, journal_text=None,
        check_mode=False, now=None):
    """Collect, decide, act. Returns the module's result (without `failed`)."""
    if mode not in ("report", "lock", "remove", "unlock"):
        raise AccountCleanupError("mode %r is not one of report, lock, remove, unlock" % (mode,))
    if not isinstance(unused_days, int) or unused_days < 1:
        raise AccountCleanupError("unused_days %r must be a whole number of days, 1 or more" % (unused_days,))
    if not isinstance(min_uid, int) or min_uid < 1:
        raise AccountCleanupError("min_uid %r must be 1 or more" % (min_uid,))
    if not os.path.isabs(archive_dir):
        raise AccountCleanupError("archive_dir %r must be an absolute path" % (archive_dir,))
    keep, remove, connection_users = set(keep), list(dict.fromkeys(remove)), set(u for u in connection_users if u)
    connection_users.add("root")
    host = Host(paths, runner, check_mode=check_mode, now=now)
    accounts = collect(paths, min_uid=min_uid, doveconf_text=doveconf_text, journal_text=journal_text, now=now,
                       userdb_dump=lambda path: host.command("db_dump", "-p", path),
                       doveconf_setting=host.doveconf_setting)
    check_removals(accounts, remove, keep, connection_users, min_uid)
    for account in accounts:
        if account["home"] and account["kind"] != "ftp":
            real = os.path.realpath(account["home"]) + "/"
            if mode == "remove" and (os.path.realpath(archive_dir) + "/").startswith(real) and \
                    protection(account, keep, connection_users) is None:
                raise AccountCleanupError("archive_dir %s lies in the home of %s, which may be removed"
                                          % (archive_dir, account["name"]))
    result = {"changed": False, "accounts": [], "protected": [], "absent": [], "locks": [],
              "diff": {"before": "", "after": ""}}

    if mode == "unlock":
        chosen = [a for a in accounts if a["name"] in unlock and protection(a, keep, connection_users) is None]
        for index, account in enumerate(chosen):
            try:
                unlocked = host.unlock(account)
            except (AccountCleanupError, OSError) as exc:
                raise _partial_failure(
                    result, {"name": account["name"], "kind": account["kind"], "reason": "named in unlock"},
                    [{"name": a["name"], "kind": a["kind"], "reason": "named in unlock"} for a in chosen[index + 1:]],
                    exc) from exc
            if unlocked:
                result["changed"] = True
                result["accounts"].append({"name": account["name"], "kind": account["kind"],
                                           "last_used": iso(account["last_used"]),
                                           "reason": "named in unlock", "action": "unlock"})
                result["diff"]["before"] += "%s %s: locked\n" % (account["kind"], account["name"])
                result["diff"]["after"] += "%s %s: unlocked\n" % (account["kind"], account["name"])
        return result

    flagged, protected = plan(accounts, mode, unused_days, keep, remove, connection_users, now=now)
    result["protected"] = protected
    result["absent"] = [name for name in remove if not any(a["name"] == name for a in accounts)]
    sources = {(a["kind"], a["name"]): a for a in accounts}
    result["locks"] = lock_states(paths, runner, keep, connection_users, min_uid)
    enforce_recorded_locks(result["locks"], flagged, sources, mode)
    vsftpd_text = read_text(paths.vsftpd_conf)
    vsftpd = parse_vsftpd_conf(vsftpd_text) if vsftpd_text is not None else None
    user_list = vsftpd["userlist_file"] if vsftpd and vsftpd["userlist_enable"] and not vsftpd["userlist_deny"] else None
    # Locks before removals: a name flagged under two kinds is handled once per kind, each on its own file.
    for index, item in enumerate(flagged):
        account = sources[(item["kind"], item["name"])]
        archive = manifest = None
        try:
            if item["action"] in ("lock", "relock"):
                host.lock(account, account["source"])
            elif item["action"] == "remove":
                archive, manifest = host.remove(account, account["source"], archive_dir, vsftpd_user_list=user_list)
        except (AccountCleanupError, OSError) as exc:
            # The accounts already handled stay handled; the error says which they are.
            raise _partial_failure(result, item, flagged[index + 1:], exc) from exc
        if item["action"] == "lock":
            item["action"] = "locked"
            result["changed"] = True
            result["diff"]["before"] += "%s %s: can log in\n" % (item["kind"], item["name"])
            result["diff"]["after"] += "%s %s: locked\n" % (item["kind"], item["name"])
        elif item["action"] == "relock":
            item["action"] = "relocked"
            result["changed"] = True
            result["diff"]["before"] += "%s %s: lock undone (%s)\n" % (item["kind"], item["name"], item["undone"])
            result["diff"]["after"] += "%s %s: locked again\n" % (item["kind"], item["name"])
        elif item["action"] == "remove":
            item.update(action="removed", archive=archive, manifest=manifest)
            result["changed"] = True
            result["diff"]["before"] += "%s %s: present\n" % (item["kind"], item["name"])
            result["diff"]["after"] += "%s %s: removed (archive %s)\n" % (item["kind"], item["name"], archive)
        elif item["action"] == "report":
            item["action"] = "reported"
        result["accounts"].append(item)
    return result
