"""The DNSBL core and the dnsbl_check module against the lab's real DNS server on loopback.

tests/lab/dns_server.py runs in a subprocess on a free port with the lab's own
zone file, so these tests exercise the same data the lab serves. Timeouts use
0.5 s so the zone that never answers costs about a second.
"""

from __future__ import annotations

import importlib.util
import json
import re
import select
import signal
import socket
import subprocess
import sys
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import dns.reversename
import pytest

from ansible.module_utils.testing import patch_module_args
from ansible_collections.hostguard.hosting.plugins.module_utils import dnsbl
from ansible_collections.hostguard.hosting.plugins.modules import dnsbl_check

REPO_ROOT = Path(__file__).resolve().parents[4]
SERVER = REPO_ROOT / "tests" / "lab" / "dns_server.py"
ZONE_FILE = REPO_ROOT / "tests" / "lab" / "dns_zones.yml"
STARTUP_SECONDS = 20
TIMEOUT = 0.5

ZEN = "zen.spamhaus.org"


def ipv6_loopback_available():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as probe:
            probe.bind(("::1", 0))
        return True
    except OSError:
        return False


def start_server(listens, zone_file=ZONE_FILE, extra=()):
    """Start tests/lab/dns_server.py; return the process and the endpoints its start line names."""
    command = [sys.executable, str(SERVER), "--zones", str(zone_file), *extra]
    for listen in listens:
        command += ["--listen", listen]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    ready = select.select([process.stderr], [], [], STARTUP_SECONDS)[0]
    start_line = process.stderr.readline() if ready else ""
    endpoints = re.findall(r"(\d+\.\d+\.\d+\.\d+:\d+|\[[0-9a-f:]+\]:\d+)", start_line.split("listening on", 1)[-1])
    if len(endpoints) != len(listens):
        process.kill()
        process.wait()
        pytest.fail("lab DNS server did not start: %r" % start_line)
    return process, endpoints


@pytest.fixture(scope="module")
def dns_server():
    """The lab DNS server with the lab's zone file; yields its nameserver strings (IPv4 first)."""
    process, endpoints = start_server(["127.0.0.1:0"] + (["[::1]:0"] if ipv6_loopback_available() else []))
    try:
        yield endpoints
    finally:
        process.terminate()
        process.wait(timeout=STARTUP_SECONDS)


def run(dns_server, addresses, zones, **options):
    options.setdefault("nameservers", dns_server[:1])
    options.setdefault("timeout", TIMEOUT)
    return dnsbl.check(addresses, zones=zones, **options)


def by_pair(result):
    return {(check["address"], check["zone"]): check for check in result["checks"]}


# --------------------------------------------------------------------- the core


@pytest.mark.parametrize(
    "address, codes, reason_part",
    [
        ("198.19.0.2", ["127.0.0.2"], "SBL"),
        ("198.19.0.3", ["127.0.0.3"], "CSS"),
        ("198.19.0.4", ["127.0.0.4"], "XBL"),
        ("198.19.0.9", ["127.0.0.2", "127.0.0.9"], None),
        ("198.19.0.12", ["127.0.0.4", "127.0.0.11"], None),
        ("2001:db8:19::2", ["127.0.0.2"], "IPv6"),
    ],
)
def test_abuse_listings(dns_server, address, codes, reason_part):
    result = run(dns_server, [address], [ZEN])
    (check,) = result["checks"]
    assert check["status"] == "listed"
    assert [code["code"] for code in check["codes"]] == codes
    assert check["delist_url"] == "https://check.spamhaus.org/"
    assert check["nameserver"] == dns_server[0]
    if reason_part:
        assert reason_part in check["reason"]
    else:
        assert check["reason"] is None
    assert result["listed"] is True
    assert result["summary"]["listed_addresses"] == [address]


def test_truncated_reason_is_read_over_tcp(dns_server):
    result = run(dns_server, ["198.19.0.20"], [ZEN])
    # 2 test points, the A lookup, then the TXT lookup twice: truncated over UDP, whole over TCP.
    assert result["summary"]["queries"] == 2 + 1 + 2
    (check,) = result["checks"]
    assert check["status"] == "listed"
    assert len(check["reason"].encode()) > 512
    assert check["reason"].startswith("Listed in SBL.") and check["reason"].endswith("the reason ends here.")


