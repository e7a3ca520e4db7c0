"""A module of the collection run as Ansible runs it: a process reading its arguments from a JSON file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

MODULES = Path(__file__).resolve().parents[1] / "plugins" / "modules"


def run_module(name, workdir, **arguments):
    """Run plugins/modules/NAME.py with ``arguments`` (the file in ``workdir``); return (exit code, parsed result)."""
    args_file = Path(workdir) / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": arguments}))
    completed = subprocess.run([sys.executable, str(MODULES / ("%s.py" % name)), str(args_file)], capture_output=True,
                               env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)), timeout=120, check=False)
    return completed.returncode, json.loads(completed.stdout)
