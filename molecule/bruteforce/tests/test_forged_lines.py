"""A compromised customer forges failed-login lines in the journal: fail2ban must never ban the addresses they name.

The forger is a system account (a uid below 1000, as a CMS's or a daemon's account is): journald keeps its lines in
the system journal, which fail2ban reads, not in a user journal it does not. It writes
- with a program it calls sshd and with logger's authpriv facility (as PHP's syslog() can), what sshd and pam_unix
  write for one account from many addresses (the sshd jail and the per-account jail);
- from a ~/.forward pipe, which Postfix runs inside its own unit as the customer, with a program it calls smtpd,
  what Postfix's smtpd writes for a failed SMTP AUTH (postfix-sasl);
- from inside dovecot.service, where IMAP and POP3 processes run as a mailbox's owner, what Dovecot writes for a
  failed IMAP login (dovecot, and the per-account jail's passwd-file lines of Dovecot 2.3 and 2.4).
"""

from __future__ import annotations

import time

import pytest

# In the abroad range, used by no lab client.
FORGED = ["203.0.113.%d" % last for last in range(90, 96)]
CUSTOMER = "forger"
ROUNDS = 3  # converge.yml's bruteforce_maxretry
WAIT_SECONDS = 60


def sshd_lines(address):
    return [("sshd", "sshd", "authpriv.info", f"Failed password for root from {address} port 4242 ssh2"),
            ("logger", "sshd", "authpriv.notice", "pam_unix(sshd:auth): authentication failure; logname= uid=0 "
             f"euid=0 tty=ssh ruser= rhost={address}  user=labmail")]


def smtpd_lines(address):
    return [("smtpd", "postfix/submission/smtpd", "mail.warning",
             f"warning: unknown[{address}]: SASL PLAIN authentication failed: (reason unavailable), "
             "sasl_username=info@example.com")]


def dovecot_lines(address):
    return [("logger", "dovecot", "mail.info", f"imap-login: Aborted login (auth failed, 1 attempts in 2 secs): "
             f"user=<info@example.com>, method=PLAIN, rip={address}, lip=10.0.0.1, TLS, session=<Zm9yZ2Vk>"),
            ("logger", "dovecot", "mail.info", "imap-login: Login aborted: Connection closed (auth failed, 1 attempts "
             f"in 2 secs) (auth_failed): user=<info@example.com>, method=PLAIN, rip={address}, lip=10.0.0.1, "
             "session=<Zm9yZ2Vk>"),
            ("logger", "dovecot", "mail.info", f"auth: passwd-file(info@example.com,{address},<Zm9yZ2Vk>): "
             "Password mismatch"),
            ("logger", "dovecot", "mail.info", f"auth(info@example.com,{address},sasl:plain)<Zm9yZ2Vk>: "
             "passwd-file: Password mismatch")]


def script(lines):
    """A shell script that writes every line ROUNDS times, each with a program of the line's name.

    One program per kind of line reads them all and stays until a second after the last: journald reads a line's
    unit from the writer's /proc entry, which a program that has already exited no longer has.
    """
    kinds = {}
    for _round in range(ROUNDS):
        for address in FORGED:
            for program, tag, priority, message in lines(address):
                kinds.setdefault((program, tag, priority), []).append(message)
    commands = [f"{{ printf '%s\\n' {' '.join(repr(message) for message in messages)}; sleep 1; }} | "
                f"\"$HOME/{program}\" -p {priority} -t {tag}"
                for (program, tag, priority), messages in kinds.items()]
    return "#!/bin/sh\n" + "\n".join(commands) + "\n"


def install(host, path, content, mode="0755"):
    host.check_output(f"cat > {path} <<'FORGE'\n{content}FORGE")
    host.check_output(f"chown {CUSTOMER}: {path} && chmod {mode} {path}")


def journal_count(host, unit_field, pattern):
    return int(host.check_output(f"journalctl --no-pager -q {unit_field} --grep '{pattern}' | wc -l"))


@pytest.fixture(scope="module")
def forged(host):
    host.run(f"useradd --system --create-home --home-dir /home/{CUSTOMER} --shell /bin/bash {CUSTOMER}")
    uid = int(host.check_output(f"id -u {CUSTOMER}"))
    assert uid < 1000
    home = f"/home/{CUSTOMER}"
    for program in ("sshd", "smtpd", "logger"):
        host.check_output(f"install -o {CUSTOMER} -m 0755 /usr/bin/logger {home}/{program}")
    install(host, f"{home}/forge-sshd", script(sshd_lines))
    install(host, f"{home}/forge-smtpd", script(smtpd_lines))
    install(host, f"{home}/forge-dovecot", script(dovecot_lines))
    host.check_output(f"runuser -u {CUSTOMER} -- env HOME={home} {home}/forge-sshd")
    # Postfix's local delivery runs the customer's ~/.forward pipe as the customer, inside Postfix's unit.
    install(host, f"{home}/.forward", f"\"|{home}/forge-smtpd\"\n", mode="0644")
    host.check_output(f"printf 'Subject: forge\\n\\nforge\\n' | /usr/sbin/sendmail -i {CUSTOMER}")
    # A process of the mailbox owner's inside dovecot.service, as an IMAP process is.
    cgroup = host.check_output("systemctl show -P ControlGroup dovecot.service")
    # The unified hierarchy, or the lab's hybrid one (systemd's own and the unified, both read by journald).
    join = " ".join(f"/sys/fs/cgroup{tree}{cgroup}/cgroup.procs" for tree in ("", "/systemd", "/unified"))
    host.check_output(f"sh -c 'for procs in {join}; do [ -e $procs ] && echo $$ > $procs; done; "
                      f"exec runuser -u {CUSTOMER} -- env HOME={home} {home}/forge-dovecot'")
    expected = {"sshd": ROUNDS * len(FORGED) * 2, "postfix": ROUNDS * len(FORGED), "dovecot": ROUNDS * len(FORGED) * 4}
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        seen = {kind: journal_count(host, f"_UID={uid} -t {tag}", r"203\.0\.113\.9[0-5]")
                for kind, tag in (("sshd", "sshd"), ("postfix", "postfix/submission/smtpd"), ("dovecot", "dovecot"))}
        if all(seen[kind] >= count for kind, count in expected.items()):
            break
        time.sleep(2)
    # The forged lines are in the journal, from the units the jails read: it is the filters that must not take them.
    assert all(seen[kind] >= count for kind, count in expected.items()), (seen, expected)
    units = host.check_output(f"journalctl --no-pager -q _UID={uid} -o 'cat' --output-fields=_SYSTEMD_UNIT "
                              "| sort -u").split()
    assert any(unit.startswith("postfix") for unit in units) and "dovecot.service" in units, units
    # fail2ban reads the journal within a second or two; give it ten more.
    time.sleep(10)
    yield


def test_forged_login_failures_get_no_address_banned(host, forged):
    ruleset = host.check_output("nft list ruleset")
    jails = host.check_output("fail2ban-client status").split("Jail list:", 1)[1].replace(",", " ").split()
    assert {"sshd", "dovecot", "postfix-sasl", "hostguard-accounts"} <= set(jails), jails
    for jail in jails:
        status = host.check_output(f"fail2ban-client status {jail}")
        for address in FORGED:
            assert address not in status, (jail, status)
    for address in FORGED:
        assert address not in ruleset
    # Nor reported as attacking a mailbox (the per-account jail's report names the addresses it counted).
    reported = host.run("journalctl --no-pager -q -t hostguard-bruteforce --grep '203\\.0\\.113\\.9[0-5]'")
    assert reported.stdout.strip() == "", reported.stdout