@pytest.mark.parametrize("address, code", [("198.19.0.10", "127.0.0.10"), ("198.19.0.11", "127.0.0.11"),
                                           ("2001:db8:19::10", "127.0.0.10")])
def test_pbl_is_policy_not_a_listing(dns_server, address, code):
    result = run(dns_server, [address], [ZEN])
    (check,) = result["checks"]
    assert check["status"] == "policy"
    assert check["codes"][0]["code"] == code and "PBL" in check["codes"][0]["meaning"]
    assert result["listed"] is False
    assert result["by_address"][address] == {"listed": False, "policy": True, "statuses": {ZEN: "policy"}}


@pytest.mark.parametrize(
    "address, code, meaning_part",
    [
        ("198.19.0.252", "127.255.255.252", "typo"),
        ("198.19.0.254", "127.255.255.254", "public or open resolver"),
        ("198.19.0.255", "127.255.255.255", "excessive number of queries"),
        ("198.19.0.99", "198.51.100.99", "outside 127.0.0.0/8"),
    ],
)
def test_error_answers_are_errors(dns_server, address, code, meaning_part):
    result = run(dns_server, [address], [ZEN])
    (check,) = result["checks"]
    assert check["status"] == "error"
    assert check["codes"] == [{"code": code, "class": "error", "meaning": check["codes"][0]["meaning"]}]
    assert meaning_part in check["codes"][0]["meaning"] and meaning_part in check["error"]
    assert result["listed"] is False
    assert result["summary"]["complete"] is False


def test_nodata_is_an_error_not_a_clean_result(dns_server):
    (check,) = run(dns_server, ["198.19.0.98"], [ZEN])["checks"]
    assert check["status"] == "error"
    assert "without an A record" in check["error"]


@pytest.mark.parametrize("address", ["198.19.0.77", "2001:db8:19::77"])
def test_nxdomain_is_not_listed(dns_server, address):
    result = run(dns_server, [address], [ZEN, "bl.spamcop.net"])
    assert [check["status"] for check in result["checks"]] == ["not_listed", "not_listed"]
    assert all(check["error"] is None and check["codes"] == [] for check in result["checks"])
    assert result["summary"]["complete"] is True


def test_every_curated_lab_zone_is_healthy_and_answers(dns_server):
    result = run(dns_server, ["198.19.0.2"], None)
    assert [check["zone"] for check in result["checks"]] == list(dnsbl.DEFAULT_ZONES)
    assert all(check["status"] == "listed" for check in result["checks"])
    for zone in dnsbl.DEFAULT_ZONES:
        report = result["zones"][zone]
        assert report["healthy"] is True and report["problem"] is None and report["origin"] == "curated"
        assert report["nameservers"][dns_server[0]]["test_point_listed"] == "listed"
        assert report["nameservers"][dns_server[0]]["test_point_not_listed"] == "not_listed"


def test_zone_that_never_answers_is_timeout_and_not_queried(dns_server):
    result = run(dns_server, ["198.19.0.2", "198.19.0.77"], ["timeout.dnsbl.test", ZEN])
    report = result["zones"]["timeout.dnsbl.test"]
    assert report["healthy"] is False and "no answer" in report["problem"]
    assert report["nameservers"][dns_server[0]]["timed_out"] is True
    checks = by_pair(result)
    for address in ("198.19.0.2", "198.19.0.77"):
        check = checks[(address, "timeout.dnsbl.test")]
        assert check["status"] == "timeout" and check["nameserver"] is None
        assert "health check" in check["error"]
    assert checks[("198.19.0.2", ZEN)]["status"] == "listed"
    assert result["summary"]["unhealthy_zones"] == ["timeout.dnsbl.test"]
    # The silent zone gets only its 2 test points (each tried twice: retries=1), never the addresses;
    # zen gets its 2 test points, 2 address lookups and 1 TXT lookup for the listing.
    assert result["summary"]["queries"] == 2 * 2 + 2 + 2 + 1


