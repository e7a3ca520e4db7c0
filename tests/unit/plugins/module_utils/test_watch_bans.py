# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The watch's bans facet: fail2ban's log as fail2ban 1.0 (Debian 12) and 1.1 (Debian 13) write it, and the
bruteforce role's journal report of an attacked account, written by that role's own summary()."""
from __future__ import annotations

import importlib.util
import os
import time
from pathlib import Path

import pytest

from ansible_collections.hostguard.hosting.plugins.module_utils import watch_config, watch_service
from ansible_collections.hostguard.hosting.tests.unit.plugins.module_utils.watch_fakes import (
    Clock, FakeJournal, read_events, start_service, step)

START = 1_800_000_000.0
ACTION = Path(__file__).resolve().parents[4] / "roles" / "bruteforce" / "files" / "hostguard-accounts.py"


def bruteforce_action():
    spec = importlib.util.spec_from_file_location("hostguard_accounts", ACTION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stamp(when):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(when)) + ",123"


def ban(when, jail, address, restore=False):
    return (f"{stamp(when)} fail2ban.actions        [812]: NOTICE  [{jail}] {'Restore ' if restore else ''}"
            f"Ban {address}\n")


def append(log, *lines):
    with open(log, "a", encoding="utf-8") as stream:
        stream.write("".join(lines))


def service_for(tmp_path, clock, journal=None, **settings):
    return start_service(tmp_path, {"bans": dict({"log": str(tmp_path / "fail2ban.log"), "per_hour": 5}, **settings)},
                         journal=journal, clock=clock)


def test_bans_past_the_hourly_rate_are_one_event_naming_jails_and_networks(tmp_path):
    log = tmp_path / "fail2ban.log"
    append(log, ban(START - 100, "sshd", "203.0.113.1"))
    clock = Clock(START)
    service = service_for(tmp_path, clock)
    step(service)  # first start: the last hour is learnt
    append(log, *[ban(START + number, "sshd", f"203.0.113.{10 + number}") for number in range(4)])
    append(log, ban(START + 5, "dovecot", "2001:db8:77::1"),
           f"{stamp(START + 6)} fail2ban.actions        [812]: NOTICE  [sshd] Unban 203.0.113.1\n",
           ban(START + 7, "sshd", "203.0.113.200", restore=True),
           ban(START + 8, "hostguard-accounts", "customer1"))
    clock.now = START + 60
    step(service)
    [event] = read_events(tmp_path)
    assert (event["kind"], event["count"], event["limit"]) == ("ban_rate", 6, 5)
    assert event["jails"] == {"sshd": 5, "dovecot": 1}
    assert event["top_networks"] == {"203.0.113.0/24": 5, "2001:db8:77::/64": 1}
    assert "203.0.113.200" not in event["addresses"] and "customer1" not in event["addresses"]

    append(log, ban(START + 70, "sshd", "203.0.113.50"))
    clock.now = START + 120
    step(service)
    assert len(read_events(tmp_path)) == 1  # said once per alert interval


def test_bans_older_than_an_hour_do_not_count_and_one_ban_is_no_event(tmp_path):
    log = tmp_path / "fail2ban.log"
    log.write_text("")
    clock = Clock(START)
    service = service_for(tmp_path, clock)
    step(service)
    append(log, *[ban(START - 4000 + number, "sshd", f"203.0.113.{number}") for number in range(10)])
    append(log, ban(START + 1, "sshd", "198.18.0.9"))
    clock.now = START + 60
    step(service)
    assert read_events(tmp_path) == []
    assert len(service.state.facet("bans")["bans"]) == 1


def test_a_rotated_log_and_a_restart_lose_no_ban_and_count_none_twice(tmp_path):
    log = tmp_path / "fail2ban.log"
    log.write_text("")
    clock = Clock(START)
    service = service_for(tmp_path, clock)
    step(service)
    append(log, *[ban(START + number, "sshd", f"203.0.113.{number}") for number in range(3)])
    clock.now = START + 60
    step(service)
    service.state.save()
    # while the watch is stopped: two more bans, then logrotate moves the file and fail2ban opens a new one
    append(log, *[ban(START + 70 + number, "sshd", f"203.0.113.{50 + number}") for number in range(2)])
    os.rename(log, tmp_path / "fail2ban.log.1")
    append(log, ban(START + 80, "sshd", "203.0.113.99"), f"{stamp(START + 81)} fail2ban.actions  [812]: NOT")
    clock.now = START + 120
    again = service_for(tmp_path, clock)
    step(again)
    [event] = read_events(tmp_path)
    assert event["count"] == 6
    # the half-written line is read once it is whole
    append(log, "ICE  [sshd] Ban 203.0.113.98\n")
    clock.now = START + 180
    step(again)
    assert len(again.state.facet("bans")["bans"]) == 7


def test_an_account_reported_attacked_from_many_addresses_is_an_event(tmp_path):
    action = bruteforce_action()
    matches = [f"Dec  6 03:00:0{n} watch1 dovecot: auth: pam_unix(dovecot:auth): authentication failure; "
               f"logname= uid=0 euid=0 tty=dovecot ruser=customer1 rhost={address}  user=customer1"
               for n, address in enumerate(["198.51.100.10", "203.0.113.10", "203.0.113.20", "198.18.0.10"])]
    record = action.plan("customer1", matches, "report", lambda address: address.startswith("198.51.100."))
    journal, clock = FakeJournal(), Clock(START)
    service = service_for(tmp_path, clock, journal=journal)
    service.read_journal()
    journal.add(START + 1, "hostguard-bruteforce", action.summary(record))
    clock.now = START + 2
    service.read_journal()
    [event] = read_events(tmp_path)
    assert (event["kind"], event["account"], event["count"], event["address_count"]) == (
        "account_attacked", "customer1", 4, 4)
    assert event["addresses"] == ["198.51.100.10", "203.0.113.10", "203.0.113.20", "198.18.0.10"]
    assert event["ignored"] == ["198.51.100.10"] and event["banned"] == []
    assert event["runbook"].startswith("leaked-password.md")


def test_an_account_failing_from_fewer_addresses_than_asked_is_no_event(tmp_path):
    action = bruteforce_action()
    matches = ["x rhost=203.0.113.10  user=customer1"] * 10
    record = action.plan("customer1", matches, "ban", lambda address: False)
    journal, clock = FakeJournal(), Clock(START)
    service = service_for(tmp_path, clock, journal=journal)
    service.read_journal()
    journal.add(START + 1, "hostguard-bruteforce", action.summary(record))
    service.read_journal()
    assert read_events(tmp_path) == []


@pytest.mark.parametrize("settings, message", [
    ({"per_hour": 0}, "facets.bans.per_hour: expected a whole number at least 1, got 0"),
    ({"log": "fail2ban.log"}, "facets.bans.log: expected an absolute path, got 'fail2ban.log'"),
])
def test_bad_bans_settings_are_refused_naming_the_value(settings, message):
    with pytest.raises(watch_config.ConfigError) as info:
        watch_config.validate({"host": "h", "facets": {"bans": settings}}, watch_service.FACET_TYPES)
    assert str(info.value) == message
