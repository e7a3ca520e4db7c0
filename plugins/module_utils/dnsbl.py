# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check IP addresses against DNS blocklists, concurrently and without guessing.

Plain Python (no Ansible imports) behind hostguard.hosting.dnsbl_check.

The rules that make the answers trustworthy:

* Only NXDOMAIN means ``not_listed``. A timeout is ``timeout``; SERVFAIL,
  REFUSED, a NOERROR answer without an A record, an error code such as
  127.255.255.254, or an answer outside 127.0.0.0/8 is ``error``.
* Every answer code is classified with the zone's data (dnsbl_zones.py).
  A code the data does not know, and every code of a zone without data, falls
  to the generic rule: outside 127.0.0.0/8, 127.0.0.1 and 127.255.255.0/24 are
  errors, any other 127.0.0.0/8 answer is a listing.
* Before any address is looked up, each zone is tested through each
  nameserver with the RFC 5782 test points: 127.0.0.2 must be listed and
  127.0.0.1 must not (a listed 127.0.0.1 means something intercepts the
  queries). Addresses are looked up only through nameservers that passed;
  a zone that passed nowhere is not queried and its checks report why.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import asyncio
import ipaddress
import random
import re
import struct
import time
import traceback

from ansible_collections.hostguard.hosting.plugins.module_utils.dnsbl_zones import (
    CODE_CLASSES,
    DEFAULT_ZONES,
    ERROR,
    LISTED,
    ZONE_DATA_VERSION,
    ZONES,
)

try:
    import dns.asyncquery
    import dns.exception
    import dns.flags
    import dns.message
    import dns.rcode
    import dns.rdatatype
    import dns.resolver
except ImportError:
    HAS_DNSPYTHON = False
    DNSPYTHON_IMPORT_TRACEBACK = traceback.format_exc()
else:
    HAS_DNSPYTHON = True
    DNSPYTHON_IMPORT_TRACEBACK = None

DNSPYTHON_INSTALL_HINT = (
    "dnspython is required: install it with 'apt-get install python3-dnspython' (Debian/Ubuntu) "
    "or 'pip install dnspython' for the Python that runs the module"
)

STATUS_LISTED = "listed"
STATUS_POLICY = "policy"
STATUS_NOT_LISTED = "not_listed"
STATUS_ERROR = "error"
STATUS_TIMEOUT = "timeout"
STATUSES = (STATUS_LISTED, STATUS_POLICY, STATUS_NOT_LISTED, STATUS_ERROR, STATUS_TIMEOUT)

# RFC 5782 section 5: every IPv4 DNSBL lists 127.0.0.2 and never 127.0.0.1.
TEST_POINT_LISTED = ipaddress.IPv4Address("127.0.0.2")
TEST_POINT_NOT_LISTED = ipaddress.IPv4Address("127.0.0.1")

LOOPBACK_NETWORK = ipaddress.IPv4Network("127.0.0.0/8")
# 127.255.255.x is how Spamhaus (and zones copying it) say "error";
# 127.0.0.1 is how URIBL and SURBL say "query refused".
GENERIC_ERROR_NETWORK = ipaddress.IPv4Network("127.255.255.0/24")
GENERIC_ERROR_CODES = (ipaddress.IPv4Address("127.0.0.1"),)

ZONE_KEYS = ("name", "codes", "codes_from", "description", "delist_url", "notes")
MAX_NAME_LENGTH = 253
# Longest prefix a query adds to the zone name, dots included.
QUERY_PREFIX_LENGTH = {4: len("255.255.255.255."), 6: 64}
LABEL_PATTERN = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
MAX_CONCURRENCY = 4096
DNS_PORT = 53
LOCAL_FAILURE = "LOCAL_FAILURE"


class DnsblInputError(ValueError):
    """A parameter is invalid; the message names the offending value."""


class DnspythonMissingError(RuntimeError):
    """dnspython cannot be imported."""


