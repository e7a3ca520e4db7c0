"""What every firewall backend must do, proven from the network.

Imported by the test module of each backend's scenario (molecule/firewall for
nftables, molecule/firewall_firewalld), which run the same policy
(molecule/firewall/vars/policy.yml).

open: the connection was accepted; refused: the firewall let the SYN through
and nothing listens there (so the port is allowed); timeout: dropped.
"""

from __future__ import annotations

import json
import os
import socket
import time
from pathlib import Path

import pytest
from labtools import PROJECT_DIR, Lab, ansible_playbook_stats, audit_results

LAB = Lab.from_env()
HOST = LAB.hosts["fw1"]
SCENARIO = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
PASSED = {"open", "refused"}

# port -> expected outcome per client, from policy.yml.
EXPECTED = {
    22: {"office": PASSED, "jp": {"timeout"}, "abroad": {"timeout"}},      # ssh: sources []
    21: {"office": PASSED, "jp": {"open"}, "abroad": {"timeout"}},         # ftp: jp only
    25: {"office": {"open"}, "jp": {"open"}, "abroad": {"open"}},          # smtp: any
    587: {"office": PASSED, "jp": PASSED, "abroad": {"timeout"}},          # submission: JP
    9000: {"office": PASSED, "jp": {"refused"}, "abroad": {"timeout"}},    # myapp: jp's IPv4 only
    9105: {"office": PASSED, "jp": {"refused"}, "abroad": {"timeout"}},
    110: {"office": {"timeout"}, "jp": {"timeout"}, "abroad": {"timeout"}},  # pop3: not listed
    143: {"office": {"timeout"}, "jp": {"timeout"}, "abroad": {"timeout"}},  # imap: not listed
}


AUDIT = str(PROJECT_DIR / "playbooks" / "audit.yml")


def audit():
    """hostguard.hosting.audit on the host, blocklists skipped: (its hostguard_audit fact, the lines it showed)."""
    run = ansible_playbook_stats(AUDIT, "-e", json.dumps({"audit_dnsbl_addresses": []}))
    assert run["rc"] == 0, run["stats"]
    facts, lines = audit_results(run["plays"])
    return facts["fw1"], lines["fw1"]


def probe(client, port, family=4):
    address = HOST["ipv4"] if family == 4 else HOST["ipv6"]
    return LAB.clients[client].tcp(address, port, timeout=1.5)["state"]


@pytest.mark.parametrize("port", sorted(EXPECTED))
@pytest.mark.parametrize("client", ["office", "jp", "abroad"])
def test_ipv4_reachability_follows_the_policy(client, port):
    assert probe(client, port) in EXPECTED[port][client]


@pytest.mark.parametrize("port,client,expected", [
    (22, "office", PASSED), (22, "jp", {"timeout"}), (22, "abroad", {"timeout"}),
    (21, "jp", {"open"}), (21, "abroad", {"timeout"}),
    (25, "abroad", {"open"}),
    (587, "jp", PASSED), (587, "abroad", {"timeout"}),
    # myapp lists only jp's IPv4 network: its IPv6 address is not a source.
    (9000, "jp", {"timeout"}),
])
def test_ipv6_reachability_follows_the_policy(port, client, expected):
    assert probe(client, port, family=6) in expected


def test_controller_still_gets_in_although_ssh_is_closed_to_everyone_else():
    # ssh lists no sources and the controller is not in an admin network: the
    # lockout guard is what keeps this new connection working.
    with socket.create_connection((HOST["ipv4"], 22), timeout=5) as connection:
        assert connection.recv(64).startswith(b"SSH-2.0-")


def test_rules_that_cut_the_controller_off_are_rolled_back_by_the_host():
    cutoff = ansible_playbook_stats(str(SCENARIO / "cutoff.yml"))
    stats = cutoff["stats"]["fw1"]
    assert cutoff["rc"] != 0 and (stats["failures"] or stats["unreachable"]), stats
    # The host restores the previous rules by itself within the rollback time (15 s).
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST["ipv4"], 22), timeout=1):
                break
        except OSError:
            time.sleep(1)
    else:
        pytest.fail("the controller was still locked out 40 s after a 15 s rollback window")
    # The rules are the converged policy's again: not merely open, but the same.
    assert probe("abroad", 587) == "timeout"
    assert probe("jp", 587) in PASSED
    assert probe("jp", 22) == "timeout"
    # The files on disk are the cut-off policy now; a normal run puts them right.
    restored = ansible_playbook_stats(str(SCENARIO / "converge.yml"))
    assert restored["rc"] == 0, restored["stats"]


def test_the_audit_says_what_the_firewall_lets_in_as_the_network_sees_it():
    """Each port listening on every address that the policy's clients were probed on: the audit's word
    (closed, restricted, open) agrees with what the office, jp and abroad clients reach."""
    report, lines = audit()
    firewall = report["services"]["firewall"]
    assert firewall["recorded"] and firewall["in_force"], firewall
    findings = {finding["port"]: finding for finding in report["services"]["exposed"]}
    assert {22, 25} <= set(findings), findings
    for port, finding in findings.items():
        if port not in EXPECTED:
            continue
        reached = {client for client in ("office", "jp", "abroad") if probe(client, port) in PASSED}
        if finding["firewall"] == "closed":
            assert reached == set(), (port, finding)
        elif finding["firewall"] == "open":
            assert reached == {"office", "jp", "abroad"}, (port, finding)
        else:
            assert finding["firewall"] == "restricted" and "abroad" not in reached, (port, finding)
    ssh = findings[22]
    # ssh lists no sources: the admin networks, and the controller through the lockout guard.
    assert ssh["firewall_sources"][:2] == ["198.51.100.0/24", "2001:db8:51::/64"]
    assert "listening on every address: port 22 ssh the firewall lets in only 198.51.100.0/24, 2001:db8:51::/64" \
        in "\n".join(lines)
    assert not [line for line in lines if "not in force" in line], lines
