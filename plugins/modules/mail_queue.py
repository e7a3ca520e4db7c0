#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mail_queue
short_description: Report the Postfix mail queue, and purge the messages selected by sender, recipient or age
version_added: "0.1.0"
description:
  - Reads the queue files under the Postfix queue directory (C(maildrop), C(incoming), C(active), C(deferred) and
    C(hold), hashed subdirectories included) and reports the number of messages, their total size, the busiest
    senders and recipient domains, and the oldest message.
  - The envelope of each queue file (sender, pending recipients, arrival time, size) is read directly, without
    C(postqueue -j) (which needs Postfix running) and without one C(postcat) per message, so a queue of
    100,000 messages is read in one pass.
  - With O(state=purged), deletes the selected messages with a single C(postsuper -d -) that reads their queue IDs
    on stdin, after an optional evidence copy into O(export_dir). Postfix reuses queue IDs, so the purge refuses
    to run while Postfix is running; stop it first (the C(hostguard.hosting.purge_mail_queue) playbook
    stops and restarts it, and pauses its watchdog).
  - A message is selected when it matches every criterion given (O(sender), O(recipient), O(older_than)); O(all)
    selects every message. Nothing is deleted without a criterion. A selected message is deleted whole, for all
    its recipients; messages that do not match are left untouched.
  - Postfix only. Exim and qmail queues are not handled yet.
author:
  - hostguard.hosting contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: With O(state=purged), reports what would be exported and deleted and changes nothing (Postfix may be running).
  diff_mode:
    support: none
  platform:
    platforms: posix
    details: Linux with Postfix; run as root, since the queue files are readable by root and postfix only.
options:
  state:
    description:
      - V(report) only reads the queue; V(purged) also deletes the selected messages.
    type: str
    choices: [report, purged]
    default: report
  sender:
    description:
      - Envelope senders to select, each an address (V(spammer@site1.example)), a domain (V(@site1.example)) or
        V(<>) for the null sender of bounces. Case is ignored.
    type: list
    elements: str
    default: []
  recipient:
    description:
      - Recipients to select, in the same forms as O(sender); a message is selected when any of its pending
        recipients matches.
    type: list
    elements: str
    default: []
  older_than:
    description:
      - Select messages that arrived at least this long ago, such as V(30m), V(2h), V(3d) or V(1d12h)
        (units s, m, h, d, w).
    type: str
  all:
    description:
      - Select every message in the queue.
    type: bool
    default: false
  export_dir:
    description:
      - With O(state=purged), write a C(mail-queue-<UTC time>.tar.gz) here before deleting anything, holding the
        queue file of every selected message and a C(manifest.json) with the queue ID, queue, sender,
        recipients, size, arrival time and sha256 of each. Created with mode V(0700) if absent.
      - If the archive cannot be written, nothing is deleted.
    type: path
  queue_directory:
    description:
      - The Postfix queue directory. By default, what C(postconf -h queue_directory) says.
    type: path
  top:
    description:
      - How many of the busiest senders and recipient domains the summaries list.
    type: int
    default: 20
notes:
  - The sender and recipients reported are the envelope's, not the message headers'.
  - Recipients already delivered are not reported; a message leaves the queue once all its recipients are done.
seealso:
  - name: postsuper(1)
    description: The Postfix command that deletes the messages.
    link: https://www.postfix.org/postsuper.1.html
  - name: postqueue(1)
    description: C(postqueue -j) lists the queue as JSON while Postfix runs.
    link: https://www.postfix.org/postqueue.1.html
"""

EXAMPLES = r"""
- name: See what is in the queue
  hostguard.hosting.mail_queue:
  register: mail_queue

- name: Purge the spam of a compromised site, keeping a copy (Postfix stopped)
  hostguard.hosting.mail_queue:
    state: purged
    sender: [wordpress@site1.example, "@spam.example"]
    export_dir: /var/lib/hostguard/evidence

- name: Purge bounces older than three days
  hostguard.hosting.mail_queue:
    state: purged
    sender: ["<>"]
    older_than: 3d
"""

RETURN = r"""
queue:
  description:
    - The queue before anything was deleted. C(by_sender) and C(by_recipient_domain) list the O(top) busiest
      (the null sender as V(<>)), counting a message once per recipient domain; C(senders) and
      C(recipient_domains) count the distinct ones.
  returned: always
  type: dict
  sample:
    count: 220
    size: 60280
    by_queue: {deferred: 220}
    senders: 2
    by_sender: [{name: spammer@site1.example, count: 200}, {name: info@site1.example, count: 20}]
    recipient_domains: 1
    by_recipient_domain: [{name: outside.example, count: 220}]
    oldest: {queue_id: 9E1F91A603F, sender: spammer@site1.example, arrival_time: 1795615131, age_seconds: 7200}
selected:
  description: The messages the criteria select, summarised as RV(queue) is.
  returned: always
  type: dict
  sample:
    count: 200
    size: 54800
    by_queue: {deferred: 200}
    senders: 1
    by_sender: [{name: spammer@site1.example, count: 200}]
    recipient_domains: 1
    by_recipient_domain: [{name: outside.example, count: 200}]
    oldest: {queue_id: 9E1F91A603F, sender: spammer@site1.example, arrival_time: 1795615131, age_seconds: 7200}
