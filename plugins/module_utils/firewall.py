# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The firewall role's policy: validate its variables and render it for each backend.

Pure Python, no Ansible: the role's filter plugin calls ``build_plan`` on the
controller (where country CIDR files live). ``render_nftables`` turns the plan
into one self-replacing ``table inet hostguard``; the table's comment carries a
digest of its rules, so the host can tell whether the live table is the one
wanted without parsing rules back. ``render_firewalld`` turns the same plan into
firewalld permanent configuration: one zone and its hash:net ipsets.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re

TABLE_FAMILY = "inet"
DEFAULT_TABLE_NAME = "hostguard"
DIGEST_PREFIX = "hostguard.hosting.firewall sha256:"

# Ports of the services shared hosting servers expose. A service's own `ports`
# replace its preset's. ftp's passive range is added from the FTP server's
# configuration by the role (firewall_ftp_passive_ports).
PRESETS = {
    "ssh": {"ports": [22], "proto": "tcp"},
    "ftp": {"ports": [21], "proto": "tcp", "passive": True},
    "ftps": {"ports": [990], "proto": "tcp", "passive": True},
    "smtp": {"ports": [25], "proto": "tcp"},
    "submission": {"ports": [587], "proto": "tcp"},
    "smtps": {"ports": [465], "proto": "tcp"},
    "pop3": {"ports": [110], "proto": "tcp"},
    "pop3s": {"ports": [995], "proto": "tcp"},
    "imap": {"ports": [143], "proto": "tcp"},
    "imaps": {"ports": [993], "proto": "tcp"},
    "http": {"ports": [80], "proto": "tcp"},
    "https": {"ports": [443], "proto": "tcp"},
    "plesk": {"ports": [8443, 8880], "proto": "tcp"},
    "cpanel": {"ports": [2082, 2083], "proto": "tcp"},
    "cpanel_webmail": {"ports": [2095, 2096], "proto": "tcp"},
    "whm": {"ports": [2086, 2087], "proto": "tcp"},
    "directadmin": {"ports": [2222], "proto": "tcp"},
    "webmin": {"ports": [10000], "proto": "tcp"},
}
PROTOCOLS = ("tcp", "udp", "both")
SERVICE_KEYS = {"ports", "proto", "sources", "countries"}
SERVICE_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,30}$")
COUNTRY_RE = re.compile(r"^[A-Z]{2}$")
# Port 25 is how other servers deliver mail: restricting it loses mail.
# Restricting who may authenticate belongs on 587/465 (and to not offering AUTH on 25).
UNRESTRICTABLE_WITHOUT_CONSENT = {"smtp": 25}


class PolicyError(ValueError):
    """A variable of the firewall role is wrong; the message names it and its value."""


def parse_port(value, where):
    """A port or a 'low-high' range -> (low, high)."""
    if isinstance(value, bool):
        raise PolicyError(f"{where}: {value!r} is not a port")
    text = str(value).strip()
    match = re.fullmatch(r"(\d{1,5})(?:\s*-\s*(\d{1,5}))?", text)
    if not match:
        raise PolicyError(f"{where}: {value!r} is not a port or a port range like 9100-9110")
    low = int(match.group(1))
    high = int(match.group(2) or low)
    for port in (low, high):
        if not 1 <= port <= 65535:
            raise PolicyError(f"{where}: port {port} in {value!r} is out of range 1-65535")
    if low > high:
        raise PolicyError(f"{where}: {value!r} is a range whose start is above its end")
    return (low, high)


def parse_network(value, where):
    """A CIDR or an address -> ip_network, refusing host bits and other typos."""
    text = str(value).strip()
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError as error:
        hint = ""
        try:
            hint = f" (did you mean {ipaddress.ip_network(text, strict=False)}?)"
        except ValueError:
            pass
        raise PolicyError(f"{where}: {value!r} is not a network: {error}{hint}") from None


