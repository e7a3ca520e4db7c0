"""The firewalld backend: its rendering, and putting it in place with a rollback.

firewalld's own check (firewall-offline-cmd) runs for real, from the lab's
firewalld root file system (tests/lab/flavours.yml), when it has been built
and the tests run as root; those tests are skipped otherwise. The daemon
cannot run here, so firewall-cmd and systemd's commands are recorded instead;
reloading and the timer firing for real are proven by
molecule/firewall_firewalld on a lab host.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from ansible_collections.hostguard.hosting.plugins.module_utils import firewall, firewalld
from ansible_collections.hostguard.hosting.plugins.module_utils.firewall import build_plan

LAB_DATA = Path(os.environ.get("HOSTGUARD_LAB_DATA", "/var/lib/hostguard-lab"))
ROOTFS = next((path for path in sorted((LAB_DATA / "rootfs").glob("firewalld-*"))
               if (path / ".hostguard-complete").exists()), None) if (LAB_DATA / "rootfs").is_dir() else None
needs_firewalld = pytest.mark.skipif(ROOTFS is None or os.geteuid() != 0 or not shutil.which("unshare"),
                                     reason="needs root and the lab's firewalld root file system (lab.py rootfs "
                                            "--flavour firewalld)")
POLICY = {
    "services": {"ssh": {"sources": []}, "ftp": {"sources": ["198.18.0.0/24", "2001:db8:18::/64"]},
                 "smtp": {"sources": "any"}, "submission": {"sources": "any", "countries": ["JP"]},
                 "myapp": {"ports": [9000, "9100-9110"], "sources": ["198.18.0.0/24"]}},
    "country_cidrs": {"JP": ["198.18.0.0/24", "2001:db8:18::/64"], "MD": ["203.0.113.0/24"]},
    "admin_sources": ["198.51.100.0/24", "2001:db8:51::/64"],
    "guard": {"source": "10.213.5.1", "port": 22},
    "ftp_passive_ports": "40000-40010",
}
CONF = "# firewalld config file\n\n# default zone\nDefaultZone=public\n\nFirewallBackend=nftables\n"


def plan(**changes):
    return build_plan(**dict(POLICY, **changes))


def ten_thousand_networks():
    return [f"100.{64 + index // 256}.{index % 256}.0/24" for index in range(10000)]


# --------------------------------------------------------------------------- rendering

def test_the_zone_drops_by_default_and_opens_only_what_is_listed():
    zone = ET.fromstring(plan()["firewalld"]["zones/hostguard.xml"])
    assert zone.get("target") == "DROP"
    assert [(port.get("protocol"), port.get("port")) for port in zone.findall("port")] == [("tcp", "25")]
    rules = ET.tostring(zone, encoding="unicode")
    assert '<source address="10.213.5.1" /><port protocol="tcp" port="22" />' in rules
    assert '<source ipset="hg_country_jp_v4" /><port protocol="tcp" port="587" />' in rules
    assert '<source ipset="hg_svc_ftp_v6" /><port protocol="tcp" port="40000-40010" />' in rules
    assert 'icmp-type name="neighbour-solicitation"' in rules
    # MD is not used by any service: it has no ipset.
    assert not [name for name in plan()["firewalld"] if "country_md" in name]


def test_source_lists_are_hash_net_ipsets_of_their_family():
    files = plan()["firewalld"]
    v6 = ET.fromstring(files["ipsets/hg_admin_v6.xml"])
    assert v6.get("type") == "hash:net"
    assert v6.find("option").attrib == {"name": "family", "value": "inet6"}
    assert [entry.text for entry in v6.findall("entry")] == ["2001:db8:51::/64"]


def test_ten_thousand_country_networks_are_one_ipset_and_one_rule_per_port():
    small = plan()["firewalld"]
    large = plan(country_cidrs={"JP": [*ten_thousand_networks(), "198.18.0.0/24", "2001:db8:18::/64"]})["firewalld"]
    assert small["zones/hostguard.xml"].count("<rule") == large["zones/hostguard.xml"].count("<rule")
    entries = ET.fromstring(large["ipsets/hg_country_jp_v4.xml"]).findall("entry")
    # Adjacent /24s are merged: firewalld refuses overlapping entries, and fewer entries cost less.
    assert len(entries) < 10001
    assert {entry.text for entry in entries} >= {"198.18.0.0/24"}


def test_overlapping_networks_are_merged_as_firewalld_requires():
    files = plan(country_cidrs={"JP": ["198.18.0.0/24", "198.18.0.0/25", "198.18.1.0/24", "2001:db8:18::/64"]})
    entries = [e.text for e in ET.fromstring(files["firewalld"]["ipsets/hg_country_jp_v4.xml"]).findall("entry")]
    assert entries == ["198.18.0.0/23"]


def test_long_service_names_give_short_distinct_ipset_names():
    long_a, long_b = "a" * 31, "a" * 30 + "b"
    files = plan(services={long_a: {"ports": [1], "sources": ["192.0.2.0/24", "2001:db8::/64"]},
                           long_b: {"ports": [2], "sources": ["192.0.2.0/24"]}})["firewalld"]
    names = [Path(path).stem for path in files if path.startswith("ipsets/")]
    assert all(len(name) <= firewall.FIREWALLD_IPSET_NAME_MAX for name in names)
    assert len(set(names)) == len(names) == 5  # admin v4 and v6, a's two, b's one


@needs_firewalld
def test_firewalld_accepts_the_rendered_configuration_with_ten_thousand_networks(tmp_path):
    host = FakeHost(tmp_path, running=False)
    host.install_stock_config()
    files = plan(country_cidrs={"JP": [*ten_thousand_networks(), "198.18.0.0/24"]})["firewalld"]
    # The same check apply() makes before anything is live; a warning would fail it.
    changes = firewalld.plan_changes(host.config_dir, files, "hostguard")
    firewalld.check_staged(host, host.config_dir, changes, str(tmp_path))


@needs_firewalld
def test_firewalld_refuses_what_it_would_load_without_a_rule(tmp_path):
    host = FakeHost(tmp_path, running=False)
    host.install_stock_config()
    files = dict(plan()["firewalld"])
    files["zones/hostguard.xml"] = files["zones/hostguard.xml"].replace('port="9000"', 'port="99999"')
    changes = firewalld.plan_changes(host.config_dir, files, "hostguard")
    # firewalld itself only warns and drops the rule (exit 0): that is a refusal here.
    with pytest.raises(firewalld.FirewalldError, match="INVALID_PORT: 99999"):
        firewalld.check_staged(host, host.config_dir, changes, str(tmp_path))


# --------------------------------------------------------------------------- putting it in place

class FakeHost:
    """A firewalld configuration directory in tmp_path; records firewall-cmd and systemd calls.

    firewall-offline-cmd runs for real from the lab's root file system when it
    is there, else it is recorded and answers as a clean check does.
    """

    def __init__(self, tmp_path, running=True, check_output=""):
        self.root = tmp_path
        self.config_dir = str(tmp_path / "etc" / "firewalld")
        self.backup_dir = str(tmp_path / "state" / "firewalld-previous")
        self.running = running
        self.check_output = check_output
        self.reload_fails = False
        self.calls = []
        self.timer_active = False
        self.runtime_zone = "public"
        os.makedirs(os.path.join(self.config_dir, "zones"))
        os.makedirs(os.path.join(self.config_dir, "ipsets"))
        Path(self.config_dir, "firewalld.conf").write_text(CONF)

    def install_stock_config(self):
        shutil.rmtree(self.config_dir)
        shutil.copytree(ROOTFS / "etc" / "firewalld", self.config_dir)

    def __call__(self, argv):
        self.calls.append(argv)
        if argv[0] == "firewall-offline-cmd":
            if ROOTFS is None or os.geteuid() != 0:
                return 0, self.check_output, ""
            inside = [arg.replace(str(self.root), "/mnt") for arg in argv]
            done = subprocess.run(["unshare", "-m", "sh", "-c", 'mount --bind "$1" "$2/mnt" && shift 2 && '
                                   'exec chroot "$0" "$@"', str(ROOTFS), str(self.root), str(ROOTFS), *inside],
                                  text=True, capture_output=True, check=False)
            return done.returncode, done.stdout, done.stderr
        if argv[:2] == ["firewall-cmd", "--state"]:
            return (0, "running\n", "") if self.running else (252, "not running\n", "")
        if argv[:2] == ["firewall-cmd", "--get-default-zone"]:
            return (0, self.runtime_zone + "\n", "") if self.running else (252, "", "FirewallD is not running")
        if argv == ["firewall-cmd", "--reload"] or argv[:2] == ["systemctl", "start"]:
            if self.reload_fails:
                return 1, "", "Error: INVALID_ZONE"
            self.running = True
            self.runtime_zone = firewalld.default_zone(Path(self.config_dir, "firewalld.conf").read_text())
            return 0, "success\n", ""
        if argv[0] == "systemd-run":
            self.timer_active = True
        elif argv[:2] == ["systemctl", "stop"]:
            self.timer_active = False
        elif argv[:2] == ["systemctl", "is-active"]:
            return (0, "active\n", "") if self.timer_active else (3, "inactive\n", "")
        elif argv[0] == "/bin/sh":  # the rollback script: run for real, its firewall-cmd recorded
            return self.run_script(argv[1])
        return 0, "", ""

    def run_script(self, script):
        stub = self.root / "bin"
        stub.mkdir(exist_ok=True)
        for command in ("firewall-cmd", "systemctl"):
            (stub / command).write_text(f'#!/bin/sh\necho "{command} $*" >> "{self.root}/script-calls"\n')
            (stub / command).chmod(0o755)
        done = subprocess.run(["/bin/sh", script], text=True, capture_output=True, check=False,
                              env=dict(os.environ, PATH=f"{stub}:{os.environ['PATH']}"))
        self.runtime_zone = firewalld.default_zone(Path(self.config_dir, "firewalld.conf").read_text())
        return done.returncode, done.stdout, done.stderr

    def apply(self, files, check_mode=False, rollback_seconds=60):
        return firewalld.apply(self, self.config_dir, files, "hostguard", rollback_seconds, self.backup_dir,
                               check_mode)

    def snapshot(self):
        return {str(path.relative_to(self.config_dir)): path.read_text()
                for path in sorted(Path(self.config_dir).rglob("*")) if path.is_file()}


@pytest.fixture(name="host")
def fixture_host(tmp_path):
    host = FakeHost(tmp_path)
    # The administrator's own zone and ipset, which the role must leave alone.
    Path(host.config_dir, "zones", "office.xml").write_text('<?xml version="1.0"?>\n<zone><service name="ssh"/></zone>\n')
    Path(host.config_dir, "ipsets", "blocklist.xml").write_text('<?xml version="1.0"?>\n<ipset type="hash:ip"/>\n')
    return host


def test_a_first_run_writes_the_zone_and_ipsets_and_makes_the_zone_the_default(host):
    files = plan()["firewalld"]
    result = host.apply(files)
    assert result["changed"] and result["rollback_armed"] and not result["started"]
    after = host.snapshot()
    assert {rel: after[rel] for rel in files} == files
    assert "DefaultZone=hostguard\n" in after["firewalld.conf"]
    assert after["firewalld.conf"].replace("DefaultZone=hostguard", "DefaultZone=public") == CONF
    assert ["firewall-cmd", "--reload"] in host.calls
    arm = next(call for call in host.calls if call[0] == "systemd-run")
    assert "--on-active=60s" in arm and arm[-2:] == ["/bin/sh", os.path.join(host.backup_dir, "rollback.sh")]
    # Checked before anything was written: the check comes before the timer and the reload.
    order = [call[0] for call in host.calls if call[0] in ("firewall-offline-cmd", "systemd-run")]
    assert order == ["firewall-offline-cmd", "systemd-run"]


def test_the_rollback_script_puts_the_previous_configuration_back_exactly(host):
    before = host.snapshot()
    host.apply(plan()["firewalld"])
    rc, _out, err = host.run_script(os.path.join(host.backup_dir, "rollback.sh"))
    assert rc == 0, err
    assert host.snapshot() == before
    assert (host.root / "script-calls").read_text() == "firewall-cmd --reload\n"


def test_a_rollback_of_a_firewalld_that_was_stopped_stops_it_again(tmp_path):
    host = FakeHost(tmp_path, running=False)
    result = host.apply(plan()["firewalld"])
    assert result["started"] and ["systemctl", "start", "firewalld.service"] in host.calls
    host.run_script(os.path.join(host.backup_dir, "rollback.sh"))
    assert (host.root / "script-calls").read_text() == "systemctl stop firewalld.service\n"


def test_a_second_run_changes_nothing_and_reloads_nothing(host):
    files = plan()["firewalld"]
    host.apply(files)
    host.calls.clear()
    again = host.apply(files)
    assert again["changed"] is False and again["files"] == []
    assert [call for call in host.calls if call[:2] != ["firewall-cmd", "--state"]
            and call[:2] != ["firewall-cmd", "--get-default-zone"]] == []


def test_files_in_place_but_not_in_force_are_reloaded(host):
    files = plan()["firewalld"]
    host.apply(files)
    host.runtime_zone = "public"  # e.g. a reload that never happened
    result = host.apply(files)
    assert result["changed"] and result["files"] == []
    assert host.runtime_zone == "hostguard"


def test_check_mode_reports_a_diff_and_touches_nothing(host):
    before = host.snapshot()
    result = host.apply(plan()["firewalld"], check_mode=True)
    assert result["changed"] and "zones/hostguard.xml" in result["files"] and "firewalld.conf" in result["files"]
    assert "+++ " + os.path.join(host.config_dir, "zones/hostguard.xml") in result["diff"]["prepared"]
    assert "-DefaultZone=public\n+DefaultZone=hostguard\n" in result["diff"]["prepared"]
    assert host.snapshot() == before
    assert not os.path.exists(host.backup_dir)
    assert not [call for call in host.calls if call[0] in ("systemd-run", "firewall-offline-cmd")
                or call == ["firewall-cmd", "--reload"]]


def test_stale_ipsets_of_the_role_go_and_the_administrators_stay(host):
    host.apply(plan()["firewalld"])
    admin_files = {rel: text for rel, text in host.snapshot().items() if "office" in rel or "blocklist" in rel}
    result = host.apply(plan(services={"smtp": {"sources": "any"}, "ssh": {"sources": []}})["firewalld"])
    assert "ipsets/hg_svc_ftp_v4.xml" in result["files"]
    after = host.snapshot()
    assert not [rel for rel in after if rel.startswith("ipsets/hg_svc_")]
    assert {rel: text for rel, text in after.items() if rel in admin_files} == admin_files


def test_only_the_roles_files_are_accepted(host):
    before = host.snapshot()
    with pytest.raises(firewalld.FirewalldError, match="zones/public.xml is not a file this module manages"):
        host.apply({"zones/public.xml": "<zone/>"})
    assert host.snapshot() == before


def test_a_configuration_the_check_refuses_is_never_written(tmp_path):
    host = FakeHost(tmp_path, check_output="WARNING: INVALID_PORT: 99999: rule ...\n")
    if ROOTFS is not None and os.geteuid() == 0:
        host.install_stock_config()  # the real check: a port it warns about
    files = dict(plan()["firewalld"])
    files["zones/hostguard.xml"] = files["zones/hostguard.xml"].replace('port="9000"', 'port="99999"')
    before = host.snapshot()
    with pytest.raises(firewalld.FirewalldError, match="refused the new configuration, nothing was changed"):
        host.apply(files)
    assert host.snapshot() == before
    assert not [call for call in host.calls if call[0] == "systemd-run" or call == ["firewall-cmd", "--reload"]]


def test_a_failed_reload_puts_the_previous_configuration_back_at_once(host):
    before = host.snapshot()
    host.reload_fails = True
    with pytest.raises(firewalld.FirewalldError, match="INVALID_ZONE; the previous configuration is back"):
        host.apply(plan()["firewalld"])
    assert host.snapshot() == before
    assert host.timer_active is False


def test_confirming_after_the_rollback_fired_says_so(host):
    files = plan()["firewalld"]
    host.apply(files)
    host.run_script(os.path.join(host.backup_dir, "rollback.sh"))
    with pytest.raises(firewalld.FirewalldError, match="the rollback ran before the controller confirmed"):
        firewalld.confirm(host, host.config_dir, files, "hostguard")


def test_confirming_in_time_stops_the_timer(host):
    files = plan()["firewalld"]
    host.apply(files)
    assert firewalld.confirm(host, host.config_dir, files, "hostguard") is True
    assert host.timer_active is False


def test_default_zone_line_is_replaced_or_added_and_nothing_else_changes():
    assert firewalld.with_default_zone(CONF, "hostguard") == CONF.replace("DefaultZone=public", "DefaultZone=hostguard")
    assert firewalld.with_default_zone("Lockdown=no\n", "hostguard") == "Lockdown=no\nDefaultZone=hostguard\n"
    assert firewalld.default_zone("# DefaultZone=old\nDefaultZone=work\n") == "work"


def test_check_mode_before_firewalld_is_installed_reports_everything_it_would_write(tmp_path):
    host = FakeHost(tmp_path, running=False)
    shutil.rmtree(host.config_dir)
    result = host.apply(plan()["firewalld"], check_mode=True)
    assert result["changed"] and result["started"]
    assert {"firewalld.conf", "zones/hostguard.xml", "ipsets/hg_admin_v4.xml"} <= set(result["files"])
    assert not os.path.exists(host.config_dir)
