"""The audit role's report tasks (roles/audit/tasks/report.yml) and the fleet_report action, run by a real
ansible-playbook on the controller: three hosts on the local connection carry the demo fleet's hostguard_audit
(tests/demo_fleet.py), one fails before it has one. The audit itself needs the lab (molecule/baseline).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import referencing
from demo_fleet import fleet

REPO = Path(__file__).resolve().parents[2]
FILES = REPO / "roles" / "audit" / "files"
HOST_SCHEMA = json.loads((FILES / "hostguard_audit.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(
    json.loads((FILES / "hostguard_fleet_report.schema.json").read_text()),
    registry=referencing.Registry().with_resource(HOST_SCHEMA["$id"], referencing.Resource.from_contents(HOST_SCHEMA)))
INVENTORY = """all:
  hosts: {web1: {}, mail1: {}, gone1: {}}
  vars:
    ansible_connection: local
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
"""
PLAYBOOK = """- name: Stand in for the audit
  hosts: all
  gather_facts: false
  tasks:
    - name: Fail where the audit would not finish
      ansible.builtin.fail:
        msg: the audit did not finish here
      when: inventory_hostname == 'gone1'
    - name: Keep the findings with the audit
      ansible.builtin.set_fact:
        hostguard_audit: "{{ lookup('file', playbook_dir ~ '/results/' ~ inventory_hostname ~ '.json') | from_json }}"
    - name: Write the fleet report
      ansible.builtin.include_role:
        name: hostguard.hosting.audit
        tasks_from: report
"""


PREFLIGHT = """- name: The audit's preflight
  hosts: all
  gather_facts: false
  tasks:
    - name: Refuse what the audit must refuse
      ansible.builtin.include_role:
        name: hostguard.hosting.audit
        tasks_from: preflight
"""


@pytest.fixture()
def fleet_dir(tmp_path):
    (tmp_path / "inventory").mkdir()
    (tmp_path / "inventory" / "hosts.yml").write_text(INVENTORY)
    (tmp_path / "play.yml").write_text(PLAYBOOK)
    (tmp_path / "preflight.yml").write_text(PREFLIGHT)
    write_results(tmp_path, fleet())
    return tmp_path


def write_results(directory, results):
    (directory / "results").mkdir(exist_ok=True)
    for name in ("web1", "mail1"):
        (directory / "results" / (name + ".json")).write_text(json.dumps(results[name]))


def play(directory, *args, inventory="inventory/hosts.yml", playbook="play.yml"):
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
               ANSIBLE_COLLECTIONS_PATH=str(REPO / ".build" / "unit"), ANSIBLE_NOCOLOR="1")
    result = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", inventory, playbook, *args],
                            cwd=directory, env=env, text=True, capture_output=True, timeout=300, check=False)
    output = json.loads(result.stdout)
    tasks = {task["task"]["name"].rsplit(" : ", 1)[-1]: task["hosts"] for task in output["plays"][0]["tasks"]}
    return tasks


def only(host_results):
    """The result of a run_once task: it ran on one host."""
    assert len(host_results) == 1, host_results
    return next(iter(host_results.values()))


def test_a_run_writes_the_fleet_report_beside_the_inventory_with_every_host(fleet_dir):
    tasks = play(fleet_dir)
    written = only(tasks["Write the fleet report on the controller"])
    directory = fleet_dir / "inventory" / "hostguard-report"
    # The report is the audit's output, not a change: the first one is news to the fleet, not a changed task.
    assert written["changed"] is False and written["fleet_changed"] is True and written["dir"] == str(directory)
    report = json.loads((directory / "report.json").read_text())
    assert [error.message for error in VALIDATOR.iter_errors(report)] == []
    assert [(entry["host"], entry["worst"]) for entry in report["hosts"]] == [
        ("mail1", "critical"), ("web1", "critical"), ("gone1", "no_result")]
    assert report["hosts"][0]["result"] == fleet()["mail1"]
    assert "&lt;script&gt;" in (directory / "index.html").read_text()
    shown = only(tasks["Show the fleet at a glance"])["msg"]
    assert shown[0] == "fleet: 3 hosts: 2 critical, 1 no result"
    assert shown[-1] == "the fleet report: %s" % (directory / "index.html")


def test_a_second_run_that_finds_the_same_says_so_and_check_mode_writes_nothing(fleet_dir):
    play(fleet_dir)
    again = only(play(fleet_dir)["Write the fleet report on the controller"])
    assert again["fleet_changed"] is False and again["changes"]["previous"] is not None
    assert again["summary"][-1].endswith(": 0 new findings; 0 closed")
    report_json = fleet_dir / "inventory" / "hostguard-report" / "report.json"
    before = report_json.read_bytes()
    # web1's planted file is gone (quarantined): check mode says so, with the findings as its diff, and writes nothing.
    write_results(fleet_dir, fleet(planted=()))
    checked = only(play(fleet_dir, "--check", "--diff")["Write the fleet report on the controller"])
    assert checked["changed"] is False and checked["fleet_changed"] is True
    assert checked["written"] is False and checked["paths"] == []
    assert [change["host"] for change in checked["changes"]["closed"]] == ["web1", "web1"]
    diff = checked["diff"]
    assert "looks planted" in diff["before"] and "looks planted" not in diff["after"]
    assert report_json.read_bytes() == before


def test_a_limited_run_names_the_hosts_it_left_out_without_calling_them_removed(fleet_dir):
    play(fleet_dir)
    limited = only(play(fleet_dir, "--limit", "web1")["Write the fleet report on the controller"])
    assert limited["changes"]["hosts_not_audited"] == ["gone1", "mail1"] and limited["changes"]["hosts_removed"] == []
    assert limited["fleet_changed"] is False


def test_an_inventory_directory_gets_its_report_beside_it_and_refuses_one_inside(fleet_dir):
    written = only(play(fleet_dir, inventory="inventory")["Write the fleet report on the controller"])
    assert written["dir"] == str(fleet_dir / "inventory-hostguard-report")
    assert (fleet_dir / "inventory-hostguard-report" / "index.html").exists()
    inside = str(fleet_dir / "inventory" / "reports")
    refused = only(play(fleet_dir, "-e", "audit_report_dir=" + inside, inventory="inventory")[
        "Write the fleet report on the controller"])
    assert refused["failed"] is True and inside in refused["msg"] and "inventory directory" in refused["msg"]
    assert not os.path.exists(inside)


def test_a_report_directory_that_cannot_be_written_fails_naming_it(fleet_dir):
    (fleet_dir / "taken").write_text("a file, not a directory\n")
    target = str(fleet_dir / "taken" / "report")
    failed = only(play(fleet_dir, "-e", "audit_report_dir=" + target)["Write the fleet report on the controller"])
    assert failed["failed"] is True and failed["msg"].startswith("could not write the fleet report in %s: " % target)


def test_the_audit_refuses_a_report_directory_inside_an_inventory_directory_before_it_reads_a_host(fleet_dir):
    inside = str(fleet_dir / "inventory" / "reports")
    refused = play(fleet_dir, "-e", "audit_report_dir=" + inside, inventory="inventory", playbook="preflight.yml")
    (result,) = refused["Refuse a report directory inside an inventory directory"].values()
    assert result["failed"] is True and inside in result["msg"]
    passed = play(fleet_dir, inventory="inventory", playbook="preflight.yml")
    (result,) = passed["Refuse a report directory inside an inventory directory"].values()
    assert not result.get("failed"), result
