# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Holding a SASL user's mail: the Postfix check_sasl_access map (staged, proven with postmap -q, then live), the
Exim list the watch's DATA ACL reads, and the facet holding a mailbox that passes its limit and releasing it."""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.hostguard.hosting.plugins.module_utils import watch_config, watch_mail, watch_service

from ansible_collections.hostguard.hosting.tests.unit.plugins.module_utils.watch_fakes import Clock, FakeJournal, Runner

START = 1_800_000_000.0


class Postmap(Runner):
    """Runner whose `postmap -q - texthash:FILE` reads FILE as Postfix would (key, white space, value)."""

    def __init__(self, answers=None, broken=False):
        super(Postmap, self).__init__(answers)
        self.broken = broken

    def __call__(self, argv, stdin=None, timeout=120):
        if argv[:2] != ["postmap", "-q"]:
            return super(Postmap, self).__call__(argv, stdin, timeout)
        self.calls.append((list(argv), stdin))
        with open(argv[3].split(":", 1)[1], encoding="utf-8") as stream:
            table = dict(line.rstrip("\n").split(None, 1) for line in stream if line.strip() and line[0] != "#")
        if self.broken:
            table = {}
        found = [f"{key}\t{table[key]}" for key in stdin.split() if key in table]
        return (0 if found else 1), "".join(line + "\n" for line in found), ""


def make_service(tmp_path, runner, clock, **mail):
    settings = {"enabled": True, "per_hour": 20, "contain": "hold", "hold_map": str(tmp_path / "hold.regexp"),
                "sasl_hold_map": str(tmp_path / "sasl-hold")}
    settings.update(mail)
    config = watch_config.validate({"host": "mail1.example", "state_dir": str(tmp_path / "state"),
                                    "facets": {"mail": settings}}, watch_service.FACET_TYPES)
    os.makedirs(config["state_dir"], exist_ok=True)
    journal = FakeJournal()
    service = watch_service.Service(config, journal=journal, run=runner, clock=clock, log=lambda text: None)
    service.state.load()
    service.open_journal()
    service.read_journal()
    return service, journal


def submit(journal, when, queue_id, user, to="buyer@victims.md"):
    journal.add(when, "postfix/submission/smtpd", f"{queue_id}: client=jp.lab[198.18.0.10]:40000, "
                                                  f"sasl_method=PLAIN, sasl_username={user}")
    journal.add(when, "postfix/smtp", f"{queue_id}: to=<{to}>, relay=none, delay=0.1, status=deferred (timeout)")


def events(tmp_path):
    path = tmp_path / "state" / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def flood(service, journal, clock, user="flood1", count=21):
    for number in range(count):
        submit(journal, START + number, f"AB{number:06d}", user)
    submit(journal, START + 1, "CD000001", "other1", to="friend@example.org")
    clock.now = START + 30
    service.read_journal()


def test_a_mailbox_over_its_limit_is_held_by_a_proven_map_and_its_queued_mail_put_on_hold(tmp_path):
    clock = Clock(START)
    runner = Postmap({("postsuper", "-h"): (0, "", "postsuper: Placed on hold: 21 messages\n")})
    service, journal = make_service(tmp_path, runner, clock)
    flood(service, journal, clock)

    argv = [call[0] for call in runner.calls]
    staged = str(tmp_path / "sasl-hold") + ".new"
    assert argv == [["postmap", "-q", "-", f"texthash:{staged}"], ["postfix", "reload"], ["postsuper", "-h", "-"]]
    assert runner.calls[0][1] == "flood1\n"
    held_ids = runner.calls[2][1].split()
    assert len(held_ids) == 21 and "CD000001" not in held_ids
    assert watch_mail.read_held_sasl_users(str(tmp_path / "sasl-hold")) == ["flood1"]
    assert "flood1 HOLD " in (tmp_path / "sasl-hold").read_text() and not os.path.exists(staged)

    event = events(tmp_path)[0]
    assert event["sasl_user"] == "flood1" and event["source"] == "sasl:flood1"
    assert "mailbox flood1 (SMTP AUTH)" in event["summary"]
    action = event["action"]
    assert action["sasl_user"] == "flood1" and action["held"] == 21 and not action.get("failed")
    assert "mail of SASL user flood1 is held" in action["done"]
    assert action["undo"].endswith("-e release_mail_hosts=mail1.example -e release_mail_sasl_user=flood1")
    remembered = (tmp_path / "state" / "held-sasl-flood1.ids").read_text().split()
    assert sorted(remembered) == sorted(held_ids)


