# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The watch's queue facet over Postfix queue files written in Postfix's record format (see test_mail_queue)."""
from __future__ import annotations

import pytest

from ansible_collections.hostguard.hosting.plugins.module_utils import watch_config, watch_service
from ansible_collections.hostguard.hosting.tests.unit.plugins.module_utils.test_mail_queue import (
    queue_file, write_queue)
from ansible_collections.hostguard.hosting.tests.unit.plugins.module_utils.watch_fakes import (
    Clock, Runner, read_events, start_service)

START = 1_800_000_000.0


def fill(directory, sender, count, prefix, domain="victims.example", queue_name="deferred"):
    for number in range(count):
        write_queue(directory, queue_name, f"{prefix}{number:07d}",
                    queue_file(sender, [f"buyer{number}@{domain}"], arrival=int(START)))


def service_for(tmp_path, clock, **settings):
    settings = dict({"mta": "postfix", "queue_directory": str(tmp_path / "spool")}, **settings)
    # postsuper's path is all find_mta needs: the queue is read from its files
    service = start_service(tmp_path, {"queue": settings}, clock=clock)
    service.facets[0].which = lambda name: "/usr/sbin/" + name if name == "postsuper" else None
    return service


def queue_events(tmp_path):
    return {event["key"]: event for event in read_events(tmp_path) if event["kind"] == "mail_queue"}


def test_one_sender_holding_most_of_a_sizeable_queue_is_named_with_its_share_and_domains(tmp_path):
    spool = tmp_path / "spool"
    fill(spool, "spammer@site1.example", 150, "A", domain="victims.example")
    fill(spool, "info@site2.example", 30, "B", domain="example.org")
    clock = Clock(START)
    service = service_for(tmp_path, clock)
    service.tick()

    found = queue_events(tmp_path)
    assert list(found) == ["sender:spammer@site1.example"]
    event = found["sender:spammer@site1.example"]
    assert (event["count"], event["sender"], event["share"], event["queue_count"]) == (
        150, "spammer@site1.example", 83.3, 180)
    assert event["top_recipient_domains"] == {"victims.example": 150}
    assert event["runbook"].startswith("spam-outbreak.md#3-purge")
    assert "spammer@site1.example" in event["summary"] and "83.3%" in event["summary"]


def test_a_small_queue_or_a_mixed_one_names_no_sender(tmp_path):
    spool = tmp_path / "spool"
    fill(spool, "spammer@site1.example", 60, "A")
    fill(spool, "info@site2.example", 60, "B")
    service = service_for(tmp_path, Clock(START), sender_min=122)
    service.tick()
    assert queue_events(tmp_path) == {}  # half of the queue is not most of it
    fill(spool, "spammer@site1.example", 1, "C")
    service.clock.now = START + 60
    service.tick()
    assert queue_events(tmp_path) == {}  # most of a queue of 121, below sender_min
    fill(spool, "spammer@site1.example", 1, "D")
    service.clock.now = START + 120
    service.tick()
    assert queue_events(tmp_path)["sender:spammer@site1.example"]["share"] == 50.8


def test_a_queue_over_its_limit_is_an_event_with_the_queues_and_senders(tmp_path):
    spool = tmp_path / "spool"
    fill(spool, "a@one.example", 30, "A")
    fill(spool, "b@two.example", 30, "B", queue_name="hold")
    service = service_for(tmp_path, Clock(START), max=50, sender_min=1000)
    service.tick()
    event = queue_events(tmp_path)["size"]
    assert (event["count"], event["limit"]) == (60, 50)
    assert event["by_queue"] == {"deferred": 30, "hold": 30}
    assert event["top_senders"] == {"a@one.example": 30, "b@two.example": 30}


def test_growth_within_ten_minutes_is_an_event_and_older_samples_do_not_count(tmp_path):
    spool = tmp_path / "spool"
    clock = Clock(START)
    service = service_for(tmp_path, clock, growth=100, sender_min=100000)
    service.tick()  # empty queue: the low point
    clock.now = START + 660
    fill(spool, "a@one.example", 50, "A")
    service.tick()  # +50 since 11 minutes ago: the empty sample is out of the window
    fill(spool, "b@two.example", 120, "B")
    clock.now = START + 720
    service.tick()  # +120 in one minute
    event = queue_events(tmp_path)["growth"]
    assert (event["growth"], event["count"], event["minutes"]) == (120, 170, 1)


def test_growth_is_measured_across_a_restart(tmp_path):
    spool = tmp_path / "spool"
    clock = Clock(START)
    service = service_for(tmp_path, clock, growth=100, sender_min=100000)
    service.tick()
    service.state.save()
    fill(spool, "a@one.example", 150, "A")
    clock.now = START + 300
    again = service_for(tmp_path, clock, growth=100, sender_min=100000)
    again.tick()
    assert queue_events(tmp_path)["growth"]["growth"] == 150


def test_an_unreadable_queue_is_logged_not_raised(tmp_path):
    logged = []
    service = start_service(tmp_path, {"queue": {"mta": "postfix"}}, runner=Runner(
        {("/usr/sbin/postconf", "-h"): (1, "", "postconf: fatal: open /etc/postfix/main.cf: No such file")}),
        clock=Clock(START))
    service.facets[0].which = lambda name: "/usr/sbin/" + name
    service.facets[0].context.log = logged.append
    service.tick()
    assert read_events(tmp_path) == [] and "No such file" in logged[0]


@pytest.mark.parametrize("settings, message", [
    ({"sender_share": 101}, "facets.queue.sender_share: expected a whole number from 1 to 99, got 101"),
    ({"mta": "sendmail"}, "facets.queue.mta: expected one of auto, postfix, exim, got 'sendmail'"),
    ({"max": 0}, "facets.queue.max: expected a whole number at least 1, got 0"),
])
def test_bad_queue_settings_are_refused_naming_the_value(settings, message):
    with pytest.raises(watch_config.ConfigError) as info:
        watch_config.validate({"host": "h", "facets": {"queue": settings}}, watch_service.FACET_TYPES)
    assert str(info.value) == message
