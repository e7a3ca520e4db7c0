# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The watch's blocklist facet against the lab's real DNS server on loopback (tests/lab/dns_server.py).

The server runs with the lab's zone file and a runtime listings file the tests write, as the lab's tests do:
a listing that appears, and one that goes.
"""
from __future__ import annotations

import json

import pytest

from ansible_collections.hostguard.hosting.plugins.module_utils import watch_config, watch_dnsbl, watch_service
from ansible_collections.hostguard.hosting.tests.unit.plugins.modules.test_dnsbl_check_integration import (
    STARTUP_SECONDS, start_server)
from ansible_collections.hostguard.hosting.tests.unit.plugins.module_utils.watch_fakes import (
    Clock, Runner, read_events, start_service)

START = 1_800_000_000.0
ZEN = "zen.spamhaus.org"
HOST_ADDRESS = "198.19.0.77"  # in the zone file's range for single cases, listed by no zone there


@pytest.fixture()
def dns(tmp_path):
    listings = tmp_path / "listings.json"
    process = None

    def list_now(entries):
        partial = tmp_path / "listings.tmp"
        partial.write_text(json.dumps(entries))
        partial.replace(listings)

    process, endpoints = start_server(["127.0.0.1:0"], extra=["--runtime-listings", str(listings)])
    try:
        yield endpoints[0], list_now
    finally:
        process.terminate()
        process.wait(timeout=STARTUP_SECONDS)


def service_for(tmp_path, nameserver, clock, **settings):
    settings = dict({"addresses": [HOST_ADDRESS], "zones": [ZEN, "bl.spamcop.net"], "nameservers": [nameserver],
                     "timeout": 1, "interval": 3600}, **settings)
    return start_service(tmp_path, {"dnsbl": settings}, clock=clock)


def test_a_listing_that_appears_is_said_once_and_its_delisting_too(tmp_path, dns):
    nameserver, list_now = dns
    clock = Clock(START)
    service = service_for(tmp_path, nameserver, clock)
    service.tick()
    assert read_events(tmp_path) == []

    list_now({ZEN: [{"address": HOST_ADDRESS, "a": "127.0.0.2", "txt": "Listed in SBL, lab"}]})
    clock.now = START + 1800
    service.tick()
    assert read_events(tmp_path) == []  # not due before the interval

    clock.now = START + 3600
    service.tick()
    [event] = read_events(tmp_path)
    assert (event["kind"], event["address"], event["zone"], event["code"]) == (
        "dnsbl_listed", HOST_ADDRESS, ZEN, "127.0.0.2")
    assert "SBL" in event["meaning"] and event["reason"] == "Listed in SBL, lab"
    assert event["runbook"] == "blocklisted-ip.md" and event["delist_url"]

    clock.now = START + 7200
    service.tick()
    assert len(read_events(tmp_path)) == 1  # still listed: nothing new

    list_now({})
    clock.now = START + 10800
    service.tick()
    events = read_events(tmp_path)
    assert [event["kind"] for event in events] == ["dnsbl_listed", "dnsbl_delisted"]
    assert (events[1]["address"], events[1]["zone"], events[1]["was_codes"]) == (HOST_ADDRESS, ZEN, ["127.0.0.2"])


def test_a_restart_neither_repeats_a_listing_nor_checks_before_the_interval(tmp_path, dns):
    nameserver, list_now = dns
    list_now({ZEN: [{"address": HOST_ADDRESS, "a": "127.0.0.4"}]})
    clock = Clock(START)
    service = service_for(tmp_path, nameserver, clock)
    service.tick()
    service.state.save()
    assert [event["kind"] for event in read_events(tmp_path)] == ["dnsbl_listed"]

    checks = []
    clock.now = START + 60
    again = service_for(tmp_path, nameserver, clock)
    again.facets[0].check = lambda *args, **kwargs: checks.append(args)
    again.tick()
    assert checks == []  # checked a minute ago, before the restart
    clock.now = START + 3600 + 7200  # past the alert interval too: only the facet's state keeps it quiet
    again.facets[0].check = watch_dnsbl.dnsbl.check
    again.tick()
    assert len(read_events(tmp_path)) == 1


def test_a_zone_that_times_out_is_neither_a_listing_nor_a_delisting(tmp_path, dns):
    nameserver, list_now = dns
    clock = Clock(START)
    service = service_for(tmp_path, nameserver, clock, zones=[ZEN])
    list_now({ZEN: [{"address": HOST_ADDRESS, "a": "127.0.0.2"}]})
    service.tick()
    # the same lists asked of a nameserver that never answers: unknown, so the listing is kept
    service.facets[0].settings["nameservers"] = ["127.0.0.1:9"]
    clock.now = START + 3600
    service.tick()
    assert [event["kind"] for event in read_events(tmp_path)] == ["dnsbl_listed"]
    assert list(service.state.facet("dnsbl")["listed"]) == [f"{HOST_ADDRESS} {ZEN}"]


def test_the_default_addresses_are_the_hosts_global_ones():
    out = json.dumps([
        {"ifname": "lo", "addr_info": [{"family": "inet", "local": "127.0.0.1"}, {"family": "inet6", "local": "::1"}]},
        {"ifname": "eth0", "addr_info": [{"family": "inet", "local": "10.0.0.5"},
                                         {"family": "inet", "local": "8.8.4.4"},
                                         {"family": "inet6", "local": "fe80::1"},
                                         {"family": "inet6", "local": "2a00:1450:4001::5"}]}])
    runner = Runner({("ip", "-j"): (0, out, "")})
    assert watch_dnsbl.host_addresses(runner) == ["8.8.4.4", "2a00:1450:4001::5"]


@pytest.mark.parametrize("settings, message", [
    ({"interval": 10}, "facets.dnsbl.interval: expected a whole number at least 60, got 10"),
    ({"addresses": ["10.0.0.300"]}, "facets.dnsbl: invalid address '10.0.0.300': not an IPv4 or IPv6 address"),
    ({"zones": ["not a zone"]}, "facets.dnsbl: invalid zone name 'not a zone': expected a DNS name such as "
                                "zen.spamhaus.org"),
    ({"nameservers": "127.0.0.1"}, "facets.dnsbl.nameservers: expected a non-empty list, got '127.0.0.1'"),
])
def test_bad_dnsbl_settings_are_refused_naming_the_value(settings, message):
    with pytest.raises(watch_config.ConfigError) as info:
        watch_config.validate({"host": "h", "facets": {"dnsbl": settings}}, watch_service.FACET_TYPES)
    assert str(info.value) == message
