"""account_cleanup: unused accounts locked (ac1) or removed (ac2), proven on the hosts and from the network.

seed_accounts.py gave both hosts the same accounts: oldssh (last login 400 days ago), active (yesterday),
leaver (yesterday, named in account_cleanup_remove), kept (400 days, in account_cleanup_keep), busy (400 days,
with a crontab), never (never logged in, password set 400 days ago), svc (uid 990, 400 days), and the Dovecot
passwd-file users mailold (last_login 500 days ago) and mailactive, and the vsftpd virtual users ftpold (last login
400 days ago in vsftpd's log) and ftpactive (yesterday) in a pam_userdb database (prepare.yml). converge.yml locks on ac1,
removes on ac2.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import pytest
import testinfra
from labtools import IMAP_LOGIN, Lab, ansible_playbook_stats, audit_results, changed_tasks, smtp, task_name

LAB = Lab.from_env()
AC1, AC2 = LAB.hosts["ac1"], LAB.hosts["ac2"]
OFFICE, JP = LAB.clients["office"], LAB.clients["jp"]
KEY = LAB.state["ssh_key"]
PASSWORD = "Lab-Passw0rd-2026"
PROJECT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
CONVERGE = str(Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"]) / "converge.yml")
REPORT = str(Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"]) / "report.yml")
UNLOCK = str(Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"]) / "unlock.yml")
ARCHIVE_DIR = "/var/lib/hostguard/account_archive"
SSH_OPTIONS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5",
               "-o", "LogLevel=ERROR"]

# labtools.IMAP_LOGIN, then the number of messages in INBOX.
IMAP_INBOX = IMAP_LOGIN.replace('print("ok")', 'print(imap.select("INBOX")[1][0].decode())')
FTP_LOGIN = """
import ftplib, sys
ftp = ftplib.FTP(sys.argv[1], timeout=10)
try:
    ftp.login(sys.argv[2], sys.argv[3])
except ftplib.error_perm as error:
    print("refused", error)
else:
    print("ok")