class Zone:
    """A DNSBL zone with the return codes it documents."""

    def __init__(self, name, codes, origin, description=None, delist_url=None, notes=None, source=None):
        self.name = name
        self.codes = codes
        self.origin = origin
        self.description = description
        self.delist_url = delist_url
        self.notes = notes
        self.source = source

    def describe(self):
        return {
            "origin": self.origin,
            "description": self.description,
            "delist_url": self.delist_url,
            "notes": self.notes,
            "source": self.source,
        }


class Nameserver:
    def __init__(self, address, port=DNS_PORT):
        self.address = address
        self.port = port

    @property
    def label(self):
        host = "[%s]" % self.address if ":" in self.address else self.address
        return "%s:%d" % (host, self.port)

    def __eq__(self, other):
        return isinstance(other, Nameserver) and (self.address, self.port) == (other.address, other.port)

    def __hash__(self):
        return hash((self.address, self.port))

    def __repr__(self):
        return "Nameserver(%s)" % self.label


class Request:
    """A validated check: everything needed to run it, nothing left to parse."""

    def __init__(self, addresses, zones, nameservers, timeout, retries, concurrency, health_check, query_txt):
        self.addresses = addresses
        self.zones = zones
        self.nameservers = nameservers
        self.timeout = timeout
        self.retries = retries
        self.concurrency = concurrency
        self.health_check = health_check
        self.query_txt = query_txt


class Verdict:
    """The classification of one DNS answer."""

    def __init__(self, status, codes=(), error=None):
        self.status = status
        self.codes = list(codes)
        self.error = error

    def __repr__(self):
        return "Verdict(%r, %r, %r)" % (self.status, self.codes, self.error)


class Answer:
    """What one lookup produced.

    ``rcode`` is the response code's name, None when no server answered, or
    LOCAL_FAILURE when the query could not be sent or the answer not parsed.
    """

    def __init__(self, rcode, records=(), nameserver=None, error=None):
        self.rcode = rcode
        self.records = tuple(records)
        self.nameserver = nameserver
        self.error = error


# ---------------------------------------------------------------- validation


def parse_address(value):
    try:
        return ipaddress.ip_address(str(value).strip())
    except ValueError:
        raise DnsblInputError("invalid address %r: not an IPv4 or IPv6 address" % (value,))


def parse_zone_name(value):
    if not isinstance(value, str):
        raise DnsblInputError("invalid zone name %r: not a string" % (value,))
    name = value.strip().lower()
    if name.endswith("."):
        name = name[:-1]
    labels = name.split(".")
    if len(name) > MAX_NAME_LENGTH or len(labels) < 2 or not all(LABEL_PATTERN.match(label) for label in labels):
        raise DnsblInputError("invalid zone name %r: expected a DNS name such as zen.spamhaus.org" % (value,))
    return name


def parse_nameserver(value):
    """Parse ``ip``, ``ip:port``, ``[ipv6]:port`` or a bare IPv6 address."""
    text = str(value).strip()
    host, port_text = text, None
    if text.startswith("["):
        host, separator, rest = text[1:].partition("]")
        if not separator or rest == ":" or (rest and not rest.startswith(":")):
            raise DnsblInputError("invalid nameserver %r: expected ip, ip:port or [ipv6]:port" % (value,))
        port_text = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise DnsblInputError("invalid nameserver %r: %r is not an IP address" % (value, host))
    port = DNS_PORT
    if port_text is not None:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise DnsblInputError("invalid nameserver %r: port must be 1-65535" % (value,))
        port = int(port_text)
    return Nameserver(str(address), port)


