"""safe_browsing_info run as Ansible runs it, against a real local server that answers as Google's Lookup API."""

from __future__ import annotations

import json

import pytest
from fake_safe_browsing import FakeSafeBrowsing
from module_process import run_module

KEY = "AIzaSy-module-test-key-42"


@pytest.fixture
def google():
    fake = FakeSafeBrowsing(KEY, {"site1.example/": "MALWARE"}).start()
    yield fake
    fake.stop()


def test_the_domains_are_asked_over_http_and_https_and_the_listed_one_named(tmp_path, google):
    code, result = run_module("safe_browsing_info", tmp_path, api_key=KEY, api=google.api, timeout=5,
                              domains=["site1.example", "site2.example"], urls=["https://www.site1.example/shop"])
    assert code == 0, result
    assert (result["changed"], result["checked"], result["error"], result["requests"]) == (False, True, None, 1)
    status = {item["url"]: item["status"] for item in result["urls"]}
    assert status == {"http://site1.example/": "listed", "https://site1.example/": "listed",
                      "http://site2.example/": "clean", "https://site2.example/": "clean",
                      "https://www.site1.example/shop": "listed"}
    assert result["urls"][0]["matches"] == [{"threat_type": "MALWARE", "platform_type": "ANY_PLATFORM",
                                             "threat_entry_type": "URL", "cache_duration": "300s"}]
    assert result["api"] == google.api and KEY not in json.dumps(result)


@pytest.mark.parametrize("answer", [400, 403, 429, "slow"])
def test_a_failed_check_is_a_result_that_says_why_never_clean_and_never_names_the_key(tmp_path, google, answer):
    google.answer, google.delay = answer, 3
    code, result = run_module("safe_browsing_info", tmp_path, api_key=KEY, api=google.api, timeout=1,
                              domains=["site2.example"])
    assert code == 0, result
    assert result["checked"] is False and result["error"], result
    assert {item["status"] for item in result["urls"]} == {"unchecked"}
    assert KEY not in json.dumps(result)


def test_offline_is_said_and_the_key_is_not(tmp_path, google):
    google.stop()
    code, result = run_module("safe_browsing_info", tmp_path, api_key=KEY, api=google.api, timeout=2,
                              domains=["site2.example"])
    assert code == 0 and result["checked"] is False
    assert result["error"].startswith("could not reach %s" % google.api), result["error"]
    assert KEY not in json.dumps(result)


def test_bad_input_fails_before_any_request_naming_the_value_and_not_the_key(tmp_path, google):
    for arguments, said in (({"domains": ["site1.example", "https://site2.example"]}, "domain 'https://site2.example'"),
                            ({"urls": ["javascript:alert(1)"]}, "URL 'javascript:alert(1)'"),
                            ({"domains": ["a.example"], "api": "ftp://%s@api.example/find" % KEY}, "api 'ftp://"),
                            ({"domains": ["a.example"], "timeout": 0}, "timeout: expected 1 second or more")):
        code, result = run_module("safe_browsing_info", tmp_path, **dict({"api_key": KEY, "api": google.api},
                                                                         **arguments))
        assert code != 0 and result["failed"] and said in result["msg"], result
        assert KEY not in json.dumps(result)
    assert google.requests == []
