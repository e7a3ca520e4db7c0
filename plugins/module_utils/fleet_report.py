# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The audit's fleet report: every host's ``hostguard_audit`` in one page and one JSON file on the controller.

Pure Python, no Ansible. The action plugin ``hostguard.hosting.fleet_report`` hands the hosts' results here;
this module builds the fleet document (roles/audit/files/hostguard_fleet_report.schema.json) with what changed
since the previous report in the same directory, renders it as one self-contained HTML page (inline CSS, no
script, no external asset: it opens from a USB stick or an email attachment) and as the lines the terminal
shows, and writes ``report.json`` and ``index.html`` atomically.

Every string a host reported (file names, account names, senders) is a customer's to choose: the page escapes
all of them, and its Content-Security-Policy forbids scripts should one ever slip through.
"""

from __future__ import annotations

import html
import json
import os
import re

from ansible_collections.hostguard.hosting.plugins.module_utils.atomic_file import write_atomically
from ansible_collections.hostguard.hosting.plugins.module_utils.audit_report import FACETS, SEVERITIES, is_open

# 3: hosts' results of schema 3; the summary names each incident the watch contained, noticed -> contained in N s.
# 2: hosts' results of schema 2; hosts and cells rank by open findings only, the closed ones counted apart.
SCHEMA_VERSION = 3
# Reports a new one is compared with: a finding of schema 1 has no status and is open.
COMPARABLE_VERSIONS = (1, 2, 3)
REPORT_JSON = "report.json"
INDEX_HTML = "index.html"
NO_RESULT = "no_result"
# The terminal names this many findings new and closed; the page names them all.
TERMINAL_CHANGES = 10
# The table's order: what to act on today first, then hosts nobody could audit (they may hide anything),
# then weaknesses, context and clean hosts.
RANKS = ("critical", NO_RESULT, "warning", "info", "ok")
LABELS = {"critical": "critical", "warning": "warning", "info": "info", "ok": "ok", NO_RESULT: "no result",
          "not_run": "not run"}
# Red, amber, green (and grey where nothing was read); the text label says the same for those who cannot
# tell the colours apart.
COLOURS = {"critical": ("#b71c1c", "#ffffff"), "warning": ("#ffb300", "#000000"), "info": ("#2e7d32", "#ffffff"),
           "ok": ("#2e7d32", "#ffffff"), NO_RESULT: ("#616161", "#ffffff"), "not_run": ("#e0e0e0", "#000000")}
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]|[\ud800-\udfff]")


class FleetReportError(ValueError):
    """The input is not a fleet of audit results, or the report cannot go where it was asked to."""


def plain(value):
    """A host's string made safe to show: control characters and undecodable bytes as visible escapes."""
    return _CONTROL.sub(lambda match: "\\x%02x" % ord(match.group()) if ord(match.group()) < 0x100
                        else "\\u%04x" % ord(match.group()), str(value))


def _finding_key(finding):
    return (finding.get("facet"), finding.get("summary"))


def _host_entry(name, result):
    if result is None:
        return {"host": name, "worst": NO_RESULT, "facets": {facet: NO_RESULT for facet in FACETS},
                "summary": None, "result": None}
    if not isinstance(result, dict) or not isinstance(result.get("findings"), list) \
            or not isinstance(result.get("summary"), dict):
        raise FleetReportError("the audit result of %s is not a hostguard_audit document: %r" % (name, result))
    cells = {}
    for facet in FACETS:
        if facet not in (result.get("facets") or []):
            cells[facet] = "not_run"
            continue
        # A finding the response closed does not colour its cell: the page ranks what is still open.
        severities = {finding["severity"] for finding in result["findings"]
                      if finding["facet"] == facet and is_open(finding)}
        cells[facet] = next((severity for severity in SEVERITIES if severity in severities), "ok")
    summary = result["summary"]
    if summary.get("worst", "ok") not in SEVERITIES + ("ok",):
        raise FleetReportError("the audit result of %s has an unknown worst severity %r" % (name, summary.get("worst")))
    counts = {severity: int(summary.get(severity) or 0) for severity in SEVERITIES}
    counts["closed"] = int(summary.get("closed") or 0)
    return {"host": name, "worst": summary.get("worst", "ok"), "facets": cells, "summary": counts, "result": result}


def _order(entry):
    counts = entry["summary"] or {}
    return (RANKS.index(entry["worst"]), -counts.get("critical", 0), -counts.get("warning", 0),
            -counts.get("info", 0), entry["host"])


