# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The audit's result: one document per host (``hostguard_audit``) built from what each facet read.

Pure Python, no Ansible. The audit role's facets register what the read-only modules returned; the role's
filter (plugins/filter/audit.py) hands those results here, and this module shapes them into the documented
result (roles/audit/files/hostguard_audit.schema.json), derives the findings with their severity, evidence
and remedy, and renders the lines the audit prints.
"""

from __future__ import annotations

import base64
import datetime
import json
import re

from ansible_collections.hostguard.hosting.plugins.module_utils import cms_releases
from ansible_collections.hostguard.hosting.plugins.module_utils.firewall import exposure_findings

# 3: the watch's findings are closed where its containment (quarantine, lock, hold, or the runbook's password
# change) is in force on the host now, with the times it was noticed and contained; watch.live says what is.
# 2: every finding has a status (open, or closed by the response) and the response that closed it; the summary
# counts open findings and the closed ones apart; integrity names what is quarantined, accounts what is locked,
# mail_queue the purges' evidence archives.
SCHEMA_VERSION = 3
FACETS = ("services", "enforcement", "dnsbl", "integrity", "accounts", "mail_queue", "attacks", "updates", "cms",
          "disks", "watch", "logins", "senders", "safe_browsing")
SEVERITIES = ("critical", "warning", "info")
EVERY_ADDRESS = ("0.0.0.0", "::", "*")

RUNBOOK_BLOCKLISTED = "docs/runbooks/blocklisted-ip.md"
RUNBOOK_PLANTED = "docs/runbooks/planted-files.md"
RUNBOOK_SPAM = "docs/runbooks/spam-outbreak.md"
RUNBOOK_PASSWORD = "docs/runbooks/leaked-password.md"
RUNBOOK_SAFE_BROWSING = "docs/runbooks/planted-files.md#5-get-the-site-off-googles-warnings"
REMEDY_UPDATES = ("apt-get update && apt-get upgrade on the host; install unattended-upgrades so that security "
                  "updates install themselves")


class AuditInputError(ValueError):
    """A facet's input is not what the role registers."""


def _ran(result):
    """A registered task result, or None when the task was skipped or never ran."""
    if not isinstance(result, dict) or result.get("skipped"):
        return None
    return result


def _finding(facet, severity, summary, evidence, remedy, response=None):
    """A finding; with ``response`` (what contained it: _response()) it is closed."""
    return {"facet": facet, "severity": severity, "summary": summary, "evidence": evidence, "remedy": remedy,
            "status": "closed" if response else "open", "response": response}


def _response(action, at, record, evidence=None, undo=None):
    """What the response did about a finding: quarantined, locked, purged, held or the password changed, when, the
    record it left (the quarantine's manifest, the purge's archive), the evidence kept and how to undo it. The
    watch's responses add when the incident was first noticed, when it was contained and the seconds between."""
    return {"action": action, "at": at, "record": record, "evidence": evidence, "undo": undo}


def is_open(finding):
    """Findings of results before schema 2 have no status: they are open."""
    return finding.get("status", "open") == "open"


def _slurped(result):
    """The text of a slurp result, or None when the file could not be read."""
    result = _ran(result)
    if not result or result.get("failed") or "content" not in result:
        return None
    return base64.b64decode(result["content"]).decode("utf-8", "replace")


def services_facet(data):
    services = data.get("services") or {}
    watched = data.get("watched") or []
    running = sorted({re.sub(r"(@-)?\.service$", "", name) for name, state in services.items()
                      if name in watched and state.get("state") == "running"})
    policy = _ran(data.get("firewall")) or {}
    record = policy.get("record") or {}
    in_force = bool(policy.get("in_force"))
    known = {int(port): advice for port, advice in (data.get("known_ports") or {}).items()}
    ports = sorted({int(item["port"]) for item in data.get("tcp_listen") or [] if item.get("address") in EVERY_ADDRESS})
    exposed = exposure_findings([dict(known[port], port=port) for port in ports if port in known],
                                record if in_force else {})
    return {
        "running": running,
        "hostguard_firewall": (services.get("hostguard-firewall.service") or {}).get("status") == "enabled",
        "firewall": {"recorded": bool(policy.get("recorded")), "backend": policy.get("backend"), "in_force": in_force},
        "firewall_record_path": data.get("record_path"),
        "exposed_ports": ports,
        "exposed": exposed,
    }


def services_findings(facet):
    findings = []
    firewall = facet["firewall"]
    if firewall["recorded"] and not firewall["in_force"]:
        findings.append(_finding(
            "services", "critical", "the firewall policy recorded in %s is not in force (the %s rules live differ)"
            % (facet["firewall_record_path"], firewall["backend"]), dict(firewall), "roles/firewall"))
    for port in facet["exposed"]:
        severity = "warning" if port["firewall"] in ("none", "open") else "info"
        findings.append(_finding("services", severity, "port %s (%s) listens on every address: %s"
                                 % (port["port"], port["service"], port["summary"]),
                                 {key: port[key] for key in ("port", "service", "firewall", "firewall_sources",
                                                             "firewall_countries")}, "roles/firewall"))
    return findings


# The kinds of check a hardening role records (<role>_record_path) and the read-only module that reads each back.
ENFORCEMENT_CHECKS = ("mail_settings", "fail2ban", "pwquality")


def enforcement_records(slurped):
    """The records the hardening roles left, from the audit's slurp loop: {role: {path, checks} or {path, error}}.

    A record that is missing means the role never ran here (nothing to prove); one that is not the roles' JSON
    is kept with its error, so that the audit says so rather than trusting nothing silently.
    """
    records = {}
    for result in (slurped or {}).get("results") or []:
        role, path = result["item"]["key"], result["item"]["value"]
        text = _slurped(result)
        if text is None:
            continue
        try:
            record = json.loads(text)
        except ValueError:
            record = None
        if not isinstance(record, dict) or record.get("role") != role or not isinstance(record.get("checks"), dict):
            records[role] = {"path": path, "error": "%s is not the %s role's record" % (path, role)}
            continue
        records[role] = {"path": path, "checks": {kind: check for kind, check in record["checks"].items()
                                                  if kind in ENFORCEMENT_CHECKS}}
    return records


