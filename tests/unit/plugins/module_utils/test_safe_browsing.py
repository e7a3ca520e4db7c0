"""The Safe Browsing core against a real local server that answers as Google's Lookup API does."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request

import pytest
from fake_safe_browsing import FakeSafeBrowsing, expressions

from ansible_collections.hostguard.hosting.plugins.module_utils import safe_browsing

KEY = "AIzaSy-test-key-0123456789"


def post(url, body, headers, timeout):
    """The HTTP call as the module makes it, with the standard library: an HTTP error is an answer."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - a local test server
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture
def google():
    fake = FakeSafeBrowsing(KEY, {"listed.example/": "MALWARE", "phish.example/login/": "SOCIAL_ENGINEERING"}).start()
    yield fake
    fake.stop()


def test_a_listed_domain_is_listed_with_its_threat_and_platform_and_a_clean_one_clean(google):
    urls = safe_browsing.domain_urls("Listed.Example.") + safe_browsing.domain_urls("clean.example")
    result = safe_browsing.find_threats(urls, KEY, post, google.api, timeout=5)
    assert (result["checked"], result["error"], result["requests"]) == (True, None, 1)
    by_url = {item["url"]: item for item in result["urls"]}
    assert set(by_url) == {"http://listed.example/", "https://listed.example/", "http://clean.example/",
                           "https://clean.example/"}
    for scheme in ("http", "https"):
        assert by_url["%s://listed.example/" % scheme]["status"] == "listed"
        assert by_url["%s://listed.example/" % scheme]["matches"] == [
            {"threat_type": "MALWARE", "platform_type": "ANY_PLATFORM", "threat_entry_type": "URL",
             "cache_duration": "300s"}]
        assert by_url["%s://clean.example/" % scheme] == {"url": "%s://clean.example/" % scheme, "status": "clean",
                                                          "matches": []}
    # The request as Google documents it: the key as a parameter, the four threat types, any platform, URLs.
    (request,) = google.requests
    assert request["query"]["key"] == [KEY] and request["content_type"] == "application/json"
    info = json.loads(request["body"])["threatInfo"]
    assert info["threatTypes"] == ["MALWARE", "SOCIAL_ENGINEERING", "UNWANTED_SOFTWARE",
                                   "POTENTIALLY_HARMFUL_APPLICATION"]
    assert (info["platformTypes"], info["threatEntryTypes"]) == (["ANY_PLATFORM"], ["URL"])
    assert [entry["url"] for entry in info["threatEntries"]] == list(by_url)


def test_an_empty_answer_says_every_url_is_clean(google):
    result = safe_browsing.find_threats(["https://clean.example/shop"], KEY, post, google.api, timeout=5)
    assert result["checked"] is True
    assert result["urls"] == [{"url": "https://clean.example/shop", "status": "clean", "matches": []}]


def test_a_listed_page_is_found_only_where_that_page_is_asked(google):
    # Google matches path prefixes of the URL asked: the site's root does not find a page listed below it.
    result = safe_browsing.find_threats(["http://phish.example/", "http://phish.example/login/index.php"], KEY, post,
                                        google.api, timeout=5)
    assert [(item["url"], item["status"]) for item in result["urls"]] == [
        ("http://phish.example/", "clean"), ("http://phish.example/login/index.php", "listed")]
    assert result["urls"][1]["matches"][0]["threat_type"] == "SOCIAL_ENGINEERING"


def test_the_urls_are_asked_500_to_a_request(google):
    urls = ["http://site%d.example/" % number for number in range(1001)] + ["http://listed.example/"]
    result = safe_browsing.find_threats(urls, KEY, post, google.api, timeout=5)
    assert result["checked"] is True and result["requests"] == 3
    assert [len(json.loads(request["body"])["threatInfo"]["threatEntries"]) for request in google.requests] == [
        500, 500, 2]
    assert [item["url"] for item in result["urls"] if item["status"] == "listed"] == ["http://listed.example/"]


@pytest.mark.parametrize(("answer", "said"), [
    (400, "HTTP 400: Google refused the request as invalid"),
    (403, "HTTP 403: Google denied permission"),
    (429, "HTTP 429: the key's quota is exhausted"),
])
def test_a_refusal_leaves_every_url_unchecked_never_clean_and_says_why(google, answer, said):
    google.answer = answer
    urls = ["http://listed.example/", "http://clean.example/"] + ["http://s%d.example/" % n for n in range(600)]
    result = safe_browsing.find_threats(urls, KEY, post, google.api, timeout=5)
    assert result["checked"] is False and result["error"].startswith(said), result["error"]
    assert "Google said: " in result["error"]
    assert {item["status"] for item in result["urls"]} == {"unchecked"}
    assert result["requests"] == 1  # no second request after a refusal


def test_a_key_google_does_not_know_is_answered_400_and_named_as_the_likely_cause(google):
    result = safe_browsing.find_threats(["http://listed.example/"], "wrong-key", post, google.api, timeout=5)
    assert result["checked"] is False
    assert "check audit_safe_browsing_key" in result["error"] and "API key not valid" in result["error"]
    assert result["urls"][0]["status"] == "unchecked"


