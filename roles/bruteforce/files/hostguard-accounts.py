# The hostguard.hosting.bruteforce role's fail2ban action for one account
# attacked from many addresses (installed as /etc/fail2ban/action.d/hostguard-accounts.py).
#
# The hostguard-accounts jail counts failed logins per account (its filter's
# failure id is the account: a system account from PAM's lines, a Dovecot
# passwd-file mailbox from Dovecot's). When an account reaches its maxretry, fail2ban
# "bans" the account and calls ban() here with the ticket's matches: the failed
# logins on that account within the window, each naming its address. This action
#
# - reports: one entry in the journal (identifier hostguard-bruteforce, with the
#   account and the addresses as fields) and one JSON line in the report file,
#   which playbooks/audit.yml shows;
# - in ban mode, also bans every address that failed on the account, except those
#   in the jail's ignoreip (the office, the controller), in the ban jail.
#
# It runs inside the fail2ban server, as root; nothing here must raise into it.

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import time

try:
    from fail2ban.server.actions import ActionBase
except ImportError:  # loaded outside fail2ban, as the collection's unit tests do
    ActionBase = object

MODES = ("report", "ban")
# The same end-anchored shapes as the filter's two failregex: PAM's pam_unix line (what a client chooses, ruser,
# comes before rhost and cannot fake it) and the line of a Dovecot passwd-file mailbox (the address, which Dovecot
# writes after the login name, only where it is an IP address; a line without one names no address), as Dovecot 2.3
# and 2.4 write it.
FAILURE_ADDRESS = re.compile(
    r"\srhost=(?P<address>\S+)\s+user=[^\s=]+\s*$"
    r"|\sauth: passwd-file\([^\s,()<>]+,(?P<dovecot_address>[0-9A-Fa-f.:]+)(?:,<[^\s<>]*>)?\): Password mismatch\s*$"
    r"|\sauth\([^\s,()<>]+,(?P<dovecot24_address>[0-9A-Fa-f.:]+),sasl:[\w-]+\)(?:<[^\s<>]*>)?: "
    r"passwd-file: Password mismatch\s*$")


def normalized(address):
    """An address as fail2ban writes it: vsftpd, listening on IPv6, logs IPv4 clients as ::ffff:a.b.c.d."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address  # a host name, as the service logged it
    return str(getattr(parsed, "ipv4_mapped", None) or parsed)


def addresses_in(matches):
    """The addresses of the failed logins in matches (lines), each once, in order of first failure."""
    addresses = []
    for line in matches:
        found = FAILURE_ADDRESS.search(line)
        if not found:
            continue
        address = normalized(found.group("address") or found.group("dovecot_address")
                             or found.group("dovecot24_address"))
        if address not in addresses:
            addresses.append(address)
    return addresses


def plan(account, matches, mode, is_ignored):
    """What to report and whom to ban for an account under attack: a report record (a dict).

    is_ignored(address) says whether an address is in the jail's ignore list; those are reported but never banned.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    addresses = addresses_in(matches)
    ignored = [address for address in addresses if is_ignored(address)]
    return {
        "account": account,
        "failures": len(matches),
        "addresses": addresses,
        "ignored": ignored,
        "action": mode,
        "banned": [address for address in addresses if address not in ignored] if mode == "ban" else [],
    }


def summary(record):
    """One line for the journal and fail2ban's log."""
    text = (f"account {record['account']} attacked from {len(record['addresses'])} addresses "
            f"({record['failures']} failed logins): {' '.join(record['addresses'])}")
    if record["ignored"]:
        text += f"; never banned (ignoreip): {' '.join(record['ignored'])}"
    if record["action"] == "ban":
        text += f"; banned: {' '.join(record['banned']) or 'none'}"
    return text


def append_line(path, line):
    """Append one line to path with a single write, so a reader never sees half an entry."""
    os.makedirs(os.path.dirname(path), mode=0o750, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    try:
        os.write(descriptor, (line + "\n").encode())
    finally:
        os.close(descriptor)


def to_journal(record, text):
    try:
        from systemd import journal
    except ImportError:
        import syslog
        syslog.openlog("hostguard-bruteforce", 0, syslog.LOG_AUTHPRIV)
        syslog.syslog(syslog.LOG_WARNING, text)
        return
    journal.send(text, SYSLOG_IDENTIFIER="hostguard-bruteforce", PRIORITY=str(journal.LOG_WARNING),
                 HOSTGUARD_ACCOUNT=record["account"], HOSTGUARD_ADDRESSES=" ".join(record["addresses"]),
                 HOSTGUARD_BANNED=" ".join(record["banned"]), HOSTGUARD_ACTION=record["action"])


class HostguardAccountsAction(ActionBase):
    """Report an account attacked from many addresses and, in ban mode, ban those addresses."""

    def __init__(self, jail, name, mode="report", banjail="hostguard-account-ban",
                 report="/var/lib/hostguard/bruteforce/accounts.jsonl"):
        super().__init__(jail, name)
        self.reload(mode=mode, banjail=banjail, report=report)

    # fail2ban's reload keeps an action only if it has both clearAllParams and reload; without them it
    # drops the action from the jail, which would go on counting and never report.
    def clearAllParams(self):
        pass

    def reload(self, mode="report", banjail="hostguard-account-ban",
               report="/var/lib/hostguard/bruteforce/accounts.jsonl"):
        if mode not in MODES:
            raise ValueError(f"hostguard-accounts: mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.mode = mode
        self.banjail = banjail
        self.report = report

    def start(self):
        pass

    def stop(self):
        pass

    def ban(self, aInfo):
        # A ban restored from fail2ban's database at restart was reported when it happened.
        if aInfo["restored"]:
            return
        account = str(aInfo["fid"])
        record = plan(account, str(aInfo["matches"]).splitlines(), self.mode,
                      lambda address: self._jail.filter.inIgnoreIPList(address, log_ignore=False))
        record["time"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        if record["banned"]:
            # banip does not read ignoreip: the ignored addresses were taken out above.
            result = subprocess.run(["fail2ban-client", "set", self.banjail, "banip", *record["banned"]],
                                    capture_output=True, text=True, timeout=60, check=False)
            if result.returncode != 0:
                record["ban_error"] = (result.stderr or result.stdout).strip()
                record["banned"] = []
        text = summary(record)
        self._logSys.warning("[%s] %s", self._jail.name, text)
        try:
            to_journal(record, text)
            append_line(self.report, json.dumps(record, sort_keys=True))
        except (OSError, ValueError) as error:
            self._logSys.error("[%s] could not record the report: %s", self._jail.name, error)

    def unban(self, aInfo):
        # The account's window is over; the addresses' bans run out in the ban jail on their own.
        pass


Action = HostguardAccountsAction
