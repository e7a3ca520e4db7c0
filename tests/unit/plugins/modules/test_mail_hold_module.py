"""mail_hold run as Ansible runs it: check mode says what a release would do and changes nothing."""

from __future__ import annotations

from module_process import run_module

from ansible_collections.hostguard.hosting.plugins.module_utils import watch_mail


def test_check_mode_says_what_would_be_released_and_changes_nothing(tmp_path):
    hold_map = tmp_path / "hold.regexp"
    watch_mail.write_hold_map(str(hold_map), [2001])
    (tmp_path / "held-uid-2001.ids").write_text("AB1\nAB2\n")
    before = hold_map.read_text()
    code, result = run_module("mail_hold", tmp_path, uid=2001, hold_map=str(hold_map), state_dir=str(tmp_path),
                              _ansible_check_mode=True)
    assert code == 0, result
    assert (result["changed"], result["was_held"], result["released"]) == (True, True, 2)
    assert hold_map.read_text() == before and (tmp_path / "held-uid-2001.ids").exists()


def test_a_uid_that_is_not_held_is_no_change(tmp_path):
    hold_map = tmp_path / "hold.regexp"
    watch_mail.write_hold_map(str(hold_map), [2002])
    code, result = run_module("mail_hold", tmp_path, uid=2001, hold_map=str(hold_map), state_dir=str(tmp_path),
                              _ansible_check_mode=True)
    assert code == 0, result
    assert (result["changed"], result["was_held"], result["released"]) == (False, False, 0)


def test_a_negative_uid_is_refused_naming_it(tmp_path):
    code, result = run_module("mail_hold", tmp_path, uid=-1, state_dir=str(tmp_path))
    assert code != 0 and result["msg"] == "uid: expected a uid (0 or more), got -1"
