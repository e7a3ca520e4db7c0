# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import json
import os

import pytest

from ansible_collections.hostguard.hosting.plugins.module_utils import watch_config, watch_mail, watch_service

from ansible_collections.hostguard.hosting.tests.unit.plugins.module_utils.watch_fakes import Clock, FakeJournal, Runner

START = 1_800_000_000.0


def make_service(tmp_path, journal, runner, clock, **mail):
    settings = {"enabled": True, "per_hour": 20, "hold_map": str(tmp_path / "hold.regexp")}
    settings.update(mail)
    config = watch_config.validate({"host": "mail1.example", "state_dir": str(tmp_path / "state"),
                                    "facets": {"mail": settings}}, watch_service.FACET_TYPES)
    os.makedirs(config["state_dir"], exist_ok=True)
    service = watch_service.Service(config, journal=journal, run=runner, clock=clock, log=lambda text: None)
    service.state.load()
    service.open_journal()
    return service


def send(journal, when, queue_id, uid=1001, script=None, to="someone@example.md"):
    journal.add(when, "postfix/pickup", f"{queue_id}: uid={uid} from=<user{uid}>")
    if script:
        journal.add(when, "postfix/cleanup", f"{queue_id}: info: header X-PHP-Originating-Script: {uid}:{script} "
                                             f"from local; from=<user{uid}@mail1.example>")
    journal.add(when, "postfix/qmgr", f"{queue_id}: from=<user{uid}@mail1.example>, size=300, nrcpt=1 (queue active)")
    journal.add(when, "postfix/smtp", f"{queue_id}: to=<{to}>, relay=none, delay=0.1, status=deferred (timeout)")


def events(tmp_path):
    path = tmp_path / "state" / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_a_source_over_its_hourly_limit_is_named_once_with_script_count_and_domains(tmp_path):
    journal, clock = FakeJournal(), Clock(START)
    service = make_service(tmp_path, journal, Runner(), clock)
    for number in range(30):
        send(journal, START + number, f"AB{number:06d}", uid=0, script="contact.php", to=f"r{number}@victims.md")
        if number < 10:
            send(journal, START + number, f"CD{number:06d}", uid=1002, to="friend@example.org")
    clock.now = START + 31
    service.read_journal()

    found = events(tmp_path)
    assert [event["kind"] for event in found] == ["mail_rate"]
    event = found[0]
    assert event["uid"] == 0 and event["account"] == "root"
    assert event["script"] == "contact.php"
    assert event["count"] == 21  # the message that passed the limit of 20
    assert event["host"] == "mail1.example" and "summary" in event and "time" in event
    assert "contact.php" in event["summary"] and "root" in event["summary"]
    assert list(event["top_recipient_domains"]) == ["victims.md"]


def test_a_restart_goes_on_from_the_cursor_and_repeats_no_alert(tmp_path):
    journal, clock = FakeJournal(), Clock(START)
    service = make_service(tmp_path, journal, Runner(), clock)
    for number in range(25):
        send(journal, START + number, f"AB{number:06d}")
    clock.now = START + 30
    service.read_journal()
    service.state.save()
    assert len(events(tmp_path)) == 1

    for number in range(25, 40):
        send(journal, START + 40 + number, f"AB{number:06d}")
    clock.now = START + 100
    again = make_service(tmp_path, journal, Runner(), clock)
    handled = again.read_journal()
    assert handled == 15 * 3  # only the lines after the cursor (pickup, qmgr, smtp: cleanup is not sent)
    assert len(events(tmp_path)) == 1
    assert MailFacetCount(again) == 40


def MailFacetCount(service):
    source = service.state.facet("mail")["sources"]["uid:1001"]
    return watch_mail.MailFacet.hourly_count(source, service.clock())


def test_first_start_learns_the_last_hour_without_alerting_on_what_already_went_out(tmp_path):
    journal, clock = FakeJournal(), Clock(START)
    for number in range(25):
        send(journal, START - 600 + number, f"AB{number:06d}")
    service = make_service(tmp_path, journal, Runner(), clock)
    service.read_journal()
    assert events(tmp_path) == []
    assert MailFacetCount(service) == 25
    send(journal, START + 5, "AB999999")
    clock.now = START + 6
    service.read_journal()
    assert [event["count"] for event in events(tmp_path)] == [26]


