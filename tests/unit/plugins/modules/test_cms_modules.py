"""cms_releases_info and cms_info run as Ansible runs them: the releases read from a local server that answers as
WordPress's and Joomla's services do, offline falling back to the shipped file, and a site judged against them."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from module_process import run_module

SHIPPED = Path(__file__).resolve().parents[4] / "roles" / "audit" / "files" / "cms_releases.yml"
ANSWERS = {
    "/core/stable-check/1.0/": {"7.0": "latest", "6.9.1": "outdated", "6.9": "insecure", "6.8.3": "insecure"},
    "/latest/cms": {"branches": [{"branch": "Joomla! 6", "version": "6.1.0"}]},
    "/plugins/info/1.2/?action=plugin_information&request%5Bslug%5D=contact-form-7": {"version": "6.2"},
    "/plugins/info/1.2/?action=plugin_information&request%5Bslug%5D=premium-thing": {"error": "Plugin not found."},
    "/themes/info/1.2/?action=theme_information&request%5Bslug%5D=twentytwentyfour": {"version": "1.3"},
}


class Services(BaseHTTPRequestHandler):
    asked = []

    def do_GET(self):  # noqa: N802 - http.server's name
        Services.asked.append(self.path)
        answer = ANSWERS.get(self.path)
        body = json.dumps(answer if answer is not None else {"error": "not found"}).encode()
        self.send_response(200 if answer is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def services():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Services)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Services.asked = []
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()
    server.server_close()


def test_the_releases_are_read_from_the_services_and_the_rest_from_the_shipped_file(tmp_path, services):
    code, result = run_module("cms_releases_info", tmp_path, fallback=str(SHIPPED), wordpress_api=services,
                              joomla_api=services, plugins=["contact-form-7", "premium-thing"],
                              themes=["twentytwentyfour"], timeout=5)
    assert code == 0, result
    releases = result["releases"]
    assert releases["cms"]["wordpress"] == {"latest": "7.0", "branches": {"7.0": "7.0", "6.9": "6.9.1"}}
    assert releases["cms"]["joomla"] == {"latest": "6.1.0", "branches": {"6.1": "6.1.0"}}
    assert (releases["plugins"], releases["themes"]) == ({"contact-form-7": "6.2"}, {"twentytwentyfour": "1.3"})
    assert result["source"]["unlisted"] == ["plugin premium-thing"] and result["source"]["errors"] == []
    assert result["changed"] is False


def test_offline_the_shipped_file_is_the_answer_and_each_service_is_named(tmp_path, services):
    closed = services.rsplit(":", 1)[0] + ":9"  # the discard port: nothing listens
    code, result = run_module("cms_releases_info", tmp_path, fallback=str(SHIPPED), wordpress_api=closed,
                              joomla_api=closed, timeout=2)
    assert code == 0, result
    assert result["releases"]["cms"]["wordpress"]["latest"] == "6.9"
    assert [error.split(":")[0] for error in result["source"]["errors"]] == ["wordpress", "joomla"]


def test_a_pinned_file_is_used_as_it_is_and_nothing_is_asked(tmp_path, services):
    pinned = tmp_path / "pinned.yml"
    pinned.write_text("as_of: '2026-12-01'\ncms:\n  wordpress: {latest: '6.9.1', branches: {'6.9': '6.9.1'}}\n")
    code, result = run_module("cms_releases_info", tmp_path, file=str(pinned), wordpress_api=services)
    assert code == 0, result
    assert result["releases"]["cms"]["wordpress"]["latest"] == "6.9.1"
    assert result["source"]["pinned"] == str(pinned) and Services.asked == []


def test_a_pinned_file_that_is_not_a_releases_document_fails_naming_the_value(tmp_path):
    pinned = tmp_path / "pinned.yml"
    pinned.write_text("cms:\n  wordpress: {latest: soon}\n")
    code, result = run_module("cms_releases_info", tmp_path, file=str(pinned))
    assert code != 0 and result["msg"] == f"file {pinned}: cms.wordpress.latest must be a version, got 'soon'"


def test_a_site_is_judged_against_the_releases_given(tmp_path):
    site = tmp_path / "site1"
    (site / "wp-includes").mkdir(parents=True)
    (site / "wp-includes" / "version.php").write_text("<?php $wp_version = '6.8.1';")
    plugin = site / "wp-content" / "plugins" / "contact-form-7"
    plugin.mkdir(parents=True)
    (plugin / "contact-form-7.php").write_text("<?php\n/* Plugin Name: Contact Form 7\nVersion: 5.1 */")
    releases = {"cms": {"wordpress": {"latest": "6.9", "branches": {"6.9": "6.9", "6.8": "6.8.3"}}},
                "plugins": {"contact-form-7": "6.1.4"}}
    code, result = run_module("cms_info", tmp_path, paths=[str(site), str(tmp_path / "missing")], releases=releases)
    assert code == 0, result
    [install] = result["installs"]
    assert (install["status"], install["fixed_in"], install["docroot"]) == ("insecure", "6.8.3", str(site))
    assert install["plugins"][0]["status"] == "outdated"
    assert result["errors"][0]["path"] == str(tmp_path / "missing")


@pytest.mark.parametrize("arguments, message", [
    ({"paths": ["relative/site"]}, "paths: 'relative/site' is not an absolute path"),
    ({"paths": ["/var/www"], "depth": -1}, "depth: expected 0 or more, got -1"),
])
def test_cms_info_refuses_bad_input_naming_it(tmp_path, arguments, message):
    code, result = run_module("cms_info", tmp_path, **arguments)
    assert code != 0 and result["msg"] == message
