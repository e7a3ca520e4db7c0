"""Unit tests for the DNSBL core: validation, query names, classification, health, zone data."""

from __future__ import annotations

import ipaddress

import pytest

from ansible_collections.hostguard.hosting.plugins.module_utils import dnsbl
from ansible_collections.hostguard.hosting.plugins.module_utils import dnsbl_zones

ZEN = dnsbl.curated_zone("zen.spamhaus.org")
GENERIC = dnsbl.parse_zone("rbl.example.net")


def a_answer(*codes):
    return dnsbl.Answer("NOERROR", codes, "127.0.0.1:53")


NXDOMAIN = dnsbl.Answer("NXDOMAIN", (), "127.0.0.1:53")
TIMEOUT = dnsbl.Answer(None, (), "127.0.0.1:53", "no answer within 0.5s")


# ----------------------------------------------------------------- query names


@pytest.mark.parametrize(
    "address, expected",
    [
        ("203.0.113.25", "25.113.0.203.zen.spamhaus.org"),
        ("127.0.0.2", "2.0.0.127.zen.spamhaus.org"),
        ("2001:db8::25", "5.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.spamhaus.org"),
        ("2001:DB8:0:1::a", "a.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.1.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.spamhaus.org"),
    ],
)
def test_query_name_reverses_octets_and_nibbles(address, expected):
    assert dnsbl.query_name(ipaddress.ip_address(address), "zen.spamhaus.org") == expected


def test_ipv6_query_name_has_32_single_nibble_labels():
    labels = dnsbl.reversed_address(ipaddress.ip_address("2001:db8:19::2")).split(".")
    assert len(labels) == 32
    assert all(len(label) == 1 and label in "0123456789abcdef" for label in labels)
    assert ipaddress.IPv6Address(int("".join(reversed(labels)), 16)) == ipaddress.ip_address("2001:db8:19::2")


# ------------------------------------------------------------------ validation


@pytest.mark.parametrize("value", ["203.0.113.256", "mail.example.com", "10.0.0.0/24", "", "2001:db8::g", None])
def test_invalid_address_is_named(value):
    with pytest.raises(dnsbl.DnsblInputError) as raised:
        dnsbl.parse_address(value)
    assert repr(value) in str(raised.value)


@pytest.mark.parametrize(
    "value",
    ["bad zone.example", "-bad.example.org", "localhost", "a..b.example", ("x" * 64) + ".example", "zen.spamhaus.org/x", 42],
)
def test_invalid_zone_name_is_named(value):
    with pytest.raises(dnsbl.DnsblInputError) as raised:
        dnsbl.parse_zone_name(value)
    assert repr(value) in str(raised.value)


def test_zone_name_is_normalised():
    assert dnsbl.parse_zone_name(" ZEN.Spamhaus.org. ") == "zen.spamhaus.org"


@pytest.mark.parametrize(
    "value, label",
    [
        ("127.0.0.1", "127.0.0.1:53"),
        ("127.0.0.1:5353", "127.0.0.1:5353"),
        ("::1", "[::1]:53"),
        ("[::1]:5353", "[::1]:5353"),
        ("[fdbb:6a7:0::2]", "[fdbb:6a7::2]:53"),
        ("2001:db8::53", "[2001:db8::53]:53"),
    ],
)
def test_nameserver_forms(value, label):
    assert dnsbl.parse_nameserver(value).label == label


@pytest.mark.parametrize(
    "value",
    ["127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:dns", "[::1", "[::1]5353", "ns1.example.net", "300.0.0.1", "[::1]:"],
)
def test_invalid_nameserver_is_named(value):
    with pytest.raises(dnsbl.DnsblInputError) as raised:
        dnsbl.parse_nameserver(value)
    assert repr(value) in str(raised.value)


def test_request_defaults_to_curated_zones_and_dedupes_addresses():
    request = dnsbl.parse_request(["198.19.0.2", "198.19.0.2", "2001:db8::25", "2001:DB8::25"])
    assert [str(address) for address in request.addresses] == ["198.19.0.2", "2001:db8::25"]
    assert [zone.name for zone in request.zones] == list(dnsbl_zones.DEFAULT_ZONES)
    assert request.nameservers is None


