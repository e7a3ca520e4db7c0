"""Print what `make demo`'s playbook runs found and changed, from their JSON reports.

Usage: report.py REPORT.json [REPORT.json ...]      (ansible's json callback output; an audit's is
                                                    its fleet report's summary and changes)
       report.py --quarantine-vars DIR FLEET.json   write each host's planted paths from the fleet
                                                    report's report.json as DIR/HOST/quarantine.yml
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def host_results(report: dict, task_name: str) -> dict:
    """Results of one named task (in a role or not), by host; of the last one where an include and the task it
    includes share the name."""
    found: dict = {}
    for play in report["plays"]:
        for task in play["tasks"]:
            if task["task"]["name"].rsplit(" : ", 1)[-1] == task_name:
                found = task["hosts"]
    return found


def changed_tasks(report: dict) -> dict[str, list[str]]:
    changed: dict[str, list[str]] = {host: [] for host in report["stats"]}
    for play in report["plays"]:
        for task in play["tasks"]:
            for host, result in task["hosts"].items():
                if result.get("changed"):
                    changed[host].append(task["task"]["name"])
    return changed


def print_fleet(title: str, report: dict) -> None:
    """The audit's fleet report as the run left it: the summary the role showed, with the findings new and closed."""
    print(f"\n== {title}")
    for written in host_results(report, "Write the fleet report on the controller").values():
        if written.get("failed"):
            print(f"no fleet report: {written.get('msg')}")
            continue
        for line in written["summary"]:
            print(line)
        print(written["msg"])


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


def write_quarantine_vars(directory: str, report_path: str) -> None:
    """The runbook's step from audit to quarantine: each host's planted paths (the fleet report's report.json)."""
    report = json.loads(Path(report_path).read_text())
    for entry in report["hosts"]:
        integrity = (entry["result"] or {}).get("integrity") or {}
        planted = sorted({finding["path"] for finding in integrity.get("suspicious", [])})
        if planted:
            target = Path(directory) / entry["host"] / "quarantine.yml"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("---\nquarantine_paths:\n" + "".join(f"  - {json.dumps(p)}\n" for p in planted))
            print(f"{entry['host']}: {len(planted)} planted file(s) to quarantine")


def main(paths: list[str]) -> int:
    if paths[:1] == ["--quarantine-vars"]:
        write_quarantine_vars(paths[1], paths[2])
        return 0
    for path in paths:
        report = json.loads(Path(path).read_text())
        name = Path(path).stem
        if name.startswith("audit"):
            print_fleet(f"audit ({name}): the fleet report", report)
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
