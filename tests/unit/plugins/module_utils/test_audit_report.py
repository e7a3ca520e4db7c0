"""The audit's result: facets shaped from the modules' results, findings derived, lines rendered, and the result
valid against the schema the role ships (roles/audit/files/hostguard_audit.schema.json).

The facet inputs are what the audit role registers: module results in the shape of each module's RETURN
documentation (the molecule scenario baseline validates the result of a real lab host against the same schema).
"""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path

import jsonschema
import pytest

from ansible_collections.hostguard.hosting.plugins.module_utils.audit_report import (
    FACETS,
    AuditInputError,
    build_result,
    enforcement_records,
    report_lines,
)

SCHEMA = json.loads((Path(__file__).resolve().parents[4] / "roles" / "audit" / "files"
                     / "hostguard_audit.schema.json").read_text())
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
TIME = "2026-12-05T08:00:00Z"
KNOWN_PORTS = {22: {"service": "ssh", "advice": "restrict SSH to the admin networks, or close it if nobody uses it"},
               25: {"service": "smtp", "advice": "keep open for other servers"}}
RECORD = {"backend": "nftables", "digest": "0" * 64, "ruleset_path": "/etc/hostguard/firewall.nft",
          "admin_sources": ["198.51.100.0/24"], "guard": None,
          "services": [{"name": "ssh", "ports": ["22"], "proto": "tcp", "open_to_all": False, "sources": [],
                        "countries": []},
                       {"name": "smtp", "ports": ["25"], "proto": "tcp", "open_to_all": True, "sources": [],
                        "countries": []}]}


def slurped(text):
    return {"changed": False, "content": base64.b64encode(text.encode()).decode(), "source": "/x", "encoding": "base64"}


SKIPPED = {"changed": False, "skipped": True, "skip_reason": "Conditional result was False"}
NO_POLICY = {"changed": False, "recorded": False, "backend": None, "in_force": False, "live": None, "record": {}}
UNREADABLE = {"changed": False, "failed": False, "msg": "file not found: /etc/hostguard/firewall-policy.json"}


def services(firewall=None):
    return {
        "services": {"ssh.service": {"state": "running", "status": "enabled"},
                     "postfix@-.service": {"state": "running", "status": "enabled"},
                     "postfix.service": {"state": "stopped", "status": "enabled"},
                     "cron.service": {"state": "running", "status": "enabled"},
                     "hostguard-firewall.service": {"state": "stopped", "status": "enabled"}},
        "tcp_listen": [{"address": "0.0.0.0", "port": 22}, {"address": "::", "port": 22},
                       {"address": "0.0.0.0", "port": 25}, {"address": "127.0.0.1", "port": 3306},
                       {"address": "0.0.0.0", "port": 8080}],
        "watched": ["ssh.service", "postfix.service", "postfix@-.service"],
        # Ansible hands YAML's integer keys over as strings once templated.
        "known_ports": {str(port): advice for port, advice in KNOWN_PORTS.items()},
        "record_path": "/etc/hostguard/firewall-policy.json",
        "firewall": firewall or NO_POLICY}


DNSBL = {"addresses": ["203.0.113.25"], "result": {"changed": False, "listed": True, "checks": [
    {"address": "203.0.113.25", "zone": "zen.spamhaus.org", "status": "listed", "delist_url": "https://check.spamhaus.org/",
     "codes": [{"code": "127.0.0.2", "class": "listed", "meaning": "SBL: Spamhaus-verified spam source"}], "error": None},
    {"address": "203.0.113.25", "zone": "bl.spamcop.net", "status": "not_listed", "codes": [], "error": None},
    {"address": "203.0.113.25", "zone": "timeout.dnsbl.test", "status": "timeout", "codes": [], "error": "no answer"}],
    "zones": {"zen.spamhaus.org": {"healthy": True}, "timeout.dnsbl.test": {"healthy": False}}}}
SITE = {"name": "site1", "paths": ["/var/www/site1"]}
INTEGRITY = {
    "databases": [{"item": SITE, "stat": {"exists": True, "path": "/var/lib/hostguard/integrity/site1.db"}},
                  {"item": {"name": "site2", "paths": ["/var/www/site2"]}, "stat": {"exists": False}}],
    "checks": [{"item": {"item": SITE}, "database": "/var/lib/hostguard/integrity/site1.db",
                "summary": {"entries": 12, "added": 1, "removed": 1, "modified": 1, "seconds": 0.1},
                "added": [{"path": "/var/www/site1/wp-content/uploads/cache.php"}],
                "removed": [{"path": "/var/www/site1/wp-includes/cron.php"}],
                "modified": [{"path": "/var/www/site1/wp-includes/load.php"}],
                "suspicious": [{"path": "/var/www/site1/wp-content/uploads/cache.php", "rule": "eval_decoded",
                                "line": "<?php @eval(base64_decode($_POST['z']));", "line_number": 1}],
                "cms": [{"cms": "wordpress", "path": "/var/www/site1", "version": "6.4.2"}]}],
    "temp_dir_paths": ["/tmp", "/dev/shm"],
    "temp_dirs": {"changed": False, "files": [
        {"path": "/dev/shm/.sess.php", "kind": "php", "owner": "www-data", "uid": 33,
         "findings": [{"rule": "eval_request", "line": "<?php eval($_POST['x']);", "line_number": 1}]},
        {"path": "/tmp/build.php", "kind": "php", "owner": "customer1", "uid": 2001, "findings": []}]}}
ACCOUNTS = {"unused_days": 180, "result": {"changed": False, "accounts": [
    {"name": "oldssh", "kind": "system", "last_used": None, "reason": "no login for 400 days", "action": "reported"},
    {"name": "tanaka", "kind": "system", "reason": "the lock was undone", "action": "reported", "undone": ["x"]}],
    "locks": [{"name": "tanaka", "kind": "system", "locked_at": "2026-11-02T03:00:00Z", "state": "undone",
               "undone": ["password unlocked in /etc/shadow"], "protected": None},
              {"name": "deploy", "kind": "system", "locked_at": "2026-11-02T03:00:00Z", "state": "undone",
               "undone": ["password unlocked in /etc/shadow"], "protected": "in account_cleanup_keep"},
              {"name": "old2", "kind": "mail", "locked_at": "2026-11-02T03:00:00Z", "state": "in_force",
               "undone": [], "protected": None}]}}
QUEUE = {"alert_count": 100, "result": {"changed": False, "mta": "postfix", "held_directories": [
    "/var/spool/postfix/hostguard-purged-20261125T000000Z-interrupted"], "queue": {
    "count": 220, "by_sender": [{"name": "spammer@site1.example", "count": 200}, {"name": "info@site1.example", "count": 20}],
    "oldest": {"queue_id": "9E1F91A603F", "sender": "spammer@site1.example", "age_seconds": 7200}}}}
ATTACK = {"account": "info@site1.example", "failures": 12, "addresses": ["203.0.113.10", "203.0.113.11"],
          "banned": [], "action": "report", "time": "2026-12-05T07:00:00Z"}
ATTACKS = {"report_path": "/var/lib/hostguard/bruteforce/accounts.jsonl", "keep": 20,
           "file": slurped(json.dumps(ATTACK) + "\n{\"account\": \"cut sho\n")}
UPDATES = {"result": {"changed": False, "security": ["openssl", "libssl3"], "held": [], "lists_age_days": 2,
                      "summary": {"upgrades": 3, "security": 2}, "reboot_required": True,
                      "unattended_upgrades": {"installed": False, "enabled": False, "last_run": None}}}
