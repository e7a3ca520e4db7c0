# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostguard-watch's bans facet: the bruteforce role's fail2ban bans, summarised, and accounts attacked.

fail2ban writes its "Ban ADDRESS" and "Unban ADDRESS" lines to its own log
file (``logtarget = /var/log/fail2ban.log`` in Debian 12's and 13's
fail2ban.conf), not to the journal, so the facet has the service follow that
file (the service keeps its inode and offset, so a restart or a rotation loses
no line). One ban is fail2ban doing its work: the facet says nothing about it, and
an event ``ban_rate`` only when more than ``per_hour`` addresses were banned
in the last hour, naming the jails and the busiest networks.

An account attacked from many addresses is what the bruteforce role's
hostguard-accounts action already decides (``bruteforce_account_maxretry``
failures within ``bruteforce_account_findtime``, from any number of addresses)
and reports to the journal as ``hostguard-bruteforce``; the facet turns each
such report naming at least ``account_addresses`` addresses into an event
``account_attacked``.
"""

from __future__ import annotations

import collections
import ipaddress
import re
import time

from ansible_collections.hostguard.hosting.plugins.module_utils.watch_facet import Facet
from ansible_collections.hostguard.hosting.plugins.module_utils import watch_config

# "2026-12-06 03:30:01,234 fail2ban.actions        [812]: NOTICE  [sshd] Ban 203.0.113.10"
BAN_RE = re.compile(r"^(?P<stamp>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)[,.]\d+ fail2ban\.actions\s+\[\d+\]: \w+\s+"
                    r"\[(?P<jail>[^\]]+)\] (?P<restore>Restore )?Ban (?P<target>\S+)\s*$")
# The bruteforce role's report (roles/bruteforce/files/hostguard-accounts.py, summary())
ACCOUNT_RE = re.compile(r"^account (?P<account>\S+) attacked from (?P<addresses>\d+) addresses "
                        r"\((?P<failures>\d+) failed logins\): (?P<list>[^;]*)"
                        r"(?:; never banned \(ignoreip\): (?P<ignored>[^;]*))?(?:; banned: (?P<banned>.*))?$")
BAN_RUNBOOK = "leaked-password.md#2-take-the-guessing-away-from-where-it-happened"
ACCOUNT_RUNBOOK = "leaked-password.md#1-stop-the-account-being-used"


def network_of(address):
    """The /24 (IPv4) or /64 (IPv6) an address is in: attackers rent neighbouring addresses."""
    parsed = ipaddress.ip_address(address)
    return str(ipaddress.ip_network(f"{parsed}/{24 if parsed.version == 4 else 64}", strict=False))


class BansFacet(Facet):
    NAME = "bans"
    LOOKBACK = 3600
    INTERVAL = 60
    DEFAULTS = {
        "log": "/var/log/fail2ban.log",
        "per_hour": 100,
        "account_addresses": 3,
    }

    @staticmethod
    def validate(settings, where):
        watch_config.check_absolute_path(settings["log"], f"{where}.log")
        watch_config.check_integer(settings["per_hour"], f"{where}.per_hour", 1)
        watch_config.check_integer(settings["account_addresses"], f"{where}.account_addresses", 1)

    def __init__(self, context):
        # no check_host: fail2ban may start after the watch, and its log is read once it exists
        super(BansFacet, self).__init__(context)
        context.state.setdefault("bans", [])  # [time, jail, address] of the last hour's bans

    def identifiers(self):
        return ["hostguard-bruteforce"]

    def log_files(self):
        return [self.settings["log"]]

    def on_line(self, line):
        if line.identifier == self.settings["log"]:
            self.banned(line.message)
        else:
            self.attacked(line)

    # -- accounts attacked, from the journal --------------------------------------------------------------------
    def attacked(self, line):
        match = ACCOUNT_RE.match(line.message.strip())
        if not match:
            return
        addresses = match.group("list").split()
        if len(addresses) < self.settings["account_addresses"]:
            return
        account, failures = match.group("account"), int(match.group("failures"))
        banned = (match.group("banned") or "").split()
        if banned == ["none"]:
            banned = []
        self.context.emit(
            "account_attacked", account,
            f"account {account} failed to log in {failures} times from {len(addresses)} addresses",
            severity="critical", runbook=ACCOUNT_RUNBOOK, when=line.time,
            evidence={"account": account, "count": failures, "addresses": addresses,
                      "address_count": len(addresses), "ignored": (match.group("ignored") or "").split(),
                      "banned": banned})

    # -- bans, from fail2ban's log ------------------------------------------------------------------------------
    def banned(self, text):
        match = BAN_RE.match(text)
        if not match or match.group("restore"):
            return  # a ban restored at fail2ban's restart was counted when it happened
        try:
            network_of(match.group("target"))
        except ValueError:
            return  # the hostguard-accounts jail "bans" an account name, not an address
        when = time.mktime(time.strptime(match.group("stamp"), "%Y-%m-%d %H:%M:%S"))  # fail2ban's local time
        self.context.state["bans"].append([when, match.group("jail"), match.group("target")])
        self.context.changed()

    def tick(self, now):
        # the first check after the first start learns the last hour's bans, and says nothing of them
        first = not self.context.state.get("learned")
        self.context.state["learned"] = True
        bans = self.context.state["bans"]
        bans[:] = [ban for ban in bans if ban[0] > now - 3600]
        self.context.changed()
        if first or len(bans) <= self.settings["per_hour"]:
            return  # at first start the last hour is learnt, not alerted on
        jails = collections.Counter(ban[1] for ban in bans)
        addresses = [ban[2] for ban in bans]
        networks = collections.Counter(network_of(address) for address in addresses)
        busiest = [jail for jail, count in jails.most_common(3)]
        self.context.emit(
            "ban_rate", "bans", f"fail2ban banned {len(bans)} addresses in the last hour "
            f"(limit {self.settings['per_hour']}), most in {', '.join(busiest)}",
            runbook=BAN_RUNBOOK, when=now,
            evidence={"count": len(bans), "limit": self.settings["per_hour"], "jails": dict(jails.most_common()),
                      "top_networks": dict(networks.most_common(5)),
                      "addresses": sorted(set(addresses))[:20]})
