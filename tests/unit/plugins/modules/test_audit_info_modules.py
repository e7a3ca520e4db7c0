"""The info modules the audit reads through, run as Ansible runs them on this machine (no MTA, no firewall record)."""

from __future__ import annotations

import shutil

import pytest
from module_process import run_module


def test_firewall_policy_info_without_a_record_reports_no_policy(tmp_path):
    code, result = run_module("firewall_policy_info", tmp_path, path=str(tmp_path / "firewall-policy.json"),
                              _ansible_check_mode=True)
    assert code == 0, result
    assert (result["changed"], result["recorded"], result["in_force"], result["record"]) == (False, False, False, {})


def test_firewall_policy_info_refuses_a_file_that_is_not_the_roles_record(tmp_path):
    record = tmp_path / "firewall-policy.json"
    record.write_text("not json")
    code, result = run_module("firewall_policy_info", tmp_path, path=str(record))
    assert code != 0 and result["failed"] is True
    assert result["msg"].startswith(f"{record} is not the firewall role's record")


@pytest.mark.skipif(any(shutil.which(name) for name in ("postsuper", "exim4", "exim")),
                    reason="this machine has an MTA")
def test_mail_queue_info_on_a_host_without_an_mta_says_so(tmp_path):
    code, result = run_module("mail_queue_info", tmp_path, _ansible_check_mode=True)
    assert code != 0 and result["failed"] is True
    assert result["msg"] == "found neither Postfix (postsuper) nor Exim (exim4, exim) on this host"


def test_account_cleanup_info_reports_and_changes_nothing_on_this_machine(tmp_path):
    code, result = run_module("account_cleanup_info", tmp_path, state_dir=str(tmp_path / "state"),
                              unused_days=100000)
    assert code == 0, result
    assert result["changed"] is False and "diff" not in result
    # No account here is older than 270 years, and nothing was recorded: nothing to flag, no lock.
    assert (result["accounts"], result["locks"]) == ([], [])
    assert not (tmp_path / "state").exists()


def test_account_cleanup_info_refuses_to_name_root_as_a_leaver(tmp_path):
    code, result = run_module("account_cleanup_info", tmp_path, state_dir=str(tmp_path / "state"), remove=["root"])
    assert code != 0 and result["failed"] is True
    assert "root" in result["msg"]


@pytest.mark.skipif(shutil.which("fail2ban-client") is not None, reason="this machine has fail2ban")
def test_fail2ban_jails_info_on_a_host_without_fail2ban_says_no_jail_is_in_force(tmp_path):
    code, result = run_module("fail2ban_jails_info", tmp_path, jails={"sshd": "journal"}, _ansible_check_mode=True)
    assert code == 0, result
    assert result["changed"] is False and result["jails"] == {}
    assert result["problems"] == ["fail2ban is not installed (no fail2ban-client): none of the jails is in force"]


def test_quarantine_info_without_manifests_lists_nothing_and_creates_nothing(tmp_path):
    code, result = run_module("quarantine_info", tmp_path, manifest_dir=str(tmp_path / "quarantine"),
                              _ansible_check_mode=True)
    assert code == 0, result
    assert (result["changed"], result["quarantined"], result["unreadable"]) == (False, [], [])
    assert not (tmp_path / "quarantine").exists()