DISKS = {"result": {"changed": False, "smartctl": True,
                    "summary": {"arrays": 2, "degraded": ["md1"], "rebuilding": [], "failing_disks": ["/dev/sdb"]},
                    "arrays": [{"name": "md0", "healthy": True, "degraded": False, "map": "UU", "failed": []},
                               {"name": "md1", "healthy": False, "degraded": True, "map": "U_", "failed": ["sdb2"]}],
                    "disks": [{"device": "/dev/sda", "passed": True}, {"device": "/dev/sdb", "passed": False}]}}


def record_read(role, text=None):
    """One item of the audit's slurp loop over the roles' records: the record's text, or a missing file."""
    item = {"key": role, "value": "/etc/hostguard/%s.json" % role}
    if text is None:
        return {"item": item, "changed": False, "failed": False, "msg": "file not found: %s" % item["value"]}
    return dict(slurped(text), item=item)


def check_read(role, **returned):
    return dict({"changed": False, "item": {"key": role, "value": {}}}, **returned)


RELAY_EXPECT = {"smtpd_relay_restrictions": "permit_mynetworks permit_sasl_authenticated defer_unauth_destination"}
RECORDS = {"results": [
    record_read("mail_relay", json.dumps({"role": "mail_relay", "checks": {"mail_settings": {"postfix": RELAY_EXPECT}}})),
    record_read("bruteforce", json.dumps({"role": "bruteforce", "checks": {"fail2ban": {"jails": {"sshd": "journal"}}}})),
    record_read("password_policy", json.dumps({"role": "password_policy",
                                               "checks": {"pwquality": {"expected": {"minlen": 8}}}})),
    record_read("mail_submission", "{\"role\": \"mail_relay\", \"checks\": {}}"),
    record_read("firewall_never_ran")]}
ENFORCEMENT = {
    "records": enforcement_records(RECORDS),
    "mail_settings": {"results": [check_read("mail_relay", not_running=[], differences=[
        {"setting": "smtp/inet/smtpd_relay_restrictions", "message": "smtp/inet/smtpd_relay_restrictions is permit "
         "(master.cf smtp/inet -o), not permit_mynetworks permit_sasl_authenticated defer_unauth_destination"}])]},
    "fail2ban": {"results": [check_read("bruteforce", jails={}, problems=[
        "jail sshd runs without any action (it would ban nobody)"])]},
    "pwquality": {"results": [check_read("password_policy", problems=[])]},
}
HELD_EVENT = {"time": "2026-12-06T04:10:02+00:00", "host": "web1", "kind": "mail_rate", "key": "uid:2001",
              "severity": "critical", "summary": "account site1 (uid 2001), script contact.php, sent 201 messages",
              "runbook": "spam-outbreak.md", "uid": 2001, "account": "site1", "script": "contact.php", "count": 201,
              "action": {"kind": "hold", "uid": 2001, "at": "2026-12-06T04:10:05+00:00",
                         "done": "mail from uid 2001 (site1) is held", "undo": "ansible-playbook "
                         "hostguard.hosting.release_mail -e release_mail_hosts=web1 -e release_mail_uid=2001"}}
WATCH = {"days": 7, "unit": {"name": "hostguard-watch.service", "state": "running", "status": "enabled"},
         "result": {"changed": False, "path": "/var/lib/hostguard/watch/events.jsonl", "present": True,
                    "events": [dict(HELD_EVENT, count=150, action=None, time="2026-12-06T04:09:40+00:00"), HELD_EVENT],
                    "counts": {"mail_rate": 2}, "malformed": 0, "truncated": False}}
CMS_RELEASES = {"as_of": "2026-11-30", "cms": {"wordpress": {"latest": "6.9", "branches": {"6.9": "6.9", "6.4": "6.4.7"}}},
                "plugins": {"contact-form-7": "6.1.4"}, "themes": {}}
CMS = {"today": "2026-12-05",
       "releases": {"changed": False, "releases": CMS_RELEASES,
                    "source": {"pinned": None, "online": ["wordpress"], "errors": [], "unlisted": []}},
       "result": {"changed": False, "errors": [{"path": "/var/www/gone", "reason": "/var/www/gone: not found"}],
                  "installs": [
                      {"cms": "wordpress", "path": "/var/www/site1", "docroot": "/var/www/site1", "version": "6.4.3",
                       "version_file": "/var/www/site1/wp-includes/version.php",
                       "plugins": [{"slug": "contact-form-7", "name": "Contact Form 7", "version": "5.1",
                                    "path": "/var/www/site1/wp-content/plugins/contact-form-7/wp-contact-form-7.php"}],
                       "themes": []},
                      {"cms": "wordpress", "path": "/var/www/site2", "docroot": "/var/www/site2", "version": "4.9.8",
                       "version_file": "/var/www/site2/wp-includes/version.php", "plugins": [], "themes": []},
                      {"cms": "wordpress", "path": "/var/www/site3", "docroot": "/var/www/site3", "version": "6.9",
                       "version_file": "/var/www/site3/wp-includes/version.php", "plugins": [], "themes": []}]}}
FACETS_INPUT = {"services": services(), "enforcement": ENFORCEMENT, "dnsbl": DNSBL, "integrity": INTEGRITY, "accounts": ACCOUNTS,
                "mail_queue": QUEUE, "attacks": ATTACKS, "updates": UPDATES, "cms": CMS, "disks": DISKS, "watch": WATCH}

# What logins_info and mail_senders_info return (their RETURN documentation): seeds 002 and 003, a mailbox used from
# Moldova and a contact form pumping mail abroad.
MD_PLACE = {"account": "mbox1", "service": "imap", "place": "MD", "country": "MD", "network": "203.0.113.0/24",
            "count": 2, "first": "2026-12-06T10:00:00Z", "last": "2026-12-06T12:00:00Z",
            "addresses": ["203.0.113.10", "203.0.113.12"],
            "unusual": "a new place for the account (it logged in from JP before)"}
JP_PLACE = dict(MD_PLACE, place="JP", country="JP", network="198.18.0.0/24", count=40, addresses=["198.18.0.10"],
                first="2026-11-30T08:00:00Z", unusual=None)
LOGINS = {"days": 7, "result": {"changed": False, "since": "2026-11-28T08:00:00Z", "country_data": True,
                                "expected_countries": [], "logins": 42, "untrusted_lines": 0,
                                "accounts": [{"account": "mbox1", "logins": 42, "usual": ["JP"],
                                              "places": [JP_PLACE, MD_PLACE]}],
                                "unusual": [MD_PLACE]}}
SPAMMER = {"source": "uid:2001", "kind": "uid", "messages": 230, "first": "2026-12-06T01:00:00Z",
           "last": "2026-12-06T01:20:00Z", "peak_hour": {"start": "2026-12-06T01:00:00Z", "messages": 230},
           "top_recipient_domains": {"victims.example": 200, "mail.example.ru": 30},
           "scripts": ["contact.php"], "script": "contact.php", "uid": 2001, "account": "site1", "sasl_user": None,
           "cwd": None, "command": None}
MAILBOX = dict(SPAMMER, source="sasl:info@site1.example", kind="sasl", messages=12, uid=None, account=None,
               sasl_user="info@site1.example", scripts=[], script=None,
               peak_hour={"start": "2026-12-05T09:00:00Z", "messages": 3}, top_recipient_domains={"example.org": 12})
SENDERS = {"days": 7, "per_hour": 200, "result": {"changed": False, "mta": "postfix", "since": "2026-11-28T08:00:00Z",
                                                  "messages": 242, "sources": 2, "senders": [SPAMMER, MAILBOX]}}
FACETS_INPUT.update(logins=LOGINS, senders=SENDERS)

# What the audit's safe_browsing task file keeps for web1: its sites' URLs and safe_browsing_info's one answer for the
# play (which also names mail1's webmail, not web1's to report).
SB_API = "https://safebrowsing.googleapis.com/v4/threatMatches:find"
SB_MALWARE = {"threat_type": "MALWARE", "platform_type": "ANY_PLATFORM", "threat_entry_type": "URL",
              "cache_duration": "300s"}
