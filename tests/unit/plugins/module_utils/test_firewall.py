"""The firewall role's policy core: validation, presets, and the nftables table it renders.

Rendered tables are checked with the real `nft -c` inside a throwaway network
namespace, so what the tests accept is what the kernel accepts.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import uuid

import pytest

from ansible_collections.hostguard.hosting.plugins.module_utils.firewall import (
    PolicyError,
    build_plan,
    digest_from_comment,
    policy_record,
    port_exposure,
)

NEEDS_NFT = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("ip"),
                               reason="needs root, nft and ip to check rulesets against the kernel")

OFFICE = "198.51.100.0/24"
JP = ["198.18.0.0/24", "2001:db8:18::/64"]


@pytest.fixture(name="netns")
def fixture_netns():
    name = f"hgunit-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def nft(netns, *args, stdin=None):
    return subprocess.run(["ip", "netns", "exec", netns, "nft", *args], input=stdin, text=True,
                          capture_output=True, check=False)


def plan(services, **kwargs):
    kwargs.setdefault("country_cidrs", {"JP": JP})
    return build_plan(services, **kwargs)


def service(result, name):
    return next(s for s in result["services"] if s["name"] == name)


def test_presets_bring_their_ports_and_own_ports_replace_them():
    result = plan({"plesk": {"sources": [OFFICE]}, "ssh": {"sources": [OFFICE], "ports": [2222]}})
    assert service(result, "plesk")["ports"] == ["8443", "8880"]
    assert service(result, "ssh")["ports"] == ["2222"]


def test_ftp_gets_the_passive_range():
    result = plan({"ftp": {"sources": [OFFICE]}}, ftp_passive_ports="40000-40100")
    assert service(result, "ftp")["ports"] == ["21", "40000-40100"]


def test_any_with_countries_means_any_address_in_those_countries():
    submission = service(plan({"submission": {"sources": "any", "countries": ["JP"]}}), "submission")
    assert not submission["open_to_all"]
    assert submission["countries"] == ["JP"]
    assert submission["sources_v4"] == [] and submission["sources_v6"] == []


def test_empty_sources_close_a_service_to_all_but_the_admin_networks():
    result = plan({"ssh": {"sources": []}}, admin_sources=[OFFICE])
    ssh = service(result, "ssh")
    assert not ssh["open_to_all"] and ssh["sources_v4"] == []
    assert "ip saddr @admin_v4 tcp dport 22 accept" in result["ruleset"]
    assert "tcp dport 22 accept comment \"ssh: any\"" not in result["ruleset"]


@pytest.mark.parametrize("services,kwargs,message", [
    ({"ssh": {"sources": ["198.51.100.1/24"]}}, {}, "firewall_services.ssh.sources\\[0\\]: '198.51.100.1/24'.*did you mean 198.51.100.0/24"),
    ({"ssh": {"sources": ["10.0.0.0/33"]}}, {}, "'10.0.0.0/33' is not a network"),
    ({"myapp": {"ports": [70000], "sources": "any"}}, {}, "port 70000 .* out of range"),
    ({"myapp": {"ports": ["9110-9100"], "sources": "any"}}, {}, "'9110-9100' is a range whose start is above its end"),
    ({"myapp": {"ports": ["http"], "sources": "any"}}, {}, "'http' is not a port"),
    ({"gopher": {"sources": "any"}}, {}, "'gopher' is not a preset"),
    ({"ssh": {"sources": "any", "zones": []}}, {}, "unknown setting\\(s\\) zones"),
    ({"ssh": {"sources": "any", "proto": "sctp"}}, {}, "'sctp' is not one of tcp, udp, both"),
    ({"ssh": {}}, {}, "say who may connect"),
    ({"submission": {"countries": ["MD"]}}, {}, "'MD' has no CIDRs in firewall_country_cidrs \\(known: JP\\)"),
    ({"ssh": {"sources": "any"}}, {"country_cidrs": {"jp": JP}}, "'jp' is not a two-letter upper-case country code"),
    ({"ssh": {"sources": "any"}}, {"country_cidrs": {"JP": "/nonexistent/jp.txt"}}, "cannot read CIDR file '/nonexistent/jp.txt'"),
    ({"smtp": {"sources": [OFFICE]}}, {}, "restricting port 25 stops other servers delivering mail"),
    ({"ssh": {"sources": "any"}}, {"admin_sources": ["office"]}, "firewall_admin_sources\\[0\\]: 'office' is not a network"),
    ({"ftp": {"sources": "any"}}, {"ftp_passive_ports": "40000-"}, "firewall_ftp_passive_ports: '40000-'"),
])
def test_bad_input_fails_naming_the_value(services, kwargs, message):
    with pytest.raises(PolicyError, match=message):
        plan(services, **kwargs)


def test_restricting_port_25_needs_consent():
    result = plan({"smtp": {"sources": [OFFICE]}}, restrict_smtp=True)
    assert not service(result, "smtp")["open_to_all"]


def test_country_file_is_read_with_comments(tmp_path):
    cidrs = tmp_path / "jp.txt"
    cidrs.write_text("# Japan\n198.18.0.0/24  # lab\n\n2001:db8:18::/64\n")
    result = plan({"submission": {"sources": "any", "countries": ["JP"]}},
                  country_cidrs={"JP": "jp.txt"}, base_dir=str(tmp_path))
    assert result["countries"]["JP"] == {"v4": ["198.18.0.0/24"], "v6": ["2001:db8:18::/64"]}


def test_a_bad_line_in_a_country_file_is_named_with_its_line(tmp_path):
    cidrs = tmp_path / "jp.txt"
    cidrs.write_text("198.18.0.0/24\n198.18.300.0/24\n")
    with pytest.raises(PolicyError, match=r"jp.txt line 2\): '198.18.300.0/24'"):
        plan({"submission": {"countries": ["JP"]}}, country_cidrs={"JP": str(cidrs)})


def test_guard_is_needed_only_when_the_policy_would_close_the_controller_out():
    closed = plan({"ssh": {"sources": []}}, guard={"source": "10.213.0.1", "port": 22})
    assert closed["guard"] == {"source": "10.213.0.1", "family": 4, "port": 22, "needed": True}
    assert 'ip saddr 10.213.0.1 tcp dport 22 accept comment "lockout guard' in closed["ruleset"]
    admin = plan({"ssh": {"sources": []}}, admin_sources=["10.213.0.0/24"], guard={"source": "10.213.0.1", "port": 22})
    assert admin["guard"]["needed"] is False
    listed = plan({"ssh": {"sources": ["10.213.0.0/24"]}}, guard={"source": "10.213.0.1", "port": 22})
    assert listed["guard"]["needed"] is False
    other_port = plan({"ssh": {"sources": "any"}}, guard={"source": "10.213.0.1", "port": 2222})
    assert other_port["guard"]["needed"] is True


def test_digest_is_stable_and_follows_the_rules():
    first = plan({"ssh": {"sources": [OFFICE]}})
    again = plan({"ssh": {"sources": [OFFICE]}})
    other = plan({"ssh": {"sources": ["198.51.100.0/25"]}})
    assert first["digest"] == again["digest"] != other["digest"]
    comment = next(line for line in first["ruleset"].splitlines() if line.strip().startswith("comment"))
    assert digest_from_comment(comment.strip()[len("comment "):].strip('"')) == first["digest"]


@NEEDS_NFT
def test_the_kernel_accepts_the_table_and_it_replaces_only_itself(netns):
    result = plan({
        "ssh": {"sources": []},
        "ftp": {"sources": ["198.18.0.0/24", "2001:db8:18::/64"]},
        "smtp": {"sources": "any"},
        "submission": {"sources": "any", "countries": ["JP"]},
        "myapp": {"ports": [9000, "9100-9110"], "proto": "both", "sources": ["198.18.0.0/24"]},
    }, admin_sources=[OFFICE, "2001:db8:51::/64"], guard={"source": "10.213.0.1", "port": 22},
        ftp_passive_ports="40000-40010")
    assert nft(netns, "add", "table", "inet", "other").returncode == 0
    for _attempt in range(2):  # the second load replaces the first
        loaded = nft(netns, "-f", "-", stdin=result["ruleset"])
        assert loaded.returncode == 0, loaded.stderr
    tables = nft(netns, "list", "tables").stdout.split()
    assert tables.count("hostguard") == 1 and "other" in tables
    assert result["digest"] in nft(netns, "list", "table", "inet", "hostguard").stdout


@NEEDS_NFT
def test_ten_thousand_country_cidrs_cost_one_rule(netns):
    network = ipaddress.ip_network("10.0.0.0/8")
    cidrs = [str(subnet) for _index, subnet in zip(range(10000), network.subnets(new_prefix=24))]
    result = plan({"submission": {"sources": "any", "countries": ["JP"]}}, country_cidrs={"JP": cidrs})
    assert result["ruleset"].count("@country_jp_v4") == 1
    loaded = nft(netns, "-f", "-", stdin=result["ruleset"])
    assert loaded.returncode == 0, loaded.stderr


# --- the record the audit reads back -------------------------------------------------------------

AUDITED = {
    "ssh": {"sources": [OFFICE]},
    "submission": {"sources": "any", "countries": ["JP"]},
    "smtp": {"sources": "any"},
    "ftp": {"sources": []},
    "myapp": {"ports": ["9100-9110"], "proto": "udp", "sources": [OFFICE]},
}


def record(**kwargs):
    return policy_record(plan(AUDITED, admin_sources=["192.0.2.0/24"], ftp_passive_ports="40000-40100", **kwargs),
                         "nftables", "/etc/hostguard/firewall.nft")


def test_the_record_says_who_may_reach_which_port_without_the_country_cidrs():
    written = record()
    assert (written["backend"], written["ruleset_path"]) == ("nftables", "/etc/hostguard/firewall.nft")
    assert len(written["digest"]) == 64
    assert written["admin_sources"] == ["192.0.2.0/24"]
    assert written["guard"] is None
    assert {entry["name"]: (entry["ports"], entry["open_to_all"], entry["sources"], entry["countries"])
            for entry in written["services"]} == {
        "ftp": (["21", "40000-40100"], False, [], []),
        "myapp": (["9100-9110"], False, [OFFICE], []),
        "smtp": (["25"], True, [], []),
        "ssh": (["22"], False, [OFFICE], []),
        "submission": (["587"], False, [], ["JP"]),
    }
    assert "198.18.0.0/24" not in str(written)


@pytest.mark.parametrize("port, expected", [
    (22, {"firewall": "restricted", "services": ["ssh"], "sources": ["192.0.2.0/24", OFFICE], "countries": []}),
    (587, {"firewall": "restricted", "services": ["submission"], "sources": ["192.0.2.0/24"], "countries": ["JP"]}),
    (25, {"firewall": "open", "services": ["smtp"], "sources": [], "countries": []}),
    (40050, {"firewall": "restricted", "services": ["ftp"], "sources": ["192.0.2.0/24"], "countries": []}),
    (3306, {"firewall": "closed", "services": [], "sources": [], "countries": []}),
    (9105, {"firewall": "closed", "services": [], "sources": [], "countries": []}),  # myapp is UDP only
])
def test_each_port_is_open_restricted_or_closed_as_the_policy_says(port, expected):
    assert port_exposure(port, record()) == expected


def test_a_port_only_the_lockout_guard_keeps_open_is_restricted_to_the_controller():
    written = record(guard={"source": "203.0.113.7", "port": 2222})
    assert written["guard"] == {"source": "203.0.113.7", "port": 2222}
    assert port_exposure(2222, written) == {"firewall": "restricted", "services": [], "sources": ["203.0.113.7"],
                                            "countries": []}


def test_a_service_nobody_may_reach_is_closed_when_there_are_no_admin_networks():
    written = policy_record(plan({"ftp": {"sources": []}}), "firewalld", "/etc/hostguard/firewall.nft")
    assert written["ruleset_path"] is None
    assert port_exposure(21, written) == {"firewall": "closed", "services": ["ftp"], "sources": [], "countries": []}
