#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mail_queue
short_description: Report the Postfix or Exim mail queue, and purge the messages selected by sender, recipient or age
version_added: "0.1.0"
description:
  - Reads the queue and reports the number of messages, their total size, the busiest senders and recipient
    domains, and the oldest message.
  - Postfix - the queue files under the queue directory (C(maildrop), C(incoming), C(active), C(deferred) and
    C(hold), hashed subdirectories included) are read directly, without C(postqueue -j) (which needs Postfix
    running) and without one C(postcat) per message, so a queue of 100,000 messages is read in one pass.
  - Exim - the C(-H) files of the spool's C(input) directory, split into subdirectories or not, are read directly
    the way Exim reads them, not with one C(exim -Mvh) per message nor with C(exiqgrep). Message IDs of both
    forms are read, the 16-character ones of Exim up to 4.96 and the 23-character ones of Exim 4.97 and later.
  - With O(state=purged), deletes the selected messages after an optional evidence copy into O(export_dir).
    Postfix - each message's queue file and its C(bounce), C(defer) and C(trace) logs, what C(postsuper -d)
    removes, are first moved out of the queue into a C(hostguard-purged-*) directory in the queue directory
    (renames on the same file system; a hashed queue directory that holds mostly selected messages is moved
    whole and its other messages moved back), then that directory is deleted, at once or, with
    O(defer_removal=true), by O(state=cleaned) after Postfix has been started again. Unlike C(postsuper -d)
    it writes no log line per message; the evidence archive and one summary line in the system log record
    the purge. Exim - with C(exim -Mrm), many messages per call (Exim delivers mail submitted by local
    programs also while its daemon is stopped, and C(exim -Mrm) takes the lock such a delivery holds).
  - The purge refuses to run while the MTA runs (Postfix reuses queue IDs, so deleting while it delivers can hit
    the wrong message; Exim would go on delivering the spam). Stop it first; the
    C(hostguard.hosting.purge_mail_queue) playbook stops and restarts it, and pauses monit's watch on it.
  - A message is selected when it matches every criterion given (O(sender), O(recipient), O(older_than)); O(all)
    selects every message. Nothing is deleted without a criterion. A selected message is deleted whole, for all
    its recipients; messages that do not match are left untouched.
  - Postfix and Exim. qmail queues are not handled yet.
author:
  - hostguard.hosting contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - With O(state=purged), reports what would be exported and deleted and changes nothing (Postfix may be running).
      - With O(state=cleaned), lists the directories it would delete in RV(held_directories).
  diff_mode:
    support: none
  platform:
    platforms: posix
    details: Linux with Postfix or Exim; run as root, since the queue files are readable by root and the MTA only.
options:
  mta:
    description:
      - The MTA whose queue is read. V(auto) finds it by its commands, C(postsuper) for Postfix, C(exim4) or
        C(exim) for Exim.
    type: str
    choices: [auto, postfix, exim]
    default: auto
  state:
    description:
      - V(report) only reads the queue; V(purged) also deletes the selected messages.
      - V(cleaned) deletes the directories of messages that purges with O(defer_removal=true) moved out of a
        Postfix queue (RV(held_directories)); run it once Postfix runs again.
    type: str
    choices: [report, purged, cleaned]
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
        files of every selected message (Postfix, its queue file as C(queue/<queue>/<ID>); Exim, its C(-H) and
        C(-D) files as C(input/<ID>-H) and C(input/<ID>-D)) and a C(manifest.json) with the queue ID, queue,
        sender, recipients, size, arrival time, and the name and sha256 of each file. Created with mode
        V(0700) if absent.
      - If the archive cannot be written, nothing is deleted.
    type: path
  defer_removal:
    description:
      - Postfix only. With O(state=purged), leave the selected messages' files in the directory they were moved to
        (RV(pending_removal)) instead of deleting them before the module returns. They are out of the queue, and
        deleting many thousand files, the slow part of a purge, can wait until Postfix has been started again
        (then O(state=cleaned)). The C(hostguard.hosting.purge_mail_queue) playbook does so.
    type: bool
    default: false
  queue_directory:
    description:
      - The Postfix queue directory, or Exim's spool directory (holding C(input)). By default, what
        C(postconf -h queue_directory) or C(exim -bP spool_directory) says.
    type: path
  top:
    description:
      - How many of the busiest senders and recipient domains the summaries list.
    type: int
    default: 20
