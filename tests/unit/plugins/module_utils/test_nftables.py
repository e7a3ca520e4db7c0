"""Loading the firewall table: only when it differs, with the previous table saved first.

nft runs for real inside a throwaway network namespace. systemd cannot run
here, so its two commands (systemd-run, systemctl) are recorded instead; the
timer firing for real is proven by molecule/firewall on a lab host.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid

import pytest

from ansible_collections.hostguard.hosting.plugins.module_utils import nftables, rollback
from ansible_collections.hostguard.hosting.plugins.module_utils.firewall import build_plan

pytestmark = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("ip"),
                                reason="needs root, nft and ip")


class Host:
    """Runs nft in its own network namespace; records what would go to systemd."""

    def __init__(self, netns):
        self.netns = netns
        self.systemd_calls = []
        self.timer_active = False

    def __call__(self, argv):
        if argv[0] == "nft":
            done = subprocess.run(["ip", "netns", "exec", self.netns, *argv], text=True, capture_output=True,
                                  check=False)
            return done.returncode, done.stdout, done.stderr
        self.systemd_calls.append(argv)
        if argv[0] == "systemd-run":
            self.timer_active = True
        elif argv[:2] == ["systemctl", "stop"]:
            self.timer_active = False
        elif argv[:2] == ["systemctl", "is-active"]:
            return (0, "active\n", "") if self.timer_active else (3, "inactive\n", "")
        return 0, "", ""

    def nft(self, *args):
        return self(["nft", *args])


@pytest.fixture(name="host")
def fixture_host():
    name = f"hgunit-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield Host(name)
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def write_plan(tmp_path, sources):
    plan = build_plan({"ssh": {"sources": sources}, "smtp": {"sources": "any"}})
    path = tmp_path / "firewall.nft"
    path.write_text(plan["ruleset"])
    return str(path), plan["digest"]


def test_first_load_arms_a_rollback_that_removes_the_table(host, tmp_path):
    path, digest = write_plan(tmp_path, ["198.51.100.0/24"])
    rollback = str(tmp_path / "state" / "rollback.nft")
    result = nftables.load(host, path, "inet", "hostguard", digest, 60, rollback, check_mode=False)
    assert result["changed"] and result["rollback_armed"] and not result["table_existed"]
    assert nftables.live_table(host, "inet", "hostguard") == (True, digest)
    assert any(call[0] == "systemd-run" and "--on-active=60s" in call and call[-1] == rollback
               for call in host.systemd_calls)
    # What the timer would run: the table is gone again.
    assert host.nft("-f", rollback)[0] == 0
    assert nftables.live_table(host, "inet", "hostguard") == (False, None)


def test_rollback_restores_the_previous_table_exactly(host, tmp_path):
    first_path, first_digest = write_plan(tmp_path, ["198.51.100.0/24"])
    rollback = str(tmp_path / "rollback.nft")
    nftables.load(host, first_path, "inet", "hostguard", first_digest, 0, rollback, check_mode=False)
    before = host.nft("list", "table", "inet", "hostguard")[1]
    (tmp_path / "second").mkdir()
    second_path, second_digest = write_plan(tmp_path / "second", ["203.0.113.0/24"])
    nftables.load(host, second_path, "inet", "hostguard", second_digest, 30, rollback, check_mode=False)
    assert nftables.live_table(host, "inet", "hostguard")[1] == second_digest
    assert host.nft("-f", rollback)[0] == 0
    assert host.nft("list", "table", "inet", "hostguard")[1] == before


def test_same_digest_changes_nothing(host, tmp_path):
    path, digest = write_plan(tmp_path, ["198.51.100.0/24"])
    rollback = str(tmp_path / "rollback.nft")
    nftables.load(host, path, "inet", "hostguard", digest, 60, rollback, check_mode=False)
    host.systemd_calls.clear()
    again = nftables.load(host, path, "inet", "hostguard", digest, 60, rollback, check_mode=False)
    assert again["changed"] is False and host.systemd_calls == []


def test_check_mode_reports_without_touching_anything(host, tmp_path):
    path, digest = write_plan(tmp_path, ["198.51.100.0/24"])
    result = nftables.load(host, path, "inet", "hostguard", digest, 60, str(tmp_path / "r.nft"), check_mode=True)
    assert result["changed"] is True
    assert nftables.live_table(host, "inet", "hostguard") == (False, None)
    assert host.systemd_calls == [] and not (tmp_path / "r.nft").exists()


def test_a_file_edited_after_it_was_written_is_refused(host, tmp_path):
    path, digest = write_plan(tmp_path, ["198.51.100.0/24"])
    with open(path, encoding="utf-8") as handle:
        text = handle.read()
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text.replace("198.51.100.0/24", "0.0.0.0/0"))
    with pytest.raises(nftables.NftablesError, match="was edited since it was written"):
        nftables.load(host, path, "inet", "hostguard", digest, 60, str(tmp_path / "r.nft"), check_mode=False)
    assert nftables.live_table(host, "inet", "hostguard") == (False, None)


def test_the_digest_of_a_written_file_is_the_plans(tmp_path):
    path, digest = write_plan(tmp_path, ["198.51.100.0/24"])
    assert nftables.file_digest(path) == digest


def test_other_tables_are_never_touched(host, tmp_path):
    assert host.nft("add", "table", "inet", "f2b-table")[0] == 0
    assert host.nft("add", "chain", "inet", "f2b-table", "input",
                    "{ type filter hook input priority filter - 1 ; }")[0] == 0
    assert host.nft("add", "rule", "inet", "f2b-table", "input", "ip", "saddr", "203.0.113.11", "drop")[0] == 0
    before = host.nft("list", "table", "inet", "f2b-table")[1]
    path, digest = write_plan(tmp_path, ["198.51.100.0/24"])
    nftables.load(host, path, "inet", "hostguard", digest, 60, str(tmp_path / "r.nft"), check_mode=False)
    assert host.nft("list", "table", "inet", "f2b-table")[1] == before


def test_confirm_disarms_a_pending_rollback(host, tmp_path):
    path, digest = write_plan(tmp_path, ["198.51.100.0/24"])
    nftables.load(host, path, "inet", "hostguard", digest, 60, str(tmp_path / "r.nft"), check_mode=False)
    assert rollback.armed(host)
    assert rollback.disarm(host) is True
    assert not rollback.armed(host)
    assert rollback.disarm(host) is False


def test_confirm_refuses_when_the_rollback_already_put_the_old_table_back(host, tmp_path):
    path, digest = write_plan(tmp_path, ["198.51.100.0/24"])
    rollback_path = str(tmp_path / "r.nft")
    nftables.load(host, path, "inet", "hostguard", digest, 60, rollback_path, check_mode=False)
    assert host.nft("-f", rollback_path)[0] == 0  # the timer fired first
    with pytest.raises(nftables.NftablesError, match="rollback ran before the controller confirmed"):
        nftables.confirm(host, "inet", "hostguard", digest)


def test_confirm_keeps_the_new_table_when_it_is_live(host, tmp_path):
    path, digest = write_plan(tmp_path, ["198.51.100.0/24"])
    nftables.load(host, path, "inet", "hostguard", digest, 60, str(tmp_path / "r.nft"), check_mode=False)
    assert nftables.confirm(host, "inet", "hostguard", digest) is True
    assert nftables.live_table(host, "inet", "hostguard") == (True, digest)