def _changes(hosts, previous, inventory):
    """New and closed findings and hosts added and removed since the previous report (None: the first one).

    A host of the previous report that is still in the inventory but was not audited this time (``--limit``,
    ``audit_hosts``) is not removed: it is named as not audited, and its findings are neither new nor closed.
    """
    if previous is None:
        return {"previous": None, "hosts_added": [], "hosts_removed": [], "hosts_not_audited": [], "new": [],
                "closed": []}
    before = {entry["host"]: entry for entry in previous.get("hosts") or []}
    now = {entry["host"]: entry for entry in hosts}
    gone = sorted(set(before) - set(now))
    kept = set(inventory or ())
    changes = {"previous": previous.get("generated"), "hosts_added": sorted(set(now) - set(before)),
               "hosts_removed": [name for name in gone if name not in kept],
               "hosts_not_audited": [name for name in gone if name in kept], "new": [], "closed": []}
    for name in sorted(set(now) & set(before)):
        old, new = before[name].get("result"), now[name]["result"]
        if old is None or new is None:
            continue  # a host without a result says nothing about which findings were closed
        # Open findings only: one the response closed since the previous report is closed, not new.
        old_open = [finding for finding in old.get("findings") or [] if is_open(finding)]
        new_open = [finding for finding in new["findings"] if is_open(finding)]
        old_keys = {_finding_key(finding) for finding in old_open}
        new_keys = {_finding_key(finding) for finding in new_open}
        sides = (("new", new_open, old_keys), ("closed", old_open, new_keys))
        for kind, findings, others in sides:
            changes[kind] += [{"host": name, "facet": finding.get("facet"), "severity": finding.get("severity"),
                               "summary": finding.get("summary")}
                              for finding in findings if _finding_key(finding) not in others]
    return changes


def build_report(results, generated, previous=None, inventory=None):
    """The fleet document from ``{host: hostguard_audit or None}`` (None: the host has no result this run).

    ``previous`` is the report.json found in the report directory, or None; a report of another schema
    version is not compared with. ``inventory`` names every host of the inventory, audited or not.
    """
    if not isinstance(results, dict) or not results:
        raise FleetReportError("the fleet report needs the audit results of at least one host, got %r" % (results,))
    if previous is not None and (not isinstance(previous, dict)
                                 or previous.get("schema_version") not in COMPARABLE_VERSIONS):
        previous = None
    hosts = sorted((_host_entry(str(name), result) for name, result in results.items()), key=_order)
    worst = {rank: sum(1 for entry in hosts if entry["worst"] == rank) for rank in RANKS}
    findings = {severity: sum((entry["summary"] or {}).get(severity, 0) for entry in hosts)
                for severity in SEVERITIES + ("closed",)}
    return {"schema_version": SCHEMA_VERSION, "generated": str(generated), "facets": list(FACETS),
            "summary": {"hosts": len(hosts), "by_worst": worst, "findings": findings,
                        "contained": contained_incidents(hosts)},
            "changes": _changes(hosts, previous, inventory), "hosts": hosts}


def contained_incidents(hosts):
    """Each finding the response closed that says when it was noticed and contained, fastest host first:
    {host, facet, summary, action, noticed_at, contained_at, seconds}."""
    incidents = []
    for entry in hosts:
        for finding in (entry.get("result") or {}).get("findings") or []:
            response = finding.get("response") or {}
            if not is_open(finding) and response.get("noticed_at"):
                incidents.append({"host": entry["host"], "facet": finding.get("facet"), "summary": finding.get("summary"),
                                  "action": response.get("action"), "noticed_at": response.get("noticed_at"),
                                  "contained_at": response.get("contained_at"), "seconds": response.get("seconds")})
    return incidents


def _contained_text(incident):
    seconds = incident.get("seconds")
    took = "%d s" % seconds if seconds is not None else "an unknown time"
    return "noticed %s \u2192 contained in %s" % (incident.get("noticed_at"), took)


def finding_lines(report):
    """One line per finding of a report, to show the difference between two reports."""
    return ["%s: %s %s: %s" % (plain(entry["host"]), finding.get("severity"), finding.get("facet"),
                               plain(finding.get("summary")))
            for entry in (report or {}).get("hosts") or [] for finding in (entry.get("result") or {}).get("findings") or []]


def changed_since(report):
    """Whether the fleet changed since the previous report: a first report, a finding new or closed, a host added
    or removed (a host left out of this run is not a change)."""
    changes = report["changes"]
    return changes["previous"] is None or any(changes[key] for key in ("hosts_added", "hosts_removed", "new", "closed"))


