"""The lab works as the other scenarios assume: real hosts, real daemons, a real network."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import jsonschema
import pytest
import referencing
from labtools import PROJECT_DIR, Lab, ansible_playbook_stats, audit_results, changed_tasks, task_name

LAB = Lab.from_env()
SCENARIO = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
DAEMONS = ["ssh", "postfix", "dovecot", "vsftpd"]
# Ports the daemons of the default root file system listen on.
LISTENING = {22: "SSH-2.0-OpenSSH", 25: "220 ", 21: "220 ", 110: "+OK", 143: "* OK"}


def test_systemd_booted_cleanly(host):
    assert host.run("systemctl is-system-running").stdout.strip() == "running"


@pytest.mark.parametrize("daemon", DAEMONS)
def test_daemon_runs(host, daemon):
    service = host.service(daemon)
    assert service.is_running
    assert service.is_enabled


def test_host_has_its_own_name_and_address(host):
    name = host.backend.get_hostname()
    assert host.check_output("hostname") == name
    assert LAB.hosts[name]["ipv4"] in host.interface("eth0").addresses


def test_tools_the_roles_need_are_present(host):
    for command in ("nft", "postfix", "doveconf", "python3", "sudo"):
        assert host.exists(command), command


def test_host_reaches_nothing_outside_the_lab(host):
    # No default route: the lab's hosts must never send traffic off this machine.
    assert host.check_output("ip -4 route show default") == ""
    assert host.check_output("ip -6 route show default") == ""


@pytest.mark.parametrize("client", ["office", "jp", "abroad"])
@pytest.mark.parametrize("port", sorted(LISTENING))
def test_every_client_network_reaches_each_service(client, port):
    for name, lab_host in LAB.hosts.items():
        for address in (lab_host["ipv4"], lab_host["ipv6"]):
            result = LAB.clients[client].tcp(address, port)
            assert result["state"] == "open", f"{client} -> {name} [{address}]:{port}: {result}"
            assert result["banner"].startswith(LISTENING[port]), result


def test_closed_port_is_refused_not_dropped():
    # With no firewall yet, a port nothing listens on answers with a RST: the
    # probe tells refused from dropped, which the firewall scenarios rely on.
    lab_host = next(iter(LAB.hosts.values()))
    assert LAB.clients["abroad"].tcp(lab_host["ipv4"], 9)["state"] == "refused"


def test_postfix_greets_with_the_host_name(host):
    name = host.backend.get_hostname()
    banner = LAB.clients["jp"].tcp(LAB.hosts[name]["ipv4"], 25)["banner"]
    assert banner.startswith(f"220 {name}.lab.example ESMTP"), banner


def test_dnsbl_check_on_a_lab_host_classifies_the_lab_dns_answers_truthfully():
    run = ansible_playbook_stats(str(SCENARIO / "dnsbl.yml"))
    assert run["rc"] == 0, run["stats"]
    result = run["plays"][0]["tasks"][0]["hosts"]["web1"]
    status = {(check["address"], check["zone"]): check["status"] for check in result["checks"]}
    assert status[("198.19.0.2", "zen.spamhaus.org")] == "listed"
    assert status[("198.19.0.2", "bl.spamcop.net")] == "listed"
    assert status[("198.19.0.11", "zen.spamhaus.org")] == "policy"
    assert status[("198.19.0.200", "zen.spamhaus.org")] == "not_listed"
    assert status[("2001:db8:19::2", "zen.spamhaus.org")] == "listed"
    # Spamhaus's "public resolver" answer is an error, never a listing.
    assert status[("198.19.0.254", "zen.spamhaus.org")] == "error"
    # A zone that never answers is reported as such, never as clean.
    assert {status[(address, "timeout.dnsbl.test")] for address in
            ("198.19.0.2", "198.19.0.11", "198.19.0.200")} == {"timeout"}
    assert result["zones"]["timeout.dnsbl.test"]["healthy"] is False
    assert result["listed"] is True and result["changed"] is False


AUDIT_FACETS = ["services", "enforcement", "dnsbl", "integrity", "accounts", "mail_queue", "attacks", "updates", "cms",
                "disks", "watch", "logins", "senders", "safe_browsing"]
# The key molecule.yml gives the audit, which the stand-in for Google Safe Browsing on mail1 expects.
SAFE_BROWSING_KEY = "lab-safe-browsing-key-2207"

# converge.yml's settings (the lab's country table, a per-hour limit the seeded script passes), blocklists skipped.
AUDIT_VARS = {"audit_dnsbl_addresses": [], "watch_country_cidrs": "{{ hostguard_lab_country_table }}",
              "watch_mail_per_hour": 5}


@pytest.fixture(scope="module")
def audit_run():
    """The audit on the lab hosts, blocklists skipped: the playbook's JSON report."""
    run = ansible_playbook_stats(str(PROJECT_DIR / "playbooks" / "audit.yml"), "-e", json.dumps(AUDIT_VARS))
    assert run["rc"] == 0, run["stats"]
    # converge.yml ran the audit already: the webshell rules it ships are in place, so nothing changes now.
    assert changed_tasks(run["plays"]) == []
    return run


