"""hostguard-watch against fail2ban, side by side, reading the same journal on a lab host.

Boots one lab host (tests/lab/lab.py, the postfix-trixie flavour: Debian 13, Postfix, Dovecot,
OpenSSH 10), applies the bruteforce role (fail2ban with its journal jails: sshd, postfix-sasl,
dovecot, the per-account jail) and the watch role to it with ansible-playbook, as the molecule
scenarios do, and turns off journald's rate limit so that every generated line is kept.

Lines per second: for each rate N (--rates), a generator on the host writes N lines a second for
--seconds into the host's journal, a shared host's mix: mail handed to sendmail by two customers'
uids (pickup, cleanup, qmgr, smtp: "QID: uid=U from=<...>"), mail submitted with SMTP AUTH and
failed AUTH attempts (smtpd), SSH logins that succeed and fail (sshd-session, with PAM's lines),
and IMAP logins that succeed and fail (dovecot). Each program's lines come from a process of its
own with the identity the real daemon has (its unit's cgroup, its uid, its command name), so
that fail2ban's journal matches, which name those trusted fields, take exactly the lines they
take from the real daemons. After the generator stops, the benchmark waits until both daemons
are idle again, then reads, for hostguard-watch and fail2ban-server: CPU seconds (utime + stime
of the process and its waited-for children, /proc/PID/stat, before and after; the lab's
containers have no cgroup accounting, so systemd's CPUUsageNSec and MemoryPeak are not set),
peak RSS (VmHWM of /proc/PID/status, reset before each rate through /proc/PID/clear_refs), how
long each took to catch up after the last line, and what each counted: the watch's per-source
message counts in its saved state.json against the messages written and those the journal holds
(so that a line journald dropped is not taken for one the watch lost), fail2ban's "Total failed"
of each jail against the failed logins written.

Run as root: .venv/bin/python benchmarks/watch_bench.py [--rates 100,1000,3000] [--seconds 60]
The lab host is stopped and removed at the end, also after an error or Ctrl-C.
Exit status: 0 when the targets are met (the watch's CPU per line at most fail2ban's at every
rate; no message lost at 1,000 lines/s or less), 1 when the watch lost a message at 1,000 lines/s
or less, 2 when only the CPU target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from lab_host import STEP_TIMEOUT, LabHost

REPO_ROOT = Path(__file__).resolve().parents[1]
LAB = REPO_ROOT / "tests" / "lab" / "lab.py"
FLAVOUR = "postfix-trixie"
STATE = "/var/lib/hostguard/watch/state.json"
WATCH_UNIT, FAIL2BAN_UNIT = "hostguard-watch.service", "fail2ban.service"
JAILS = ("sshd", "postfix-sasl", "dovecot", "hostguard-accounts")
# The customers whose mail the generator hands to sendmail, and the mailbox that submits with SMTP AUTH.
CUSTOMERS = {"site1": 2001, "site2": 2002}
SASL_USER = "info@site1.example"
LOSS_TARGET_RATE = 1000

# What the host needs before the roles: the customers, and a journald that keeps every line (its default
# rate limit, 10,000 lines per unit in 30 s, would drop the generator's lines before either daemon saw them).
SEED = """
set -e
getent passwd site1 >/dev/null || useradd -m -u 2001 -s /bin/bash site1
getent passwd site2 >/dev/null || useradd -m -u 2002 -s /bin/bash site2
mkdir -p /etc/systemd/journald.conf.d
printf '[Journal]\\nRateLimitIntervalSec=0\\nRateLimitBurst=0\\nSystemMaxUse=2G\\n' > /etc/systemd/journald.conf.d/bench.conf
systemctl restart systemd-journald
"""

PLAYBOOK = """
- name: fail2ban with the bruteforce role's jails, and the watch, on the same host
  hosts: all
  gather_facts: false
  roles:
    - hostguard.hosting.bruteforce
    - hostguard.hosting.watch
