# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The state of a host's disks: software RAID arrays from /proc/mdstat, and each disk's SMART verdict.

A RAID1 whose second member failed keeps serving from the first, silently, until that one fails too (one of
the providers' incidents began so). The kernel says it in /proc/mdstat: "[2/1] [U_]" is an array of two
members with one working, "(F)" marks a failed member, and a "recovery"/"resync" line tells a rebuild and its
progress. smartmontools' `smartctl` gives each disk's own health verdict as JSON (`--json`, smartmontools 7).

Pure Python over the text of /proc/mdstat and a `run(argv) -> (rc, stdout, stderr)` callable.
"""

from __future__ import annotations

import json
import re

MDSTAT = "/proc/mdstat"
SCAN = ["smartctl", "--scan", "--json"]

# "md1 : active raid1 sdb2[2](F) sda2[0]" (a read-only array says "active (auto-read-only)").
_ARRAY = re.compile(r"^(?P<name>md\S*) : (?P<state>active|inactive)(?: \([\w-]+\))?(?: (?P<level>raid\d+|linear|multipath|faulty))?"
                    r"(?P<members>(?: \S+\[\d+\](?:\([A-Z]\))*)*)\s*$")
_MEMBER = re.compile(r"^(?P<device>\S+)\[(?P<slot>\d+)\](?P<flags>(?:\([A-Z]\))*)$")
# "[2/1] [U_]": members the array wants / members working, and which slots are up.
_COUNTS = re.compile(r"\[(?P<wanted>\d+)/(?P<working>\d+)\] \[(?P<map>[U_]+)\]")
# "[=>...]  recovery =  8.5% (166448512/1953382400) finish=254.4min speed=117056K/sec", or "resync=DELAYED".
_ACTION = re.compile(r"(?P<action>recovery|resync|reshape|check|repair)\s*=\s*(?:(?P<percent>[\d.]+)%|(?P<word>[A-Z]+))"
                     r"(?:.*?finish=(?P<finish>\S+))?")


class DiskHealthError(RuntimeError):
    pass


def parse_mdstat(text):
    """[{name, state, level, members, wanted, working, map, degraded, failed, spares, action, progress, finish}]."""
    arrays = []
    current = None
    for line in text.splitlines():
        match = _ARRAY.match(line)
        if match:
            members, failed, spares = [], [], []
            for text_member in match.group("members").split():
                member = _MEMBER.match(text_member)
                if member is None:
                    continue
                flags = member.group("flags")
                members.append(member.group("device"))
                if "(F)" in flags:
                    failed.append(member.group("device"))
                if "(S)" in flags:
                    spares.append(member.group("device"))
            current = {"name": match.group("name"), "state": match.group("state"), "level": match.group("level"),
                       "members": members, "failed": failed, "spares": spares, "wanted": None, "working": None,
                       "map": None, "action": None, "progress": None, "finish": None}
            arrays.append(current)
            continue
        if not line.startswith((" ", "\t")):
            current = None  # "Personalities", "unused devices", or the blank line after an array
            continue
        if current is None:
            continue
        counts = _COUNTS.search(line)
        if counts:
            current.update(wanted=int(counts.group("wanted")), working=int(counts.group("working")),
                           map=counts.group("map"))
        action = _ACTION.search(line)
        if action:
            current["action"] = action.group("action")
            current["progress"] = float(action.group("percent")) if action.group("percent") else None
            current["finish"] = action.group("finish") or (action.group("word") or "").lower() or None
    for array in arrays:
        array["degraded"] = bool(array["failed"]) or (array["working"] is not None and array["working"] < array["wanted"])
        array["healthy"] = array["state"] == "active" and not array["degraded"] and array["action"] not in (
            "recovery", "reshape")
    return arrays


def smart_health(run):
    """[{device, type, model, serial, passed, error}] for every disk smartctl finds; None without smartctl."""
    try:
        rc, out, err = run(SCAN)
    except OSError:
        return None
    if rc == 127 or (rc != 0 and not out):
        return None
    try:
        devices = json.loads(out).get("devices", [])
    except ValueError:
        raise DiskHealthError("smartctl --scan --json printed no JSON: %s" % (err or out).strip()[:300])
    disks = []
    for device in devices:
        argv = ["smartctl", "--health", "--info", "--json", "--device", device.get("type", "auto"), device["name"]]
        rc, out, err = run(argv)
        disk = {"device": device["name"], "type": device.get("type"), "model": None, "serial": None, "passed": None,
                "error": None}
        try:
            data = json.loads(out)
        except ValueError:
            disk["error"] = (err or out).strip()[:300] or "no answer"
            disks.append(disk)
            continue
        disk["model"] = data.get("model_name") or data.get("model_family")
        disk["serial"] = data.get("serial_number")
        status = data.get("smart_status")
        if isinstance(status, dict) and "passed" in status:
            disk["passed"] = bool(status["passed"])
        else:
            messages = data.get("smartctl", {}).get("messages", [])
            disk["error"] = "; ".join(message.get("string", "") for message in messages) or "no SMART verdict"
        # smartctl's exit status bit 3: "SMART status check returned DISK FAILING".
        if rc & 8:
            disk["passed"] = False
        disks.append(disk)
    return disks


def report(mdstat_text, run):
    arrays = parse_mdstat(mdstat_text) if mdstat_text is not None else []
    disks = smart_health(run)
    return {
        "arrays": arrays,
        "disks": disks if disks is not None else [],
        "smartctl": disks is not None,
        "summary": {
            "arrays": len(arrays),
            "degraded": [array["name"] for array in arrays if array["degraded"]],
            "rebuilding": [array["name"] for array in arrays if array["action"] in ("recovery", "reshape", "resync")],
            "failing_disks": [disk["device"] for disk in (disks or []) if disk["passed"] is False],
        },
    }