def _check_problems(kind, result):
    """One sentence per way what a check read back is not what the role put in force."""
    # The audit registers these checks with failed_when: false, so a failure shows as the answer's missing key.
    if result.get("failed") or ("differences" if kind == "mail_settings" else "problems") not in result:
        return ["the %s check failed: %s" % (kind, result.get("msg") or "no message")]
    if kind == "mail_settings":
        return (["%s does not run" % daemon for daemon in result.get("not_running") or []]
                + [difference["message"] for difference in result.get("differences") or []])
    return list(result.get("problems") or [])


def enforcement_facet(data):
    records = data.get("records") or {}
    problems = {role: [record["error"]] for role, record in records.items() if "error" in record}
    for kind in ENFORCEMENT_CHECKS:
        for result in (_ran(data.get(kind)) or {}).get("results") or []:
            if _ran(result):
                problems.setdefault(result["item"]["key"], []).extend(_check_problems(kind, result))
    roles = [{"role": role, "record_path": records[role]["path"], "in_force": not problems.get(role),
              "problems": problems.get(role, [])} for role in sorted(records)]
    return {"roles": roles}


def enforcement_findings(facet):
    return [_finding("enforcement", "critical", "%s is configured but not in force: %s"
                     % (role["role"], "; ".join(role["problems"])), role, "roles/%s" % role["role"])
            for role in facet["roles"] if not role["in_force"]]


def dnsbl_facet(data):
    result = _ran(data.get("result")) or {}
    return {
        "addresses": list(data.get("addresses") or []),
        "checks": [check for check in result.get("checks") or [] if check.get("status") != "not_listed"],
        # every zone asked, so that a listing the watch saw and this audit does not is known to be gone
        "zones": sorted(set(check.get("zone") for check in result.get("checks") or [] if check.get("zone"))),
        "unhealthy_zones": sorted(zone for zone, state in (result.get("zones") or {}).items()
                                  if not state.get("healthy", True)),
    }


def dnsbl_findings(facet):
    findings = []
    for check in facet["checks"]:
        meaning = "; ".join(code.get("meaning") or "" for code in check.get("codes") or []) or check.get("error") or ""
        evidence = {key: check.get(key) for key in ("address", "zone", "status", "delist_url")}
        evidence["meaning"] = meaning
        if check["status"] == "listed":
            findings.append(_finding("dnsbl", "critical", "%s is listed on %s" % (check["address"], check["zone"]),
                                     evidence, RUNBOOK_BLOCKLISTED))
        elif check["status"] == "policy":
            findings.append(_finding("dnsbl", "info", "%s has a policy listing on %s (not an abuse listing)"
                                     % (check["address"], check["zone"]), evidence, RUNBOOK_BLOCKLISTED))
        else:
            findings.append(_finding("dnsbl", "warning", "%s could not be checked on %s (%s)"
                                     % (check["address"], check["zone"], check["status"]), evidence,
                                     RUNBOOK_BLOCKLISTED))
    for zone in facet["unhealthy_zones"]:
        findings.append(_finding("dnsbl", "warning", "blocklist %s failed its RFC 5782 test points: its answers are "
                                 "not trusted" % zone, {"zone": zone}, RUNBOOK_BLOCKLISTED))
    return findings


def integrity_facet(data):
    databases = [item for item in data.get("databases") or [] if _ran(item)]
    checks = [item for item in data.get("checks") or [] if _ran(item)]
    dropped = _ran(data.get("temp_dirs"))
    sites = []
    for check in checks:
        site = check.get("item", {}).get("item", {})
        sites.append({"name": site.get("name"), "database": check.get("database"), "summary": check.get("summary"),
                      "added": [entry["path"] for entry in check.get("added") or []],
                      "removed": [entry["path"] for entry in check.get("removed") or []],
                      "modified": [entry["path"] for entry in check.get("modified") or []]})
    return {
        "sites": sites,
        "suspicious": [finding for check in checks for finding in check.get("suspicious") or []],
        "cms": [install for check in checks for install in check.get("cms") or []],
        "no_baseline": [item["item"]["name"] for item in databases if not item.get("stat", {}).get("exists")],
        "temp_dirs": list(data.get("temp_dir_paths") or []),
        "dropped": (dropped or {}).get("files") or [],
        "quarantined": [{key: item.get(key) for key in QUARANTINED_KEYS}
                        for item in (_ran(data.get("quarantine")) or {}).get("quarantined") or []],
    }


QUARANTINED_KEYS = ("path", "docroot", "quarantined_at", "manifest", "evidence", "entries", "type", "lock",
                    "lock_problem", "restore")
# A quarantine whose lock is not in force, by what happened to the path: the severity, what it means and what to do
# (each remedy is completed with the manifest).
QUARANTINE_NOT_IN_FORCE = {
    "undone": ("critical", "its owner or mode was changed back", "playbooks/quarantine.yml locks it again"),
    "replaced": ("critical", "another file is at the path now",
                 "look at the new file and quarantine it (playbooks/quarantine.yml); the old one is recorded"),
    "gone": ("warning", "nothing is at the path now", "find who removed it; what it was is recorded"),
    "unknown": ("warning", "it cannot be checked", "look at the path by hand"),
}


def quarantine_of(path, quarantined):
    """The quarantine in force that holds ``path`` (the path itself or a directory above it), or None."""
    for item in quarantined:
        top = item["path"]
        if item.get("lock") == "in_force" and (path == top or path.startswith(top.rstrip("/") + "/")):
            return item
    return None


def _quarantine_response(item):
    return _response("quarantined", item.get("quarantined_at"), item.get("manifest"), item.get("evidence"),
                     item.get("restore"))


def _quarantined_text(item):
    return "quarantined %s (manifest %s)" % (item.get("quarantined_at"), item.get("manifest"))