"""

# The generator, run on the host as root: argv rate seconds tag. It builds the whole schedule of lines first,
# then forks one writer per program (its unit's cgroup, uid and command name set before the first line, since
# journald reads those of the sending process), and prints what it wrote as JSON.
GENERATOR = r'''
import json, os, pwd, random, sys, time
from systemd import journal

rate, seconds, tag = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
customers, sasl_user = json.loads(sys.argv[4]), sys.argv[5]
random.seed(tag)
# writer -> (unit, user, command name)
WRITERS = {
    "pickup": ("postfix.service", "postfix", "pickup"), "cleanup": ("postfix.service", "postfix", "cleanup"),
    "qmgr": ("postfix.service", "postfix", "qmgr"), "smtp": ("postfix.service", "postfix", "smtp"),
    "smtpd": ("postfix.service", "postfix", "smtpd"), "sshd": ("ssh.service", "root", "sshd-session"),
    "dovecot": ("dovecot.service", "root", "dovecot"),
}
IDENTIFIER = {"pickup": "postfix/pickup", "cleanup": "postfix/cleanup", "qmgr": "postfix/qmgr",
              "smtp": "postfix/smtp", "smtpd": "postfix/smtpd", "sshd": "sshd-session", "dovecot": "dovecot"}
AUTHPRIV, MAIL = "10", "2"
counter = [0]

def queue_id():
    counter[0] += 1
    return "%s%07X" % (tag, counter[0])

def attacker():
    return "100.%d.%d.%d" % (random.randint(64, 127), random.randint(0, 255), random.randint(1, 254))

def customer_address():
    return "198.18.%d.%d" % (random.randint(0, 3), random.randint(1, 254))

def delivered(qid, sender, start):
    domain = random.choice(("gmail.example", "yahoo.example", "outlook.example", "mail.ru.example"))
    return [(start + 0.05, "cleanup", MAIL, "%s: message-id=<%s@wb1.example>" % (qid, qid)),
            (start + 0.1, "qmgr", MAIL, "%s: from=<%s>, size=1843, nrcpt=1 (queue active)" % (qid, sender)),
            (start + 0.3, "smtp", MAIL, "%s: to=<user%d@%s>, relay=mx.%s[100.64.9.9]:25, delay=0.3, "
             "delays=0.1/0/0.1/0.1, dsn=2.0.0, status=sent (250 2.0.0 Ok: queued)" % (qid, random.randint(1, 9999), domain, domain)),
            (start + 0.4, "qmgr", MAIL, "%s: removed" % qid)]

def sendmail(uid, name, start):
    qid = queue_id()
    return [(start, "pickup", MAIL, "%s: uid=%d from=<%s>" % (qid, uid, name))] + delivered(qid, name, start)

def submission(start):
    qid, address = queue_id(), customer_address()
    return ([(start, "smtpd", MAIL, "connect from unknown[%s]" % address),
             (start + 0.02, "smtpd", MAIL, "%s: client=unknown[%s], sasl_method=PLAIN, sasl_username=%s" % (qid, address, sasl_user))]
            + delivered(qid, sasl_user, start + 0.02)
            + [(start + 0.2, "smtpd", MAIL, "disconnect from unknown[%s] ehlo=2 starttls=1 auth=1 mail=1 rcpt=1 data=1 quit=1 commands=8" % address)])

def sasl_failure(start):
    address = attacker()
    return [(start, "smtpd", MAIL, "connect from unknown[%s]" % address),
            (start + 0.02, "smtpd", MAIL, "warning: unknown[%s]: SASL LOGIN authentication failed: UGFzc3dvcmQ6" % address),
            (start + 0.03, "smtpd", MAIL, "lost connection after AUTH from unknown[%s]" % address),
            (start + 0.04, "smtpd", MAIL, "disconnect from unknown[%s] ehlo=1 auth=0/1 commands=1/2" % address)]

def ssh_login(start):
    address, port = customer_address(), random.randint(30000, 60000)
    return [(start, "sshd", AUTHPRIV, "Accepted password for site1 from %s port %d ssh2" % (address, port)),
            (start + 0.01, "sshd", AUTHPRIV, "pam_unix(sshd:session): session opened for user site1(uid=2001) by site1(uid=0)")]

def ssh_invalid_user(start):
    address, port = attacker(), random.randint(30000, 60000)
    user = random.choice(("admin", "test", "oracle", "ubuntu", "git"))
    return [(start, "sshd", AUTHPRIV, "Invalid user %s from %s port %d" % (user, address, port)),
            (start + 0.01, "sshd", AUTHPRIV, "Failed password for invalid user %s from %s port %d ssh2" % (user, address, port)),
            (start + 0.02, "sshd", AUTHPRIV, "Connection closed by invalid user %s %s port %d [preauth]" % (user, address, port))]

def ssh_wrong_password(start):
    address, port = attacker(), random.randint(30000, 60000)
    return [(start, "sshd", AUTHPRIV, "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= "
             "rhost=%s  user=site2" % address),
            (start + 0.01, "sshd", AUTHPRIV, "Failed password for site2 from %s port %d ssh2" % (address, port))]

def imap_login(start):
    return [(start, "dovecot", MAIL, "imap-login: Login: user=<info@site2.example>, method=PLAIN, rip=%s, lip=10.0.0.1, "
             "mpid=%d, TLS, session=<%08x>" % (customer_address(), random.randint(1000, 60000), random.getrandbits(32)))]

def imap_failure(start):
    return [(start, "dovecot", MAIL, "imap-login: Login aborted: Connection closed (auth failed, 1 attempts in 2 secs) "
             "(auth_failed): user=<info@site2.example>, method=PLAIN, rip=%s, lip=10.0.0.1, TLS, session=<%08x>"
             % (attacker(), random.getrandbits(32)))]

# One round of a shared host's traffic: 49 lines, three quarters of them Postfix's.
(site1, uid1), (site2, uid2) = sorted(customers.items())
ROUND = ([lambda t: sendmail(uid1, site1, t)] * 4 + [lambda t: sendmail(uid2, site2, t), submission, sasl_failure,
         ssh_login, ssh_invalid_user, ssh_invalid_user, ssh_wrong_password, imap_login, imap_login, imap_failure])
PER_ROUND = 49
rounds = max(1, round(rate * seconds / PER_ROUND))
period = PER_ROUND / rate
schedule = {writer: [] for writer in WRITERS}
for number in range(rounds):
    for step, make in enumerate(ROUND):
        for due, writer, facility, message in make(number * period + step * period / len(ROUND)):
            schedule[writer].append((due, facility, message))
written = {"lines": sum(len(lines) for lines in schedule.values()), "rounds": rounds,
           "messages": {"uid:%d" % uid1: 4 * rounds, "uid:%d" % uid2: rounds, "sasl:" + sasl_user: rounds},
           "failures": {"sshd": 3 * rounds, "postfix-sasl": rounds, "dovecot": rounds}}
for lines in schedule.values():
    lines.sort()

start = time.time() + 1.0
children = {}
for writer, lines in schedule.items():
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read_end)
        unit, user, command = WRITERS[writer]
        for tree in ("systemd", "unified"):
            path = "/sys/fs/cgroup/%s/system.slice/%s/cgroup.procs" % (tree, unit)
            if os.path.exists(path):
                with open(path, "w") as stream:
                    stream.write(str(os.getpid()))
        with open("/proc/self/comm", "w") as stream:
            stream.write(command)
        account = pwd.getpwnam(user)
        os.setgid(account.pw_gid)
        os.setuid(account.pw_uid)
        identifier, pid_text = IDENTIFIER[writer], str(os.getpid())
        for due, facility, message in lines:
            delay = start + due - time.time()
            if delay > 0.001:
                time.sleep(delay)
            journal.send(message, SYSLOG_IDENTIFIER=identifier, SYSLOG_PID=pid_text, SYSLOG_FACILITY=facility, PRIORITY="6")
        os.write(write_end, json.dumps({"finished": time.time()}).encode())
        os._exit(0)
    os.close(write_end)
    children[pid] = read_end
finished = start
for pid, read_end in children.items():
    report = b""
    while True:
        chunk = os.read(read_end, 4096)
        if not chunk:
            break
        report += chunk
    os.waitpid(pid, 0)
    finished = max(finished, json.loads(report)["finished"])
written.update(started=start, finished=finished)
print(json.dumps(written))
'''

# Prints, for each daemon, its main PID, CPU seconds (utime + stime of the process; cutime + cstime of its
# waited-for children apart: fail2ban's ban actions) and VmHWM in kB.
PROBE = r'''
import json, os, subprocess, sys
ticks = os.sysconf("SC_CLK_TCK")
result = {}
for unit in sys.argv[1:]:
    pid = int(subprocess.run(["systemctl", "show", "-p", "MainPID", "--value", unit], capture_output=True, text=True).stdout)
    with open("/proc/%d/stat" % pid) as stream:
        fields = [int(value) for value in stream.read().rsplit(")", 1)[1].split()[11:15]]
    with open("/proc/%d/status" % pid) as stream:
        hwm = [int(line.split()[1]) for line in stream if line.startswith("VmHWM:")][0]
    result[unit] = {"pid": pid, "cpu": sum(fields) / ticks, "children": sum(fields[2:]) / ticks, "hwm_kb": hwm}
print(json.dumps(result))
'''

# Samples the daemons' anonymous memory (RssAnon) every half second until STOP exists, then prints the peaks in kB:
# VmHWM also counts the pages of the journal files each reader maps, which are the page cache's, shared.
STOP = "/run/watch-bench.stop"
SAMPLER = r'''
import json, os, sys, time
stop, pids = sys.argv[1], json.loads(sys.argv[2])
peaks = dict.fromkeys(pids, 0)
while not os.path.exists(stop):
    for unit, pid in pids.items():
        with open("/proc/%d/status" % pid) as stream:
            anon = [int(line.split()[1]) for line in stream if line.startswith("RssAnon:")][0]
        peaks[unit] = max(peaks[unit], anon)
    time.sleep(0.5)
print(json.dumps(peaks))
'''


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--rates", default="100,1000,3000",
                        help="journal lines per second, comma-separated (default 100,1000,3000)")
    parser.add_argument("--seconds", type=float, default=60, help="how long each rate is written (default 60)")
    parser.add_argument("--settle", type=float, default=600,
                        help="the longest wait for both daemons to catch up after a rate (default 600 s)")
    return parser.parse_args(argv)


def load_average():
    with open("/proc/loadavg", encoding="ascii") as stream:
        return " ".join(stream.read().split()[:3])


def set_up(host, scratch, inventory):
    """The seed, then both roles from the working tree's collection, as the molecule scenarios apply them."""
    host.run(SEED)
    playbook = os.path.join(scratch, "bench.yml")
    Path(playbook).write_text(PLAYBOOK, encoding="utf-8")
    beside = Path(sys.executable).parent / "ansible-playbook"
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH="%s/.build/collections:%s" % (REPO_ROOT, os.environ.get(
        "ANSIBLE_COLLECTIONS_PATH", "")), ANSIBLE_HOST_KEY_CHECKING="False")
    completed = subprocess.run([str(beside) if beside.exists() else "ansible-playbook", "-i", inventory, playbook],
                               env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT, check=False)
    if completed.returncode != 0:
        raise RuntimeError("the roles failed on the lab host:\n" + completed.stdout[-4000:])
    for unit in (WATCH_UNIT, FAIL2BAN_UNIT):
        host.run("systemctl is-active --quiet %s" % unit)


