"""The firewalld backend of the firewall role: the policy checks every backend
shares (tests/molecule/firewall_policy_checks.py), plus what is firewalld's own.

"Survive", with firewalld: a run leaves every nftables table but firewalld's own
untouched (fail2ban's nftables actions ban in a table of their own), and every
zone and ipset file that is not the role's. A run that changes something
reloads firewalld, which drops runtime-only changes made with firewall-cmd
without --permanent; a run that changes nothing does not reload.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from firewall_policy_checks import *  # noqa: F401,F403  pylint: disable=wildcard-import,unused-wildcard-import
from firewall_policy_checks import HOST, LAB, PASSED, SCENARIO, audit, probe
from labtools import ansible_playbook_stats, changed_tasks

ZONE_FILE = "/etc/firewalld/zones/hostguard.xml"
# molecule/firewall_firewalld/files/jp-cidrs.txt: 10 000 networks beside the lab's JP network.
JP_V4_ENTRIES = 10001
ONLY_SMTP_AND_SSH = {"firewall_services": {"smtp": {"sources": "any"}, "ssh": {"sources": []}}}


def converge(*extra_args):
    return ansible_playbook_stats(str(SCENARIO / "converge.yml"), *extra_args)


def firewall_cmd(host, *args):
    return host.check_output("firewall-cmd " + " ".join(args))


def test_the_role_zone_is_the_default_and_drops_what_it_does_not_list(host):
    assert firewall_cmd(host, "--get-default-zone") == "hostguard"
    assert firewall_cmd(host, "--permanent", "--zone=hostguard", "--get-target") == "DROP"
    assert firewall_cmd(host, "--zone=hostguard", "--list-ports").split() == ["25/tcp"]
    assert host.service("firewalld").is_running
    assert host.service("firewalld").is_enabled


def test_source_lists_are_hash_net_ipsets_matched_by_one_rule_per_port(host):
    ipsets = set(firewall_cmd(host, "--get-ipsets").split())
    assert {name for name in ipsets if name.startswith("hg_")} == {
        "hg_admin_v4", "hg_admin_v6", "hg_country_jp_v4", "hg_country_jp_v6", "hg_svc_ftp_v4", "hg_svc_ftp_v6",
        "hg_svc_myapp_v4"}
    info = firewall_cmd(host, "--info-ipset=hg_country_jp_v4")
    assert "type: hash:net" in info
    entries = firewall_cmd(host, "--ipset=hg_country_jp_v4", "--get-entries").split()
    assert len(entries) == JP_V4_ENTRIES and "198.18.0.0/24" in entries
    # Ten thousand networks are one ipset and one rule, not one rule per network.
    rich_rules = firewall_cmd(host, "--zone=hostguard", "--list-rich-rules").splitlines()
    assert [rule for rule in rich_rules if "hg_country_jp_v4" in rule] == [
        'rule family="ipv4" source ipset="hg_country_jp_v4" port port="587" protocol="tcp" accept']
    assert len(rich_rules) < 50


def test_a_network_deep_in_the_long_list_gets_in_like_the_first(host):
    # 100.83.135.128/26 is the last filler network of the file; the lab has no client
    # there, so the live set is asked directly.
    assert host.check_output("nft list table inet firewalld").count("100.83.135.128/26") == 1


def test_the_policy_is_permanent_and_back_after_firewalld_restarts(host):
    host.check_output("systemctl restart firewalld")
    assert firewall_cmd(host, "--get-default-zone") == "hostguard"
    assert probe("jp", 587) in PASSED
    assert probe("abroad", 587) == "timeout"
    assert probe("abroad", 587, family=6) == "timeout"
    assert probe("office", 22) in PASSED


def test_check_mode_shows_what_would_change_and_changes_nothing(host):
    zone_before = host.file(ZONE_FILE).content_string
    run = converge("--check", "--diff", "-e", json.dumps(ONLY_SMTP_AND_SSH))
    assert run["rc"] == 0, run["stats"]
    load = [result for play in run["plays"] for task in play["tasks"] for result in task["hosts"].values()
            if "Put the zone and its ipsets in place" in task["task"]["name"]]
    assert load and load[0]["changed"], load
    assert "ipsets/hg_svc_ftp_v4.xml" in load[0]["files"]
    diff = load[0]["diff"]["prepared"]
    assert "--- /etc/firewalld/ipsets/hg_svc_ftp_v4.xml\n+++ /dev/null\n" in diff
    assert '-  <rule family="ipv4"><source ipset="hg_svc_ftp_v4"/><port protocol="tcp" port="21"/><accept/></rule>' \
        in diff
    assert host.file(ZONE_FILE).content_string == zone_before
    assert "hg_svc_ftp_v4" in firewall_cmd(host, "--get-ipsets")


def test_a_run_that_changes_nothing_does_not_reload(host):
    # A runtime-only rule (as firewall-cmd without --permanent makes) is gone after a reload.
    host.check_output("firewall-cmd --zone=hostguard --add-port=8081/tcp")
    try:
        run = converge()
        assert run["rc"] == 0, run["stats"]
        assert changed_tasks(run["plays"]) == []
        assert "8081/tcp" in firewall_cmd(host, "--zone=hostguard", "--list-ports")
    finally:
        host.run("firewall-cmd --zone=hostguard --remove-port=8081/tcp")


@pytest.fixture(name="foreign_config")
def fixture_foreign_config(host):
    """A table of fail2ban's shape banning abroad2 from port 25, and a zone and an ipset of the administrator's."""
    banned = LAB.clients["abroad2"].ipv4
    host.check_output(
        "nft add table inet f2b-table && "
        "nft 'add chain inet f2b-table input { type filter hook input priority filter - 1; }' && "
        f"nft add rule inet f2b-table input ip saddr {banned} tcp dport 25 reject")
    host.check_output("firewall-cmd --permanent --new-ipset=blocklist --type=hash:ip && "
                      "firewall-cmd --permanent --ipset=blocklist --add-entry=192.0.2.99 && "
                      "firewall-cmd --permanent --new-zone=office && "
                      "firewall-cmd --permanent --zone=office --add-service=ssh && firewall-cmd --reload")
    files = {path: host.file(path).content_string
             for path in ("/etc/firewalld/zones/office.xml", "/etc/firewalld/ipsets/blocklist.xml")}
    yield files
    host.run("nft delete table inet f2b-table")
    host.run("firewall-cmd --permanent --delete-zone=office; firewall-cmd --permanent --delete-ipset=blocklist; "
             "firewall-cmd --reload")
    restored = converge()
    assert restored["rc"] == 0, restored["stats"]


def test_other_tables_zones_and_ipsets_survive_a_run_that_reloads(host, foreign_config):
    run = converge("-e", json.dumps(ONLY_SMTP_AND_SSH))
    assert run["rc"] == 0, run["stats"]
    assert run["stats"]["fw1"]["changed"] > 0
    # The role's stale ipsets are gone; the administrator's zone and ipset are as they were, and loaded.
    assert not host.file("/etc/firewalld/ipsets/hg_svc_ftp_v4.xml").exists
    for path, content in foreign_config.items():
        assert host.file(path).content_string == content, path
    assert "office" in firewall_cmd(host, "--get-zones").split()
    assert "192.0.2.99" in firewall_cmd(host, "--ipset=blocklist", "--get-entries")
    # fail2ban's table is still there and still bans, although the zone opens 25 to everyone.
    assert host.run("nft list table inet f2b-table").rc == 0
    assert LAB.clients["abroad2"].tcp(HOST["ipv4"], 25)["state"] == "refused"
    assert LAB.clients["abroad"].tcp(HOST["ipv4"], 25)["state"] == "open"
    assert probe("jp", 21) == "timeout"  # ftp is no longer listed


def test_what_the_nftables_backend_left_is_removed(host):
    # The nftables backend's table (here banning abroad2 from 25) and boot unit, as a switch of backend leaves them.
    host.check_output(
        "nft add table inet hostguard && "
        "nft 'add chain inet hostguard input { type filter hook input priority filter; }' && "
        f"nft add rule inet hostguard input ip saddr {LAB.clients['abroad2'].ipv4} tcp dport 25 drop && "
        "printf '[Service]\\nType=oneshot\\nExecStart=/bin/true\\n[Install]\\nWantedBy=multi-user.target\\n' "
        "> /etc/systemd/system/hostguard-firewall.service && systemctl daemon-reload && "
        "systemctl enable hostguard-firewall.service")
    assert LAB.clients["abroad2"].tcp(HOST["ipv4"], 25)["state"] == "timeout"
    run = converge()
    assert run["rc"] == 0, run["stats"]
    assert host.run("nft list table inet hostguard").rc != 0
    assert not host.file("/etc/systemd/system/hostguard-firewall.service").exists
    assert not host.file("/etc/systemd/system/multi-user.target.wants/hostguard-firewall.service").exists
    assert LAB.clients["abroad2"].tcp(HOST["ipv4"], 25)["state"] == "open"


def test_the_nftables_backend_refuses_to_run_beside_firewalld(host):
    run = converge("-e", json.dumps({"firewall_backend": "nftables"}))
    assert run["rc"] != 0
    assert all(stats["changed"] == 0 for stats in run["stats"].values()), run["stats"]
    assert "firewall_backend is nftables, but firewalld is running on this host" in json.dumps(run["plays"])
    assert host.run("nft list table inet hostguard").rc != 0


def test_a_configuration_firewalld_refuses_is_never_live(host):
    """The module's own check: firewall-offline-cmd on a staging copy, before any live file changes."""
    zone_before = host.file(ZONE_FILE).content_string
    bad = {"zones/hostguard.xml": '<?xml version="1.0" encoding="utf-8"?>\n<zone target="DROP">'
                                  '<rule><icmp-type name="no-such-type"/><accept/></rule></zone>\n'}
    inventory = str(Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent)
    attempt = subprocess.run(["ansible", "-i", inventory, "all", "-m", "hostguard.hosting.firewalld_policy",
                              "-a", json.dumps({"files": bad, "rollback_seconds": 30})],
                             text=True, capture_output=True, timeout=300, check=False)
    assert attempt.returncode != 0
    assert "firewall-offline-cmd --check-config refused the new configuration, nothing was changed" in attempt.stdout
    assert "no-such-type" in attempt.stdout
    assert host.file(ZONE_FILE).content_string == zone_before
    assert host.run("systemctl is-active hostguard-firewall-rollback.timer").stdout.strip() != "active"
    assert firewall_cmd(host, "--get-default-zone") == "hostguard"
    assert probe("jp", 587) in PASSED


def test_the_audit_notices_when_the_role_zone_is_not_the_default(host):
    """The recorded policy alone proves nothing: with another default zone the audit gives the plain advice."""
    firewall_cmd(host, "--set-default-zone=public")
    try:
        report, lines = audit()
    finally:
        firewall_cmd(host, "--set-default-zone=hostguard")
    assert report["services"]["firewall"] == {"recorded": True, "backend": "firewalld", "in_force": False}
    assert {finding["firewall"] for finding in report["services"]["exposed"]} == {"none"}
    assert "firewall: the policy recorded in /etc/hostguard/firewall-policy.json is not in force" in "\n".join(lines)
    assert firewall_cmd(host, "--get-default-zone") == "hostguard"