SB_TARGETS = [{"site": "site1", "url": "http://site1.example/"}, {"site": "site1", "url": "https://site1.example/"},
              {"site": "site2", "url": "http://site2.example/"}, {"site": "site2", "url": "https://site2.example/"},
              {"site": None, "url": "https://shop.example/cart"}]
SB_ANSWER = {"changed": False, "checked": True, "error": None, "requests": 1, "api": SB_API, "unattributed": [],
             "urls": [{"url": "http://site1.example/", "status": "listed", "matches": [SB_MALWARE]},
                      {"url": "https://site1.example/", "status": "listed", "matches": [SB_MALWARE]},
                      {"url": "http://site2.example/", "status": "clean", "matches": []},
                      {"url": "https://site2.example/", "status": "clean", "matches": []},
                      {"url": "https://shop.example/cart", "status": "clean", "matches": []},
                      {"url": "http://webmail.example/", "status": "listed", "matches": [SB_MALWARE]}],
             "invocation": {"module_args": {"api_key": "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER"}}}
SAFE_BROWSING = {"targets": SB_TARGETS, "result": SB_ANSWER, "key_given": True, "api": SB_API}
FACETS_INPUT.update(safe_browsing=SAFE_BROWSING)


def result(facets=None):
    return build_result(copy.deepcopy(FACETS_INPUT if facets is None else facets), "web1", TIME, "Debian 12.8")


def assert_valid(document):
    errors = sorted(VALIDATOR.iter_errors(json.loads(json.dumps(document))), key=str)
    assert not errors, [f"{list(error.path)}: {error.message}" for error in errors]


def test_a_result_with_every_facet_is_valid_against_the_schema():
    document = result()
    assert_valid(document)
    assert (document["schema_version"], document["host"], document["time"]) == (3, "web1", TIME)
    assert document["facets"] == list(FACETS)


def test_a_result_with_no_facet_is_valid_and_says_every_facet_is_null():
    document = result({})
    assert_valid(document)
    assert [document[name] for name in FACETS] == [None] * len(FACETS)
    assert document["findings"] == [] and document["summary"]["worst"] == "ok"


@pytest.mark.parametrize("broken", [
    lambda doc: doc.pop("findings"),
    lambda doc: doc["findings"][0].update(severity="urgent"),
    lambda doc: doc["findings"][0].pop("remedy"),
    lambda doc: doc.update(schema_version=1),
    lambda doc: doc["findings"][0].update(status="closed"),
    lambda doc: doc["findings"][0].update(response={"action": "quarantined", "at": None, "record": None,
                                                    "evidence": None, "undo": None}),
    lambda doc: doc["findings"][0].pop("status"),
    lambda doc: doc["summary"].pop("closed"),
    lambda doc: doc.update(time="yesterday"),
])
def test_the_schema_refuses_a_result_that_breaks_the_contract(broken):
    document = json.loads(json.dumps(result()))
    broken(document)
    assert list(VALIDATOR.iter_errors(document))


def test_findings_come_most_severe_first_each_naming_its_facet_evidence_and_remedy():
    findings = result()["findings"]
    severities = [finding["severity"] for finding in findings]
    assert severities == sorted(severities, key=["critical", "warning", "info"].index)
    by_summary = {finding["summary"]: finding for finding in findings}
    listed = by_summary["203.0.113.25 is listed on zen.spamhaus.org"]
    assert (listed["severity"], listed["remedy"]) == ("critical", "docs/runbooks/blocklisted-ip.md")
    assert listed["evidence"]["meaning"] == "SBL: Spamhaus-verified spam source"
    planted = by_summary["/var/www/site1/wp-content/uploads/cache.php looks planted (eval_decoded)"]
    assert (planted["severity"], planted["remedy"]) == ("critical", "docs/runbooks/planted-files.md")
    assert by_summary["the lock of system account tanaka is not in force: password unlocked in /etc/shadow"][
        "remedy"] == "roles/account_cleanup"
    assert by_summary["220 messages in the mail queue; the busiest sender: spammer@site1.example (200)"][
        "severity"] == "critical"
    assert by_summary["software RAID md1 is degraded (U_)"]["severity"] == "critical"
    assert by_summary["2 security updates not installed"]["evidence"]["packages"] == ["openssl", "libssl3"]
    attacked = by_summary["account info@site1.example attacked from 2 addresses (12 failed logins)"]
    assert attacked["remedy"] == "docs/runbooks/leaked-password.md"
    # A PHP file in /tmp no rule matched is worth a look, not an alarm.
    assert by_summary["php file /tmp/build.php dropped in a temporary directory by customer1"]["severity"] == "warning"
    assert {finding["facet"] for finding in findings} == set(FACETS)
    summary = result()["summary"]
    assert summary["worst"] == "critical"
    assert sum(summary[key] for key in ("critical", "warning", "info", "closed")) == len(findings)


def test_without_a_policy_in_force_the_exposed_ports_get_the_plain_advice():
    services_facet = result()["services"]
    assert services_facet["running"] == ["postfix", "ssh"]
    assert services_facet["exposed_ports"] == [22, 25, 8080]
    assert services_facet["firewall"] == {"recorded": False, "backend": None, "in_force": False}
    assert [(port["port"], port["firewall"]) for port in services_facet["exposed"]] == [(22, "none"), (25, "none")]


def test_a_recorded_policy_counts_only_when_the_live_rules_are_the_recorded_ones():
    policy = {"changed": False, "recorded": True, "backend": "nftables", "in_force": True, "live": "0" * 64,
              "record": RECORD}
    live = result(dict(FACETS_INPUT, services=services(policy)))
    assert live["services"]["firewall"] == {"recorded": True, "backend": "nftables", "in_force": True}
    assert [(port["port"], port["firewall"]) for port in live["services"]["exposed"]] == [(22, "restricted"), (25, "open")]
    assert "listening on every address: port 22 ssh the firewall lets in only 198.51.100.0/24" in report_lines(live)
    stale = result(dict(FACETS_INPUT, services=services(dict(policy, in_force=False, live=None))))
    assert stale["services"]["firewall"]["in_force"] is False
    assert stale["findings"][0]["summary"].startswith("the firewall policy recorded in /etc/hostguard/firewall-policy.json"
                                                      " is not in force")
    assert_valid(stale)


def test_the_attack_report_keeps_whole_lines_only_and_the_latest_ones():
    assert result()["attacks"]["accounts"] == [ATTACK]
    lines = "".join(json.dumps(dict(ATTACK, account=f"user{number}")) + "\n" for number in range(30))
    attacks = result(dict(FACETS_INPUT, attacks=dict(ATTACKS, file=slurped(lines))))["attacks"]["accounts"]
    assert [attack["account"] for attack in attacks] == [f"user{number}" for number in range(10, 30)]
    assert result(dict(FACETS_INPUT, attacks=dict(ATTACKS, file=UNREADABLE)))["attacks"]["accounts"] == []