def _parse_codes(zone_name, codes):
    if not isinstance(codes, dict) or not codes:
        raise DnsblInputError("zone %s: codes must be a non-empty mapping of return code to {class, meaning}" % zone_name)
    parsed = {}
    for code_text, entry in codes.items():
        try:
            code = ipaddress.IPv4Address(str(code_text).strip())
        except ValueError:
            raise DnsblInputError("zone %s: return code %r is not an IPv4 address" % (zone_name, code_text))
        if code not in LOOPBACK_NETWORK:
            raise DnsblInputError("zone %s: return code %s is outside 127.0.0.0/8" % (zone_name, code))
        if not isinstance(entry, dict) or entry.get("class") not in CODE_CLASSES:
            raise DnsblInputError(
                "zone %s: return code %s needs a class, one of %s" % (zone_name, code, ", ".join(CODE_CLASSES))
            )
        parsed[str(code)] = {"class": entry["class"], "meaning": str(entry.get("meaning") or entry["class"])}
    return parsed


def curated_zone(name):
    data = ZONES[name]
    return Zone(name, dict(data["codes"]), "curated", data["description"], data["delist_url"], data["notes"], data["source"])


def parse_zone(value):
    """A zone is a name (curated data if known, else generic) or a dict."""
    if not isinstance(value, dict):
        name = parse_zone_name(value)
        if name in ZONES:
            return curated_zone(name)
        return Zone(name, {}, "generic")
    unknown_keys = sorted(set(value) - set(ZONE_KEYS))
    if unknown_keys:
        raise DnsblInputError(
            "zone %r: unknown key(s) %s; allowed: %s" % (value.get("name"), ", ".join(unknown_keys), ", ".join(ZONE_KEYS))
        )
    if "name" not in value:
        raise DnsblInputError("zone %r has no name" % (value,))
    name = parse_zone_name(value["name"])
    codes_from = value.get("codes_from")
    if codes_from is not None and "codes" in value:
        raise DnsblInputError("zone %s: give either codes or codes_from, not both" % name)
    if codes_from is not None:
        base_name = parse_zone_name(codes_from)
        if base_name not in ZONES:
            raise DnsblInputError(
                "zone %s: codes_from %r is not a curated zone (known: %s)" % (name, codes_from, ", ".join(sorted(ZONES)))
            )
        base = curated_zone(base_name)
        return Zone(
            name, base.codes, "custom",
            value.get("description", base.description), value.get("delist_url", base.delist_url),
            value.get("notes", base.notes), "codes from %s" % base_name,
        )
    codes = _parse_codes(name, value["codes"]) if "codes" in value else {}
    return Zone(
        name, codes, "custom" if codes else "generic",
        value.get("description"), value.get("delist_url"), value.get("notes"), None,
    )


def _positive_number(name, value, number_type, minimum, maximum=None):
    try:
        number = number_type(value)
    except (TypeError, ValueError):
        raise DnsblInputError("invalid %s %r: not a number" % (name, value))
    if number < minimum or (maximum is not None and number > maximum):
        limit = "at least %s" % minimum if maximum is None else "between %s and %s" % (minimum, maximum)
        raise DnsblInputError("invalid %s %r: must be %s" % (name, value, limit))
    return number


def parse_request(addresses, zones=None, nameservers=None, timeout=3.0, retries=1, concurrency=64,
                  health_check=True, query_txt=True):
    """Validate every parameter before anything is sent; raise DnsblInputError naming the first bad value.

    ``nameservers`` None means "read /etc/resolv.conf when the check runs".
    """
    if isinstance(addresses, str) or not addresses:
        raise DnsblInputError("addresses must be a non-empty list of IP addresses")
    parsed_addresses = []
    for value in addresses:
        address = parse_address(value)
        if address not in parsed_addresses:
            parsed_addresses.append(address)

    parsed_zones = [parse_zone(value) for value in (DEFAULT_ZONES if zones is None else zones)]
    if not parsed_zones:
        raise DnsblInputError("zones must not be empty (leave it unset for the curated default list)")
    seen = set()
    families = set(address.version for address in parsed_addresses)
    for zone in parsed_zones:
        if zone.name in seen:
            raise DnsblInputError("zone %s is given more than once" % zone.name)
        seen.add(zone.name)
        for family in families:
            if len(zone.name) + QUERY_PREFIX_LENGTH[family] > MAX_NAME_LENGTH:
                raise DnsblInputError("zone %s is too long: IPv%d query names would exceed 253 characters" % (zone.name, family))

    parsed_nameservers = None
    if nameservers is not None:
        if isinstance(nameservers, str):
            raise DnsblInputError("nameservers must be a list")
        parsed_nameservers = []
        for value in nameservers:
            nameserver = parse_nameserver(value)
            if nameserver not in parsed_nameservers:
                parsed_nameservers.append(nameserver)
        if not parsed_nameservers:
            raise DnsblInputError("nameservers must not be empty (leave it unset for the system resolver)")

    return Request(
        parsed_addresses, parsed_zones, parsed_nameservers,
        timeout=_positive_number("timeout", timeout, float, 0.001),
        retries=_positive_number("retries", retries, int, 0, 10),
        concurrency=_positive_number("concurrency", concurrency, int, 1, MAX_CONCURRENCY),
        health_check=bool(health_check),
        query_txt=bool(query_txt),
    )


