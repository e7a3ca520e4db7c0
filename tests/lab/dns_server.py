"""The lab's DNS server: DNSBL test zones plus the lab's own host records.

It is authoritative for everything it is asked: names it has no data for get
NXDOMAIN at once, because the lab's hosts use it as their only resolver and a
query left unanswered would hang Postfix's reverse lookups. The only silences
are the ones a zone asks for (``behaviour: drop``), to test timeouts.

Usage::

    python tests/lab/dns_server.py --zones tests/lab/dns_zones.yml \\
        --listen 10.213.0.2:53 --listen '[fdbb:6a7:0::2]:53'

``--listen`` is repeatable (``ip:port`` or ``[ipv6]:port``); each address is
served over UDP and TCP on the same port. Port 0 picks a free port; the one
line logged to stderr at start names the ports actually bound, e.g.
``dns_server: 12 zones, 3 names; listening on 127.0.0.1:40123 (udp+tcp)``.
SIGTERM or SIGINT stops it with exit status 0. The zone file format is
described at the top of tests/lab/dns_zones.yml.

``--runtime-listings FILE`` lets a test list an address while the server runs
(a blocklisting that appears, as the watch must notice): FILE maps a zone of
the zone file to listings in the zone file's format, ``{zen.spamhaus.org:
[{address: 10.0.0.5, a: 127.0.0.2}]}``. It is read again whenever it changes;
its listings come before the zone file's, a missing file lists nothing, and a
malformed one is logged and ignored (the last good one stays).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import os
import signal
import socket
import struct
import sys
from dataclasses import dataclass, field

import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.reversename
import yaml

BEHAVIOURS = ("answer", "drop", "refuse", "servfail")
FILE_KEYS = ("ttl", "hosts", "records", "zones")
ZONE_KEYS = ("name", "behaviour", "listings")
LISTING_KEYS = ("address", "network", "a", "txt")
RECORD_KEYS = ("name", "type", "value", "values")
DEFAULT_TTL = 60
# A TCP client that sends nothing for this long is dropped, so idle
# connections cannot pile up in a long-running lab.
TCP_IDLE_SECONDS = 30


class ZoneFileError(ValueError):
    """The zone file is malformed; the message names the offending entry."""


@dataclass(frozen=True)
class Listing:
    """What a listed address answers: A codes (may be empty: NODATA) and TXT."""

    codes: tuple[str, ...]
    reason: str | None


@dataclass
class TestZone:
    name: dns.name.Name
    behaviour: str
    exact: dict = field(default_factory=dict)
    networks: list = field(default_factory=list)

    def listing_for(self, address) -> Listing | None:
        listing = self.exact.get(address)
        if listing is not None:
            return listing
        for network, network_listing in self.networks:
            if address.version == network.version and address in network:
                return network_listing
        return None


def _listing_from_entry(zone_name: str, entry: dict) -> Listing:
    codes = entry.get("a", [])
    if isinstance(codes, str):
        codes = [codes]
    for code in codes:
        try:
            ipaddress.IPv4Address(code)
        except ValueError:
            raise ZoneFileError(f"zone {zone_name}: answer {code!r} is not an IPv4 address") from None
    reason = entry.get("txt")
    return Listing(tuple(codes), None if reason is None else str(reason))


def _check_keys(where: str, entry, allowed: tuple[str, ...]) -> None:
    """Reject unknown keys, so a typo in the zone file fails loudly instead of serving less."""
    if not isinstance(entry, dict):
        raise ZoneFileError(f"{where}: expected a mapping, got {entry!r}")
    unknown = sorted(set(entry) - set(allowed))
    if unknown:
        raise ZoneFileError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")


def _parse_zone(entry: dict) -> TestZone:
    _check_keys(f"zone {entry.get('name') if isinstance(entry, dict) else entry!r}", entry, ZONE_KEYS)
    zone_name = entry.get("name")
    if not zone_name:
        raise ZoneFileError(f"zone without a name: {entry!r}")
    behaviour = entry.get("behaviour", "answer")
    if behaviour not in BEHAVIOURS:
        raise ZoneFileError(f"zone {zone_name}: behaviour {behaviour!r} is not one of {', '.join(BEHAVIOURS)}")
    zone = TestZone(dns.name.from_text(zone_name), behaviour)
    for listing_entry in entry.get("listings", []):
        _check_keys(f"zone {zone_name}", listing_entry, LISTING_KEYS)
        listing = _listing_from_entry(zone_name, listing_entry)
        try:
            if "address" in listing_entry:
                zone.exact[ipaddress.ip_address(listing_entry["address"])] = listing
            elif "network" in listing_entry:
                zone.networks.append((ipaddress.ip_network(listing_entry["network"]), listing))
            else:
                raise ZoneFileError(f"zone {zone_name}: listing without address or network: {listing_entry!r}")
        except ValueError as error:
            if isinstance(error, ZoneFileError):
                raise
            raise ZoneFileError(f"zone {zone_name}: {error}") from None
    return zone


def _add_rrset(records: dict, name: str, rdtype: str, values: list[str], ttl: int) -> None:
    # Names in the file are absolute whether or not they end in a dot, in owners and in data (PTR, MX, CNAME).
    rrset = dns.rrset.from_text_list(dns.name.from_text(name), ttl, "IN", rdtype, values,
                                     origin=dns.name.root, relativize=False)
    existing = records.setdefault(rrset.name, {}).get(rrset.rdtype)
    if existing is None:
        records[rrset.name][rrset.rdtype] = rrset
    else:
        existing.union_update(rrset)


def load_zone_file(path: str) -> tuple[list[TestZone], dict, int]:
    """Return the DNSBL zones (longest name first), the plain records and the TTL."""
    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle) or {}
    _check_keys(path, data, FILE_KEYS)
    ttl = int(data.get("ttl", DEFAULT_TTL))
    zones = [_parse_zone(entry) for entry in data.get("zones", [])]
    # Longest first, so a zone nested inside another wins its own names.
    zones.sort(key=lambda zone: len(zone.name), reverse=True)

    records: dict = {}
    for host_name, addresses in (data.get("hosts") or {}).items():
        for address_text in [addresses] if isinstance(addresses, str) else addresses:
            address = ipaddress.ip_address(address_text)
            _add_rrset(records, host_name, "A" if address.version == 4 else "AAAA", [str(address)], ttl)
            _add_rrset(records, dns.reversename.from_address(str(address)).to_text(), "PTR", [host_name], ttl)
    for record in data.get("records") or []:
        try:
            _check_keys("record", record, RECORD_KEYS)
            values = record["values"] if "values" in record else [record["value"]]
            _add_rrset(records, record["name"], record["type"], [str(value) for value in values], ttl)
        except (KeyError, dns.exception.DNSException) as error:
            raise ZoneFileError(f"record {record!r}: {error}") from None
    return zones, records, ttl


def _address_from_labels(labels: tuple[bytes, ...]):
    """Turn the labels in front of a DNSBL zone back into the queried address."""
    try:
        text_labels = [label.decode("ascii") for label in reversed(labels)]
        if len(text_labels) == 4 and all(label.isdigit() for label in text_labels):
            return ipaddress.IPv4Address(".".join(text_labels))
        if len(text_labels) == 32 and all(len(label) == 1 for label in text_labels):
            return ipaddress.IPv6Address(int("".join(text_labels), 16))
    except ValueError:
        pass
    return None


class Authority:
    """Builds the response to one query; shared by the UDP and TCP front ends."""

    def __init__(self, zones: list[TestZone], records: dict, ttl: int, log_queries: bool,
                 runtime_listings: str | None = None):
        self.zones = zones
        self.runtime_path = runtime_listings
        self.runtime_stamp = None
        self.runtime: dict = {}
        self.records = records
        self.ttl = ttl
        self.log_queries = log_queries
        self.soa_by_zone = {
            zone.name: dns.rrset.from_text(
                zone.name, ttl, "IN", "SOA", f"ns.{zone.name} hostmaster.{zone.name} 1 3600 600 86400 {ttl}"
            )
            for zone in zones
        }

    def respond(self, wire: bytes) -> bytes | None:
        """Return the response's wire form, or None to stay silent."""
        try:
            query = dns.message.from_wire(wire)
        except dns.exception.DNSException:
            return self._format_error(wire)
        if query.flags & dns.flags.QR:
            return None  # a response, not a query: answering it could start a loop
        response = dns.message.make_response(query)
        response.flags |= dns.flags.RA
        if query.opcode() != dns.opcode.QUERY:
            response.set_rcode(dns.rcode.NOTIMP)
        elif len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
        else:
            try:
                if not self._answer(query.question[0], response):
                    return None
            except Exception as error:  # pylint: disable=broad-except
                # Whatever went wrong, the client gets an answer now rather than a timeout.
                print(f"dns_server: {query.question[0]}: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
                response = dns.message.make_response(query)
                response.set_rcode(dns.rcode.SERVFAIL)
        if self.log_queries:
            question = query.question[0] if query.question else "(no question)"
            print(f"dns_server: {question} -> {dns.rcode.to_text(response.rcode())}", file=sys.stderr, flush=True)
        return response.to_wire(max_size=65535)

    @staticmethod
    def _format_error(wire: bytes) -> bytes | None:
        if len(wire) < 12:
            return None
        (query_id,) = struct.unpack("!H", wire[:2])
        response = dns.message.Message(id=query_id)
        response.flags = dns.flags.QR
        response.set_rcode(dns.rcode.FORMERR)
        return response.to_wire()

    def _answer(self, question: dns.rrset.RRset, response: dns.message.Message) -> bool:
        qname, rdtype = question.name, question.rdtype
        if question.rdclass != dns.rdataclass.IN:
            response.set_rcode(dns.rcode.REFUSED)
            return True
        for zone in self.zones:
            if qname.is_subdomain(zone.name):
                return self._answer_in_zone(zone, qname, rdtype, response)
        by_type = self.records.get(qname)
        if by_type is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif rdtype in by_type:
            response.answer.append(by_type[rdtype])
        response.flags |= dns.flags.AA
        return True

    def _answer_in_zone(self, zone: TestZone, qname, rdtype, response) -> bool:
        if zone.behaviour == "drop":
            return False
        if zone.behaviour == "refuse":
            response.set_rcode(dns.rcode.REFUSED)
            return True
        if zone.behaviour == "servfail":
            response.set_rcode(dns.rcode.SERVFAIL)
            return True
        response.flags |= dns.flags.AA
        soa = self.soa_by_zone[zone.name]
        if qname == zone.name:
            if rdtype == dns.rdatatype.SOA:
                response.answer.append(soa)
            else:
                response.authority.append(soa)
            return True
        address = _address_from_labels(qname.relativize(zone.name).labels)
        listing = None
        if address is not None:
            listing = self._runtime_listings().get(zone.name, {}).get(address) or zone.listing_for(address)
        if listing is None:
            response.set_rcode(dns.rcode.NXDOMAIN)
            response.authority.append(soa)
        elif rdtype == dns.rdatatype.A and listing.codes:
            response.answer.append(dns.rrset.from_text_list(qname, self.ttl, "IN", "A", listing.codes))
        elif rdtype == dns.rdatatype.TXT and listing.reason is not None:
            response.answer.append(dns.rrset.from_text_list(qname, self.ttl, "IN", "TXT", [_quote_txt(listing.reason)]))
        else:
            response.authority.append(soa)
        return True

    def _runtime_listings(self) -> dict:
        """{zone name: {address: Listing}} from the runtime listings file, read again when it changed."""
        if self.runtime_path is None:
            return {}
        try:
            status = os.stat(self.runtime_path)
            stamp = (status.st_ino, status.st_mtime_ns, status.st_size)
        except FileNotFoundError:
            stamp = None
        if stamp == self.runtime_stamp:
            return self.runtime
        try:
            self.runtime = {} if stamp is None else load_runtime_listings(self.runtime_path, self.zones)
        except (OSError, ZoneFileError, yaml.YAMLError) as error:
            print(f"dns_server: {self.runtime_path}: {error} (keeping the listings read before)",
                  file=sys.stderr, flush=True)
        self.runtime_stamp = stamp
        return self.runtime


def load_runtime_listings(path: str, zones: list[TestZone]) -> dict:
    """{zone name: {address: Listing}}: exact-address listings for zones the zone file serves."""
    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle) or {}
    if not isinstance(data, dict):
        raise ZoneFileError(f"expected a mapping of zone names to listings, got {data!r}")
    served = {zone.name: zone for zone in zones}
    listings: dict = {}
    for zone_text, entries in data.items():
        name = dns.name.from_text(str(zone_text))
        if name not in served:
            raise ZoneFileError(f"zone {zone_text} is not in the zone file")
        for entry in entries or []:
            _check_keys(f"zone {zone_text}", entry, ("address", "a", "txt"))
            try:
                address = ipaddress.ip_address(entry["address"])
            except (KeyError, ValueError) as error:
                raise ZoneFileError(f"zone {zone_text}: listing {entry!r}: {error}") from None
            listings.setdefault(name, {})[address] = _listing_from_entry(str(zone_text), entry)
    return listings