"""


def ssh_with_key(client, host, user, tty=False):
    """Key login; with a terminal (-tt), sshd also writes its lastlog and wtmp records, as for an interactive login."""
    result = client.run("ssh", "-i", KEY, "-o", "BatchMode=yes", "-o", "PreferredAuthentications=publickey",
                        *(["-tt"] if tty else []), *SSH_OPTIONS, f"{user}@{host['ipv4']}", "id -un", timeout=30)
    return result.returncode == 0 and result.stdout.strip() == user


def ssh_with_password(client, host, user, password=PASSWORD):
    """Password login through SSH_ASKPASS, the way ssh takes a password without a terminal."""
    with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as askpass:
        askpass.write("#!/bin/sh\necho '%s'\n" % password)
    os.chmod(askpass.name, 0o700)
    try:
        result = client.run("env", f"SSH_ASKPASS={askpass.name}", "SSH_ASKPASS_REQUIRE=force", "DISPLAY=:0",
                            "ssh", "-o", "PubkeyAuthentication=no", "-o", "PreferredAuthentications=password",
                            "-o", "NumberOfPasswordPrompts=1", *SSH_OPTIONS, f"{user}@{host['ipv4']}", "id -un",
                            timeout=30)
    finally:
        os.unlink(askpass.name)
    return result.returncode == 0 and result.stdout.strip() == user


def login(client, script, host, user, password=PASSWORD):
    result = client.run(sys.executable, "-c", script, host["ipv4"], user, password, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def on(name):
    """The testinfra host `name` (tests here look at both hosts, so they take no `host` fixture)."""
    return testinfra.get_host(f"ansible://{name}",
                              ansible_inventory=str(Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent))


def mail_fields(testinfra_host):
    """The mail location as seed_accounts.py writes it in a passwd-file line, by the host's Dovecot: 2.4 on Debian
    13 names its parts."""
    if int(testinfra_host.system_info.release.split(".")[0]) >= 13:
        return "userdb_mail_driver=maildir userdb_mail_path=~/Maildir userdb_mail_inbox_path=~/Maildir"
    return "userdb_mail=maildir:~/Maildir"


def shadow(testinfra_host, user):
    entry = testinfra_host.run("getent shadow %s", user)
    return entry.stdout.strip().split(":") if entry.rc == 0 else None


# --------------------------------------------------------------------------- ac1: lock

def test_unused_accounts_are_locked_and_the_others_are_not():
    ac1 = on("ac1")
    for user in ("oldssh", "never", "leaver"):
        fields = shadow(ac1, user)
        assert fields[1].startswith("!") and fields[7] == "0", (user, fields)
    for user in ("active", "kept", "busy", "svc", "root", "vmail"):
        fields = shadow(ac1, user)
        assert not fields[1].startswith("!") or user in ("svc", "vmail"), (user, fields)
        assert fields[7] != "0", (user, fields)
    # Nothing was deleted: homes and mail spools are all there.
    for user in ("oldssh", "never", "leaver"):
        assert ac1.file(f"/home/{user}/public_html.txt").exists
        assert ac1.file(f"/var/mail/{user}").exists


def test_a_locked_account_can_no_longer_log_in_over_ssh_imap_or_ftp_while_a_kept_one_can():
    assert not ssh_with_key(OFFICE, AC1, "oldssh")
    assert not ssh_with_password(OFFICE, AC1, "oldssh")
    assert login(JP, IMAP_LOGIN, AC1, "oldssh").startswith("refused")
    assert login(JP, FTP_LOGIN, AC1, "oldssh").startswith("refused")
    # The same logins of an account in use, and of one in account_cleanup_keep, still work.
    for user in ("active", "kept"):
        assert ssh_with_key(OFFICE, AC1, user), user
        assert ssh_with_password(OFFICE, AC1, user), user
        assert login(JP, IMAP_LOGIN, AC1, user) == "ok", user
        assert login(JP, FTP_LOGIN, AC1, user) == "ok", user


def test_a_locked_dovecot_passwd_file_user_can_no_longer_read_mail():
    ac1 = on("ac1")
    users = ac1.file("/etc/dovecot/users")
    assert "nologin=y fail=y" in [line for line in users.content_string.splitlines() if line.startswith("mailold:")][0]
    # The file keeps the owner and mode Dovecot reads it with.
    assert (users.user, users.group, users.mode) == ("root", "dovecot", 0o640)
    assert login(JP, IMAP_LOGIN, AC1, "mailold").startswith("refused")
    # The other one reads its mail: the seeded message in its Maildir's INBOX.
    assert login(JP, IMAP_INBOX, AC1, "mailactive") == "1"


def test_a_locked_dovecot_passwd_file_user_can_no_longer_send_mail_with_smtp_auth():
    # Postfix asks Dovecot (mail_submission's SASL socket) on 587, after STARTTLS.
    for mechanism in ("PLAIN", "LOGIN"):
        locked = smtp(JP, AC1["ipv4"], 587, "--starttls", "--user", "mailold", "--password", PASSWORD,
                      "--mechanism", mechanism)
        assert locked["starttls"] == 220 and locked["auth_offered_after_tls"], locked
        assert locked["auth"] == 535, locked
        kept = smtp(JP, AC1["ipv4"], 587, "--starttls", "--user", "mailactive", "--password", PASSWORD,
                    "--mechanism", mechanism)
        assert kept["auth"] == 235, kept
    # A locked system account's SMTP AUTH fails too (Dovecot's PAM passdb sees the expired account).
    assert smtp(JP, AC1["ipv4"], 587, "--starttls", "--user", "oldssh", "--password", PASSWORD)["auth"] == 535
    assert smtp(JP, AC1["ipv4"], 587, "--starttls", "--user", "active", "--password", PASSWORD)["auth"] == 235


def userdb(testinfra_host):
    """The virtual users in vsftpd's pam_userdb database, as db_dump reads it: {name: password}."""
    lines = testinfra_host.check_output("db_dump -p /etc/vsftpd/virtual_users.db").splitlines()
    data = lines[lines.index("HEADER=END") + 1:lines.index("DATA=END")]
    return {key.strip(): value.strip() for key, value in zip(data[0::2], data[1::2])}