def probe(host):
    return json.loads(host.python(PROBE, WATCH_UNIT, FAIL2BAN_UNIT))


def watch_counts(host):
    """Messages the watch's mail facet counted per source, from the state it saved."""
    state = json.loads(host.run("cat " + STATE))
    sources = state["facets"].get("mail", {}).get("sources", {})
    return {key: sum(source["minutes"].values()) for key, source in sources.items()}


# Counts, in the journal, the messages of one rate (its queue ids begin with the rate's tag) per source, as the
# watch's mail facet would: what journald kept of what the generator wrote.
JOURNAL_COUNT = r'''
import collections, json, re, subprocess, sys
tag, sasl_user = sys.argv[1], sys.argv[2]
pickup = re.compile(r"%s[0-9A-F]{7}: uid=(\d+) from=" % tag)
sasl = re.compile(r"%s[0-9A-F]{7}: client=\S+, sasl_method=PLAIN, sasl_username=(\S+)$" % tag)
counts = collections.Counter()
lines = subprocess.run(["journalctl", "-q", "-o", "cat", "-t", "postfix/pickup", "-t", "postfix/smtpd"],
                       capture_output=True, text=True, check=True).stdout
for line in lines.splitlines():
    match = pickup.match(line)
    if match:
        counts["uid:" + match.group(1)] += 1
        continue
    match = sasl.match(line)
    if match:
        counts["sasl:" + match.group(1)] += 1
print(json.dumps(counts))
'''