def integrity_findings(facet):
    """What looks planted or changed; closed where a quarantine in force holds the path. Every quarantine is
    named: one no finding names is a closed finding of its own, one whose lock is not in force an open one."""
    findings = []
    quarantined = facet.get("quarantined") or []
    named = set()

    def add(severity, summary, evidence, path):
        held = None if path is None else quarantine_of(path, quarantined)
        if held is None:
            findings.append(_finding("integrity", severity, summary, evidence, RUNBOOK_PLANTED))
            return
        named.add(held["manifest"])
        findings.append(_finding("integrity", severity, "%s; %s" % (summary, _quarantined_text(held)), evidence,
                                 RUNBOOK_PLANTED, _quarantine_response(held)))

    for finding in facet["suspicious"]:
        add("critical", "%s looks planted (%s)" % (finding["path"], finding["rule"]), finding, finding["path"])
    for item in facet["dropped"]:
        rules = [match["rule"] for match in item.get("findings") or []]
        add("critical" if rules else "warning", "%s file %s dropped in a temporary directory by %s%s"
            % (item["kind"], item["path"], item["owner"], " (%s)" % ", ".join(rules) if rules else ""), item,
            item["path"])
    for site in facet["sites"]:
        for kind, severity in (("modified", "warning"), ("removed", "warning"), ("added", "info")):
            for path in site[kind]:
                add(severity, "%s %s since the baseline of site %s"
                    % (path, "changed" if kind == "modified" else kind, site["name"]),
                    {"site": site["name"], "path": path, "change": kind}, None if kind == "removed" else path)
    for item in quarantined:
        if item.get("lock") == "in_force":
            if item["manifest"] not in named:
                findings.append(_finding("integrity", "info", "%s is %s" % (item["path"], _quarantined_text(item)),
                                         item, RUNBOOK_PLANTED, _quarantine_response(item)))
            continue
        severity, meaning, remedy = QUARANTINE_NOT_IN_FORCE.get(item.get("lock"), QUARANTINE_NOT_IN_FORCE["unknown"])
        findings.append(_finding("integrity", severity, "the quarantine of %s is not in force: %s (%s)"
                                 % (item["path"], meaning, item.get("lock_problem")), item,
                                 "%s (manifest %s)" % (remedy, item.get("manifest"))))
    for name in facet["no_baseline"]:
        findings.append(_finding("integrity", "info", "site %s has no integrity baseline yet" % name,
                                 {"site": name}, "playbooks/integrity_baseline.yml"))
    return findings


def accounts_facet(data):
    result = _ran(data.get("result")) or {}
    return {
        "unused_days": data.get("unused_days"),
        "flagged": result.get("accounts") or [],
        "locks_not_in_force": [lock for lock in result.get("locks") or []
                               if lock.get("state") == "undone" and not lock.get("protected")],
        "locked": [lock for lock in result.get("locks") or [] if lock.get("state") == "in_force"],
    }


UNLOCK = "ansible HOST -b -m hostguard.hosting.account_cleanup -a 'mode=unlock unlock=%s'"


def _lock_of(item, locked):
    return next((lock for lock in locked if (lock["kind"], lock["name"]) == (item["kind"], item["name"])), None)


def _lock_response(lock):
    return _response("locked", lock.get("locked_at"), None, None, UNLOCK % lock["name"])


def accounts_findings(facet):
    """Unused and leavers' accounts, closed where a lock account_cleanup recorded is in force; every lock in force
    is named, and every lock undone is an open finding."""
    locked = facet.get("locked") or []
    findings, named = [], set()
    for item in facet["flagged"]:
        if "undone" in item:
            continue
        lock = _lock_of(item, locked)
        if lock is None:
            findings.append(_finding("accounts", "warning", "%s account %s: %s"
                                     % (item["kind"], item["name"], item["reason"]), item, "roles/account_cleanup"))
            continue
        named.add((lock["kind"], lock["name"]))
        findings.append(_finding("accounts", "warning", "%s account %s: %s; locked %s" % (
            item["kind"], item["name"], item["reason"], lock.get("locked_at")), item, "roles/account_cleanup",
            _lock_response(lock)))
    findings += [_finding("accounts", "info", "%s account %s is locked %s"
                          % (lock["kind"], lock["name"], lock.get("locked_at")), lock, "roles/account_cleanup",
                          _lock_response(lock))
                 for lock in locked if (lock["kind"], lock["name"]) not in named]
    findings += [_finding("accounts", "critical", "the lock of %s account %s is not in force: %s"
                          % (lock["kind"], lock["name"], ", ".join(lock.get("undone") or [])), lock,
                          "roles/account_cleanup")
                 for lock in facet["locks_not_in_force"]]
    return findings


def mail_queue_facet(data):
    result = _ran(data.get("result"))
    return {
        "mta": (result or {}).get("mta"),
        "queue": (result or {}).get("queue"),
        "held_directories": (result or {}).get("held_directories") or [],
        "alert_count": data.get("alert_count"),
        "evidence_dir": data.get("evidence_dir") or None,
        "purges": (result or {}).get("evidence") or [],
    }


def mail_queue_findings(facet):
    findings = []
    queue = facet["queue"]
    if queue and queue.get("count"):
        alert = facet.get("alert_count")
        severity = "critical" if alert and queue["count"] >= alert else "info"
        evidence = {key: queue.get(key) for key in ("count", "by_sender", "oldest")}
        findings.append(_finding("mail_queue", severity, "%d messages in the mail queue%s" % (
            queue["count"], "; the busiest sender: %s (%d)" % (queue["by_sender"][0]["name"],
                                                               queue["by_sender"][0]["count"])
            if queue.get("by_sender") else ""), evidence, RUNBOOK_SPAM))
    for directory in facet["held_directories"]:
        findings.append(_finding("mail_queue", "warning", "purged mail not deleted yet: %s" % directory,
                                 {"path": directory}, "hostguard.hosting.mail_queue state=cleaned"))
    for purge in facet.get("purges") or []:
        response = _response("purged", purge["purged_at"], purge["path"], purge["path"])
        findings.append(_finding("mail_queue", "info", "mail queue purged %s: %s"
                                 % (purge["purged_at"], _purge_text(purge)), purge, RUNBOOK_SPAM, response))
    return findings


def _purge_text(purge):
    if purge.get("error"):
        return "evidence archive %s (unreadable: %s)" % (purge["path"], purge["error"])
    return "%s messages kept as evidence in %s%s" % (purge.get("messages"), purge["path"], (
        " (the busiest sender: %s, %d)" % (purge["by_sender"][0]["name"], purge["by_sender"][0]["count"])
        if purge.get("by_sender") else ""))


def attacks_facet(data):
    text = _slurped(data.get("file")) or ""
    attacks = []
    for line in text.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # a line cut short by a full disk or a crash says nothing
        if isinstance(entry, dict) and entry.get("account"):
            attacks.append(entry)
    keep = int(data.get("keep") or 0)
    return {"report_path": data.get("report_path"), "accounts": attacks[-keep:] if keep else []}


def attacks_findings(facet):
    return [_finding("attacks", "warning", "account %s attacked from %d addresses (%s failed logins)"
                     % (attack["account"], len(attack.get("addresses") or []), attack.get("failures")), attack,
                     RUNBOOK_PASSWORD)
            for attack in facet["accounts"]]


