"""The account_password core on real-format /etc/passwd and /etc/shadow, with account_cleanup's real lock records.

The shadow tools and doveadm are the one thing replaced: a fake that edits the temporary shadow file the way
chpasswd, usermod and chage do, answers doveadm the way Dovecot 2.4 and 2.3 answered on the lab's hosts, and,
after every command, asks whether PAM would accept the old password now (its hash unlocked and the account not
expired) - so the tests see every instant between two commands, not only the end.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from ansible_collections.hostguard.hosting.plugins.module_utils import account_cleanup
from ansible_collections.hostguard.hosting.plugins.module_utils import account_password as core

NOW = 1_780_000_000
OLD, NEW = "Leaked-pass-1", "N3w!pass-Drawn"


def hashed(password):
    return "$fake$" + hashlib.sha256(password.encode()).hexdigest()


class FakeHost:
    """chpasswd, usermod, chage and doveadm on a temporary shadow file, with PAM's verdict after every command."""

    def __init__(self, paths, kick=(0, "0 connections kicked\n", ""), who=None):
        self.paths = paths
        self.kick = kick
        self.who = who or (0, "username service pid ip dest_ip\n", "")
        self.calls = []
        self.old_accepted_after = []  # the commands after which the old password would have logged in

    def shadow(self, name="mbox1"):
        return account_cleanup.parse_shadow(account_cleanup.read_text(self.paths.shadow))[name]

    def accepts(self, password, name="mbox1"):
        entry = self.shadow(name)
        return entry["password"] == hashed(password) and entry["expire"] != 0

    def __call__(self, argv, data=None):
        self.calls.append(argv)
        answer = 0, "", ""
        if argv[0] == "chpasswd":
            name, password = data.split(":", 1)
            self._edit(name, 1, lambda _value: hashed(password))
        elif argv[0] == "usermod":
            self._edit(argv[-1], 1, lambda v: ("!" + v) if argv[1] == "--lock" else v[1:] if v.startswith("!") else v)
        elif argv[0] == "chage":
            self._edit(argv[-1], 7, lambda _value: "" if argv[2] == "-1" else argv[2])
        elif argv[:2] == ["doveadm", "kick"]:
            answer = self.kick
        elif argv[:2] == ["doveadm", "who"]:
            answer = self.who
        if self.accepts(OLD):
            self.old_accepted_after.append(argv)
        return answer

    def _edit(self, name, index, change):
        out = []
        for line in account_cleanup.read_text(self.paths.shadow).splitlines():
            fields = line.split(":")
            if fields[0] == name:
                fields[index] = change(fields[index])
            out.append(":".join(fields))
        with open(self.paths.shadow, "w") as stream:
            stream.write("\n".join(out) + "\n")


@pytest.fixture
def paths(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n"
                                         "svc:x:999:999::/var/lib/svc:/usr/sbin/nologin\n"
                                         "mbox1:x:2201:2201::/home/mbox1:/bin/bash\n")
    (tmp_path / "etc/shadow").write_text("root:$6$x:20000:0:99999:7:::\nsvc:!:20000::::::\n"
                                         "mbox1:%s:20000:0:99999:7:::\n" % hashed(OLD))
    return account_cleanup.Paths(root=str(tmp_path), state_dir=str(tmp_path / "state"))


def lock_as_the_watch_does(paths, tools):
    """account_cleanup's lock of the system account, as hostguard-watch's logins facet applies it."""
    account = {"name": "mbox1", "kind": "system", "last_used": None, "last_used_source": None, "created": None,
               "created_source": None}
    account_cleanup.Host(paths, tools, now=NOW - 600).lock(account, paths.passwd)
    assert not tools.accepts(OLD)


def change(paths, tools, tmp_path, **options):
    return core.change(paths, tools, "mbox1", NEW, record_dir=str(tmp_path / "changes"), now=NOW, **options)


def test_the_old_password_is_refused_at_every_instant_and_the_new_one_works_after(paths, tmp_path):
    tools = FakeHost(paths)
    lock_as_the_watch_does(paths, tools)
    result = change(paths, tools, tmp_path)
    assert tools.old_accepted_after == []
    assert tools.accepts(NEW) and not tools.accepts(OLD)
    assert [call[0] for call in tools.calls[2:]] == ["doveadm", "chpasswd", "doveadm", "chage"]
    assert result["unlocked"] is True and result["lock"]["state"] == "in_force"
    assert tools.shadow()["expire"] is None  # the expiry from before the lock is back


def test_the_old_order_unlock_then_set_is_caught_by_the_same_check(paths):
    """What playbooks/change_password.yml did before: account_cleanup's unlock, then chpasswd."""
    tools = FakeHost(paths)
    lock_as_the_watch_does(paths, tools)
    account_cleanup.Host(paths, tools).unlock({"name": "mbox1", "kind": "system"})
    tools(["chpasswd"], data="mbox1:" + NEW)
    assert tools.old_accepted_after == [["chage", "--expiredate", "-1", "mbox1"]]


def test_the_lock_record_ends_closed_unlocked_with_a_new_password(paths, tmp_path):
    tools = FakeHost(paths)
    lock_as_the_watch_does(paths, tools)
    change(paths, tools, tmp_path)
    record = json.loads((tmp_path / "state/locks/system-mbox1.json").read_text())
    assert (record["unlocked_with"], record["unlocked_at"]) == ("new_password", "2026-05-28T20:26:40Z")
    assert record["locked_at"] == "2026-05-28T20:16:40Z"
    states = account_cleanup.lock_states(paths, lambda argv: (0, "", ""))
    assert [(s["name"], s["state"], s["unlocked_with"]) for s in states] == [("mbox1", "unlocked", "new_password")]
    assert account_cleanup.lock_problems(states) == []
    # account_cleanup's own unlock finds nothing left to lift, and a new lock replaces the closed record
    assert account_cleanup.Host(paths, tools).unlock({"name": "mbox1", "kind": "system"}) is False
    lock_as_the_watch_does(paths, tools)
    assert "unlocked_at" not in json.loads((tmp_path / "state/locks/system-mbox1.json").read_text())
    assert [s["state"] for s in account_cleanup.lock_states(paths, lambda argv: (0, "", ""))] == ["in_force"]