def test_a_map_postmap_does_not_read_as_hold_is_never_made_live(tmp_path):
    clock = Clock(START)
    runner = Postmap(broken=True)
    service, journal = make_service(tmp_path, runner, clock)
    flood(service, journal, clock)

    assert not (tmp_path / "sasl-hold").exists()
    assert not (tmp_path / "sasl-hold.new").exists()
    assert [call[0][0] for call in runner.calls] == ["postmap"]  # no reload, no postsuper
    action = events(tmp_path)[0]["action"]
    assert action["failed"] is True and "postmap -q does not read flood1 as HOLD" in action["done"]
    assert service.state.facet("mail")["sources"]["sasl:flood1"].get("held") is not True


def test_mail_of_a_held_mailbox_submitted_later_is_held_and_remembered_at_the_next_check(tmp_path):
    clock = Clock(START)
    runner = Postmap()
    service, journal = make_service(tmp_path, runner, clock)
    flood(service, journal, clock)
    submit(journal, START + 40, "LATE00001", "flood1")  # held by smtpd already, or before the reload: held again
    submit(journal, START + 40, "CD000002", "other1")
    clock.now = START + 45
    service.read_journal()
    service.tick()
    assert runner.calls[-1] == (["postsuper", "-h", "-"], "LATE00001\n")
    assert "LATE00001" in (tmp_path / "state" / "held-sasl-flood1.ids").read_text().split()


def test_release_takes_the_user_out_and_releases_its_messages_and_counting_starts_again(tmp_path):
    clock = Clock(START)
    service, journal = make_service(tmp_path, Postmap(), clock)
    flood(service, journal, clock)
    runner = Postmap({("postsuper", "-H"): (0, "", "postsuper: Released from hold: 21 messages\n")})
    result = watch_mail.release_sasl_user(str(tmp_path / "state"), str(tmp_path / "sasl-hold"), "flood1", runner)
    assert result == {"sasl_user": "flood1", "was_held": True, "released": 21, "queue_ids": 21}
    assert watch_mail.read_held_sasl_users(str(tmp_path / "sasl-hold")) == []
    # nobody left to prove: the map is made live without postmap, then Postfix reloads and the messages go
    assert [call[0][:2] for call in runner.calls] == [["postfix", "reload"], ["postsuper", "-H"]]
    assert not (tmp_path / "state" / "held-sasl-flood1.ids").exists()

    clock.now = START + 100
    service.tick()
    source = service.state.facet("mail")["sources"].get("sasl:flood1")
    assert source is None or (not source["held"] and not source["minutes"])


def test_a_release_of_a_user_that_is_not_held_changes_nothing(tmp_path):
    watch_mail.Postfix(Postmap(), sasl_map_path=str(tmp_path / "sasl-hold"))._write_sasl_map(["other1"])
    runner = Postmap()
    result = watch_mail.release_sasl_user(str(tmp_path), str(tmp_path / "sasl-hold"), "flood1", runner)
    assert result == {"sasl_user": "flood1", "was_held": False, "released": 0, "queue_ids": 0}
    assert runner.calls == [] and watch_mail.read_held_sasl_users(str(tmp_path / "sasl-hold")) == ["other1"]