@pytest.fixture(scope="module")
def audit(audit_run):
    """({host: hostguard_audit}, {host: the lines it showed})."""
    facts, lines = audit_results(audit_run["plays"])
    assert set(facts) == set(lines) == set(LAB.hosts)
    return facts, lines


def task_results(run, name):
    return [result for play in run["plays"] for task in play["tasks"] if task_name(task) == name
            for result in task["hosts"].values()]


def test_the_audit_leaves_the_fleet_report_on_the_controller_with_both_hosts(audit_run, audit):
    facts, _lines = audit
    (written,) = task_results(audit_run, "Write the fleet report on the controller")  # once, not per host
    # molecule's inventory is a directory: the report goes beside it, where Ansible does not read it as inventory.
    inventory = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
    directory = Path(written["dir"])
    assert directory == inventory.parent / (inventory.name + "-hostguard-report"), written
    report = json.loads((directory / "report.json").read_text())
    files = PROJECT_DIR / "roles" / "audit" / "files"
    host_schema = json.loads((files / "hostguard_audit.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(
        json.loads((files / "hostguard_fleet_report.schema.json").read_text()),
        registry=referencing.Registry().with_resource(host_schema["$id"],
                                                      referencing.Resource.from_contents(host_schema)))
    assert [error.message for error in validator.iter_errors(report)] == []
    assert {entry["host"]: entry["result"] for entry in report["hosts"]} == facts
    # web1 has the seeded security update (critical); mail1 is no worse, so web1 comes first.
    assert report["hosts"][0]["host"] == "web1" and report["hosts"][0]["worst"] == "critical"
    # converge and idempotence ran the audit before: this report compares with theirs and finds nothing new.
    assert report["changes"]["previous"] is not None
    assert (report["changes"]["new"], report["changes"]["closed"]) == ([], [])
    assert written["fleet_changed"] is False and written["changed"] is False
    page = (directory / "index.html").read_text()
    for name in LAB.hosts:
        assert '<tr data-host="%s">' % name in page
    (shown,) = task_results(audit_run, "Show the fleet at a glance")
    by_worst = report["summary"]["by_worst"]
    assert shown["msg"][0] == "fleet: 2 hosts: " + ", ".join(
        "%d %s" % (by_worst[rank], rank.replace("_", " ")) for rank in ("critical", "no_result", "warning", "info", "ok")
        if by_worst[rank])
    assert shown["msg"][-1] == "the fleet report: %s" % (directory / "index.html")


def test_the_audit_result_of_each_lab_host_is_valid_against_the_schema(audit):
    facts, _lines = audit
    schema = json.loads((PROJECT_DIR / "roles" / "audit" / "files" / "hostguard_audit.schema.json").read_text())
    validator = jsonschema.Draft202012Validator(schema)
    for name, result in facts.items():
        errors = [f"{list(error.path)}: {error.message}" for error in validator.iter_errors(result)]
        assert not errors, (name, errors)
        assert (result["schema_version"], result["host"]) == (3, name)
        assert result["facets"] == AUDIT_FACETS
        # No hardening role ran on the lab's hosts: no record, nothing to prove.
        assert result["enforcement"] == {"roles": []}
        # The lab's daemons, as the network sees them: every listening port of LISTENING is reported, unfirewalled.
        assert set(LISTENING) <= set(result["services"]["exposed_ports"]), result["services"]
        assert {port["firewall"] for port in result["services"]["exposed"]} == {"none"}
        assert result["dnsbl"] == {"addresses": [], "checks": [], "zones": [], "unhealthy_zones": []}
        # No watch on the lab's hosts: the audit says that nothing watches them between audits.
        assert result["watch"]["present"] is False
        unwatched = [finding for finding in result["findings"] if finding["facet"] == "watch"]
        assert [(finding["severity"], finding["remedy"]) for finding in unwatched] == [("info", "roles/watch")]


def test_the_audit_findings_name_what_the_lab_was_seeded_with(audit):
    facts, lines = audit
    web1 = facts["web1"]
    security = [finding for finding in web1["findings"] if finding["facet"] == "updates"
                and finding["severity"] == "critical"]
    assert security and "hostguard-probe" in security[0]["evidence"]["packages"], web1["findings"]
    ssh = [finding for finding in web1["findings"] if finding["facet"] == "services" and finding["evidence"].get("port") == 22]
    assert ssh and ssh[0]["severity"] == "warning" and ssh[0]["remedy"] == "roles/firewall", web1["findings"]
    summary = web1["summary"]
    assert summary["worst"] == "critical"
    assert lines["web1"][-1] == "findings: %d critical, %d warning, %d info" % (
        summary["critical"], summary["warning"], summary["info"])


def test_the_audit_names_a_pending_security_update_and_that_nothing_installs_it(audit):
    # prepare.yml published hostguard-probe 1.1 in an archive labelled as Debian's security archive.
    facts, lines = audit
    updates = facts["web1"]["updates"]
    assert "hostguard-probe" in updates["security"]
    assert updates["summary"]["security"] >= 1 and updates["lists_age_days"] is not None
    assert updates["unattended_upgrades"]["enabled"] is False  # not installed in the lab's image
    shown = [line for line in lines["web1"] if line.startswith("updates: ")]
    assert shown and "hostguard-probe" in shown[0] and "security updates" in shown[0], lines["web1"]
    assert "unattended-upgrades is not on: security updates wait for someone to install them" in lines["web1"]
    # mail1 was not seeded: whatever it lacks, hostguard-probe is not among it.
    assert "hostguard-probe" not in facts["mail1"]["updates"]["security"]


def test_the_audit_judges_the_seeded_wordpress_installs_against_the_shipped_releases(audit):
    # prepare.yml: WordPress 4.9.8 with Contact Form 7 5.0.3 in /var/www/site1, WordPress 6.9 in /var/www/site1/blog.
    facts, lines = audit
    cms = facts["web1"]["cms"]
    by_path = {install["path"]: install for install in cms["installs"]}
    assert set(by_path) == {"/var/www/site1", "/var/www/site1/blog"}, cms
    old, current = by_path["/var/www/site1"], by_path["/var/www/site1/blog"]
    assert (old["version"], old["status"], old["latest"]) == ("4.9.8", "unsupported", "6.9")
    assert [(p["slug"], p["version"], p["status"]) for p in old["plugins"]] == [("contact-form-7", "5.0.3", "unknown")]
    assert (current["version"], current["status"]) == ("6.9", "current")
    findings = [finding for finding in facts["web1"]["findings"] if finding["facet"] == "cms"]
    assert [finding["severity"] for finding in findings] == ["critical", "info"], findings
    assert findings[0]["summary"] == "WordPress 4.9.8 at /var/www/site1 gets no security fixes any more (latest 6.9)"
    assert findings[1]["summary"].startswith("the installs are judged against releases as of 2025-12-02")
    assert "cms: WordPress 4.9.8 at /var/www/site1, unsupported (latest 6.9)" in lines["web1"]
    # mail1 has no site: nothing to judge.
    assert facts["mail1"]["cms"]["installs"] == []


def test_the_audit_reads_the_disks_of_a_host_without_software_raid_or_smartctl(audit):
    # The lab's hosts share this machine's kernel, which has no md array, and their image has no smartmontools:
    # the facet says so rather than failing (unit tests cover arrays and verdicts: test_disk_health.py).
    facts, lines = audit
    disks = facts["web1"]["disks"]
    assert disks["summary"] == {"arrays": 0, "degraded": [], "rebuilding": [], "failing_disks": []}
    assert disks["smartctl"] is False
    assert not [line for line in lines["web1"] if "RAID" in line or "SMART" in line]


def test_the_audit_names_the_mailbox_logged_in_to_from_abroad_with_address_country_and_times(audit):
    # prepare.yml logged in to mbox1 over IMAP from the jp client, then from the abroad one (MD in the lab's table).
    facts, lines = audit
    abroad, jp = LAB.clients["abroad"].ipv4, LAB.clients["jp"].ipv4
    for name in LAB.hosts:
        logins = facts[name]["logins"]
        assert logins["country_data"] is True and logins["untrusted_lines"] == 0
        (mbox1,) = [account for account in logins["accounts"] if account["account"] == "mbox1"]
        assert mbox1["usual"] == ["JP"], mbox1
        assert {(place["place"], tuple(place["addresses"])) for place in mbox1["places"]} == {
            ("JP", (jp,)), ("MD", (abroad,))}, mbox1
        (unusual,) = [place for place in logins["unusual"] if place["account"] == "mbox1"]
        assert (unusual["service"], unusual["country"], unusual["count"]) == ("imap", "MD", 1)
        (finding,) = [finding for finding in facts[name]["findings"] if finding["facet"] == "logins"]
        assert (finding["severity"], finding["remedy"]) == ("warning", "docs/runbooks/leaked-password.md")
        assert finding["summary"].startswith("mbox1 logged in over IMAP from %s (MD) 1 time(s), first %s"
                                             % (abroad, unusual["first"])), finding
        assert [line for line in lines[name] if line.startswith("unusual login: mbox1 imap from %s (MD)" % abroad)]
        # the controller's SSH logins as root come from the lab network, which has no country: never judged
        assert not [place for place in logins["unusual"] if place["account"] == "root"]


def test_the_audit_names_the_script_that_sent_mail_past_the_hourly_limit(audit):
    # prepare.yml ran site1's contact.php, twelve messages through sendmail with X-PHP-Originating-Script.
    facts, _lines = audit
    senders = facts["web1"]["senders"]
    assert (senders["mta"], senders["per_hour"]) == ("postfix", 5)
    (site1,) = [sender for sender in senders["senders"] if sender.get("account") == "site1"]
    assert (site1["source"], site1["uid"], site1["script"], site1["messages"]) == ("uid:2001", 2001, "contact.php", 12)
    assert site1["top_recipient_domains"] == {"victims.example": 12}
    (finding,) = [finding for finding in facts["web1"]["findings"] if finding["facet"] == "senders"]
    assert (finding["severity"], finding["remedy"]) == ("critical", "docs/runbooks/spam-outbreak.md")
    # All twelve in one clock hour, or split across two with more than the limit of 5 in one of them.
    peak = re.match(r"account site1 \(uid 2001\), script contact\.php sent (\d+) messages in the hour", finding["summary"])
    assert peak and 6 <= int(peak.group(1)) <= 12, finding
    assert "victims.example 12" in finding["summary"]
    # mail1 ran no script: no sender passes the limit there
    assert not [finding for finding in facts["mail1"]["findings"] if finding["facet"] == "senders"]


def test_the_audit_names_the_site_google_safe_browsing_lists_and_says_the_other_is_clean(audit_run, audit):
    # molecule.yml: site1 on web1 answers on site1.lab.example, which the stand-in lists as MALWARE; mail1's webmail
    # answers on webmail.lab.example, which it does not list. One lookup for both hosts, from the controller.
    facts, lines = audit
    web1, mail1 = facts["web1"]["safe_browsing"], facts["mail1"]["safe_browsing"]
    assert (web1["status"], web1["error"]) == ("checked", None)
    assert [(url["site"], url["url"], url["status"]) for url in web1["urls"]] == [
        ("site1", "http://site1.lab.example/", "listed"), ("site1", "https://site1.lab.example/", "listed")]
    assert {match["threat_type"] for url in web1["urls"] for match in url["matches"]} == {"MALWARE"}
    assert [(url["site"], url["url"], url["status"]) for url in mail1["urls"]] == [
        ("webmail", "http://webmail.lab.example/", "clean"), ("webmail", "https://webmail.lab.example/", "clean")]
    (finding,) = [finding for finding in facts["web1"]["findings"] if finding["facet"] == "safe_browsing"]
    assert (finding["severity"], finding["status"]) == ("critical", "open")
    assert finding["summary"] == (
        "site site1 is listed by Google Safe Browsing: http://site1.lab.example/ as MALWARE (ANY_PLATFORM); "
        "https://site1.lab.example/ as MALWARE (ANY_PLATFORM); browsers warn its visitors away")
    assert finding["remedy"] == "docs/runbooks/planted-files.md#5-get-the-site-off-googles-warnings"
    assert "listed by Google Safe Browsing: http://site1.lab.example/ as MALWARE (ANY_PLATFORM)" in lines["web1"]
    assert not [finding for finding in facts["mail1"]["findings"] if finding["facet"] == "safe_browsing"]
    (asked,) = task_results(audit_run, "Ask Google Safe Browsing about them on the controller")  # once, not per host
    assert asked["requests"] == 1 and asked["checked"] is True
    # The key reaches the stand-in (it answers nothing without it) and nothing the run printed or the report holds.
    report = Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent
    report = report.parent / (report.name + "-hostguard-report")
    for text in (json.dumps(audit_run), (report / "report.json").read_text(), (report / "index.html").read_text()):
        assert SAFE_BROWSING_KEY not in text
    # The fleet report's safe browsing column: red for web1, green for mail1.
    fleet = json.loads((report / "report.json").read_text())
    cells = {entry["host"]: entry["facets"]["safe_browsing"] for entry in fleet["hosts"]}
    assert cells == {"web1": "critical", "mail1": "ok"}
    assert '<th scope="col">safe browsing</th>' in (report / "index.html").read_text()


def test_a_safe_browsing_api_that_does_not_answer_is_a_warning_never_a_clean_site():
    only = {f"audit_{facet}_enabled": False for facet in AUDIT_FACETS if facet != "safe_browsing"}
    # Port 9 of mail1 refuses (test_closed_port_is_refused_not_dropped); no fleet report from this partial audit.
    only.update(audit_report_enabled=False,
                audit_safe_browsing_api="http://%s:9/v4/threatMatches:find" % LAB.hosts["mail1"]["ipv4"])
    run = ansible_playbook_stats(str(PROJECT_DIR / "playbooks" / "audit.yml"), "-e", json.dumps(only))
    assert run["rc"] == 0, run["stats"]
    facts, _lines = audit_results(run["plays"])
    for name, result in facts.items():
        facet = result["safe_browsing"]
        assert facet["status"] == "incomplete" and facet["error"].startswith("could not reach http://"), facet
        assert {url["status"] for url in facet["urls"]} == {"unchecked"}
        (finding,) = result["findings"]
        assert finding["severity"] == "warning" and "could not be checked with Google Safe Browsing" in \
            finding["summary"], finding
    assert SAFE_BROWSING_KEY not in json.dumps(run)
