# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostguard-watch's mail queue facet: its size, its growth, and one sender holding most of it.

Every minute the queue is read from the MTA's own files with mail_queue's
reader (as mail_queue_info reads it: Postfix's queue files, Exim's spool
headers), so a stopped master or a queue of 100,000 spam messages does not
blind it. An event ``mail_queue`` when the queue holds more than ``max``
messages, when it grew by more than ``growth`` within ten minutes, and when one
envelope sender holds more than ``sender_share`` percent of a queue of at least
``sender_min`` messages: the outbreak the queue purge answers.
"""

from __future__ import annotations

import collections
import shutil

from ansible_collections.hostguard.hosting.plugins.module_utils.watch_facet import Facet
from ansible_collections.hostguard.hosting.plugins.module_utils import mail_queue, watch_config

RUNBOOK = "spam-outbreak.md#3-purge-with-the-mta-stopped-and-the-evidence-kept"
GROWTH_WINDOW = 600
TOP = 5


def top_domains(messages, limit=TOP):
    """{domain: messages with a recipient there}, the busiest first."""
    counted = collections.Counter(
        domain for message in messages
        for domain in {address.rpartition("@")[2].lower() for address in message.recipients if "@" in address})
    return dict(counted.most_common(limit))


class QueueFacet(Facet):
    NAME = "queue"
    INTERVAL = 60
    DEFAULTS = {
        "mta": "auto",
        "queue_directory": None,
        "max": 1000,
        "growth": 300,
        "sender_share": 50,
        "sender_min": 100,
    }

    @staticmethod
    def validate(settings, where):
        watch_config.check_choice(settings["mta"], f"{where}.mta", ("auto", "postfix", "exim"))
        if settings["queue_directory"] is not None:
            watch_config.check_absolute_path(settings["queue_directory"], f"{where}.queue_directory")
        watch_config.check_integer(settings["max"], f"{where}.max", 1)
        watch_config.check_integer(settings["growth"], f"{where}.growth", 1)
        watch_config.check_integer(settings["sender_share"], f"{where}.sender_share", 1, 99)
        watch_config.check_integer(settings["sender_min"], f"{where}.sender_min", 1)

    @staticmethod
    def check_host(settings, where):
        try:
            mail_queue.find_mta(shutil.which, settings["mta"])
        except mail_queue.MailQueueError as exc:
            raise watch_config.ConfigError(f"{where}.mta: {exc}") from exc

    def __init__(self, context, which=shutil.which):
        super(QueueFacet, self).__init__(context)
        self.which = which
        self.mta = self.directory = None
        context.state.setdefault("samples", [])

    def read_queue(self):
        """Every queued message, read from the queue's files (the directory is asked of the MTA once)."""
        if self.directory is None:
            self.mta, command = mail_queue.find_mta(self.which, self.settings["mta"])
            self.directory = self.settings["queue_directory"] or mail_queue.configured_queue_directory(
                self.context.run, self.which, self.mta, command)
        scan = mail_queue.scan_queue if self.mta == "postfix" else mail_queue.scan_exim_spool
        messages, unreadable = scan(self.directory)
        if unreadable:
            self.context.log(f"queue: {len(unreadable)} queue file(s) could not be read, first: {unreadable[0]}")
        return messages

    def tick(self, now):
        try:
            messages = self.read_queue()
        except (mail_queue.MailQueueError, OSError) as exc:
            self.context.log(f"queue: could not read the mail queue: {exc}")
            return
        count = len(messages)
        state = self.context.state
        earlier = [sample for sample in state["samples"] if sample[0] >= now - GROWTH_WINDOW]
        state["samples"] = earlier + [[now, count]]
        self.context.changed()
        summary = mail_queue.summarise(messages, TOP, now)
        senders = {entry["name"]: entry["count"] for entry in summary["by_sender"]}
        domains = {entry["name"]: entry["count"] for entry in summary["by_recipient_domain"]}
        maximum, growth_limit = self.settings["max"], self.settings["growth"]

        if count > maximum:
            self.context.emit(
                "mail_queue", "size", f"the mail queue holds {count} messages (limit {maximum})",
                runbook=RUNBOOK, when=now,
                evidence={"count": count, "limit": maximum, "by_queue": summary["by_queue"],
                          "top_senders": senders, "top_recipient_domains": domains,
                          "oldest_age_seconds": (summary["oldest"] or {}).get("age_seconds")})

        if earlier:
            lowest_at, lowest = min(earlier, key=lambda sample: (sample[1], sample[0]))
            growth = count - lowest
            if growth > growth_limit:
                minutes = max(1, int(round((now - lowest_at) / 60)))
                self.context.emit(
                    "mail_queue", "growth",
                    f"the mail queue grew by {growth} messages in {minutes} minute(s), to {count} "
                    f"(limit {growth_limit} in 10 minutes)",
                    runbook=RUNBOOK, when=now,
                    evidence={"count": count, "growth": growth, "minutes": minutes, "limit": growth_limit,
                              "top_senders": senders, "top_recipient_domains": domains})

        if count >= self.settings["sender_min"] and senders:
            sender, held = next(iter(senders.items()))
            share = round(100.0 * held / count, 1)
            if 100 * held > self.settings["sender_share"] * count:
                own = [message for message in messages if (message.sender or mail_queue.NULL_SENDER) == sender]
                self.context.emit(
                    "mail_queue", f"sender:{sender}",
                    f"{sender} holds {held} of the {count} queued messages ({share:g}%)",
                    severity="critical", runbook=RUNBOOK, when=now,
                    evidence={"count": held, "sender": sender, "share": share, "queue_count": count,
                              "top_recipient_domains": top_domains(own)})