def test_a_locked_vsftpd_virtual_user_can_no_longer_log_in_over_ftp():
    ac1 = on("ac1")
    assert set(userdb(ac1)) == {"ftpactive"}
    db = ac1.file("/etc/vsftpd/virtual_users.db")
    assert (db.user, db.mode) == ("root", 0o600)
    assert login(JP, FTP_LOGIN, AC1, "ftpold").startswith("refused")
    assert login(JP, FTP_LOGIN, AC1, "ftpactive") == "ok"
    record = json.loads(ac1.file("/var/lib/hostguard/account_cleanup/locks/ftp-ftpold.json").content_string)
    assert record["store"] == "userdb" and record["entry"] == [" ftpold", " " + PASSWORD]
    assert record["last_used_source"] == "vsftpd log"


def test_each_lock_is_recorded_so_it_can_be_undone():
    ac1 = on("ac1")
    record = json.loads(ac1.file("/var/lib/hostguard/account_cleanup/locks/system-oldssh.json").content_string)
    assert record["password_was_locked"] is False and record["expire_before"] is None
    record = json.loads(ac1.file("/var/lib/hostguard/account_cleanup/locks/mail-mailold.json").content_string)
    assert record["line"].startswith("mailold:{PLAIN}") and "nologin" not in record["line"]


# --------------------------------------------------------------------------- ac2: remove

def archives(testinfra_host, user, kind="system"):
    listing = testinfra_host.run(f"ls {ARCHIVE_DIR}").stdout.split()
    return sorted(name for name in listing if name.startswith(f"{user}-{kind}-"))


def test_unused_and_leavers_accounts_are_removed_everywhere():
    ac2 = on("ac2")
    for user in ("oldssh", "never", "leaver"):
        assert ac2.run("getent passwd %s", user).rc == 2, user
        assert not ac2.file(f"/home/{user}").exists, user
        assert not ac2.file(f"/var/mail/{user}").exists, user
    assert not any(line.startswith("mailold:") for line in ac2.file("/etc/dovecot/users").content_string.splitlines())
    assert not ac2.file("/var/vmail/mailold").exists
    assert ac2.file("/var/vmail/mailactive/Maildir/cur").is_directory
    assert set(userdb(ac2)) == {"ftpactive"}
    assert login(JP, FTP_LOGIN, AC2, "ftpold").startswith("refused")
    assert login(JP, FTP_LOGIN, AC2, "ftpactive") == "ok"


def test_a_removed_vsftpd_virtual_user_is_archived_with_its_database_entry():
    ac2 = on("ac2")
    names = archives(ac2, "ftpold", "ftp")
    assert len(names) == 2, names
    manifest_name = next(name for name in names if name.endswith(".manifest.json"))
    manifest = json.loads(ac2.file(f"{ARCHIVE_DIR}/{manifest_name}").content_string)
    assert manifest["lines"] == {"/etc/vsftpd/virtual_users.db": [" ftpold", " " + PASSWORD]}


def test_each_removed_account_has_an_archive_with_its_files_intact():
    ac2 = on("ac2")
    for user, kind, files in (("leaver", "system", {"home/leaver/public_html.txt": "the site of leaver\n"}),
                              ("oldssh", "system", {"home/oldssh/public_html.txt": "the site of oldssh\n"}),
                              ("mailold", "mail",
                               {"var/vmail/mailold/Maildir/cur/1700000000.M1P1.lab:2,S": "Subject: for mailold\n"})):
        names = archives(ac2, user, kind)
        assert len(names) == 2, names  # the tar.gz and its manifest
        tar_name = next(name for name in names if name.endswith(".tar.gz"))
        manifest = json.loads(ac2.file(f"{ARCHIVE_DIR}/{tar_name[:-len('.tar.gz')]}.manifest.json").content_string)
        # The archive is the one the manifest describes.
        assert ac2.check_output(f"sha256sum {ARCHIVE_DIR}/{tar_name}").split()[0] == manifest["archive_sha256"]
        listing = json.loads(ac2.check_output(
            "python3 -c 'import json, sys, tarfile; t = tarfile.open(sys.argv[1]); print(json.dumps("
            "{m.name: [m.uid, m.uname, t.extractfile(m).read().decode() if m.isfile() else None] for m in t}))' %s",
            f"{ARCHIVE_DIR}/{tar_name}"))
        for path, start in files.items():
            uid, uname, content = listing[path]
            assert content.startswith(start), (user, path, content)
            assert uname == ""  # numeric owners only
            entry = next(e for e in manifest["entries"] if e["path"] == "/" + path)
            assert entry["uid"] == uid and len(entry["sha256"]) == 64
        if kind == "system":
            assert listing[f"var/mail/{user}"][2].endswith("kept mail\n\n")
            assert manifest["lines"]["passwd"][0].startswith(f"{user}:x:")
    assert ac2.file(ARCHIVE_DIR).mode == 0o700


