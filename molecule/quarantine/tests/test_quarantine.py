"""The quarantine and restore playbooks on a lab host, seen as the responder and as the compromised account.

Converge quarantined site1's planted webshell and quarantined then restored all of site2; these tests
check the result, and run one more docroot quarantine and restore to look at site2 while it is locked.
"""

from __future__ import annotations

import json
import shlex

import pytest
from labtools import PROJECT_DIR, ansible_playbook_stats, changed_tasks

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
