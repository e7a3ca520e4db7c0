# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Curated DNS blocklist zones: return codes, their meaning and their class.

Each code is classed as ``listed`` (an abuse listing of the address itself),
``policy`` (a listing that says nothing about abuse by this address, such as
Spamhaus PBL or UCEPROTECT's neighbourhood levels) or ``error`` (the zone
refused to answer the question; never a listing).

The data was compiled from each operator's own usage documentation, named in
each zone's ``source``. Bump ZONE_DATA_VERSION whenever a code or zone changes;
the module returns it, so an audit records which data classified its results.

Left out on purpose: SORBS (dnsbl.sorbs.net and its sub-zones). Its owner shut
the service down in 2024, and querying a dead zone yields answers that mean
nothing. A zone can still be passed by name; it is then classified by the
generic rule in dnsbl.py and must pass its RFC 5782 health check like any other.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

ZONE_DATA_VERSION = "2026.11.25"

LISTED = "listed"
POLICY = "policy"
ERROR = "error"
CODE_CLASSES = (LISTED, POLICY, ERROR)

ZONES = {
    "zen.spamhaus.org": {
        "default": True,
        "description": "Spamhaus ZEN: SBL, CSS, XBL, DROP and PBL in one zone",
        "codes": {
            "127.0.0.2": {"class": LISTED, "meaning": "SBL: Spamhaus-verified spam source or spam operation"},
            "127.0.0.3": {"class": LISTED, "meaning": "CSS: low-reputation or snowshoe spam source (part of SBL)"},
            "127.0.0.4": {"class": LISTED, "meaning": "XBL: exploited host (malware, proxy, compromised account)"},
            "127.0.0.5": {"class": LISTED, "meaning": "XBL: exploited host (reserved XBL code)"},
            "127.0.0.6": {"class": LISTED, "meaning": "XBL: exploited host (reserved XBL code)"},
            "127.0.0.7": {"class": LISTED, "meaning": "XBL: exploited host (reserved XBL code)"},
            "127.0.0.9": {"class": LISTED, "meaning": "DROP/EDROP: hijacked or criminal netblock"},
            "127.0.0.10": {
                "class": POLICY,
                "meaning": "PBL (ISP maintained): end-user range that should not send mail directly to MX hosts",
            },
            "127.0.0.11": {
                "class": POLICY,
                "meaning": "PBL (Spamhaus maintained): end-user range that should not send mail directly to MX hosts",
            },
            "127.255.255.252": {"class": ERROR, "meaning": "typo in the DNSBL name: the zone queried does not exist at Spamhaus"},
            "127.255.255.254": {
                "class": ERROR,
                "meaning": "query came through a public or open resolver, which Spamhaus refuses: "
                           "query through a local recursive resolver (or use Spamhaus DQS)",
            },
            "127.255.255.255": {"class": ERROR, "meaning": "excessive number of queries from this resolver: use Spamhaus DQS"},
        },
        "delist_url": "https://check.spamhaus.org/",
        "notes": "Public mirrors refuse public resolvers (127.255.255.254). With a Spamhaus DQS key, "
                 "pass {name: KEY.zen.dq.spamhaus.net, codes_from: zen.spamhaus.org}. "
                 "A PBL listing is policy, not abuse: it matters only for mail sent directly to MX hosts.",
        "source": "https://www.spamhaus.org/faq/section/DNSBL%20Usage (return codes); "
                  "https://www.spamhaus.org/news/article/807/ (error codes 127.255.255.252/254/255)",
    },
    "bl.spamcop.net": {
        "default": True,
        "description": "SpamCop Blocking List: sources reported by SpamCop users and spam traps",
        "codes": {
            "127.0.0.2": {"class": LISTED, "meaning": "reported as a spam source to SpamCop"},
        },
        "delist_url": "https://www.spamcop.net/bl.shtml",
        "notes": "Listings expire by themselves about 24 hours after the reports stop.",
        "source": "https://www.spamcop.net/bl.shtml",
    },
    "b.barracudacentral.org": {
        "default": True,
        "description": "Barracuda Reputation Block List (BRBL)",
        "codes": {
            "127.0.0.2": {"class": LISTED, "meaning": "poor reputation in the Barracuda Reputation System"},
        },
        "delist_url": "https://www.barracudacentral.org/rbl/removal-request",
        "notes": "Free, but the resolver's IP address must be registered at "
                 "https://www.barracudacentral.org/account/register; from an unregistered resolver "
                 "expect errors or timeouts, which this module reports as such, never as clean.",
        "source": "https://www.barracudacentral.org/rbl/how-to-use",
    },
    "psbl.surriel.com": {
        "default": True,
        "description": "Passive Spam Block List: addresses that sent mail to its spam traps",
        "codes": {
            "127.0.0.2": {"class": LISTED, "meaning": "sent mail to a PSBL spam trap"},
        },
        "delist_url": "https://psbl.org/remove",
        "notes": "Anyone can remove an address through the web form.",
        "source": "https://psbl.surriel.com/howto/",
    },
    "bl.mailspike.net": {
        "default": True,
        "description": "Mailspike blacklist: zero-hour spam waves plus the worst reputation levels (L3-L5)",
        "codes": {
            "127.0.0.2": {"class": LISTED, "meaning": "zero-hour data: part of a distributed spam wave"},
            "127.0.0.10": {"class": LISTED, "meaning": "reputation L5: worst possible reputation"},
            "127.0.0.11": {"class": LISTED, "meaning": "reputation L4: very bad reputation"},
            "127.0.0.12": {"class": LISTED, "meaning": "reputation L3: bad reputation"},
        },
        "delist_url": "https://mailspike.org/lookup.html",
        "notes": "Reputation recovers by itself once the spam stops; zero-hour listings expire quickly.",
        "source": "https://mailspike.org/ (IP lists: bl combines the zero-hour list with rep.mailspike.net L3-L5)",
    },
    "dnsbl-1.uceprotect.net": {
        "default": True,
        "description": "UCEPROTECT level 1: single addresses seen sending to its spam traps",
        "codes": {
            "127.0.0.2": {"class": LISTED, "meaning": "UCEPROTECT level 1: this address sent spam"},
        },
        "delist_url": "https://www.uceprotect.net/en/rblcheck.php",
        "notes": "Level 1 listings expire 7 days after the last abuse (paid express delisting exists). "
                 "Levels 2 and 3 (dnsbl-2/dnsbl-3.uceprotect.net) list whole allocations and ASNs, "
                 "not the host; they are available as policy zones but not queried by default.",
        "source": "https://www.uceprotect.net/en/index.php?m=3&s=3",
    },
    "dnsbl-2.uceprotect.net": {
        "default": False,
        "description": "UCEPROTECT level 2: allocations with too many level 1 listings",
        "codes": {
            "127.0.0.2": {
                "class": POLICY,
                "meaning": "UCEPROTECT level 2: the surrounding allocation is listed, not necessarily this host",
            },
        },
        "delist_url": "https://www.uceprotect.net/en/rblcheck.php",
        "notes": "Clears by itself when the allocation's level 1 listings expire; a host cannot request removal.",
        "source": "https://www.uceprotect.net/en/index.php?m=3&s=4",
    },
    "dnsbl-3.uceprotect.net": {
        "default": False,
        "description": "UCEPROTECT level 3: whole autonomous systems (ASNs)",
        "codes": {
            "127.0.0.2": {
                "class": POLICY,
                "meaning": "UCEPROTECT level 3: the whole ASN is listed, not necessarily this host",
            },
        },
        "delist_url": "https://www.uceprotect.net/en/rblcheck.php",
        "notes": "Lists entire providers; only the provider can change it.",
        "source": "https://www.uceprotect.net/en/index.php?m=3&s=5",
    },
}

DEFAULT_ZONES = tuple(name for name, zone in ZONES.items() if zone["default"])