# ------------------------------------------------------------ query names


def reversed_address(address):
    """The labels a DNSBL expects: reversed octets, or 32 reversed nibbles for IPv6."""
    if address.version == 4:
        return ".".join(reversed(str(address).split(".")))
    return ".".join(reversed(address.exploded.replace(":", "")))


def query_name(address, zone_name):
    return "%s.%s" % (reversed_address(address), zone_name)


# ---------------------------------------------------------- classification


def classify_code(zone, code_text):
    """Return (class, meaning) of one A record a zone answered."""
    try:
        code = ipaddress.IPv4Address(code_text)
    except ValueError:
        return ERROR, "not an IPv4 address: %r" % (code_text,)
    documented = zone.codes.get(str(code))
    if documented is not None:
        return documented["class"], documented["meaning"]
    if code not in LOOPBACK_NETWORK:
        return ERROR, "answer outside 127.0.0.0/8: not a blocklist code (is a resolver rewriting answers?)"
    if code in GENERIC_ERROR_NETWORK or code in GENERIC_ERROR_CODES:
        return ERROR, "error code by the generic rule (127.0.0.1 and 127.255.255.x mean the query was refused)"
    if zone.codes:
        return LISTED, "undocumented return code (not in zone data %s): counted as a listing" % ZONE_DATA_VERSION
    return LISTED, "listed (no zone data: any 127.0.0.0/8 answer counts as a listing)"


def classify(zone, answer):
    """Turn one A lookup into a Verdict. Only NXDOMAIN is ``not_listed``."""
    if answer.rcode is None:
        return Verdict(STATUS_TIMEOUT, error=answer.error or "no answer")
    if answer.rcode == "NXDOMAIN":
        return Verdict(STATUS_NOT_LISTED)
    if answer.rcode != "NOERROR":
        return Verdict(STATUS_ERROR, error=answer.error or "server answered %s" % answer.rcode)
    if not answer.records:
        return Verdict(STATUS_ERROR, error="NOERROR without an A record: neither listed nor an NXDOMAIN")
    codes = []
    for record in answer.records:
        code_class, meaning = classify_code(zone, record)
        codes.append({"code": record, "class": code_class, "meaning": meaning})
    classes = set(code["class"] for code in codes)
    if ERROR in classes:
        errors = ["%s (%s)" % (code["code"], code["meaning"]) for code in codes if code["class"] == ERROR]
        return Verdict(STATUS_ERROR, codes, "error answer: " + "; ".join(errors))
    return Verdict(STATUS_LISTED if LISTED in classes else STATUS_POLICY, codes)


