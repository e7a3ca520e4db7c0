"""The firewall filters the audit uses: each finding told what the recorded policy does with its port."""

from __future__ import annotations

from ansible_collections.hostguard.hosting.plugins.filter.firewall import FilterModule

FILTERS = FilterModule().filters()
FINDINGS = [{"port": 22, "service": "ssh", "advice": "restrict it"},
            {"port": 3306, "service": "mysql", "advice": "bind it to localhost"}]
RECORD = {"backend": "nftables", "digest": "0" * 64, "admin_sources": ["192.0.2.0/24"], "guard": None,
          "services": [{"name": "ssh", "ports": ["22"], "proto": "tcp", "open_to_all": False,
                        "sources": ["198.51.100.0/24"], "countries": ["JP"]}]}


def test_findings_get_the_policy_in_force():
    ssh, mysql = FILTERS["firewall_exposure"](FINDINGS, RECORD)
    assert ssh == dict(FINDINGS[0], firewall="restricted", firewall_sources=["192.0.2.0/24", "198.51.100.0/24"],
                       firewall_countries=["JP"], firewall_services=["ssh"],
                       summary="the firewall lets in only 192.0.2.0/24, 198.51.100.0/24, addresses in JP")
    assert (mysql["firewall"], mysql["summary"]) == ("closed", "the firewall lets nobody in")


def test_a_port_open_to_everyone_keeps_its_advice():
    record = dict(RECORD, services=[dict(RECORD["services"][0], open_to_all=True)])
    ssh = FILTERS["firewall_exposure"](FINDINGS[:1], record)[0]
    assert (ssh["firewall"], ssh["summary"]) == ("open", "restrict it (the firewall lets everyone in)")


def test_without_a_policy_in_force_every_finding_says_none():
    findings = FILTERS["firewall_exposure"](FINDINGS, {})
    assert [(finding["firewall"], finding["summary"]) for finding in findings] == [
        ("none", "restrict it"), ("none", "bind it to localhost")]
