"""What the watch scenario's tests share: the webhook receiver, the events log, the alert mailbox."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from labtools import AUDIT_PLAYBOOK, PROJECT_DIR, Lab, ansible_playbook_stats, audit_results

RECEIVER = PROJECT_DIR / "tests" / "molecule" / "webhook_receiver.py"
EVENTS = "/var/lib/hostguard/watch/events.jsonl"
ALERT_MAILBOX = "/var/mail/abuse"


class Receiver:
    """The webhook receiver in the admin office's namespace, on the port the converge configured."""

    def __init__(self, out: Path, port: int = 8025):
        office = Lab.from_env().clients["office"]
        self.out = out
        self.process = subprocess.Popen(["ip", "netns", "exec", office.netns, sys.executable, str(RECEIVER),
                                         "--port", str(port), "--out", str(out)])

    def messages(self) -> list[dict]:
        if not self.out.exists():
            return []
        return [json.loads(line)["body"] for line in self.out.read_text().splitlines()]

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


def events(host) -> list[dict]:
    result = host.run("cat %s", EVENTS)
    return [json.loads(line) for line in result.stdout.splitlines()] if result.rc == 0 else []


def wait_for(what, timeout: float = 60.0, every: float = 1.0):
    """Poll `what()` until it returns something true; that value, or the last one after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    value = what()
    while not value and time.monotonic() < deadline:
        time.sleep(every)
        value = what()
    return value


def audit_only_the_watch() -> tuple[dict, dict]:
    """hostguard.hosting.audit with every facet but the watch off: ({host: hostguard_audit}, {host: its lines})."""
    only_watch = {f"audit_{facet}_enabled": False for facet in (
        "services", "enforcement", "dnsbl", "integrity", "accounts", "mail_queue", "attacks", "updates", "disks")}
    run = ansible_playbook_stats(AUDIT_PLAYBOOK, "-e", json.dumps(only_watch))
    assert run["rc"] == 0, run["stats"]
    return audit_results(run["plays"])
