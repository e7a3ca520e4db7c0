"""Shared by every scenario: a --check run after converge must change nothing.

Molecule's own `check` step runs the converge playbook in check mode but does
not look at the result; this test does. A role that reports "changed" in check
mode on a converged host is either not idempotent or lies in its diff.
"""

from __future__ import annotations

import os
from pathlib import Path

from labtools import ansible_playbook_stats, changed_tasks


def test_check_mode_after_converge_reports_no_changes():
    converge = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"]) / "converge.yml"
    run = ansible_playbook_stats(str(converge), "--check", "--diff")
    assert run["rc"] == 0, f"check run failed: {run['stats']}"
    assert run["stats"], "the check run reached no host"
    for host, stats in run["stats"].items():
        assert stats["failures"] == 0 and stats["unreachable"] == 0, f"{host}: {stats}"
    assert changed_tasks(run["plays"]) == [], "tasks reported changes in check mode after converge"
