"""What molecule verifiers share: the lab a scenario runs on, seen from outside.

The scenario's create playbook writes the lab's state to
``$MOLECULE_EPHEMERAL_DIRECTORY/lab.json``; tests use it to speak to the hosts
from the lab's client namespaces (the outside world of DESIGN.md's address
plan) and to run playbooks against the scenario's inventory.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[2]
NETPROBE = PROJECT_DIR / "tests" / "lab" / "netprobe.py"


@dataclass
class Client:
    name: str
    netns: str
    ipv4: str
    ipv6: str

    def run(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """Run a command on the controller, inside this client's network namespace."""
        return subprocess.run(["ip", "netns", "exec", self.netns, *command],
                              text=True, capture_output=True, timeout=timeout, check=False)

    def tcp(self, host: str, port: int, timeout: float = 2.0) -> dict:
        """Connect to host:port from this client: {'state': open|refused|timeout|unreachable, ...}."""
        result = self.run(sys.executable, str(NETPROBE), "tcp", host, str(port), "--timeout", str(timeout),
                          timeout=timeout + 30)
        if result.returncode != 0:
            raise RuntimeError(f"netprobe failed in {self.netns}: {result.stderr.strip()}")
        return json.loads(result.stdout)


class Lab:
    def __init__(self, state: dict):
        self.state = state
        self.hosts = {host["name"]: host for host in state["hosts"]}
        self.clients = {name: Client(name, c["netns"], c["ipv4"], c["ipv6"]) for name, c in state["clients"].items()}

    def list_in_dns(self, zone: str, address: str, code: str = "127.0.0.2", reason: str | None = None) -> None:
        """List `address` on the blocklist `zone` of the lab's DNS server from now on (dns_server.py reads it again)."""
        listings = self._dns_listings()
        entries = [entry for entry in listings.get(zone, []) if entry["address"] != address]
        listings[zone] = entries + [{"address": address, "a": code, **({"txt": reason} if reason else {})}]
        self._write_dns_listings(listings)

    def unlist_in_dns(self, zone: str, address: str) -> None:
        listings = self._dns_listings()
        listings[zone] = [entry for entry in listings.get(zone, []) if entry["address"] != address]
        self._write_dns_listings(listings)

    def _dns_listings(self) -> dict:
        path = Path(self.state["dns_listings"])
        return json.loads(path.read_text()) if path.exists() else {}

    def _write_dns_listings(self, listings: dict) -> None:
        # JSON is YAML; written whole and renamed, so the server never reads half a file
        path = Path(self.state["dns_listings"])
        partial = path.with_name(path.name + ".tmp")
        partial.write_text(json.dumps(listings))
        partial.replace(path)

    @classmethod
    def from_env(cls) -> "Lab":
        ephemeral = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY")
        if not ephemeral:
            raise RuntimeError("MOLECULE_EPHEMERAL_DIRECTORY is not set: run these tests through molecule")
        return cls(json.loads((Path(ephemeral) / "lab.json").read_text()))


def ansible_playbook_stats(playbook: str, *extra_args: str) -> dict:
    """Run a playbook against the scenario's inventory; return the per-host stats.

    The JSON callback gives stats as data, so nothing rests on parsing the recap.
    """
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1")
    inventory = str(Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent)
    result = subprocess.run(["ansible-playbook", "-i", inventory, playbook, *extra_args],
                            text=True, capture_output=True, env=env, timeout=1800, check=False)
    try:
        output = json.loads(result.stdout)
    except ValueError as error:
        raise AssertionError(f"ansible-playbook printed no JSON (rc={result.returncode}):\n"
                             f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}") from error
    return {"rc": result.returncode, "stats": output["stats"], "plays": output["plays"]}


def changed_tasks(plays: list[dict]) -> list[str]:
    """Names of the tasks that reported changed, as host: task."""
    names = []
    for play in plays:
        for task in play["tasks"]:
            for host, result in task["hosts"].items():
                if result.get("changed"):
                    names.append(f"{host}: {task['task']['name']}")
    return names


def task_name(task: dict) -> str:
    """A task's own name, without the "role : " prefix Ansible gives the tasks of a role."""
    return task["task"]["name"].rsplit(" : ", 1)[-1]


def audit_results(plays: list[dict]) -> tuple[dict, dict]:
    """hostguard.hosting.audit's result per host: ({host: hostguard_audit}, {host: the lines it printed})."""
    facts, lines = {}, {}
    for play in plays:
        for task in play["tasks"]:
            for host, result in task["hosts"].items():
                if task_name(task) == "Keep the findings with the audit" and "ansible_facts" in result:
                    facts[host] = result["ansible_facts"]["hostguard_audit"]
                elif task_name(task) == "Show what the audit found" and "msg" in result:
                    lines[host] = result["msg"]
    return facts, lines


AUDIT_PLAYBOOK = str(PROJECT_DIR / "playbooks" / "audit.yml")
# The audit with only its enforcement facet on: the others are proven by their own scenarios.
ONLY_ENFORCEMENT = {f"audit_{facet}_enabled": False
                    for facet in ("services", "dnsbl", "integrity", "accounts", "mail_queue", "attacks", "updates", "cms",
                                  "disks", "watch", "logins", "senders", "safe_browsing")}


def audit_enforcement(host: str) -> dict:
    """hostguard.hosting.audit's enforcement facet on one host: {role: its entry (in_force, problems, ...)}."""
    run = ansible_playbook_stats(AUDIT_PLAYBOOK, "--limit", host, "-e", json.dumps(ONLY_ENFORCEMENT))
    assert run["rc"] == 0, run["stats"]
    facts, _lines = audit_results(run["plays"])
    return {entry["role"]: entry for entry in facts[host]["enforcement"]["roles"]}


# Run by a client's python: IMAP login after STARTTLS (Dovecot refuses plaintext auth without TLS).
IMAP_LOGIN = """
import imaplib, ssl, sys
imap = imaplib.IMAP4(sys.argv[1], 143, timeout=10)
imap.starttls(ssl_context=ssl._create_unverified_context())  # the lab's certificate is self-signed
try:
    imap.login(sys.argv[2], sys.argv[3])
except imaplib.IMAP4.error as error:
    print("refused", error)
else:
    print("ok")
"""

SMTP_PROBE = PROJECT_DIR / "tests" / "molecule" / "smtp_probe.py"


def smtp(client: Client, host: str, port: int, *options: str, timeout: float = 10.0) -> dict:
    """Speak SMTP to host:port from a lab client (tests/molecule/smtp_probe.py); its JSON report.

    options are smtp_probe.py's: --starttls, --implicit-tls, --user U --password P
    [--mechanism LOGIN], --mail-from A, --rcpt R, --data, --count N (a longer timeout for many), --subject S.
    """
    result = client.run(sys.executable, str(SMTP_PROBE), host, str(port), "--timeout", str(timeout), *options,
                        timeout=timeout * 4 + 30)
    if result.returncode != 0:
        raise RuntimeError(f"smtp_probe failed in {client.netns}: {result.stderr.strip()}")
    return json.loads(result.stdout)
