# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import annotations

import pytest

from ansible_collections.hostguard.hosting.plugins.module_utils import watch_config, watch_service
from ansible_collections.hostguard.hosting.tests.unit.plugins.module_utils.watch_fakes import Clock, read_events, start_service


def write(tmp_path, text):
    path = tmp_path / "watch.yml"
    path.write_text(text)
    return str(path)


def test_check_accepts_a_good_configuration_and_names_the_facets(tmp_path, capsys):
    path = write(tmp_path, "host: mail1\nfacets:\n  mail:\n    enabled: true\n")
    assert watch_service.main(["--check", path]) == 0
    assert capsys.readouterr().out.strip() == f"hostguard-watch: {path} is valid (facets: mail)"


@pytest.mark.parametrize("text, message", [
    ("host: mail1\nalerts:\n  interval: 10\n", "alerts.interval: expected a whole number at least 60, got 10"),
    ("host: mail1\nalerts:\n  webhook_url: ftp://x\n", "alerts.webhook_url: expected an http:// or https:// URL, got 'ftp://x'"),
    ("host: mail1\nalerts:\n  email: root\n", "alerts.email: expected an address like root@example.org, got 'root'"),
    ("host: mail1\nalert:\n  email: a@b\n", "alert: unknown setting (known: alerts, facets, host, state_dir)"),
    ("host: mail1\nfacets:\n  mail:\n    per_hour: ten\n", "facets.mail.per_hour: expected a whole number at least 1, got 'ten'"),
    ("host: mail1\nfacets:\n  spam:\n    enabled: true\n", "facets.spam: unknown facet (known: bans, dnsbl, files, logins, mail, queue)"),
    ("host: mail1\nfacets:\n  mail:\n    enabled: yes please\n", "facets.mail.enabled: expected true or false, got 'yes please'"),
    ("host: 'a b'\n", "host: expected the host's name, got 'a b'"),
    ("host: mail1\n  bad: [\n", "not valid YAML"),
])
def test_check_refuses_naming_the_setting_and_the_value(tmp_path, capsys, text, message):
    path = write(tmp_path, text)
    assert watch_service.main(["--check", path]) == 1
    assert message in capsys.readouterr().err


def test_hold_needs_the_maps_directory_on_this_host(tmp_path):
    config = {"host": "mail1", "facets": {"mail": {"enabled": True, "contain": "hold",
                                                   "hold_map": str(tmp_path / "missing" / "hold.regexp")}}}
    validated = watch_config.validate(config, watch_service.FACET_TYPES)
    with pytest.raises(watch_config.ConfigError, match="facets.mail.hold_map: its directory .* does not exist"):
        watch_service.MailFacet.check_host(validated["facets"]["mail"], "facets.mail")


def test_the_runner_says_when_a_command_is_missing():
    rc, out, err = watch_service.run_command(["/nonexistent/postsuper", "-h"])
    assert rc == 127 and out == "" and "postsuper" in err


def test_an_event_whose_containment_was_done_says_when_it_was_done(tmp_path):
    clock = Clock(1796532000.0)  # 2026-12-06T04:40:00Z
    service = start_service(tmp_path, {}, clock=clock)
    service.learning_until = None  # past its first start's reading of the journal
    # the log line that crossed the limit was written 3 s before the service held its source
    assert service.emit("mail_rate", "uid:2001", "uid 2001 sent 201 messages", "critical", None, {"uid": 2001},
                        {"kind": "hold", "done": "held", "undo": "release"}, clock.now - 3)
    assert service.emit("file_planted", "/srv/a.php", "planted", "critical", None, {"path": "/srv/a.php"},
                        {"kind": "quarantine", "failed": True, "done": "nothing", "undo": "nothing to undo"}, None)
    held, failed = read_events(tmp_path)
    assert (held["time"], held["action"]["at"]) == ("2026-12-06T04:39:57+00:00", "2026-12-06T04:40:00+00:00")
    assert "at" not in failed["action"]  # nothing was contained: no time of containment
