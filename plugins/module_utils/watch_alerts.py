# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostguard-watch's alerts: the journal, email through the local MTA, and a webhook.

Delivery happens on a worker thread behind a bounded queue, so a slow or dead
receiver never holds up reading the logs; each receiver gets a few tries with a
timeout. Alerts beyond ``max_per_hour`` are counted and said in the next one that
goes out, so a flood of events cannot become a flood of pages.
"""

from __future__ import annotations

import collections
import email.message
import email.utils
import http.client
import json
import queue
import smtplib
import threading
import ssl
import time
import urllib.parse

EVIDENCE_ORDER = ("account", "uid", "script", "sasl_user", "count", "limit", "usual", "top_recipient_domains",
                  "service", "address", "country", "path", "rule", "owner")


def subject(event):
    return f"[hostguard-watch] {event['host']}: {event['summary']}"


def body(event, runbooks_url):
    lines = [f"What happened: {event['summary']}", f"Host: {event['host']}", f"Time: {event['time']}",
             f"Kind: {event['kind']} (severity {event['severity']})", "", "Evidence:"]
    evidence = event.get("evidence", {})
    for key in sorted(evidence, key=lambda k: (EVIDENCE_ORDER.index(k) if k in EVIDENCE_ORDER else 99, k)):
        value = evidence[key]
        if isinstance(value, dict):
            value = ", ".join(f"{name} ({count})" for name, count in value.items())
        elif isinstance(value, list):
            value = ", ".join(str(item) for item in value)
        lines.append(f"  {key}: {value}")
    action = event.get("action")
    if action:
        lines += ["", f"Contained: {action['done']}", f"To undo: {action['undo']}"]
    if event.get("suppressed_alerts"):
        lines += ["", f"Alerts not sent in the last hour (over the hourly limit): {event['suppressed_alerts']}"]
    if event.get("runbook"):
        lines += ["", f"What to do: {runbooks_url.rstrip('/')}/{event['runbook']}"]
    return "\n".join(lines) + "\n"


class JournalSink(object):
    name = "journal"

    def __init__(self, send):
        self._send = send  # systemd.journal.send

    def deliver(self, event, text_subject, text_body):
        self._send(text_subject, PRIORITY=3 if event["severity"] == "critical" else 4,
                   HOSTGUARD_KIND=event["kind"], HOSTGUARD_EVENT=json.dumps(event, sort_keys=True))


class EmailSink(object):
    """Mail handed to the local MTA over SMTP: no setgid helper, so the service keeps NoNewPrivileges."""

    name = "email"

    def __init__(self, recipient, sender, smtp_host, smtp_port, timeout):
        self.recipient, self.sender = recipient, sender
        self.smtp_host, self.smtp_port, self.timeout = smtp_host, smtp_port, timeout

    def deliver(self, event, text_subject, text_body):
        message = email.message.EmailMessage()
        message["From"] = self.sender
        message["To"] = self.recipient
        message["Subject"] = text_subject
        message["Date"] = email.utils.formatdate(localtime=True)
        message["Message-ID"] = email.utils.make_msgid(domain=event["host"])
        message["X-Hostguard-Kind"] = event["kind"]
        message.set_content(text_body)
        with smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=self.timeout) as smtp:
            smtp.send_message(message)


def _connection(scheme, host, port, timeout):
    if scheme == "https":
        return http.client.HTTPSConnection(host, port, timeout=timeout, context=ssl.create_default_context())
    return http.client.HTTPConnection(host, port, timeout=timeout)


class WebhookSink(object):
    """JSON with a `text` field, which Slack's and Teams' incoming webhooks show as the message.

    Plain http.client (certificates verified for https): the service runs on the host's Python, without Ansible.
    """

    name = "webhook"

    def __init__(self, url, timeout, connect=_connection):
        self.url, self.timeout, self._connect = url, timeout, connect

    def deliver(self, event, text_subject, text_body):
        data = json.dumps({"text": f"{text_subject}\n{text_body}", "hostguard": event}).encode()
        parts = urllib.parse.urlsplit(self.url)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection = self._connect(parts.scheme, parts.hostname, parts.port, self.timeout)
        try:
            connection.request("POST", path, body=data, headers={"Content-Type": "application/json",
                                                                 "User-Agent": "hostguard-watch"})
            response = connection.getresponse()
            response.read()
        finally:
            connection.close()
        if response.status >= 300:
            raise OSError(f"HTTP {response.status} from the webhook")


class Alerter(object):
    """Send events to every sink from one worker thread; submit() never blocks."""

    def __init__(self, sinks, runbooks_url, max_per_hour, log, tries=3, backlog=1000, clock=time.monotonic,
                 sleep=time.sleep):
        self.sinks, self.runbooks_url, self.max_per_hour = sinks, runbooks_url, max_per_hour
        self.log, self.tries, self._clock, self._sleep = log, tries, clock, sleep
        self._queue = queue.Queue(maxsize=backlog)
        self._sent = collections.deque()
        self.suppressed = 0
        self.dropped = 0
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self._work, name="alerts", daemon=True)
        self._thread.start()

    def submit(self, event):
        """Queue an alert; True when it will be sent, False when it is over the hourly limit or the backlog."""
        now = self._clock()
        while self._sent and now - self._sent[0] >= 3600:
            self._sent.popleft()
        if len(self._sent) >= self.max_per_hour:
            self.suppressed += 1
            return False
        event = dict(event)
        if self.suppressed:
            event["suppressed_alerts"], self.suppressed = self.suppressed, 0
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1
            self.log(f"alert backlog full, not sent: {event['summary']}")
            return False
        self._sent.append(now)
        return True

    def drain(self, timeout):
        """Wait up to `timeout` seconds for the queued alerts to go out (at stop)."""
        deadline = self._clock() + timeout
        while self._queue.unfinished_tasks and self._clock() < deadline:
            self._sleep(0.1)
        return not self._queue.unfinished_tasks

    def _work(self):
        while True:
            event = self._queue.get()
            try:
                self.send_now(event)
            finally:
                self._queue.task_done()

    def send_now(self, event):
        text_subject, text_body = subject(event), body(event, self.runbooks_url)
        delivered = []
        for sink in self.sinks:
            for attempt in range(1, self.tries + 1):
                try:
                    sink.deliver(event, text_subject, text_body)
                    delivered.append(sink.name)
                    break
                except Exception as exc:  # a receiver's failure must never stop the watch
                    self.log(f"alert to {sink.name} failed (try {attempt} of {self.tries}): {exc}")
                    if attempt < self.tries:
                        self._sleep(2 ** attempt)
        return delivered