def journal_counts(host, tag):
    """Messages of one rate per source in the journal."""
    return json.loads(host.python(JOURNAL_COUNT, tag, SASL_USER))


def fail2ban_failures(host):
    """fail2ban's "Total failed" of each jail."""
    counts = {}
    for jail in JAILS:
        output = host.run("fail2ban-client status %s" % jail)
        counts[jail] = int(output.split("Total failed:")[1].split()[0])
    return counts


def settle(host, before, expected, limit):
    """Wait until both daemons are idle and the watch's saved counts stop changing; seconds each took after the
    generator's last line (None: still busy at the limit)."""
    started, caught_up = time.time(), {}
    last, seen = probe(host), []
    while time.time() - started < limit:
        time.sleep(3)
        now, counts = probe(host), watch_counts(host)
        seen.append(counts)
        delta = {key: counts.get(key, 0) - before.get(key, 0) for key in expected}
        for unit in (WATCH_UNIT, FAIL2BAN_UNIT):
            # idle: under 2% of a core over the interval (the watch's 1 s wakeups, fail2ban's polling)
            idle = now[unit]["cpu"] - last[unit]["cpu"] < 0.06
            if unit == WATCH_UNIT:
                # all counted, or short and unchanged over three polls (the watch saves its state every 2 s)
                idle = idle and (delta == expected or len(seen) >= 3 and seen[-1] == seen[-2] == seen[-3])
            if idle and unit not in caught_up:
                caught_up[unit] = time.time() - started - 3
            elif not idle:
                caught_up.pop(unit, None)
        if len(caught_up) == 2:
            return caught_up
        last = now
    return caught_up


