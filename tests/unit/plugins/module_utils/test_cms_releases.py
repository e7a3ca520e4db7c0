"""Judging installs against the releases, and reading the releases from the projects' answers."""

from __future__ import annotations

import pytest

from ansible_collections.hostguard.hosting.plugins.module_utils import cms_releases

RELEASES = {"as_of": "2026-11-30",
            "cms": {"wordpress": {"latest": "6.9", "branches": {"6.9": "6.9", "6.8": "6.8.3", "6.4": "6.4.7"}},
                    "joomla": {"latest": "6.0.1", "branches": {"6.0": "6.0.1", "5.4": "5.4.1"}}},
            "plugins": {"contact-form-7": "6.1.4"}, "themes": {"twentytwentyfour": "1.3"}}


@pytest.mark.parametrize("cms, version, status, fixed_in", [
    ("wordpress", "6.9", "current", None),
    ("wordpress", "6.9.0", "current", None),
    ("wordpress", "7.0", "current", None),          # newer than the releases read: not judged old
    ("wordpress", "6.8.3", "outdated", None),       # its branch's newest: still fixed, not the latest
    ("wordpress", "6.8.1", "insecure", "6.8.3"),
    ("wordpress", "6.4.2", "insecure", "6.4.7"),
    ("wordpress", "6.7.2", "unsupported", None),    # a branch the releases do not list gets no fixes
    ("wordpress", "4.9.8", "unsupported", None),
    ("joomla", "5.3.2", "unsupported", None),
    ("joomla", "5.4.0", "insecure", "5.4.1"),
    ("joomla", "6.0.1", "current", None),
    ("wordpress", None, "unknown", None),
    ("drupal", "10.1", "unknown", None),
])
def test_an_install_is_judged_against_its_branch_and_the_latest(cms, version, status, fixed_in):
    verdict = cms_releases.judge_core(cms, version, RELEASES)
    assert (verdict["status"], verdict.get("fixed_in")) == (status, fixed_in)


def test_without_branches_an_older_release_is_outdated_not_unsupported():
    releases = {"cms": {"wordpress": {"latest": "6.9"}}}
    assert cms_releases.judge_core("wordpress", "6.2", releases)["status"] == "outdated"


def test_plugins_and_themes_are_judged_against_the_directory_and_unlisted_ones_are_unknown():
    install = {"cms": "wordpress", "path": "/var/www/site1", "version": "6.9",
               "plugins": [{"slug": "contact-form-7", "version": "5.1"}, {"slug": "premium-thing", "version": "2"}],
               "themes": [{"slug": "twentytwentyfour", "version": "1.3"}]}
    [judged] = cms_releases.judge([install], RELEASES)
    assert judged["status"] == "current"
    assert [(p["slug"], p["status"], p["latest"]) for p in judged["plugins"]] == [
        ("contact-form-7", "outdated", "6.1.4"), ("premium-thing", "unknown", None)]
    assert judged["themes"][0]["status"] == "current"


def test_wordpress_stable_check_becomes_each_branchs_newest_fixed_release():
    answer = {"6.9": "latest", "6.8.3": "outdated", "6.8.2": "insecure", "6.4.7": "outdated", "6.4.6": "insecure",
              "3.7.41": "outdated", "3.6": "insecure"}
    assert cms_releases.wordpress_branches(answer) == {
        "latest": "6.9", "branches": {"6.9": "6.9", "6.8": "6.8.3", "6.4": "6.4.7", "3.7": "3.7.41"}}


@pytest.mark.parametrize("answer", [{}, [], {"6.9": "insecure"}, {"6.9": "latest", "6.8": "latest"}])
def test_a_stable_check_answer_that_is_not_one_is_refused(answer):
    with pytest.raises(cms_releases.ReleasesError):
        cms_releases.wordpress_branches(answer)


def test_joomlas_downloads_api_becomes_its_supported_branches():
    answer = {"branches": [{"branch": "Joomla! 5", "version": "5.4.1"}, {"branch": "Joomla! 6", "version": "6.0.1"},
                           {"branch": "Joomla! 3", "version": None}]}
    assert cms_releases.joomla_branches(answer) == {"latest": "6.0.1", "branches": {"6.0": "6.0.1", "5.4": "5.4.1"}}


def test_what_the_services_answer_replaces_the_fallback_and_what_they_do_not_stays():
    answers = {
        "https://wp.test/core/stable-check/1.0/": {"7.0": "latest", "6.9.1": "outdated", "6.9": "insecure"},
        "https://wp.test/plugins/info/1.2/?action=plugin_information&request%5Bslug%5D=contact-form-7":
            {"name": "Contact Form 7", "version": "6.2"},
        "https://wp.test/plugins/info/1.2/?action=plugin_information&request%5Bslug%5D=premium-thing":
            {"error": "Plugin not found."},
    }

    def fetch(url):
        if url not in answers:
            raise OSError("connection refused")
        return answers[url]

    document = cms_releases.fetch_releases(fetch, RELEASES, plugins=["contact-form-7", "premium-thing", "../x"],
                                           themes=[], wordpress_api="https://wp.test/", joomla_api="https://j.test",
                                           today="2026-12-07")
    assert document["cms"]["wordpress"] == {"latest": "7.0", "branches": {"7.0": "7.0", "6.9": "6.9.1"}}
    assert document["cms"]["joomla"] == RELEASES["cms"]["joomla"]
    assert document["plugins"] == {"contact-form-7": "6.2"}
    assert document["themes"] == RELEASES["themes"]
    assert document["as_of"] == "2026-12-07"
    assert document["source"]["online"] == ["wordpress", "plugin contact-form-7"]
    assert document["source"]["unlisted"] == ["plugin ../x", "plugin premium-thing"]
    assert [error.split(":")[0] for error in document["source"]["errors"]] == ["joomla"]


def test_plugins_read_online_do_not_make_the_core_releases_look_current():
    def fetch(url):
        if "plugin_information" in url:
            return {"version": "6.2"}
        raise OSError("connection refused")

    document = cms_releases.fetch_releases(fetch, RELEASES, plugins=["contact-form-7"], today="2026-12-07")
    assert document["plugins"]["contact-form-7"] == "6.2" and document["as_of"] == "2026-11-30"


def test_offline_the_fallback_is_the_answer_with_its_own_date_and_every_service_named():
    def fetch(url):
        raise OSError("Name or service not known")

    document = cms_releases.fetch_releases(fetch, RELEASES, plugins=["akismet"], today="2026-12-07")
    assert (document["cms"], document["as_of"]) == (RELEASES["cms"], "2026-11-30")
    assert [error.split(":")[0] for error in document["source"]["errors"]] == ["wordpress", "joomla", "plugin akismet"]


@pytest.mark.parametrize("document, message", [
    ([], "expected a mapping"),
    ({"cms": {"wordpress": {"latest": "latest"}}}, "cms.wordpress.latest must be a version, got 'latest'"),
    ({"cms": {"wordpress": {"latest": "6.9", "branches": {"6.8": None}}}}, "cms.wordpress.branches.6.8"),
    ({"plugins": {"akismet": ""}}, "plugins.akismet must be a version"),
])
def test_a_releases_document_that_is_not_one_is_refused_naming_the_value(document, message):
    with pytest.raises(cms_releases.ReleasesError, match=message.replace(".", r"\.").replace("(", r"\(")):
        cms_releases.validate(document)