def test_exims_list_is_one_user_a_line_and_holding_freezes_the_queued_messages(tmp_path):
    path = str(tmp_path / "held-sasl-users")
    runner = Runner({("exim4", "-Mf"): (0, "Message 1a-2b-3c is now frozen\nMessage 1a-2b-3d is now frozen\n", "")})
    exim = watch_mail.Exim(runner, sasl_map_path=path)
    assert exim.hold_sasl_user("info@site1.example", ["1a-2b-3c", "1a-2b-3d"]) == 2
    assert exim.hold_sasl_user("flood1", []) == 0
    text = (tmp_path / "held-sasl-users").read_text()
    assert [line for line in text.splitlines() if not line.startswith("#")] == ["flood1", "info@site1.example"]
    assert exim.held_sasl_users() == ["flood1", "info@site1.example"]
    runner = Runner({("exim4", "-Mt"): (0, "Message 1a-2b-3c is no longer frozen\n", "")})
    (tmp_path / "held-sasl-flood1.ids").write_text("1a-2b-3c\n")
    result = watch_mail.release_sasl_user(str(tmp_path), path, "flood1", runner, "exim")
    assert result == {"sasl_user": "flood1", "was_held": True, "released": 1, "queue_ids": 1}
    assert watch_mail.read_held_sasl_users(path) == ["info@site1.example"]


def test_holding_by_hand_takes_the_queued_messages_the_watch_saw(tmp_path):
    state = {"facets": {"mail": {"queue_ids": {"AB1": "sasl:flood1", "AB2": "sasl:other1", "AB3": "sasl:flood1"}}}}
    (tmp_path / "state.json").write_text(json.dumps(state))
    live = f"check_sasl_access texthash:{tmp_path / 'sasl-hold'},\n    reject_unauth_pipelining\n"
    runner = Postmap({("postsuper", "-h"): (0, "", "postsuper: Placed on hold: 2 messages\n"),
                      ("postconf", "-h"): (0, live, "")})
    result = watch_mail.hold_sasl_user(str(tmp_path), str(tmp_path / "sasl-hold"), "flood1", runner)
    assert result == {"sasl_user": "flood1", "was_held": False, "held": 2, "queue_ids": 2}
    assert runner.calls[-1] == (["postsuper", "-h", "-"], "AB1\nAB3\n")
    assert watch_mail.held_queue_ids(str(tmp_path), sasl_user="flood1") == ["AB1", "AB3"]

    # Held again: the messages the hold recorded are not put on hold twice.
    calls = len(runner.calls)
    again = watch_mail.hold_sasl_user(str(tmp_path), str(tmp_path / "sasl-hold"), "flood1", runner)
    assert (again["was_held"], again["queue_ids"]) == (True, 0)
    assert not any(call[0][:2] == ["postsuper", "-h"] and call[1] for call in runner.calls[calls:])
    assert (tmp_path / "held-sasl-flood1.ids").read_text() == "AB1\nAB3\n"


@pytest.mark.parametrize("live", ["", "reject_unauth_pipelining",
                                  "check_sasl_access texthash:/etc/postfix/another-map",
                                  "check_client_access texthash:{map}"])
def test_holding_by_hand_where_postfix_does_not_read_the_map_is_refused_before_any_change(tmp_path, live):
    sasl_map = tmp_path / "sasl-hold"
    (tmp_path / "state.json").write_text(json.dumps({"facets": {"mail": {"queue_ids": {"AB1": "sasl:flood1"}}}}))
    runner = Postmap({("postconf", "-h"): (0, live.format(map=sasl_map) + "\n", "")})
    with pytest.raises(RuntimeError) as info:
        watch_mail.hold_sasl_user(str(tmp_path), str(sasl_map), "flood1", runner)
    assert f"has no check_sasl_access texthash:{sasl_map}" in str(info.value)
    assert [argv for argv, _stdin in runner.calls] == [["postconf", "-h", "smtpd_end_of_data_restrictions"]]
    assert not sasl_map.exists() and watch_mail.held_queue_ids(str(tmp_path), sasl_user="flood1") == []