def test_hold_puts_the_queued_mail_on_hold_and_holds_new_mail_of_that_uid_only(tmp_path):
    journal, clock = FakeJournal(), Clock(START)
    runner = Runner({("postsuper", "-h"): (0, "", "postsuper: Placed on hold: 21 messages\n")})
    service = make_service(tmp_path, journal, runner, clock, contain="hold")
    service.read_journal()
    for number in range(21):
        send(journal, START + number, f"AB{number:06d}", uid=1001)
    send(journal, START + 1, "CD000001", uid=1002)
    clock.now = START + 30
    service.read_journal()

    argv = [call[0] for call in runner.calls]
    assert argv == [["postfix", "reload"], ["postsuper", "-h", "-"]]
    held_ids = runner.calls[1][1].split()
    assert len(held_ids) == 21 and "CD000001" not in held_ids
    assert watch_mail.read_held_uids(str(tmp_path / "hold.regexp")) == [1001]
    event = events(tmp_path)[0]
    assert event["action"]["held"] == 21 and "release_mail_uid=1001" in event["action"]["undo"]

    # Postfix's own log of a message held at submission is remembered for the release
    journal.add(START + 40, "postfix/cleanup", "EF000001: hold: header Received: by mail1.example (Postfix, from "
                "userid 1001)??id EF000001; Sun, 06 Dec 2026 from local; from=<user1001@mail1.example>: held")
    clock.now = START + 41
    service.read_journal()
    remembered = (tmp_path / "state" / "held-uid-1001.ids").read_text().split()
    assert "EF000001" in remembered and "AB000000" in remembered


def test_the_hold_map_rule_matches_postfixs_received_header_for_that_uid_only():
    import re

    rule = watch_mail.hold_rule(1001)
    pattern = re.compile(rule.split("/")[1])
    assert pattern.search("Received: by mail1.example (Postfix, from userid 1001)")
    assert not pattern.search("Received: by mail1.example (Postfix, from userid 10011)")
    assert not pattern.search("Received: from evil (Postfix, from userid 1001)")
    assert watch_mail.MAP_RULE_RE.match(rule).group("uid") == "1001"


def test_release_takes_the_rule_out_and_releases_the_remembered_messages(tmp_path):
    map_path = str(tmp_path / "hold.regexp")
    watch_mail.write_hold_map(map_path, [1001, 1002])
    (tmp_path / "held-uid-1001.ids").write_text("AB1\nAB2\nAB1\n")
    runner = Runner({("postsuper", "-H"): (0, "", "postsuper: Released from hold: 2 messages\n")})
    result = watch_mail.release(str(tmp_path), map_path, 1001, runner)
    assert result == {"uid": 1001, "was_held": True, "released": 2, "queue_ids": 2}
    assert watch_mail.read_held_uids(map_path) == [1002]
    assert runner.calls[1] == (["postsuper", "-H", "-"], "AB1\nAB2\n")
    assert not (tmp_path / "held-uid-1001.ids").exists()


def test_a_source_several_times_its_usual_rate_is_named_below_the_hourly_limit(tmp_path):
    journal, clock = FakeJournal(), Clock(START)
    service = make_service(tmp_path, journal, Runner(), clock, per_hour=1000, rate_factor=3, rate_floor=10)
    service.read_journal()
    service.state.facet("mail")["sources"]["uid:1001"] = {"minutes": {}, "scripts": {}, "domains": {},
                                                          "usual": 5.0, "hour": None, "uid": 1001}
    for number in range(16):
        send(journal, START + number, f"AB{number:06d}")
    clock.now = START + 20
    service.read_journal()
    assert [event["count"] for event in events(tmp_path)] == [16]
    assert "usual" in events(tmp_path)[0]["summary"]


@pytest.mark.parametrize("settings, message", [
    ({"per_hour": 0}, "facets.mail.per_hour: expected a whole number at least 1, got 0"),
    ({"contain": "delete"}, "facets.mail.contain: expected one of none, hold, got 'delete'"),
    ({"hold_map": "relative"}, "facets.mail.hold_map: expected an absolute path, got 'relative'"),
])
def test_bad_mail_settings_are_refused_naming_the_value(settings, message):
    with pytest.raises(watch_config.ConfigError) as info:
        watch_config.validate({"host": "h", "facets": {"mail": settings}}, watch_service.FACET_TYPES)
    assert str(info.value) == message