notes:
  - The sender and recipients reported are the envelope's, not the message headers'.
  - Recipients already delivered are not reported; a message leaves the queue once all its recipients are done.
  - The queue names reported for Exim are V(queued) and V(frozen).
seealso:
  - name: postsuper(1)
    description: The Postfix command whose deletion the module does, without a log line per message.
    link: https://www.postfix.org/postsuper.1.html
  - name: Format of spool files
    description: The Exim specification's chapter on the C(-H) and C(-D) files the module reads.
    link: https://www.exim.org/exim-html-current/doc/html/spec_html/ch-format_of_spool_files.html
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

- name: Purge an Exim queue's spam to one domain, its spool split into subdirectories (Exim stopped)
  hostguard.hosting.mail_queue:
    mta: exim
    state: purged
    recipient: ["@victims.example"]
    queue_directory: /var/spool/exim
"""

RETURN = r"""
mta:
  description: The MTA whose queue was read.
  returned: always
  type: str
  sample: exim
service:
  description: The name of the MTA's service (C(postfix), or the Exim command's name, C(exim4) on Debian).
  returned: always
  type: str
  sample: exim4
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
  description: Number of messages deleted or moved out of the queue (that would be, in check mode).
  returned: always
  type: int
  sample: 200
pending_removal:
  description: The directory the purged messages were moved to, to delete with O(state=cleaned).
  returned: when O(defer_removal=true) and messages were moved out of the queue, or when deleting that directory failed
  type: str
  sample: /var/spool/postfix/hostguard-purged-20261125T140000Z-k2j4x9
incomplete:
  description:
    - Postfix - when some file could not be moved, the directory holding those that were, renamed
      C(hostguard-purge-incomplete-*) so that O(state=cleaned) never deletes it; the error names each file.
  returned: when a purge failed part way
  type: str
held_directories:
  description:
    - Postfix - directories of messages moved out of the queue by earlier purges that are still to be deleted
      (with O(state=cleaned), those deleted, or to be deleted in check mode).
  returned: always
  type: list
  elements: str
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
  description: Queue files (Exim, C(-H) files) that could not be parsed (damaged); they are never selected.
  returned: always
  type: list
  elements: str
msg:
  description: One line saying what was found and done.
  returned: always
  type: str
  sample: "queue 220 messages; selected 200; deleted 200; 20 remain"
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostguard.hosting.plugins.module_utils.mail_queue import (
    MailQueueError,
    configured_queue_directory,
    exim_daemons,
    exim_removed,
    export,
    find_mta as find_mta_command,
    held_directories,
    move_postfix_messages,
    normalise_patterns,
    parse_age,
    remove_held,
    scan_exim_spool,
    scan_queue,
    select,
    summarise,
)

# IDs per exim -Mrm: 1,000 IDs of 23 characters stay far below the kernel's limit on arguments.
EXIM_BATCH = 1000


def find_mta(module):
    """(mta, command): postsuper's path for Postfix, the exim command's for Exim."""
    try:
        return find_mta_command(module.get_bin_path, module.params["mta"])
    except MailQueueError as error:
        module.fail_json(msg=str(error))


def queue_directory(module, mta, command):
    if module.params["queue_directory"]:
        return module.params["queue_directory"]
    try:
        return configured_queue_directory(module.run_command, module.get_bin_path, mta, command)
    except MailQueueError as error:
        module.fail_json(msg=str(error))


def mta_running(module, mta):
    """Why the MTA counts as running, or None."""
    if mta == "postfix":
        postfix = module.get_bin_path("postfix", required=True)
        if module.run_command([postfix, "status"])[0] == 0:
            return "Postfix is running: stop it before purging, since it reuses the queue IDs of delivered messages"
        return None
    daemons = exim_daemons()
    if daemons:
        return ("Exim is running (%s): stop it before purging, or it goes on delivering the messages selected"
                % "; ".join("pid %d: %s" % daemon for daemon in daemons))
    return None


