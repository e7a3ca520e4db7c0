# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mail facet on Exim: the main log as Debian's exim4 writes it (fixtures from the lab's Exim 4.96 and 4.98,
with the watch's log selector and ACL), freezing and thawing through a stand-in for the exim4 command."""

from __future__ import annotations

import json
import os
import pwd
import time
from pathlib import Path

import pytest

from ansible_collections.hostguard.hosting.plugins.module_utils import watch_config, watch_mail, watch_service

from ansible_collections.hostguard.hosting.tests.unit.plugins.module_utils.watch_fakes import Clock, FakeJournal, Runner

FIXTURES = Path(__file__).parent / "fixtures" / "watch_exim"
RELEASES = ["4.96", "4.98"]
# The lab's customers, whose names the log carries (U=site1): the uids they had there
ACCOUNTS = {"site1": 2001, "site2": 2002}


@pytest.fixture(autouse=True)
def lab_accounts(monkeypatch):
    real_getpwnam, real_getpwuid = pwd.getpwnam, pwd.getpwuid

    def getpwnam(name):
        if name in ACCOUNTS:
            return pwd.struct_passwd((name, "x", ACCOUNTS[name], ACCOUNTS[name], "", f"/home/{name}", "/bin/sh"))
        return real_getpwnam(name)

    def getpwuid(uid):
        names = {number: name for name, number in ACCOUNTS.items()}
        if uid in names:
            return getpwnam(names[uid])
        return real_getpwuid(uid)

    monkeypatch.setattr(watch_mail.pwd, "getpwnam", getpwnam)
    monkeypatch.setattr(watch_mail.pwd, "getpwuid", getpwuid)


def fixture_lines(release):
    return (FIXTURES / f"mainlog-{release}").read_text().splitlines()


def log_start(release):
    first = fixture_lines(release)[0]
    return time.mktime(time.strptime(first[:19], "%Y-%m-%d %H:%M:%S"))


def make_service(tmp_path, clock, runner=None, **mail):
    mainlog = tmp_path / "mainlog"
    mainlog.touch()
    settings = {"enabled": True, "mta": "exim", "per_hour": 20, "hold_map": str(tmp_path / "held-uids"),
                "exim_mainlog": str(mainlog)}
    settings.update(mail)
    config = watch_config.validate({"host": "watch1", "state_dir": str(tmp_path / "state"),
                                    "facets": {"mail": settings}}, watch_service.FACET_TYPES)
    os.makedirs(config["state_dir"], exist_ok=True)
    service = watch_service.Service(config, journal=FakeJournal(), run=runner or Runner(), clock=clock,
                                    log=lambda text: None)
    service.state.load()
    service.open_journal()
    service.read_files()
    service.read_journal()
    return service, mainlog


def append(path, lines):
    with open(path, "a", encoding="utf-8") as stream:
        stream.write("".join(f"{line}\n" for line in lines))


def sources(service):
    return service.state.facet("mail")["sources"]


def events(tmp_path):
    path = tmp_path / "state" / "events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.mark.parametrize("release", RELEASES)
def test_the_lab_exims_log_names_account_directory_script_and_recipients(tmp_path, release):
    clock = Clock(log_start(release) - 5)
    service, mainlog = make_service(tmp_path, clock)
    append(mainlog, fixture_lines(release))
    clock.now = log_start(release) + 300
    service.read_files()
    service.read_journal()

    site1, site2 = sources(service)["uid:2001"], sources(service)["uid:2002"]
    assert site1["account"] == "site1" and site1["cwd"] == "/home/site1/public_html"
    assert site1["command"] == "/usr/sbin/sendmail -t -i"
    assert sum(site1["minutes"].values()) == 4 and site1["scripts"] == {"contact.php": 4}
    assert "victims.example" in site1["domains"]
    assert sum(site2["minutes"].values()) == 3 and site2["scripts"] == {"form.php": 2}
    mailbox = sources(service)["sasl:mbox1@site2.example"]
    assert mailbox["sasl_user"] == "mbox1@site2.example" and sum(mailbox["minutes"].values()) == 1
    assert "elsewhere.example" in mailbox["domains"]
    # held at submission by the watch's ACL: remembered for the release
    held = (tmp_path / "state" / "held-uid-2001.ids").read_text().split()
    assert len(held) == 2 and all(len(queue_id.split("-")) == 3 for queue_id in held)
    # Completed: the local delivery's message is forgotten, the queued ones are not
    facet_ids = service.state.facet("mail")["queue_ids"]
    completed = [line.split()[3] for line in fixture_lines(release) if line.endswith(" Completed")]
    assert completed and not set(completed) & set(facet_ids)
    assert len(facet_ids) == 8 - len(completed)


@pytest.mark.parametrize("release", RELEASES)
def test_message_ids_of_the_release_are_read(release):
    ids = {line.split()[3] for line in fixture_lines(release) if " <= " in line}
    lengths = {tuple(len(part) for part in queue_id.split("-")) for queue_id in ids}
    assert lengths == ({(6, 6, 2)} if release == "4.96" else {(6, 11, 4)})
    for queue_id in ids:
        assert watch_mail.EXIM_LINE_RE.match(f"2026-12-06 03:47:40 [1] {queue_id} Completed").group("qid") == queue_id


