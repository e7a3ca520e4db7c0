"""The fleet report's core: hosts ordered by worst finding, one cell per facet, what changed since the previous
report, a page that escapes every host's string, the terminal's lines, and report.json valid against the schema
the role ships (roles/audit/files/hostguard_fleet_report.schema.json). The page as a browser renders it:
tests/unit/test_fleet_report_browser.py.
"""

from __future__ import annotations

import html
import json
import os
import stat
from pathlib import Path

import jsonschema
import pytest
import referencing
from demo_fleet import HOSTILE, ORDER, fleet

from ansible_collections.hostguard.hosting.plugins.module_utils.audit_report import FACETS
from ansible_collections.hostguard.hosting.plugins.module_utils.fleet_report import (
    FleetReportError,
    build_report,
    changed_since,
    default_directory,
    directory_problem,
    main as fleet_report_main,
    finding_lines,
    read_previous,
    render_html,
    summary_lines,
    write_report,
)

FILES = Path(__file__).resolve().parents[4] / "roles" / "audit" / "files"
HOST_SCHEMA = json.loads((FILES / "hostguard_audit.schema.json").read_text())
FLEET_SCHEMA = json.loads((FILES / "hostguard_fleet_report.schema.json").read_text())
REGISTRY = referencing.Registry().with_resource(HOST_SCHEMA["$id"], referencing.Resource.from_contents(HOST_SCHEMA))
VALIDATOR = jsonschema.Draft202012Validator(FLEET_SCHEMA, registry=REGISTRY,
                                            format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
NOW = "2026-12-14T06:00:00Z"
BEFORE = "2026-12-07T06:00:00Z"


def errors(report):
    return ["%s: %s" % (list(error.path), error.message) for error in VALIDATOR.iter_errors(report)]


def previous_report():
    """Last week's report: web1 clean, mail1's queue bigger, retired1 still in the fleet, shop1 not yet."""
    results = fleet(planted=(), queue=300)
    del results["shop1"]
    results["retired1"] = results["quiet1"]
    return build_report(results, BEFORE)


def test_hosts_are_ordered_by_worst_finding_then_by_their_counts():
    report = build_report(fleet(), NOW)
    assert [entry["host"] for entry in report["hosts"]] == ORDER
    assert [entry["worst"] for entry in report["hosts"]] == ["critical", "critical", "no_result", "warning", "ok"]
    assert report["summary"] == {"hosts": 5, "by_worst": {"critical": 2, "no_result": 1, "warning": 1, "info": 0,
                                                          "ok": 1},
                                 "findings": {"critical": 3, "warning": 2, "info": 1, "closed": 0}, "contained": []}


def test_each_facet_cell_is_the_facets_worst_finding_ok_or_not_run():
    report = build_report(fleet(), NOW)
    cells = {entry["host"]: entry["facets"] for entry in report["hosts"]}
    assert report["facets"] == list(FACETS)
    assert cells["mail1"] == dict({facet: "not_run" for facet in FACETS}, dnsbl="critical", mail_queue="critical",
                                  accounts="warning")
    assert cells["web1"]["integrity"] == "critical" and cells["web1"]["updates"] == "ok"
    assert cells["quiet1"] == dict({facet: "not_run" for facet in FACETS}, updates="ok", mail_queue="ok")
    assert set(cells["gone1"].values()) == {"no_result"}


def test_the_report_is_valid_against_the_schema_with_and_without_a_previous_one():
    assert errors(build_report(fleet(), NOW)) == []
    assert errors(build_report(fleet(), NOW, previous_report())) == []


def test_the_schema_refuses_what_the_report_never_holds():
    report = build_report(fleet(), NOW)
    report["hosts"][0]["worst"] = "fine"
    report["hosts"][1]["result"]["findings"][0]["severity"] = "urgent"
    report["changes"]["new"].append({"host": "web1"})
    paths = {tuple(error.path) for error in VALIDATOR.iter_errors(report)}
    assert paths == {("hosts", 0, "worst"), ("hosts", 1, "result"), ("changes", "new", 0)}


def test_changes_name_new_and_closed_findings_and_hosts_added_and_removed():
    report = build_report(fleet(), NOW, previous_report())
    changes = report["changes"]
    assert changes["previous"] == BEFORE
    assert (changes["hosts_added"], changes["hosts_removed"]) == (["shop1"], ["retired1"])
    new = {(change["host"], change["severity"], change["summary"]) for change in changes["new"]}
    assert new == {("mail1", "critical", "250 messages in the mail queue; the busiest sender: wordpress@site1.example "
                                         "(240)"),
                   ("web1", "critical", "%s looks planted (php_request_eval)" % HOSTILE),
                   ("web1", "info", "%s added since the baseline of site site1" % HOSTILE)}
    assert [(change["host"], change["summary"]) for change in changes["closed"]] == [
        ("mail1", "300 messages in the mail queue; the busiest sender: wordpress@site1.example (290)")]
    assert changed_since(report)


def test_a_run_that_finds_what_the_previous_found_has_nothing_to_say():
    first = build_report(fleet(), BEFORE)
    assert changed_since(first)  # the first report in a directory is news
    again = build_report(fleet(), NOW, json.loads(json.dumps(first)))
    assert again["changes"] == {"previous": BEFORE, "hosts_added": [], "hosts_removed": [], "hosts_not_audited": [],
                                "new": [], "closed": []}
    assert not changed_since(again)


def test_a_host_left_out_of_this_run_but_still_in_the_inventory_is_not_audited_rather_than_removed():
    previous = build_report(fleet(), BEFORE)
    limited = {name: result for name, result in fleet().items() if name == "web1"}
    report = build_report(limited, NOW, previous, inventory=["web1", "mail1", "shop1", "quiet1"])
    changes = report["changes"]
    assert changes["hosts_not_audited"] == ["mail1", "quiet1", "shop1"] and changes["hosts_removed"] == ["gone1"]
    assert changes["new"] == changes["closed"] == []
    assert errors(report) == []
    assert summary_lines(report)[-1] == ("since %s: 0 new findings; 0 closed; hosts removed: gone1; "
                                         "not audited this time: mail1, quiet1, shop1" % BEFORE)
    assert changed_since(report)  # gone1 left the inventory
    assert not changed_since(build_report(limited, NOW, previous, inventory=list(fleet())))


def test_a_previous_report_of_another_schema_version_is_not_compared_with():
    previous = dict(previous_report(), schema_version=4)
    assert build_report(fleet(), NOW, previous)["changes"]["previous"] is None


def schema_1(report):
    """A report as schema 1 wrote it: findings without status nor response, no closed counts."""
    old = json.loads(json.dumps(report))
    old["schema_version"] = 1
    for entry in old["hosts"]:
        for finding in (entry["result"] or {}).get("findings") or []:
            del finding["status"], finding["response"]
    return old


def test_a_previous_report_of_schema_1_is_compared_with_its_findings_taken_as_open():
    previous = schema_1(build_report(fleet(), BEFORE))
    changes = build_report(fleet(quarantined=[HOSTILE]), NOW, previous)["changes"]
    assert changes["previous"] == BEFORE and changes["new"] == []
    assert {(change["host"], change["summary"]) for change in changes["closed"]} == {
        ("web1", "%s looks planted (php_request_eval)" % HOSTILE),
        ("web1", "%s added since the baseline of site site1" % HOSTILE)}


def test_a_host_whose_findings_the_response_closed_ranks_by_what_is_still_open():
    before = build_report(fleet(), BEFORE)
    report = build_report(fleet(quarantined=[HOSTILE]), NOW, json.loads(json.dumps(before)))
    assert errors(report) == []
    entry = next(entry for entry in report["hosts"] if entry["host"] == "web1")
    # The planted file (critical) and its addition (info) are quarantined: nothing of web1 is open.
    assert (entry["worst"], entry["summary"]) == ("ok", {"critical": 0, "warning": 0, "info": 0, "closed": 2})
    assert entry["facets"]["integrity"] == "ok"
    assert [entry["host"] for entry in report["hosts"]] == ["mail1", "gone1", "shop1", "quiet1", "web1"]
    assert report["summary"]["findings"] == {"critical": 2, "warning": 2, "info": 0, "closed": 2}
    assert report["summary"]["by_worst"]["critical"] == 1
    # What the response closed is a closed change, and nothing new: the quarantined finding is not news.
    changes = report["changes"]
    assert changes["new"] == []
    assert {(change["host"], change["severity"]) for change in changes["closed"]} == {("web1", "critical"),
                                                                                      ("web1", "info")}
    assert "web1: ok (0 critical, 0 warning, 0 info, +2 closed)" in summary_lines(report)
    page = render_html(report)
    row = page.split('<tr data-host="web1">', 1)[1].split("</tr>", 1)[0]
    assert "0 critical, 0 warning, 0 info, +2 closed" in row
    assert 'data-severity="ok">ok +2 closed</td>' in row
    section = page.split('<h2>web1 ', 1)[1].split("</section>", 1)[0]
    assert "<p>No open findings.</p>" in section and "<h3>Closed by the response (2)</h3>" in section
    assert "quarantined 20261207T070000.000001Z; record /var/lib/hostguard/quarantine/" in section
    assert "hostguard.hosting.restore" in section


def test_a_quarantine_no_longer_in_force_leaves_the_finding_open_and_is_critical():
    report = build_report(fleet(quarantined=[HOSTILE], lock="undone"), NOW)
    assert errors(report) == []
    entry = next(entry for entry in report["hosts"] if entry["host"] == "web1")
    assert entry["worst"] == "critical" and entry["summary"]["closed"] == 0
    summaries = [finding["summary"] for finding in entry["result"]["findings"] if finding["status"] == "open"]
    assert "%s looks planted (php_request_eval)" % HOSTILE in summaries
    assert any(summary.startswith("the quarantine of %s is not in force: its owner or mode was changed back" % HOSTILE)
               for summary in summaries)


def test_a_host_without_a_result_closes_none_of_its_findings():
    previous = build_report(fleet(), BEFORE)
    results = fleet()
    results["mail1"] = None
    changes = build_report(results, NOW, previous)["changes"]
    assert changes["closed"] == [] and changes["new"] == []


def test_the_page_escapes_every_host_string_and_holds_no_script_nor_external_asset():
    page = render_html(build_report(fleet(), NOW, previous_report()))
    assert HOSTILE not in page
    assert html.escape(HOSTILE, quote=True) in page
    lowered = page.lower()
    assert "<script" not in lowered and "<b>" not in lowered
    for reference in ("src=", "http://", "https://", "@import", "url("):
        # The one https:// is a blocklist's delisting page in the evidence, escaped text, not a reference.
        assert reference not in lowered.replace("https://check.spamhaus.org/", ""), reference
    assert "default-src 'none'; style-src 'unsafe-inline'" in page


def test_the_page_puts_the_changes_above_the_table_and_each_hosts_findings_below():
    page = render_html(build_report(fleet(), NOW, previous_report()))
    assert page.index('id="changes"') < page.index('id="fleet"') < page.index('id="host-0"')
    for index, name in enumerate(ORDER):
        assert '<tr data-host="%s"><th scope="row"><a href="#host-%d">%s</a>' % (name, index, name) in page
    assert "docs/runbooks/spam-outbreak.md" in page and "docs/runbooks/planted-files.md" in page
    assert "No audit result: the host was unreachable or the audit failed on it." in page


def test_control_characters_in_a_hosts_strings_reach_neither_the_page_nor_the_terminal():
    results = fleet(planted=("/var/www/site1/\x1b[2J\x1b]0;owned\x07.php",))
    report = build_report(results, NOW, build_report(fleet(planted=()), BEFORE))
    page = render_html(report)
    assert "\x1b" not in page and "\x07" not in page and "\\x1b[2J" in page
    assert not [line for line in summary_lines(report) + finding_lines(report) if "\x1b" in line]


def test_the_terminal_summary_lists_hosts_by_worst_severity_with_counts():
    lines = summary_lines(build_report(fleet(), NOW, previous_report()))
    assert lines == ["fleet: 5 hosts: 2 critical, 1 no result, 1 warning, 1 ok",
                     "mail1: critical (2 critical, 1 warning, 0 info)",
                     "web1: critical (1 critical, 0 warning, 1 info)",
                     "gone1: no result (the audit did not finish on this host)",
                     "shop1: warning (0 critical, 1 warning, 0 info)",
                     "quiet1: ok (0 critical, 0 warning, 0 info)",
                     "since %s: 3 new findings; 1 closed; hosts added: shop1; hosts removed: retired1" % BEFORE,
                     "new: mail1: critical 250 messages in the mail queue; the busiest sender: "
                     "wordpress@site1.example (240)",
                     "new: web1: critical %s looks planted (php_request_eval)" % HOSTILE,
                     "new: web1: info %s added since the baseline of site site1" % HOSTILE,
                     "closed: mail1: critical 300 messages in the mail queue; the busiest sender: "
                     "wordpress@site1.example (290)"]


def test_the_terminal_names_the_first_changes_and_counts_the_rest():
    previous = build_report(fleet(planted=()), BEFORE)
    planted = ["/var/www/site1/shell%02d.php" % number for number in range(8)]
    lines = summary_lines(build_report(fleet(planted=planted), NOW, previous))
    new = [line for line in lines if line.startswith("new: ")]
    assert len(new) == 11 and new[-1] == "new: 6 more in the report"
    assert new[0] == "new: web1: critical /var/www/site1/shell00.php looks planted (php_request_eval)"


def test_written_reports_are_private_whole_and_read_back_as_the_previous_one(tmp_path):
    directory = tmp_path / "hostguard-report"
    first = build_report(fleet(), BEFORE)
    paths = write_report(str(directory), first)
    assert sorted(os.path.basename(path) for path in paths) == ["index.html", "report.json"]
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    for path in paths:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert read_previous(str(directory)) == json.loads(json.dumps(first))
    assert (directory / "index.html").read_text(encoding="utf-8") == render_html(first)
    assert sorted(os.listdir(directory)) == ["index.html", "report.json"]  # no temporary file left


def test_an_unreadable_previous_report_is_no_previous_report(tmp_path):
    (tmp_path / "report.json").write_text('{"schema_version": 1, "hosts": [')
    assert read_previous(str(tmp_path)) is None
    assert read_previous(str(tmp_path / "missing")) is None


def test_the_report_directory_is_refused_inside_a_directory_that_ansible_reads_as_inventory(tmp_path):
    inventory = tmp_path / "prod"
    inventory.mkdir()
    (inventory / "hosts.yml").write_text("all: {}\n")
    problem = directory_problem(str(inventory / "hostguard-report"), [str(inventory)])
    assert problem and str(inventory / "hostguard-report") in problem and "audit_report_dir" in problem
    # A file inventory, a directory beside the inventory directory and a hidden one inside it are fine.
    assert directory_problem(str(inventory / "hostguard-report"), [str(inventory / "hosts.yml")]) is None
    assert directory_problem(str(tmp_path / "prod-report"), [str(inventory)]) is None
    assert directory_problem(str(inventory / ".hostguard-report"), [str(inventory)]) is None
    assert "empty" in directory_problem("", [])


def test_the_report_goes_beside_the_inventory_file_or_beside_an_inventory_directory(tmp_path):
    inventory = tmp_path / "prod"
    (inventory / "more").mkdir(parents=True)
    assert default_directory(str(inventory), [str(inventory / "hosts.yml")]) == str(inventory / "hostguard-report")
    # -i prod/ (a directory; hosts defined in prod/more/hosts.yml too): beside it, where Ansible does not read.
    for inventory_dir in (inventory, inventory / "more"):
        directory = default_directory(str(inventory_dir), [str(inventory)])
        assert directory == str(tmp_path / "prod-hostguard-report")
        assert directory_problem(directory, [str(inventory)]) is None
    assert default_directory(None, ["web1,mail1,"]) == "hostguard-report"


@pytest.mark.parametrize("results, message", [
    ({}, "at least one host"),
    (["web1"], "at least one host"),
    ({"web1": {"host": "web1"}}, "the audit result of web1 is not a hostguard_audit document"),
    ({"web1": {"findings": [], "summary": {"worst": "fine"}}}, "unknown worst severity 'fine'"),
])
def test_input_that_is_not_a_fleet_of_audit_results_is_refused_naming_it(results, message):
    with pytest.raises(FleetReportError, match=message):
        build_report(results, NOW)


def test_each_incident_the_watch_contained_is_named_with_its_time_from_notice_to_containment():
    hosts = fleet()
    hosts["mail1"]["findings"].append({
        "facet": "watch", "severity": "critical", "summary": "watch saw at 2026-12-07T05:00:00+00:00: uid 2001 sent "
        "201 messages; contained: mail from uid 2001 is held", "evidence": {"kind": "mail_rate"},
        "remedy": "docs/runbooks/spam-outbreak.md", "status": "closed",
        "response": {"action": "held", "at": "2026-12-07T05:00:03+00:00", "record": None, "evidence": None,
                     "undo": "ansible-playbook hostguard.hosting.release_mail", "noticed_at": "2026-12-07T04:59:58+00:00",
                     "contained_at": "2026-12-07T05:00:03+00:00", "seconds": 5}})
    report = build_report(hosts, NOW)
    assert errors(report) == []
    assert report["summary"]["contained"] == [{
        "host": "mail1", "facet": "watch", "summary": hosts["mail1"]["findings"][-1]["summary"], "action": "held",
        "noticed_at": "2026-12-07T04:59:58+00:00", "contained_at": "2026-12-07T05:00:03+00:00", "seconds": 5}]
    assert ("contained: mail1: noticed 2026-12-07T04:59:58+00:00 \u2192 contained in 5 s (held): watch saw at "
            "2026-12-07T05:00:00+00:00: uid 2001 sent 201 messages; contained: mail from uid 2001 is held"
            in summary_lines(report))
    assert "held 2026-12-07T05:00:03+00:00; noticed 2026-12-07T04:59:58+00:00 \u2192 contained in 5 s" in (
        html.unescape(render_html(report)))


def test_a_saved_report_prints_its_terminal_summary(tmp_path, capsys):
    report = build_report(fleet(), NOW)
    saved = tmp_path / "report.json"
    saved.write_text(json.dumps(report))
    assert fleet_report_main([str(saved)]) == 0
    assert capsys.readouterr().out.splitlines() == summary_lines(report)
    assert fleet_report_main([]) == 2