def read_cidr_file(path, where):
    """CIDRs, one a line; '#' starts a comment. Returns (network, 'file:line') pairs."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError as error:
        raise PolicyError(f"{where}: cannot read CIDR file {path!r}: {error.strerror}") from None
    networks = []
    for number, line in enumerate(lines, start=1):
        entry = line.split("#", 1)[0].strip()
        if entry:
            networks.append(parse_network(entry, f"{where} ({path} line {number})"))
    if not networks:
        raise PolicyError(f"{where}: CIDR file {path!r} lists no networks")
    return networks


def load_countries(country_cidrs, base_dir=None, variable="firewall_country_cidrs"):
    """firewall_country_cidrs (or another role's `variable` of the same shape) -> {code: [networks]}; a string value
    is a file on the controller."""
    if not isinstance(country_cidrs, dict):
        raise PolicyError(f"{variable}: expected a mapping of country code to CIDRs, got {country_cidrs!r}")
    countries = {}
    for code, value in country_cidrs.items():
        where = f"{variable}.{code}"
        if not COUNTRY_RE.match(str(code)):
            raise PolicyError(f"{where}: {code!r} is not a two-letter upper-case country code like JP")
        if isinstance(value, str):
            path = value if os.path.isabs(value) or not base_dir else os.path.join(base_dir, value)
            countries[code] = read_cidr_file(path, where)
        elif isinstance(value, list):
            countries[code] = [parse_network(item, f"{where}[{index}]") for index, item in enumerate(value)]
        else:
            raise PolicyError(f"{where}: expected a list of CIDRs or a file path, got {value!r}")
    return countries


def _sources(value, where):
    """'any' -> None; a list -> [networks]."""
    if value == "any":
        return None
    if value is None:
        return []
    if not isinstance(value, list):
        raise PolicyError(f"{where}: expected 'any' or a list of networks, got {value!r}")
    return [parse_network(item, f"{where}[{index}]") for index, item in enumerate(value)]


def build_plan(services, country_cidrs=None, admin_sources=None, guard=None, ftp_passive_ports=None,
               restrict_smtp=False, base_dir=None):
    """Validate the role's variables and return the policy as plain data.

    services: firewall_services. A service is reachable from firewall_admin_sources,
      from its `sources` (a list, 'any', or [] for nobody else), and from the
      networks of its `countries`; 'any' together with countries means any
      address in those countries.
    guard: {'source': address, 'port': port} kept open for the controller, or None.
    """
    if not isinstance(services, dict):
        raise PolicyError(f"firewall_services: expected a mapping of service name to settings, got {services!r}")
    countries = load_countries(country_cidrs or {}, base_dir)
    admin = _sources(list(admin_sources or []), "firewall_admin_sources")
    passive = parse_port(ftp_passive_ports, "firewall_ftp_passive_ports") if ftp_passive_ports else None

    planned = []
    for name, settings in services.items():
        where = f"firewall_services.{name}"
        if not SERVICE_NAME_RE.match(str(name)):
            raise PolicyError(f"{where}: {name!r} is not a service name (lower-case letters, digits, '_')")
        settings = settings or {}
        if not isinstance(settings, dict):
            raise PolicyError(f"{where}: expected a mapping with sources/countries/ports/proto, got {settings!r}")
        unknown = set(settings) - SERVICE_KEYS
        if unknown:
            raise PolicyError(f"{where}: unknown setting(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(SERVICE_KEYS))}")
        preset = PRESETS.get(name)
        if preset is None and "ports" not in settings:
            raise PolicyError(f"{where}: {name!r} is not a preset ({', '.join(sorted(PRESETS))}); give it `ports`")
        raw_ports = settings.get("ports", preset["ports"] if preset else None)
        if not isinstance(raw_ports, list) or not raw_ports:
            raise PolicyError(f"{where}.ports: expected a non-empty list of ports, got {raw_ports!r}")
        ports = [parse_port(port, f"{where}.ports[{index}]") for index, port in enumerate(raw_ports)]
        if preset and preset.get("passive") and passive and "ports" not in settings:
            ports.append(passive)
        proto = settings.get("proto", preset["proto"] if preset else "tcp")
        if proto not in PROTOCOLS:
            raise PolicyError(f"{where}.proto: {proto!r} is not one of {', '.join(PROTOCOLS)}")
        if "sources" not in settings and "countries" not in settings:
            raise PolicyError(f"{where}: say who may connect: sources (a list, 'any', or [] for nobody) and/or countries")
        sources = _sources(settings.get("sources", [] if settings.get("countries") else None), f"{where}.sources")
        service_countries = settings.get("countries") or []
        if not isinstance(service_countries, list):
            raise PolicyError(f"{where}.countries: expected a list of country codes, got {service_countries!r}")
        for code in service_countries:
            if code not in countries:
                raise PolicyError(f"{where}.countries: {code!r} has no CIDRs in firewall_country_cidrs "
                                  f"(known: {', '.join(sorted(countries)) or 'none'})")
        if service_countries and sources is None:
            sources = []  # 'any' narrowed to the countries
        restricted = sources is not None
        smtp_port = UNRESTRICTABLE_WITHOUT_CONSENT.get(name)
        if restricted and smtp_port and not restrict_smtp:
            raise PolicyError(f"{where}: restricting port {smtp_port} stops other servers delivering mail to this one; "
                              "restrict submission (587/465) instead, or set firewall_restrict_smtp: true")
        planned.append({
            "name": name,
            "ports": [f"{low}" if low == high else f"{low}-{high}" for low, high in sorted(set(ports))],
            "proto": proto,
            "open_to_all": not restricted,
            "sources_v4": [str(n) for n in sources or [] if n.version == 4],
            "sources_v6": [str(n) for n in sources or [] if n.version == 6],
            "countries": list(service_countries),
        })

    guard_plan = None
    if guard and guard.get("source"):
        source = parse_network(guard["source"], "lockout guard source")
        port = parse_port(guard.get("port", 22), "lockout guard port")[0]
        guard_plan = {"source": str(source.network_address), "family": source.version, "port": port,
                      "needed": not _guard_already_allowed(planned, admin, source, port)}
    used_countries = sorted({code for service in planned for code in service["countries"]})
    plan = {
        "table": DEFAULT_TABLE_NAME,
        "services": sorted(planned, key=lambda service: service["name"]),
        "admin_v4": [str(n) for n in admin or [] if n.version == 4],
        "admin_v6": [str(n) for n in admin or [] if n.version == 6],
        "countries": {code: {"v4": [str(n) for n in countries[code] if n.version == 4],
                             "v6": [str(n) for n in countries[code] if n.version == 6]}
                      for code in used_countries},
        "guard": guard_plan,
    }
    plan["ruleset"], plan["digest"] = render_nftables(plan)
    plan["firewalld"] = render_firewalld(plan)
    return plan


def _guard_already_allowed(services, admin, source, port):
    if any(source.subnet_of(net) for net in admin or [] if net.version == source.version):
        return True
    for service in services:
        covers_port = any(_port_in(port, spec) for spec in service["ports"]) and service["proto"] in ("tcp", "both")
        if not covers_port:
            continue
        if service["open_to_all"]:
            return True
        family_sources = service["sources_v4"] if source.version == 4 else service["sources_v6"]
        if any(source.subnet_of(ipaddress.ip_network(net)) for net in family_sources):
            return True
    return False


def _port_in(port, spec):
    low, _sep, high = spec.partition("-")
    return int(low) <= port <= int(high or low)


# --------------------------------------------------------------------------- nftables

ICMP_V4_TYPES = "echo-reply, destination-unreachable, echo-request, time-exceeded, parameter-problem"
ICMP_V6_TYPES = ("destination-unreachable, packet-too-big, time-exceeded, parameter-problem, echo-request, "
                 "echo-reply, nd-router-solicit, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert, "
                 "mld-listener-query, mld-listener-report, mld2-listener-report")


def _set(name, family, elements):
    if not elements:
        return []
    kind = "ipv4_addr" if family == 4 else "ipv6_addr"
    body = ",\n\t\t\t     ".join(elements)
    return [f"\tset {name} {{", f"\t\ttype {kind}", "\t\tflags interval", "\t\tauto-merge",
            f"\t\telements = {{ {body} }}", "\t}"]


def _match_ports(service):
    ports = ", ".join(service["ports"])
    ports = f"{{ {ports} }}" if len(service["ports"]) > 1 else ports
    if service["proto"] == "both":
        return f"meta l4proto {{ tcp, udp }} th dport {ports}"
    return f"{service['proto']} dport {ports}"


def render_nftables(plan):
    """The whole table as one nft script that replaces itself atomically, and its digest."""
    table = plan["table"]
    lines = []
    sets = []
    sets += _set("admin_v4", 4, plan["admin_v4"])
    sets += _set("admin_v6", 6, plan["admin_v6"])
    for code, networks in plan["countries"].items():
        sets += _set(f"country_{code.lower()}_v4", 4, networks["v4"])
        sets += _set(f"country_{code.lower()}_v6", 6, networks["v6"])
    for service in plan["services"]:
        sets += _set(f"svc_{service['name']}_v4", 4, service["sources_v4"])
        sets += _set(f"svc_{service['name']}_v6", 6, service["sources_v6"])

    rules = [
        'iif "lo" accept',
        "ct state established,related accept",
        "ct state invalid drop",
        f"meta l4proto icmp icmp type {{ {ICMP_V4_TYPES} }} accept",
        f"meta l4proto ipv6-icmp icmpv6 type {{ {ICMP_V6_TYPES} }} accept",
    ]
    guard = plan.get("guard")
    if guard:
        family = "ip" if guard["family"] == 4 else "ip6"
        rules.append(f'{family} saddr {guard["source"]} tcp dport {guard["port"]} accept comment "lockout guard: the controller"')
    for service in plan["services"]:
        match = _match_ports(service)
        if service["open_to_all"]:
            rules.append(f'{match} accept comment "{service["name"]}: any"')
            continue
        if plan["admin_v4"]:
            rules.append(f'ip saddr @admin_v4 {match} accept comment "{service["name"]}: admin"')
        if plan["admin_v6"]:
            rules.append(f'ip6 saddr @admin_v6 {match} accept comment "{service["name"]}: admin"')
        if service["sources_v4"]:
            rules.append(f'ip saddr @svc_{service["name"]}_v4 {match} accept comment "{service["name"]}: sources"')
        if service["sources_v6"]:
            rules.append(f'ip6 saddr @svc_{service["name"]}_v6 {match} accept comment "{service["name"]}: sources"')
        for code in service["countries"]:
            networks = plan["countries"][code]
            if networks["v4"]:
                rules.append(f'ip saddr @country_{code.lower()}_v4 {match} accept comment "{service["name"]}: {code}"')
            if networks["v6"]:
                rules.append(f'ip6 saddr @country_{code.lower()}_v6 {match} accept comment "{service["name"]}: {code}"')

    body = sets + [
        "\tchain input {",
        "\t\t# Every table's input chain must accept a packet for it to pass: this one",
        "\t\t# drops what it does not list, and leaves other tables' rules (fail2ban's) in force.",
        "\t\ttype filter hook input priority filter; policy drop;",
    ] + [f"\t\t{rule}" for rule in rules] + ["\t}"]
    digest = ruleset_digest("\n".join(body))
    lines += [
        "# Managed by hostguard.hosting.firewall: edits here are replaced on the next run.",
        "# Loading this file replaces only this table; other tables are left alone.",
        f"table {TABLE_FAMILY} {table}",
        f"delete table {TABLE_FAMILY} {table}",
        f"table {TABLE_FAMILY} {table} {{",
        f'\tcomment "{DIGEST_PREFIX}{digest}"',
    ] + body + ["}", ""]
    return "\n".join(lines), digest


# --------------------------------------------------------------------------- firewalld

FIREWALLD_ZONE = "hostguard"
FIREWALLD_IPSET_PREFIX = "hg_"
# ipset names are limited to 31 characters by the kernel's ipset (firewalld's other backend).
FIREWALLD_IPSET_NAME_MAX = 31
# firewalld's names (/usr/lib/firewalld/icmptypes) for the types render_nftables accepts
# (firewalld 1.3 has no MLD types; MLD only matters to multicast listeners).
FIREWALLD_ICMP_V4_TYPES = ["echo-reply", "destination-unreachable", "echo-request", "time-exceeded",
                           "parameter-problem"]
FIREWALLD_ICMP_V6_TYPES = ["destination-unreachable", "packet-too-big", "time-exceeded", "parameter-problem",
                           "echo-request", "echo-reply", "router-solicitation", "router-advertisement",
                           "neighbour-solicitation", "neighbour-advertisement"]


def firewalld_ipset_name(name):
    """hg_<name>, or when that is too long, its start and a hash (two sets never share a name)."""
    full = FIREWALLD_IPSET_PREFIX + name
    if len(full) <= FIREWALLD_IPSET_NAME_MAX:
        return full
    tag = hashlib.sha256(name.encode("utf-8")).hexdigest()[:8]
    return f"{full[:FIREWALLD_IPSET_NAME_MAX - 9]}_{tag}"


def _xml_text(value):
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _firewalld_ipset(name, family, elements):
    # firewalld refuses overlapping entries in a hash:net ipset (nft's auto-merge
    # joins them): merge them here, so any CIDR list the nftables backend takes works.
    networks = ipaddress.collapse_addresses(ipaddress.ip_network(element) for element in elements)
    lines = ['<?xml version="1.0" encoding="utf-8"?>',
             '<ipset type="hash:net">',
             f"  <short>{name}</short>",
             "  <description>Managed by hostguard.hosting.firewall: edits here are replaced on the next run."
             "</description>",
             f'  <option name="family" value="{"inet" if family == 4 else "inet6"}"/>']
    lines += [f"  <entry>{network}</entry>" for network in networks]
    return "\n".join(lines + ["</ipset>", ""])


def _firewalld_ports(service):
    protocols = ["tcp", "udp"] if service["proto"] == "both" else [service["proto"]]
    return [(proto, port) for proto in protocols for port in service["ports"]]


def render_firewalld(plan):
    """The policy as firewalld permanent configuration: {path relative to /etc/firewalld: XML}.

    One zone of the role's own with target DROP (the role makes it the default
    zone), and one hash:net ipset per nftables set of render_nftables, each
    matched by one rich rule per port: a source list of any length costs one
    set lookup, not one rule per CIDR. firewalld itself accepts loopback and
    established connections before any zone.
    """
    files = {}

    def ipset(name, family, elements):
        if not elements:
            return None
        set_name = firewalld_ipset_name(name)
        files[f"ipsets/{set_name}.xml"] = _firewalld_ipset(set_name, family, elements)
        return set_name

    rules = [f'  <rule family="ipv4"><icmp-type name="{icmp}"/><accept/></rule>' for icmp in FIREWALLD_ICMP_V4_TYPES]
    rules += [f'  <rule family="ipv6"><icmp-type name="{icmp}"/><accept/></rule>' for icmp in FIREWALLD_ICMP_V6_TYPES]
    guard = plan.get("guard")
    if guard:
        rules.append(f'  <rule family="{"ipv4" if guard["family"] == 4 else "ipv6"}">'
                     f'<source address="{_xml_text(guard["source"])}"/>'
                     f'<port protocol="tcp" port="{guard["port"]}"/><accept/></rule>')
    admin = [(ipset("admin_v4", 4, plan["admin_v4"]), "ipv4"), (ipset("admin_v6", 6, plan["admin_v6"]), "ipv6")]
    country_sets = {}
    for code, networks in plan["countries"].items():
        country_sets[code] = [(ipset(f"country_{code.lower()}_v4", 4, networks["v4"]), "ipv4"),
                              (ipset(f"country_{code.lower()}_v6", 6, networks["v6"]), "ipv6")]
    open_ports = []
    for service in plan["services"]:
        ports = _firewalld_ports(service)
        if service["open_to_all"]:
            open_ports += ports
            continue
        sources = admin + [(ipset(f"svc_{service['name']}_v4", 4, service["sources_v4"]), "ipv4"),
                           (ipset(f"svc_{service['name']}_v6", 6, service["sources_v6"]), "ipv6")]
        for code in service["countries"]:
            sources += country_sets[code]
        for set_name, family in sources:
            if set_name:
                rules += [f'  <rule family="{family}"><source ipset="{set_name}"/>'
                          f'<port protocol="{proto}" port="{port}"/><accept/></rule>' for proto, port in ports]
    zone = ['<?xml version="1.0" encoding="utf-8"?>',
            '<zone target="DROP">',
            f"  <short>{FIREWALLD_ZONE}</short>",
            "  <description>Managed by hostguard.hosting.firewall: edits here are replaced on the next run."
            "</description>"]
    zone += [f'  <port protocol="{proto}" port="{port}"/>' for proto, port in sorted(set(open_ports))]
    files[f"zones/{FIREWALLD_ZONE}.xml"] = "\n".join(zone + rules + ["</zone>", ""])
    return dict(sorted(files.items()))


def ruleset_digest(text):
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def digest_from_comment(comment):
    """The digest a live table carries in its comment, or None when it is not ours."""
    if comment and comment.startswith(DIGEST_PREFIX):
        return comment[len(DIGEST_PREFIX):]
    return None


# --------------------------------------------------------------------------- the record the audit reads

def policy_record(plan, backend, ruleset_path=None):
    """What the role leaves on the host for the audit: who may reach which port, without the country CIDRs.
    ruleset_path: the nftables backend's script, whose digest the live table must carry."""
    guard = plan.get("guard")
    return {
        "backend": backend,
        "digest": plan["digest"],
        "ruleset_path": ruleset_path if backend == "nftables" else None,
        "admin_sources": plan["admin_v4"] + plan["admin_v6"],
        "guard": {"source": guard["source"], "port": guard["port"]} if guard and guard["needed"] else None,
        "services": [{"name": service["name"], "ports": service["ports"], "proto": service["proto"],
                      "open_to_all": service["open_to_all"],
                      "sources": service["sources_v4"] + service["sources_v6"],
                      "countries": service["countries"]} for service in plan["services"]],
    }