def test_request_names_the_first_bad_value_among_good_ones():
    with pytest.raises(dnsbl.DnsblInputError, match="'198.19.0.300'"):
        dnsbl.parse_request(["198.19.0.2", "198.19.0.300"], zones=["zen.spamhaus.org"])
    with pytest.raises(dnsbl.DnsblInputError, match="'bl spamcop.net'"):
        dnsbl.parse_request(["198.19.0.2"], zones=["zen.spamhaus.org", "bl spamcop.net"])
    with pytest.raises(dnsbl.DnsblInputError, match="'127.0.0.1:99999'"):
        dnsbl.parse_request(["198.19.0.2"], nameservers=["127.0.0.1", "127.0.0.1:99999"])


@pytest.mark.parametrize(
    "options, message",
    [
        ({"zones": ["zen.spamhaus.org", "ZEN.spamhaus.org."]}, "more than once"),
        ({"zones": []}, "zones must not be empty"),
        ({"nameservers": []}, "nameservers must not be empty"),
        ({"nameservers": "127.0.0.1"}, "must be a list"),
        ({"timeout": 0}, "invalid timeout 0"),
        ({"timeout": "soon"}, "not a number"),
        ({"concurrency": 0}, "invalid concurrency 0"),
        ({"retries": -1}, "invalid retries -1"),
        ({"zones": [{"codes": {}}]}, "has no name"),
        ({"zones": [{"name": "rbl.example.net", "code": {}}]}, "unknown key"),
        ({"zones": [{"name": "rbl.example.net", "codes_from": "rbl.other.net"}]}, "not a curated zone"),
        ({"zones": [{"name": "rbl.example.net", "codes": {"10.0.0.2": {"class": "listed"}}}]}, "outside 127.0.0.0/8"),
        ({"zones": [{"name": "rbl.example.net", "codes": {"127.0.0.2": {"class": "bad"}}}]}, "needs a class"),
        ({"zones": [{"name": "rbl.example.net", "codes": {"not-an-ip": {"class": "listed"}}}]}, "'not-an-ip'"),
        ({"zones": [("a" * 60 + ".") * 3 + "example"]}, "too long"),
    ],
)
def test_request_rejects_bad_options(options, message):
    with pytest.raises(dnsbl.DnsblInputError, match=message):
        dnsbl.parse_request(["198.19.0.2", "2001:db8::25"], **options)


@pytest.mark.parametrize("addresses", [[], "198.19.0.2", None])
def test_request_needs_a_list_of_addresses(addresses):
    with pytest.raises(dnsbl.DnsblInputError, match="non-empty list"):
        dnsbl.parse_request(addresses)


def test_custom_zones():
    dqs, own, unknown = dnsbl.parse_request(
        ["198.19.0.2"],
        zones=[
            {"name": "KEY123.zen.dq.spamhaus.net", "codes_from": "zen.spamhaus.org"},
            {"name": "rbl.example.net", "codes": {"127.0.0.5": {"class": "policy", "meaning": "dynamic range"}},
             "delist_url": "https://rbl.example.net/remove"},
            "rbl.unknown.example",
        ],
    ).zones
    assert dqs.name == "key123.zen.dq.spamhaus.net"
    assert dqs.codes == ZEN.codes and dqs.origin == "custom"
    assert own.codes == {"127.0.0.5": {"class": "policy", "meaning": "dynamic range"}}
    assert own.delist_url == "https://rbl.example.net/remove"
    assert unknown.origin == "generic" and unknown.codes == {}


# -------------------------------------------------------------- classification


@pytest.mark.parametrize(
    "codes, status",
    [
        (("127.0.0.2",), "listed"),
        (("127.0.0.3",), "listed"),
        (("127.0.0.4",), "listed"),
        (("127.0.0.9",), "listed"),
        (("127.0.0.10",), "policy"),
        (("127.0.0.11",), "policy"),
        (("127.0.0.4", "127.0.0.11"), "listed"),
        (("127.0.0.10", "127.0.0.11"), "policy"),
        (("127.255.255.252",), "error"),
        (("127.255.255.254",), "error"),
        (("127.255.255.255",), "error"),
        (("127.0.0.2", "127.255.255.254"), "error"),
        (("198.51.100.99",), "error"),
        (("127.0.0.2", "10.0.0.1"), "error"),
    ],
)
def test_zen_answers(codes, status):
    verdict = dnsbl.classify(ZEN, a_answer(*codes))
    assert verdict.status == status
    assert [code["code"] for code in verdict.codes] == list(codes)
    assert all(code["meaning"] for code in verdict.codes)


