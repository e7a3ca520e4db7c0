"""The hostguard.hosting.integrity_baseline playbook and role on a lab host.

Converge recorded site1 through the playbook, with the collection-wide names of molecule.yml
(hostguard_integrity_sites, hostguard_integrity_dir, hostguard_integrity_key), then planted files in it. These tests
look at what the role wrote, run the playbook again, give it bad sites and the former name integrity_accept, and
have the audit read the sealed database.
"""

from __future__ import annotations

import json

import pytest
from labtools import PROJECT_DIR, ansible_playbook_stats, audit_results, changed_tasks, task_name

BASELINE = str(PROJECT_DIR / "playbooks" / "integrity_baseline.yml")
AUDIT = str(PROJECT_DIR / "playbooks" / "audit.yml")
# The audit with only its integrity facet on: the others are proven by their own scenarios.
ONLY_INTEGRITY = {f"audit_{facet}_enabled": False
                  for facet in ("services", "enforcement", "dnsbl", "accounts", "mail_queue", "attacks", "updates",
                                "cms", "disks", "watch", "logins", "senders", "safe_browsing")}
DIRECTORY = "/var/lib/hostguard/integrity"
DATABASE = DIRECTORY + "/site1.db"
REPORT_TASK = "Report each site's baseline"
# Where a refused run must not create anything.
UNTOUCHED_DIRECTORY = "/var/lib/hostguard/integrity-refused"


def database_state(host):
    database = host.file(DATABASE)
    return {"sha256": database.sha256sum, "mtime": database.mtime}


def results(run, name):
    """Every host result of the tasks called name (each item's result for a loop)."""
    found = []
    for play in run["plays"]:
        for task in play["tasks"]:
            if task_name(task) == name:
                for result in task["hosts"].values():
                    found += result.get("results", [result])
    return found


def failures(run):
    return [(task_name(task), result.get("msg", "")) for play in run["plays"] for task in play["tasks"]
            for result in task["hosts"].values() if result.get("failed")]


def test_the_directory_is_root_only_and_the_database_0600(host):
    directory, database = host.file(DIRECTORY), host.file(DATABASE)
    assert directory.is_directory and (directory.uid, directory.gid, directory.mode) == (0, 0, 0o700)
    assert database.is_file and (database.uid, database.gid, database.mode) == (0, 0, 0o600)


def test_a_second_run_changes_nothing_and_says_the_database_is_left_alone(host):
    before = database_state(host)
    run = ansible_playbook_stats(BASELINE)
    assert run["rc"] == 0, failures(run)
    assert changed_tasks(run["plays"]) == []
    (report,) = [result["msg"] for result in results(run, REPORT_TASK) if "msg" in result]
    assert report.startswith("site1: left as recorded (")
    assert database_state(host) == before


@pytest.mark.parametrize(("sites", "named"), [
    ([{"name": "site2", "paths": ["var/www/site2"]}], "site site2: path var/www/site2 is not an absolute path"),
    ([{"name": "../site2", "paths": ["/var/www/site1"]}], "name '../site2' is not a file name"),
    ([{"name": "site1", "paths": ["/var/www/site1"]}, {"name": "site1", "paths": ["/tmp"]}],
     "site site1: the name is given twice"),
    ([{"name": "site2", "paths": ["/var/www/site2"]}], "path /var/www/site2 does not exist"),
    ([{"name": "site2"}], "missing required arguments: paths found in integrity_baseline_sites"),
    ([{"name": "site2", "path": ["/var/www/site1"]}], "integrity_baseline_sites.path. Supported parameters include"),
], ids=["relative-path", "name-with-a-slash", "name-twice", "path-missing-on-the-host", "no-paths", "misspelt-key"])
def test_a_wrong_site_fails_before_any_change_naming_the_value(host, sites, named):
    before = database_state(host)
    run = ansible_playbook_stats(BASELINE, "-e", json.dumps({"hostguard_integrity_sites": sites,
                                                             "hostguard_integrity_dir": UNTOUCHED_DIRECTORY}))
    assert run["rc"] != 0
    found = failures(run)
    assert len(found) == 1 and named in found[0][1], found
    assert changed_tasks(run["plays"]) == []
    assert not host.file(UNTOUCHED_DIRECTORY).exists
    assert database_state(host) == before


def test_the_former_name_integrity_accept_is_taken_with_a_deprecation_message(host):
    # In check mode: the accepted state is reported and nothing is written.
    before = database_state(host)
    run = ansible_playbook_stats(BASELINE, "--check", "-e", "integrity_accept=true")
    assert run["rc"] == 0, failures(run)
    (warning,) = results(run, "Warn that integrity_accept is deprecated")
    assert warning["msg"] == ("integrity_accept is deprecated and will be removed in 2.0.0: give "
                              "integrity_baseline_accept instead.")
    # The planted files: 7 added, the deleted core file, the edited one.
    (report,) = [result["msg"] for result in results(run, REPORT_TASK) if "msg" in result]
    assert report.startswith("site1: accepted 7 added, 1 removed and 1 modified ("), report
    assert database_state(host) == before


def test_the_audit_reads_the_sealed_baseline_with_the_shared_key(host):
    # hostguard_integrity_key sealed the database through the role; the audit must read it with the same key.
    before = database_state(host)
    run = ansible_playbook_stats(AUDIT, "-e", json.dumps(ONLY_INTEGRITY))
    assert run["rc"] == 0, failures(run)
    facts, _lines = audit_results(run["plays"])
    (site,) = facts[host.backend.get_hostname()]["integrity"]["sites"]
    assert (site["name"], site["database"]) == ("site1", DATABASE)
    assert "/var/www/site1/wp-content/uploads/2024/05/cache.php" in site["added"]
    assert site["removed"] == ["/var/www/site1/wp-includes/cron.php"]
    assert database_state(host) == before
