"""The nftables backend of the firewall role: the policy checks every backend
shares (tests/molecule/firewall_policy_checks.py), plus what is nftables' own."""

from __future__ import annotations

import json
import re

from firewall_policy_checks import *  # noqa: F401,F403  pylint: disable=wildcard-import,unused-wildcard-import
from firewall_policy_checks import HOST, LAB, SCENARIO, audit
from labtools import ansible_playbook_stats, changed_tasks


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


def test_the_audit_notices_when_the_recorded_table_is_not_live(host):
    """The recorded policy alone proves nothing: without the live table the audit gives the plain advice."""
    host.check_output("nft delete table inet hostguard")
    try:
        report, lines = audit()
    finally:
        host.check_output("systemctl restart hostguard-firewall")
    assert report["services"]["firewall"] == {"recorded": True, "backend": "nftables", "in_force": False}
    assert {finding["firewall"] for finding in report["services"]["exposed"]} == {"none"}
    assert "firewall: the policy recorded in /etc/hostguard/firewall-policy.json is not in force" in "\n".join(lines)
    assert live_digest(host)


def test_check_mode_on_a_host_without_the_roles_directory_reports_it_and_fails_nothing(host):
    """A first --check run: the directory of the table's script and the policy record does not exist yet."""
    host.check_output("mv /etc/hostguard /etc/hostguard.away")
    try:
        run = ansible_playbook_stats(str(SCENARIO / "converge.yml"), "--check", "--diff")
    finally:
        host.check_output("rm -rf /etc/hostguard && mv /etc/hostguard.away /etc/hostguard")
    assert run["rc"] == 0, run["stats"]
    changed = changed_tasks(run["plays"])
    assert [name for name in changed if name.endswith("Create the directory of the table's script")], changed
    assert live_digest(host)