def test_the_lines_say_what_the_audit_always_said():
    lines = report_lines(result())
    assert lines[0] == "running: postfix, ssh"
    assert "blocklist: 203.0.113.25 listed zen.spamhaus.org" in lines
    assert "blocklist: 203.0.113.25 timeout timeout.dnsbl.test" in lines
    assert "looks planted: /var/www/site1/wp-content/uploads/cache.php eval_decoded" in lines
    assert ("dropped in a temporary directory (path kind owner rules): /dev/shm/.sess.php php www-data eval_request"
            in lines)
    assert "changed since the baseline: /var/www/site1/wp-includes/load.php" in lines
    assert ("mail queue: 220 messages (the oldest queued 2.0 h ago); busiest senders: spammer@site1.example 200, "
            "info@site1.example 20") in lines
    assert ("purged mail not deleted yet (mail_queue state=cleaned deletes it): "
            "/var/spool/postfix/hostguard-purged-20261125T000000Z-interrupted") in lines
    assert "updates: 3 pending, 2 of them security updates: openssl, libssl3 (package lists 2 days old)" in lines
    assert "unattended-upgrades is not on: security updates wait for someone to install them" in lines
    assert "a reboot is pending (/run/reboot-required)" in lines
    assert "software RAID not healthy (array, members up, failed): md1 U_ sdb2" in lines
    assert "disk failing its SMART health check: /dev/sdb" in lines
    assert "unused or leaver account: system oldssh no login for 400 days" in lines
    # An account whose lock was undone is told as such, not as unused; a protected account's lock is left alone.
    assert not [line for line in lines if "unused or leaver account: system tanaka" in line]
    assert "lock not in force: system tanaka (locked 2026-11-02T03:00:00Z): password unlocked in /etc/shadow" in lines
    assert not [line for line in lines if "deploy" in line]
    assert "no integrity baseline yet (playbooks/integrity_baseline.yml): site2" in lines
    assert ("account attacked from many addresses: info@site1.example at 2026-12-05T07:00:00Z, 12 failed logins from "
            "203.0.113.10, 203.0.113.11 (banned: none)") in lines
    summary = result()["summary"]
    counts = (summary["critical"], summary["warning"], summary["info"])
    assert lines[-1] == "findings: %d critical, %d warning, %d info; %d closed by the response" % (
        counts + (summary["closed"],))


def test_a_host_without_an_mta_has_no_queue_and_an_empty_queue_is_said_once():
    no_mta = result(dict(FACETS_INPUT, mail_queue={"alert_count": 100, "result": SKIPPED}))
    assert no_mta["mail_queue"]["queue"] is None
    assert not [line for line in report_lines(no_mta) if line.startswith("mail queue")]
    empty = dict(QUEUE["result"], held_directories=[], queue={"count": 0, "by_sender": [], "oldest": None})
    lines = report_lines(result(dict(FACETS_INPUT, mail_queue={"alert_count": 100, "result": empty})))
    assert "mail queue: 0 messages" in lines
    assert_valid(no_mta)


def test_an_unknown_facet_is_refused_naming_it():
    with pytest.raises(AuditInputError, match="unknown audit facets: webcam"):
        build_result({"webcam": {}}, "web1", TIME)


def test_the_records_the_roles_left_are_read_and_one_that_is_not_the_roles_is_named():
    records = enforcement_records(RECORDS)
    assert sorted(records) == ["bruteforce", "mail_relay", "mail_submission", "password_policy"]
    assert records["mail_relay"] == {"path": "/etc/hostguard/mail_relay.json",
                                     "checks": {"mail_settings": {"postfix": RELAY_EXPECT}}}
    assert records["mail_submission"] == {"path": "/etc/hostguard/mail_submission.json",
                                          "error": "/etc/hostguard/mail_submission.json is not the mail_submission "
                                                   "role's record"}


def test_each_role_configured_but_not_in_force_is_a_critical_finding_naming_what_is_not():
    document = result()
    roles = {role["role"]: role for role in document["enforcement"]["roles"]}
    assert (roles["password_policy"]["in_force"], roles["password_policy"]["problems"]) == (True, [])
    assert roles["bruteforce"]["problems"] == ["jail sshd runs without any action (it would ban nobody)"]
    by_role = {finding["evidence"]["role"]: finding for finding in document["findings"]
               if finding["facet"] == "enforcement"}
    assert sorted(by_role) == ["bruteforce", "mail_relay", "mail_submission"]
    relay = by_role["mail_relay"]
    assert (relay["severity"], relay["remedy"]) == ("critical", "roles/mail_relay")
    assert relay["summary"].startswith("mail_relay is configured but not in force: smtp/inet/smtpd_relay_restrictions "
                                       "is permit (master.cf smtp/inet -o)")
    assert ("not in force (run the role again): bruteforce: jail sshd runs without any action (it would ban nobody)"
            in report_lines(document))


def test_a_stopped_daemon_and_a_check_that_failed_are_named():
    facets = dict(FACETS_INPUT, enforcement=dict(
        ENFORCEMENT, mail_settings={"results": [check_read("mail_relay", not_running=["postfix"], differences=[])]},
        pwquality={"results": [check_read("password_policy", failed=False, failed_when_result=False,
                                          msg="libpwquality: cannot load")]}))
    roles = {role["role"]: role for role in result(facets)["enforcement"]["roles"]}
    assert roles["mail_relay"]["problems"] == ["postfix does not run"]
    assert roles["password_policy"]["problems"] == ["the pwquality check failed: libpwquality: cannot load"]


def test_a_host_no_hardening_role_ran_on_has_nothing_to_prove():
    facets = dict(FACETS_INPUT, enforcement={"records": {}, "mail_settings": SKIPPED, "fail2ban": SKIPPED,
                                             "pwquality": SKIPPED})
    document = result(facets)
    assert document["enforcement"] == {"roles": []}
    assert not [finding for finding in document["findings"] if finding["facet"] == "enforcement"]


def test_the_watch_facet_names_the_latest_event_of_each_source_and_what_was_contained():
    document = result()
    watch = [finding for finding in document["findings"] if finding["facet"] == "watch"]
    assert len(watch) == 1
    assert watch[0]["severity"] == "critical" and watch[0]["evidence"]["count"] == 201
    assert watch[0]["summary"] == ("watch saw at 2026-12-06T04:10:02+00:00: account site1 (uid 2001), script "
                                   "contact.php, sent 201 messages; contained: mail from uid 2001 (site1) is held "
                                   "(not read back from the host)")
    assert watch[0]["status"] == "open"  # an audit that did not read the host back trusts no event
    assert watch[0]["remedy"] == "docs/runbooks/spam-outbreak.md"
    assert watch[0]["summary"] in report_lines(document)


# --- the watch's containment read back from the host --------------------------------------------------------------

WATCH_MANIFEST = "/var/lib/hostguard/quarantine/20261206T041500.000000Z-1.json"
QUARANTINE_EVENT = {"time": "2026-12-06T04:15:00+00:00", "host": "web1", "kind": "file_planted",
                    "key": "/var/www/site1/x.php", "severity": "critical", "summary": "a PHP file appeared",
                    "runbook": "planted-files.md", "path": "/var/www/site1/x.php",
                    "action": {"kind": "quarantine", "path": "/var/www/site1/x.php", "manifest": WATCH_MANIFEST,
                               "at": "2026-12-06T04:15:02+00:00", "done": "/var/www/site1/x.php is quarantined",
                               "undo": "ansible-playbook hostguard.hosting.restore -e ..."}}
LOGIN_EVENT = {"time": "2026-12-06T04:20:00+00:00", "host": "web1", "kind": "login_new_country", "key": "mbox1",
               "severity": "critical", "summary": "mbox1 logged in over imap from MD", "runbook": "leaked-password.md",
               "account": "mbox1", "action": {"kind": "lock", "account": "mbox1", "account_kind": "system",
                                              "at": "2026-12-06T04:20:01+00:00", "done": "system account mbox1 is locked",
                                              "undo": "ansible web1 -m hostguard.hosting.account_cleanup -a "
                                                      "'mode=unlock unlock=mbox1'"}}


def live(held=(2001,), quarantine_lock="in_force", lock_state="in_force", password_changed_at=None):
    changes = {"results": [slurped(json.dumps({"account": "mbox1", "changed_at": password_changed_at,
                                               "sessions_ended": 1,
                                               "record": "/var/lib/hostguard/password_changes/mbox1.json"}))]
               if password_changed_at else []}
    return {"events": {"changed": False, "held": {"uids": list(held), "sasl_users": []}},
            "quarantine": {"changed": False, "quarantined": [
                {"path": "/var/www/site1/x.php", "manifest": WATCH_MANIFEST, "quarantined_at": "20261206T041502Z",
                 "lock": quarantine_lock, "lock_problem": None if quarantine_lock == "in_force" else "mode 0644"}]},
            "locks": {"changed": False, "locks": [{"name": "mbox1", "kind": "system", "locked_at": "2026-12-06T04:20:01Z",
                                                   "state": lock_state, "undone": [], "protected": None}]},
            "password_changes": changes}