def health_problem(zone, listed_answer, not_listed_answer):
    """Check the RFC 5782 test points; return None when the zone can be trusted, else why not."""
    listed = classify(zone, listed_answer)
    not_listed = classify(zone, not_listed_answer)
    problems = []
    if listed.status == STATUS_NOT_LISTED:
        problems.append("test point 127.0.0.2 is not listed (zone dead, empty or misnamed)")
    elif listed.status not in (STATUS_LISTED, STATUS_POLICY):
        problems.append("test point 127.0.0.2: %s" % (listed.error or listed.status))
    if not_listed.status in (STATUS_LISTED, STATUS_POLICY) or not_listed.codes:
        problems.append(
            "test point 127.0.0.1 is answered with %s: queries are intercepted or rewritten"
            % ", ".join(code["code"] for code in not_listed.codes)
        )
    elif not_listed.status != STATUS_NOT_LISTED:
        problems.append("test point 127.0.0.1: %s" % (not_listed.error or not_listed.status))
    return "; ".join(problems) or None


def summarize(checks, zones_report, queries, seconds):
    counts = dict((status, 0) for status in STATUSES)
    listed_addresses, policy_addresses = [], []
    for check in checks:
        counts[check["status"]] += 1
        if check["status"] == STATUS_LISTED and check["address"] not in listed_addresses:
            listed_addresses.append(check["address"])
        if check["status"] == STATUS_POLICY and check["address"] not in policy_addresses:
            policy_addresses.append(check["address"])
    return {
        "addresses": len(set(check["address"] for check in checks)),
        "zones": len(zones_report),
        "checks": len(checks),
        "queries": queries,
        "seconds": round(seconds, 3),
        "counts": counts,
        "listed_addresses": listed_addresses,
        "policy_addresses": policy_addresses,
        "unhealthy_zones": [name for name, report in zones_report.items() if not report["healthy"]],
        "complete": counts[STATUS_ERROR] == 0 and counts[STATUS_TIMEOUT] == 0,
    }


def group_by_address(checks):
    by_address = {}
    for check in checks:
        entry = by_address.setdefault(check["address"], {"listed": False, "policy": False, "statuses": {}})
        entry["statuses"][check["zone"]] = check["status"]
        entry["listed"] = entry["listed"] or check["status"] == STATUS_LISTED
        entry["policy"] = entry["policy"] or check["status"] == STATUS_POLICY
    return by_address


# ------------------------------------------------------------------ network


def system_nameservers():
    """The nameservers of /etc/resolv.conf, as the system resolver would use them."""
    try:
        resolver = dns.resolver.Resolver()
    except (dns.resolver.NoResolverConfiguration, OSError) as error:
        raise DnsblInputError("no system resolver to use (%s): pass nameservers" % error)
    return [Nameserver(str(address), resolver.port) for address in resolver.nameservers]


class _UdpChannel(asyncio.DatagramProtocol):
    """One UDP socket per nameserver, shared by every query in flight.

    Opening a socket per query costs more than the query itself; responses
    are matched to their query by ID and question.
    """

    def __init__(self):
        self.transport = None
        self.waiting = {}

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        if len(data) < 2:
            return
        query_id = struct.unpack("!H", data[:2])[0]
        waiting = self.waiting.get(query_id)
        if waiting is None:
            return
        request, future = waiting
        if future.done():
            return
        try:
            response = dns.message.from_wire(data)
        except dns.exception.DNSException as error:
            future.set_exception(error)
            return
        if request.is_response(response):
            future.set_result(response)

    def error_received(self, exc):
        # On a connected socket this reports an ICMP error such as "port unreachable":
        # nothing answers at this address, so every query waiting on it has failed.
        for _request, future in self.waiting.values():
            if not future.done():
                future.set_exception(exc)

    def register(self, request, future):
        while request.id in self.waiting:
            request.id = random.getrandbits(16)
        self.waiting[request.id] = (request, future)

    def forget(self, request):
        self.waiting.pop(request.id, None)