def _quote_txt(reason: str) -> str:
    """TXT presentation form; a character-string holds at most 255 bytes, so long reasons are split."""
    encoded = reason.encode("utf-8")
    chunks = [encoded[start:start + 255].decode("utf-8", "ignore") for start in range(0, len(encoded), 255)] or [""]
    return " ".join('"' + chunk.replace("\\", "\\\\").replace('"', '\\"') + '"' for chunk in chunks)


class UdpFrontEnd(asyncio.DatagramProtocol):
    def __init__(self, authority: Authority):
        self.authority = authority
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        wire = self.authority.respond(data)
        if wire is None:
            return
        if len(wire) > 512 and not _has_edns(data):
            wire = _truncated(data)
        if wire is not None:
            self.transport.sendto(wire, addr)


def _has_edns(query_wire: bytes) -> bool:
    # ARCOUNT > 0 is enough here: the only additional record a query carries is OPT.
    return len(query_wire) >= 12 and struct.unpack("!H", query_wire[10:12])[0] > 0


def _truncated(query_wire: bytes) -> bytes | None:
    """An empty response with TC set, telling a classic client to retry over TCP."""
    query = dns.message.from_wire(query_wire)
    response = dns.message.make_response(query)
    response.flags |= dns.flags.TC | dns.flags.RA
    return response.to_wire()