@pytest.mark.parametrize("answer, live", [
    ((0, "acl_smtp_data = hostguard_watch_check_data\n", ""), True),
    ((0, "acl_smtp_data = acl_check_data\n", ""), False),
    ((1, "", "exim: unknown option\n"), False),
])
def test_exim_holds_by_hand_only_where_the_watchs_data_acl_is_live(tmp_path, answer, live):
    path = tmp_path / "held-sasl-users"
    runner = Runner({("exim4", "-bP"): answer})
    if live:
        assert watch_mail.hold_sasl_user(str(tmp_path), str(path), "flood1", runner, "exim")["held"] == 0
        assert watch_mail.read_held_sasl_users(str(path)) == ["flood1"]
    else:
        with pytest.raises(RuntimeError, match="exim would not hold it"):
            watch_mail.hold_sasl_user(str(tmp_path), str(path), "flood1", runner, "exim")
        assert not path.exists()


@pytest.mark.parametrize("user", ["two words", "user:colon", "../etc", ".hidden", "a/b", "", "tab\tuser"])
def test_a_name_the_map_cannot_hold_is_refused_naming_it(user):
    with pytest.raises(ValueError) as info:
        watch_mail.check_sasl_user(user)
    assert repr(user) in str(info.value)


def test_a_relative_sasl_hold_map_is_refused_naming_it():
    with pytest.raises(watch_config.ConfigError) as info:
        watch_config.validate({"host": "h", "facets": {"mail": {"sasl_hold_map": "sasl-hold"}}},
                              watch_service.FACET_TYPES)
    assert str(info.value) == "facets.mail.sasl_hold_map: expected an absolute path, got 'sasl-hold'"


def test_postfixs_log_of_a_message_held_at_the_end_of_data_is_remembered_at_once(tmp_path):
    clock = Clock(START)
    service, journal = make_service(tmp_path, Postmap(), clock)
    flood(service, journal, clock)
    submit(journal, START + 40, "HELD00001", "flood1")
    journal.add(START + 40, "postfix/submission/smtpd",
                "HELD00001: hold: END-OF-MESSAGE from jp.lab[198.18.0.10]: <flood1>: SASL login name hostguard-watch: "
                "mail of SASL user flood1 held; from=<flood1@mailboxes.example> to=<late@victims.md> proto=ESMTP "
                "helo=<probe.lab.example>")
    clock.now = START + 41
    service.read_journal()
    assert "HELD00001" in (tmp_path / "state" / "held-sasl-flood1.ids").read_text().split()


def test_exims_log_of_a_message_its_data_acl_froze_is_remembered_at_once(tmp_path):
    clock = Clock(START)
    mainlog = tmp_path / "mainlog"
    mainlog.touch()
    service, _journal = make_service(tmp_path, Runner(), clock, mta="exim", exim_mainlog=str(mainlog),
                                     hold_map=str(tmp_path / "held-uids"), sasl_hold_map=str(tmp_path / "held-sasl"))
    service.read_files()
    lines = []
    for number in range(22):
        qid = f"1xaGVl-0000000{number:04d}-174J"
        if number == 21:
            lines.append(f"2027-01-15 08:00:40 [300] {qid} hostguard-watch: held-sasl=flood1")
        lines.append(f"2027-01-15 08:00:{number:02d} [300] {qid} <= flood1@mailboxes.example H=(probe) "
                     f"[198.18.0.10] P=esmtpsa X=TLS1.3 A=hostguard_dovecot_plain:flood1 S=400")
    with open(mainlog, "a", encoding="utf-8") as stream:
        stream.write("".join(line + "\n" for line in lines))
    clock.now = START + 60
    service.read_files()
    assert watch_mail.read_held_sasl_users(str(tmp_path / "held-sasl")) == ["flood1"]
    remembered = (tmp_path / "state" / "held-sasl-flood1.ids").read_text().split()
    assert "1xaGVl-00000000021-174J" in remembered and len(set(remembered)) == 22
