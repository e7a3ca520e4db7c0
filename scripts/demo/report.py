"""Print what `make demo`'s playbook runs found and changed, from their JSON reports.

Usage: report.py REPORT.json [REPORT.json ...]      (ansible's json callback output)
       report.py --quarantine-vars DIR AUDIT.json   write each host's planted paths as
                                                    DIR/HOST/quarantine.yml (quarantine_paths)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def host_results(report: dict, task_name: str) -> dict:
    """Results of one named task (in a role or not), by host."""
    for play in report["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"].rsplit(" : ", 1)[-1] == task_name:
                return task["hosts"]
    return {}


def changed_tasks(report: dict) -> dict[str, list[str]]:
    changed: dict[str, list[str]] = {host: [] for host in report["stats"]}
    for play in report["plays"]:
        for task in play["tasks"]:
            for host, result in task["hosts"].items():
                if result.get("changed"):
                    changed[host].append(task["task"]["name"])
    return changed


def print_audit(title: str, report: dict) -> None:
    print(f"\n== {title}")
    facts = host_results(report, "Keep the findings with the audit")
    for host in sorted(report["stats"]):
        audit = facts.get(host, {}).get("ansible_facts", {}).get("hostguard_audit")
        if audit is None:
            print(f"{host}: no audit result ({report['stats'][host]})")
            continue
        services = audit.get("services") or {}
        policy = services.get("firewall", {})
        if policy.get("in_force"):
            firewall = f"hostguard firewall ({policy['backend']}) in force"
        elif policy.get("recorded"):
            firewall = f"hostguard firewall ({policy['backend']}) recorded but NOT in force"
        else:
            firewall = "no hostguard firewall"
        summary = audit["summary"]
        print(f"{host} ({audit['os']}): running {', '.join(services.get('running', [])) or 'none'}; {firewall}; "
              f"findings: {summary['critical']} critical, {summary['warning']} warning, {summary['info']} info")
        for finding in services.get("exposed", []):
            print(f"    port {finding['port']:>5} {finding['service']:<12} listening on every address: {finding['summary']}")
        queue = (audit.get("mail_queue") or {}).get("queue")
        if queue:
            senders = ", ".join(f"{sender['name']} {sender['count']}" for sender in queue["by_sender"])
            print(f"    mail queue: {queue['count']} messages" + (f"; busiest senders: {senders}" if senders else ""))
        dnsbl = audit.get("dnsbl") or {}
        for check in dnsbl.get("checks", []):
            meanings = "; ".join(code["meaning"] for code in check.get("codes") or []) or check.get("error") or ""
            delist = f" (delist: {check['delist_url']})" if check.get("delist_url") else ""
            print(f"    blocklist {check['zone']:<22} {check['address']:<15} {check['status']:<8} {meanings}{delist}")
        for zone in dnsbl.get("unhealthy_zones", []):
            print(f"    blocklist {zone:<22} not trusted: failed its RFC 5782 test points")
        integrity = audit.get("integrity") or {}
        for cms in integrity.get("cms", []):
            print(f"    site {cms['path']}: {cms['cms']} {cms['version']}")
        for site in integrity.get("sites", []):
            counts = site["summary"] or {}
            print(f"    site {site['name']}: {counts.get('added')} added, {counts.get('removed')} removed, "
                  f"{counts.get('modified')} changed since the baseline; {counts.get('entries')} entries checked "
                  f"in {counts.get('seconds')} s")
            for path in site["modified"]:
                print(f"        changed: {path}")
            for path in site["added"]:
                print(f"        added:   {path}")
        for finding in integrity.get("suspicious", []):
            print(f"        looks planted: {finding['path']} ({finding['rule']}: {finding.get('line') or ''})")
        for account in (audit.get("accounts") or {}).get("flagged", []):
            print(f"    account {account['name']} ({account['kind']}) unused: {account['reason']}")
        for attack in (audit.get("attacks") or {}).get("accounts", []):
            print(f"    account {attack['account']:<12} attacked from {', '.join(attack['addresses'])}")


def print_changes(title: str, report: dict) -> None:
    print(f"\n== {title}")
    for host, tasks in sorted(changed_tasks(report).items()):
        stats = report["stats"][host]
        print(f"{host}: {stats['changed']} changed, {stats['failures']} failed, {stats['unreachable']} unreachable")
        for task in tasks:
            print(f"    changed: {task}")


def print_messages(title: str, report: dict, task_names: tuple[str, ...]) -> None:
    """The messages the named debug tasks printed, by host."""
    print(f"\n== {title}")
    for task_name in task_names:
        for host, result in sorted(host_results(report, task_name).items()):
            message = result.get("msg")
            for line in message if isinstance(message, list) else [message] if message else []:
                print(f"{host}: {line}")


def print_quarantine(report: dict) -> None:
    print("\n== quarantine: what was locked")
    for host, result in sorted(host_results(report, "Record the paths in manifests, then lock them").items()):
        for item in result.get("results", []):
            print(f"{host}: {item['path']}: {item['msg']}")
        if result.get("failed"):
            print(f"{host}: FAILED: {result.get('msg')}")


def write_quarantine_vars(directory: str, audit_path: str) -> None:
    """The runbook's step from audit to quarantine: each host's planted paths as its quarantine_paths."""
    report = json.loads(Path(audit_path).read_text())
    facts = host_results(report, "Keep the findings with the audit")
    for host, result in facts.items():
        integrity = result.get("ansible_facts", {}).get("hostguard_audit", {}).get("integrity") or {}
        planted = sorted({finding["path"] for finding in integrity.get("suspicious", [])})
        if planted:
            target = Path(directory) / host / "quarantine.yml"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("---\nquarantine_paths:\n" + "".join(f"  - {json.dumps(p)}\n" for p in planted))
            print(f"{host}: {len(planted)} planted file(s) to quarantine")


def main(paths: list[str]) -> int:
    if paths[:1] == ["--quarantine-vars"]:
        write_quarantine_vars(paths[1], paths[2])
        return 0
    for path in paths:
        report = json.loads(Path(path).read_text())
        name = Path(path).stem
        if name.startswith("audit"):
            print_audit(f"audit ({name})", report)
        elif name == "quarantine":
            print_quarantine(report)
        elif name.startswith("purge"):
            purge_tasks = ("Show what would be deleted", "Report the counts before and after")
            print_messages(f"{name}: the mail queue", report, purge_tasks)
        else:
            print_changes(f"{name}: what changed", report)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
