# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import json

import pytest

from ansible_collections.hostguard.hosting.plugins.module_utils import watch_alerts

EVENT = {"time": "2026-12-06T04:00:00+00:00", "host": "mail1", "kind": "mail_rate", "key": "uid:2001",
         "severity": "critical", "summary": "account site1 (uid 2001), script contact.php, sent 201 messages",
         "runbook": "spam-outbreak.md",
         "evidence": {"account": "site1", "uid": 2001, "count": 201, "top_recipient_domains": {"victims.md": 150}},
         "action": {"done": "mail from uid 2001 is held", "undo": "ansible-playbook hostguard.hosting.release_mail"}}


class Sink(object):
    def __init__(self, name, failures=0):
        self.name, self.failures, self.got = name, failures, []

    def deliver(self, event, subject, body):
        if self.failures:
            self.failures -= 1
            raise OSError("connection refused")
        self.got.append((subject, body))


def test_the_message_says_what_where_the_evidence_the_undo_and_the_runbook():
    text = watch_alerts.body(EVENT, "https://example.org/runbooks/")
    assert watch_alerts.subject(EVENT) == "[hostguard-watch] mail1: " + EVENT["summary"]
    assert "Host: mail1" in text and "  uid: 2001" in text and "victims.md (150)" in text
    assert "Contained: mail from uid 2001 is held" in text and "To undo: ansible-playbook" in text
    assert text.rstrip().endswith("What to do: https://example.org/runbooks/spam-outbreak.md")
    # evidence in a fixed order: who first
    assert text.index("  account:") < text.index("  uid:") < text.index("  count:")


def test_a_failing_receiver_is_retried_and_does_not_stop_the_others():
    logged = []
    broken, working = Sink("webhook", failures=5), Sink("email")
    alerter = watch_alerts.Alerter([broken, working], "https://x/", 10, logged.append, tries=3, sleep=lambda s: None)
    assert alerter.send_now(EVENT) == ["email"]
    assert len(logged) == 3 and "try 3 of 3" in logged[-1]
    retried = Sink("webhook", failures=1)
    assert watch_alerts.Alerter([retried], "https://x/", 10, logged.append, sleep=lambda s: None).send_now(EVENT) \
        == ["webhook"]


def test_alerts_over_the_hourly_limit_are_held_back_and_counted_in_the_next():
    now = [0.0]
    alerter = watch_alerts.Alerter([Sink("journal")], "https://x/", 2, print, clock=lambda: now[0])
    assert [alerter.submit(EVENT) for attempt in range(4)] == [True, True, False, False]
    now[0] = 3601.0
    assert alerter.submit(EVENT) is True
    queued = [alerter._queue.get_nowait() for attempt in range(3)]
    assert queued[-1]["suppressed_alerts"] == 2
    assert "Alerts not sent in the last hour (over the hourly limit): 2" in watch_alerts.body(queued[-1], "x")


def test_submit_never_blocks_on_a_full_backlog():
    alerter = watch_alerts.Alerter([Sink("journal")], "https://x/", 100, lambda text: None, backlog=2)
    assert [alerter.submit(EVENT) for attempt in range(3)] == [True, True, False]
    assert alerter.dropped == 1


def test_the_webhook_posts_json_whose_text_slack_and_teams_show():
    sent = {}

    class Response(object):
        status = 200

        def read(self):
            return b"ok"

    class Connection(object):
        def request(self, method, path, body, headers):
            sent.update(method=method, path=path, data=json.loads(body), type=headers["Content-Type"])

        def getresponse(self):
            return Response()

        def close(self):
            sent["closed"] = True

    def connect(scheme, host, port, timeout):
        sent.update(scheme=scheme, host=host, port=port, timeout=timeout)
        return Connection()

    sink = watch_alerts.WebhookSink("https://hooks.example:8443/T/B?x=1", 7, connect=connect)
    sink.deliver(EVENT, "subject line", "body text\n")
    assert (sent["scheme"], sent["host"], sent["port"], sent["timeout"]) == ("https", "hooks.example", 8443, 7)
    assert (sent["method"], sent["path"], sent["type"]) == ("POST", "/T/B?x=1", "application/json")
    assert sent["data"]["text"] == "subject line\nbody text\n" and sent["data"]["hostguard"]["key"] == "uid:2001"
    assert sent["closed"]


def test_a_webhook_that_answers_an_error_is_a_failure_to_retry():
    class Response(object):
        status = 500

        def read(self):
            return b""

    class Connection(object):
        def request(self, *args, **kwargs):
            pass

        def getresponse(self):
            return Response()

        def close(self):
            pass

    sink = watch_alerts.WebhookSink("http://hooks.example/x", 5, connect=lambda *args: Connection())
    with pytest.raises(OSError, match="HTTP 500"):
        sink.deliver(EVENT, "s", "b")