def watch_with(live_state):
    watched = copy.deepcopy(WATCH)
    watched["result"]["events"] += [QUARANTINE_EVENT, LOGIN_EVENT]
    watched["live"] = live_state
    document = result(dict(FACETS_INPUT, watch=watched))
    assert_valid(document)
    return {finding["evidence"]["kind"]: finding for finding in document["findings"] if finding["facet"] == "watch"}


def test_a_containment_in_force_on_the_host_closes_the_finding_with_its_times():
    findings = watch_with(live())
    assert {kind: finding["status"] for kind, finding in findings.items()} == {
        "mail_rate": "closed", "file_planted": "closed", "login_new_country": "closed"}
    held = findings["mail_rate"]["response"]
    # noticed at the source's first event (150 messages), contained when the later one held it
    assert (held["action"], held["noticed_at"], held["contained_at"], held["seconds"]) == (
        "held", "2026-12-06T04:09:40+00:00", "2026-12-06T04:10:05+00:00", 25)
    assert held["undo"].endswith("-e release_mail_uid=2001")
    quarantined = findings["file_planted"]["response"]
    assert (quarantined["action"], quarantined["record"], quarantined["seconds"]) == ("quarantined", WATCH_MANIFEST, 2)
    assert findings["login_new_country"]["response"]["action"] == "locked"


def test_a_containment_undone_on_the_host_opens_the_finding_again():
    findings = watch_with(live(held=(), quarantine_lock="undone", lock_state="undone"))
    assert {kind: finding["status"] for kind, finding in findings.items()} == {
        "mail_rate": "open", "file_planted": "open", "login_new_country": "open"}
    assert findings["mail_rate"]["summary"].endswith(
        "contained at 2026-12-06T04:10:05+00:00, but no longer: uid 2001 is no longer held (released)")
    assert "the quarantine of /var/www/site1/x.php is undone: mode 0644" in findings["file_planted"]["summary"]
    assert "mbox1 is no longer locked and its password was not changed since" in findings["login_new_country"]["summary"]


def test_an_unlocked_mailbox_whose_password_was_changed_after_the_login_stays_closed():
    findings = watch_with(live(lock_state="gone", password_changed_at="2026-12-06T04:25:00+00:00"))
    login = findings["login_new_country"]
    assert login["status"] == "closed"
    assert (login["response"]["action"], login["response"]["at"], login["response"]["seconds"]) == (
        "password_changed", "2026-12-06T04:25:00+00:00", 1)  # contained by the lock, a second after the login
    # a password changed before the login from abroad is the one the attacker used: it closes nothing
    before = watch_with(live(lock_state="gone", password_changed_at="2026-12-06T04:00:00+00:00"))
    assert before["login_new_country"]["status"] == "open"


def test_a_host_without_the_watch_is_said_to_be_unwatched():
    unwatched = {"days": 7, "result": {"changed": False, "path": "/var/lib/hostguard/watch/events.jsonl",
                                       "present": False, "events": [], "counts": {}, "malformed": 0}}
    document = result(dict(FACETS_INPUT, watch=unwatched))
    assert_valid(document)
    watch = [finding for finding in document["findings"] if finding["facet"] == "watch"]
    assert [(f["severity"], f["remedy"]) for f in watch] == [("info", "roles/watch")]
    assert "nothing watches this host between audits" in watch[0]["summary"]


def test_a_watch_installed_but_not_running_is_critical_and_its_events_still_count():
    stopped = dict(WATCH, unit={"name": "hostguard-watch.service", "state": "stopped", "status": "enabled"})
    document = result(dict(FACETS_INPUT, watch=stopped))
    assert_valid(document)
    assert (document["watch"]["installed"], document["watch"]["running"]) == (True, False)
    watch = [finding for finding in document["findings"] if finding["facet"] == "watch"]
    assert [f["severity"] for f in watch] == ["critical", "critical"]
    assert watch[0]["summary"].startswith("hostguard-watch is installed but not running")
    assert "contained: mail from uid 2001" in watch[1]["summary"]


# --- what the response did: quarantined, locked, purged -------------------------------------------

PLANTED = "/var/www/site1/wp-content/uploads/cache.php"
MANIFEST = "/var/lib/hostguard/quarantine/0c6f9e1d2b3a4c5d6e7f8091a2b3c4d5.json"
RESTORE = ("ansible-playbook hostguard.hosting.restore -l HOST -e '{\"quarantine_docroots\": [\"/var/www/site1\"], "
           "\"quarantine_restore_paths\": [\"%s\"]}'" % PLANTED)


def quarantined(path=PLANTED, lock="in_force", manifest=MANIFEST, docroot="/var/www/site1"):
    """One item of quarantine_info's ``quarantined``."""
    return {"path": path, "docroot": docroot, "quarantined_at": "20261206T101500.123456Z", "manifest": manifest,
            "evidence": "/var/lib/hostguard/evidence/x.tar.gz", "immutable": True, "entries": 1, "type": "file",
            "lock": lock, "lock_problem": None if lock == "in_force" else "owner 2001:2001, mode 0644 now (locked: 0:0 0000)",
            "restore": RESTORE}


def with_quarantine(*items):
    info = {"changed": False, "manifest_dir": "/var/lib/hostguard/quarantine", "quarantined": list(items),
            "unreadable": []}
    return result(dict(FACETS_INPUT, integrity=dict(INTEGRITY, quarantine=info)))


def by_summary(document):
    return {finding["summary"]: finding for finding in document["findings"]}


def test_without_a_response_every_finding_is_open():
    document = result(dict(FACETS_INPUT, accounts=dict(ACCOUNTS, result=dict(ACCOUNTS["result"], locks=[]))))
    assert {(finding["status"], finding["response"]) for finding in document["findings"]} == {("open", None)}
    assert document["summary"]["closed"] == 0
    assert document["integrity"]["quarantined"] == []


def test_a_quarantined_planted_file_is_closed_with_its_manifest_and_how_to_restore_it():
    before, after = result(), with_quarantine(quarantined())
    assert_valid(after)
    planted = [finding for finding in after["findings"] if finding["evidence"].get("path") == PLANTED]
    # Both the rule's hit and the addition since the baseline are closed, each saying so, none left open.
    assert [(finding["severity"], finding["status"]) for finding in planted] == [
        ("critical", "closed"), ("info", "closed")]
    assert planted[0]["summary"] == ("%s looks planted (eval_decoded); quarantined 20261206T101500.123456Z "
                                     "(manifest %s)" % (PLANTED, MANIFEST))
    assert planted[0]["response"] == {"action": "quarantined", "at": "20261206T101500.123456Z", "record": MANIFEST,
                                      "evidence": "/var/lib/hostguard/evidence/x.tar.gz", "undo": RESTORE}
    # The other critical findings are still open; the closed ones are counted apart and listed last.
    assert after["summary"]["worst"] == "critical"
    assert after["summary"]["critical"] == before["summary"]["critical"] - 1
    assert after["summary"]["info"] == before["summary"]["info"] - 1
    assert after["summary"]["closed"] == before["summary"]["closed"] + 2
    statuses = [finding["status"] for finding in after["findings"]]
    assert statuses == sorted(statuses, key=["open", "closed"].index)
    lines = report_lines(after)
    assert not [line for line in lines if line.startswith("looks planted: %s" % PLANTED)]
    assert "quarantined: %s 20261206T101500.123456Z (manifest %s); restore: %s" % (PLANTED, MANIFEST, RESTORE) in lines