def test_an_unused_account_with_a_crontab_is_reported_not_removed():
    ac2 = on("ac2")
    assert ac2.run("getent passwd busy").rc == 0
    assert ac2.file("/home/busy/public_html.txt").exists
    assert archives(ac2, "busy") == []


@pytest.mark.parametrize("hostname", ["ac1", "ac2"])
def test_protected_accounts_are_never_touched(hostname):
    target = on(hostname)
    for user in ("root", "svc", "kept", "active", "vmail"):
        assert target.run("getent passwd %s", user).rc == 0, user
        assert shadow(target, user)[7] != "0", user
        assert archives(target, user) == [], user
    assert target.file("/home/kept/public_html.txt").exists


@pytest.mark.parametrize("name, why", [("kept", "in account_cleanup_keep"), ("svc", "uid below"), ("root", "root")])
def test_naming_a_protected_account_fails_before_any_change(name, why):
    run = ansible_playbook_stats(CONVERGE, "-e", json.dumps({"account_cleanup_remove": ["busy", name]}))
    assert run["rc"] != 0
    assert all(stats["changed"] == 0 for stats in run["stats"].values()), run["stats"]
    output = json.dumps(run["plays"])
    assert f"account_cleanup_remove names {name} " in output and why in output
    assert on("ac2").run("getent passwd busy").rc == 0


def test_the_audit_reports_the_flagged_accounts_and_changes_nothing():
    # account_cleanup_mode=remove among the extra vars must not make the audit remove anything.
    run = ansible_playbook_stats(str(PROJECT / "playbooks" / "audit.yml"), "-e", json.dumps(
        {"audit_dnsbl_addresses": [], "account_cleanup_keep": ["kept"], "account_cleanup_mode": "remove"}))
    assert run["rc"] == 0, run["stats"]
    # Its one change: the webshell rules it ships for the scan of the temporary directories.
    changed = changed_tasks(run["plays"])
    assert all(": hostguard.hosting.webshell_rules : " in name for name in changed), changed
    assert on("ac1").run("getent passwd oldssh").rc == 0
    reports = {}
    for play in run["plays"]:
        for task in play["tasks"]:
            if task_name(task) == "Find unused and leavers' accounts (report only)":
                for hostname, result in task["hosts"].items():
                    reports[hostname] = result["accounts"]
    flagged = {(item["kind"], item["name"]): item for item in reports["ac1"]}
    # On ac1 the locked accounts are still unused: reported, with their last use.
    assert set(flagged) == {("system", "oldssh"), ("system", "never"), ("system", "busy"), ("mail", "mailold"),
                            ("ftp", "ftpold")}
    assert flagged[("system", "oldssh")]["last_used_source"] == "lastlog"
    assert flagged[("system", "oldssh")]["reason"].startswith("no login for 400 days")
    assert flagged[("system", "never")]["last_used"] is None
    assert flagged[("system", "never")]["reason"].startswith("never logged in; created 400 days ago")
    assert flagged[("mail", "mailold")]["last_used_source"] == "dovecot last_login"
    assert flagged[("ftp", "ftpold")]["last_used_source"] == "vsftpd log"
    assert all(item["action"] == "reported" for item in reports["ac1"])
    assert all({"name", "kind", "last_used", "reason", "action"} <= set(item) for item in reports["ac1"])
    assert {(item["kind"], item["name"]) for item in reports["ac2"]} == {("system", "busy")}
    # The audit's result says which of them the lock mode locked: those findings are closed as locked, the others
    # stay open; on ac2 (remove mode) nothing is locked.
    facts, lines = audit_results(run["plays"])
    locked = {(lock["kind"], lock["name"]): lock for lock in facts["ac1"]["accounts"]["locked"]}
    assert {("system", "oldssh"), ("mail", "mailold"), ("ftp", "ftpold")} <= set(locked), locked
    assert ("system", "busy") not in locked  # it runs processes: reported, not locked
    statuses = {}
    for finding in facts["ac1"]["findings"]:
        if finding["facet"] == "accounts" and "reason" in finding["evidence"]:
            statuses[(finding["evidence"]["kind"], finding["evidence"]["name"])] = (
                finding["status"], (finding["response"] or {}).get("action"), (finding["response"] or {}).get("at"))
    assert statuses == {key: ("closed", "locked", locked[key]["locked_at"]) if key in locked else ("open", None, None)
                        for key in flagged}, statuses
    assert facts["ac1"]["summary"]["closed"] >= len(locked)
    for kind, name in locked:
        assert "locked account: %s %s (locked %s)" % (kind, name, locked[(kind, name)]["locked_at"]) in lines["ac1"]
    assert "unused or leaver account: system busy " in json.dumps(lines["ac1"])
    assert not [line for line in lines["ac1"] if line.startswith("unused or leaver account: system oldssh")]
    assert facts["ac2"]["accounts"]["locked"] == []


