"""hostguard.hosting.quarantine's core against chmod -R 000, side by side, in one run.

Generates a WordPress-like docroot of 40,000 files (plus their directories, a few
symlinks and hard links) owned by a customer uid, with the modes a real site has
(0644, 0640, 0600, 0755 scripts, setgid upload directories, a setuid CGI), then times:

  1. chmod -R 000                               what the seeds' providers do
  2. chown -R root:root + chmod -R 000          what it really takes (the owner can chmod back otherwise)
  3. quarantine (core)                          manifest with sha256 of every file, then root:root 0000
  4. restore (core)                             verify every sha256, put back owners, modes, xattrs, times
  5. quarantine (core, immutable)               the same plus chattr +i on every file and directory
  6. restore (core, after immutable)
  7. restore by hand                            chown -R back, find -type d chmod 755, find -type f chmod 644

After each restore the tree is compared with the snapshot taken before (type,
numeric owner, mode, size, mtime in ns, inode, sha256): the table says how many
entries differ. Between the rows that have no restore of their own, the tree is
put back from that snapshot (not timed).

The core runs in a fresh python3 process, as it would on a managed host; the
page cache is warm for every row. Each row is the median of --repeat runs.

Run as root: python3 benchmarks/quarantine_bench.py [--files 40000] [--repeat 3]
Everything lives under --workdir (default /var/tmp/hostguard-bench-quarantine)
and is deleted at the end, also after an error or Ctrl-C, unless --keep is given.
Exit status: 0 when the core's restores are exact, 1 when an entry differs.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import stat
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "tests"))
import tree_snapshot  # noqa: E402  (the snapshot the quarantine tests compare with)
MARKER = ".hostguard-bench-quarantine"
ACCOUNT = 2001
WEB_SERVER_GID = 33
STEP_TIMEOUT = 900
# Runs the core with the host's python3 and nothing but the standard library, imported the way Ansible
# does: from an ansible_collections directory (argv[1]) that links to this checkout.
CORE_RUNNER = """
import json, sys
sys.path.insert(0, sys.argv[1])
from ansible_collections.hostguard.hosting.plugins.module_utils import quarantine as core
result = core.run([sys.argv[2]], sys.argv[3], [sys.argv[2]], manifest_dir=sys.argv[4], immutable=sys.argv[5] == "1")
print(json.dumps({"counts": result["counts"], "failures": [f for r in result["results"] for f in r["failures"]]}))
"""


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("--files", type=int, default=40000, help="regular files in the docroot (default 40000)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per row; the median is shown (default 3)")
    parser.add_argument("--workdir", default="/var/tmp/hostguard-bench-quarantine")
    parser.add_argument("--keep", action="store_true", help="leave the work directory in place")
    return parser.parse_args(argv)


def generate(docroot, files, rng):
    """A WordPress-like tree with ``files`` regular files; returns the number of entries."""
    layout = []
    uploads = ["wp-content/uploads/%d/%02d" % (year, month) for year in range(2019, 2025) for month in range(1, 13)]
    plugins = ["wp-content/plugins/plugin-%02d/%s" % (number, sub) for number in range(60)
               for sub in ("includes", "admin", "assets/js", "assets/css", "languages")]
    core = ["wp-includes/%s" % name for name in ("blocks", "css", "js", "rest-api", "widgets", "html-api")] + ["wp-admin"]
    directories = core + plugins + uploads
    for number in range(files):
        directory = directories[number % len(directories)]
        if directory.startswith("wp-content/uploads"):
            name, size, mode = "image-%05d.jpg" % number, rng.randint(8000, 40000), 0o664
        else:
            name, size, mode = "file-%05d.php" % number, rng.randint(200, 6000), rng.choice((0o644,) * 8 + (0o640, 0o600))
        layout.append((directory + "/" + name, size, mode))
    for directory in directories:
        (docroot / directory).mkdir(parents=True, exist_ok=True)
    block = rng.randbytes(65536)
    for rel, size, mode in layout:
        path = docroot / rel
        path.write_bytes(block[:size])
        os.chmod(path, mode)
    (docroot / "wp-config.php").write_bytes(b"<?php define('DB_PASSWORD', 'bench');\n")
    os.chmod(docroot / "wp-config.php", 0o640)
    (docroot / "cgi-bin").mkdir()
    (docroot / "cgi-bin/counter.cgi").write_bytes(b"#!/bin/sh\necho 42\n")
    os.chmod(docroot / "cgi-bin/counter.cgi", 0o4750)
    for number in range(20):
        os.symlink("../../uploads/2024/%02d" % (number % 12 + 1), docroot / ("wp-content/plugins/plugin-%02d/latest" % number))
        os.link(docroot / layout[number][0], docroot / ("wp-admin/hardlink-%02d.php" % number))
    for path in [docroot] + sorted(docroot.rglob("*")):
        os.chown(path, ACCOUNT, WEB_SERVER_GID if path.name == "wp-config.php" else ACCOUNT, follow_symlinks=False)
    for directory in (docroot / "wp-content/uploads").rglob("*"):
        if directory.is_dir():
            os.chmod(directory, 0o2775)
    # Old, distinct mtimes, deepest first so that setting a child's does not move its directory's.
    for number, path in enumerate(sorted([docroot] + list(docroot.rglob("*")), key=lambda p: -len(p.parts))):
        then = (1_700_000_000 + number * 97) * 10**9
        os.utime(path, ns=(then, then), follow_symlinks=False)


def snapshot(docroot):
    """type, numeric owner, mode, size, mtime, inode and sha256 of every entry (tests/tree_snapshot.py)."""
    return tree_snapshot.snapshot(str(docroot))


def differing(docroot, reference):
    now = snapshot(docroot)
    return sum(1 for rel in reference.keys() | now.keys() if reference.get(rel) != now.get(rel))


def put_back(docroot, reference):
    """Reset owners, modes and times from the snapshot (not timed), deepest first."""
    for rel in sorted(reference, key=lambda rel: -rel.count("/")):
        entry = reference[rel]
        kind, mode, uid, gid, mtime_ns = entry["type"], entry["mode"], entry["uid"], entry["gid"], entry["mtime_ns"]
        path = docroot / rel if rel != "." else docroot
        os.chown(path, uid, gid, follow_symlinks=False)
        if kind != stat.S_IFLNK:
            os.chmod(path, mode)
        os.utime(path, ns=(mtime_ns, mtime_ns), follow_symlinks=False)


def timed(command):
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, timeout=STEP_TIMEOUT, check=False)
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError("%s failed: %s" % (" ".join(command[:3]), completed.stderr.strip()[-2000:]))
    return seconds, completed.stdout


def core_command(python, docroot, state, manifests, immutable):
    collections = manifests.parent / "collections"
    return [python, "-c", CORE_RUNNER, str(collections), str(docroot), state, str(manifests), "1" if immutable else "0"]


def run_core(python, docroot, state, manifests, immutable):
    seconds, output = timed(core_command(python, docroot, state, manifests, immutable))
    result = json.loads(output)
    if result["failures"]:
        raise RuntimeError("the core reported failures: %s" % result["failures"][:5])
    return seconds


def measure(args, docroot, manifests, reference, python):
    rows = {}

    def row(name, seconds_list, exact=""):
        rows[name] = (statistics.median(seconds_list), exact)

    chmod_runs, chown_runs = [], []
    for _repeat in range(args.repeat):
        chmod_runs.append(timed(["chmod", "-R", "000", str(docroot)])[0])
        put_back(docroot, reference)
        chown_runs.append(timed(["chown", "-R", "root:root", str(docroot)])[0]
                          + timed(["chmod", "-R", "000", str(docroot)])[0])
        put_back(docroot, reference)
    row("chmod -R 000", chmod_runs, "no manifest")
    row("chown -R root:root + chmod -R 000", chown_runs, "no manifest")

    for immutable in (False, True):
        quarantine_runs, restore_runs, exact = [], [], []
        for _repeat in range(args.repeat):
            quarantine_runs.append(run_core(python, docroot, "quarantined", manifests, immutable))
            restore_runs.append(run_core(python, docroot, "restored", manifests, immutable=False))
            exact.append(differing(docroot, reference))
        suffix = ", immutable" if immutable else ""
        row("quarantine (core%s)" % suffix, quarantine_runs)
        row("restore (core%s)" % (", after immutable" if immutable else ""), restore_runs,
            "%d of %d entries differ" % (max(exact), len(reference)))

    hand_runs, hand_exact = [], []
    for _repeat in range(args.repeat):
        timed(["chown", "-R", "root:root", str(docroot)])
        timed(["chmod", "-R", "000", str(docroot)])
        seconds = timed(["chown", "-R", "%d:%d" % (ACCOUNT, ACCOUNT), str(docroot)])[0]
        seconds += timed(["find", str(docroot), "-type", "d", "-exec", "chmod", "755", "{}", "+"])[0]
        seconds += timed(["find", str(docroot), "-type", "f", "-exec", "chmod", "644", "{}", "+"])[0]
        hand_runs.append(seconds)
        hand_exact.append(differing(docroot, reference))
        put_back(docroot, reference)
    row("restore by hand (chown -R, find chmod 755/644)", hand_runs,
        "%d of %d entries differ" % (max(hand_exact), len(reference)))
    return rows


def print_table(rows):
    chmod = rows["chmod -R 000"][0]
    chown_chmod = rows["chown -R root:root + chmod -R 000"][0]
    line = "%-48s %8s %12s %15s  %s"
    print(line % ("method", "seconds", "vs chmod -R", "vs chown+chmod", "after restore"))
    for name, (seconds, exact) in rows.items():
        print(line % (name, "%.2f" % seconds, "%.1fx" % (seconds / chmod), "%.1fx" % (seconds / chown_chmod),
                      exact or "-"))


def main(argv=None):
    args = parse_args(argv)
    if os.geteuid() != 0:
        sys.exit("quarantine_bench: run it as root (it changes owners and sets the immutable flag)")
    workdir = Path(args.workdir)
    if workdir.exists() and not (workdir / MARKER).exists():
        sys.exit("quarantine_bench: %s exists and was not made by this benchmark; give another --workdir" % workdir)
    python = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    try:
        if workdir.exists():
            subprocess.run(["chattr", "-R", "-i", str(workdir)], capture_output=True, check=False)
            shutil.rmtree(workdir)
        workdir.mkdir(parents=True)
        (workdir / MARKER).touch()
        namespace = workdir / "collections" / "ansible_collections" / "hostguard"
        namespace.mkdir(parents=True)
        (namespace / "hosting").symlink_to(REPO_ROOT, target_is_directory=True)
        docroot, manifests = workdir / "docroot", workdir / "manifests"
        docroot.mkdir()
        print("generating %d files under %s ..." % (args.files, docroot), flush=True)
        generate(docroot, args.files, random.Random(7))
        reference = snapshot(docroot)
        files = sum(1 for described in reference.values() if described["type"] == stat.S_IFREG)
        print("%d entries (%d regular files, %.0f MB); core run by %s; median of %d runs\n" % (
            len(reference), files, sum(d["size"] for d in reference.values() if d["type"] == stat.S_IFREG) / 1e6, python,
            args.repeat), flush=True)
        rows = measure(args, docroot, manifests, reference, python)
        print_table(rows)
        core_exact = all(exact.startswith("0 of") for name, (_seconds, exact) in rows.items() if "(core" in name
                         and name.startswith("restore"))
        return 0 if core_exact else 1
    finally:
        if args.keep:
            print("kept %s" % workdir)
        elif workdir.exists() and (workdir / MARKER).exists():
            subprocess.run(["chattr", "-R", "-i", str(workdir)], capture_output=True, check=False)
            shutil.rmtree(workdir)


if __name__ == "__main__":
    sys.exit(main())