def summary_lines(report):
    """The few lines the terminal shows: the fleet by worst finding, each host's counts, what changed."""
    summary = report["summary"]
    lines = ["fleet: %d hosts: %s" % (summary["hosts"], ", ".join(
        "%d %s" % (summary["by_worst"][rank], LABELS[rank]) for rank in RANKS if summary["by_worst"][rank]))]
    for entry in report["hosts"]:
        counts = entry["summary"]
        lines.append("%s: %s" % (plain(entry["host"]), LABELS[entry["worst"]] + (
            " (%s)" % _counts_text(counts) if counts else " (the audit did not finish on this host)")))
    lines += ["contained: %s: %s (%s): %s" % (plain(incident["host"]), _contained_text(incident), incident["action"],
                                              plain(incident["summary"]))
              for incident in summary.get("contained") or []]
    changes = report["changes"]
    if changes["previous"] is None:
        lines.append("changes: first report here, nothing to compare with")
    else:
        parts = ["%d new findings" % len(changes["new"]), "%d closed" % len(changes["closed"])]
        parts += ["hosts added: %s" % ", ".join(map(plain, changes["hosts_added"]))] if changes["hosts_added"] else []
        parts += (["hosts removed: %s" % ", ".join(map(plain, changes["hosts_removed"]))]
                  if changes["hosts_removed"] else [])
        parts += (["not audited this time: %s" % ", ".join(map(plain, changes["hosts_not_audited"]))]
                  if changes["hosts_not_audited"] else [])
        lines.append("since %s: %s" % (plain(changes["previous"]), "; ".join(parts)))
        for kind in ("new", "closed"):
            shown = changes[kind][:TERMINAL_CHANGES]
            lines += ["%s: %s: %s %s" % (kind, plain(change["host"]), change["severity"], plain(change["summary"]))
                      for change in shown]
            if len(changes[kind]) > len(shown):
                lines.append("%s: %d more in the report" % (kind, len(changes[kind]) - len(shown)))
    return lines


def _counts_text(counts):
    """The open findings by severity, and those the response closed apart: "1 critical, 0 warning, 2 info, +3 closed"."""
    text = "%d critical, %d warning, %d info" % (counts["critical"], counts["warning"], counts["info"])
    return text + (", +%d closed" % counts["closed"] if counts.get("closed") else "")


def _e(value):
    return html.escape(plain(value), quote=True)


def _cell(rank, text=None, tag="td"):
    return '<%s class="sev sev-%s" data-severity="%s">%s</%s>' % (tag, rank, rank, _e(text or LABELS[rank]), tag)


STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5em;color:#212121;line-height:1.4}
h1{font-size:1.5em;margin:0 0 .2em}h2{font-size:1.2em;margin:1.5em 0 .5em}h3{font-size:1.05em}
table{border-collapse:collapse;margin:.5em 0}th,td{border:1px solid #bdbdbd;padding:.3em .6em;text-align:left;
vertical-align:top}thead th{background:#eeeeee}
td.sev{font-weight:bold;white-space:nowrap}td.counts{white-space:nowrap}#fleet{font-size:.9em}
.wide{overflow-x:auto}
%s
pre{white-space:pre-wrap;word-break:break-all;margin:0;font-size:.85em;max-width:60em}
code{font-size:.9em}.muted{color:#616161}ul{margin:.3em 0}section.host{border-top:2px solid #bdbdbd;margin-top:1.5em}
""" % "\n".join(".sev-%s{background:%s;color:%s}" % (rank, background, colour)
                for rank, (background, colour) in COLOURS.items())


def _finding_item(change):
    return "<li>%s %s: %s <span class=\"muted\">(%s)</span></li>" % (
        _cell(change["severity"], tag="span"), _e(change["host"]), _e(change["summary"]), _e(change["facet"]))


def _changes_html(changes):
    if changes["previous"] is None:
        return "<p>This is the first report in this directory: nothing to compare with yet.</p>"
    parts = ["<p>Since the previous report of %s:</p>" % _e(changes["previous"])]
    if not any(changes[key] for key in ("hosts_added", "hosts_removed", "new", "closed")):
        parts.append("<p>nothing changed.</p>")
    for key, title in (("hosts_added", "Hosts added"), ("hosts_removed", "Hosts removed"),
                       ("hosts_not_audited", "Hosts in the inventory not audited this time (see the previous report)")):
        if changes[key]:
            parts.append("<h3>%s</h3><ul>%s</ul>" % (title, "".join("<li>%s</li>" % _e(name) for name in changes[key])))
    for key, title in (("new", "New findings"), ("closed", "Closed findings")):
        if changes[key]:
            parts.append('<h3 id="changes-%s">%s (%d)</h3><ul>%s</ul>' % (
                key, title, len(changes[key]), "".join(_finding_item(change) for change in changes[key])))
    return "\n".join(parts)


def _table_html(report):
    head = "".join("<th scope=\"col\">%s</th>" % _e(facet.replace("_", " ")) for facet in report["facets"])
    rows = []
    for index, entry in enumerate(report["hosts"]):
        counts = entry["summary"]
        total = _counts_text(counts) if counts else "no result"
        result = entry["result"] or {}
        cells = []
        for facet in report["facets"]:
            rank = entry["facets"][facet]
            mine = [finding for finding in result.get("findings") or [] if finding["facet"] == facet]
            count = sum(1 for finding in mine if is_open(finding))
            closed = len(mine) - count
            text = "%s (%d)" % (LABELS[rank], count) if count else LABELS[rank]
            cells.append(_cell(rank, text + (" +%d closed" % closed if closed else "") if mine else None))
        rows.append('<tr data-host="%s"><th scope="row"><a href="#host-%d">%s</a></th>%s<td class="counts">%s</td>%s</tr>' % (
            _e(entry["host"]), index, _e(entry["host"]), _cell(entry["worst"]), _e(total), "".join(cells)))
    return ('<div class="wide"><table id="fleet"><caption class="muted">Hosts by worst open finding. A facet\'s cell names its worst '
            'open finding and, in brackets, how many are open; "+N closed" counts those the response closed (quarantined, '
            'locked, purged).</caption><thead><tr><th scope="col">host</th>'
            '<th scope="col">worst</th><th scope="col">findings</th>%s</tr></thead><tbody>%s</tbody></table></div>'
            % (head, "\n".join(rows)))


def _evidence_html(evidence):
    text = json.dumps(evidence, indent=1, sort_keys=True, ensure_ascii=False, default=str)
    return "<details><summary>evidence</summary><pre>%s</pre></details>" % _e(text)


def _host_html(index, entry):
    result = entry["result"]
    parts = ['<section class="host" id="host-%d"><h2>%s %s</h2>' % (index, _e(entry["host"]),
                                                                    _cell(entry["worst"], tag="span"))]
    if result is None:
        parts.append("<p>No audit result: the host was unreachable or the audit failed on it. Its last known "
                     "state is in the previous report; run the audit again once it answers.</p></section>")
        return "".join(parts)
    parts.append('<p class="muted">%s, audited %s; facets read: %s</p>' % (
        _e(result.get("os") or "unknown system"), _e(result.get("time")), _e(", ".join(result.get("facets") or []))))
    if not result["findings"]:
        parts.append("<p>No findings.</p></section>")
        return "".join(parts)
    still = [finding for finding in result["findings"] if is_open(finding)]
    closed = [finding for finding in result["findings"] if not is_open(finding)]
    rows = ["<tr>%s<td>%s</td><td>%s</td><td>%s</td><td><code>%s</code></td></tr>" % (
        _cell(finding["severity"]), _e(finding["facet"]), _e(finding["summary"]),
        _evidence_html(finding.get("evidence")), _e(finding.get("remedy"))) for finding in still]
    parts.append('<table class="findings"><thead><tr><th scope="col">severity</th><th scope="col">facet</th>'
                 '<th scope="col">finding</th><th scope="col">evidence</th><th scope="col">remedy</th></tr></thead>'
                 "<tbody>%s</tbody></table>" % "\n".join(rows) if still else "<p>No open findings.</p>")
    if closed:
        rows = ["<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td><code>%s</code></td></tr>" % (
            _e(finding["facet"]), _e(finding["summary"]), _e(_response_text(finding.get("response") or {})),
            _evidence_html(finding.get("evidence")), _e((finding.get("response") or {}).get("undo") or ""))
            for finding in closed]
        parts.append('<h3>Closed by the response (%d)</h3><table class="findings closed"><thead><tr>'
                     '<th scope="col">facet</th><th scope="col">finding</th><th scope="col">response</th>'
                     '<th scope="col">evidence</th><th scope="col">to undo</th></tr></thead><tbody>%s</tbody></table>'
                     % (len(closed), "\n".join(rows)))
    parts.append("</section>")
    return "".join(parts)


def _response_text(response):
    text = "%s %s" % (response.get("action"), response.get("at") or "")
    if response.get("noticed_at"):
        text += "; %s" % _contained_text(response)
    for key in ("record", "evidence"):
        if response.get(key) and (key == "record" or response[key] != response.get("record")):
            text += "; %s %s" % (key, response[key])
    return text


def render_html(report):
    """The report as one self-contained page: no script, no external asset, every host's string escaped."""
    summary = report["summary"]
    overview = ", ".join("%d %s" % (summary["by_worst"][rank], LABELS[rank]) for rank in RANKS
                         if summary["by_worst"][rank])
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # Nothing but the inline style may load or run, whatever a host's string holds.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        "<title>hostguard fleet report %s</title>" % _e(report["generated"]),
        "<style>%s</style></head><body>" % STYLE,
        "<header><h1>hostguard fleet report</h1><p>Generated %s: %d hosts, %s.</p></header>"
        % (_e(report["generated"]), summary["hosts"], _e(overview)),
        '<section id="changes"><h2>What changed</h2>%s</section>' % _changes_html(report["changes"]),
        '<section id="hosts"><h2>Hosts</h2>%s</section>' % _table_html(report),
        "\n".join(_host_html(index, entry) for index, entry in enumerate(report["hosts"])),
        "</body></html>", ""])


