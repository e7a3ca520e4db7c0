"""hostguard.hosting.file_integrity on a lab host: each planted kind of file is found, and nothing else.

Converge recorded a baseline of a clean WordPress 6.4.2 site, then planted what the seeds hold. These tests
run check.yml (a read-only check) once and look at its result, at the host, and at the database.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from labtools import ansible_playbook_stats, changed_tasks

CHECK_PLAYBOOK = str(Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"]) / "check.yml")
CHECK_TASK = "Compare site1 with the baseline"
DOCROOT = "/var/www/site1"
DATABASE = "/var/lib/hostguard/integrity/site1.db"
BACKDOOR = DOCROOT + "/wp-content/uploads/2024/05/cache.php"
IMAGE_WITH_PHP = DOCROOT + "/wp-content/uploads/2024/05/photo.jpg"
ROOT_ONLY_SHELL = DOCROOT + "/wp-content/.cache.php"
EDITED_CORE_FILE = DOCROOT + "/wp-includes/load.php"
DELETED_CORE_FILE = DOCROOT + "/wp-includes/cron.php"
# The families the YARA rules are for, each with the rule that must name it.
FAMILIES = {
    DOCROOT + "/wp-content/uploads/2024/05/notes.txt": "request_through_variable",
    DOCROOT + "/favicon_1a3f84.ico": "php_in_image_file",
    DOCROOT + "/wp-content/loader.php": "include_escaped_path",
    DOCROOT + "/wp-content/session.php": "encrypted_payload_runner",
}
# Recorded in the baseline and left alone since: the check must stay silent about them.
UNTOUCHED_FILES = [DOCROOT + "/index.php", DOCROOT + "/wp-includes/version.php",
                   DOCROOT + "/wp-content/index.php", DOCROOT + "/wp-content/uploads/2024/05/banner.jpg"]
JPEG_MAGIC = "ffd8ff"
DROPPED_TASK = "Look for files dropped in the temporary directories"
# Dropped in the temporary directories by converge: (kind, owner, a rule that must name it or None).
DROPPED = {
    "/dev/shm/.ICE-cache.php": ("php", "www-data", "eval_request"),
    "/tmp/sess_4f2a91.txt": ("php", "www-data", "request_through_variable"),
    "/var/tmp/.kworkerd": ("elf", "customer1", None),
}


def database_state(host):
    database = host.file(DATABASE)
    return {"sha256": database.sha256sum, "mtime": database.mtime}


def task_result(run, host_name, name=CHECK_TASK):
    for task in run["plays"][0]["tasks"]:
        if task["task"]["name"] == name:
            return task["hosts"][host_name]
    raise AssertionError("the task %r did not run: %s" % (name, run["stats"]))


def paths(items):
    return {item["path"] for item in items}


def rules_for(result, path):
    return {finding["rule"] for finding in result["suspicious"] if finding["path"] == path}


# Reads one row of the SQLite baseline on the host by its key (the path's bytes, "/" as NUL), with python3's sqlite3.
READ_ROW = ("import json, os, sqlite3, sys; db = sqlite3.connect('file:%s?mode=ro' % sys.argv[1], uri=True);"
            "db.row_factory = sqlite3.Row; row = db.execute('SELECT * FROM entries WHERE key = ?',"
            " (os.fsencode(sys.argv[2]).replace(b'/', b'\\0'),)).fetchone();"
            "print(json.dumps(None if row is None else {name: (row[name].decode() if isinstance(row[name], bytes)"
            " else row[name]) for name in row.keys() if name != 'key'}))")


def recorded_entry(host, path):
    """The baseline's entry for path, by field name, read from the database on the host."""
    row = json.loads(host.check_output("python3 -c %s %s %s", READ_ROW, DATABASE, path))
    if row is None:
        raise AssertionError("%s is not in the baseline" % path)
    return row


@pytest.fixture(scope="module")
def integrity_check(host):
    """One read-only check, with the database's state before and after it."""
    before = database_state(host)
    run = ansible_playbook_stats(CHECK_PLAYBOOK)
    assert run["rc"] == 0, run["stats"]
    return {"run": run, "result": task_result(run, host.backend.get_hostname()),
            "database_before": before, "database_after": database_state(host)}


def test_the_check_changes_nothing_not_even_the_database(integrity_check):
    assert integrity_check["result"]["changed"] is False
    assert changed_tasks(integrity_check["run"]["plays"]) == []
    assert integrity_check["database_after"] == integrity_check["database_before"]
    assert integrity_check["result"]["database_signed"] is True


def test_the_base64_eval_backdoor_in_the_uploads_is_added_and_suspicious(integrity_check):
    result = integrity_check["result"]
    assert BACKDOOR in paths(result["added"])
    assert "eval_decoded" in rules_for(result, BACKDOOR), result["suspicious"]