def measure_lines_per_second(host, rate, seconds, tag, limit):
    """One rate: CPU, peak memory, time to catch up and what was counted, for both daemons."""
    counts_before, failures_before = watch_counts(host), fail2ban_failures(host)
    pids = {unit: found["pid"] for unit, found in probe(host).items()}
    host.run("rm -f %s; " % STOP + "; ".join("echo 5 > /proc/%d/clear_refs" % pid for pid in pids.values()))  # VmHWM
    before = probe(host)
    peaks = []
    sampler = threading.Thread(target=lambda: peaks.append(json.loads(host.python(SAMPLER, STOP, json.dumps(pids)))))
    sampler.start()
    try:
        written = json.loads(host.python(GENERATOR, rate, seconds, tag, json.dumps(CUSTOMERS), SASL_USER))
        caught_up = settle(host, counts_before, written["messages"], limit)
        after = probe(host)
    finally:
        host.run("touch " + STOP)
        sampler.join()
    counts, failures = watch_counts(host), fail2ban_failures(host)
    for unit in after:
        if after[unit]["pid"] != before[unit]["pid"]:
            raise RuntimeError("%s restarted during the rate %d run" % (unit, rate))
    row = {"rate": rate, "written": written, "achieved": written["lines"] / (written["finished"] - written["started"]),
           "caught_up": caught_up, "load": load_average(),
           "cpu": {unit: after[unit]["cpu"] - before[unit]["cpu"] for unit in after},
           "children": {unit: after[unit]["children"] - before[unit]["children"] for unit in after},
           "rss_mb": {unit: after[unit]["hwm_kb"] / 1024 for unit in after},
           "anon_mb": {unit: kb / 1024 for unit, kb in peaks[0].items()},
           "counted": {key: counts.get(key, 0) - counts_before.get(key, 0) for key in written["messages"]},
           "in_journal": journal_counts(host, tag),
           "f2b_failed": {jail: failures[jail] - failures_before[jail] for jail in JAILS}}
    print("%5d lines/s: %d lines in %.1f s (%.0f/s), watch %.2f CPU s, fail2ban %.2f CPU s, load %s" % (
        rate, written["lines"], written["finished"] - written["started"], row["achieved"], row["cpu"][WATCH_UNIT],
        row["cpu"][FAIL2BAN_UNIT], row["load"]), flush=True)
    return row


def lost(row):
    return sum(max(0, row["written"]["messages"][key] - row["counted"][key]) for key in row["written"]["messages"])


