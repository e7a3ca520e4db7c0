"""The quarantine and restore playbooks on a lab host, seen as the responder and as the compromised account.

Converge quarantined site1's planted webshell and quarantined then restored all of site2; these tests
check the result, and run one more docroot quarantine and restore to look at site2 while it is locked. Last, the
audit before and after the quarantine of a second webshell: what it finds planted, then that it is quarantined.
"""

from __future__ import annotations

import base64
import json
import shlex

import pytest
from labtools import PROJECT_DIR, ansible_playbook_stats, audit_results, changed_tasks, task_name

WEBSHELL = "/var/www/site1/wp-content/uploads/2024/05/cache.php"
WEBSHELL_CONTENT = "<?php @eval(base64_decode($_POST['z'])); ?>\n"
CUSTOMER = "customer1"
CUSTOMER_UID = 2001
SNAPSHOT = "/usr/local/lib/hostguard-test/tree_snapshot.py"
SITE2_BEFORE = "/root/site2-before.json"
MANIFEST_DIR = "/var/lib/hostguard/quarantine"
EVIDENCE_DIR = "/var/lib/hostguard/evidence"
QUARANTINE = str(PROJECT_DIR / "playbooks" / "quarantine.yml")
RESTORE = str(PROJECT_DIR / "playbooks" / "restore.yml")
AUDIT = str(PROJECT_DIR / "playbooks" / "audit.yml")
BASELINE = str(PROJECT_DIR / "playbooks" / "integrity_baseline.yml")
SITE1 = {"hostguard_integrity_sites": [{"name": "site1", "paths": ["/var/www/site1"]}]}
SITE2_VARS = {"quarantine_hosts": "web", "restore_hosts": "web", "quarantine_scope": "docroot",
              "quarantine_docroots": ["/var/www/site2"], "restore_paths": ["/var/www/site2"]}


def as_customer(host, command):
    return host.run("runuser -u %s -- %s" % (CUSTOMER, command))


def site2_now(host):
    return json.loads(host.check_output("python3 %s /var/www/site2 -" % SNAPSHOT))


def site2_before(host):
    return json.loads(host.file(SITE2_BEFORE).content_string)


def run_playbook(playbook, variables, *options):
    return ansible_playbook_stats(playbook, "-e", json.dumps(variables), *options)


# --- the planted webshell -----------------------------------------------------------------------

def test_the_webshell_is_root_owned_mode_000_and_immutable(host):
    planted = host.file(WEBSHELL)
    assert (planted.uid, planted.gid, planted.mode) == (0, 0, 0)
    assert "i" in host.check_output("lsattr %s" % WEBSHELL).split()[0]


@pytest.mark.parametrize("command, error", [
    ("cat %s" % WEBSHELL, "Permission denied"),
    ("chmod 644 %s" % WEBSHELL, "Operation not permitted"),
    ("chown %s %s" % (CUSTOMER, WEBSHELL), "Operation not permitted"),
    ("mv %s %s.moved" % (WEBSHELL, WEBSHELL), "Operation not permitted"),
    ("rm -f %s" % WEBSHELL, "Operation not permitted"),
])
def test_the_customer_cannot_read_chmod_move_or_delete_the_webshell(host, command, error):
    attempt = as_customer(host, command)
    assert attempt.rc != 0, command
    assert error in attempt.stderr, attempt.stderr
    assert host.file(WEBSHELL).exists


def test_the_rest_of_site1_is_untouched(host):
    index = host.file("/var/www/site1/index.php")
    assert (index.uid, index.gid, index.mode) == (CUSTOMER_UID, CUSTOMER_UID, 0o644)
    assert as_customer(host, "cat /var/www/site1/index.php").rc == 0
    uploads = host.file("/var/www/site1/wp-content/uploads/2024/05")
    assert (uploads.uid, uploads.mode) == (CUSTOMER_UID, 0o755)


def test_the_webshell_manifest_is_root_only_and_records_the_customer_as_owner(host):
    directory = host.file(MANIFEST_DIR)
    assert (directory.uid, directory.mode) == (0, 0o700)
    manifests = host.check_output("grep -l %s %s/*.json" % (shlex.quote('"path": "%s"' % WEBSHELL), MANIFEST_DIR))
    manifest = json.loads(host.file(manifests.split()[0]).content_string)
    (entry,) = manifest["entries"]
    assert (entry["uid"], entry["gid"], entry["mode"]) == (CUSTOMER_UID, CUSTOMER_UID, "0644")
    assert entry["sha256"] == host.check_output("sha256sum %s" % WEBSHELL).split()[0]