def test_timeout_without_health_check_is_still_never_clean(dns_server):
    result = run(dns_server, ["198.19.0.77"], ["timeout.dnsbl.test"], health_check=False, retries=0)
    (check,) = result["checks"]
    assert check["status"] == "timeout"
    assert check["nameserver"] == dns_server[0]
    assert result["zones"]["timeout.dnsbl.test"]["healthy"] is True
    assert result["summary"]["queries"] == 1


def test_intercepted_zone_is_reported_not_trusted(dns_server):
    result = run(dns_server, ["198.19.0.77", "2001:db8:19::77"], ["intercepted.dnsbl.test"])
    report = result["zones"]["intercepted.dnsbl.test"]
    assert report["healthy"] is False
    assert "127.0.0.1 is answered with 127.0.0.2" in report["problem"] and "intercepted" in report["problem"]
    assert report["nameservers"][dns_server[0]]["test_point_not_listed"] == "listed"
    assert [check["status"] for check in result["checks"]] == ["error", "error"]
    assert result["listed"] is False


def test_dead_zone_fails_its_health_check(dns_server):
    result = run(dns_server, ["198.19.0.2"], ["dead.dnsbl.test"])
    assert "127.0.0.2 is not listed" in result["zones"]["dead.dnsbl.test"]["problem"]
    assert result["checks"][0]["status"] == "error"


@pytest.mark.parametrize("zone, rcode", [("servfail.dnsbl.test", "SERVFAIL"), ("refused.dnsbl.test", "REFUSED")])
def test_servfail_and_refused_are_errors(dns_server, zone, rcode):
    checked = run(dns_server, ["198.19.0.2"], [zone])
    assert checked["checks"][0]["status"] == "error"
    assert rcode in checked["zones"][zone]["problem"]
    unchecked = run(dns_server, ["198.19.0.2"], [zone], health_check=False)
    assert unchecked["checks"][0]["status"] == "error"
    assert unchecked["checks"][0]["error"] == "server answered %s" % rcode


@pytest.mark.parametrize(
    "address, status",
    [("198.19.0.2", "listed"), ("198.19.0.5", "listed"), ("198.19.0.254", "error"), ("198.19.0.1", "error"),
     ("198.19.0.77", "not_listed")],
)
def test_zone_without_data_uses_the_generic_rule(dns_server, address, status):
    result = run(dns_server, [address], ["generic.dnsbl.test"])
    assert result["zones"]["generic.dnsbl.test"]["origin"] == "generic"
    assert result["checks"][0]["status"] == status


def test_custom_zone_with_copied_codes(dns_server):
    # The lab serves UCEPROTECT level 2; read it with level 1's codes to show codes_from is applied.
    zone = {"name": "dnsbl-2.uceprotect.net", "codes_from": "dnsbl-1.uceprotect.net"}
    (check,) = run(dns_server, ["198.19.0.2"], [zone])["checks"]
    assert check["status"] == "listed"
    (curated,) = run(dns_server, ["198.19.0.2"], ["dnsbl-2.uceprotect.net"])["checks"]
    assert curated["status"] == "policy"
    assert "Level2" in curated["reason"]


def test_dead_nameserver_is_reported_and_skipped(dns_server):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as unused:
        unused.bind(("127.0.0.1", 0))
        silent = "127.0.0.1:%d" % unused.getsockname()[1]
        # The bound socket never reads: queries to it simply go unanswered.
        result = run(dns_server, ["198.19.0.2"], [ZEN], nameservers=[silent, dns_server[0]], retries=0)
    report = result["zones"][ZEN]
    assert report["healthy"] is True
    assert report["nameservers"][silent]["healthy"] is False and report["nameservers"][silent]["timed_out"] is True
    assert report["nameservers"][dns_server[0]]["healthy"] is True
    (check,) = result["checks"]
    assert check["status"] == "listed" and check["nameserver"] == dns_server[0]
    assert result["nameservers"] == [silent, dns_server[0]]