def port_exposure(port, record):
    """How the recorded policy treats new TCP connections to a port.

    {"firewall": "open" | "restricted" | "closed", "services": [names], "sources": [...], "countries": [...]};
    sources include the admin networks (always let in to listed services) and the lockout guard.
    """
    port = int(port)
    services = [service for service in record["services"]
                if service["proto"] in ("tcp", "both") and any(_port_in(port, spec) for spec in service["ports"])]
    guard = record.get("guard")
    guarded = [guard["source"]] if guard and int(guard["port"]) == port else []
    names = [service["name"] for service in services]
    if any(service["open_to_all"] for service in services):
        return {"firewall": "open", "services": names, "sources": [], "countries": []}
    if not services:
        return {"firewall": "restricted" if guarded else "closed", "services": [], "sources": guarded, "countries": []}
    sources = list(record["admin_sources"])
    for service in services:
        sources += [source for source in service["sources"] if source not in sources]
    sources += [source for source in guarded if source not in sources]
    countries = sorted({code for service in services for code in service["countries"]})
    return {"firewall": "restricted" if sources or countries else "closed", "services": names,
            "sources": sources, "countries": countries}


def exposure_findings(findings, record):
    """Each audit finding (a dict with `port` and `advice`) with what the firewall policy in force does
    with its port: `firewall` is open, restricted or closed (`none` when no policy of the role is in
    force: record is empty), with `firewall_sources`, `firewall_countries`, `firewall_services`, and
    `summary`, one line for the operator (the advice, unless the firewall already restricts the port)."""
    exposed = []
    for finding in findings:
        exposure = port_exposure(finding["port"], record) if record else {
            "firewall": "none", "sources": [], "countries": [], "services": []}
        exposed.append(dict(finding, firewall=exposure["firewall"], firewall_sources=exposure["sources"],
                            firewall_countries=exposure["countries"], firewall_services=exposure["services"],
                            summary=_exposure_summary(finding.get("advice", ""), exposure)))
    return exposed


def _exposure_summary(advice, exposure):
    if exposure["firewall"] == "closed":
        return "the firewall lets nobody in"
    if exposure["firewall"] == "restricted":
        allowed = exposure["sources"] + ["addresses in %s" % code for code in exposure["countries"]]
        return "the firewall lets in only " + ", ".join(allowed)
    if exposure["firewall"] == "open":
        return "%s (the firewall lets everyone in)" % advice
    return advice
