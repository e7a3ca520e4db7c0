"""fail2ban's jails read back from the server, the restart that repairs them, and the test ban.

A stand-in plays fail2ban-client, systemctl and nft over a small model of the server; molecule/bruteforce
proves the same against the real fail2ban on a lab host.
"""

from __future__ import annotations

import json

import pytest

from ansible_collections.hostguard.hosting.plugins.module_utils import fail2ban

EXPECTED = {"sshd": "journal", "recidive": "file"}


class FakeFail2ban:
    """jails: name to (backend label, actions); restart_gives: the jails a restart brings up."""

    def __init__(self, jails, restart_gives=None, ban_reaches_nft=True, running=True):
        self.jails = dict(jails)
        self.restart_gives = restart_gives
        self.ban_reaches_nft = ban_reaches_nft
        self.running = running
        self.sets = {}
        self.bans = {}
        self.calls = []

    def __call__(self, argv):
        self.calls.append(argv)
        if argv[:2] == ["systemctl", "restart"]:
            self.running = True
            if self.restart_gives is not None:
                self.jails = dict(self.restart_gives)
            return 0, "", ""
        if argv[0] == "nft":
            name = argv[-1]
            if name not in self.sets:
                return 1, "", "Error: No such file or directory"
            elem = [{"elem": {"val": a, "timeout": 60}} if i % 2 else a for i, a in enumerate(self.sets[name])]
            return 0, json.dumps({"nftables": [{"metainfo": {}}, {"set": {"name": name, "elem": elem}}]}), ""
        if not self.running:
            return 255, "", "ERROR  Failed to access socket path: /var/run/fail2ban/fail2ban.sock. Is fail2ban running?"
        args = argv[1:]
        if args == ["status"]:
            return 0, f"Status\n|- Number of jail:\t{len(self.jails)}\n`- Jail list:\t{', '.join(self.jails)}\n", ""
        if args[0] == "status":
            label, _actions = self.jails[args[1]]
            return 0, (f"Status for the jail: {args[1]}\n|- Filter\n|  |- Currently failed:\t0\n"
                       f"|  `- {label}:\tsomething\n`- Actions\n   `- Banned IP list:\t\n"), ""
        if args[0] == "get" and args[2] == "actions":
            actions = self.jails[args[1]][1]
            if not actions:
                return 0, f"No actions for jail {args[1]}\n", ""
            return 0, f"The jail {args[1]} has the following actions:\n{', '.join(actions)}\n", ""
        if args[0] == "get" and args[2] == "banip":
            return 0, " ".join(self.bans.get(args[1], [])) + "\n", ""
        if args[0] == "set" and args[2] in ("banip", "unbanip"):
            jail, address = args[1], args[3]
            set_name = fail2ban.nft_set_name(jail, address)
            if args[2] == "banip":
                self.bans.setdefault(jail, []).append(address)
                if self.ban_reaches_nft:
                    self.sets.setdefault(set_name, []).append(address)
            else:
                self.bans[jail].remove(address)
                if address in self.sets.get(set_name, []):
                    self.sets[set_name].remove(address)
            return 0, "1\n", ""
        raise AssertionError(f"unexpected command {argv}")


LIVE = {"sshd": ("Journal matches", ["nftables-multiport"]), "recidive": ("File list", ["nftables-allports"])}
NO_ACTIONS = {"sshd": ("Journal matches", []), "recidive": ("File list", [])}


def enforce(fake, **kwargs):
    return fail2ban.enforce(fake, EXPECTED, sleep=lambda _s: None, timeout=0, **kwargs)


def test_live_jails_are_reported_unchanged():
    fake = FakeFail2ban(LIVE)
    result = enforce(fake)
    assert result["changed"] is False and result["restarted"] is False
    assert result["jails"]["sshd"] == {"running": True, "backend": "journal", "actions": ["nftables-multiport"]}
    assert not any(call[0] == "systemctl" for call in fake.calls)


def test_jails_a_reload_left_without_actions_get_a_restart_reported_as_a_change():
    fake = FakeFail2ban(NO_ACTIONS, restart_gives=LIVE)
    result = enforce(fake)
    assert result["changed"] is True and result["restarted"] is True
    assert result["repaired"] == {"sshd": "runs without any action (it would ban nobody)",
                                  "recidive": "runs without any action (it would ban nobody)"}
    assert result["jails"]["recidive"]["actions"] == ["nftables-allports"]


def test_a_jail_still_wrong_after_the_restart_fails_naming_it():
    # The journal backend without python3-systemd: the jail never starts.
    fake = FakeFail2ban({"recidive": LIVE["recidive"]}, restart_gives={"recidive": LIVE["recidive"]})
    with pytest.raises(fail2ban.Fail2banError, match=r"jail sshd not running, even after a restart"):
        enforce(fake)
    assert ["systemctl", "restart", "fail2ban.service"] in fake.calls