def print_lines_table(rows):
    line = "%7s %8s %9s %9s %9s %6s %13s %13s %6s %9s %8s %11s %13s %s"
    print()
    print(line % ("lines/s", "written", "achieved", "watch CPU", "f2b CPU", "ratio", "watch MB", "f2b MB",
                  "ratio", "watch lag", "f2b lag", "in journal", "watch counted", "fail2ban failed (sshd/sasl/dovecot/accounts)"))
    for row in rows:
        per_thousand = {unit: 1e3 * row["cpu"][unit] / row["written"]["lines"] for unit in row["cpu"]}
        per_thousand[FAIL2BAN_UNIT] -= 1e3 * row["children"][FAIL2BAN_UNIT] / row["written"]["lines"]
        lag = {unit: "%.0f s" % row["caught_up"][unit] if unit in row["caught_up"] else "busy" for unit in row["cpu"]}
        memory = {unit: "%.0f (%.0f)" % (row["rss_mb"][unit], row["anon_mb"][unit]) for unit in row["cpu"]}
        messages = sum(row["written"]["messages"].values())
        print(line % (row["rate"], row["written"]["lines"], "%.0f/s" % row["achieved"],
                      "%.3f" % per_thousand[WATCH_UNIT], "%.3f" % per_thousand[FAIL2BAN_UNIT],
                      "%.2fx" % (per_thousand[WATCH_UNIT] / per_thousand[FAIL2BAN_UNIT]),
                      memory[WATCH_UNIT], memory[FAIL2BAN_UNIT],
                      "%.2fx" % (row["rss_mb"][WATCH_UNIT] / row["rss_mb"][FAIL2BAN_UNIT]),
                      lag[WATCH_UNIT], lag[FAIL2BAN_UNIT], "%d" % sum(row["in_journal"].get(key, 0) for key in row["counted"]),
                      "%d/%d" % (messages - lost(row), messages),
                      "/".join(str(row["f2b_failed"][jail]) for jail in JAILS)))
    print("CPU: CPU seconds per 1,000 lines written (fail2ban-server's own; its ban actions took %s s more); MB: peak "
          "RSS during the rate (peak anonymous memory); lag: time to go idle after the last line; ratio: watch / fail2ban; in journal: the "
          "messages written that the journal holds"
          % ", ".join("%.3f" % (1e3 * row["children"][FAIL2BAN_UNIT] / row["written"]["lines"]) for row in rows))
    failures = ["/".join(str(row["written"]["failures"][jail]) for row in rows) for jail in ("sshd", "postfix-sasl", "dovecot")]
    print("written per rate: failed logins sshd %s, postfix-sasl %s, dovecot %s (fail2ban's sshd filter counts several "
          "lines of one attempt)" % tuple(failures))
    cpu_met = all(row["cpu"][WATCH_UNIT] <= row["cpu"][FAIL2BAN_UNIT] - row["children"][FAIL2BAN_UNIT] for row in rows)
    checked = [row for row in rows if row["rate"] <= LOSS_TARGET_RATE]
    loss_met = bool(checked) and all(lost(row) == 0 and WATCH_UNIT in row["caught_up"] for row in checked)
    print("targets: CPU per line at most fail2ban's (without its ban actions) at every rate: %s; no message lost at "
          "%d lines/s: %s" % ("met" if cpu_met else "NOT met", LOSS_TARGET_RATE, "met" if loss_met else "NOT met"))
    return cpu_met, loss_met


def main(argv=None):
    args = parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("watch_bench: run it as root (the lab needs it)")
    rates = [int(rate) for rate in args.rates.split(",")]
    lab_name = "wbench%d" % os.getpid()
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    print("load average at the start: %s" % load_average(), flush=True)
    with tempfile.TemporaryDirectory(prefix="watch-bench-") as scratch:
        state_file, inventory = os.path.join(scratch, "lab.json"), os.path.join(scratch, "inventory.yml")
        try:
            subprocess.run([sys.executable, str(LAB), "up", "--name", lab_name, "--host", "wb1:web,mail@" + FLAVOUR,
                            "--json", state_file, "--inventory", inventory], check=True, timeout=STEP_TIMEOUT)
            host = LabHost(json.loads(Path(state_file).read_text()))
            set_up(host, scratch, inventory)
            rows = [measure_lines_per_second(host, rate, args.seconds, "ABCDEFGHJK"[index], args.settle)
                    for index, rate in enumerate(rates)]
            cpu_met, loss_met = print_lines_table(rows)
            print("load average at the end: %s" % load_average())
            return 1 if not loss_met else 0 if cpu_met else 2
        finally:
            subprocess.run([sys.executable, str(LAB), "down", "--name", lab_name], check=False, timeout=STEP_TIMEOUT)


if __name__ == "__main__":
    sys.exit(main())
