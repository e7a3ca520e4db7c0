"""Lab fixture: accounts with old login records, as a shared hosting server has them.

Run once on each lab host by prepare.yml. Dovecot's settings are written in the syntax of the installed
Dovecot: 2.3 on Debian 12, 2.4 on Debian 13. Login records are
written as the binary records sshd writes (lastlog), with the times a real
host would have after months of disuse; Dovecot's last_login plugin writes
its file dict, seeded here with an old login for mailold; vsftpd's virtual users
(ftpold, ftpactive) live in a pam_userdb database, with their logins in vsftpd's log.
Usage: seed_accounts.py PUBLIC_KEY MARKER
"""

import os
import pwd
import struct
import shutil
import subprocess
import sys
import time

DAY = 86400
NOW = int(time.time())
PUBLIC_KEY, MARKER = sys.argv[1], sys.argv[2]
PASSWORD = "Lab-Passw0rd-2026"
# name: (uid, days since the last login or None, days since the password was set)
ACCOUNTS = {
    "oldssh": (1001, 400, 500),   # unused: locked (ac1) or removed (ac2)
    "active": (1002, 1, 500),     # used yesterday: never flagged
    "leaver": (1003, 1, 500),     # used yesterday but named in account_cleanup_remove
    "kept": (1004, 400, 500),     # unused but in account_cleanup_keep
    "busy": (1005, 400, 500),     # unused, with a crontab: reported only
    "never": (1006, None, 400),   # never logged in, password set 400 days ago
    "deploy": (1010, 1, 500),     # an admin account with sudo, which a test connects as
}


def sh(*argv, stdin=None):
    subprocess.run(argv, input=stdin, text=True, check=True)


def write_lastlog(uid, when):
    with open("/var/log/lastlog", "r+b") as stream:
        stream.seek(uid * 292)
        stream.write(struct.pack("<i32s256s", when, b"pts/0", b"198.51.100.10"))


for name, (uid, last_login, password_days) in ACCOUNTS.items():
    sh("useradd", "--create-home", "--uid", str(uid), "--user-group", "--shell", "/bin/bash", name)
    sh("chpasswd", stdin="%s:%s\n" % (name, PASSWORD))
    sh("chage", "--lastday", time.strftime("%Y-%m-%d", time.gmtime(NOW - password_days * DAY)), name)
    home = pwd.getpwnam(name).pw_dir
    os.makedirs(home + "/.ssh", mode=0o700)
    with open(home + "/.ssh/authorized_keys", "w") as keys:
        keys.write(PUBLIC_KEY + "\n")
    with open(home + "/public_html.txt", "w") as site:
        site.write("the site of %s\n" % name)
    with open("/var/mail/" + name, "w") as spool:
        spool.write("From lab@example.org Mon Jan  1 00:00:00 2024\nSubject: for %s\n\nkept mail\n\n" % name)
    os.chmod("/var/mail/" + name, 0o660)
    for path in (home + "/.ssh", home + "/.ssh/authorized_keys", home + "/public_html.txt", "/var/mail/" + name):
        os.chown(path, uid, 8 if path.startswith("/var/mail") else uid)
    if last_login is not None:
        write_lastlog(uid, NOW - last_login * DAY)

with open("/etc/sudoers.d/deploy", "w") as sudoers:
    sudoers.write("deploy ALL=(ALL) NOPASSWD: ALL\n")
os.chmod("/etc/sudoers.d/deploy", 0o440)

# A system account (uid below 1000) that has not logged in for 400 days.
sh("useradd", "--system", "--uid", "990", "--create-home", "--home-dir", "/var/lib/svc", "--shell", "/bin/bash", "svc")
write_lastlog(990, NOW - 400 * DAY)
os.makedirs("/var/spool/cron/crontabs", exist_ok=True)
with open("/var/spool/cron/crontabs/busy", "w") as crontab:
    crontab.write("*/5 * * * * /home/busy/bin/backup\n")

# Dovecot passwd-file users beside the system ones, under a vmail account.
sh("useradd", "--system", "--uid", "991", "--home-dir", "/var/vmail", "--shell", "/usr/sbin/nologin", "vmail")
DOVECOT_24 = subprocess.run(["dovecot", "--version"], capture_output=True, text=True,
                            check=True).stdout.split(".")[:2] >= ["2", "4"]
# The mail location as passwd-file extra fields: 2.4 names its parts, and its INBOX (Debian's default is the spool
# /var/mail/%{user}).
MAIL_FIELDS = ("userdb_mail_driver=maildir userdb_mail_path=~/Maildir userdb_mail_inbox_path=~/Maildir" if DOVECOT_24
               else "userdb_mail=maildir:~/Maildir")
users = []
for user in ("mailold", "mailactive"):
    home = "/var/vmail/" + user
    os.makedirs(home + "/Maildir/cur")
    os.makedirs(home + "/Maildir/new")
    os.makedirs(home + "/Maildir/tmp")
    with open(home + "/Maildir/cur/1700000000.M1P1.lab:2,S", "w") as message:
        message.write("Subject: for %s\n\nkept mail\n" % user)
    users.append("%s:{PLAIN}%s:991:991::%s::%s" % (user, PASSWORD, home, MAIL_FIELDS))
