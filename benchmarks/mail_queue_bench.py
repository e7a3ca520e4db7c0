"""hostguard.hosting.mail_queue against the usual queue purges, side by side, on a lab Postfix host.

Boots one lab host (tests/lab/lab.py, Postfix with smtp as a deferred transport so nothing
leaves), fills its queue over SMTP with --spam messages from spammer@site1.example and
--legitimate ones from info@site1.example (one in every spam/legitimate), waits until all of
them sit in the deferred queue, and keeps a copy of it and of its defer logs. Before each row
the queue is put back from that copy, each message due for its next attempt in an hour (not
timed), then each row purges it:

  1. mailq | awk | postsuper -d -        the one-liner from the forums, run with Postfix delivering
  2. postsuper -d ALL                     what is done in a hurry: the legitimate mail goes too
  3. mail_queue core                      this collection's core on the host, Postfix stopped:
                                          read every queue file's envelope, select by sender, move
                                          each selected queue file and its defer/bounce/trace logs
                                          out of the queue (stopping Postfix not timed); then, with
                                          Postfix started again, delete the moved files (timed apart)
  4. core read + unlink each file         the same selection deleted file by file with Postfix
                                          stopped, as the module did before it moved them out
  5. purge_mail_queue.yml                 the whole playbook from the controller: pause monit, stop
                                          Postfix, read, select, move out, start Postfix, resume
                                          monit, delete the moved files, recount

After each row the table says how many spam messages are left and how many legitimate ones
were kept (postqueue -j). Row 1 deletes by ID while Postfix runs, which can hit a reused ID;
no mail arrives during the benchmark, so that race does not show here.

Run as root: .venv/bin/python benchmarks/mail_queue_bench.py [--spam 50000] [--legitimate 500]
The lab host is stopped and removed at the end, also after an error or Ctrl-C.
Exit status: 0 when rows 3 to 5 removed exactly the spam and row 3 met the targets (within 1.5x of
postsuper -d ALL, at least 3x faster than the pipeline, both counting the purge until the spam is
out of the queue), 1 when a row removed the wrong messages, 2 when only a target was missed.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lab_host

REPO_ROOT = Path(__file__).resolve().parents[1]
LAB = REPO_ROOT / "tests" / "lab" / "lab.py"
MODULE_UTILS = REPO_ROOT / "plugins" / "module_utils"
# Where the core is put on the host, under the package path it imports atomic_file from.
HOST_MODULE_UTILS = "ansible_collections/hostguard/hosting/plugins/module_utils"
PLAYBOOK = REPO_ROOT / "playbooks" / "purge_mail_queue.yml"
SPAMMER = "spammer@site1.example"
LEGITIMATE = "info@site1.example"
HOST_DIR = "/var/tmp/hostguard-bench"
QUEUE_COPY = HOST_DIR + "/queue.tar"
STEP_TIMEOUT = lab_host.STEP_TIMEOUT
# Sends the messages over a few SMTP sessions at once, as a spamming script and its victims' mail would arrive.
FILL = """
import smtplib, sys, threading
spam, legitimate, spammer, sender = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
every = max(1, spam // max(1, legitimate))
def send(part, parts):
    with smtplib.SMTP("127.0.0.1", 25) as session:
        for number in range(part, spam, parts):
            session.sendmail(spammer, ["victim%d@outside.example" % number], "Subject: cheap pills %d\\n\\nbuy now\\n" % number)
            if number % every == 0 and number // every < legitimate:
                session.sendmail(sender, ["customer%d@outside.example" % number], "Subject: invoice %d\\n\\nattached\\n" % number)
threads = [threading.Thread(target=send, args=(part, 4)) for part in range(4)]
for thread in threads: thread.start()
for thread in threads: thread.join()
"""
# Prints the number of messages per queue, read from the queue directories (works with Postfix stopped).
COUNT = "for q in maildrop incoming active deferred hold; do printf '%s ' $q; find /var/spool/postfix/$q -type f | wc -l; done"
# Run on the host with PYTHONPATH at the copy of the core; argv: sender, "core" or "unlink".
# Prints the held directory (core) and how the time was spent.
CORE_PURGE = """
import os, sys, time
from ansible_collections.hostguard.hosting.plugins.module_utils import mail_queue as core
started = time.perf_counter()
chosen = core.select(core.scan_queue("/var/spool/postfix")[0], senders=[sys.argv[1]])
selected = time.perf_counter()
if sys.argv[2] == "core":
    moved = core.move_postfix_messages("/var/spool/postfix", chosen)
    assert not moved.errors and len(moved.queue_ids) == len(chosen), moved.errors
    print(moved.held)
    how = "move out"
else:
    logs = core.log_files("/var/spool/postfix")
    for message in chosen:
        for path in logs.get(message.queue_id, []) + [message.path]:
            os.unlink(path)
    how = "unlink"
print("read and select %.2f s, %s %.2f s" % (selected - started, how, time.perf_counter() - selected))
"""
REMOVE_HELD = """
import sys
from ansible_collections.hostguard.hosting.plugins.module_utils import mail_queue as core
core.remove_held("/var/spool/postfix", sys.argv[1])
"""
AWK_PURGE = ("mailq | tail -n +2 | awk 'BEGIN { RS = \"\" } $7 == \"%s\" { print $1 }' | tr -d '*!' | postsuper -d -"
             % SPAMMER)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--spam", type=int, default=50000, help="spam messages in the queue (default 50000)")
    parser.add_argument("--legitimate", type=int, default=500, help="legitimate messages in the queue (default 500)")
    return parser.parse_args(argv)


class LabHost(lab_host.LabHost):
    """The lab host and its Postfix queue."""

    def queue_counts(self):
        return {queue: int(count) for queue, count in (line.split() for line in self.run(COUNT).splitlines())}

    def senders(self):
        """How many queued messages each sender has, from postqueue -j (Postfix running)."""
        counts = {}
        for line in self.run("postqueue -j").splitlines():
            sender = json.loads(line)["sender"]
            counts[sender] = counts.get(sender, 0) + 1
        return counts


def wait_until_deferred(host, total):
    while True:
        counts = host.queue_counts()
        if counts["deferred"] == total:
            return
        if sum(counts.values()) < total:
            raise RuntimeError("messages went missing while the queue filled: %s" % counts)
        time.sleep(2)


# Stops Postfix and waits until its last process is gone: the queue manager may still be moving files.
STOP_POSTFIX = "systemctl stop postfix && while pgrep -f ^/usr/lib/postfix/sbin/ >/dev/null; do sleep 0.2; done"


# The time of a deferred queue file is when Postfix tries it next: an hour from now, as for mail that
# waits for its next attempt. With the times the copy kept, Postfix would retry all of it at once on start.
NEXT_ATTEMPT = "find /var/spool/postfix/deferred -type f -exec touch -m -d @$(($(date +%s) + 3600)) {} +"


def put_queue_back(host):
    host.run(STOP_POSTFIX + " && find /var/spool/postfix/{maildrop,incoming,active,deferred,hold,defer,bounce,trace}"
             " -type f -delete && tar -C /var/spool/postfix -xpf %s && %s && systemctl start postfix"
             % (QUEUE_COPY, NEXT_ATTEMPT))


def timed(function):
    started = time.perf_counter()
    function()
    return time.perf_counter() - started


def measure(host, args, inventory):
    rows = {}

    def row(name, seconds, afterwards=None):
        left = host.senders()
        rows[name] = (seconds, afterwards, left.get(SPAMMER, 0), left.get(LEGITIMATE, 0))
        print("%-36s %8.2f s%s" % (name, seconds, "" if afterwards is None else ", then deleted in %.2f s" % afterwards),
              flush=True)

    put_queue_back(host)
    row("mailq | awk | postsuper -d -", timed(lambda: host.run(AWK_PURGE)))
    put_queue_back(host)
    row("postsuper -d ALL", timed(lambda: host.run("postsuper -d ALL")))
    for name in ("mail_queue.py", "atomic_file.py"):
        host.run("mkdir -p %s/%s && cat > %s/%s/%s" % (HOST_DIR, HOST_MODULE_UTILS, HOST_DIR, HOST_MODULE_UTILS, name),
                 stdin=(MODULE_UTILS / name).read_text())
    for name, how in (("mail_queue core", "core"), ("core read + unlink each file", "unlink")):
        put_queue_back(host)
        host.run(STOP_POSTFIX)
        output = []
        seconds = timed(lambda: output.extend(host.run("PYTHONPATH=%s python3 -c %s %s %s" % (
            HOST_DIR, shlex.quote(CORE_PURGE), SPAMMER, how)).split("\n")))
        print("  of which %s" % output[-2], flush=True)
        host.run("systemctl start postfix")
        afterwards = None
        if how == "core":
            afterwards = timed(lambda: host.run("PYTHONPATH=%s python3 -c %s %s" % (
                HOST_DIR, shlex.quote(REMOVE_HELD), output[0])))
        row(name, seconds, afterwards)
    put_queue_back(host)
    # The ansible-playbook of the Python running this benchmark (the project's .venv), else the one on PATH.
    beside = Path(sys.executable).parent / "ansible-playbook"
    playbook = [str(beside) if beside.exists() else "ansible-playbook", "-i", inventory, str(PLAYBOOK), "-e",
                json.dumps({"purge_sender": SPAMMER, "purge_confirm": True})]
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH="%s/.build/collections:%s" % (REPO_ROOT, os.environ.get(
        "ANSIBLE_COLLECTIONS_PATH", "")), ANSIBLE_HOST_KEY_CHECKING="False")
    since = host.run("date +%s.%N").strip()
    row("purge_mail_queue.yml", timed(lambda: subprocess.run(
        playbook, env=env, capture_output=True, timeout=STEP_TIMEOUT, check=True)))
    return rows, postfix_down(host, since)


def postfix_down(host, since):
    """Seconds from Postfix's stop to its start, from systemd's journal (postfix.service is a oneshot
    unit: systemd says "Finished" where it says "Started" of others)."""
    events = host.run("journalctl -q -o short-unix --since @%s _PID=1 | grep -E ' (Stopped|Finished|Started) postfix[.]service'"
                      " || true" % since.split(".")[0]).splitlines()
    stopped = [float(line.split()[0]) for line in events if " Stopped " in line]
    started = [float(line.split()[0]) for line in events if " Stopped " not in line]
    return started[-1] - stopped[0] if stopped and started and started[-1] > stopped[0] else None


def print_table(rows, down, args):
    awk, everything = rows["mailq | awk | postsuper -d -"][0], rows["postsuper -d ALL"][0]
    line = "%-36s %8s %9s %8s %10s %11s %16s"
    print()
    print(line % ("method", "seconds", "+ delete", "vs awk", "vs -d ALL", "spam left", "legitimate kept"))
    for name, (seconds, afterwards, spam_left, kept) in rows.items():
        print(line % (name, "%.2f" % seconds, "" if afterwards is None else "%.2f" % afterwards,
                      "%.1fx" % (awk / seconds), "%.2fx" % (seconds / everything),
                      "%d/%d" % (spam_left, args.spam), "%d/%d" % (kept, args.legitimate)))
    core = rows["mail_queue core"][0]
    met = core <= 1.5 * everything and awk >= 3 * core
    print("seconds: until the spam is out of the queue; + delete: deleting the moved files afterwards, Postfix running")
    print("purge_mail_queue.yml: Postfix down for %s (systemd's journal, stop to start)"
          % ("?" if down is None else "%.2f s" % down))
    print("targets (core within 1.5x of postsuper -d ALL, at least 3x faster than the pipeline): %s"
          % ("met" if met else "NOT met"))
    return met


def main(argv=None):
    args = parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("mail_queue_bench: run it as root (the lab needs it)")
    lab_name = "mqbench%d" % os.getpid()
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    with tempfile.TemporaryDirectory(prefix="mail-queue-bench-") as scratch:
        state_file, inventory = os.path.join(scratch, "lab.json"), os.path.join(scratch, "inventory.yml")
        try:
            subprocess.run([sys.executable, str(LAB), "up", "--name", lab_name, "--host", "mqb1:mail",
                            "--json", state_file, "--inventory", inventory], check=True, timeout=STEP_TIMEOUT)
            host = LabHost(json.loads(Path(state_file).read_text()))
            host.run("mkdir -p %s && postconf -e defer_transports=smtp && systemctl reload postfix" % HOST_DIR)
            print("filling the queue with %d spam and %d legitimate messages ..." % (args.spam, args.legitimate), flush=True)
            host.run("python3 -c %s %d %d %s %s" % (shlex.quote(FILL), args.spam, args.legitimate, SPAMMER, LEGITIMATE))
            wait_until_deferred(host, args.spam + args.legitimate)
            # The deferred messages and their defer logs, which deleting a message removes too.
            host.run(STOP_POSTFIX + " && tar -C /var/spool/postfix -cpf %s deferred defer" % QUEUE_COPY)
            rows, down = measure(host, args, inventory)
            met = print_table(rows, down, args)
            exact = all(rows[method][2:] == (0, args.legitimate) for method in (
                "mail_queue core", "core read + unlink each file", "purge_mail_queue.yml"))
            return 1 if not exact else 0 if met else 2
        finally:
            subprocess.run([sys.executable, str(LAB), "down", "--name", lab_name], check=False, timeout=STEP_TIMEOUT)


if __name__ == "__main__":
    sys.exit(main())