def test_a_file_inside_a_quarantined_docroot_is_closed_and_a_sibling_name_is_not():
    docroot = quarantined(path="/var/www/site1/wp-content", manifest="/q/docroot.json")
    sibling = quarantined(path="/var/www/site1/wp-content/uploads/cache", manifest="/q/sibling.json")
    findings = by_summary(with_quarantine(docroot))
    assert findings["%s looks planted (eval_decoded); quarantined 20261206T101500.123456Z (manifest /q/docroot.json)"
                    % PLANTED]["status"] == "closed"
    # /var/www/site1/wp-content/uploads/cache is not a directory above cache.php: its quarantine covers nothing here,
    # and is named as a quarantine of its own.
    findings = by_summary(with_quarantine(sibling))
    assert findings["%s looks planted (eval_decoded)" % PLANTED]["status"] == "open"
    own = findings["/var/www/site1/wp-content/uploads/cache is quarantined 20261206T101500.123456Z "
                   "(manifest /q/sibling.json)"]
    assert (own["severity"], own["status"], own["response"]["record"]) == ("info", "closed", "/q/sibling.json")


@pytest.mark.parametrize("lock, severity, meaning", [
    ("undone", "critical", "its owner or mode was changed back"),
    ("replaced", "critical", "another file is at the path now"),
    ("gone", "warning", "nothing is at the path now"),
    ("unknown", "warning", "it cannot be checked"),
])
def test_a_quarantine_not_in_force_closes_nothing_and_is_a_finding_of_its_own(lock, severity, meaning):
    document = with_quarantine(quarantined(lock=lock))
    assert_valid(document)
    findings = by_summary(document)
    assert findings["%s looks planted (eval_decoded)" % PLANTED]["status"] == "open"
    (problem,) = [finding for finding in document["findings"] if finding["summary"].startswith("the quarantine of")]
    assert problem["summary"].startswith("the quarantine of %s is not in force: %s (" % (PLANTED, meaning))
    assert (problem["severity"], problem["status"]) == (severity, "open")
    assert MANIFEST in problem["remedy"]
    assert "quarantine not in force: %s %s: " % (PLANTED, lock) + quarantined(lock=lock)["lock_problem"] in \
        report_lines(document)


def test_a_locked_unused_account_is_closed_as_locked_and_every_lock_in_force_is_named():
    locks = ACCOUNTS["result"]["locks"] + [{"name": "oldssh", "kind": "system", "locked_at": "2026-12-01T03:00:00Z",
                                           "state": "in_force", "undone": [], "protected": None}]
    document = result(dict(FACETS_INPUT, accounts=dict(ACCOUNTS, result=dict(ACCOUNTS["result"], locks=locks))))
    assert_valid(document)
    assert [lock["name"] for lock in document["accounts"]["locked"]] == ["old2", "oldssh"]
    findings = by_summary(document)
    oldssh = findings["system account oldssh: no login for 400 days; locked 2026-12-01T03:00:00Z"]
    assert (oldssh["severity"], oldssh["status"], oldssh["response"]["action"]) == ("warning", "closed", "locked")
    assert oldssh["response"]["undo"] == "ansible HOST -b -m hostguard.hosting.account_cleanup -a 'mode=unlock unlock=oldssh'"
    # A lock in force of an account no longer flagged is named too; an undone one stays an open critical finding.
    assert findings["mail account old2 is locked 2026-11-02T03:00:00Z"]["status"] == "closed"
    assert findings["the lock of system account tanaka is not in force: password unlocked in /etc/shadow"][
        "status"] == "open"
    lines = report_lines(document)
    assert "locked account: system oldssh (locked 2026-12-01T03:00:00Z)" in lines
    assert not [line for line in lines if line.startswith("unused or leaver account: system oldssh")]


def test_each_purge_is_named_by_its_evidence_archive_as_a_closed_finding():
    archive = "/var/lib/hostguard/evidence/mail-queue-20261206T101500Z.tar.gz"
    purges = [{"path": archive, "purged_at": "2026-12-06T10:15:00Z", "size": 48213, "sha256": "5f" * 32,
               "messages": 200, "by_sender": [{"name": "wordpress@site1.example", "count": 200}], "error": None},
              {"path": "/var/lib/hostguard/evidence/mail-queue-20261101T000000Z.tar.gz",
               "purged_at": "2026-11-01T00:00:00Z", "size": 10, "sha256": "00" * 32, "messages": None,
               "by_sender": [], "error": "ReadError: not a gzip file"}]
    queue = dict(QUEUE, evidence_dir="/var/lib/hostguard/evidence", result=dict(QUEUE["result"], evidence=purges))
    document = result(dict(FACETS_INPUT, mail_queue=queue))
    assert_valid(document)
    assert document["mail_queue"]["purges"] == purges
    assert document["mail_queue"]["evidence_dir"] == "/var/lib/hostguard/evidence"
    findings = by_summary(document)
    purged = findings["mail queue purged 2026-12-06T10:15:00Z: 200 messages kept as evidence in %s (the busiest "
                      "sender: wordpress@site1.example, 200)" % archive]
    assert (purged["status"], purged["response"]) == ("closed", {
        "action": "purged", "at": "2026-12-06T10:15:00Z", "record": archive, "evidence": archive, "undo": None})
    assert ("mail queue purged 2026-11-01T00:00:00Z: evidence archive /var/lib/hostguard/evidence/"
            "mail-queue-20261101T000000Z.tar.gz (unreadable: ReadError: not a gzip file)") in report_lines(document)
    # The queue as it is now is still what it is: the purges close no finding about what is queued today.
    assert findings["220 messages in the mail queue; the busiest sender: spammer@site1.example (200)"][
        "status"] == "open"


def cms_findings(facets):
    return [finding for finding in result(facets)["findings"] if finding["facet"] == "cms"]


def test_each_cms_install_is_judged_and_an_unfixed_one_is_critical():
    findings = cms_findings({"cms": CMS})
    assert [(finding["severity"], finding["summary"]) for finding in findings] == [
        ("critical", "WordPress 6.4.3 at /var/www/site1 misses the security release 6.4.7 of its branch (latest 6.9)"),
        ("critical", "WordPress 4.9.8 at /var/www/site2 gets no security fixes any more (latest 6.9)"),
        ("warning", "1 plugins and themes of /var/www/site1 are older than the directory's: plugin contact-form-7 5.1 "
                    "(latest 6.1.4)"),
        ("warning", "/var/www/gone could not be surveyed for CMS installs: /var/www/gone: not found")]
    assert findings[0]["evidence"]["fixed_in"] == "6.4.7" and "update /var/www/site1 to 6.9" in findings[0]["remedy"]
    document = result({"cms": CMS})
    assert_valid(document)
    assert [install["status"] for install in document["cms"]["installs"]] == ["insecure", "unsupported", "current"]


def test_releases_months_old_and_not_refreshed_are_said_to_be_so():
    facets = copy.deepcopy({"cms": CMS})
    facets["cms"]["releases"]["releases"]["as_of"] = "2025-12-02"
    facets["cms"]["releases"]["source"] = {"pinned": None, "online": [],
                                           "errors": ["wordpress: https://api.wordpress.org: offline"], "unlisted": []}
    [stale] = [finding for finding in cms_findings(facets) if finding["severity"] == "info"]
    assert stale["summary"].startswith("the installs are judged against releases as of 2025-12-02, 368 days old "
                                       "(wordpress: https://api.wordpress.org: offline)")
    facets["cms"]["releases"]["source"]["pinned"] = "/etc/ansible/cms_releases.yml"
    assert not [finding for finding in cms_findings(facets) if finding["severity"] == "info"]


