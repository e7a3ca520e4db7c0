"""The file_integrity module as Ansible runs it: a process reading its arguments from a JSON file."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest
from module_process import run_module as run_module_as_ansible

# Where the webshell_rules role puts the rule files on a host; here, the collection's own copy.
RULES_DIR = Path(__file__).resolve().parents[4] / "roles" / "webshell_rules" / "files"
WEBSHELL = b"<?php @eval(base64_decode($_POST['z'])); ?>\n"


def run_module(tmp_path, **arguments):
    """Run the module with ``arguments`` (the collection's rules unless named); return (exit code, result)."""
    arguments.setdefault("rules_dir", str(RULES_DIR))
    return run_module_as_ansible("file_integrity", tmp_path, **arguments)


@pytest.fixture
def docroot(tmp_path):
    root = tmp_path / "www"
    (root / "wp-content/uploads").mkdir(parents=True)
    (root / "index.php").write_bytes(b"<?php echo 'hello';\n")
    (tmp_path / "db").mkdir()
    return root


def test_baseline_in_check_mode_reports_a_change_and_writes_nothing(tmp_path, docroot):
    database = tmp_path / "db" / "site.db"
    code, result = run_module(tmp_path, paths=[str(docroot)], database=str(database), state="baseline",
                              _ansible_check_mode=True, _ansible_diff=True)
    assert code == 0
    assert result["changed"] is True
    assert "# entries: 4" in result["diff"]["after"]
    assert not database.exists()


def test_check_finds_a_planted_shell_and_changes_nothing(tmp_path, docroot):
    database = str(tmp_path / "db" / "site.db")
    assert run_module(tmp_path, paths=[str(docroot)], database=database, state="baseline")[1]["changed"] is True
    shell = docroot / "wp-content/uploads/cache.php"
    shell.write_bytes(WEBSHELL)
    code, result = run_module(tmp_path, paths=[str(docroot)], database=database)
    assert code == 0
    assert result["changed"] is False
    assert [item["path"] for item in result["added"]] == [str(shell)]
    assert {item["rule"] for item in result["suspicious"]} == {"eval_decoded", "eval_request", "php_in_upload_dir"}


def test_rules_that_are_not_on_the_host_fail_naming_the_file(tmp_path, docroot):
    database = str(tmp_path / "db" / "site.db")
    code, result = run_module(tmp_path, paths=[str(docroot)], database=database, state="baseline",
                              rules_dir=str(tmp_path / "nowhere"))
    assert code != 0
    assert "%s/php_content.yar is missing" % (tmp_path / "nowhere") in result["msg"]
    assert "webshell_rules role" in result["msg"]
    broken = tmp_path / "local.yar"
    broken.write_text("rule local { strings: $a = /unclosed( condition: $a }\n")
    code, result = run_module(tmp_path, paths=[str(docroot)], database=database, state="baseline",
                              rule_files=[str(broken)])
    assert code != 0
    assert "rule file %s does not compile" % broken in result["msg"]
    assert not os.path.exists(database)


def test_bad_input_fails_naming_the_value(tmp_path, docroot):
    code, result = run_module(tmp_path, paths=["var/www"], database=str(tmp_path / "db" / "site.db"))
    assert code != 0
    assert result["failed"] is True
    assert result["msg"] == "path 'var/www' is not absolute"


def test_a_tampered_database_fails_as_untrusted_and_the_key_is_not_logged(tmp_path, docroot):
    database = tmp_path / "db" / "site.db"
    key = "k3y-that-must-not-leak"
    run_module(tmp_path, paths=[str(docroot)], database=str(database), state="baseline", database_key=key)
    connection = sqlite3.connect(str(database), isolation_level=None)
    connection.execute("UPDATE entries SET mode = 493 WHERE type = 'file'")  # every file made group-writable
    connection.close()
    code, result = run_module(tmp_path, paths=[str(docroot)], database=str(database), database_key=key)
    assert code != 0
    assert result["database_trusted"] is False
    assert "failed HMAC verification" in result["msg"]
    assert key not in json.dumps(result)