def logins_facet(data):
    result = _ran(data.get("result")) or {}
    return {"days": data.get("days"), "since": result.get("since"), "country_data": bool(result.get("country_data")),
            "expected_countries": result.get("expected_countries") or [], "logins": result.get("logins") or 0,
            "untrusted_lines": result.get("untrusted_lines") or 0, "accounts": result.get("accounts") or [],
            "unusual": result.get("unusual") or []}


def _where(place):
    return place["country"] or "network %s, no country data" % place["network"]


def logins_findings(facet):
    """One finding per account, service and place unusual for the account: critical outside the expected
    countries the inventory names, a warning where it is only new for the account."""
    findings = []
    for place in facet["unusual"]:
        outside = bool(facet["expected_countries"]) and bool(place.get("country")) \
            and place["country"] not in facet["expected_countries"]
        findings.append(_finding(
            "logins", "critical" if outside else "warning",
            "%s logged in over %s from %s (%s) %d time(s), first %s, last %s: %s" % (
                place["account"], place["service"].upper(), ", ".join(place.get("addresses") or []), _where(place),
                place["count"], place["first"], place["last"], place["unusual"]),
            {key: place.get(key) for key in ("account", "service", "addresses", "country", "network", "count",
                                             "first", "last", "unusual")}, RUNBOOK_PASSWORD))
    return findings


def senders_facet(data):
    result = _ran(data.get("result")) or {}
    return {"days": data.get("days"), "per_hour": data.get("per_hour"), "mta": result.get("mta"),
            "since": result.get("since"), "messages": result.get("messages") or 0,
            "sources": result.get("sources") or 0, "senders": result.get("senders") or []}


def sender_name(sender):
    """Who a source of mail is, as an administrator looks it up: the account and its script, or the mailbox."""
    if sender.get("kind") == "sasl":
        return "mailbox %s (SMTP AUTH)" % sender.get("sasl_user")
    name = "account %s" % (sender.get("account") or "with no passwd entry")
    if sender.get("uid") is not None:
        name += " (uid %s)" % sender["uid"]
    if sender.get("script"):
        name += ", script %s" % sender["script"]
    elif sender.get("cwd"):
        name += ", from %s" % sender["cwd"]
    return name


def _domains(sender):
    return ", ".join("%s %s" % (domain, count) for domain, count in (sender.get("top_recipient_domains") or {}).items())


def senders_findings(facet):
    """A source that sent more than the watch's per-hour limit in one hour of the period."""
    limit = facet.get("per_hour")
    findings = []
    for sender in facet["senders"]:
        peak = sender.get("peak_hour") or {}
        if limit is None or (peak.get("messages") or 0) <= limit:
            continue
        findings.append(_finding(
            "senders", "critical", "%s sent %d messages in the hour from %s (limit %s), %d in %s days; top recipient "
            "domains: %s" % (sender_name(sender), peak["messages"], peak.get("start"), limit, sender["messages"],
                             facet.get("days"), _domains(sender) or "none logged"),
            dict(sender, limit=limit), RUNBOOK_SPAM))
    return findings


def updates_facet(data):
    result = _ran(data.get("result")) or {}
    return {key: result.get(key) for key in ("security", "summary", "held", "lists_age_days", "unattended_upgrades",
                                             "reboot_required")}


def updates_findings(facet):
    findings = []
    summary = facet.get("summary") or {}
    security = facet.get("security") or []
    if security:
        findings.append(_finding("updates", "critical", "%d security updates not installed" % len(security),
                                 {"packages": security, "lists_age_days": facet.get("lists_age_days")}, REMEDY_UPDATES))
    others = (summary.get("upgrades") or 0) - len(security)
    if others > 0:
        findings.append(_finding("updates", "info", "%d other updates not installed" % others,
                                 {"upgrades": summary.get("upgrades")}, REMEDY_UPDATES))
    if facet.get("lists_age_days") is None and facet.get("summary") is not None:
        findings.append(_finding("updates", "warning", "no package lists: pending updates cannot be known",
                                 {"lists_age_days": None}, REMEDY_UPDATES))
    unattended = facet.get("unattended_upgrades") or {}
    if facet.get("unattended_upgrades") is not None and not unattended.get("enabled"):
        findings.append(_finding("updates", "warning", "unattended-upgrades is not on", unattended, REMEDY_UPDATES))
    if facet.get("reboot_required"):
        findings.append(_finding("updates", "warning", "a reboot is pending (/run/reboot-required)",
                                 {"reboot_required": True}, "reboot the host to run the updated kernel and libraries"))
    return findings


# Releases read this many days before the audit are said to be old: an install may look current against them.
CMS_RELEASES_STALE_DAYS = 90
CMS_NAMES = {"wordpress": "WordPress", "joomla": "Joomla"}


def cms_facet(data):
    """The sites' CMS installs, each judged against the releases the controller read (or the pinned ones)."""
    result = _ran(data.get("result")) or {}
    read = _ran(data.get("releases")) or {}
    releases = read.get("releases") or {}
    installs = result.get("installs") or []
    return {"installs": cms_releases.judge(installs, releases) if releases else installs,
            "errors": result.get("errors") or [], "releases_as_of": releases.get("as_of"),
            "releases_source": read.get("source"), "today": data.get("today")}


def _days_between(earlier, later):
    try:
        first, last = (tuple(int(part) for part in str(day)[:10].split("-")) for day in (earlier, later))
        return (datetime.date(*last) - datetime.date(*first)).days
    except (TypeError, ValueError):
        return None


