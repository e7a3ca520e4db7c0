"""The planted_files_info module as Ansible runs it: a process reading its arguments from a JSON file."""

from __future__ import annotations

import pytest
from module_process import run_module

pytest.importorskip("yara")

from ansible_collections.hostguard.hosting.plugins.module_utils.webshell_rules import default_rules_dir  # noqa: E402


@pytest.fixture
def shm(tmp_path):
    directory = tmp_path / "shm"
    directory.mkdir()
    (directory / "x.php").write_bytes(b"<?php system($_GET['c']);\n")
    return directory


def test_a_dropped_shell_is_reported_and_nothing_changes(tmp_path, shm):
    code, result = run_module("planted_files_info", tmp_path, paths=[str(shm), str(tmp_path / "absent")], rules_dir=default_rules_dir(),
                              _ansible_check_mode=True)
    assert code == 0, result
    assert result["changed"] is False
    assert [item["path"] for item in result["files"]] == [str(shm / "x.php")]
    assert "eval_request" in {finding["rule"] for finding in result["files"][0]["findings"]}
    assert result["absent"] == [str(tmp_path / "absent")]
    assert result["summary"]["with_findings"] == 1


def test_a_rule_file_that_does_not_compile_fails_naming_it_before_anything_is_read(tmp_path, shm):
    broken = tmp_path / "broken.yar"
    broken.write_text("rule broken { strings: $a = \"x\" condition: $b }\n")
    code, result = run_module("planted_files_info", tmp_path, paths=[str(shm)], rules_dir=default_rules_dir(), rule_files=[str(broken)])
    assert code == 1
    assert result["failed"] is True and str(broken) in result["msg"] and "does not compile" in result["msg"]
    assert "files" not in result


def test_without_the_rule_files_the_task_fails_naming_the_role_that_ships_them(tmp_path, shm):
    code, result = run_module("planted_files_info", tmp_path, paths=[str(shm)], rules_dir=str(tmp_path / "no-rules"))
    assert code == 1
    assert "hostguard.hosting.webshell_rules" in result["msg"]


def test_a_relative_path_fails_naming_it(tmp_path):
    code, result = run_module("planted_files_info", tmp_path, paths=["tmp"], rules_dir=default_rules_dir())
    assert code == 1 and "'tmp' is not an absolute path" in result["msg"]