def test_a_slow_answer_is_a_timeout_not_a_clean_site(google):
    google.answer, google.delay = "slow", 3
    result = safe_browsing.find_threats(["http://listed.example/"], KEY, post, google.api, timeout=1)
    assert result["checked"] is False
    assert result["error"] == "no answer from %s within 1 seconds" % google.api
    assert result["urls"][0]["status"] == "unchecked"


def test_an_api_nothing_answers_on_is_said_unreachable(google):
    google.stop()
    result = safe_browsing.find_threats(["http://listed.example/"], KEY, post, google.api, timeout=2)
    assert result["checked"] is False and result["error"].startswith("could not reach %s: " % google.api)
    assert result["urls"][0]["status"] == "unchecked"


def test_an_answer_that_is_not_the_apis_is_said_so_and_nothing_is_clean():
    def answers(body):
        return lambda url, data, headers, timeout: (200, body)

    for body in (b"<html>captive portal</html>", b"[]", b'{"matches": {"url": 1}}', b'{"matches": [{"x": 1}]}'):
        result = safe_browsing.find_threats(["http://a.example/"], KEY, answers(body), "https://api.example/find")
        assert result["checked"] is False and "is not the Lookup API's" in result["error"], body
        assert result["urls"][0]["status"] == "unchecked"


def test_the_key_never_appears_in_an_error_even_where_the_server_or_the_network_repeats_it():
    def echoes(url, body, headers, timeout):
        return 400, json.dumps({"error": {"code": 400, "status": "INVALID_ARGUMENT",
                                          "message": "bad request to %s" % url}}).encode()

    def fails(url, body, headers, timeout):
        raise OSError("connection reset while asking %s" % url)

    key = "k3y/with+chars="
    for runner in (echoes, fails):
        result = safe_browsing.find_threats(["http://a.example/"], key, runner, "https://api.example/find")
        text = json.dumps(result)
        assert result["checked"] is False and "<the key>" in result["error"], result["error"]
        assert key not in text and "k3y%2Fwith%2Bchars%3D" not in text


def test_domains_and_urls_are_canonical_and_bad_ones_are_named_before_any_request():
    assert safe_browsing.domain_urls("..WWW.Example..COM.") == ["http://www.example.com/", "https://www.example.com/"]
    assert safe_browsing.domain_urls("例え.jp") == ["http://xn--r8jz45g.jp/", "https://xn--r8jz45g.jp/"]
    assert safe_browsing.canonical_url("HTTPS://Shop.Example.com:8443?q=1#top") == "https://shop.example.com:8443/?q=1"
    for bad in ("https://example.com", "*.example.com", "exa mple.com", "-x.example", "300.1.1.1", ""):
        with pytest.raises(safe_browsing.SafeBrowsingInputError, match=re.escape("domain %r" % bad)):
            safe_browsing.domain_urls(bad)
    for bad in ("ftp://example.com/", "example.com/page", "http:///nohost"):
        with pytest.raises(safe_browsing.SafeBrowsingInputError, match=re.escape("URL %r" % bad)):
            safe_browsing.canonical_url(bad)
    with pytest.raises(safe_browsing.SafeBrowsingInputError) as raised:
        safe_browsing.canonical_url("https://admin:s3cret@example.com/")
    assert "s3cret" not in str(raised.value) and "example.com" in str(raised.value)

    def never(*args):
        raise AssertionError("asked before the input was checked")

    with pytest.raises(safe_browsing.SafeBrowsingInputError, match="mailto:x@example.com"):
        safe_browsing.find_threats(["http://a.example/", "mailto:x@example.com"], KEY, never)
    with pytest.raises(safe_browsing.SafeBrowsingInputError, match="api 'https://api.example/find[?]key=<the key>'"):
        safe_browsing.find_threats(["http://a.example/"], KEY, never, "https://api.example/find?key=%s" % KEY)


def test_each_host_asks_about_its_sites_domains_and_its_own_urls():
    sites = [{"name": "site1", "paths": ["/var/www/site1"], "domains": ["site1.example", "WWW.site1.example"]},
             {"name": "site2", "paths": ["/var/www/site2"]},
             {"name": "site3", "paths": ["/var/www/site3"], "domains": ["site1.example"]}]
    assert safe_browsing.site_targets(sites, ["https://site1.example/", "https://shop.example/cart"]) == [
        {"site": "site1", "url": "http://site1.example/"}, {"site": "site1", "url": "https://site1.example/"},
        {"site": "site1", "url": "http://www.site1.example/"}, {"site": "site1", "url": "https://www.site1.example/"},
        {"site": None, "url": "https://shop.example/cart"}]
    with pytest.raises(safe_browsing.SafeBrowsingInputError, match="site site2: domains must be a list"):
        safe_browsing.site_targets([{"name": "site2", "domains": "site2.example"}])
    with pytest.raises(safe_browsing.SafeBrowsingInputError, match="domain 'site 2.example'"):
        safe_browsing.site_targets([{"name": "site2", "domains": ["site 2.example"]}])


def test_the_fake_matches_as_google_documents_host_suffixes_and_path_prefixes():
    assert expressions("http://a.b.c/1/2.html?param=1") == {
        "a.b.c/1/2.html?param=1", "a.b.c/1/2.html", "a.b.c/", "a.b.c/1/",
        "b.c/1/2.html?param=1", "b.c/1/2.html", "b.c/", "b.c/1/"}
    assert expressions("http://1.2.3.4/1/") == {"1.2.3.4/1/", "1.2.3.4/"}