def cms_findings(facet):
    findings = []
    for install in facet["installs"]:
        name = "%s %s at %s" % (CMS_NAMES.get(install["cms"], install["cms"]), install.get("version") or "(version "
                                "unreadable)", install["path"])
        evidence = {key: install.get(key) for key in ("cms", "path", "version", "version_file", "latest", "fixed_in")}
        status = install.get("status")
        update = "update %s to %s with its own updater, as the site's owner (for WordPress: wp core update); " \
                 "software left old is how the seeds' sites were broken into" % (install["path"], install.get("latest"))
        if status == "unsupported":
            findings.append(_finding("cms", "critical", "%s gets no security fixes any more (latest %s)"
                                     % (name, install.get("latest")), evidence, update))
        elif status == "insecure":
            findings.append(_finding("cms", "critical", "%s misses the security release %s of its branch (latest %s)"
                                     % (name, install.get("fixed_in"), install.get("latest")), evidence, update))
        elif status == "outdated":
            findings.append(_finding("cms", "warning", "%s is older than the latest release %s"
                                     % (name, install.get("latest")), evidence, update))
        elif install.get("version") is None:
            findings.append(_finding("cms", "warning", "%s: its version file names no version" % name, evidence,
                                     "look at %s: a changed version file may be a planted one" % install.get(
                                         "version_file")))
        old = [dict(extension, kind=kind[:-1]) for kind in ("plugins", "themes")
               for extension in install.get(kind) or [] if extension.get("status") == "outdated"]
        if old:
            named = ", ".join("%s %s %s (latest %s)" % (item["kind"], item["slug"], item.get("version"), item["latest"])
                              for item in old)
            findings.append(_finding(
                "cms", "warning", "%d plugins and themes of %s are older than the directory's: %s"
                % (len(old), install["path"], named),
                {"path": install["path"], "outdated": old},
                "update them from the site's dashboard or wp plugin update / wp theme update, as the site's owner; "
                "remove the ones the site does not use"))
    for error in facet["errors"]:
        findings.append(_finding("cms", "warning", "%s could not be surveyed for CMS installs: %s"
                                 % (error.get("path"), error.get("reason")), error,
                                 "look at the document root by hand"))
    source = facet.get("releases_source") or {}
    age = _days_between(facet.get("releases_as_of"), facet.get("today"))
    if facet["installs"] and not source.get("pinned") and age is not None and age > CMS_RELEASES_STALE_DAYS:
        findings.append(_finding(
            "cms", "info", "the installs are judged against releases as of %s, %d days old (%s): an install may look "
            "current that is not" % (facet["releases_as_of"], age, "; ".join(source.get("errors") or [])
                                     or "not refreshed"),
            {"as_of": facet["releases_as_of"], "errors": source.get("errors") or []},
            "run the audit where the controller reaches api.wordpress.org and downloads.joomla.org, or pin "
            "current releases in audit_cms_releases_file"))
    return findings


def disks_facet(data):
    result = _ran(data.get("result")) or {}
    return {
        "summary": result.get("summary"),
        "smartctl": result.get("smartctl"),
        "arrays": [array for array in result.get("arrays") or [] if not array.get("healthy")],
        "failing": [disk for disk in result.get("disks") or [] if disk.get("passed") is False],
    }


def disks_findings(facet):
    findings = []
    for array in facet["arrays"]:
        degraded = array.get("degraded")
        findings.append(_finding("disks", "critical" if degraded else "warning", "software RAID %s is %s (%s)" % (
            array["name"], "degraded" if degraded else "rebuilding", array.get("map")), array,
            "replace the failed member and add it back with mdadm --manage; the array has no redundancy until then"))
    for disk in facet["failing"]:
        findings.append(_finding("disks", "critical", "disk %s fails its SMART health check" % disk["device"], disk,
                                 "back up now and replace the disk"))
    return findings


def watch_facet(data):
    result = _ran(data.get("result")) or {}
    unit = data.get("unit")  # the unit as service_facts saw it, None where it is not installed
    facet = {"path": result.get("path"), "present": bool(result.get("present")), "days": data.get("days"),
             "installed": unit is not None, "running": bool(unit) and unit.get("state") == "running",
             "events": result.get("events") or [], "counts": result.get("counts") or {},
             "malformed": result.get("malformed") or 0}
    if "live" in data:
        facet["live"] = watch_live(data["live"])
    return facet


def watch_live(data):
    """What of the watch's containment is in force on the host now, as the audit read it back: the quarantines
    (quarantine_info on the watch's manifest directory), the account locks (account_locks_info), the held uids and
    SASL users (watch_events_info's read of the MTA's hold map and list), and the password changes the
    leaked-password runbook recorded."""
    quarantined = _ran(data.get("quarantine")) or {}
    locks = _ran(data.get("locks")) or {}
    held = (_ran(data.get("events")) or {}).get("held") or {}
    changes = []
    for item in (_ran(data.get("password_changes")) or {}).get("results") or []:
        text = _slurped(item)
        try:
            record = json.loads(text) if text else None
        except ValueError:
            record = None
        if isinstance(record, dict) and record.get("account") and record.get("changed_at"):
            changes.append({key: record.get(key) for key in ("account", "changed_at", "sessions_ended", "record")})
    return {"quarantined": [{key: item.get(key) for key in QUARANTINED_KEYS}
                            for item in quarantined.get("quarantined") or []],
            "locks": [{key: lock.get(key) for key in ("name", "kind", "locked_at", "state", "undone")}
                      for lock in locks.get("locks") or []],
            "held": {"uids": list(held.get("uids") or []), "sasl_users": list(held.get("sasl_users") or [])},
            "password_changes": changes}