@pytest.mark.parametrize(
    "code, meaning_part",
    [
        ("127.255.255.252", "typo"),
        ("127.255.255.254", "public or open resolver"),
        ("127.255.255.255", "excessive number of queries"),
    ],
)
def test_spamhaus_error_codes_are_explained_never_listed(code, meaning_part):
    verdict = dnsbl.classify(ZEN, a_answer(code))
    assert verdict.status == "error"
    assert verdict.codes == [{"code": code, "class": "error", "meaning": ZEN.codes[code]["meaning"]}]
    assert meaning_part in verdict.error


def test_pbl_is_policy_with_its_meaning():
    verdict = dnsbl.classify(ZEN, a_answer("127.0.0.10"))
    assert verdict.status == "policy"
    assert verdict.codes[0]["class"] == "policy"
    assert "PBL" in verdict.codes[0]["meaning"]


@pytest.mark.parametrize(
    "code, status",
    [("127.0.0.2", "listed"), ("127.0.1.5", "listed"), ("127.0.0.1", "error"), ("127.255.255.254", "error"),
     ("127.255.255.1", "error"), ("192.0.2.1", "error")],
)
def test_generic_rule(code, status):
    assert dnsbl.classify(GENERIC, a_answer(code)).status == status


def test_undocumented_code_of_a_curated_zone_is_a_listing_that_says_so():
    verdict = dnsbl.classify(ZEN, a_answer("127.0.0.20"))
    assert verdict.status == "listed"
    assert "undocumented" in verdict.codes[0]["meaning"]
    assert dnsbl_zones.ZONE_DATA_VERSION in verdict.codes[0]["meaning"]


@pytest.mark.parametrize(
    "answer, status, error_part",
    [
        (NXDOMAIN, "not_listed", None),
        (TIMEOUT, "timeout", "no answer"),
        (dnsbl.Answer("SERVFAIL"), "error", "SERVFAIL"),
        (dnsbl.Answer("REFUSED"), "error", "REFUSED"),
        (dnsbl.Answer("NOERROR", ()), "error", "without an A record"),
        (dnsbl.Answer(dnsbl.LOCAL_FAILURE, (), None, "OSError: network unreachable"), "error", "unreachable"),
    ],
)
def test_answers_without_codes(answer, status, error_part):
    verdict = dnsbl.classify(ZEN, answer)
    assert verdict.status == status
    assert verdict.codes == []
    if error_part is None:
        assert verdict.error is None
    else:
        assert error_part in verdict.error


@pytest.mark.parametrize("zone", [ZEN, GENERIC], ids=["curated", "generic"])
@pytest.mark.parametrize("rcode", ["NOERROR", "NXDOMAIN", "SERVFAIL", "REFUSED", "FORMERR", "NOTIMP", None])
@pytest.mark.parametrize("records", [(), ("127.0.0.2",), ("127.255.255.254",)])
def test_not_listed_only_ever_from_nxdomain(zone, rcode, records):
    status = dnsbl.classify(zone, dnsbl.Answer(rcode, records)).status
    assert (status == "not_listed") == (rcode == "NXDOMAIN")


# ---------------------------------------------------------------- health check


def test_health_passes_with_rfc5782_test_points():
    assert dnsbl.health_problem(ZEN, a_answer("127.0.0.2", "127.0.0.4", "127.0.0.10"), NXDOMAIN) is None


def test_health_detects_interception():
    problem = dnsbl.health_problem(ZEN, a_answer("127.0.0.2"), a_answer("127.0.0.2"))
    assert "127.0.0.1 is answered with 127.0.0.2" in problem and "intercepted" in problem


def test_health_detects_dead_zone():
    assert "127.0.0.2 is not listed" in dnsbl.health_problem(ZEN, NXDOMAIN, NXDOMAIN)