def test_closed_nameserver_port_is_an_error_not_a_timeout(dns_server):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        closed = "127.0.0.1:%d" % probe.getsockname()[1]
    # The port is free again: the kernel answers queries to it with ICMP port unreachable.
    result = run(dns_server, ["198.19.0.2"], [ZEN], nameservers=[closed], retries=0)
    assert "ConnectionRefusedError" in result["zones"][ZEN]["problem"]
    assert result["zones"][ZEN]["nameservers"][closed]["timed_out"] is False
    assert result["checks"][0]["status"] == "error"


def test_ipv6_nameserver(dns_server):
    if len(dns_server) < 2:
        pytest.skip("no IPv6 loopback on this machine")
    (check,) = run(dns_server, ["2001:db8:19::2"], [ZEN], nameservers=[dns_server[1]])["checks"]
    assert check["status"] == "listed" and check["nameserver"] == dns_server[1]


def test_results_do_not_depend_on_concurrency(dns_server):
    addresses = ["198.19.0.%d" % last for last in (2, 3, 4, 9, 10, 11, 12, 77, 98, 99, 252, 254, 255)]
    zones = list(dnsbl.DEFAULT_ZONES)
    one_at_a_time = run(dns_server, addresses, zones, concurrency=1)
    concurrent = run(dns_server, addresses, zones, concurrency=64)
    assert one_at_a_time["checks"] == concurrent["checks"]
    assert len(concurrent["checks"]) == len(addresses) * len(zones)
    counts = concurrent["summary"]["counts"]
    assert sum(counts.values()) == len(concurrent["checks"])
    assert counts["timeout"] == 0


# ------------------------------------------------------------------- the module


def run_module(capsys, args, check_mode=False):
    if check_mode:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            dnsbl_check.main()
    return json.loads(capsys.readouterr().out)


def test_module_reports_without_failing(dns_server, capsys):
    result = run_module(capsys, {"addresses": ["198.19.0.2", "198.19.0.77"], "zones": [ZEN],
                                 "nameservers": dns_server[:1], "timeout": TIMEOUT})
    assert result.get("failed") is not True
    assert result["changed"] is False
    assert result["listed"] is True
    assert result["by_address"]["198.19.0.77"]["statuses"] == {ZEN: "not_listed"}
    assert result["zone_data_version"] == dnsbl.ZONE_DATA_VERSION


def test_module_fails_on_listed_only_when_asked(dns_server, capsys):
    result = run_module(capsys, {"addresses": ["198.19.0.2", "198.19.0.10"], "zones": [ZEN, "bl.spamcop.net"],
                                 "nameservers": dns_server[:1], "timeout": TIMEOUT, "fail_on_listed": True})
    assert result["failed"] is True
    assert result["msg"] == "Listed: 198.19.0.2 on zen.spamhaus.org, bl.spamcop.net"
    assert result["summary"]["policy_addresses"] == ["198.19.0.10"]


def test_module_policy_listing_does_not_fail(dns_server, capsys):
    result = run_module(capsys, {"addresses": ["198.19.0.10"], "zones": [ZEN], "nameservers": dns_server[:1],
                                 "timeout": TIMEOUT, "fail_on_listed": True})
    assert result.get("failed") is not True
    assert result["checks"][0]["status"] == "policy"


def test_module_check_mode_runs_the_same_lookups(dns_server, capsys):
    args = {"addresses": ["198.19.0.4"], "zones": [ZEN], "nameservers": dns_server[:1], "timeout": TIMEOUT}
    normal = run_module(capsys, args)
    checked = run_module(capsys, args, check_mode=True)
    assert checked["checks"] == normal["checks"]
    assert checked["changed"] is False


@pytest.mark.parametrize(
    "args, named",
    [
        ({"addresses": ["198.19.0.2", "198.19.0.300"]}, "'198.19.0.300'"),
        ({"addresses": ["198.19.0.2"], "zones": ["zen spamhaus org"]}, "'zen spamhaus org'"),
        ({"addresses": ["198.19.0.2"], "nameservers": ["dns.example.net"]}, "'dns.example.net'"),
    ],
)
def test_module_bad_input_fails_before_any_query(capsys, monkeypatch, args, named):
    def no_queries_allowed(request):
        raise AssertionError("a query was attempted")

    monkeypatch.setattr(dnsbl, "run_check", no_queries_allowed)
    result = run_module(capsys, args)
    assert result["failed"] is True
    assert named in result["msg"]
    assert "checks" not in result