async def _serve_tcp_client(authority: Authority, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
    try:
        while True:
            header = await asyncio.wait_for(reader.readexactly(2), TCP_IDLE_SECONDS)
            (length,) = struct.unpack("!H", header)
            data = await asyncio.wait_for(reader.readexactly(length), TCP_IDLE_SECONDS)
            wire = authority.respond(data)
            if wire is not None:
                writer.write(struct.pack("!H", len(wire)) + wire)
                await writer.drain()
    except (asyncio.IncompleteReadError, asyncio.TimeoutError, ConnectionError):
        pass
    finally:
        writer.close()


def parse_listen(text: str) -> tuple[str, int]:
    """Parse ``ip:port`` or ``[ipv6]:port``."""
    if text.startswith("["):
        host, separator, port_text = text[1:].partition("]:")
    else:
        host, separator, port_text = text.rpartition(":")
    try:
        if not separator:
            raise ValueError
        address = ipaddress.ip_address(host)
        port = int(port_text)
        if not 0 <= port <= 65535:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid --listen {text!r}: expected ip:port or [ipv6]:port") from None
    return str(address), port


async def _bind(loop, authority: Authority, host: str, port: int):
    """Bind UDP, then TCP on the same port (the UDP one when port is 0)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # With port 0 the kernel may give UDP a port that is taken for TCP; try again.
    for _attempt in range(20):
        udp_transport, _protocol = await loop.create_datagram_endpoint(
            lambda: UdpFrontEnd(authority), local_addr=(host, port), family=family
        )
        bound_port = udp_transport.get_extra_info("sockname")[1]
        try:
            tcp_server = await asyncio.start_server(
                lambda reader, writer: _serve_tcp_client(authority, reader, writer),
                host=host, port=bound_port, family=family, reuse_address=True,
            )
        except OSError:
            udp_transport.close()
            if port != 0:
                raise
            continue
        return udp_transport, tcp_server, bound_port
    raise OSError(f"no port free for both UDP and TCP on {host}")


async def serve(zone_file: str, listens: list[tuple[str, int]], log_queries: bool,
                runtime_listings: str | None = None) -> None:
    zones, records, ttl = load_zone_file(zone_file)
    authority = Authority(zones, records, ttl, log_queries, runtime_listings)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signal_number, stop.set)

    bound = []
    try:
        for host, port in listens:
            bound.append(await _bind(loop, authority, host, port))
        endpoints = ", ".join(
            f"{'[' + host + ']' if ':' in host else host}:{bound_port}"
            for (host, _port), (_udp, _tcp, bound_port) in zip(listens, bound)
        )
        print(f"dns_server: {len(zones)} zones, {len(records)} names; listening on {endpoints} (udp+tcp)",
              file=sys.stderr, flush=True)
        await stop.wait()
    finally:
        for udp_transport, tcp_server, _port in bound:
            udp_transport.close()
            tcp_server.close()
            await tcp_server.wait_closed()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--zones", required=True, help="zone file (YAML), e.g. tests/lab/dns_zones.yml")
    parser.add_argument("--listen", required=True, action="append", type=parse_listen,
                        help="ip:port or [ipv6]:port to serve on (UDP and TCP); repeatable; port 0 = any free port")
    parser.add_argument("--log-queries", action="store_true", help="log every query and its rcode to stderr")
    parser.add_argument("--runtime-listings", metavar="FILE",
                        help="listings tests add while the server runs (YAML: {zone: [{address, a, txt}]})")
    arguments = parser.parse_args(argv)
    try:
        asyncio.run(serve(arguments.zones, arguments.listen, arguments.log_queries, arguments.runtime_listings))
    except (OSError, ZoneFileError, yaml.YAMLError) as error:
        print(f"dns_server: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