def test_the_account_ansible_connects_as_is_protected():
    # deploy (sudo, logged in yesterday) is neither root, nor below min_uid, nor in account_cleanup_keep.
    run = ansible_playbook_stats(CONVERGE, "-e", json.dumps(
        {"ansible_user": "deploy", "ansible_become": True, "account_cleanup_remove": ["deploy"]}))
    assert run["rc"] != 0
    assert all(stats["changed"] == 0 for stats in run["stats"].values()), run["stats"]
    output = json.dumps(run["plays"])
    assert "account_cleanup_remove names deploy " in output and "the account Ansible connects as" in output
    for name in ("ac1", "ac2"):
        assert on(name).run("getent passwd deploy").rc == 0


def test_a_lock_is_undone_exactly_and_the_role_locks_again():
    ac1 = on("ac1")
    locked = shadow(ac1, "never")
    users_locked = ac1.file("/etc/dovecot/users").content_string
    virtual_locked = userdb(ac1)
    run = ansible_playbook_stats(UNLOCK, "-e", json.dumps({"account_cleanup_unlock": ["never", "mailold", "ftpold"]}))
    assert run["rc"] == 0 and run["stats"]["ac1"]["changed"] == 1, run["stats"]
    unlocked = shadow(ac1, "never")
    # The password hash is back as it was, and the account no longer expires.
    assert "!" + unlocked[1] == locked[1] and unlocked[7] == ""
    mailold = [line for line in ac1.file("/etc/dovecot/users").content_string.splitlines()
               if line.startswith("mailold:")][0]
    assert mailold.endswith("::" + mail_fields(ac1))
    assert not ac1.file("/var/lib/hostguard/account_cleanup/locks/system-never.json").exists
    # The virtual user is back in vsftpd's database with its password, and logs in again.
    assert userdb(ac1) == dict(virtual_locked, ftpold=PASSWORD)
    assert login(JP, FTP_LOGIN, AC1, "ftpold") == "ok"
    # never and mailold are still unused, so the role locks them again, exactly as before.
    run = ansible_playbook_stats(CONVERGE, "--limit", "ac1")
    assert run["rc"] == 0 and changed_tasks(run["plays"]) == [
        "ac1: hostguard.hosting.account_cleanup : Find unused and leavers' accounts, then act as "
        "account_cleanup_mode says"], run["stats"]
    assert shadow(ac1, "never") == locked
    assert ac1.file("/etc/dovecot/users").content_string == users_locked
    # ftpold logged in just now: the OK LOGIN line vsftpd wrote to its log makes it in use, so it stays unlocked.
    assert userdb(ac1) == dict(virtual_locked, ftpold=PASSWORD)
    assert not ac1.file("/var/lib/hostguard/account_cleanup/locks/ftp-ftpold.json").exists