def read_previous(directory):
    """The report.json a previous run left in ``directory``, or None where there is none or it is unreadable."""
    try:
        with open(os.path.join(directory, REPORT_JSON), encoding="utf-8") as stream:
            previous = json.load(stream)
    except (OSError, ValueError):
        return None
    return previous if isinstance(previous, dict) else None


def _directory_sources(inventory_sources):
    return [os.path.realpath(str(source)) for source in inventory_sources or () if os.path.isdir(str(source))]


def _inside(path, directory):
    """Whether Ansible, reading ``directory`` as inventory, reads ``path`` (hidden names it skips)."""
    if os.path.commonpath([path, directory]) != directory:
        return False
    relative = os.path.relpath(path, directory)
    return relative == "." or not any(part.startswith(".") for part in relative.split(os.sep))


def default_directory(inventory_dir, inventory_sources=()):
    """Where the report goes unless the user says: ``hostguard-report`` beside the inventory.

    Beside an inventory file, that is in its directory; when the inventory is a directory given to ``-i``, the
    report goes beside that directory (``<directory>-hostguard-report``), never inside it; with no inventory file
    (``-i host1,host2,``), in the current directory.
    """
    if not inventory_dir:
        return "hostguard-report"
    inventory_dir = os.path.realpath(str(inventory_dir))
    for source in _directory_sources(inventory_sources):
        if _inside(inventory_dir, source):
            return source.rstrip(os.sep) + "-hostguard-report"
    return os.path.join(inventory_dir, "hostguard-report")


def directory_problem(directory, inventory_sources=()):
    """Why the report cannot go to ``directory``, or None.

    Ansible reads every file under a directory given as inventory, report.json and index.html included
    (report.json's keys would become groups), so the report must not be written inside one.
    """
    if not directory or not str(directory).strip():
        return "audit_report_dir is empty: name the directory the fleet report goes to"
    target = os.path.realpath(str(directory))
    for source in _directory_sources(inventory_sources):
        if _inside(target, source):
            return ("audit_report_dir %s is inside the inventory directory %s, which Ansible would then read "
                    "report.json and index.html from as inventory: set audit_report_dir outside it"
                    % (directory, source))
    return None


def write_report(directory, report, mode=0o600):
    """Write report.json, then index.html, each atomically: a reader sees one whole report or the previous one."""
    os.makedirs(directory, mode=0o700, exist_ok=True)
    data = json.dumps(report, indent=1, sort_keys=True, ensure_ascii=True, default=str) + "\n"
    write_atomically(os.path.join(directory, REPORT_JSON), data.encode("ascii"), mode)
    write_atomically(os.path.join(directory, INDEX_HTML), render_html(report).encode("utf-8"), mode)
    return [os.path.join(directory, REPORT_JSON), os.path.join(directory, INDEX_HTML)]


def main(argv, write=None):
    """The terminal summary of a saved report, for ``python -m ...fleet_report DIRECTORY/report.json`` on the
    controller (the audit prints the same lines when it writes the report); the exit status."""
    import sys

    write = write or sys.stdout.write
    if len(argv) != 1:
        write("usage: fleet_report.py REPORT.json (a fleet report's report.json)\n")
        return 2
    with open(argv[0], encoding="utf-8") as stream:
        report = json.load(stream)
    write("".join(line + "\n" for line in summary_lines(report)))
    return 0


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))
