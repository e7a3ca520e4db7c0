"""The firewall role, proven from the network.

open: the connection was accepted; refused: the firewall let the SYN through
and nothing listens there (so the port is allowed); timeout: dropped.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from pathlib import Path

import pytest
from labtools import Lab, ansible_playbook_stats

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


def test_the_role_owns_one_table_that_drops_by_default(host):
    listing = json.loads(host.check_output("nft -j list table inet hostguard"))["nftables"]
    chain = next(item["chain"] for item in listing if "chain" in item)
    assert chain["hook"] == "input" and chain["policy"] == "drop"
    assert live_digest(host)


def test_ruleset_file_is_what_is_live_and_loads_at_boot(host):
    assert host.service("hostguard-firewall").is_enabled
    digest = live_digest(host)
    # What the boot unit loads is the same table: drop it, start the unit, compare.
    host.check_output("nft delete table inet hostguard")
    host.check_output("systemctl restart hostguard-firewall")
    assert live_digest(host) == digest


def live_digest(host):
    """The digest in the live table's comment (nft 1.0.x leaves table comments out of its JSON)."""
    return re.search(r'comment "(hostguard.hosting.firewall sha256:[0-9a-f]{64})"',
                     host.check_output("nft list table inet hostguard")).group(1)


def test_another_tools_table_survives_a_run(host):
    # A ban in a table of fail2ban's shape: abroad2 may not reach port 25.
    banned = LAB.clients["abroad2"].ipv4
    host.check_output(
        "nft add table inet f2b-table && "
        "nft 'add chain inet f2b-table input { type filter hook input priority filter - 1; }' && "
        f"nft add rule inet f2b-table input ip saddr {banned} tcp dport 25 reject")
    try:
        # A run that changes the policy (only smtp and ssh now) replaces the role's table.
        changed_policy = {"firewall_services": {"smtp": {"sources": "any"}, "ssh": {"sources": []}}}
        converge = ansible_playbook_stats(str(SCENARIO / "converge.yml"), "-e", json.dumps(changed_policy))
        assert converge["rc"] == 0, converge["stats"]
        assert converge["stats"]["fw1"]["changed"] > 0
        assert host.run("nft list table inet f2b-table").rc == 0
        assert LAB.clients["abroad2"].tcp(HOST["ipv4"], 25)["state"] == "refused"
        assert LAB.clients["abroad"].tcp(HOST["ipv4"], 25)["state"] == "open"
    finally:
        host.run("nft delete table inet f2b-table")
        restored = ansible_playbook_stats(str(SCENARIO / "converge.yml"))
        assert restored["rc"] == 0, restored["stats"]


def test_rules_that_cut_the_controller_off_are_rolled_back_by_the_host(host):
    before = live_digest(host)
    cutoff = ansible_playbook_stats(str(SCENARIO / "cutoff.yml"))
    stats = cutoff["stats"]["fw1"]
    assert cutoff["rc"] != 0 and (stats["failures"] or stats["unreachable"]), stats

    # The host restores the previous table by itself within the rollback time (15 s).
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST["ipv4"], 22), timeout=1):
                break
        except OSError:
            time.sleep(1)
    else:
        pytest.fail("the controller was still locked out 40 s after a 15 s rollback window")
    assert live_digest(host) == before

    # The file on disk is the cut-off policy now; a normal run puts it right.
    restored = ansible_playbook_stats(str(SCENARIO / "converge.yml"))
    assert restored["rc"] == 0, restored["stats"]
