"""A lab host as the benchmarks drive it: commands and Python scripts over root's SSH key (tests/lab/lab.py)."""

from __future__ import annotations

import shlex
import subprocess

STEP_TIMEOUT = 1800


class LabHost:
    """The first host of a lab, from the state lab.py writes with --json."""

    def __init__(self, state):
        host = state["hosts"][0]
        self.address = host["ipv4"]
        self.ssh = ["ssh", "-i", state["ssh_key"], "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                    "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "root@" + host["ipv4"]]

    def run(self, command, stdin=None):
        completed = subprocess.run(self.ssh + [command], input=stdin, capture_output=True, text=True,
                                   timeout=STEP_TIMEOUT, check=False)
        if completed.returncode != 0:
            raise RuntimeError("%s failed on the lab host: %s" % (command[:80], completed.stderr.strip()[-2000:]))
        return completed.stdout

    def python(self, script, *args):
        """Run a Python script given as text with the host's python3; its standard output."""
        return self.run("python3 -c %s %s" % (shlex.quote(script), " ".join(shlex.quote(str(arg)) for arg in args)))