def test_a_login_from_a_country_new_for_the_account_is_a_warning_naming_account_service_address_and_times():
    document = result()
    assert_valid(document)
    (finding,) = [finding for finding in document["findings"] if finding["facet"] == "logins"]
    assert (finding["severity"], finding["remedy"], finding["status"]) == (
        "warning", "docs/runbooks/leaked-password.md", "open")
    assert finding["summary"] == ("mbox1 logged in over IMAP from 203.0.113.10, 203.0.113.12 (MD) 2 time(s), first "
                                  "2026-12-06T10:00:00Z, last 2026-12-06T12:00:00Z: a new place for the account (it "
                                  "logged in from JP before)")
    assert finding["evidence"]["country"] == "MD" and finding["evidence"]["account"] == "mbox1"
    assert ("unusual login: mbox1 imap from 203.0.113.10, 203.0.113.12 (MD) 2 time(s), 2026-12-06T10:00:00Z to "
            "2026-12-06T12:00:00Z: a new place for the account (it logged in from JP before)") in report_lines(document)


def test_a_login_from_outside_the_expected_countries_is_critical_and_one_without_country_data_says_so():
    outside = dict(MD_PLACE, unusual="outside the expected countries (JP)")
    no_country = dict(MD_PLACE, place="network 203.0.113.0/24", country=None)
    logins = copy.deepcopy(LOGINS)
    logins["result"].update(expected_countries=["JP"], unusual=[outside, no_country])
    document = result(dict(FACETS_INPUT, logins=logins))
    assert_valid(document)
    found = [(finding["severity"], "MD)" in finding["summary"], "no country data" in finding["summary"])
             for finding in document["findings"] if finding["facet"] == "logins"]
    assert found == [("critical", True, False), ("warning", False, True)]


def test_a_sender_over_the_watch_s_hourly_limit_is_critical_naming_account_script_count_and_domains():
    document = result()
    (finding,) = [finding for finding in document["findings"] if finding["facet"] == "senders"]
    assert (finding["severity"], finding["remedy"]) == ("critical", "docs/runbooks/spam-outbreak.md")
    assert finding["summary"] == ("account site1 (uid 2001), script contact.php sent 230 messages in the hour from "
                                  "2026-12-06T01:00:00Z (limit 200), 230 in 7 days; top recipient domains: "
                                  "victims.example 200, mail.example.ru 30")
    assert finding["evidence"]["limit"] == 200 and finding["evidence"]["uid"] == 2001
    # the mailbox under the limit is named among the busiest, with no finding
    assert ("busiest senders in 7 days: account site1 (uid 2001), script contact.php 230 (at most 230 in an hour), "
            "mailbox info@site1.example (SMTP AUTH) 12 (at most 3 in an hour)") in report_lines(document)
    at_limit = copy.deepcopy(SENDERS)
    at_limit["per_hour"] = 230
    assert not [f for f in result(dict(FACETS_INPUT, senders=at_limit))["findings"] if f["facet"] == "senders"]


# --- one facet's reading answering another's findings ----------------------------------------------------------------

def listing_event(zone, time="2026-12-06T03:00:00+00:00"):
    return {"time": time, "host": "web1", "kind": "dnsbl_listed", "key": "203.0.113.25 %s" % zone,
            "severity": "critical", "summary": "203.0.113.25 is listed on %s" % zone, "runbook": "blocklisted-ip.md",
            "address": "203.0.113.25", "zone": zone}


def watch_findings_of(document):
    return {finding["evidence"]["key"]: finding for finding in document["findings"] if finding["facet"] == "watch"}


def test_a_listing_the_watch_saw_is_shown_once_while_listed_and_closed_once_the_audit_finds_it_delisted():
    watched = copy.deepcopy(WATCH)
    watched["result"]["events"] = [listing_event("zen.spamhaus.org"), listing_event("bl.spamcop.net"),
                                   listing_event("b.barracudacentral.org")]
    document = result(dict(FACETS_INPUT, watch=watched))
    assert_valid(document)
    assert document["dnsbl"]["zones"] == ["bl.spamcop.net", "timeout.dnsbl.test", "zen.spamhaus.org"]
    findings = watch_findings_of(document)
    still = findings["203.0.113.25 zen.spamhaus.org"]
    # still listed today: the dnsbl facet's critical finding says so; the watch's event is its history
    assert (still["status"], still["severity"]) == ("open", "info")
    assert still["summary"].endswith("; still listed now (the dnsbl finding)")
    assert [f["severity"] for f in document["findings"] if f["facet"] == "dnsbl" and "listed on zen" in f["summary"]] \
        == ["critical"]
    gone = findings["203.0.113.25 bl.spamcop.net"]
    assert (gone["status"], gone["response"]["action"], gone["response"]["at"]) == ("closed", "delisted", TIME)
    assert gone["summary"].endswith("; closed: not listed when this audit asked bl.spamcop.net")
    # a zone this audit did not ask: the watch's event is all there is, open and critical as it was
    unasked = findings["203.0.113.25 b.barracudacentral.org"]
    assert (unasked["status"], unasked["severity"]) == ("open", "critical")
    # without the dnsbl facet nothing is read again
    without_dnsbl = {key: value for key, value in dict(FACETS_INPUT, watch=watched).items() if key != "dnsbl"}
    alone = watch_findings_of(result(without_dnsbl))
    assert {key: (f["status"], f["severity"]) for key, f in alone.items()} == {
        key: ("open", "critical") for key in findings}


def test_a_queue_the_watch_saw_one_sender_fill_is_closed_by_a_later_purge_only():
    archive = "/var/lib/hostguard/evidence/mail-queue-20261206T101500Z.tar.gz"
    event = {"time": "2026-12-06T10:00:00+00:00", "host": "web1", "kind": "mail_queue",
             "key": "sender:spammer@site1.example", "sender": "spammer@site1.example", "severity": "critical",
             "runbook": "spam-outbreak.md",
             "summary": "spammer@site1.example holds 200 of the 220 queued messages (91%)"}
    watched = copy.deepcopy(WATCH)
    watched["result"]["events"] = [event]

    def queue_finding(purged_at, by_sender=({"name": "spammer@site1.example", "count": 200},)):
        purge = {"path": archive, "purged_at": purged_at, "size": 1, "sha256": "5f" * 32, "messages": 200,
                 "by_sender": list(by_sender), "error": None}
        queue = dict(QUEUE, evidence_dir="/var/lib/hostguard/evidence", result=dict(QUEUE["result"], evidence=[purge]))
        document = result(dict(FACETS_INPUT, watch=watched, mail_queue=queue))
        assert_valid(document)
        return watch_findings_of(document)["sender:spammer@site1.example"]

    closed = queue_finding("2026-12-06T10:15:00Z")
    assert (closed["status"], closed["response"]["action"], closed["response"]["record"]) == ("closed", "purged", archive)
    assert closed["summary"].endswith("; closed: purged 2026-12-06T10:15:00Z, kept as evidence in %s" % archive)
    # a purge before the queue filled again purged other mail
    assert queue_finding("2026-12-06T09:00:00Z")["status"] == "open"
    # so did a later purge of another sender's mail
    assert queue_finding("2026-12-06T10:15:00Z", [{"name": "other@site2.example", "count": 50}])["status"] == "open"


def test_a_sender_over_the_limit_is_closed_while_the_watch_holds_its_mail():
    def senders_finding(held):
        watched = dict(copy.deepcopy(WATCH), live=live(held=held))
        document = result(dict(FACETS_INPUT, watch=watched))
        assert_valid(document)
        (finding,) = [finding for finding in document["findings"] if finding["facet"] == "senders"]
        return finding

    held = senders_finding((2001,))
    assert (held["status"], held["response"]["action"]) == ("closed", "held")
    assert held["summary"].endswith("; closed: its mail is held now (hostguard-watch); release_mail.yml lets it go")
    assert senders_finding(())["status"] == "open"  # released: the source may send again
    assert senders_finding((2002,))["status"] == "open"  # another account held