class Resolver:
    """Sends queries to given nameservers and reports exactly what came back."""

    def __init__(self, nameservers, timeout, retries):
        self.nameservers = nameservers
        self.timeout = timeout
        self.retries = retries
        self.queries = 0
        self._channels = {}

    async def open(self):
        loop = asyncio.get_running_loop()
        for nameserver in self.nameservers:
            transport, channel = await loop.create_datagram_endpoint(
                _UdpChannel, remote_addr=(nameserver.address, nameserver.port)
            )
            self._channels[nameserver] = channel

    def close(self):
        for channel in self._channels.values():
            channel.transport.close()

    async def _ask_once(self, nameserver, name, rdtype):
        request = dns.message.make_query(name, rdtype)
        channel = self._channels[nameserver]
        future = asyncio.get_running_loop().create_future()
        channel.register(request, future)
        self.queries += 1
        try:
            channel.transport.sendto(request.to_wire())
            response = await asyncio.wait_for(future, self.timeout)
            if response.flags & dns.flags.TC:
                self.queries += 1
                response = await dns.asyncquery.tcp(request, nameserver.address, self.timeout, nameserver.port)
        except (asyncio.TimeoutError, dns.exception.Timeout):
            return Answer(None, nameserver=nameserver.label, error="no answer within %ss" % self.timeout)
        except (OSError, dns.exception.DNSException) as error:
            return Answer(LOCAL_FAILURE, nameserver=nameserver.label, error="%s: %s" % (type(error).__name__, error))
        finally:
            channel.forget(request)
        return Answer(dns.rcode.to_text(response.rcode()), _records(response, rdtype), nameserver.label)

    async def ask(self, name, rdtype, nameservers=None):
        """Try each nameserver in turn, ``retries`` extra rounds; SERVFAIL-like answers and timeouts move on."""
        answer = None
        for _round in range(self.retries + 1):
            for nameserver in nameservers or self.nameservers:
                attempt = await self._ask_once(nameserver, name, rdtype)
                if attempt.rcode in ("NOERROR", "NXDOMAIN"):
                    return attempt
                # Keep the most informative failure: an error code says more than silence.
                if answer is None or attempt.rcode is not None:
                    answer = attempt
        return answer


def _records(response, rdtype):
    """The answer's records of ``rdtype``, following CNAMEs (Spamhaus DQS uses them)."""
    wanted = dns.rdatatype.from_text(rdtype)
    name = response.question[0].name
    for _hop in range(16):
        rrset = _find_rrset(response, name, wanted)
        if rrset is not None:
            if wanted == dns.rdatatype.TXT:
                return [b"".join(rdata.strings).decode("utf-8", "replace") for rdata in rrset]
            return sorted((rdata.to_text() for rdata in rrset), key=_code_sort_key)
        cname = _find_rrset(response, name, dns.rdatatype.CNAME)
        if cname is None:
            break
        name = cname[0].target
    return []


def _find_rrset(response, name, rdtype):
    for rrset in response.answer:
        if rrset.name == name and rrset.rdtype == rdtype:
            return rrset
    return None


def _code_sort_key(code):
    try:
        return (0, int(ipaddress.ip_address(code)))
    except ValueError:
        return (1, 0)


async def _run_bounded(jobs, concurrency):
    """Run coroutine factories with at most ``concurrency`` running at once, keeping their order."""
    results = [None] * len(jobs)
    pending = iter(enumerate(jobs))

    async def worker():
        for index, job in pending:
            results[index] = await job()

    await asyncio.gather(*(worker() for _worker in range(min(concurrency, len(jobs)))))
    return results


# -------------------------------------------------------------------- check