def test_the_evidence_copy_keeps_the_webshell_with_its_numeric_owner(host):
    archives = host.check_output("ls %s/*.tar.gz" % EVIDENCE_DIR).split()
    assert len(archives) == 1
    listing = host.check_output("tar -tvzf %s --numeric-owner cache.php" % archives[0])
    assert listing.startswith("-rw-r--r-- %d/%d" % (CUSTOMER_UID, CUSTOMER_UID)), listing
    assert host.check_output("tar -xOzf %s cache.php" % archives[0]) + "\n" == WEBSHELL_CONTENT
    assert host.file(archives[0]).mode == 0o600


# --- site2: quarantined and restored by converge ------------------------------------------------

def test_site2_is_restored_identical_to_before_file_by_file(host):
    before = site2_before(host)
    # The entries a careless restore gets wrong are all part of it.
    assert {"latest", "index-copy.php", "cgi-bin/counter.cgi", "private/empty", ".user.ini"} <= set(before)
    assert before["cgi-bin/counter.cgi"]["mode"] == 0o4750
    now = site2_now(host)
    assert sorted(now) == sorted(before)
    for path, recorded in before.items():
        assert now[path] == recorded, path


def test_site2_was_quarantined_whole_before_it_was_restored(host):
    restored = host.check_output("grep -l '\"path\": \"/var/www/site2\"' %s/restored/*.json" % MANIFEST_DIR).split()
    assert restored, "no restored manifest of /var/www/site2"
    manifest = json.loads(host.file(restored[0]).content_string)
    assert len(manifest["entries"]) == len(site2_before(host))


# --- a docroot quarantine seen while it is in force ----------------------------------------------

def test_check_mode_lists_the_docroot_quarantine_and_changes_nothing(host):
    run = run_playbook(QUARANTINE, SITE2_VARS, "--check", "--diff")
    assert run["rc"] == 0, run["stats"]
    assert [name.rsplit(" : ", 1)[-1] for name in changed_tasks(run["plays"])] == [
        "Record the paths in manifests, then lock them"]
    assert site2_now(host) == site2_before(host)


def test_a_docroot_quarantine_locks_the_customer_out_and_the_restore_brings_everything_back(host):
    before = site2_before(host)
    quarantined = run_playbook(QUARANTINE, SITE2_VARS)
    assert quarantined["rc"] == 0, quarantined["stats"]
    try:
        locked = site2_now(host)
        assert {(entry["uid"], entry["gid"]) for entry in locked.values()} == {(0, 0)}
        assert {entry["mode"] for path, entry in locked.items() if "target" not in entry} == {0}
        for command in ("ls /var/www/site2", "cat /var/www/site2/index.php", "chmod 755 /var/www/site2",
                        "mv /var/www/site2/wp-content /var/www/site2/x"):
            assert as_customer(host, command).rc != 0, command
        again = run_playbook(QUARANTINE, SITE2_VARS)
        assert changed_tasks(again["plays"]) == []
    finally:
        restored = run_playbook(RESTORE, SITE2_VARS)
    assert restored["rc"] == 0, restored["stats"]
    # SITE2_VARS gives the paths by their former name, restore_paths: still taken, with a deprecation.
    assert "restore_paths is deprecated" in json.dumps(restored["plays"])
    assert site2_now(host) == before
    assert as_customer(host, "cat /var/www/site2/index.php").rc == 0


def test_a_path_outside_the_docroots_is_refused_before_any_change(host):
    passwd = host.file("/etc/passwd")
    before = (passwd.uid, passwd.mode)
    run = run_playbook(QUARANTINE, dict(SITE2_VARS, quarantine_scope="files", quarantine_paths=["/etc/passwd"]))
    assert run["rc"] != 0
    assert "path /etc/passwd is outside the docroots /var/www/site2" in json.dumps(run["plays"])
    assert changed_tasks(run["plays"]) == []
    assert (host.file("/etc/passwd").uid, host.file("/etc/passwd").mode) == before


@pytest.mark.parametrize("variables, named", [
    ({"quarantine_scope": "everything"}, "quarantine_scope"),
    ({"quarantine_docroots": {"site2": "/var/www/site2"}}, "quarantine_docroots"),
    ({"quarantine_scope": "files", "quarantine_paths": []}, "quarantine_paths is empty"),
])
def test_bad_input_fails_before_any_change_naming_the_variable(host, variables, named):
    before = site2_now(host)
    run = run_playbook(QUARANTINE, dict(SITE2_VARS, **variables))
    assert run["rc"] != 0
    assert named in json.dumps(run["plays"])
    assert changed_tasks(run["plays"]) == []
    assert site2_now(host) == before


# --- the audit knows what the quarantine did -------------------------------------------------------

SECOND_WEBSHELL = "/var/www/site1/wp-content/uploads/2024/05/thumb.php"


