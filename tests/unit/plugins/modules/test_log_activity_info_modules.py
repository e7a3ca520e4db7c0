"""logins_info and mail_senders_info run as Ansible runs them: bad input refused naming the value, Exim's log read."""

from __future__ import annotations

import shutil
import time

import pytest
from module_process import run_module


def test_logins_info_refuses_a_country_that_is_not_a_code_naming_it(tmp_path):
    code, result = run_module("logins_info", tmp_path, expected_countries=["JP", "Moldova"], _ansible_check_mode=True)
    assert code != 0 and result["failed"] is True
    assert result["msg"] == "expected_countries: 'Moldova' is not a two-letter country code"


def test_logins_info_refuses_a_country_table_that_is_not_one_naming_the_line(tmp_path):
    code, result = run_module("logins_info", tmp_path, countries="198.18.0.0/24 JP\n")
    assert code != 0 and result["msg"].startswith("countries: line 1: expected 'FIRST LAST CC'")


def test_mail_senders_info_reads_exim_s_mainlog_and_changes_nothing(tmp_path):
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    mainlog = tmp_path / "mainlog"
    mainlog.write_text(f"{stamp} [5115] cwd=/home/site1/public_html 3 args: /usr/sbin/sendmail -t -i\n"
                       f"{stamp} [5115] 1xa3Dw-000000001KV-06Ag <= site1@ex13.lab.example U=site1 P=local S=419\n"
                       f"{stamp} [5117] 1xa3Dw-000000001KV-06Ag == buyer0@victims.example R=smarthost "
                       "T=remote_smtp_smarthost defer (101): Network is unreachable\n")
    code, result = run_module("mail_senders_info", tmp_path, mta="exim", exim_mainlog=str(mainlog), days=1,
                              _ansible_check_mode=True)
    assert code == 0, result
    assert (result["changed"], result["mta"], result["messages"]) == (False, "exim", 1)
    (sender,) = result["senders"]
    assert sender["cwd"] == "/home/site1/public_html" and sender["top_recipient_domains"] == {"victims.example": 1}


@pytest.mark.skipif(any(shutil.which(name) for name in ("postsuper", "exim4", "exim")),
                    reason="this machine has an MTA")
def test_mail_senders_info_on_a_host_without_an_mta_has_no_senders(tmp_path):
    code, result = run_module("mail_senders_info", tmp_path)
    assert code == 0, result
    assert (result["mta"], result["senders"], result["messages"]) == (None, [], 0)
