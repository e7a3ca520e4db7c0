"""Benchmark: hostguard.hosting.dnsbl_check's core versus one query at a time with dig.

Starts the lab DNS server (tests/lab/dns_server.py) on 127.0.0.1 with a free
port, looks up 1,000 addresses of 198.19.4.0/22 in the six curated zones (the
lab's zone file lists that range with a mix of listings, policy listings,
error codes and NXDOMAINs), first with the core, then with a loop of `dig`
processes, one query at a time. Every answer is classified by the same
function both ways and the classifications are compared pair by pair.

If the dig loop would exceed --baseline-budget seconds it stops there and the
remaining time is extrapolated from the measured queries; the table says so.
The whole run stays under five minutes by default.

Exit status: 0 when every classification agrees and the target ratio is met,
1 when any classification differs, 2 when only the target ratio is missed.
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SERVER = REPO_ROOT / "tests" / "lab" / "dns_server.py"
ZONE_FILE = REPO_ROOT / "tests" / "lab" / "dns_zones.yml"
BENCH_NETWORK = ipaddress.IPv4Network("198.19.4.0/22")
SERVER_START_SECONDS = 20
TARGET_RATIO = 20.0
DIG_STATUS = re.compile(r"status: ([A-Z]+)")
DIG_A_RECORD = re.compile(r"\sIN\s+A\s+(\S+)\s*$")


def import_core(link_root: Path):
    """Import the core the way Ansible does, through an ansible_collections link to this repository."""
    link_parent = link_root / "ansible_collections" / "hostguard"
    link_parent.mkdir(parents=True)
    (link_parent / "hosting").symlink_to(REPO_ROOT, target_is_directory=True)
    sys.path.insert(0, str(link_root))
    from ansible_collections.hostguard.hosting.plugins.module_utils import dnsbl

    return dnsbl


def start_server():
    process = subprocess.Popen(
        [sys.executable, str(SERVER), "--zones", str(ZONE_FILE), "--listen", "127.0.0.1:0"],
        stderr=subprocess.PIPE, text=True,
    )
    ready = select.select([process.stderr], [], [], SERVER_START_SECONDS)[0]
    start_line = process.stderr.readline() if ready else ""
    match = re.search(r"127\.0\.0\.1:(\d+)", start_line)
    if not match:
        process.terminate()
        process.wait()
        raise SystemExit("lab DNS server did not start: %r" % start_line)
    return process, int(match.group(1))


def dig_answer(dnsbl, port: int, name: str, timeout: float):
    """One lookup with dig, as an operator's shell loop would do it, turned into an Answer."""
    completed = subprocess.run(
        ["dig", "-p", str(port), "@127.0.0.1", name, "A", "+tries=1", "+time=%d" % max(1, round(timeout)),
         "+noall", "+comments", "+answer"],
        capture_output=True, text=True, check=False,
    )
    status = DIG_STATUS.search(completed.stdout)
    if status is None:
        return dnsbl.Answer(None, error="dig: no answer")
    codes = [match.group(1) for line in completed.stdout.splitlines() if (match := DIG_A_RECORD.search(line))]
    return dnsbl.Answer(status.group(1), codes)


def run_baseline(dnsbl, port, pairs, zones_by_name, timeout, budget):
    """Look up pairs one at a time until done or over budget; return {pair: (status, codes)} and seconds."""
    verdicts = {}
    started = time.monotonic()
    for address, zone_name in pairs:
        if time.monotonic() - started > budget:
            break
        answer = dig_answer(dnsbl, port, dnsbl.query_name(ipaddress.ip_address(address), zone_name), timeout)
        verdict = dnsbl.classify(zones_by_name[zone_name], answer)
        verdicts[(address, zone_name)] = (verdict.status, sorted(code["code"] for code in verdict.codes))
    return verdicts, time.monotonic() - started


def module_verdicts(result):
    """{(address, zone): (status, codes)}; codes sorted because servers may return records in any order."""
    return {
        (check["address"], check["zone"]): (check["status"], sorted(code["code"] for code in check["codes"]))
        for check in result["checks"]
    }