sh("chown", "-R", "vmail:vmail", "/var/vmail")
with open("/etc/dovecot/users", "w") as stream:
    stream.write("\n".join(users) + "\n")
sh("chown", "root:dovecot", "/etc/dovecot/users")
os.chmod("/etc/dovecot/users", 0o640)
with open("/var/lib/dovecot/last-login", "w") as stream:
    stream.write("shared/last-login/mailold\n%d\n" % (NOW - 500 * DAY))
sh("chown", "vmail:vmail", "/var/lib/dovecot/last-login")
# Lab: virtual mail users in a passwd-file, after the system users (PAM); last_login writes to a file dict.
DOVECOT_CONF_24 = """passdb passwd-file {
  auth_username_format = %{user}
  passwd_file_path = /etc/dovecot/users
}
userdb passwd-file {
  auth_username_format = %{user}
  passwd_file_path = /etc/dovecot/users
}
protocol imap {
  mail_plugins {
    last_login = yes
  }
}
last_login {
  dict file {
    dict_file_path = /var/lib/dovecot/last-login
  }
}
"""
DOVECOT_CONF_23 = """passdb {
  driver = passwd-file
  args = username_format=%u /etc/dovecot/users
}
userdb {
  driver = passwd-file
  args = username_format=%u /etc/dovecot/users
}
protocol imap {
  mail_plugins = $mail_plugins last_login
}
plugin {
  last_login_dict = file:/var/lib/dovecot/last-login
}
"""
with open("/etc/dovecot/conf.d/99-lab-virtual-users.conf", "w") as stream:
    stream.write(DOVECOT_CONF_24 if DOVECOT_24 else DOVECOT_CONF_23)
sh("doveconf", "-n")
sh("systemctl", "restart", "dovecot")

# vsftpd virtual users, the usual Debian way: guest_enable with a PAM service that
# checks a pam_userdb Berkeley DB built by db_load from user/password line pairs.
# System users still log in through common-auth (and become guests too).
os.makedirs("/etc/vsftpd", exist_ok=True)
with open("/etc/vsftpd/virtual_users.txt", "w") as stream:
    stream.write("".join("%s\n%s\n" % (user, PASSWORD) for user in ("ftpold", "ftpactive")))
os.chmod("/etc/vsftpd/virtual_users.txt", 0o600)
sh("db_load", "-T", "-t", "hash", "-f", "/etc/vsftpd/virtual_users.txt", "/etc/vsftpd/virtual_users.db")
os.chmod("/etc/vsftpd/virtual_users.db", 0o600)
with open("/etc/pam.d/vsftpd-virtual", "w") as stream:
    stream.write("""# Lab: vsftpd virtual users first, then the system users.
auth    required    pam_listfile.so item=user sense=deny file=/etc/ftpusers onerr=succeed
auth    sufficient  pam_userdb.so db=/etc/vsftpd/virtual_users
@include common-auth
account sufficient  pam_userdb.so db=/etc/vsftpd/virtual_users
@include common-account
""")
with open("/etc/vsftpd.conf") as stream:
    conf = [line for line in stream.read().splitlines() if not line.startswith("pam_service_name=")]
conf += ["pam_service_name=vsftpd-virtual", "guest_enable=YES", "guest_username=ftp"]
with open("/etc/vsftpd.conf", "w") as stream:
    stream.write("\n".join(conf) + "\n")
# vsftpd's own log (use_localtime=NO: GMT): ftpold last logged in 400 days ago, ftpactive yesterday.
with open("/var/log/vsftpd.log", "a") as stream:
    for user, days in (("ftpold", 400), ("ftpactive", 1)):
        stream.write('%s [pid 4242] [%s] OK LOGIN: Client "198.18.0.10"\n'
                     % (time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime(NOW - days * DAY)), user))
sh("systemctl", "restart", "vsftpd")
# A compromised customer forges login lines for the unused accounts, as a program called sshd (and, once the
# session ends, under the name of every daemon whose lines count): the last-login search must read only what the
# daemons themselves logged, or these accounts would pass as used today.
shutil.copy("/usr/bin/logger", "/tmp/sshd")
shutil.copy("/usr/bin/logger", "/tmp/dovecot")
for forger, tag, line in (("/tmp/sshd", "sshd", "Accepted password for oldssh from 198.18.0.10 port 2222 ssh2"),
                          ("/tmp/dovecot", "dovecot", "imap-login: Login: user=<mailold>, "
                                                      "method=PLAIN, rip=198.18.0.10"),
                          ("/tmp/sshd", "sshd", "Accepted publickey for never from 198.18.0.10 port 2222 ssh2")):
    sh("runuser", "-u", "busy", "--", forger, "-p", "authpriv.info", "-t", tag, line)
open(MARKER, "w").close()
