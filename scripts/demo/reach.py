"""Print what each lab client network can reach on each host: `make demo`'s before/after proof.

Usage: demo_reach.py LAB_JSON TITLE
Each cell is what a TCP connection from that client got: open, closed (refused:
the firewall let it through and nothing listens) or dropped (no answer).
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

PORTS = {21: "ftp", 22: "ssh", 25: "smtp", 110: "pop3", 143: "imap", 587: "submission", 993: "imaps", 995: "pop3s"}
CLIENTS = ["office", "jp", "abroad"]
NETPROBE = Path(__file__).resolve().parents[2] / "tests" / "lab" / "netprobe.py"
WORDS = {"open": "open", "refused": "closed", "timeout": "dropped", "unreachable": "unreach"}


def probe(netns: str, address: str, port: int) -> str:
    done = subprocess.run(["ip", "netns", "exec", netns, sys.executable, str(NETPROBE), "tcp", address, str(port),
                           "--timeout", "1", "--no-banner"], text=True, capture_output=True, check=False)
    return WORDS.get(json.loads(done.stdout)["state"], "?") if done.returncode == 0 else "error"


def main(lab_json: str, title: str) -> int:
    lab = json.loads(Path(lab_json).read_text())
    jobs = [(host, client, port) for host in lab["hosts"] for client in CLIENTS for port in PORTS]
    with ThreadPoolExecutor(max_workers=24) as pool:
        results = list(pool.map(lambda job: probe(lab["clients"][job[1]]["netns"], job[0]["ipv4"], job[2]), jobs))
    outcome = {(host["name"], client, port): result for (host, client, port), result in zip(jobs, results)}
    print(f"\n== {title}: what each network reaches (office = admin 198.51.100.0/24, jp = 198.18.0.0/24, "
          "abroad = 203.0.113.0/24)")
    print(f"{'host':<8} {'from':<7} " + " ".join(f"{p}/{n:<10}"[:14].ljust(14) for p, n in PORTS.items()))
    for host in lab["hosts"]:
        for client in CLIENTS:
            cells = " ".join(outcome[(host["name"], client, port)].ljust(14) for port in PORTS)
            print(f"{host['name']:<8} {client:<7} {cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