def print_table(rows):
    headers = ("method", "queries", "seconds", "queries/s", "ratio", "classification")
    widths = [max(len(str(row[index])) for row in rows + [headers]) for index in range(len(headers))]
    for row in [headers] + rows:
        cells = [str(cell).ljust(width) if index in (0, 5) else str(cell).rjust(width)
                 for index, (cell, width) in enumerate(zip(row, widths))]
        print("  ".join(cells).rstrip())


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--addresses", type=int, default=1000, help="addresses from 198.19.4.0/22 (max 1024)")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--timeout", type=float, default=3.0)
    parser.add_argument("--baseline-budget", type=float, default=200.0,
                        help="seconds the dig loop may run before the rest is extrapolated")
    arguments = parser.parse_args(argv)
    if shutil.which("dig") is None:
        raise SystemExit("dig is required for the baseline (Debian: apt-get install bind9-dnsutils)")
    if not 1 <= arguments.addresses <= BENCH_NETWORK.num_addresses:
        raise SystemExit("--addresses must be 1-%d" % BENCH_NETWORK.num_addresses)

    with tempfile.TemporaryDirectory(prefix="dnsbl-bench-") as link_root:
        dnsbl = import_core(Path(link_root))
        server, port = start_server()
        try:
            return benchmark(dnsbl, port, arguments)
        finally:
            server.terminate()
            server.wait(timeout=SERVER_START_SECONDS)


def benchmark(dnsbl, port, arguments) -> int:
    addresses = [str(BENCH_NETWORK[index]) for index in range(arguments.addresses)]
    zone_names = list(dnsbl.DEFAULT_ZONES)
    nameserver = "127.0.0.1:%d" % port
    total_pairs = len(addresses) * len(zone_names)
    print("dnsbl benchmark: %d addresses x %d zones = %d lookups against the lab DNS server at %s"
          % (len(addresses), len(zone_names), total_pairs, nameserver))

    options = dict(zones=zone_names, nameservers=[nameserver], timeout=arguments.timeout,
                   concurrency=arguments.concurrency)
    core = dnsbl.check(addresses, query_txt=False, **options)
    core_with_txt = dnsbl.check(addresses, query_txt=True, **options)
    core_verdicts = module_verdicts(core)

    # Shuffled, so that a run cut short by the budget still samples every zone and outcome.
    pairs = [(address, zone_name) for address in addresses for zone_name in zone_names]
    random.Random(5782).shuffle(pairs)
    zones_by_name = {zone.name: zone for zone in dnsbl.parse_request(addresses[:1], zones=zone_names).zones}
    baseline, baseline_seconds = run_baseline(dnsbl, port, pairs, zones_by_name, arguments.timeout,
                                              arguments.baseline_budget)
    measured = len(baseline)
    baseline_total_seconds = baseline_seconds * total_pairs / measured
    disagreements = [pair for pair, verdict in baseline.items() if core_verdicts[pair] != verdict]

    def ratio(seconds):
        return "%.1fx" % (baseline_total_seconds / seconds)

    if measured == total_pairs:
        baseline_label = "dig, one query at a time"
        baseline_queries, baseline_shown_seconds = measured, baseline_seconds
    else:
        baseline_label = "dig, one query at a time (EXTRAPOLATED from %d of %d)" % (measured, total_pairs)
        baseline_queries, baseline_shown_seconds = total_pairs, baseline_total_seconds
    agreement = "%d/%d agree" % (measured - len(disagreements), measured)
    core_seconds = core["summary"]["seconds"]
    rows = [
        (baseline_label, baseline_queries, "%.2f" % baseline_shown_seconds,
         "%.0f" % (measured / baseline_seconds), "1.0x", "reference"),
        ("dnsbl core, concurrency %d" % arguments.concurrency, core["summary"]["queries"], "%.2f" % core_seconds,
         "%.0f" % (core["summary"]["queries"] / core_seconds), ratio(core_seconds), agreement),
        ("dnsbl core + TXT reasons", core_with_txt["summary"]["queries"],
         "%.2f" % core_with_txt["summary"]["seconds"],
         "%.0f" % (core_with_txt["summary"]["queries"] / core_with_txt["summary"]["seconds"]),
         ratio(core_with_txt["summary"]["seconds"]),
         "same" if module_verdicts(core_with_txt) == core_verdicts else "DIFFERS"),
    ]
    print()
    print_table(rows)
    print()
    print("core status counts: %s" % core["summary"]["counts"])
    print("core queries include %d RFC 5782 health-check queries (2 per zone)" % (2 * len(zone_names)))

    speedup = baseline_total_seconds / core_seconds
    for pair in disagreements[:5]:
        print("DIFFERENT %s in %s: core %s, dig %s" % (pair[0], pair[1], core_verdicts[pair], baseline[pair]))
    if disagreements or module_verdicts(core_with_txt) != core_verdicts:
        print("RESULT: classifications differ")
        return 1
    met = speedup >= TARGET_RATIO
    print("RESULT: every classification agrees; %.1fx faster than one at a time (target %.0fx: %s)"
          % (speedup, TARGET_RATIO, "met" if met else "MISSED"))
    return 0 if met else 2


if __name__ == "__main__":
    sys.exit(main())
