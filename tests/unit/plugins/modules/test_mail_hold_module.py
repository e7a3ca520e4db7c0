"""mail_hold run as Ansible runs it: check mode says what a release would do and changes nothing."""

from __future__ import annotations

import os

import pytest
from module_process import run_module

from ansible_collections.hostguard.hosting.plugins.module_utils import watch_mail


def test_check_mode_says_what_would_be_released_and_changes_nothing(tmp_path):
    hold_map = tmp_path / "hold.regexp"
    watch_mail.write_hold_map(str(hold_map), [2001])
    (tmp_path / "held-uid-2001.ids").write_text("AB1\nAB2\n")
    before = hold_map.read_text()
    code, result = run_module("mail_hold", tmp_path, uid=2001, mta="postfix", hold_map=str(hold_map),
                              state_dir=str(tmp_path), _ansible_check_mode=True)
    assert code == 0, result
    assert (result["changed"], result["was_held"], result["released"]) == (True, True, 2)
    assert hold_map.read_text() == before and (tmp_path / "held-uid-2001.ids").exists()


def test_a_uid_that_is_not_held_is_no_change(tmp_path):
    hold_map = tmp_path / "hold.regexp"
    watch_mail.write_hold_map(str(hold_map), [2002])
    code, result = run_module("mail_hold", tmp_path, uid=2001, mta="postfix", hold_map=str(hold_map),
                              state_dir=str(tmp_path), _ansible_check_mode=True)
    assert code == 0, result
    assert (result["changed"], result["was_held"], result["released"]) == (False, False, 0)


def test_a_negative_uid_is_refused_naming_it(tmp_path):
    code, result = run_module("mail_hold", tmp_path, uid=-1, state_dir=str(tmp_path))
    assert code != 0 and result["msg"] == "uid: expected a uid (0 or more), got -1"


def test_check_mode_on_exim_reads_the_watchs_list_and_changes_nothing(tmp_path):
    hold_list = tmp_path / "held-uids"
    watch_mail.write_exim_list(str(hold_list), [2001])
    (tmp_path / "held-uid-2001.ids").write_text("1xa3Dw-000000001KV-06Ag\n")
    before = hold_list.read_text()
    code, result = run_module("mail_hold", tmp_path, uid=2001, mta="exim", hold_map=str(hold_list),
                              state_dir=str(tmp_path), _ansible_check_mode=True)
    assert code == 0, result
    assert (result["changed"], result["mta"], result["was_held"], result["released"]) == (True, "exim", True, 1)
    assert hold_list.read_text() == before and (tmp_path / "held-uid-2001.ids").exists()


def test_check_mode_for_a_sasl_user_reads_the_watchs_map_and_changes_nothing(tmp_path):
    sasl_map = tmp_path / "sasl-hold"
    sasl_map.write_text(watch_mail.sasl_map_text(["flood1"]))
    (tmp_path / "held-sasl-flood1.ids").write_text("AB1\nAB2\nAB3\n")
    before = sasl_map.read_text()
    code, result = run_module("mail_hold", tmp_path, sasl_user="flood1", mta="postfix", hold_map=str(sasl_map),
                              state_dir=str(tmp_path), _ansible_check_mode=True)
    assert code == 0, result
    assert (result["changed"], result["was_held"], result["released"]) == (True, True, 3)
    assert sasl_map.read_text() == before and (tmp_path / "held-sasl-flood1.ids").exists()


def fake_exim(tmp_path, monkeypatch, data_acl):
    """An exim4 on PATH that answers -bP acl_smtp_data as Exim with that ACL live would."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "exim4").write_text(f"#!/bin/sh\necho 'acl_smtp_data = {data_acl}'\n")
    (bin_dir / "exim4").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")


def test_check_mode_of_holding_where_exim_does_not_read_the_list_fails_naming_what_is_live(tmp_path, monkeypatch):
    fake_exim(tmp_path, monkeypatch, "acl_check_data")
    code, result = run_module("mail_hold", tmp_path, sasl_user="flood1", state="held", mta="exim",
                              hold_map=str(tmp_path / "sasl-hold"), state_dir=str(tmp_path), _ansible_check_mode=True)
    assert code != 0
    assert result["msg"].startswith("holding SASL user flood1: exim would not hold it: acl_smtp_data is "
                                    "'acl_check_data', not the watch's hostguard_watch_check_data")


def test_check_mode_of_holding_a_sasl_user_says_what_it_would_hold(tmp_path, monkeypatch):
    fake_exim(tmp_path, monkeypatch, "hostguard_watch_check_data")
    sasl_map = tmp_path / "sasl-hold"
    sasl_map.write_text(watch_mail.sasl_map_text([]))
    (tmp_path / "state.json").write_text('{"facets": {"mail": {"queue_ids": {"AB1": "sasl:flood1", "AB2": "uid:2001"}}}}')
    code, result = run_module("mail_hold", tmp_path, sasl_user="flood1", state="held", mta="exim",
                              hold_map=str(sasl_map), state_dir=str(tmp_path), _ansible_check_mode=True)
    assert code == 0, result
    assert (result["changed"], result["was_held"], result["held"], result["mta"]) == (True, False, 1, "exim")
    assert watch_mail.read_held_sasl_users(str(sasl_map)) == []


def test_check_mode_of_holding_a_held_user_again_is_no_change(tmp_path, monkeypatch):
    # The watch's state still lists the user's queued messages; the hold recorded them already.
    fake_exim(tmp_path, monkeypatch, "hostguard_watch_check_data")
    sasl_map = tmp_path / "sasl-hold"
    watch_mail.write_exim_sasl_list(str(sasl_map), ["flood1"])
    (tmp_path / "state.json").write_text('{"facets": {"mail": {"queue_ids": {"AB1": "sasl:flood1", "AB2": "sasl:flood1"}}}}')
    (tmp_path / "held-sasl-flood1.ids").write_text("AB1\nAB2\n")
    code, result = run_module("mail_hold", tmp_path, sasl_user="flood1", state="held", mta="exim",
                              hold_map=str(sasl_map), state_dir=str(tmp_path), _ansible_check_mode=True)
    assert code == 0, result
    assert (result["changed"], result["was_held"], result["held"]) == (False, True, 0)


@pytest.mark.parametrize("arguments, message", [
    ({"sasl_user": "two words"}, "sasl_user: not a SASL user name the hold map can hold: 'two words'"),
    ({"uid": 2001, "state": "held"}, "state=held: only a sasl_user is held by hand (the watch holds a uid itself)"),
    ({"uid": 2001, "sasl_user": "flood1"}, "parameters are mutually exclusive: uid|sasl_user"),
    ({}, "one of the following is required: uid, sasl_user"),
])
def test_bad_arguments_are_refused_naming_them(tmp_path, arguments, message):
    code, result = run_module("mail_hold", tmp_path, state_dir=str(tmp_path), **arguments)
    assert code != 0 and result["msg"] == message