deleted:
  description: Number of messages postsuper deleted (that would be, in check mode).
  returned: always
  type: int
  sample: 200
remaining:
  description: The queue after the purge, summarised as RV(queue) is.
  returned: when O(state=purged), messages were selected and not in check mode
  type: dict
export:
  description: The evidence archive and its sha256.
  returned: when O(export_dir) is given, messages were selected and not in check mode
  type: dict
  sample: {path: /var/lib/hostguard/evidence/mail-queue-20261125T140000Z.tar.gz, sha256: 9f86d08..., messages: 200}
unreadable:
  description: Queue files that could not be parsed (damaged); they are never selected.
  returned: always
  type: list
  elements: str
msg:
  description: One line saying what was found and done.
  returned: always
  type: str
  sample: "queue 220 messages; selected 200; deleted 200; 20 remain"
"""

import re
import subprocess

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostguard.hosting.plugins.module_utils.mail_queue import (
    MailQueueError,
    export,
    normalise_patterns,
    parse_age,
    scan_queue,
    select,
    summarise,
)


def postfix_is_running(module):
    postfix = module.get_bin_path("postfix", required=True)
    return module.run_command([postfix, "status"])[0] == 0


def queue_directory(module):
    if module.params["queue_directory"]:
        return module.params["queue_directory"]
    postconf = module.get_bin_path("postconf", required=True)
    return module.run_command([postconf, "-h", "queue_directory"], check_rc=True)[1].strip()


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["report", "purged"], default="report"),
            sender=dict(type="list", elements="str", default=[]),
            recipient=dict(type="list", elements="str", default=[]),
            older_than=dict(type="str"),
            all=dict(type="bool", default=False),
            export_dir=dict(type="path"),
            queue_directory=dict(type="path"),
            top=dict(type="int", default=20),
        ),
        supports_check_mode=True,
    )
    params = module.params
    try:
        senders = normalise_patterns(params["sender"], "sender")
        recipients = normalise_patterns(params["recipient"], "recipient")
        older_than = None if params["older_than"] is None else parse_age(params["older_than"])
    except MailQueueError as error:
        module.fail_json(msg=str(error))
    purge = params["state"] == "purged"
    if purge and not (senders or recipients or older_than is not None or params["all"]):
        module.fail_json(msg="state=purged needs sender, recipient, older_than or all=true")
    if purge and not module.check_mode and postfix_is_running(module):
        module.fail_json(msg="Postfix is running: stop it before purging, since it reuses the queue IDs of delivered messages")

    directory = queue_directory(module)
    messages, unreadable = scan_queue(directory)
    chosen = select(messages, senders, recipients, older_than, params["all"])
    result = dict(changed=False, queue=summarise(messages, params["top"]), selected=summarise(chosen, params["top"]),
                  deleted=0, unreadable=unreadable)
    summary = "queue %d messages; selected %d" % (len(messages), len(chosen))
    if not (purge and chosen):
        module.exit_json(msg=summary, **result)
    if module.check_mode:
        result.update(changed=True, deleted=len(chosen))
        module.exit_json(msg=summary + "; would delete %d" % len(chosen), **result)

    if params["export_dir"]:
        try:
            archive, digest = export(chosen, params["export_dir"])
        except (OSError, MailQueueError) as error:
            module.fail_json(msg="nothing deleted: the evidence archive in %s could not be written: %s"
                             % (params["export_dir"], error), **result)
        result["export"] = dict(path=archive, sha256=digest, messages=len(chosen))
        summary += "; exported to %s" % archive

    postsuper = module.get_bin_path("postsuper", required=True)
    # One postsuper for every message; naming the queues includes maildrop, which it skips by default.
    # Not run_command: it writes all of stdin before reading any output, and postsuper reports each removal
    # on stderr, so tens of thousands of IDs fill both pipes and deadlock. communicate() reads while it writes.
    deletion = subprocess.run([postsuper, "-d", "-", "maildrop", "hold", "incoming", "active", "deferred"],
                              input="\n".join(message.queue_id for message in chosen), capture_output=True,
                              text=True, check=False)
    rc, err = deletion.returncode, deletion.stderr
    deleted = re.search(r"Deleted: (\d+) message", err)
    result.update(changed=bool(deleted and int(deleted.group(1))), deleted=int(deleted.group(1)) if deleted else 0)
    remaining = scan_queue(directory)[0]
    result["remaining"] = summarise(remaining, params["top"])
    summary += "; deleted %d; %d remain" % (result["deleted"], len(remaining))
    left_behind = {message.queue_id for message in chosen} & {message.queue_id for message in remaining}
    if rc != 0 or left_behind:
        module.fail_json(msg="%s; postsuper rc=%d %s; still queued: %s" % (summary, rc, err.strip()[-2000:], " ".join(sorted(left_behind))),
                         **result)
    module.exit_json(msg=summary, **result)


if __name__ == "__main__":
    main()