def test_a_hold_that_fails_is_said_once_not_on_every_message(tmp_path):
    journal, clock = FakeJournal(), Clock(START)
    runner = Runner({("postfix", "reload"): (1, "", "postfix: fatal: getifaddrs: Address family not supported\n")})
    service = make_service(tmp_path, journal, runner, clock, contain="hold")
    service.read_journal()
    for number in range(30):
        send(journal, START + number, f"AB{number:06d}")
    clock.now = START + 40
    service.read_journal()
    found = events(tmp_path)
    assert len(found) == 1 and found[0]["action"]["failed"] is True
    assert "Address family not supported" in found[0]["action"]["done"]
    assert [call[0] for call in runner.calls] == [["postfix", "reload"]]


def test_mail_submitted_before_postfix_read_the_hold_rule_is_held_at_the_next_check(tmp_path):
    journal, clock = FakeJournal(), Clock(START)
    runner = Runner({("postsuper", "-h"): (0, "", "postsuper: Placed on hold: 1 message\n")})
    service = make_service(tmp_path, journal, runner, clock, contain="hold")
    service.read_journal()
    for number in range(21):
        send(journal, START + number, f"AB{number:06d}")
    send(journal, START + 22, "LATE00001")  # cleanup had not read the new rule yet
    send(journal, START + 23, "HELD00001")
    journal.add(START + 23, "postfix/cleanup", "HELD00001: hold: header Received: by watch1 (Postfix, from userid "
                "1001)??id HELD00001; from local; from=<user1001@watch1>: held")
    clock.now = START + 30
    service.read_journal()
    service.tick()
    stragglers = [call for call in runner.calls if call[0][:2] == ["postsuper", "-h"]][-1]
    assert stragglers[1] == "LATE00001\n"


def test_a_released_account_counts_again_from_zero(tmp_path):
    journal, clock = FakeJournal(), Clock(START)
    service = make_service(tmp_path, journal, Runner(), clock, contain="hold")
    service.read_journal()
    for number in range(21):
        send(journal, START + number, f"AB{number:06d}")
    clock.now = START + 30
    service.read_journal()
    assert service.state.facet("mail")["sources"]["uid:1001"]["held"] is True
    watch_mail.write_hold_map(str(tmp_path / "hold.regexp"), [])  # what a release does
    clock.now = START + 100
    service.tick()
    # nothing counted and not held: a source with nothing left is forgotten
    assert "uid:1001" not in service.state.facet("mail")["sources"]


def test_a_restart_keeps_which_queue_id_is_whose(tmp_path):
    journal, clock = FakeJournal(), Clock(START)
    service = make_service(tmp_path, journal, Runner(), clock)
    journal.add(START + 1, "postfix/pickup", "AB000001: uid=1001 from=<user1001>")
    clock.now = START + 2
    service.read_journal()
    service.state.save()
    # the facets are made before the state is loaded, as in run_forever
    config = service.config
    again = watch_service.Service(config, journal=journal, run=Runner(), clock=clock, log=lambda text: None)
    again.state.load()
    again.open_journal()
    journal.add(START + 3, "postfix/smtp", "AB000001: to=<a@victims.md>, relay=none, status=deferred")
    clock.now = START + 4
    again.read_journal()
    source = again.state.facet("mail")["sources"]["uid:1001"]
    assert source["domains"] == {"victims.md": 1}


def test_what_is_held_now_is_read_from_the_mtas_hold_map_and_list(tmp_path, monkeypatch):
    monkeypatch.setattr(watch_mail.Postfix, "HOLD_MAP", str(tmp_path / "hold.regexp"))
    monkeypatch.setattr(watch_mail.Postfix, "SASL_HOLD_MAP", str(tmp_path / "sasl-hold"))
    postfix = {"postsuper": "/usr/sbin/postsuper", "postqueue": "/usr/sbin/postqueue", "postconf": "/usr/sbin/postconf"}
    which = postfix.get
    assert watch_mail.held_now("auto", which) == {"uids": [], "sasl_users": []}
    watch_mail.write_hold_map(str(tmp_path / "hold.regexp"), [2001, 1002])
    (tmp_path / "sasl-hold").write_text(watch_mail.sasl_map_text(["mailer1"]))
    assert watch_mail.held_now("auto", which) == {"uids": [1002, 2001], "sasl_users": ["mailer1"]}
    # released: the map no longer names the uid, whatever the events log says
    watch_mail.write_hold_map(str(tmp_path / "hold.regexp"), [1002])
    assert watch_mail.held_now("postfix", which)["uids"] == [1002]
    # a host without an MTA holds nothing
    assert watch_mail.held_now("auto", {}.get) == {"uids": [], "sasl_users": []}