def test_the_login_records_sshd_writes_are_read():
    # A fresh interactive SSH login of kept makes sshd write its own lastlog and wtmp records (sshd writes them
    # only for sessions with a terminal); naming kept in report mode shows the last login the module read.
    assert ssh_with_key(OFFICE, AC1, "kept", tty=True)
    started = int(on("ac1").check_output("date +%s"))
    run = ansible_playbook_stats(REPORT, "-e", json.dumps({"account_cleanup_remove": ["kept"]}))
    assert run["rc"] == 0 and run["stats"]["ac1"]["changed"] == 0, run["stats"]
    accounts = next(task["hosts"]["ac1"]["accounts"] for play in run["plays"] for task in play["tasks"]
                    if task["task"]["name"] == "Report the named accounts with their last login")
    kept = next(item for item in accounts if item["name"] == "kept")
    assert kept["action"] == "reported"
    assert kept["last_used_source"] in ("wtmp", "lastlog"), kept
    last = on("ac1").check_output("date -d %s +%%s", kept["last_used"])
    assert started - 120 <= int(last) <= started, kept


def test_a_mailbox_used_over_imap_is_in_use_by_dovecot_s_login_line():
    # Dovecot 2.3 logs "Login: user=<...>", 2.4 "Logged in: user=<...>". With last_login unable to write its file
    # meanwhile, the journal's login line is the only evidence of this login.
    ac1 = on("ac1")
    ac1.check_output("chown root:root /var/lib/dovecot/last-login")
    try:
        started = int(ac1.check_output("date +%s"))
        assert login(JP, IMAP_LOGIN, AC1, "mailactive") == "ok"
        run = ansible_playbook_stats(REPORT, "-e", json.dumps({"account_cleanup_remove": ["mailactive"]}))
    finally:
        ac1.check_output("chown vmail:vmail /var/lib/dovecot/last-login")
    assert run["rc"] == 0 and run["stats"]["ac1"]["changed"] == 0, run["stats"]
    accounts = next(task["hosts"]["ac1"]["accounts"] for play in run["plays"] for task in play["tasks"]
                    if task["task"]["name"] == "Report the named accounts with their last login")
    mailactive = next(item for item in accounts if (item["kind"], item["name"]) == ("mail", "mailactive"))
    assert mailactive["last_used_source"] == "journal (dovecot)", mailactive
    last = int(ac1.check_output("date -d %s +%%s", mailactive["last_used"]))
    assert started - 5 <= last <= started + 120, mailactive


def test_a_removal_that_fails_midway_names_what_was_done_and_still_reports():
    # Two leavers on ac2; the second one's home holds a mount point (a leftover tmpfs, or a bind mount of another
    # tenant's files): the removal never crosses it, so that account is shut out but neither archived nor deleted.
    ac2 = on("ac2")
    for name, uid in (("gone1", 1021), ("gone2", 1022)):
        ac2.check_output("useradd --create-home --uid %s --user-group --shell /bin/bash %s", str(uid), name)
    ac2.check_output("mkdir /home/gone2/cache && mount -t tmpfs -o size=1m lab /home/gone2/cache")
    try:
        run = ansible_playbook_stats(CONVERGE, "--limit", "ac2", "-e",
                                     json.dumps({"account_cleanup_remove": ["gone1", "gone2"]}))
    finally:
        ac2.run("umount /home/gone2/cache")
    assert run["rc"] != 0
    # Role tasks are named "hostguard.hosting.account_cleanup : <task>".
    tasks = {task["task"]["name"].split(" : ", 1)[-1]: task["hosts"]["ac2"] for play in run["plays"]
             for task in play["tasks"] if "ac2" in task["hosts"]}
    failed = tasks["Find unused and leavers' accounts, then act as account_cleanup_mode says"]
    assert failed.get("failed") is True
    assert failed["msg"].startswith("system gone2 failed: "), failed["msg"]
    assert "Already done in this run: system gone1 (removed)." in failed["msg"], failed["msg"]
    # The report is set all the same, with what was done and what failed.
    report = tasks["Keep the flagged accounts as account_cleanup_report"]["ansible_facts"]["account_cleanup_report"]
    actions = {item["name"]: item["action"] for item in report}
    assert actions["gone1"] == "removed" and actions["gone2"] == "failed", actions
    assert "a mount point" in failed["msg"] and "it stays locked" in failed["msg"], failed["msg"]
    assert ac2.run("getent passwd gone1").rc == 2
    assert len(archives(ac2, "gone1")) == 2 and len(archives(ac2, "gone2")) == 0
    assert ac2.run("getent passwd gone2").rc == 0 and ac2.file("/home/gone2/cache").is_directory
    assert ac2.check_output("getent shadow gone2").split(":")[7] == "0"  # expired: locked