def test_module_explains_how_to_install_dnspython(capsys, monkeypatch):
    monkeypatch.setattr(dnsbl, "HAS_DNSPYTHON", False)
    result = run_module(capsys, {"addresses": ["198.19.0.2"]})
    assert result["failed"] is True
    assert "python3-dnspython" in result["msg"] and "pip install dnspython" in result["msg"]


# ------------------------------------------------------------ the lab DNS server


def ask(nameserver, name, rdtype):
    port = int(nameserver.rsplit(":", 1)[1])
    return dns.query.udp(dns.message.make_query(name, rdtype), "127.0.0.1", timeout=TIMEOUT, port=port)


@pytest.mark.parametrize(
    "name, rdtype",
    [("mail.example.com", "A"), (dns.reversename.from_address("10.213.0.5"), "PTR"), ("zen.spamhaus.org", "MX"),
     ("1.0.0.127.zen.spamhaus.org", "A"), ("not-an-address.zen.spamhaus.org", "A")],
)
def test_server_answers_unknown_names_with_nxdomain_or_nodata_at_once(dns_server, name, rdtype):
    response = ask(dns_server[0], name, rdtype)
    assert response.rcode() in (dns.rcode.NXDOMAIN, dns.rcode.NOERROR)
    assert response.answer == []


@pytest.fixture(scope="module")
def lab_dns_server_module():
    """tests/lab/dns_server.py imported as a module (dataclasses need it registered in sys.modules)."""
    spec = importlib.util.spec_from_file_location("lab_dns_server", SERVER)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        del sys.modules[spec.name]


def test_server_serves_hosts_and_records(tmp_path, lab_dns_server_module):
    zone_file = tmp_path / "zones.yml"
    zone_file.write_text(
        "hosts:\n  mx1.lab.test: [10.213.0.10, 'fdbb:6a7::10']\n"
        "records:\n  - {name: lab.test, type: MX, value: 10 mx1.lab.test}\n"
    )
    server = lab_dns_server_module
    authority = server.Authority(*server.load_zone_file(str(zone_file)), log_queries=False)

    def answer(name, rdtype):
        response = dns.message.from_wire(authority.respond(dns.message.make_query(name, rdtype).to_wire()))
        return dns.rcode.to_text(response.rcode()), sorted(rdata.to_text() for rrset in response.answer for rdata in rrset)

    assert answer("mx1.lab.test", "A") == ("NOERROR", ["10.213.0.10"])
    assert answer("mx1.lab.test", "AAAA") == ("NOERROR", ["fdbb:6a7::10"])
    assert answer(dns.reversename.from_address("10.213.0.10"), "PTR") == ("NOERROR", ["mx1.lab.test."])
    assert answer(dns.reversename.from_address("fdbb:6a7::10"), "PTR") == ("NOERROR", ["mx1.lab.test."])
    assert answer("lab.test", "MX") == ("NOERROR", ["10 mx1.lab.test."])
    assert answer("mx2.lab.test", "A") == ("NXDOMAIN", [])


def test_server_rejects_a_zone_file_typo(tmp_path, lab_dns_server_module):
    zone_file = tmp_path / "zones.yml"
    zone_file.write_text("zones:\n  - name: rbl.lab.test\n    listing: []\n")
    with pytest.raises(lab_dns_server_module.ZoneFileError, match="unknown key.*listing"):
        lab_dns_server_module.load_zone_file(str(zone_file))


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_server_stops_cleanly_on_signal(signal_number):
    process, _endpoints = start_server(["127.0.0.1:0"])
    process.send_signal(signal_number)
    assert process.wait(timeout=STARTUP_SECONDS) == 0
    assert process.stderr.read() == ""
