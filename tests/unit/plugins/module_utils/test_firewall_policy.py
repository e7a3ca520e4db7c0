"""Whether the recorded firewall policy is in force: the record read back and checked against the live firewall.

nft runs for real inside a throwaway network namespace. firewalld cannot run here (it needs systemd and D-Bus), so
firewall-cmd's one answer, the default zone, is a stand-in; molecule/firewall_firewalld proves it on a lab host.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid

import pytest

from ansible_collections.hostguard.hosting.plugins.module_utils.firewall import build_plan, policy_record
from ansible_collections.hostguard.hosting.plugins.module_utils.firewall_policy import (
    FirewallPolicyError,
    policy_state,
)

needs_nft = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("ip"),
                               reason="needs root, nft and ip")


@pytest.fixture(name="netns_nft")
def fixture_netns_nft():
    name = f"hgunit-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)

    def run(argv):
        done = subprocess.run(["ip", "netns", "exec", name, *argv], text=True, capture_output=True, check=False)
        return done.returncode, done.stdout, done.stderr

    try:
        yield run
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def record(tmp_path, backend, plan=None):
    plan = plan or build_plan({"ssh": {"sources": ["198.51.100.0/24"]}, "smtp": {"sources": "any"}})
    ruleset = tmp_path / "firewall.nft"
    ruleset.write_text(plan["ruleset"])
    path = tmp_path / "firewall-policy.json"
    path.write_text(json.dumps(policy_record(plan, backend, str(ruleset))))
    return str(path), str(ruleset), plan


def never_run(argv):
    raise AssertionError(f"nothing should run without a record: {argv}")


def test_without_a_record_there_is_no_policy_and_nothing_runs(tmp_path):
    assert policy_state(str(tmp_path / "none.json"), never_run) == {
        "recorded": False, "backend": None, "in_force": False, "live": None, "record": {}}


@pytest.mark.parametrize("text", ['{"backend": "nft', '["nftables"]', '{"backend": "iptables"}'])
def test_a_record_that_is_not_the_roles_fails_naming_the_file(tmp_path, text):
    path = tmp_path / "firewall-policy.json"
    path.write_text(text)
    with pytest.raises(FirewallPolicyError, match="is not the firewall role's record"):
        policy_state(str(path), never_run)


@needs_nft
def test_the_recorded_table_counts_only_while_it_is_the_live_one(tmp_path, netns_nft):
    path, ruleset, plan = record(tmp_path, "nftables")
    assert policy_state(path, netns_nft)["in_force"] is False  # recorded, never loaded
    assert netns_nft(["nft", "-f", ruleset])[0] == 0
    state = policy_state(path, netns_nft)
    assert (state["recorded"], state["backend"], state["in_force"], state["live"]) == (
        True, "nftables", True, plan["digest"])
    assert {service["name"] for service in state["record"]["services"]} == {"ssh", "smtp"}
    # Another policy loaded behind the record's back: the record is not what is live.
    other = build_plan({"ssh": {"sources": "any"}})
    (tmp_path / "other.nft").write_text(other["ruleset"])
    assert netns_nft(["nft", "-f", str(tmp_path / "other.nft")])[0] == 0
    assert policy_state(path, netns_nft)["live"] == other["digest"]
    assert policy_state(path, netns_nft)["in_force"] is False
    assert netns_nft(["nft", "delete", "table", "inet", "hostguard"])[0] == 0
    assert policy_state(path, netns_nft)["in_force"] is False


ZONE_ANSWERS = [((0, "hostguard\n", ""), True), ((0, "public\n", ""), False),
                ((252, "", "FirewallD is not running\n"), False)]


@pytest.mark.parametrize("answer,in_force", ZONE_ANSWERS)
def test_with_firewalld_the_roles_zone_must_be_the_default(tmp_path, answer, in_force):
    path, _ruleset, _plan = record(tmp_path, "firewalld")
    asked = []

    def firewall_cmd(argv):
        asked.append(argv)
        return answer

    assert policy_state(path, firewall_cmd)["in_force"] is in_force
    assert asked == [["firewall-cmd", "--get-default-zone"]]
