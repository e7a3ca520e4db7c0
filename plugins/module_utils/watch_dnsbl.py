# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostguard-watch's blocklist facet: the host's addresses on DNS blocklists, a new listing or a delisting.

Every ``interval`` seconds (a few hours by default: the lists' free use has
query limits, and a listing lasts days) the host's public addresses are
checked with the dnsbl core, the one behind dnsbl_check and the audit, against
the same zones (its curated default unless ``zones`` names others), with the
same rules: each zone is proven with its RFC 5782 test points first, and only
an NXDOMAIN is "not listed". What is listed is kept in the facet's state, so a
restart neither repeats a listing nor misses a delisting; a check that timed
out or failed for a zone changes nothing for it.
"""

from __future__ import annotations

import ipaddress
import json

from ansible_collections.hostguard.hosting.plugins.module_utils.watch_facet import Facet
from ansible_collections.hostguard.hosting.plugins.module_utils import dnsbl, watch_config

RUNBOOK = "blocklisted-ip.md"


def host_addresses(run):
    """The host's globally routable addresses (those a blocklist can list), as the kernel has them now."""
    rc, out, err = run(["ip", "-j", "address", "show"])
    if rc != 0:
        raise RuntimeError(f"ip -j address show failed: {(err or out).strip()}")
    found = []
    for interface in json.loads(out or "[]"):
        for info in interface.get("addr_info", ()):
            try:
                address = ipaddress.ip_address(info.get("local", ""))
            except ValueError:
                continue
            if address.is_global and str(address) not in found:
                found.append(str(address))
    return found


class DnsblFacet(Facet):
    NAME = "dnsbl"
    INTERVAL = 60  # how often it looks whether a check is due; `interval` says how often one is
    DEFAULTS = {
        "interval": 14400,
        "addresses": None,
        "zones": None,
        "nameservers": None,
        "timeout": 3,
    }

    @staticmethod
    def validate(settings, where):
        watch_config.check_integer(settings["interval"], f"{where}.interval", 60)
        watch_config.check_integer(settings["timeout"], f"{where}.timeout", 1, 60)
        for key in ("addresses", "zones", "nameservers"):
            if settings[key] is not None and (not isinstance(settings[key], list) or not settings[key]):
                raise watch_config.ConfigError(f"{where}.{key}: expected a non-empty list, got {settings[key]!r}")
        try:
            # the core's own parser: a bad address, zone or nameserver is refused as dnsbl_check refuses it
            dnsbl.parse_request(settings["addresses"] or ["192.0.2.1"], zones=settings["zones"],
                                nameservers=settings["nameservers"], timeout=settings["timeout"])
        except dnsbl.DnsblInputError as exc:
            raise watch_config.ConfigError(f"{where}: {exc}") from exc

    @staticmethod
    def check_host(settings, where):
        if not dnsbl.HAS_DNSPYTHON:
            raise watch_config.ConfigError(f"{where}: needs python3-dnspython (apt-get install python3-dnspython)")

    def __init__(self, context, check=dnsbl.check):
        super(DnsblFacet, self).__init__(context)
        self.check = check
        context.state.setdefault("listed", {})

    def tick(self, now):
        state = self.context.state
        if now - state.get("checked", 0) < self.settings["interval"]:
            return
        state["checked"] = now  # also after a failure: the lists are not asked again before the interval
        self.context.changed()
        try:
            addresses = self.settings["addresses"] or host_addresses(self.context.run)
            if not addresses:
                self.context.log("dnsbl: the host has no public address to check (set watch_dnsbl_addresses)")
                return
            result = self.check(addresses, zones=self.settings["zones"], nameservers=self.settings["nameservers"],
                                timeout=self.settings["timeout"])
        except (dnsbl.DnsblInputError, dnsbl.DnspythonMissingError, RuntimeError, OSError, ValueError) as exc:
            self.context.log(f"dnsbl: the check failed: {exc}")
            return
        unhealthy = result["summary"]["unhealthy_zones"]
        if unhealthy:
            self.context.log(f"dnsbl: zones not checked (failed their test points): {', '.join(unhealthy)}")
        listed = state["listed"]
        checked = {f"{check['address']} {check['zone']}" for check in result["checks"]}
        for key in [key for key in listed if key not in checked]:
            del listed[key]  # an address or zone no longer watched
        for check in result["checks"]:
            key = f"{check['address']} {check['zone']}"
            if check["status"] == dnsbl.STATUS_LISTED and key not in listed:
                codes = [code for code in check["codes"] if code["class"] == dnsbl.LISTED] or check["codes"]
                listed[key] = {"since": now, "codes": [code["code"] for code in codes]}
                meaning = "; ".join(code["meaning"] for code in codes)
                self.context.emit(
                    "dnsbl_listed", key, f"{check['address']} is listed on {check['zone']}: {meaning}",
                    severity="critical", runbook=RUNBOOK, when=now,
                    evidence={"address": check["address"], "zone": check["zone"], "code": codes[0]["code"],
                              "codes": [code["code"] for code in codes], "meaning": meaning,
                              "reason": check.get("reason"), "delist_url": check.get("delist_url")})
            elif check["status"] == dnsbl.STATUS_NOT_LISTED and key in listed:
                # only an NXDOMAIN is a delisting: a timeout or an error says nothing either way
                was = listed.pop(key)
                self.context.emit(
                    "dnsbl_delisted", key, f"{check['address']} is no longer listed on {check['zone']}",
                    severity="info", runbook=RUNBOOK, when=now,
                    evidence={"address": check["address"], "zone": check["zone"], "code": None,
                              "was_codes": was["codes"], "listed_since": was["since"]})