# --------------------------------------------------------------------------- ac1: recorded locks stay in force

def test_a_lock_undone_behind_the_role_is_applied_again_by_the_next_run():
    ac1 = on("ac1")
    locked = shadow(ac1, "oldssh")
    users_locked = ac1.file("/etc/dovecot/users").content_string
    # By hand, behind the role's back: the system account unlocked and unexpired, the Dovecot user's lock fields
    # deleted. Both log in again (oldssh's key login is now a fresh login sshd logs: it is no longer unused).
    ac1.check_output("usermod -U oldssh && chage -E -1 oldssh")
    ac1.check_output("sed -i '/^mailold:/s/ nologin=y fail=y//' /etc/dovecot/users")
    assert ssh_with_key(OFFICE, AC1, "oldssh")
    assert login(JP, IMAP_LOGIN, AC1, "mailold") == "ok"
    # The audit names both locks as not in force, and changes nothing.
    audit = ansible_playbook_stats(str(PROJECT / "playbooks" / "audit.yml"), "--limit", "ac1", "-e", json.dumps(
        {"audit_dnsbl_addresses": [], "account_cleanup_keep": ["kept"]}))
    assert audit["rc"] == 0 and audit["stats"]["ac1"]["changed"] == 0, audit["stats"]
    shown = json.dumps(audit["plays"])
    assert "lock not in force: system oldssh (locked " in shown and "password unlocked in /etc/shadow" in shown
    assert "lock not in force: mail mailold (locked " in shown
    # The next run of the role locks both again, reported as a change.
    run = ansible_playbook_stats(CONVERGE, "--limit", "ac1")
    assert run["rc"] == 0 and changed_tasks(run["plays"]) == [
        "ac1: hostguard.hosting.account_cleanup : Find unused and leavers' accounts, then act as "
        "account_cleanup_mode says"], run["stats"]
    accounts = next(task["hosts"]["ac1"]["accounts"] for play in run["plays"] for task in play["tasks"]
                    if task["task"]["name"].endswith("then act as account_cleanup_mode says"))
    relocked = {item["name"]: item for item in accounts if item["action"] == "relocked"}
    assert set(relocked) == {"oldssh", "mailold"}, accounts
    assert "the lock was undone: password unlocked in /etc/shadow, no longer expired" in relocked["oldssh"]["reason"]
    # In force again: exactly the locked state, and refused from the network.
    assert shadow(ac1, "oldssh") == locked
    assert ac1.file("/etc/dovecot/users").content_string == users_locked
    assert not ssh_with_key(OFFICE, AC1, "oldssh")
    assert not ssh_with_password(OFFICE, AC1, "oldssh")
    assert login(JP, IMAP_LOGIN, AC1, "mailold").startswith("refused")
    # The record still holds what the first lock replaced, and a further run changes nothing.
    record = json.loads(ac1.file("/var/lib/hostguard/account_cleanup/locks/system-oldssh.json").content_string)
    assert record["password_was_locked"] is False and record["expire_before"] is None
    again = ansible_playbook_stats(CONVERGE, "--limit", "ac1")
    assert again["rc"] == 0 and changed_tasks(again["plays"]) == [], again["stats"]