def test_a_stopped_fail2ban_is_started():
    fake = FakeFail2ban(LIVE, running=False)
    assert enforce(fake)["restarted"] is True


def test_a_jail_reading_another_source_is_named():
    wrong = {**LIVE, "sshd": ("File list", ["nftables-multiport"])}
    fake = FakeFail2ban(wrong, restart_gives=wrong)
    with pytest.raises(fail2ban.Fail2banError, match=r"jail sshd reads file, not journal"):
        enforce(fake)


def test_check_mode_reports_the_restart_and_makes_none():
    fake = FakeFail2ban(NO_ACTIONS, restart_gives=LIVE)
    result = enforce(fake, check_mode=True, probe_jail="recidive", probe_address="203.0.113.254")
    assert result["changed"] is True and result["restarted"] is False
    assert "jail sshd runs without any action" in result["would_restart"]
    assert not any(call[0] in ("systemctl", "nft") or "banip" in call for call in fake.calls)


def test_inspect_reads_the_jails_and_names_each_one_not_in_force_without_restarting():
    fake = FakeFail2ban({"sshd": NO_ACTIONS["sshd"]}, restart_gives=LIVE)
    result = fail2ban.inspect(fake, EXPECTED, timeout=0, sleep=lambda _s: None)
    assert result["problems"] == ["jail recidive not running", "jail sshd runs without any action (it would ban nobody)"]
    assert result["jails"]["sshd"] == {"running": True, "backend": "journal", "actions": []}
    assert all(call[0] == "fail2ban-client" and call[1] in ("status", "get") for call in fake.calls)


def test_inspect_of_live_jails_finds_nothing_and_of_a_stopped_fail2ban_names_every_jail():
    assert fail2ban.inspect(FakeFail2ban(LIVE), EXPECTED)["problems"] == []
    problems = fail2ban.inspect(FakeFail2ban(LIVE, running=False), EXPECTED)["problems"]
    assert [problem.split(" does not answer")[0] for problem in problems] == ["jail recidive fail2ban", "jail sshd fail2ban"]


@pytest.mark.parametrize(("address", "set_name"), [("203.0.113.254", "addr-set-recidive"),
                                                   ("2001:db8::f2b", "addr6-set-recidive")])
def test_the_test_ban_is_seen_in_nftables_and_lifted(address, set_name):
    fake = FakeFail2ban(LIVE)
    result = enforce(fake, probe_jail="recidive", probe_address=address)
    assert result["probe"] == {"jail": "recidive", "address": address, "set": f"inet f2b-table {set_name}",
                               "blocked": True, "lifted": True}
    assert fake.sets[set_name] == [] and fake.bans["recidive"] == []
    assert result["changed"] is False


def test_a_ban_that_never_reaches_nftables_fails_and_is_lifted():
    fake = FakeFail2ban(LIVE, ban_reaches_nft=False)
    with pytest.raises(fail2ban.Fail2banError, match=r"never reached nftables .*addr-set-recidive"):
        enforce(fake, probe_jail="recidive", probe_address="203.0.113.254")
    assert fake.bans["recidive"] == []


def test_an_address_already_banned_is_not_lifted_by_the_probe():
    fake = FakeFail2ban(LIVE)
    fake.bans["recidive"] = ["203.0.113.254"]
    with pytest.raises(fail2ban.Fail2banError, match="already banned"):
        enforce(fake, probe_jail="recidive", probe_address="203.0.113.254")
    assert fake.bans["recidive"] == ["203.0.113.254"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"probe_jail": "recidive", "probe_address": "203.0.113.0/24"}, "not a single IP address"),
])
def test_bad_input_fails_before_anything_runs(kwargs, message):
    fake = FakeFail2ban(LIVE)
    with pytest.raises(fail2ban.Fail2banError, match=message):
        enforce(fake, **kwargs)
    assert fake.calls == []


def test_an_unknown_backend_kind_fails_naming_the_jail():
    with pytest.raises(fail2ban.Fail2banError, match="jail sshd: backend must be one of"):
        fail2ban.enforce(FakeFail2ban(LIVE), {"sshd": "systemd"})


def test_parsers_read_fail2bans_own_wording():
    assert fail2ban.jail_list("Status\n|- Number of jail:\t2\n`- Jail list:\tsshd, recidive") == ["sshd", "recidive"]
    assert fail2ban.jail_actions("No actions for jail sshd") == []
    assert fail2ban.jail_actions("The jail sshd has the following actions:\nnftables-multiport, mail") == [
        "nftables-multiport", "mail"]
    assert fail2ban.jail_backend("`- Filter\n   `- File list:\t/var/log/fail2ban.log") == "file"