def _seconds(since, until):
    """Whole seconds from one ISO 8601 time to another, None where either is missing or unreadable."""
    try:
        start, end = (datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00")) for value in (since, until))
        return max(0, int(round((end - start).total_seconds())))
    except (TypeError, ValueError):
        return None


WATCH_RESPONSES = {"quarantine": "quarantined", "lock": "locked", "hold": "held"}


def _containment_in_force(action, live, noticed_at):
    """(response or None, why it is not in force): what the host says now of a containment the watch did."""
    kind = action.get("kind")
    if kind == "quarantine":
        item = next((item for item in live["quarantined"] if item.get("path") == action.get("path")), None)
        if item is None:
            return None, "no active quarantine holds %s now (restored)" % action.get("path")
        if item.get("lock") != "in_force":
            return None, "the quarantine of %s is %s: %s" % (item["path"], item.get("lock"), item.get("lock_problem"))
        return _response("quarantined", action.get("at"), item.get("manifest"), item.get("evidence"),
                         action.get("undo")), None
    if kind == "lock":
        name = action.get("account")
        change = next((change for change in live["password_changes"] if change["account"] == name
                       and (_seconds(noticed_at, change["changed_at"]) or 0) > 0), None)
        lock = next((lock for lock in live["locks"] if lock["name"] == name and lock.get("state") == "in_force"), None)
        if lock is not None:
            return _response("locked", action.get("at"), None, None, action.get("undo")), None
        if change is not None:
            # the runbook's answer: a new password, the sessions ended, the account unlocked with it
            return _response("password_changed", change["changed_at"], change.get("record"), None, None), None
        return None, "account %s is no longer locked and its password was not changed since" % name
    if kind == "hold":
        held = live["held"]
        if ("uid" in action and action["uid"] in held["uids"]) or \
                ("sasl_user" in action and action["sasl_user"] in held["sasl_users"]):
            return _response("held", action.get("at"), None, None, action.get("undo")), None
        return None, "%s is no longer held (released)" % (
            "uid %s" % action["uid"] if "uid" in action else "SASL user %s" % action.get("sasl_user"))
    return None, "the audit cannot read back a containment of kind %s" % kind


def watch_findings(facet):
    """The latest event of each kind and source, closed where the watch's containment is in force on the host now
    (read back, never taken from the event), open again where it was undone; or that nothing watches."""
    findings = []
    if not facet["installed"]:
        findings.append(_finding("watch", "info", "hostguard-watch is not installed here: nothing watches this host "
                                                  "between audits", {"path": facet["path"]}, "roles/watch"))
    elif not facet["running"]:
        findings.append(_finding("watch", "critical", "hostguard-watch is installed but not running: nothing is "
                                                      "noticed or contained until it runs",
                                 {"path": facet["path"]},
                                 "journalctl -u hostguard-watch, then run roles/watch again (it starts the service "
                                 "and reads back that it runs)"))
    latest, first = {}, {}
    for event in facet["events"]:
        latest[(event.get("kind"), event.get("key"))] = event
        first.setdefault((event.get("kind"), event.get("key")), event.get("time"))
    live = facet.get("live")
    for source, event in latest.items():
        severity = event.get("severity") if event.get("severity") in SEVERITIES else "warning"
        action = event.get("action") or {}
        contained = action.get("done") if action and not action.get("failed") else None
        response = undone = None
        if contained and live is not None:
            response, undone = _containment_in_force(action, live, event.get("time"))
        summary = "watch saw at %s: %s" % (event.get("time"), event.get("summary"))
        if response is not None:
            response.update(noticed_at=first[source], contained_at=action.get("at"),
                            seconds=_seconds(first[source], action.get("at")))
            summary += "; contained: %s" % contained
        elif undone:
            summary += "; contained at %s, but no longer: %s" % (action.get("at") or event.get("time"), undone)
        elif contained:
            summary += "; contained: %s (not read back from the host)" % contained
        remedy = "docs/runbooks/%s" % event["runbook"] if event.get("runbook") else "roles/watch"
        if response is not None and action.get("undo"):
            remedy += "; to undo the containment: %s" % action["undo"]
        findings.append(_finding("watch", severity, summary, event, remedy, response))
    return findings


def safe_browsing_facet(data):
    """The host's URLs (its sites' domains over http and https, and its extra URLs) with what Google Safe Browsing
    answered for each, from the one lookup the controller made for the whole play."""
    targets = data.get("targets") or []
    read = _ran(data.get("result"))
    answered = {item.get("url"): item for item in (read or {}).get("urls") or []}
    urls = []
    for target in targets:
        item = answered.get(target["url"]) or {}
        urls.append({"site": target.get("site"), "url": target["url"], "status": item.get("status", "unchecked"),
                     "matches": item.get("matches") or []})
    if not targets:
        status, error = "nothing_to_check", None
    elif read is None and not data.get("key_given"):
        status, error = "no_key", "no key given (audit_safe_browsing_key)"
    elif read is None:
        # the lookup runs once, with the settings of the play's first host
        status, error = "incomplete", "the lookup did not run: the play's first host has no audit_safe_browsing_key"
    elif read.get("failed"):
        status, error = "incomplete", read.get("msg") or "the lookup failed"
    elif any(url["status"] == "unchecked" for url in urls):
        status, error = "incomplete", read.get("error") or "Google's answer named none of these URLs"
    else:
        status, error = "checked", None
    return {"status": status, "api": data.get("api"), "error": error, "urls": urls}


SAFE_BROWSING_REMEDIES = {
    "no_key": "create an API key for the Safe Browsing API in the Google Cloud console and give it in "
              "audit_safe_browsing_key (kept in a vault)",
    "incomplete": "fix what the reason names (the key, its quota, the controller's way to "
                  "safebrowsing.googleapis.com) and audit again; until then nothing says these sites are not listed",
}


def _listing_text(url):
    return "%s as %s" % (url["url"], ", ".join("%s (%s)" % (match.get("threat_type"), match.get("platform_type"))
                                               for match in url["matches"]))


def safe_browsing_findings(facet):
    """A site Google lists is critical, naming each URL with its threat type and platform; URLs that could not be
    checked are a warning saying why (never clean); without a key, an info finding says they were not checked."""
    findings = []
    listed = [url for url in facet["urls"] if url["status"] == "listed"]
    for site in sorted({url["site"] or "" for url in listed}):
        urls = [url for url in listed if (url["site"] or "") == site]
        findings.append(_finding(
            "safe_browsing", "critical", "%s is listed by Google Safe Browsing: %s; browsers warn its visitors away"
            % ("site %s" % site if site else "URL %s" % urls[0]["url"], "; ".join(_listing_text(url) for url in urls)),
            {"site": site or None, "urls": urls}, RUNBOOK_SAFE_BROWSING))
    unchecked = [url["url"] for url in facet["urls"] if url["status"] == "unchecked"]
    if unchecked and facet["status"] == "no_key":
        findings.append(_finding("safe_browsing", "info", "%d URLs of the sites were not checked with Google Safe "
                                 "Browsing: %s" % (len(unchecked), facet["error"]), {"urls": unchecked},
                                 SAFE_BROWSING_REMEDIES["no_key"]))
    elif unchecked:
        findings.append(_finding("safe_browsing", "warning", "%d URLs of the sites could not be checked with Google "
                                 "Safe Browsing: %s" % (len(unchecked), facet["error"]),
                                 {"urls": unchecked, "api": facet.get("api"), "error": facet["error"]},
                                 SAFE_BROWSING_REMEDIES["incomplete"]))
    return findings


SHAPERS = {
    "services": (services_facet, services_findings),
    "enforcement": (enforcement_facet, enforcement_findings),
    "dnsbl": (dnsbl_facet, dnsbl_findings),
    "integrity": (integrity_facet, integrity_findings),
    "accounts": (accounts_facet, accounts_findings),
    "mail_queue": (mail_queue_facet, mail_queue_findings),
    "attacks": (attacks_facet, attacks_findings),
    "updates": (updates_facet, updates_findings),
    "disks": (disks_facet, disks_findings),
    "cms": (cms_facet, cms_findings),
    "watch": (watch_facet, watch_findings),
    "logins": (logins_facet, logins_findings),
    "senders": (senders_facet, senders_findings),
    "safe_browsing": (safe_browsing_facet, safe_browsing_findings),
}


def build_result(facets, host, time, system=None):
    """The host's ``hostguard_audit``: each facet that ran shaped from its raw results, null for the others."""
    if not isinstance(facets, dict):
        raise AuditInputError("the audit's facets must be a dict of facet name to its results, got %r" % (facets,))
    unknown = sorted(set(facets) - set(FACETS))
    if unknown:
        raise AuditInputError("unknown audit facets: %s (known: %s)" % (", ".join(unknown), ", ".join(FACETS)))
    result = {"schema_version": SCHEMA_VERSION, "host": str(host), "time": str(time), "os": system,
              "facets": [name for name in FACETS if name in facets]}
    findings = []
    for name in FACETS:
        if name not in facets:
            result[name] = None
            continue
        shape, derive = SHAPERS[name]
        result[name] = shape(facets[name] or {})
        findings += derive(result[name])
    _close_across_facets(result, findings, str(time))
    order = {severity: index for index, severity in enumerate(SEVERITIES)}
    findings.sort(key=lambda finding: (not is_open(finding), order[finding["severity"]]))
    result["findings"] = findings
    result["summary"] = summarise(findings)
    return result


def _close_across_facets(result, findings, now):
    """What a facet read now says of another facet's findings: a blocklisting the watch saw is closed once the
    watch saw it delisted or this audit's reading finds it delisted, and is shown once (by that reading) while it
    is still listed; a queue the watch saw
    filling is closed by a purge after it; a sender over the limit is closed while the watch holds its mail; an
    unusual login is closed by a lock in force or by a password changed after it."""
    watch = result.get("watch") or {}
    live = watch.get("live")
    delisted = {event.get("key"): event.get("time") for event in watch.get("events") or []
                if event.get("kind") == "dnsbl_delisted"}
    dnsbl = result.get("dnsbl")
    purges = (result.get("mail_queue") or {}).get("purges") or []
    for finding in findings:
        if not is_open(finding):
            continue
        evidence = finding.get("evidence") or {}
        kind = evidence.get("kind") if finding["facet"] == "watch" else None
        if kind == "dnsbl_listed" and (_seconds(evidence.get("time"), delisted.get(evidence.get("key"))) or 0) > 0:
            _close(finding, _response("delisted", delisted[evidence["key"]], None),
                   "the watch saw it delisted at %s" % delisted[evidence["key"]])
        elif kind == "dnsbl_listed" and dnsbl is not None:
            _dnsbl_read_again(finding, evidence, dnsbl, now)
        elif kind == "mail_queue":
            purge = next((purge for purge in purges if (_seconds(evidence.get("time"), purge.get("purged_at")) or 0)
                          > 0 and _purged_sender(purge, evidence.get("sender"))), None)
            if purge is not None:
                _close(finding, _response("purged", purge["purged_at"], purge["path"], purge["path"]),
                       "purged %s, kept as evidence in %s" % (purge["purged_at"], purge["path"]))
        elif finding["facet"] == "senders" and live is not None:
            held = live["held"]
            if (evidence.get("kind") == "sasl" and evidence.get("sasl_user") in held["sasl_users"]) or (
                    evidence.get("kind") != "sasl" and evidence.get("uid") in held["uids"]):
                _close(finding, _response("held", None, None),
                       "its mail is held now (hostguard-watch); release_mail.yml lets it go")
        elif finding["facet"] == "logins" and live is not None:
            _login_answered(finding, evidence, live)


def _purged_sender(purge, sender):
    """Whether a purge took `sender`'s mail: its archive names the senders it holds (an unreadable one does not,
    and is taken at its word)."""
    names = [entry.get("name") for entry in purge.get("by_sender") or []]
    return not names or sender is None or sender in names


def _close(finding, response, why):
    finding.update(status="closed", response=response, summary="%s; closed: %s" % (finding["summary"], why))


def _dnsbl_read_again(finding, evidence, dnsbl, now):
    address, zone = evidence.get("address"), evidence.get("zone")
    if address not in dnsbl["addresses"] or zone not in (dnsbl.get("zones") or []):
        return  # not asked today: the watch's event is all there is
    check = next((check for check in dnsbl["checks"] if (check["address"], check["zone"]) == (address, zone)), None)
    if check is None:
        _close(finding, _response("delisted", now, None), "not listed when this audit asked %s" % zone)
    elif check["status"] == "listed":
        # the dnsbl facet's finding says it, with today's answer: this one is its history
        finding.update(severity="info", summary="%s; still listed now (the dnsbl finding)" % finding["summary"])


def _login_answered(finding, evidence, live):
    account = evidence.get("account")
    if any(lock["name"] == account and lock.get("state") == "in_force" for lock in live["locks"]):
        _close(finding, _response("locked", None, None), "account %s is locked now" % account)
        return
    change = next((change for change in live["password_changes"] if change["account"] == account
                   and (_seconds(evidence.get("last"), change["changed_at"]) or 0) > 0), None)
    if change is not None:
        _close(finding, _response("password_changed", change["changed_at"], change.get("record")),
               "its password was changed %s, after the last of these logins" % change["changed_at"])


def summarise(findings):
    """Open findings by severity and the worst of them; the findings the response closed counted apart."""
    still = [finding for finding in findings if is_open(finding)]
    counts = {severity: sum(1 for finding in still if finding["severity"] == severity) for severity in SEVERITIES}
    return dict(counts, closed=len(findings) - len(still),
                worst=next((severity for severity in SEVERITIES if counts[severity]), "ok"))


def _hours(seconds):
    return round(seconds / 3600, 1)


def report_lines(result):
    """What the audit prints for one host, one line per item, in the order an operator reads it."""
    lines = []
    services = result.get("services")
    if services:
        lines.append("running: " + (", ".join(services["running"]) or "none of the watched services"))
        firewall = services["firewall"]
        if firewall["recorded"] and not firewall["in_force"]:
            lines.append("firewall: the policy recorded in %s is not in force (the %s rules live differ): run the "
                         "firewall role again" % (services["firewall_record_path"], firewall["backend"]))
        lines += ["listening on every address: port %s %s %s" % (port["port"], port["service"], port["summary"])
                  for port in services["exposed"]]
    enforcement = result.get("enforcement")
    if enforcement:
        lines += ["not in force (run the role again): %s: %s" % (role["role"], "; ".join(role["problems"]))
                  for role in enforcement["roles"] if not role["in_force"]]
    dnsbl = result.get("dnsbl")
    if dnsbl:
        lines += ["blocklist: %s %s %s" % (check["address"], check["status"], check["zone"]) for check in dnsbl["checks"]]
    integrity = result.get("integrity")
    if integrity:
        held = [item for item in integrity.get("quarantined") or [] if item.get("lock") == "in_force"]
        lines += ["looks planted: %s %s" % (finding["path"], finding["rule"]) for finding in integrity["suspicious"]
                  if not quarantine_of(finding["path"], held)]
        lines += ["dropped in a temporary directory (path kind owner rules): %s %s %s %s" % (
            item["path"], item["kind"], item["owner"], ",".join(match["rule"] for match in item.get("findings") or []))
            for item in integrity["dropped"] if not quarantine_of(item["path"], held)]
        lines += ["changed since the baseline: %s" % path for site in integrity["sites"] for path in site["modified"]
                  if not quarantine_of(path, held)]
        lines += ["quarantined: %s %s (manifest %s); restore: %s" % (item["path"], item.get("quarantined_at"),
                                                                     item.get("manifest"), item.get("restore"))
                  for item in held]
        lines += ["quarantine not in force: %s %s: %s" % (item["path"], item.get("lock"), item.get("lock_problem"))
                  for item in integrity.get("quarantined") or [] if item.get("lock") != "in_force"]
    queue_facet = result.get("mail_queue")
    if queue_facet:
        queue = queue_facet["queue"]
        if queue:
            line = "mail queue: %s messages" % queue["count"]
            if queue["count"]:
                line += " (the oldest queued %s h ago); busiest senders: %s" % (
                    _hours(queue["oldest"]["age_seconds"]),
                    ", ".join("%s %s" % (sender["name"], sender["count"]) for sender in queue["by_sender"]))
            lines.append(line)
        lines += ["purged mail not deleted yet (mail_queue state=cleaned deletes it): %s" % directory
                  for directory in queue_facet["held_directories"]]
        lines += ["mail queue purged %s: %s" % (purge["purged_at"], _purge_text(purge))
                  for purge in queue_facet.get("purges") or []]
    updates = result.get("updates")
    if updates and updates.get("summary") is not None:
        summary = updates["summary"]
        if summary.get("upgrades"):
            line = "updates: %s pending, %s of them security updates" % (summary["upgrades"], summary["security"])
            if updates["security"]:
                line += ": " + ", ".join(updates["security"][:10]) + (", ..." if summary["security"] > 10 else "")
            line += (" (package lists %s days old)" % updates["lists_age_days"]
                     if updates["lists_age_days"] is not None else " (no package lists)")
            lines.append(line)
        if not (updates.get("unattended_upgrades") or {}).get("enabled"):
            lines.append("unattended-upgrades is not on: security updates wait for someone to install them")
        if updates.get("reboot_required"):
            lines.append("a reboot is pending (/run/reboot-required)")
    cms = result.get("cms")
    if cms:
        lines += ["cms: %s %s at %s, %s%s" % (CMS_NAMES.get(install["cms"], install["cms"]), install.get("version"),
                                              install["path"], install.get("status", "unknown"),
                                              " (latest %s)" % install["latest"] if install.get("latest") else "")
                  for install in cms["installs"]]
    disks = result.get("disks")
    if disks:
        lines += ["software RAID not healthy (array, members up, failed): %s %s %s"
                  % (array["name"], array.get("map"), ",".join(array.get("failed") or [])) for array in disks["arrays"]]
        lines += ["disk failing its SMART health check: %s" % disk["device"] for disk in disks["failing"]]
    logins = result.get("logins")
    if logins:
        lines += ["unusual login: %s %s from %s (%s) %d time(s), %s to %s: %s" % (
            place["account"], place["service"], ", ".join(place.get("addresses") or []), _where(place), place["count"],
            place["first"], place["last"], place["unusual"]) for place in logins["unusual"]]
    senders = result.get("senders")
    if senders and senders["senders"]:
        lines.append("busiest senders in %s days: %s" % (senders["days"], ", ".join(
            "%s %d (at most %d in an hour)" % (sender_name(sender), sender["messages"], sender["peak_hour"]["messages"])
            for sender in senders["senders"][:5])))
    safe_browsing = result.get("safe_browsing")
    if safe_browsing:
        lines += ["listed by Google Safe Browsing: %s" % _listing_text(url) for url in safe_browsing["urls"]
                  if url["status"] == "listed"]
        if safe_browsing["status"] == "incomplete":
            lines.append("Google Safe Browsing: %d URLs not checked: %s" % (
                sum(1 for url in safe_browsing["urls"] if url["status"] == "unchecked"), safe_browsing["error"]))
    accounts = result.get("accounts")
    if accounts:
        locked = accounts.get("locked") or []
        lines += ["unused or leaver account: %s %s %s" % (item["kind"], item["name"], item["reason"])
                  for item in accounts["flagged"] if "undone" not in item and not _lock_of(item, locked)]
        lines += ["locked account: %s %s (locked %s)" % (lock["kind"], lock["name"], lock.get("locked_at"))
                  for lock in locked]
        lines += ["lock not in force: %s %s (locked %s): %s"
                  % (lock["kind"], lock["name"], lock.get("locked_at"), ", ".join(lock.get("undone") or []))
                  for lock in accounts["locks_not_in_force"]]
    if integrity:
        lines += ["no integrity baseline yet (playbooks/integrity_baseline.yml): %s" % name
                  for name in integrity["no_baseline"]]
    attacks = result.get("attacks")
    if attacks:
        lines += ["account attacked from many addresses: %s at %s, %s failed logins from %s (banned: %s)" % (
            attack["account"], attack.get("time"), attack.get("failures"), ", ".join(attack.get("addresses") or []),
            ", ".join(attack.get("banned") or []) or "none") for attack in attacks["accounts"]]
    watch = result.get("watch")
    if watch:
        lines += [finding["summary"] for finding in result.get("findings") or [] if finding["facet"] == "watch"]
    summary = result.get("summary") or {}
    lines.append("findings: %s critical, %s warning, %s info%s" % (
        summary.get("critical", 0), summary.get("warning", 0), summary.get("info", 0),
        "; %d closed by the response" % summary["closed"] if summary.get("closed") else ""))
    return lines