def test_an_unusual_login_is_closed_by_a_lock_in_force_or_a_password_changed_after_it():
    def login_finding(**state):
        watched = dict(copy.deepcopy(WATCH), live=live(**state))
        document = result(dict(FACETS_INPUT, watch=watched))
        assert_valid(document)
        (finding,) = [finding for finding in document["findings"] if finding["facet"] == "logins"]
        return finding

    assert login_finding()["response"]["action"] == "locked"
    changed = login_finding(lock_state="gone", password_changed_at="2026-12-06T12:30:00+00:00")
    assert (changed["status"], changed["response"]["action"], changed["response"]["at"]) == (
        "closed", "password_changed", "2026-12-06T12:30:00+00:00")
    # changed between the first and the last login from abroad: the attacker logged in again with the new one
    assert login_finding(lock_state="gone", password_changed_at="2026-12-06T11:00:00+00:00")["status"] == "open"
    assert login_finding(lock_state="undone")["status"] == "open"


def test_a_listing_the_watch_later_saw_delisted_is_closed_at_that_time_even_where_the_audit_did_not_ask():
    watched = copy.deepcopy(WATCH)
    delisted = dict(listing_event("b.barracudacentral.org", time="2026-12-06T05:00:00+00:00"), kind="dnsbl_delisted",
                    severity="info", summary="203.0.113.25 is no longer listed on b.barracudacentral.org")
    watched["result"]["events"] = [listing_event("b.barracudacentral.org"), delisted]
    document = result(dict(FACETS_INPUT, watch=watched))
    assert_valid(document)
    listed = [finding for finding in document["findings"]
              if finding["facet"] == "watch" and finding["evidence"]["kind"] == "dnsbl_listed"]
    assert [(finding["status"], finding["response"]["action"], finding["response"]["at"]) for finding in listed] == [
        ("closed", "delisted", "2026-12-06T05:00:00+00:00")]
    # listed again after the delisting: open
    watched["result"]["events"].append(listing_event("b.barracudacentral.org", time="2026-12-06T06:00:00+00:00"))
    again = [finding for finding in result(dict(FACETS_INPUT, watch=watched))["findings"]
             if finding["facet"] == "watch" and finding["evidence"]["kind"] == "dnsbl_listed"]
    assert [(finding["status"], finding["severity"]) for finding in again] == [("open", "critical")]


def safe_browsing(facet_input):
    document = result({"safe_browsing": facet_input})
    assert_valid(document)
    return document, [finding for finding in document["findings"] if finding["facet"] == "safe_browsing"]


def test_a_listed_site_is_critical_naming_each_url_threat_and_platform_and_the_runbook():
    document, findings = safe_browsing(SAFE_BROWSING)
    facet = document["safe_browsing"]
    assert (facet["status"], facet["error"]) == ("checked", None)
    # only this host's URLs: mail1's webmail, in the same answer, is not web1's
    assert [(url["site"], url["url"], url["status"]) for url in facet["urls"]] == [
        ("site1", "http://site1.example/", "listed"), ("site1", "https://site1.example/", "listed"),
        ("site2", "http://site2.example/", "clean"), ("site2", "https://site2.example/", "clean"),
        (None, "https://shop.example/cart", "clean")]
    (finding,) = findings
    assert (finding["severity"], finding["status"]) == ("critical", "open")
    assert finding["summary"] == (
        "site site1 is listed by Google Safe Browsing: http://site1.example/ as MALWARE (ANY_PLATFORM); "
        "https://site1.example/ as MALWARE (ANY_PLATFORM); browsers warn its visitors away")
    assert finding["remedy"] == "docs/runbooks/planted-files.md#5-get-the-site-off-googles-warnings"
    assert finding["evidence"]["site"] == "site1" and len(finding["evidence"]["urls"]) == 2
    assert document["summary"]["worst"] == "critical"
    assert "listed by Google Safe Browsing: http://site1.example/ as MALWARE (ANY_PLATFORM)" in report_lines(document)


def test_the_runbook_the_finding_names_has_the_step_it_links_to():
    runbook = Path(__file__).resolve().parents[4] / "docs" / "runbooks" / "planted-files.md"
    assert "\n## 5. Get the site off Google's warnings\n" in runbook.read_text()


def test_an_extra_url_listed_on_its_own_is_named_by_its_url():
    answer = copy.deepcopy(SB_ANSWER)
    answer["urls"][4].update(status="listed", matches=[dict(SB_MALWARE, threat_type="SOCIAL_ENGINEERING")])
    answer["urls"][0].update(status="clean", matches=[])
    answer["urls"][1].update(status="clean", matches=[])
    _document, (finding,) = safe_browsing(dict(SAFE_BROWSING, result=answer))
    assert finding["summary"].startswith("URL https://shop.example/cart is listed by Google Safe Browsing: "
                                         "https://shop.example/cart as SOCIAL_ENGINEERING (ANY_PLATFORM)")


def test_urls_google_did_not_answer_for_are_a_warning_saying_why_and_never_clean():
    answer = copy.deepcopy(SB_ANSWER)
    answer.update(checked=False, error="HTTP 429: the key's quota is exhausted or its rate limit reached")
    for url in answer["urls"][2:]:
        url.update(status="unchecked", matches=[])
    document, findings = safe_browsing(dict(SAFE_BROWSING, result=answer))
    assert document["safe_browsing"]["status"] == "incomplete"
    statuses = [url["status"] for url in document["safe_browsing"]["urls"]]
    assert statuses == ["listed", "listed", "unchecked", "unchecked", "unchecked"]
    assert [(finding["severity"], finding["summary"]) for finding in findings] == [
        ("critical", findings[0]["summary"]),
        ("warning", "3 URLs of the sites could not be checked with Google Safe Browsing: HTTP 429: the key's quota "
                    "is exhausted or its rate limit reached")]
    assert "Google Safe Browsing: 3 URLs not checked: HTTP 429" in " ".join(report_lines(document))


def test_a_url_the_answer_does_not_name_is_unchecked_not_clean():
    answer = copy.deepcopy(SB_ANSWER)
    del answer["urls"][4]
    document, findings = safe_browsing(dict(SAFE_BROWSING, result=answer))
    assert document["safe_browsing"]["urls"][4]["status"] == "unchecked"
    assert findings[-1]["severity"] == "warning"


def test_without_a_key_nothing_is_asked_and_an_info_finding_says_the_sites_were_not_checked():
    skipped = {"changed": False, "skipped": True, "skip_reason": "Conditional result was False"}
    document, findings = safe_browsing(dict(SAFE_BROWSING, result=skipped, key_given=False))
    assert document["safe_browsing"]["status"] == "no_key"
    assert [(finding["severity"], finding["summary"]) for finding in findings] == [
        ("info", "5 URLs of the sites were not checked with Google Safe Browsing: no key given "
                 "(audit_safe_browsing_key)")]
    assert "audit_safe_browsing_key" in findings[0]["remedy"]
    # a key on this host but not on the play's first one: the lookup did not run, and that is not clean either
    document, findings = safe_browsing(dict(SAFE_BROWSING, result=skipped, key_given=True))
    assert document["safe_browsing"]["status"] == "incomplete" and findings[0]["severity"] == "warning"


def test_a_host_whose_sites_have_no_domains_has_nothing_to_check_and_no_finding():
    skipped = {"changed": False, "skipped": True}
    document, findings = safe_browsing({"targets": [], "result": skipped, "key_given": False, "api": SB_API})
    assert document["safe_browsing"] == {"status": "nothing_to_check", "api": SB_API, "error": None, "urls": []}
    assert findings == []
