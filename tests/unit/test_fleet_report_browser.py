"""The fleet report as a person sees it: Debian's Chromium renders the page of a demo fleet (tests/demo_fleet.py),
and the test reads the rendered table back - row order, each cell's text and computed colour - checks that a
customer's hostile file name is text, not markup, and keeps a screenshot of the whole page for CI
(.build/artifacts/fleet-report.png). scripts/setup.sh installs chromium; without it these tests are skipped,
saying so.
"""

from __future__ import annotations

import html.parser
import json
from pathlib import Path

import pytest
from browser import Chromium, chromium_path
from demo_fleet import HOSTILE, ORDER, fleet

from ansible_collections.hostguard.hosting.plugins.module_utils.audit_report import FACETS
from ansible_collections.hostguard.hosting.plugins.module_utils.fleet_report import build_report, write_report

NO_CHROMIUM = "chromium is not installed: scripts/setup.sh installs Debian's chromium package (apt-get install chromium)"
pytestmark = pytest.mark.skipif(not chromium_path(), reason=NO_CHROMIUM)
ARTIFACTS = Path(__file__).resolve().parents[2] / ".build" / "artifacts"
RED, AMBER, GREEN, GREY, LIGHT_GREY = ("rgb(183, 28, 28)", "rgb(255, 179, 0)", "rgb(46, 125, 50)", "rgb(97, 97, 97)",
                                       "rgb(224, 224, 224)")
# What the page's table must say for each host: (worst, {facet: (text, colour)} for the facets that ran).
EXPECTED = {
    "mail1": (("critical", RED), {"dnsbl": ("critical (1)", RED), "mail_queue": ("critical (1)", RED),
                                  "accounts": ("warning (1)", AMBER)}),
    "web1": (("critical", RED), {"integrity": ("critical (2)", RED), "updates": ("ok", GREEN)}),
    "gone1": (("no result", GREY), {facet: ("no result", GREY) for facet in FACETS}),
    "shop1": (("warning", AMBER), {"updates": ("warning (1)", AMBER)}),
    "quiet1": (("ok", GREEN), {"updates": ("ok", GREEN), "mail_queue": ("ok", GREEN)}),
}
READ_TABLE = """[...document.querySelectorAll('#fleet tbody tr')].map(row => [...row.cells].map(cell =>
    [cell.textContent.trim(), getComputedStyle(cell).backgroundColor]))"""
READ_HEADER = "[...document.querySelectorAll('#fleet thead th')].map(cell => cell.textContent.trim())"


class Elements(html.parser.HTMLParser):
    """The tags of a serialised DOM, counted."""

    def __init__(self):
        super().__init__()
        self.tags = {}

    def handle_starttag(self, tag, attrs):
        self.tags[tag] = self.tags.get(tag, 0) + 1


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    """The demo fleet's report written by the core, after a previous one, loaded in Chromium."""
    directory = tmp_path_factory.mktemp("fleet") / "hostguard-report"
    previous = fleet(planted=(), queue=300)
    previous["retired1"] = previous.pop("shop1")
    write_report(str(directory), build_report(previous, "2026-12-07T06:00:00Z"))
    report = build_report(fleet(), "2026-12-14T06:00:00Z", json.loads((directory / "report.json").read_text()))
    write_report(str(directory), report)
    with Chromium(width=1440) as browser:
        browser.open(str(directory / "index.html"))
        yield browser


def test_the_rendered_table_lists_the_hosts_worst_first_with_a_coloured_labelled_cell_per_facet(page):
    header = page.evaluate(READ_HEADER)
    assert header == ["host", "worst", "findings"] + [facet.replace("_", " ") for facet in FACETS]
    rows = page.evaluate(READ_TABLE)
    assert [row[0][0] for row in rows] == ORDER
    for row in rows:
        worst, facets = EXPECTED[row[0][0]]
        assert tuple(row[1]) == worst, row
        for facet, cell in zip(FACETS, row[3:]):
            assert tuple(cell) == facets.get(facet, ("not run", LIGHT_GREY)), (row[0][0], facet, cell)
    assert rows[0][2][0] == "2 critical, 1 warning, 0 info"


def test_the_hostile_file_name_is_shown_as_text_and_runs_nothing(page):
    dom = page.dom()
    elements = Elements()
    elements.feed(dom)
    assert "script" not in elements.tags and "b" not in elements.tags, elements.tags
    assert page.evaluate("document.title") == "hostguard fleet report 2026-12-14T06:00:00Z"
    findings = page.evaluate("[...document.querySelectorAll('#host-1 table.findings td')].map(c => c.textContent)")
    assert "%s looks planted (php_request_eval)" % HOSTILE in findings
    new = page.evaluate("[...document.querySelectorAll('#changes li')].map(item => item.textContent)")
    assert "critical web1: %s looks planted (php_request_eval) (integrity)" % HOSTILE in new


def test_the_changes_come_first_and_name_what_is_new_and_closed(page):
    assert page.evaluate("document.querySelector('h2').textContent") == "What changed"
    headings = page.evaluate("[...document.querySelectorAll('#changes h3')].map(h => h.textContent)")
    assert headings == ["Hosts added", "Hosts removed", "New findings (3)", "Closed findings (1)"]
    assert page.evaluate("document.querySelector('#changes ul').textContent") == "shop1"


def test_the_page_loads_nothing_from_anywhere(page):
    resources = page.evaluate("performance.getEntriesByType('resource').length")
    assert resources == 0


def test_a_screenshot_of_the_whole_page_is_kept_for_ci(page):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / "fleet-report.png"
    target.unlink(missing_ok=True)
    page.screenshot(str(target))
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    height = int.from_bytes(data[20:24], "big")
    assert height == page.evaluate("document.documentElement.scrollHeight") and height > 900