def delete(module, mta, command, directory, chosen, result):
    """Delete the chosen messages; (rc, details)."""
    if mta == "postfix":
        moved = move_postfix_messages(directory, chosen)
        if moved.errors:
            # A kept message may be in it: the directory is left for the operator to look at.
            result["incomplete"] = moved.held
            return 1, "%s; the moved files are in %s, which was not deleted" % ("; ".join(moved.errors[:20]), moved.held)
        if module.params["defer_removal"]:
            result["pending_removal"] = moved.held
            return 0, ""
        try:
            remove_held(directory, moved.held)
        except (OSError, MailQueueError) as error:
            # The messages are out of the queue all the same; state=cleaned deletes the directory later.
            result["pending_removal"] = moved.held
            return 1, "the messages are out of the queue, but %s could not be deleted (%s): state=cleaned deletes it" % (
                moved.held, error)
        return 0, ""
    failures = []
    ids = [message.queue_id for message in chosen]
    for first in range(0, len(ids), EXIM_BATCH):
        batch = ids[first:first + EXIM_BATCH]
        rc, out, err = module.run_command([command, "-Mrm"] + batch)
        if rc != 0:
            removed = set(exim_removed(out))
            failures.append("exim -Mrm rc=%d for %d of %d messages: %s" % (
                rc, len(batch) - len(removed), len(batch), (err or out).strip()[-500:]))
    return (1 if failures else 0), "; ".join(failures)


def clean(module, mta, service, command):
    """state=cleaned: delete the directories earlier purges left with defer_removal=true."""
    held = held_directories(queue_directory(module, mta, command)) if mta == "postfix" else []
    result = dict(mta=mta, service=service, held_directories=held, changed=bool(held))
    if not module.check_mode:
        for path in held:
            try:
                remove_held(os.path.dirname(path), path)
            except (OSError, MailQueueError) as error:
                module.fail_json(msg="%s could not be deleted: %s" % (path, error), **result)
    module.exit_json(msg="%s %d directories of purged messages" % (
        "would delete" if module.check_mode else "deleted", len(held)), **result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            mta=dict(type="str", choices=["auto", "postfix", "exim"], default="auto"),
            state=dict(type="str", choices=["report", "purged", "cleaned"], default="report"),
            sender=dict(type="list", elements="str", default=[]),
            recipient=dict(type="list", elements="str", default=[]),
            older_than=dict(type="str"),
            all=dict(type="bool", default=False),
            export_dir=dict(type="path"),
            defer_removal=dict(type="bool", default=False),
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
    mta, command = find_mta(module)
    service = "postfix" if mta == "postfix" else os.path.basename(command)
    if mta == "exim" and params["defer_removal"]:
        module.fail_json(msg="defer_removal is for Postfix: Exim's messages are removed with exim -Mrm at once",
                         mta=mta, service=service)
    if params["state"] == "cleaned":
        clean(module, mta, service, command)
    if purge and not module.check_mode:
        running = mta_running(module, mta)
        if running:
            module.fail_json(msg=running, mta=mta, service=service)

    directory = queue_directory(module, mta, command)
    scan = scan_queue if mta == "postfix" else scan_exim_spool
    messages, unreadable = scan(directory)
    chosen = select(messages, senders, recipients, older_than, params["all"])
    result = dict(changed=False, mta=mta, service=service, queue=summarise(messages, params["top"]),
                  selected=summarise(chosen, params["top"]), deleted=0, unreadable=unreadable,
                  held_directories=held_directories(directory) if mta == "postfix" else [])
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

    rc, details = delete(module, mta, command, directory, chosen, result)
    # What is gone is counted from the queue itself, not from what the deleting side reports.
    remaining = scan(directory)[0]
    left_behind = {message.queue_id for message in chosen} & {message.queue_id for message in remaining}
    result.update(deleted=len(chosen) - len(left_behind), remaining=summarise(remaining, params["top"]))
    result["changed"] = result["deleted"] > 0
    summary += "; deleted %d; %d remain" % (result["deleted"], len(remaining))
    module.log("mail_queue: %s" % summary)
    if rc != 0 or left_behind:
        module.fail_json(msg="%s; %s; still queued: %s" % (summary, details, " ".join(sorted(left_behind)[:50])),
                         **result)
    module.exit_json(msg=summary, **result)


if __name__ == "__main__":
    main()