def test_php_behind_a_jpeg_header_is_added_and_suspicious(host, integrity_check):
    # The planted file really starts like a JPEG: a check on the magic number alone would let it through.
    assert host.check_output("head -c 3 %s | od -An -tx1 | tr -d ' '" % IMAGE_WITH_PHP) == JPEG_MAGIC
    result = integrity_check["result"]
    assert IMAGE_WITH_PHP in paths(result["added"])
    assert "php_after_image_magic" in rules_for(result, IMAGE_WITH_PHP), result["suspicious"]


def test_a_core_file_edited_with_its_mtime_put_back_is_modified_in_content(host, integrity_check):
    (edited,) = [item for item in integrity_check["result"]["modified"] if item["path"] == EDITED_CORE_FILE]
    # Same size, mode and owner: only the content tells.
    assert edited["changes"] == ["content"]
    assert edited["before"]["size"] == edited["after"]["size"]
    assert edited["before"]["sha256"] != edited["after"]["sha256"]
    # The mtime is the baseline's to the second; only the ctime moved, as after `touch -r`.
    recorded = recorded_entry(host, EDITED_CORE_FILE)
    mtime, ctime = (int(value) for value in host.check_output("stat -c '%%Y %%Z' %s" % EDITED_CORE_FILE).split())
    assert mtime == recorded["mtime_ns"] // 10**9
    assert ctime > recorded["ctime_ns"] // 10**9


def test_a_root_owned_mode_000_webshell_is_found(host, integrity_check):
    planted = host.file(ROOT_ONLY_SHELL)
    assert (planted.uid, planted.gid, planted.mode) == (0, 0, 0)
    result = integrity_check["result"]
    (added,) = [item for item in result["added"] if item["path"] == ROOT_ONLY_SHELL]
    assert (added["uid"], added["gid"], added["mode"]) == (0, 0, "0000")
    assert "known_shell_string" in rules_for(result, ROOT_ONLY_SHELL), result["suspicious"]
    assert result["unreadable"] == []


@pytest.mark.parametrize("path", sorted(FAMILIES))
def test_each_planted_family_is_found_with_its_rule(integrity_check, path):
    result = integrity_check["result"]
    assert path in paths(result["added"])
    assert FAMILIES[path] in rules_for(result, path), result["suspicious"]
    finding = next(item for item in result["suspicious"] if item["path"] == path and item["rule"] == FAMILIES[path])
    assert finding["description"] and finding["line"] and finding["line_number"]


def test_each_file_dropped_in_a_temporary_directory_is_named_with_its_owner_and_rule(host, integrity_check):
    result = task_result(integrity_check["run"], host.backend.get_hostname(), DROPPED_TASK)
    assert result["changed"] is False and result["errors"] == []
    found = {item["path"]: item for item in result["files"]}
    assert set(found) == set(DROPPED), found
    for path, (kind, owner, rule) in DROPPED.items():
        assert (found[path]["kind"], found[path]["owner"]) == (kind, owner)
        if rule:
            assert rule in {finding["rule"] for finding in found[path]["findings"]}
    assert found["/var/tmp/.kworkerd"]["executable"] is True
    assert found["/var/tmp/.kworkerd"]["sha256"] == host.file("/usr/bin/true").sha256sum


def test_the_deleted_core_file_is_removed(host, integrity_check):
    assert not host.file(DELETED_CORE_FILE).exists
    assert paths(integrity_check["result"]["removed"]) == {DELETED_CORE_FILE}


def test_the_wordpress_install_is_reported_with_its_version(integrity_check):
    assert [(install["cms"], install["path"], install["version"]) for install in integrity_check["result"]["cms"]] \
        == [("wordpress", DOCROOT, "6.4.2")]


def test_only_the_planted_and_edited_files_are_reported(integrity_check):
    result = integrity_check["result"]
    assert paths(result["added"]) == {BACKDOOR, IMAGE_WITH_PHP, ROOT_ONLY_SHELL} | set(FAMILIES)
    assert paths(result["modified"]) == {EDITED_CORE_FILE}
    assert paths(result["suspicious"]) <= {BACKDOOR, IMAGE_WITH_PHP, ROOT_ONLY_SHELL, EDITED_CORE_FILE} | set(FAMILIES)
    reported = paths(result["added"]) | paths(result["removed"]) | paths(result["modified"]) \
        | paths(result["suspicious"])
    for untouched in UNTOUCHED_FILES:
        assert untouched not in reported, untouched


def test_a_wrong_database_key_is_refused_and_nothing_is_written(host, integrity_check):
    run = ansible_playbook_stats(CHECK_PLAYBOOK, "-e", json.dumps({"integrity_check_key": "not-the-key"}))
    assert run["rc"] != 0
    result = task_result(run, host.backend.get_hostname())
    assert result["failed"] is True
    assert result["database_trusted"] is False
    assert "HMAC" in result["msg"]
    assert database_state(host) == integrity_check["database_before"]