def test_a_flood_over_the_limit_is_named_with_account_script_and_count_and_frozen(tmp_path):
    start = 1_800_000_000.0
    clock = Clock(start)
    frozen = "".join(f"Message 1xa3Dw-00000000{number:03d}-06Ag is now frozen\n" for number in range(21))
    runner = Runner({("exim4", "-Mf"): (0, frozen, "")})
    service, mainlog = make_service(tmp_path, clock, runner, contain="hold")
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(start))
    lines = []
    for number in range(21):
        pid, queue_id = 5000 + number, f"1xa3Dw-00000000{number:03d}-06Ag"
        lines += [f"{stamp} [{pid}] cwd=/home/site1/public_html 3 args: /usr/sbin/sendmail -t -i",
                  f"{stamp} [{pid}] {queue_id} hostguard-watch: script=2001:contact.php",
                  f"{stamp} [{pid}] {queue_id} <= site1@watch1 U=site1 P=local S=419",
                  f"{stamp} [{pid + 1}] {queue_id} == buyer{number}@victims.example R=smarthost T=remote_smtp "
                  "defer (101): Network is unreachable"]
    lines += [f"{stamp} [6000] cwd=/home/site2/public_html 3 args: /usr/sbin/sendmail -t -i",
              f"{stamp} [6000] 1xa3Dw-000000009zz-0000 <= site2@watch1 U=site2 P=local S=418"]
    append(mainlog, lines)
    clock.now = start + 30
    service.read_files()

    [event] = events(tmp_path)
    assert (event["uid"], event["account"], event["script"], event["count"]) == (2001, "site1", "contact.php", 21)
    assert event["cwd"] == "/home/site1/public_html"
    assert "site1" in event["summary"] and "contact.php" in event["summary"]
    assert event["action"]["held"] == 21 and "release_mail_uid=2001" in event["action"]["undo"]
    [(argv, _stdin)] = runner.calls
    assert argv[:2] == ["exim4", "-Mf"] and len(argv) == 23 and "1xa3Dw-000000009zz-0000" not in argv
    assert watch_mail.read_exim_list(str(tmp_path / "held-uids")) == [2001]


def test_without_the_php_header_the_directory_is_named(tmp_path):
    start = 1_800_000_000.0
    clock = Clock(start)
    service, mainlog = make_service(tmp_path, clock)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(start))
    append(mainlog, [line for number in range(21) for line in (
        f"{stamp} [{700 + number}] cwd=/home/site1/public_html/wp-content/plugins/evil 3 args: /usr/sbin/sendmail -t -i",
        f"{stamp} [{700 + number}] 1xa3Dw-00000000{number:03d}-06Ag <= site1@watch1 U=site1 P=local S=419")])
    clock.now = start + 30
    service.read_files()
    [event] = events(tmp_path)
    assert event["script"] == "/home/site1/public_html/wp-content/plugins/evil"
    assert "from /home/site1/public_html/wp-content/plugins/evil" in event["summary"]


def test_freezing_counts_what_exim_froze_and_skips_what_is_gone():
    runner = Runner({("exim4", "-Mf"): (1, "Message A is now frozen\nMessage C is already frozen\n",
                                        "Spool data file for B does not exist\n")})
    assert watch_mail.Exim(runner).hold_queued(["A", "B", "C"]) == 1
    failing = Runner({("exim4", "-Mf"): (1, "", "exim: permission denied\n")})
    with pytest.raises(RuntimeError, match="permission denied"):
        watch_mail.Exim(failing).hold_queued(["A"])


def test_release_on_exim_takes_the_uid_off_the_list_and_thaws_the_remembered_messages(tmp_path):
    hold_list = str(tmp_path / "held-uids")
    watch_mail.write_exim_list(hold_list, [2001, 2002])
    (tmp_path / "held-uid-2001.ids").write_text("1xa3Dw-000000001KV-06Ag\n1xa3EQ-000000001ee-0hW6\n")
    runner = Runner({("exim4", "-Mt"): (0, "Message 1xa3Dw-000000001KV-06Ag is no longer frozen\n"
                                           "Message 1xa3EQ-000000001ee-0hW6 is no longer frozen\n", "")})
    result = watch_mail.release(str(tmp_path), hold_list, 2001, runner, "exim")
    assert result == {"uid": 2001, "was_held": True, "released": 2, "queue_ids": 2}
    assert watch_mail.read_exim_list(hold_list) == [2002]
    assert runner.calls == [(["exim4", "-Mt", "1xa3Dw-000000001KV-06Ag", "1xa3EQ-000000001ee-0hW6"], None)]
    assert not (tmp_path / "held-uid-2001.ids").exists()


def test_the_hold_list_is_what_the_acls_lsearch_reads():
    # One key a line, comments ignored: what Exim's lsearch and read_exim_list agree on.
    text = watch_mail.EXIM_LIST_HEADER + "2001\n"
    assert [line for line in text.splitlines() if not line.startswith("#")] == ["2001"]


def test_auto_picks_postfix_first_then_exim():
    assert watch_mail.resolve_mta("auto", {"postsuper": "/usr/sbin/postsuper"}.get) == "postfix"
    assert watch_mail.resolve_mta("auto", {"exim4": "/usr/sbin/exim4"}.get) == "exim"
    assert watch_mail.resolve_mta("exim", lambda name: None) == "exim"
    with pytest.raises(watch_config.ConfigError, match="facets.mail.mta: auto found no MTA"):
        watch_mail.resolve_mta("auto", lambda name: None)


def test_an_unknown_mta_is_refused_naming_it():
    with pytest.raises(watch_config.ConfigError) as info:
        watch_config.validate({"host": "h", "facets": {"mail": {"mta": "sendmail"}}}, watch_service.FACET_TYPES)
    assert str(info.value) == "facets.mail.mta: expected one of auto, postfix, exim, got 'sendmail'"
