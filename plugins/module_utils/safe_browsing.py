# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which of the sites' URLs Google Safe Browsing lists, through its Lookup API (v4, ``threatMatches:find``).

One request carries up to 500 URLs; the answer names the URLs that match a list (``{"matches": [...]}``) or is an
empty object when none does. Google matches on host-suffix and path-prefix expressions of each URL, without the
scheme: a lookup of ``http://www.example.com/`` also finds a listing of ``example.com/``, but a lookup of a site's
root does not find a listing of a single page below it (name such pages in the URLs to check).

Pure Python: the HTTP call is ``post(url, body, headers, timeout) -> (status, body)``, given by the caller (the
module passes Ansible's open_url; the unit tests a real local server). A URL is said ``clean`` only where Google
answered for it; a refused key, an exhausted quota, a timeout or an unreadable answer leaves it ``unchecked`` with
the reason, and the API key never appears in a reason.
"""

from __future__ import annotations

import json
import re
import socket
from urllib.parse import quote, urlsplit, urlunsplit

API = "https://safebrowsing.googleapis.com/v4/threatMatches:find"
THREAT_TYPES = ("MALWARE", "SOCIAL_ENGINEERING", "UNWANTED_SOFTWARE", "POTENTIALLY_HARMFUL_APPLICATION")
PLATFORM_TYPES = ("ANY_PLATFORM",)
BATCH = 500  # the Lookup API's limit of URLs per request
CLIENT = {"clientId": "hostguard-hosting", "clientVersion": "1"}
# What each refusal means for the person who runs the audit (Google's HTTP status codes of the v4 API).
REFUSALS = {
    400: "Google refused the request as invalid (an API key that is not valid is answered so): check "
         "audit_safe_browsing_key",
    403: "Google denied permission: the key's project must have the Safe Browsing API enabled, and the key must "
         "not be restricted away from it",
    429: "the key's quota is exhausted or its rate limit reached: audit again later, or ask Google for more quota",
}
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_IPV4 = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")


class SafeBrowsingInputError(ValueError):
    """A domain, URL or setting that cannot be checked; the message names it."""


def canonical_host(host, what="domain"):
    """The host as Google canonicalises it: no leading, trailing or repeated dots, lower case, IDN as punycode."""
    text = str(host).strip()
    name = re.sub(r"\.{2,}", ".", text.strip(".")).lower()
    try:
        name = name.encode("idna").decode("ascii") if name and not name.isascii() else name
    except UnicodeError:
        raise SafeBrowsingInputError("%s %r: not a host name" % (what, host)) from None
    if _IPV4.match(name):
        if all(0 <= int(part) <= 255 for part in name.split(".")):
            return ".".join(str(int(part)) for part in name.split("."))
        raise SafeBrowsingInputError("%s %r: not an IPv4 address" % (what, host))
    if not name or len(name) > 253 or not all(_LABEL.match(label) for label in name.split(".")):
        raise SafeBrowsingInputError("%s %r: not a host name (letters, digits, hyphens and dots; a URL goes in "
                                     "audit_safe_browsing_urls)" % (what, host))
    return name


def domain_urls(domain):
    """The site's root over http and https: the URLs a domain is checked by."""
    host = canonical_host(domain)
    return ["http://%s/" % host, "https://%s/" % host]


def canonical_url(url):
    """An http(s) URL as Google reads it: its host canonicalised, a path (at least /), no fragment."""
    text = str(url).strip()
    parts = urlsplit(text)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise SafeBrowsingInputError("URL %r: expected an http:// or https:// address with a host" % (url,))
    if parts.username is not None or parts.password is not None:
        # never sent to Google, nor repeated here: it may hold a password
        raise SafeBrowsingInputError("URL of host %s: holds a user name or password; give it without"
                                     % parts.hostname)
    host = canonical_host(parts.hostname, "URL %r: host" % (url,))
    try:
        port = parts.port
    except ValueError:
        raise SafeBrowsingInputError("URL %r: its port is not a number from 0 to 65535" % (url,)) from None
    netloc = host if port is None else "%s:%d" % (host, port)
    return urlunsplit((parts.scheme.lower(), netloc, parts.path or "/", parts.query, ""))


def site_targets(sites, urls=()):
    """What one host asks about: ``[{site, url}]`` for the http and https roots of each site's ``domains`` and for
    each extra URL (site null), canonical and without repeats. SafeBrowsingInputError names the first bad value."""
    targets, seen = [], set()
    for site in sites or []:
        if not isinstance(site, dict):
            raise SafeBrowsingInputError("site %r: expected {name, paths, domains}" % (site,))
        domains = site.get("domains") or []
        if isinstance(domains, str) or not isinstance(domains, list):
            raise SafeBrowsingInputError("site %s: domains must be a list of host names, got %r"
                                         % (site.get("name"), domains))
        for domain in domains:
            for url in domain_urls(domain):
                if url not in seen:
                    seen.add(url)
                    targets.append({"site": site.get("name"), "url": url})
    if isinstance(urls, str):
        raise SafeBrowsingInputError("audit_safe_browsing_urls must be a list of URLs, got %r" % (urls,))
    for url in urls or []:
        canonical = canonical_url(url)
        if canonical not in seen:
            seen.add(canonical)
            targets.append({"site": None, "url": canonical})
    return targets


def scrub(text, secret):
    """``text`` without ``secret``, plain or percent-encoded (an API key must never reach a log)."""
    text = str(text)
    if secret:
        for form in (secret, quote(secret, safe=""), quote(secret)):
            text = text.replace(form, "<the key>")
    return text


def _refusal(status, body):
    """Why Google did not answer: its status with the meaning, and the message of its error object where given."""
    try:
        error = json.loads(body.decode("utf-8", "replace")).get("error") or {}
    except (ValueError, AttributeError):
        error = {}
    said = " ".join(str(part) for part in (error.get("status"), error.get("message")) if part) if isinstance(
        error, dict) else ""
    meaning = REFUSALS.get(status) or ("Google's service failed (retry later)" if status >= 500 else
                                       "unexpected answer")
    return "HTTP %d: %s%s" % (status, meaning, " (Google said: %s)" % said[:300] if said else "")


def _matches(body, asked):
    """The matches of an answer by asked URL; ValueError where the answer is not the API's."""
    answer = json.loads(body.decode("utf-8"))
    if not isinstance(answer, dict):
        raise ValueError("the answer is not a JSON object")
    matches = answer.get("matches") or []
    if not isinstance(matches, list):
        raise ValueError("its matches are not a list")
    found, others = {}, []
    for match in matches:
        if not isinstance(match, dict) or not isinstance(match.get("threat"), dict):
            raise ValueError("a match without its threat")
        url = match["threat"].get("url")
        entry = {"threat_type": match.get("threatType"), "platform_type": match.get("platformType"),
                 "threat_entry_type": match.get("threatEntryType"), "cache_duration": match.get("cacheDuration")}
        try:
            key = canonical_url(url)
        except SafeBrowsingInputError:
            key = url
        if key in asked:
            found.setdefault(key, []).append(entry)
        else:
            others.append(dict(entry, url=url))
    return found, others


def find_threats(urls, api_key, post, api=API, timeout=10, threat_types=THREAT_TYPES):
    """Each URL's status with Safe Browsing, asking ``api`` 500 URLs at a time.

    Returns ``{checked, error, requests, urls: [{url, status, matches}], unattributed}``: ``status`` is ``listed``,
    ``clean`` (Google answered and named no match) or ``unchecked`` (no answer for it: ``error`` says why, and no
    further request is made after a refusal or a network failure); ``unattributed`` holds matches Google named for a
    URL that was not asked.
    """
    if not api_key:
        raise SafeBrowsingInputError("api_key: no key given")
    parts = urlsplit(str(api))
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise SafeBrowsingInputError("api %r: expected the http(s) address of threatMatches:find, without a query"
                                     % (scrub(api, api_key),))
    asked = []
    for url in urls:
        canonical = canonical_url(url)
        if canonical not in asked:
            asked.append(canonical)
    status = {url: {"url": url, "status": "unchecked", "matches": []} for url in asked}
    error, requests, unattributed = None, 0, []
    endpoint = "%s?key=%s" % (api, quote(api_key, safe=""))
    for start in range(0, len(asked), BATCH):
        batch = asked[start:start + BATCH]
        body = json.dumps({"client": CLIENT, "threatInfo": {
            "threatTypes": list(threat_types), "platformTypes": list(PLATFORM_TYPES), "threatEntryTypes": ["URL"],
            "threatEntries": [{"url": url} for url in batch]}}).encode("utf-8")
        requests += 1
        try:
            code, answer = post(endpoint, body, {"Content-Type": "application/json"}, timeout)
        except (socket.timeout, TimeoutError):
            error = "no answer from %s within %s seconds" % (api, timeout)
        except Exception as exc:  # pylint: disable=broad-except  # offline, refused, TLS: said, never fatal
            reason = getattr(exc, "reason", None) or exc
            if isinstance(reason, (socket.timeout, TimeoutError)):
                error = "no answer from %s within %s seconds" % (api, timeout)
            else:
                error = "could not reach %s: %s" % (api, reason)
        else:
            if code != 200:
                error = _refusal(code, answer)
            else:
                try:
                    found, others = _matches(answer, status)
                except (ValueError, UnicodeDecodeError) as exc:
                    error = "the answer of %s is not the Lookup API's: %s" % (api, exc)
                else:
                    for url in batch:
                        status[url].update(status="listed" if url in found else "clean", matches=found.get(url, []))
                    unattributed += others
        if error:
            break
    return {"checked": error is None, "error": scrub(error, api_key) if error else None, "requests": requests,
            "api": api, "urls": [status[url] for url in asked], "unattributed": unattributed}
