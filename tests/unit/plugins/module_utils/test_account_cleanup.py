"""The account_cleanup core on real-format files: lastlog and wtmp binary records, shadow, vsftpd, Dovecot.

The shadow tools (usermod, chage, userdel) are the one thing replaced: a recorder that edits the temporary
shadow and passwd files the way the tools would, so the tests never touch the machine's accounts.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import shutil
import socket
import struct
import subprocess
import tarfile
import time

import pytest
from hostile_account import Attacker

from ansible_collections.hostguard.hosting.plugins.module_utils import account_cleanup as core

# `doveconf -n` of the lab's hosts with a deny passdb, the passwd-file of the virtual users, one with a %-variable
# path, and last_login writing to a file dict: Dovecot 2.3.19 (Debian 12) and 2.4.1 (Debian 13).
FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "account_cleanup"
DOVECONF_23 = (FIXTURES / "doveconf-n-2.3-bookworm.txt").read_text()
DOVECONF_24 = (FIXTURES / "doveconf-n-2.4-trixie.txt").read_text()
NOW = 1_780_000_000
DAY = 86400

DOVECONF = """# 2.3.19.1: /etc/dovecot/dovecot.conf
passdb {
  driver = pam
}
passdb {
  args = scheme=CRYPT username_format=%u /etc/dovecot/users
  driver = passwd-file
}
passdb {
  args = /etc/dovecot/deny-users
  deny = yes
  driver = passwd-file
}
plugin {
  last_login_dict = file:LASTLOGIN
  last_login_key = last-login/%u
}
protocol imap {
  mail_plugins = " last_login"
}
"""


# pure-ftpd keeps no login records of its own: its login lines in the journal are the evidence.
FTP_JOURNAL = "%d.0 ac1 pure-ftpd[9]: (?@203.0.113.10) [INFO] webftp is now logged in\n" % (NOW - 365 * DAY)


def lastlog_record(when, line="pts/0", host="198.51.100.10"):
    return struct.pack("<i32s256s", when, line.encode(), host.encode())


def utmp_record(kind, user, when, line="pts/1", host="203.0.113.10"):
    return struct.pack("<hxxi32s4s32s256shhiii16s20x", kind, 4242, line.encode(), b"ts/1", user.encode(),
                       host.encode(), 0, 0, 0, when, 0, b"\0" * 16)


class FakeTools:
    """usermod/chage/userdel as they change /etc/shadow and /etc/passwd, recorded."""

    def __init__(self, paths):
        self.paths = paths
        self.calls = []

    # What `doveconf -h NAME` printed on the lab's hosts for the last_login key (2.3 on Debian 12, 2.4 on 13).
    DOVECONF_H = {"plugin/last_login_key": "last-login/%u", "last_login_key": "last-login/%{user}"}

    def __call__(self, argv):
        if argv[0] in ("db_dump", "db_load"):  # Berkeley DB's own tools, for real
            done = subprocess.run(argv, capture_output=True, text=True, check=False)
            return done.returncode, done.stdout, done.stderr
        if argv[:2] == ["doveconf", "-h"]:  # a read, not a change: not among the calls
            return 0, self.DOVECONF_H.get(argv[2], "") + "\n", ""
        self.calls.append(argv)
        tool, name = argv[0], argv[-1]
        if tool == "usermod":
            self._edit(self.paths.shadow, name, 1, lambda v: ("!" + v) if argv[1] == "--lock" else v.lstrip("!"))
        elif tool == "chage":
            self._edit(self.paths.shadow, name, 7, lambda _v: "" if argv[2] == "-1" else argv[2])
        elif tool == "pkill":  # the processes of argv[-1]'s uid end
            for pid in os.listdir(self.paths.proc):
                if "Uid:\t%s\t" % argv[-1] in open(os.path.join(self.paths.proc, pid, "status")).read():
                    shutil.rmtree(os.path.join(self.paths.proc, pid))
        elif tool == "userdel":
            for path in (self.paths.passwd, self.paths.shadow):
                lines = [line for line in open(path).read().splitlines() if line.split(":")[0] != name]
                open(path, "w").write("\n".join(lines) + "\n")
        return 0, "", ""

    @staticmethod
    def _edit(path, name, index, change):
        out = []
        for line in open(path).read().splitlines():
            fields = line.split(":")
            if fields[0] == name:
                fields[index] = change(fields[index])
            out.append(":".join(fields))
        open(path, "w").write("\n".join(out) + "\n")


@pytest.fixture
def host(tmp_path):
    """A host tree: accounts of every kind with login records of known ages."""
    root = tmp_path / "root"
    for directory in ("etc/dovecot", "etc/pure-ftpd", "var/log", "var/mail", "var/spool/cron/crontabs", "home",
                      "proc", "var/vmail"):
        (root / directory).mkdir(parents=True)
    homes = {}
    for name, uid in (("oldssh", 1001), ("active", 1002), ("leaver", 1003), ("never", 1004), ("kept", 1005),
                      ("busy", 1006), ("ftponly", 1007)):
        home = root / "home" / name
        home.mkdir()
        (home / "site.txt").write_text("files of %s\n" % name)
        os.chown(home, uid, uid) if os.geteuid() == 0 else None
        os.chown(home / "site.txt", uid, uid) if os.geteuid() == 0 else None
        homes[name] = (str(home), uid)
    passwd = ["root:x:0:0:root:/root:/bin/bash", "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin",
              "svc:x:999:999:service:/var/lib/svc:/usr/sbin/nologin",
              "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin"]
    passwd += ["%s:x:%d:%d::%s:/bin/bash" % (name, uid, uid, home) for name, (home, uid) in homes.items()]
    (root / "etc/passwd").write_text("\n".join(passwd) + "\n")
    changed_days = (NOW - 400 * DAY) // DAY
    shadow = ["root:$6$x:%d:0:99999:7:::" % changed_days, "svc:!:%d::::::" % changed_days]
    shadow += ["%s:$6$hash:%d:0:99999:7:::" % (name, changed_days) for name in homes]
    (root / "etc/shadow").write_text("\n".join(shadow) + "\n")
    # lastlog is indexed by uid: root and svc 400 days ago, oldssh 300 days ago, active yesterday.
    lastlog = bytearray(1008 * 292)
    for uid, when in ((0, NOW - 400 * DAY), (999, NOW - 400 * DAY), (1001, NOW - 300 * DAY), (1002, NOW - DAY),
                      (1005, NOW - 300 * DAY), (1006, NOW - 300 * DAY)):
        lastlog[uid * 292:(uid + 1) * 292] = lastlog_record(when)
    (root / "var/log/lastlog").write_bytes(bytes(lastlog))
    # wtmp: oldssh also logged in 250 days ago; a DEAD_PROCESS record for leaver does not count.
    (root / "var/log/wtmp").write_bytes(utmp_record(7, "oldssh", NOW - 250 * DAY) + utmp_record(8, "leaver", NOW))
    (root / "etc/vsftpd.conf").write_text("listen=NO\nlocal_enable=YES\n")
    (root / "etc/ftpusers").write_text("# refused\nroot\n")
    (root / "var/mail/leaver").write_text("From x\n\nmail of leaver\n")
    os.chown(root / "var/mail/leaver", 1003, 8) if os.geteuid() == 0 else None
    (root / "var/spool/cron/crontabs/busy").write_text("* * * * * true\n")
    vmail = root / "var/vmail"
    for user in ("mailold", "mailactive"):
        (vmail / user).mkdir()
        (vmail / user / "inbox").write_text("mail for %s\n" % user)
    users = root / "etc/dovecot/users"
    users.write_text("mailold:{PLAIN}secret:5000:5000::%s::userdb_mail=maildir:~/Maildir\n"
                     "mailactive:{PLAIN}secret:5000:5000::%s::userdb_quota_rule=*:storage=1G\n"
                     % (vmail / "mailold", vmail / "mailactive"))
    lastlogin = root / "var/lib/dovecot-last-login"
    lastlogin.parent.mkdir(parents=True)
    lastlogin.write_text("shared/last-login/mailold\n%d\nshared/last-login/mailactive\n%d\n"
                         % (NOW - 500 * DAY, NOW - 2 * DAY))
    (root / "etc/pure-ftpd/pureftpd.passwd").write_text(
        "webftp:$2a$10$abc:1001:1001::%s/./::::::::::::\n" % homes["oldssh"][0])
    paths = core.Paths(root=str(root), state_dir=str(tmp_path / "state"))
    paths.doveconf = DOVECONF.replace("/etc/dovecot/users", str(users)).replace("LASTLOGIN", str(lastlogin))
    return paths


def collect(paths, journal=None):
    accounts = core.collect(paths, doveconf_text=paths.doveconf, journal_text=journal, now=NOW)
    return {(a["kind"], a["name"]): a for a in accounts}


def run(paths, tools=None, journal=None, **options):
    tools = tools or FakeTools(paths)
    options.setdefault("archive_dir", os.path.join(paths.state_dir, "..", "archive"))
    return core.run(paths, tools, doveconf_text=paths.doveconf, journal_text=journal, now=NOW, **options)


def by_name(result):
    return {(item["kind"], item["name"]): item for item in result["accounts"]}


def test_lastlog_and_wtmp_records_give_the_last_login(host):
    accounts = collect(host)
    assert accounts[("system", "oldssh")]["last_used"] == NOW - 250 * DAY  # wtmp is newer than lastlog
    assert accounts[("system", "oldssh")]["last_used_source"] == "wtmp"
    assert accounts[("system", "active")]["last_used"] == NOW - DAY
    assert accounts[("system", "leaver")]["last_used"] is None  # a DEAD_PROCESS record is no login
    assert accounts[("system", "never")]["created"] == ((NOW - 400 * DAY) // DAY) * DAY
    assert accounts[("system", "never")]["created_source"] == "password change date (/etc/shadow)"


def test_kinds_and_services(host):
    accounts = collect(host)
    assert accounts[("system", "oldssh")]["services"] == ["ssh", "ftp", "mail"]  # vsftpd local_enable, Dovecot PAM
    assert ("system", "nobody") not in accounts
    assert accounts[("mail", "mailold")]["last_used"] == NOW - 500 * DAY
    assert accounts[("mail", "mailold")]["last_used_source"] == "dovecot last_login"
    assert ("mail", "deny-users") not in accounts
    assert ("ftp", "webftp") in accounts


def test_journal_login_lines_count(host):
    journal = ("%d.123456 ac1 dovecot[77]: imap-login: Login: user=<mailold>, method=PLAIN, rip=198.18.0.10\n"
               "%d.5 ac1 sshd[88]: Accepted publickey for oldssh from 198.51.100.10 port 4000 ssh2: ED25519\n"
               "%d.0 ac1 pure-ftpd[9]: (?@203.0.113.10) [INFO] webftp is now logged in\n"
               % (NOW - 3 * DAY, NOW - 4 * DAY, NOW - 5 * DAY))
    accounts = collect(host, journal)
    assert accounts[("mail", "mailold")]["last_used"] == NOW - 3 * DAY
    assert accounts[("system", "oldssh")]["last_used_source"] == "journal (sshd)"
    assert accounts[("ftp", "webftp")]["last_used"] == NOW - 5 * DAY


def test_vsftpd_user_list_as_an_allow_list():
    settings = core.parse_vsftpd_conf("local_enable=YES\nuserlist_enable=YES\nuserlist_deny=NO\n")
    assert core.vsftpd_allows("alice", settings, set(), {"alice"})
    assert not core.vsftpd_allows("bob", settings, set(), {"alice"})
    assert not core.vsftpd_allows("alice", settings, {"alice"}, {"alice"})
    assert not core.vsftpd_allows("alice", core.parse_vsftpd_conf("anonymous_enable=YES\n"), set(), set())


def test_report_flags_unused_and_leavers_and_never_the_protected(host):
    result = run(host, unused_days=180, remove=["leaver"], keep=["kept"], connection_users=["deploy"],
                 journal=FTP_JOURNAL)
    flagged = by_name(result)
    assert set(flagged) == {("system", "oldssh"), ("system", "leaver"), ("system", "never"), ("system", "busy"),
                            ("system", "ftponly"), ("mail", "mailold"), ("ftp", "webftp")}
    assert flagged[("system", "never")]["reason"].startswith("never logged in; created 400 days ago")
    assert flagged[("system", "leaver")]["reason"] == "named in account_cleanup_remove (leaver)"
    assert all(item["action"] == "reported" for item in result["accounts"])
    assert {(p["name"], p["reason"]) for p in result["protected"]} >= {
        ("root", "root"), ("svc", "system account (uid below account_cleanup_min_uid)"),
        ("kept", "in account_cleanup_keep")}
    assert result["changed"] is False


@pytest.mark.parametrize("name, why", [("root", "root"), ("svc", "uid below"), ("kept", "account_cleanup_keep"),
                                       ("deploy", "connects as")])
def test_removing_a_protected_account_fails_naming_it(host, name, why):
    with open(host.passwd, "a") as stream:
        stream.write("deploy:x:1010:1010::/home/deploy:/bin/bash\n")
    tools = FakeTools(host)
    with pytest.raises(core.AccountCleanupError, match="names %s .*%s" % (name, why)):
        run(host, tools, mode="remove", remove=["leaver", name], keep=["kept"], connection_users=["deploy"])
    assert tools.calls == []


def test_lock_disables_and_unlock_restores(host):
    tools = FakeTools(host)
    users_before = open(collect(host)[("mail", "mailold")]["source"]).read()
    result = run(host, tools, mode="lock", keep=["kept"], journal=FTP_JOURNAL)
    flagged = by_name(result)
    assert flagged[("system", "oldssh")]["action"] == "locked"
    assert ["usermod", "--lock", "oldssh"] in tools.calls and ["chage", "--expiredate", "0", "oldssh"] in tools.calls
    # busy has a crontab: reported, not locked, until it is named.
    assert flagged[("system", "busy")]["action"] == "reported"
    assert "a crontab" in flagged[("system", "busy")]["reason"]
    assert not any(call[-1] == "busy" for call in tools.calls)
    users = open(collect(host)[("mail", "mailold")]["source"]).read()
    assert "mailold:{PLAIN}secret:5000:5000::%s::userdb_mail=maildir:~/Maildir nologin=y fail=y" % collect(host)[("mail", "mailold")]["home"] in users
    assert "mailactive" in users and "nologin" not in users.split("mailactive", 1)[1]
    assert "webftp" not in open(host.pureftpd_passwd).read()
    # A second run changes nothing.
    again = run(host, FakeTools(host), mode="lock", keep=["kept"], journal=FTP_JOURNAL)
    assert again["changed"] is False
    assert by_name(again)[("system", "oldssh")]["action"] == "already_locked"
    assert by_name(again)[("ftp", "webftp")]["action"] == "already_locked"
    assert by_name(again)[("mail", "mailold")]["action"] == "already_locked"
    # Unlock puts everything back.
    unlocked = run(host, FakeTools(host), mode="unlock", unlock=["oldssh", "mailold", "webftp"])
    assert unlocked["changed"] is True
    assert open(collect(host)[("mail", "mailold")]["source"]).read() == users_before
    assert "webftp:$2a$10$abc" in open(host.pureftpd_passwd).read()
    assert core.parse_shadow(open(host.shadow).read())["oldssh"]["password"] == "$6$hash"
    assert core.parse_shadow(open(host.shadow).read())["oldssh"]["expire"] is None


def test_check_mode_changes_nothing(host):
    before = {path: open(path).read() for path in (host.shadow, host.pureftpd_passwd)}
    tools = FakeTools(host)
    result = run(host, tools, mode="remove", remove=["leaver"], check_mode=True)
    assert result["changed"] is True
    assert tools.calls == []
    assert {path: open(path).read() for path in before} == before
    assert not os.path.exists(os.path.join(host.state_dir, "..", "archive"))


@pytest.mark.skipif(os.geteuid() != 0, reason="home directories owned by the accounts need root")
def test_remove_archives_first_then_deletes(host, tmp_path):
    tools = FakeTools(host)
    home = collect(host)[("system", "leaver")]["home"]
    result = run(host, tools, mode="remove", remove=["leaver"], unused_days=10000)
    item = by_name(result)[("system", "leaver")]
    assert item["action"] == "removed"
    assert tools.calls == [["usermod", "--lock", "leaver"], ["chage", "--expiredate", "0", "leaver"],
                           ["userdel", "leaver"]]
    assert not os.path.exists(home) and not os.path.exists(os.path.join(host.mail_spool, "leaver"))
    manifest = json.loads(open(item["manifest"]).read())
    assert manifest["archive_sha256"] == core._sha256_file(item["archive"])
    with tarfile.open(item["archive"]) as tar:
        member = tar.getmember(os.path.join(home, "site.txt").lstrip("/"))
        assert member.uid == 1003 and member.uname == ""
        assert tar.extractfile(member).read() == b"files of leaver\n"
        assert b"mail of leaver" in tar.extractfile(os.path.join(host.mail_spool, "leaver").lstrip("/")).read()
    entry = next(e for e in manifest["entries"] if e["path"].endswith("site.txt"))
    assert entry["sha256"] == hashlib.sha256(b"files of leaver\n").hexdigest()
    assert entry["uid"] == 1003
    assert manifest["lines"]["passwd"][0].startswith("leaver:x:1003")
    again = run(host, FakeTools(host), mode="remove", remove=["leaver"], unused_days=10000)
    assert again["changed"] is False and again["absent"] == ["leaver"]


@pytest.mark.skipif(os.geteuid() != 0, reason="home directories owned by the accounts need root")
def test_a_removal_whose_archive_fails_does_not_happen(host, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    tools = FakeTools(host)
    with pytest.raises(core.AccountCleanupError, match="failed, so it was not removed \\(it stays locked"):
        run(host, tools, mode="remove", remove=["leaver"], unused_days=10000, archive_dir=str(blocker / "archive"))
    # Locked before the archive was tried, and left locked: nothing deleted.
    assert tools.calls == [["usermod", "--lock", "leaver"], ["chage", "--expiredate", "0", "leaver"]]
    assert os.path.exists(collect(host)[("system", "leaver")]["home"])


def test_remove_of_a_dovecot_user_archives_its_mail_and_drops_its_line(host):
    home = collect(host)[("mail", "mailold")]["home"]
    result = run(host, FakeTools(host), mode="remove", unused_days=180,
                 keep=["kept", "oldssh", "never", "webftp", "busy"])
    item = by_name(result)[("mail", "mailold")]
    assert item["action"] == "removed"
    source = collect(host)
    assert ("mail", "mailold") not in source and ("mail", "mailactive") in source
    with tarfile.open(item["archive"]) as tar:
        names = tar.getnames()
    assert any(name.endswith("mailold/inbox") for name in names)
    assert not os.path.exists(home)
    assert os.path.exists(collect(host)[("mail", "mailactive")]["home"])


def test_file_dict_precision_and_custom_key():
    text = "shared/last-login/imap/alice\n1780000000123\n"
    assert core.parse_file_dict(text, "last-login/%{service}/%u".replace("%{service}", "imap")) == {"alice": 1780000000}


def test_a_key_only_account_keeps_its_password_lock_after_unlock(host):
    text = open(host.shadow).read().replace("oldssh:$6$hash:", "oldssh:!:")
    open(host.shadow, "w").write(text)
    tools = FakeTools(host)
    run(host, tools, mode="lock", keep=["kept"])
    assert ["usermod", "--lock", "oldssh"] not in tools.calls
    assert core.parse_shadow(open(host.shadow).read())["oldssh"] == {"password": "!", "lastchg": (NOW - 400 * DAY) // DAY,
                                                                     "expire": 0}
    run(host, FakeTools(host), mode="unlock", unlock=["oldssh"])
    assert core.parse_shadow(open(host.shadow).read())["oldssh"]["password"] == "!"
    assert core.parse_shadow(open(host.shadow).read())["oldssh"]["expire"] is None


def test_an_account_with_running_processes_is_reported_until_it_is_named(host):
    # /proc/<pid>/status as the kernel writes it: the real uid is the first of the four on the Uid: line.
    for pid, uid in (("4242", 1007), ("4243", 1007), ("77", 0)):
        os.makedirs(os.path.join(host.proc, pid))
        with open(os.path.join(host.proc, pid, "status"), "w") as status:
            status.write("Name:\tphp-fpm8.2\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t%s\n"
                         "Uid:\t%d\t%d\t%d\t%d\nGid:\t%d\t%d\t%d\t%d\n" % ((pid,) + (uid,) * 8))
    tools = FakeTools(host)
    result = run(host, tools, mode="remove", keep=["kept", "busy"], unused_days=180)
    item = by_name(result)[("system", "ftponly")]
    assert item["action"] == "reported" and "2 running processes" in item["reason"]
    assert ["userdel", "ftponly"] not in tools.calls
    tools = FakeTools(host)
    result = run(host, tools, mode="remove", remove=["ftponly"], keep=["kept", "busy"], unused_days=10000)
    assert by_name(result)[("system", "ftponly")]["action"] == "removed"
    # Shut out first (locked, processes ended), then archived, then deleted.
    assert tools.calls == [["usermod", "--lock", "ftponly"], ["chage", "--expiredate", "0", "ftponly"],
                           ["pkill", "--signal", "KILL", "--uid", "1007"], ["userdel", "ftponly"]]


class FailingFor(FakeTools):
    """The shadow tools, failing as they would for one account (a busy user, a locked /etc/passwd)."""

    def __init__(self, paths, tool, name):
        super().__init__(paths)
        self.failing = (tool, name)

    def __call__(self, argv):
        if (argv[0], argv[-1]) == self.failing:
            self.calls.append(argv)
            return 8, "", "%s: user %s is currently used by process 4242" % (argv[0], argv[-1])
        return super().__call__(argv)


def test_a_partial_failure_names_the_accounts_handled_and_the_one_that_failed(host):
    tools = FailingFor(host, "userdel", "leaver")
    with pytest.raises(core.AccountCleanupPartialError) as failure:
        run(host, tools, mode="remove", remove=["oldssh", "leaver", "never"], unused_days=10000)
    message = str(failure.value)
    assert message.startswith("system leaver failed: userdel leaver failed (rc 8)"), message
    assert "Already done in this run: system oldssh (removed)." in message
    assert "Not attempted: system never" in message
    # The result returned with the error is the report: done, failed, not attempted.
    items = by_name(failure.value.result)
    assert items[("system", "oldssh")]["action"] == "removed" and os.path.exists(items[("system", "oldssh")]["archive"])
    assert items[("system", "leaver")]["action"] == "failed" and "rc 8" in items[("system", "leaver")]["error"]
    assert items[("system", "never")]["action"] == "not_attempted"
    assert failure.value.result["changed"] is True
    # What was done stays done, what failed stays in place with its archive, the rest is untouched.
    accounts = collect(host)
    assert ("system", "oldssh") not in accounts
    assert ("system", "leaver") in accounts and ("system", "never") in accounts
    assert [call for call in tools.calls if call[0] == "userdel"] == [["userdel", "oldssh"], ["userdel", "leaver"]]
    # The one whose deletion failed stays locked (each was locked before its archive).
    assert core.parse_shadow(open(host.shadow).read())["leaver"]["password"].startswith("!")


def test_a_partial_failure_of_a_lock_run_lists_the_locked_accounts(host):
    tools = FailingFor(host, "chage", "never")
    with pytest.raises(core.AccountCleanupPartialError) as failure:
        run(host, tools, mode="lock", remove=["leaver"], unused_days=200)
    items = by_name(failure.value.result)
    locked = sorted(name for (kind, name), item in items.items() if item["action"] == "locked")
    assert locked and "never" not in locked
    for name in locked:
        assert "%s (locked)" % name in str(failure.value)
    assert items[("system", "never")]["action"] == "failed"
    assert str(failure.value).startswith("system never failed: chage --expiredate 0 never failed (rc 8)")


def test_the_first_failure_reports_none_done(host):
    tools = FailingFor(host, "userdel", "oldssh")
    with pytest.raises(core.AccountCleanupPartialError, match=r"Already done in this run: none\."):
        run(host, tools, mode="remove", remove=["oldssh"], unused_days=10000)


VSFTPD_LOG = """Tue Nov 25 10:00:00 2025 [pid 2] CONNECT: Client "198.18.0.10"
%s [pid 3] [ftpold] OK LOGIN: Client "198.18.0.10"
%s [pid 4] [ftpactive] FAIL LOGIN: Client "198.18.0.10"
%s [pid 5] [ftpactive] OK LOGIN: Client "198.18.0.10"
"""


def stamp(when):
    return time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(when))


@pytest.fixture
def vsftpd_virtual(host):
    """vsftpd with guest_enable and a PAM service whose pam_userdb database db_load built from line pairs."""
    root = host.root
    os.makedirs(os.path.join(root, "etc/pam.d"), exist_ok=True)
    os.makedirs(os.path.join(root, "etc/vsftpd"), exist_ok=True)
    with open(host.vsftpd_conf, "a") as stream:
        stream.write("guest_enable=YES\npam_service_name=vsftpd-virtual\n")
    with open(os.path.join(root, "etc/pam.d/vsftpd-virtual"), "w") as stream:
        stream.write("auth [success=done default=ignore] pam_userdb.so crypt=none db=/etc/vsftpd/virtual\n"
                     "# auth sufficient pam_userdb.so db=/etc/vsftpd/commented\n"
                     "account sufficient pam_userdb.so db=/etc/vsftpd/virtual\n@include common-auth\n")
    source = os.path.join(root, "etc/vsftpd/virtual.txt")
    with open(source, "w") as stream:
        stream.write("ftpold\npw-old\nftpactive\npw-active\nftpnever\npw-never\n")
    db = os.path.join(root, "etc/vsftpd/virtual.db")
    subprocess.run(["db_load", "-T", "-t", "hash", "-f", source, db], check=True)
    os.chmod(db, 0o640)
    old = NOW - 400 * DAY
    os.utime(db, (old, old))
    with open(os.path.join(root, "var/log/vsftpd.log"), "w") as stream:
        stream.write(VSFTPD_LOG % (stamp(NOW - 300 * DAY), stamp(NOW - DAY), stamp(NOW - 2 * DAY)))
    return host, db


def dump(db):
    out = subprocess.run(["db_dump", "-p", db], capture_output=True, text=True, check=True).stdout
    return {core.unprint(key): core.unprint(value) for key, value in core.parse_db_dump(out)[1]}


needs_db_util = pytest.mark.skipif(not shutil.which("db_load"), reason="needs db_load and db_dump (db-util)")


def test_pam_userdb_lines_name_the_database_files():
    pam = ("auth required pam_listfile.so item=user sense=deny file=/etc/ftpusers onerr=succeed\n"
           "auth [success=1 default=ignore] pam_userdb.so db=/etc/vsftpd/a crypt=crypt # inline\n"
           "-auth sufficient /lib/x86_64-linux-gnu/security/pam_userdb.so db=/srv/b\n"
           "account sufficient pam_userdb.so db=/etc/vsftpd/c\n#auth sufficient pam_userdb.so db=/d\n")
    assert core.pam_userdb_files(pam) == ["/etc/vsftpd/a.db", "/srv/b.db"]


def test_db_dump_printable_items_are_decoded():
    header, pairs = core.parse_db_dump("VERSION=3\nformat=print\ntype=hash\nHEADER=END\n a\\\\b\n p\\e9\nDATA=END\n")
    assert header[-1] == "HEADER=END" and [core.unprint(item) for item in pairs[0]] == ["a\\b", "p\udce9"]
    with pytest.raises(core.AccountCleanupError):
        core.parse_db_dump("VERSION=3\nHEADER=END\n lonely\nDATA=END\n")


@needs_db_util
def test_vsftpd_virtual_users_are_read_with_their_last_login(vsftpd_virtual):
    host, db = vsftpd_virtual
    accounts = core.collect(host, doveconf_text=host.doveconf, now=NOW,
                            userdb_dump=lambda path: FakeTools(host)(["db_dump", "-p", path])[1])
    ftp = {a["name"]: a for a in accounts if a.get("store") == "userdb"}
    assert set(ftp) == {"ftpold", "ftpactive", "ftpnever"}
    assert ftp["ftpold"]["last_used"] == NOW - 300 * DAY and ftp["ftpold"]["last_used_source"] == "vsftpd log"
    # A FAIL LOGIN is no use; the OK LOGIN two days ago is.
    assert ftp["ftpactive"]["last_used"] == NOW - 2 * DAY
    assert ftp["ftpnever"]["last_used"] is None and ftp["ftpnever"]["created"] == NOW - 400 * DAY
    assert ftp["ftpold"]["source"] == db


@needs_db_util
def test_a_vsftpd_virtual_user_is_locked_out_of_the_database_and_unlocked_exactly(vsftpd_virtual):
    host, db = vsftpd_virtual
    result = run(host, mode="lock", unused_days=200)
    items = by_name(result)
    assert items[("ftp", "ftpold")]["action"] == "locked" and items[("ftp", "ftpnever")]["action"] == "locked"
    assert ("ftp", "ftpactive") not in items
    assert dump(db) == {"ftpactive": "pw-active"}
    assert stat_mode(db) == 0o640
    assert not [name for name in os.listdir(os.path.dirname(db)) if name.startswith(".hostguard-")]
    again = run(host, mode="lock", unused_days=200)
    assert again["changed"] is False and by_name(again)[("ftp", "ftpold")]["action"] == "already_locked"
    back = run(host, mode="unlock", unlock=["ftpold"])
    assert back["changed"] is True
    assert dump(db) == {"ftpactive": "pw-active", "ftpold": "pw-old"}
    assert run(host, mode="unlock", unlock=["ftpold"])["changed"] is False


@needs_db_util
def test_a_removed_vsftpd_virtual_user_is_archived_then_dropped(vsftpd_virtual):
    host, db = vsftpd_virtual
    result = run(host, mode="remove", remove=["ftpactive"], unused_days=10000)
    item = by_name(result)[("ftp", "ftpactive")]
    assert item["action"] == "removed"
    assert dump(db) == {"ftpold": "pw-old", "ftpnever": "pw-never"}
    manifest = json.loads(open(item["manifest"]).read())
    assert manifest["lines"] == {db: [" ftpactive", " pw-active"]}


def test_without_db_dump_the_virtual_users_fail_the_run_before_any_change(vsftpd_virtual):
    host, _db = vsftpd_virtual

    def missing(argv):
        return (127, "", "not found") if argv[0] == "db_dump" else FakeTools(host)(argv)
    with pytest.raises(core.AccountCleanupError, match="db_dump is not installed"):
        run(host, missing, mode="lock", unused_days=200)
    assert "!$6$" not in open(host.shadow).read()


def stat_mode(path):
    return os.stat(path).st_mode & 0o7777


def test_a_socket_in_a_home_is_listed_in_the_manifest_but_does_not_block_the_removal(host):
    home = collect(host)[("system", "leaver")]["home"]
    agent = socket.socket(socket.AF_UNIX)
    agent.bind(os.path.join(home, "S.agent"))
    agent.close()
    item = by_name(run(host, mode="remove", remove=["leaver"], unused_days=10000))[("system", "leaver")]
    assert item["action"] == "removed" and not os.path.exists(home)
    manifest = json.loads(open(item["manifest"]).read())
    entry = next(e for e in manifest["entries"] if e["path"].endswith("S.agent"))
    assert entry["type"] == "socket" and entry["archived"] is False
    with tarfile.open(item["archive"]) as tar:
        assert os.path.join(home, "site.txt").lstrip("/") in tar.getnames()
        assert os.path.join(home, "S.agent").lstrip("/") not in tar.getnames()


# --- a hostile account racing its own removal ---------------------------------------------------------

@pytest.mark.skipif(os.geteuid() != 0, reason="acting as the account needs root")
def test_a_removal_raced_by_the_account_never_archives_or_deletes_anything_outside(host, tmp_path):
    """The account's processes survived (the fake pkill ends none): they exchange its files with symlinks to a
    root-only file and with FIFOs while it is archived and deleted. The root-only file is never read into the
    archive nor deleted, and nothing hangs."""
    home = collect(host)[("system", "leaver")]["home"]
    secret = tmp_path / "root-only"
    secret.write_bytes(b"root-only secret bytes\n")
    secret.chmod(0o600)
    pairs = []
    for index in range(20):
        (pathlib.Path(home) / ("f%d.php" % index)).write_bytes(b"<?php // file %d\n" % index)
        os.symlink(str(secret), os.path.join(home, "l%d.php" % index))
        os.mkfifo(os.path.join(home, "p%d" % index))
        for name in ("f%d.php" % index, "l%d.php" % index, "p%d" % index):
            os.chown(os.path.join(home, name), 1003, 1003, follow_symlinks=False)
        pairs += [("f%d.php" % index, "l%d.php" % index), ("l%d.php" % index, "p%d" % index)]
    archive_dir = tmp_path / "archive"
    with Attacker(pairs, uid=1003, within=home):
        try:
            result = run(host, FakeTools(host), mode="remove", remove=["leaver"], unused_days=10000,
                         archive_dir=str(archive_dir))
            outcome = by_name(result)[("system", "leaver")]["action"]
        except core.AccountCleanupError as exc:
            outcome = str(exc)
    assert secret.read_bytes() == b"root-only secret bytes\n"
    for archive in archive_dir.glob("*.tar.gz") if archive_dir.exists() else ():
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                if member.isfile():
                    assert b"root-only secret" not in tar.extractfile(member).read(), (member.name, outcome)


@pytest.mark.skipif(os.geteuid() != 0, reason="bind mounts and other owners need root")
def test_a_bind_mount_in_a_home_is_never_crossed_nor_emptied(host, tmp_path):
    home = collect(host)[("system", "leaver")]["home"]
    outside = tmp_path / "other-site"
    outside.mkdir()
    (outside / "index.php").write_text("another tenant's site\n")
    mount_point = os.path.join(home, "mnt")
    os.mkdir(mount_point)
    if subprocess.run(["mount", "--bind", str(outside), mount_point], capture_output=True, check=False).returncode:
        pytest.skip("bind mounts are not allowed here")
    try:
        tools = FakeTools(host)
        with pytest.raises(core.AccountCleanupError, match="mount point"):
            run(host, tools, mode="remove", remove=["leaver"], unused_days=10000)
        assert ["userdel", "leaver"] not in tools.calls
        assert (outside / "index.php").read_text() == "another tenant's site\n"
        assert os.path.exists(os.path.join(home, "site.txt"))
    finally:
        subprocess.run(["umount", mount_point], capture_output=True, check=False)


@pytest.mark.skipif(os.geteuid() != 0, reason="other owners need root")
def test_a_home_inside_a_directory_another_account_controls_is_refused(host):
    """leaver's home moved below oldssh's: oldssh could swap the path between check and removal."""
    nested = os.path.join(collect(host)[("system", "oldssh")]["home"], "sites", "leaver")
    os.makedirs(nested)
    os.chown(os.path.dirname(nested), 1001, 1001)
    os.chown(nested, 1003, 1003)
    text = open(host.passwd).read().replace("::%s:" % collect(host)[("system", "leaver")]["home"], "::%s:" % nested)
    open(host.passwd, "w").write(text)
    tools = FakeTools(host)
    with pytest.raises(core.AccountCleanupError, match="runs through [^ ]*/home/oldssh, owned by uid 1001 .*another account can change it"):
        run(host, tools, mode="remove", remove=["leaver"], unused_days=10000)
    assert ["userdel", "leaver"] not in tools.calls and os.path.isdir(nested)


def test_login_lines_are_read_only_from_sources_a_customer_cannot_forge():
    """journalctl ORs the groups ('+') and ANDs the fields of a group: every group must hold a field journald sets
    itself that no customer process can have (a daemon's unit, or uid 0)."""
    argv = core.journal_command()
    assert argv[:6] == ["journalctl", "--no-pager", "--quiet", "--output=short-unix", "--grep", core.JOURNAL_GREP]
    groups = " ".join(argv[6:]).split(" + ")
    assert len(groups) == len(core.JOURNAL_SOURCES)
    # Units of daemons that run no customer program (ssh.service, cron.service and PHP-FPM's units do).
    trusted_units = {"_SYSTEMD_UNIT=dovecot.service", "_SYSTEMD_UNIT=pure-ftpd.service", "_SYSTEMD_UNIT=vsftpd.service"}
    for group in groups:
        fields = group.split()
        assert any(field in trusted_units for field in fields) or "_UID=0" in fields, group
        assert not any(field.startswith(("SYSLOG_", "_COMM=")) for field in fields) or "_UID=0" in fields, group


# --- recorded locks stay in force ----------------------------------------------------------------------

def undo_locks_behind_the_role(host):
    """What an administrator or a script does by hand: usermod -U and chage -E -1, the Dovecot line edited back,
    the pure-ftpd user added again; and oldssh logs in now, so it is no longer unused."""
    FakeTools(host)(["usermod", "--unlock", "oldssh"])
    FakeTools(host)(["chage", "--expiredate", "-1", "oldssh"])
    users = collect(host)[("mail", "mailold")]["source"]
    with open(users) as stream:
        text = stream.read()
    with open(users, "w") as stream:
        stream.write(text.replace(" nologin=y fail=y", ""))
    with open(host.pureftpd_passwd, "a") as stream:
        stream.write("webftp:$2a$10$new:1001:1001::/home/oldssh/./::::::::::::\n")
    with open(host.lastlog, "r+b") as stream:
        stream.seek(1001 * 292)
        stream.write(lastlog_record(NOW - 60))


def states(host, **options):
    return {(s["kind"], s["name"]): s for s in core.lock_states(host, FakeTools(host), **options)}


def test_every_recorded_lock_reads_back_in_force(host):
    run(host, mode="lock", keep=["kept"], journal=FTP_JOURNAL)
    found = states(host)
    assert {key: s["state"] for key, s in found.items()} == {
        ("system", "oldssh"): "in_force", ("system", "never"): "in_force", ("system", "leaver"): "in_force",
        ("system", "ftponly"): "in_force", ("mail", "mailold"): "in_force", ("ftp", "webftp"): "in_force"}
    assert core.lock_problems(list(found.values())) == []


def test_a_lock_undone_behind_the_role_is_named_then_applied_again_even_on_an_account_now_in_use(host):
    run(host, mode="lock", keep=["kept"], journal=FTP_JOURNAL)
    undo_locks_behind_the_role(host)
    found = states(host)
    assert found[("system", "oldssh")]["undone"] == ["password unlocked in /etc/shadow",
                                                     "no longer expired (expiry never)"]
    assert found[("mail", "mailold")]["undone"] == ["nologin=y missing from its line in %s" % collect(host)[
        ("mail", "mailold")]["source"], "fail=y missing from its line in %s" % collect(host)[("mail", "mailold")][
        "source"]]
    assert found[("ftp", "webftp")]["undone"] == ["back in %s" % host.pureftpd_passwd]
    assert [line.split(":")[0] for line in core.lock_problems(list(found.values()))] == [
        "ftp webftp (locked 2026-05-28T20", "mail mailold (locked 2026-05-28T20", "system oldssh (locked 2026-05-28T20"]
    # Report mode names each one and changes nothing.
    tools = FakeTools(host)
    report = by_name(run(host, tools, mode="report", keep=["kept"], journal=FTP_JOURNAL))
    assert tools.calls == []
    assert "the lock was undone: password unlocked in /etc/shadow" in report[("system", "oldssh")]["reason"]
    assert report[("system", "oldssh")]["action"] == "reported"
    # Lock mode applies each again, although oldssh logged in a minute ago.
    tools = FakeTools(host)
    result = run(host, tools, mode="lock", keep=["kept"], journal=FTP_JOURNAL)
    items = by_name(result)
    assert result["changed"] is True
    assert {key: items[key]["action"] for key in (("system", "oldssh"), ("mail", "mailold"), ("ftp", "webftp"))} == {
        ("system", "oldssh"): "relocked", ("mail", "mailold"): "relocked", ("ftp", "webftp"): "relocked"}
    assert items[("system", "oldssh")]["reason"].startswith("locked on 2026-05-28T20:")
    assert ["usermod", "--lock", "oldssh"] in tools.calls and ["chage", "--expiredate", "0", "oldssh"] in tools.calls
    assert "system oldssh: lock undone (password unlocked" in result["diff"]["before"]
    assert core.lock_problems(core.lock_states(host, FakeTools(host))) == []
    assert "webftp" not in open(host.pureftpd_passwd).read()
    # The records still hold what the first lock replaced: unlock gives back the account as it was then.
    again = run(host, FakeTools(host), mode="lock", keep=["kept"], journal=FTP_JOURNAL)
    assert again["changed"] is False
    run(host, FakeTools(host), mode="unlock", unlock=["oldssh", "webftp"])
    assert core.parse_shadow(open(host.shadow).read())["oldssh"]["password"] == "$6$hash"
    assert "webftp:$2a$10$abc:" in open(host.pureftpd_passwd).read()


def test_check_mode_reports_the_lock_it_would_apply_again_and_changes_nothing(host):
    run(host, mode="lock", keep=["kept"], journal=FTP_JOURNAL)
    undo_locks_behind_the_role(host)
    before = open(host.shadow).read()
    tools = FakeTools(host)
    result = run(host, tools, mode="lock", keep=["kept"], journal=FTP_JOURNAL, check_mode=True)
    assert result["changed"] is True and by_name(result)[("system", "oldssh")]["action"] == "relocked"
    assert tools.calls == [] and open(host.shadow).read() == before


def test_a_lock_of_an_account_protected_now_is_named_but_never_applied_again(host):
    run(host, mode="lock", keep=["kept"], journal=FTP_JOURNAL)
    undo_locks_behind_the_role(host)
    tools = FakeTools(host)
    result = run(host, tools, mode="lock", keep=["kept", "oldssh"], journal=FTP_JOURNAL)
    assert not any(call[-1] == "oldssh" for call in tools.calls)
    assert ("system", "oldssh") not in by_name(result)
    found = states(host, keep=["oldssh"])
    assert found[("system", "oldssh")]["state"] == "undone"
    assert found[("system", "oldssh")]["protected"] == "in account_cleanup_keep"
    assert not any(line.startswith("system oldssh") for line in core.lock_problems(list(found.values())))


def test_the_lock_of_an_account_deleted_since_is_gone_not_undone(host):
    run(host, mode="lock", keep=["kept"], journal=FTP_JOURNAL)
    FakeTools(host)(["userdel", "never"])
    assert states(host)[("system", "never")]["state"] == "gone"


@needs_db_util
def test_a_vsftpd_virtual_user_put_back_into_the_database_is_locked_out_again(vsftpd_virtual):
    host, db = vsftpd_virtual
    run(host, mode="lock", unused_days=200)
    # The database rebuilt from the old text file, as the README warns: ftpold is back, with its password.
    subprocess.run(["db_load", "-T", "-t", "hash", "-f", os.path.join(host.root, "etc/vsftpd/virtual.txt"), db],
                   check=True)
    assert states(host)[("ftp", "ftpold")]["undone"] == ["back in the database %s" % db]
    result = run(host, mode="lock", unused_days=200)
    assert by_name(result)[("ftp", "ftpold")]["action"] == "relocked"
    assert "ftpold" not in dump(db)


# --- Dovecot 2.3 (Debian 12) and 2.4 (Debian 13) ----------------------------------------------------------

@pytest.mark.parametrize("text, users, key_setting, key", [
    (DOVECONF_23, "/etc/dovecot/%d/passwd", "plugin/last_login_key", "last-login/%u"),
    (DOVECONF_24, "/etc/dovecot/%{user | domain}/passwd", "last_login_key", "last-login/%{user}"),
])
def test_doveconf_of_both_generations_gives_the_passdbs_and_the_last_login_dict(text, users, key_setting, key):
    asked = []

    def setting(name):
        asked.append(name)
        return FakeTools.DOVECONF_H.get(name)

    config = core.parse_doveconf(text, setting)
    assert config["passdbs"] == [
        {"driver": "pam", "path": "", "deny": False},
        {"driver": "passwd-file", "path": "/etc/dovecot/deny-users", "deny": True},
        {"driver": "passwd-file", "path": "/etc/dovecot/users", "deny": False},
        {"driver": "passwd-file", "path": users, "deny": False},
    ]
    # doveconf -n hides the key ("# hidden, use -P to show it"): it is asked for by its name in that generation.
    assert config["last_login"] == {"path": "/var/lib/dovecot/last-login", "key": key}
    assert asked == [key_setting]
    assert core.dovecot_passwd_files(config) == ["/etc/dovecot/users"]
    assert core.dovecot_serves_system_users(config)


@pytest.mark.parametrize("text, key", [(DOVECONF_23, "last-login/%u"), (DOVECONF_24, "last-login/%{user}")])
def test_a_last_login_key_doveconf_does_not_print_is_the_default_of_its_generation(text, key):
    assert core.parse_doveconf(text, lambda name: None)["last_login"]["key"] == key


def test_a_dovecot_24_passdb_takes_its_driver_from_its_name_unless_set():
    text = ("# 2.4.1-4 (7d8c0e5759): /etc/dovecot/dovecot.conf\npassdb static {\n}\npassdb users {\n"
            "  driver = passwd-file\n  passwd_file_path = /srv/users\n}\npassdb passwd-file {\n  deny = yes\n"
            "  passwd_file_path = /etc/dovecot/deny\n}\n")
    config = core.parse_doveconf(text)
    assert config["passdbs"] == [{"driver": "static", "path": "", "deny": False},
                                 {"driver": "passwd-file", "path": "/srv/users", "deny": False},
                                 {"driver": "passwd-file", "path": "/etc/dovecot/deny", "deny": True}]
    assert core.dovecot_passwd_files(config) == ["/srv/users"]
    assert not core.dovecot_serves_system_users(config)
    assert config["last_login"]["path"] is None


def test_a_dovecot_24_passwd_file_path_set_outside_the_passdb_is_its_path():
    text = ("# 2.4.1-4 (7d8c0e5759): /etc/dovecot/dovecot.conf\ndovecot_config_version = 2.4.0\n"
            "passwd_file_path = /etc/dovecot/users\npassdb passwd-file {\n}\n")
    assert core.dovecot_passwd_files(core.parse_doveconf(text)) == ["/etc/dovecot/users"]


def test_dovecot_24_login_lines_count_as_logins():
    journal = ("%d.0 h1 dovecot[417]: imap-login: Logged in: user=<mailold>, method=PLAIN, rip=198.18.0.10, "
               "lip=10.213.0.11, mpid=426, TLS, session=<9H5KxethKLd/AAAB>\n" % (NOW - 3 * DAY)
               + "%d.0 h1 dovecot[417]: pop3-login: Login: user=<mailactive>, method=PLAIN, rip=198.18.0.10\n"
               % (NOW - 4 * DAY))
    assert core.parse_journal_logins(journal)["mail"] == {"mailold": NOW - 3 * DAY, "mailactive": NOW - 4 * DAY}
    assert "Logged in: user=<" in core.JOURNAL_GREP.split("|")


@pytest.fixture(params=["2.3", "2.4"])
def dovecot_host(request, host):
    """The host with the doveconf -n of a real Dovecot of that generation, and its passwd-file in that syntax
    (2.4 names the mail location's parts in userdb_mail_driver and userdb_mail_path)."""
    users = pathlib.Path(host.root) / "etc/dovecot/users"
    lastlogin = pathlib.Path(host.root) / "var/lib/dovecot-last-login"
    text = DOVECONF_23 if request.param == "2.3" else DOVECONF_24
    host.doveconf = text.replace("/etc/dovecot/users", str(users)).replace("/var/lib/dovecot/last-login",
                                                                           str(lastlogin))
    mail = "userdb_mail=maildir:~/Maildir" if request.param == "2.3" else \
        "userdb_mail_driver=maildir userdb_mail_path=~/Maildir"
    vmail = pathlib.Path(host.root) / "var/vmail"
    users.write_text("mailold:{PLAIN}secret:5000:5000::%s::%s\nmailactive:{PLAIN}secret:5000:5000::%s::%s\n"
                     % (vmail / "mailold", mail, vmail / "mailactive", mail))
    # The file dict as each generation's last_login writes it, with its default key.
    lastlogin.write_text("shared/last-login/mailold\n%d\nshared/last-login/mailactive\n%d\n"
                         % (NOW - 500 * DAY, NOW - 2 * DAY))
    host.users, host.mail_fields = str(users), mail
    return host


def collect_with_setting(paths):
    accounts = core.collect(paths, doveconf_text=paths.doveconf, now=NOW, doveconf_setting=FakeTools.DOVECONF_H.get)
    return {(a["kind"], a["name"]): a for a in accounts}


def test_passwd_file_users_and_their_last_login_are_read_on_both_generations(dovecot_host):
    accounts = collect_with_setting(dovecot_host)
    assert accounts[("mail", "mailold")]["last_used"] == NOW - 500 * DAY
    assert accounts[("mail", "mailold")]["last_used_source"] == "dovecot last_login"
    assert accounts[("mail", "mailactive")]["last_used"] == NOW - 2 * DAY
    assert accounts[("mail", "mailold")]["source"] == dovecot_host.users
    assert accounts[("system", "oldssh")]["services"] == ["ssh", "ftp", "mail"]  # the pam passdb


def test_a_passwd_file_mailbox_is_locked_read_back_and_unlocked_exactly_on_both_generations(dovecot_host):
    before = open(dovecot_host.users).read()
    result = run(dovecot_host, mode="lock", keep=["kept"], journal=FTP_JOURNAL)
    assert by_name(result)[("mail", "mailold")]["action"] == "locked"
    lines = dict(line.split(":", 1) for line in open(dovecot_host.users).read().splitlines())
    # fail=y is what refuses the login on 2.4 (nologin=y alone lets the password pass there); both are written.
    assert lines["mailold"].endswith("::%s nologin=y fail=y" % dovecot_host.mail_fields)
    assert lines["mailactive"].endswith("::%s" % dovecot_host.mail_fields)
    assert states(dovecot_host)[("mail", "mailold")]["state"] == "in_force"
    # fail=y deleted by hand is named, and the next run applies the lock again.
    locked = open(dovecot_host.users).read()
    with open(dovecot_host.users, "w") as stream:
        stream.write(locked.replace(" fail=y", ""))
    assert states(dovecot_host)[("mail", "mailold")]["undone"] == [
        "fail=y missing from its line in %s" % dovecot_host.users]
    again = run(dovecot_host, mode="lock", keep=["kept"], journal=FTP_JOURNAL)
    assert by_name(again)[("mail", "mailold")]["action"] == "relocked"
    assert open(dovecot_host.users).read() == locked
    run(dovecot_host, mode="unlock", unlock=["mailold"])
    assert open(dovecot_host.users).read() == before
    assert ("mail", "mailold") not in states(dovecot_host)