def test_health_reports_spamhaus_public_resolver_refusal():
    problem = dnsbl.health_problem(ZEN, a_answer("127.255.255.254"), a_answer("127.255.255.254"))
    assert "test point 127.0.0.2" in problem and "public or open resolver" in problem


def test_health_reports_timeouts():
    problem = dnsbl.health_problem(ZEN, TIMEOUT, TIMEOUT)
    assert problem == "test point 127.0.0.2: no answer within 0.5s; test point 127.0.0.1: no answer within 0.5s"


# --------------------------------------------------------------------- summary


def _check(address, zone, status):
    return {"address": address, "zone": zone, "status": status}


def test_summary_and_grouping():
    checks = [
        _check("198.19.0.2", "zen.spamhaus.org", "listed"),
        _check("198.19.0.2", "bl.spamcop.net", "timeout"),
        _check("198.19.0.10", "zen.spamhaus.org", "policy"),
        _check("198.19.0.10", "bl.spamcop.net", "not_listed"),
    ]
    zones = {"zen.spamhaus.org": {"healthy": True}, "bl.spamcop.net": {"healthy": False}}
    summary = dnsbl.summarize(checks, zones, queries=12, seconds=0.0123456)
    assert summary["counts"] == {"listed": 1, "policy": 1, "not_listed": 1, "error": 0, "timeout": 1}
    assert summary["listed_addresses"] == ["198.19.0.2"]
    assert summary["policy_addresses"] == ["198.19.0.10"]
    assert summary["unhealthy_zones"] == ["bl.spamcop.net"]
    assert summary["complete"] is False
    assert (summary["addresses"], summary["zones"], summary["checks"], summary["queries"]) == (2, 2, 4, 12)
    assert summary["seconds"] == 0.012

    by_address = dnsbl.group_by_address(checks)
    assert by_address["198.19.0.2"] == {
        "listed": True, "policy": False, "statuses": {"zen.spamhaus.org": "listed", "bl.spamcop.net": "timeout"},
    }
    assert by_address["198.19.0.10"]["listed"] is False and by_address["198.19.0.10"]["policy"] is True


# ------------------------------------------------------------------- zone data


def test_zone_data_is_complete_and_consistent():
    assert dnsbl_zones.ZONE_DATA_VERSION
    for name, zone in dnsbl_zones.ZONES.items():
        assert dnsbl.parse_zone_name(name) == name
        assert zone["description"] and zone["delist_url"].startswith("https://") and zone["source"]
        assert zone["codes"], name
        for code, entry in zone["codes"].items():
            assert ipaddress.IPv4Address(code) in dnsbl.LOOPBACK_NETWORK, (name, code)
            assert entry["class"] in dnsbl_zones.CODE_CLASSES and entry["meaning"], (name, code)
        # RFC 5782: the test point 127.0.0.2 must classify as a listing, or the health check would reject the zone.
        assert dnsbl.classify(dnsbl.curated_zone(name), a_answer("127.0.0.2")).status in ("listed", "policy")


def test_default_zones_cover_the_issue_and_leave_sorbs_out():
    assert set(dnsbl_zones.DEFAULT_ZONES) == {
        "zen.spamhaus.org", "bl.spamcop.net", "b.barracudacentral.org",
        "psbl.surriel.com", "bl.mailspike.net", "dnsbl-1.uceprotect.net",
    }
    assert not [name for name in dnsbl_zones.ZONES if "sorbs" in name]


def test_spamhaus_codes_match_their_documentation():
    classes = {code: entry["class"] for code, entry in dnsbl_zones.ZONES["zen.spamhaus.org"]["codes"].items()}
    assert [code for code, code_class in classes.items() if code_class == "policy"] == ["127.0.0.10", "127.0.0.11"]
    assert [code for code, code_class in classes.items() if code_class == "error"] == [
        "127.255.255.252", "127.255.255.254", "127.255.255.255",
    ]


def test_uceprotect_levels_2_and_3_are_policy_and_not_default():
    for name in ("dnsbl-2.uceprotect.net", "dnsbl-3.uceprotect.net"):
        assert name not in dnsbl_zones.DEFAULT_ZONES
        assert dnsbl.classify(dnsbl.curated_zone(name), a_answer("127.0.0.2")).status == "policy"