async def _health_report(resolver, request):
    """Test every zone through every nameserver; return {zone name: report}."""
    pairs = [(zone, nameserver) for zone in request.zones for nameserver in request.nameservers]

    def job(zone, nameserver, test_point):
        async def run():
            return await resolver.ask(query_name(test_point, zone.name), "A", [nameserver])
        return run

    jobs = []
    for zone, nameserver in pairs:
        jobs.append(job(zone, nameserver, TEST_POINT_LISTED))
        jobs.append(job(zone, nameserver, TEST_POINT_NOT_LISTED))
    answers = await _run_bounded(jobs, request.concurrency)
    answer_pairs = zip(answers[0::2], answers[1::2])
    report = {}
    for (zone, nameserver), (listed, not_listed) in zip(pairs, answer_pairs):
        zone_report = report.setdefault(zone.name, dict(zone.describe(), healthy=False, problem=None, nameservers={}))
        problem = health_problem(zone, listed, not_listed)
        zone_report["nameservers"][nameserver.label] = {
            "healthy": problem is None,
            "problem": problem,
            "test_point_listed": classify(zone, listed).status,
            "test_point_not_listed": classify(zone, not_listed).status,
            "timed_out": listed.rcode is None or not_listed.rcode is None,
        }
    for zone_report in report.values():
        results = list(zone_report["nameservers"].values())
        zone_report["healthy"] = any(result["healthy"] for result in results)
        if not zone_report["healthy"]:
            zone_report["problem"] = "; ".join(
                "%s: %s" % (label, result["problem"]) for label, result in zone_report["nameservers"].items()
            )
    return report


async def _check_async(request):
    resolver = Resolver(request.nameservers, request.timeout, request.retries)
    await resolver.open()
    try:
        if request.health_check:
            zones_report = await _health_report(resolver, request)
        else:
            zones_report = dict(
                (zone.name, dict(zone.describe(), healthy=True, problem=None, nameservers={})) for zone in request.zones
            )
        usable = {}
        for zone in request.zones:
            labels = zones_report[zone.name]["nameservers"]
            usable[zone.name] = [ns for ns in request.nameservers if not labels or labels[ns.label]["healthy"]]

        def job(address, zone):
            async def run():
                return await _check_one(resolver, request, address, zone, usable[zone.name], zones_report[zone.name])
            return run

        checks = await _run_bounded(
            [job(address, zone) for address in request.addresses for zone in request.zones], request.concurrency
        )
        return checks, zones_report, resolver.queries
    finally:
        resolver.close()


async def _check_one(resolver, request, address, zone, nameservers, zone_report):
    check = {
        "address": str(address),
        "zone": zone.name,
        "query": query_name(address, zone.name),
        "status": None,
        "codes": [],
        "reason": None,
        "nameserver": None,
        "error": None,
        "delist_url": None,
    }
    if not nameservers:
        # The zone failed its health check everywhere: querying it would only produce noise.
        all_timed_out = all(result["timed_out"] for result in zone_report["nameservers"].values())
        check["status"] = STATUS_TIMEOUT if all_timed_out else STATUS_ERROR
        check["error"] = "not queried: zone failed its RFC 5782 health check (%s)" % zone_report["problem"]
        return check
    answer = await resolver.ask(check["query"], "A", nameservers)
    verdict = classify(zone, answer)
    check.update(status=verdict.status, codes=verdict.codes, nameserver=answer.nameserver, error=verdict.error)
    if verdict.status in (STATUS_LISTED, STATUS_POLICY):
        check["delist_url"] = zone.delist_url
        if request.query_txt:
            reasons = await resolver.ask(check["query"], "TXT", nameservers)
            if reasons.rcode == "NOERROR" and reasons.records:
                check["reason"] = " ".join(reasons.records)
    return check


def run_check(request):
    """Run a validated Request; return the result the module reports."""
    if not HAS_DNSPYTHON:
        raise DnspythonMissingError(DNSPYTHON_INSTALL_HINT)
    if request.nameservers is None:
        request.nameservers = system_nameservers()
        if not request.nameservers:
            raise DnsblInputError("no nameserver in /etc/resolv.conf: pass nameservers")
    started = time.monotonic()
    checks, zones_report, queries = asyncio.run(_check_async(request))
    summary = summarize(checks, zones_report, queries, time.monotonic() - started)
    return {
        "listed": bool(summary["listed_addresses"]),
        "checks": checks,
        "by_address": group_by_address(checks),
        "zones": zones_report,
        "nameservers": [nameserver.label for nameserver in request.nameservers],
        "summary": summary,
        "zone_data_version": ZONE_DATA_VERSION,
    }


def check(addresses, **options):
    """Validate, then run: the one call most users need."""
    return run_check(parse_request(addresses, **options))
