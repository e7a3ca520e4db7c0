"""A demo fleet of audit results for the fleet report's tests: five hosts, each worst in a different way.

Each host's ``hostguard_audit`` is built by the audit's own core (module_utils/audit_report.py) from facet inputs
in the shape the audit role registers, so the documents are what a real run produces. A customer named the
planted file on web1 with markup in it, the way a hostile customer would.
"""

from __future__ import annotations

from ansible_collections.hostguard.hosting.plugins.module_utils.audit_report import build_result

TIME = "2026-12-07T06:00:04Z"
HOSTILE = "/var/www/site1/wp-content/uploads/<script>document.title='pwned'</script><b>x</b>.php"
# Worst first, as the report must order them: two criticals, one critical, no result, a warning, nothing.
ORDER = ["mail1", "web1", "gone1", "shop1", "quiet1"]


def _dnsbl(address):
    return {"addresses": [address], "result": {"checks": [
        {"address": address, "zone": "zen.spamhaus.org", "status": "listed", "delist_url": "https://check.spamhaus.org/",
         "codes": [{"code": "127.0.0.2", "meaning": "SBL: Spamhaus-verified spam source"}]}], "zones": {}}}


def _queue(count):
    return {"alert_count": 100, "result": {"mta": "postfix", "held_directories": [], "queue": {
        "count": count, "by_sender": [{"name": "wordpress@site1.example", "count": count - 10}],
        "oldest": {"queue_id": "9E1F91A603F", "age_seconds": 7200}}}}


def quarantine_info(paths, lock="in_force"):
    """quarantine_info's result with each path quarantined in site1 (its manifest, how to restore it)."""
    return {"changed": False, "manifest_dir": "/var/lib/hostguard/quarantine", "unreadable": [], "quarantined": [
        {"path": path, "docroot": "/var/www/site1", "quarantined_at": "20261207T070000.000001Z",
         "manifest": "/var/lib/hostguard/quarantine/%032x.json" % number, "evidence": None, "immutable": False,
         "entries": 1, "type": "file", "lock": lock, "lock_problem": None if lock == "in_force" else "owner 2001:2001",
         "restore": "ansible-playbook hostguard.hosting.restore -l HOST -e '...'"}
        for number, path in enumerate(paths)]}


def _integrity(planted, quarantined=(), lock="in_force"):
    check = {"item": {"item": {"name": "site1"}}, "database": "/var/lib/hostguard/integrity/site1.db",
             "summary": {"added": len(planted), "removed": 0, "modified": 0, "entries": 1200, "seconds": 0.4},
             "added": [{"path": path} for path in planted], "removed": [], "modified": [], "cms": [],
             "suspicious": [{"path": path, "rule": "php_request_eval", "line": "<?php eval($_POST['c']); ?>"}
                            for path in planted]}
    return {"databases": [{"item": {"name": "site1"}, "stat": {"exists": True}}], "checks": [check],
            "temp_dir_paths": ["/tmp"], "temp_dirs": {"files": []}, "quarantine": quarantine_info(quarantined, lock)}


def _updates(unattended):
    return {"result": {"security": [], "summary": {"upgrades": 0, "security": 0}, "held": [], "lists_age_days": 1.5,
                       "unattended_upgrades": {"enabled": unattended}, "reboot_required": False}}


ACCOUNTS = {"unused_days": 90, "result": {"accounts": [
    {"name": "leaver1", "kind": "system", "last_login": None, "reason": "never logged in"}], "locks": []}}


def fleet(planted=(HOSTILE,), queue=250, quarantined=(), lock="in_force"):
    """{host: hostguard_audit or None}: gone1 gave no result (unreachable). ``quarantined``: web1's quarantined
    paths, their ``lock`` as quarantine_info reads it."""
    return {
        "web1": build_result({"integrity": _integrity(list(planted), quarantined, lock), "updates": _updates(True)},
                             "web1", TIME, "Debian 13.2"),
        "mail1": build_result({"dnsbl": _dnsbl("198.19.0.2"), "mail_queue": _queue(queue), "accounts": ACCOUNTS},
                              "mail1", TIME, "Debian 12.12"),
        "shop1": build_result({"updates": _updates(False)}, "shop1", TIME, "Debian 13.2"),
        "quiet1": build_result({"updates": _updates(True), "mail_queue": _queue(0)}, "quiet1", TIME, "Debian 13.2"),
        "gone1": None,
    }