def test_the_change_is_recorded_for_the_audit_without_the_password(paths, tmp_path):
    tools = FakeHost(paths, kick=(0, "1 connections kicked\n", ""))
    lock_as_the_watch_does(paths, tools)
    change(paths, tools, tmp_path)
    path = tmp_path / "changes/mbox1.json"
    text = path.read_text()
    assert NEW not in text and hashed(NEW) not in text
    assert json.loads(text) == {"account": "mbox1", "changed_at": "2026-05-28T20:26:40Z", "sessions_ended": 1,
                                "unlocked": True, "record": str(path), "lock_locked_at": "2026-05-28T20:16:40Z"}
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700


@pytest.mark.parametrize("kick, who, ended", [
    ((0, "0 connections kicked\n", ""), None, 0),                      # Dovecot 2.4, nobody logged in
    ((0, "2 connections kicked\n", ""), None, 2),                      # Dovecot 2.4
    ((68, "", "no users kicked\n"), None, 0),                          # Dovecot 2.3, nobody logged in
    ((0, "mbox1 kicked connections from the following users:\n\n", ""),  # Dovecot 2.3 gives no count
     (0, "username proto pid ip\nmbox1 imap 393 198.51.100.10\nmbox1 imap 392 198.18.0.10\n", ""), 2),
    ((127, "", "doveadm: command not found"), (127, "", ""), 0),     # no Dovecot
    ((75, "", "Fatal: net_connect_unix(/run/dovecot/anvil) failed: Connection refused"), (75, "", ""), 0),
])
def test_sessions_ended_is_what_doveadm_says_it_ended(paths, tmp_path, kick, who, ended):
    tools = FakeHost(paths, kick=kick, who=who)
    assert change(paths, tools, tmp_path)["sessions_ended"] == ended


def test_a_failed_kick_leaves_the_lock_in_force_and_says_the_password_changed(paths, tmp_path):
    tools = FakeHost(paths, kick=(1, "", "Error: something else"))
    lock_as_the_watch_does(paths, tools)
    with pytest.raises(core.PasswordChangeError, match="password of mbox1 was changed, then: doveadm kick mbox1 "
                                                       "failed .*lock, if any, is still in force"):
        change(paths, tools, tmp_path)
    assert tools.shadow()["expire"] == 0 and tools.old_accepted_after == []
    assert json.loads((tmp_path / "changes/mbox1.json").read_text())["unlocked"] is False


def test_without_unlock_the_lock_stays_whole_with_the_new_password_under_it(paths, tmp_path):
    tools = FakeHost(paths)
    lock_as_the_watch_does(paths, tools)
    result = change(paths, tools, tmp_path, unlock=False)
    assert result["unlocked"] is False and tools.old_accepted_after == []
    assert tools.shadow()["password"] == "!" + hashed(NEW) and tools.shadow()["expire"] == 0
    assert [s["state"] for s in account_cleanup.lock_states(paths, lambda argv: (0, "", ""))] == ["in_force"]


def test_check_mode_changes_nothing_and_says_what_it_would_do(paths, tmp_path):
    tools = FakeHost(paths, who=(0, "username service pid ip dest_ip\nmbox1 imap 12 203.0.113.10 10.0.0.1\n", ""))
    lock_as_the_watch_does(paths, tools)
    shadow = (tmp_path / "etc/shadow").read_text()
    result = change(paths, tools, tmp_path, check_mode=True)
    assert (result["unlocked"], result["sessions_open"], result["sessions_ended"]) == (True, 1, None)
    assert [call[:2] for call in tools.calls[2:]] == [["doveadm", "who"]]
    assert (tmp_path / "etc/shadow").read_text() == shadow and not (tmp_path / "changes").exists()


def test_a_second_run_is_a_second_change_with_no_lock_left_to_lift(paths, tmp_path):
    tools = FakeHost(paths)
    lock_as_the_watch_does(paths, tools)
    change(paths, tools, tmp_path)
    again = core.change(paths, tools, "mbox1", "An0ther!pass-x", record_dir=str(tmp_path / "changes"), now=NOW + 60)
    assert (again["changed"], again["unlocked"], again["lock"]) == (True, False, None)
    assert tools.accepts("An0ther!pass-x") and not tools.accepts(NEW)
    assert json.loads((tmp_path / "changes/mbox1.json").read_text())["changed_at"] == "2026-05-28T20:27:40Z"


@pytest.mark.parametrize("name, password, message", [
    ("mbox1\nroot", NEW, "is not an account name"),
    ("Mbox1", NEW, "is not an account name"),
    ("nosuch", NEW, "this host has no account nosuch"),
    ("root", NEW, "root has uid 0"),
    ("svc", NEW, "svc has uid 999, below 1000"),
    ("mbox1", "short", "8 or more characters"),
    ("mbox1", "N3w!pass\nroot:x", "on one line"),
])
def test_bad_input_fails_before_any_command_naming_the_value(paths, tmp_path, name, password, message):
    tools = FakeHost(paths)
    with pytest.raises(core.PasswordChangeError, match=message) as raised:
        core.change(paths, tools, name, password, record_dir=str(tmp_path / "changes"))
    assert tools.calls == [] and "nothing was changed" in str(raised.value)
    assert password not in str(raised.value)
