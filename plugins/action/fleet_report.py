# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write the audit's fleet report on the controller (documented in plugins/modules/fleet_report.py).

Runs in the controller's process, not on a host: the report is the controller's file, and the hosts' results
are already here as their hostguard_audit facts. The logic is in module_utils/fleet_report.py.
"""

from __future__ import annotations

import datetime

from ansible.plugins.action import ActionBase

from ansible_collections.hostguard.hosting.plugins.module_utils.fleet_report import (
    FleetReportError,
    build_report,
    changed_since,
    directory_problem,
    finding_lines,
    read_previous,
    summary_lines,
    write_report,
)

ARGUMENT_SPEC = {
    "dir": {"type": "path", "required": True},
    "hosts": {"type": "list", "elements": "str", "required": True},
    "inventory_sources": {"type": "list", "elements": "str", "default": []},
}


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        _validation, args = self.validate_argument_spec(argument_spec=ARGUMENT_SPEC)
        directory = args["dir"]
        problem = directory_problem(directory, args["inventory_sources"])
        if problem:
            return dict(result, failed=True, msg=problem)
        hostvars = task_vars.get("hostvars") or {}
        # A host without the fact (unreachable, or the audit failed on it) is in the report without a result.
        results = {name: (hostvars[name].get("hostguard_audit") if name in hostvars else None) for name in args["hosts"]}
        generated = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        previous = read_previous(directory)
        try:
            report = build_report(results, generated, previous, task_vars.get("groups", {}).get("all"))
        except FleetReportError as error:
            return dict(result, failed=True, msg=str(error))
        # The report is the audit's output on the controller, not a change to any host (the audit changes
        # nothing): the task is never "changed"; whether the fleet changed is fleet_changed.
        fleet_changed = changed_since(report)
        if self._task.diff and fleet_changed:
            result["diff"] = {"before_header": "%s/report.json" % directory, "after_header": "%s/report.json" % directory,
                              "before": "".join(line + "\n" for line in finding_lines(previous)),
                              "after": "".join(line + "\n" for line in finding_lines(report))}
        try:
            paths = [] if self._task.check_mode else write_report(directory, report)
        except OSError as error:
            return dict(result, failed=True, msg="could not write the fleet report in %s: %s" % (directory, error))
        return dict(result, changed=False, fleet_changed=fleet_changed, dir=directory, paths=paths, written=bool(paths),
                    summary=summary_lines(report), changes=report["changes"],
                    msg=("the fleet report: %s" % paths[-1] if paths
                         else "check mode: nothing written; the fleet report goes to %s" % directory))
