"""The integrity baseline's sites are refused before any change, each problem naming its value."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.hostguard.hosting.plugins.filter.integrity import integrity_site_problems
from ansible_collections.hostguard.hosting.plugins.module_utils.integrity_sites import site_problems

DIRECTORY = "/var/lib/hostguard/integrity"


def test_well_formed_sites_have_no_problem():
    sites = [{"name": "site1", "paths": ["/var/www/site1"], "exclude": ["*/cache/*"]},
             {"name": "shop.example_2", "paths": ["/home/shop/www", "/home/shop/www/index.php"]}]
    assert site_problems(sites, DIRECTORY) == []
    assert site_problems([], DIRECTORY) == []


@pytest.mark.parametrize(("site", "problem"), [
    ({"name": "site1", "paths": ["var/www/site1"]}, "site site1: path var/www/site1 is not an absolute path"),
    ({"name": "site1", "paths": ["/var/www/../../etc"]}, "site site1: path /var/www/../../etc has a '.' or '..' part"),
    ({"name": "site1", "paths": ["/"]}, "site site1: path is /: give the site's own directories"),
    ({"name": "site1", "paths": []}, "site site1: paths [] is not a non-empty list of absolute paths"),
    ({"name": "site1"}, "site site1: paths None is not a non-empty list of absolute paths"),
    ({"name": "../etc/cron.d/x", "paths": ["/var/www/x"]}, "site ../etc/cron.d/x: name '../etc/cron.d/x' is not a file name"),
    ({"name": ".hidden", "paths": ["/var/www/x"]}, "site .hidden: name '.hidden' is not a file name"),
    ({"name": "", "paths": ["/var/www/x"]}, "site 1: name '' is not a file name"),
    ({"name": "site1", "paths": ["/var/www/site1"], "exclude": "*.log"}, "site site1: exclude '*.log' is not a list"),
    ({"name": "site1", "paths": ["/var/www/site1"], "exclude": [""]}, "site site1: exclude [''] is not a list"),
    ("site1", "site 1 ('site1') is not a dict with name and paths"),
])
def test_a_bad_site_is_named_with_its_value(site, problem):
    problems = site_problems([site], DIRECTORY)
    assert len(problems) == 1, problems
    assert problems[0].startswith(problem), problems


def test_a_name_given_twice_is_refused_since_both_sites_would_share_one_database():
    sites = [{"name": "site1", "paths": ["/var/www/a"]}, {"name": "site1", "paths": ["/var/www/b"]}]
    assert site_problems(sites, DIRECTORY) == [
        "site site1: the name is given twice, and both would share one database"]


def test_a_database_directory_inside_a_site_is_refused():
    sites = [{"name": "site1", "paths": ["/var/www/site1"]}]
    assert site_problems(sites, "/var/www/site1/.integrity") == [
        "site site1: the database directory /var/www/site1/.integrity is inside path /var/www/site1, where the"
        " site's accounts could change it"]
    # A sibling whose name merely starts the same is outside.
    assert site_problems(sites, "/var/www/site10/db") == []


@pytest.mark.parametrize(("directory", "problem"), [
    ("var/lib/integrity", "the database directory var/lib/integrity is not an absolute path"),
    ("/", "the database directory is /"),
    ("/var/lib/../tmp", "the database directory /var/lib/../tmp has a '.' or '..' part"),
])
def test_a_bad_database_directory_is_named(directory, problem):
    (found,) = site_problems([{"name": "site1", "paths": ["/var/www/site1"]}], directory)
    assert found.startswith(problem)


def test_every_problem_is_reported_at_once():
    sites = [{"name": "a/b", "paths": ["rel"]}, {"name": "ok", "paths": ["/srv/ok"], "exclude": [1]}]
    assert len(site_problems(sites, "relative")) == 4
    assert site_problems("site1", DIRECTORY) == ["the sites 'site1' are not a list of {name, paths, exclude}"]


def test_the_filter_returns_the_cores_sentences():
    sites = [{"name": "site1", "paths": ["www"]}]
    assert integrity_site_problems(sites, DIRECTORY) == site_problems(sites, DIRECTORY) != []


def test_a_site_with_the_audit_s_domains_is_taken_by_the_role_s_argument_spec():
    """hostguard_integrity_sites is shared with the audit, whose Safe Browsing check reads each site's domains."""

    spec_file = Path(__file__).resolve().parents[4] / "roles" / "integrity_baseline" / "meta" / "argument_specs.yml"
    options = yaml.safe_load(spec_file.read_text())["argument_specs"]["main"]["options"]
    sites = [{"name": "site1", "paths": ["/var/www/site1"], "domains": ["site1.example"]}]
    result = ArgumentSpecValidator({"integrity_baseline_sites": options["integrity_baseline_sites"]}).validate(
        {"integrity_baseline_sites": sites})
    assert result.error_messages == []
    wrong = ArgumentSpecValidator({"integrity_baseline_sites": options["integrity_baseline_sites"]}).validate(
        {"integrity_baseline_sites": [dict(sites[0], domain="site1.example")]})
    assert any("domain" in message for message in wrong.error_messages)