def audit_web1():
    """The audit of site1 (blocklists skipped): (run, web1's hostguard_audit, its lines, its fleet report entry)."""
    run = run_playbook(AUDIT, dict(SITE1, audit_dnsbl_addresses=[]))
    assert run["rc"] == 0, run["stats"]
    facts, lines = audit_results(run["plays"])
    (written,) = [result for play in run["plays"] for task in play["tasks"]
                  if task_name(task) == "Write the fleet report on the controller" for result in task["hosts"].values()]
    with open("%s/report.json" % written["dir"], encoding="utf-8") as stream:
        report = json.load(stream)
    (entry,) = [entry for entry in report["hosts"] if entry["host"] == "web1"]
    return run, facts["web1"], lines["web1"], dict(entry, changes=report["changes"])


def about(findings, path):
    return [finding for finding in findings if finding["evidence"].get("path") == path]


def state_of(host):
    """What the audit must leave as it is: site1 entry by entry, the manifests, the integrity database, the units."""
    return {"site1": json.loads(host.check_output("python3 %s /var/www/site1 -" % SNAPSHOT)),
            "manifests": host.check_output("find %s -printf '%%p %%m %%u %%s %%T@\\n' | sort" % MANIFEST_DIR),
            "database": host.check_output("sha256sum /var/lib/hostguard/integrity/site1.db"),
            "units": host.check_output("systemctl list-units --type=service --state=running --no-legend --plain")}


def test_the_audit_after_the_quarantine_reports_the_planted_file_quarantined_and_closed(host):
    # site1 as it is now is the baseline: the webshell converge quarantined is part of it.
    baseline = run_playbook(BASELINE, SITE1)
    assert baseline["rc"] == 0, baseline["stats"]
    encoded = base64.b64encode(WEBSHELL_CONTENT.encode()).decode()
    planted = as_customer(host, "sh -c %s" % shlex.quote("echo %s | base64 -d > %s" % (encoded, SECOND_WEBSHELL)))
    assert planted.rc == 0, planted.stderr

    _run, first, first_lines, first_entry = audit_web1()
    found = about(first["findings"], SECOND_WEBSHELL)
    assert {(finding["severity"], finding["status"]) for finding in found} == {("critical", "open"), ("info", "open")}
    assert [line for line in first_lines if line.startswith("looks planted: %s " % SECOND_WEBSHELL)], first_lines
    assert first_entry["facets"]["integrity"] == "critical"
    # The webshell converge quarantined is named as quarantined, its lock in force.
    (held,) = [item for item in first["integrity"]["quarantined"] if item["path"] == WEBSHELL]
    assert held["lock"] == "in_force" and held["evidence"].startswith(EVIDENCE_DIR + "/")

    quarantined = run_playbook(QUARANTINE, {"quarantine_hosts": "web", "quarantine_docroots": ["/var/www/site1"],
                                            "quarantine_paths": [SECOND_WEBSHELL]})
    assert quarantined["rc"] == 0, quarantined["stats"]
    before = state_of(host)

    run, second, lines, entry = audit_web1()
    # The audit changes nothing: no task changed, and the site, the manifests, the database and the units are as
    # they were.
    assert changed_tasks(run["plays"]) == []
    assert state_of(host) == before

    found = about(second["findings"], SECOND_WEBSHELL)
    assert {(finding["severity"], finding["status"]) for finding in found} == {("critical", "closed"),
                                                                               ("info", "closed")}
    pattern = shlex.quote('"path": "%s"' % SECOND_WEBSHELL)
    (manifest,) = host.check_output("grep -l %s %s/*.json" % (pattern, MANIFEST_DIR)).split()
    for finding in found:
        assert finding["response"]["action"] == "quarantined" and finding["response"]["record"] == manifest
        assert json.loads(finding["response"]["undo"].split(" -e ", 1)[1].strip("'")) == {
            "quarantine_docroots": ["/var/www/site1"], "quarantine_restore_paths": [SECOND_WEBSHELL]}
        assert "quarantined %s (manifest %s)" % (finding["response"]["at"], manifest) in finding["summary"]
    assert not [finding for finding in second["findings"] if finding["status"] == "open"
                and SECOND_WEBSHELL in json.dumps(finding)]
    assert not [line for line in lines if line.startswith("looks planted: %s " % SECOND_WEBSHELL)], lines
    assert [line for line in lines if line.startswith("quarantined: %s " % SECOND_WEBSHELL)], lines
    assert {item["path"]: item["lock"] for item in second["integrity"]["quarantined"]} == {
        WEBSHELL: "in_force", SECOND_WEBSHELL: "in_force"}
    # The fleet report ranks web1's integrity by what is still open, counts the closed apart, and says the planted
    # file's finding was closed since the first audit.
    assert entry["facets"]["integrity"] == "ok"
    assert entry["summary"]["closed"] == second["summary"]["closed"] >= 3
    closed = {change["summary"] for change in entry["changes"]["closed"] if change["host"] == "web1"}
    assert "%s looks planted (%s)" % (SECOND_WEBSHELL, found[0]["evidence"]["rule"]) in closed
    assert not [change for change in entry["changes"]["new"] if SECOND_WEBSHELL in change["summary"]]
