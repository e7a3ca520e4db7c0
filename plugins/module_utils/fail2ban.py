# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What fail2ban really enforces, read back from the running server, repaired where a restart repairs it.

A written jail file proves nothing: a `fail2ban-client reload` can leave a jail running without its actions
(measured on Debian 13: "No actions for jail sshd", a ban logged and nothing blocked), and a backend that
cannot start (the journal without python3-systemd) leaves the jail out of the server altogether. So the
server is asked, jail by jail, whether it runs, reads the log source it was configured with (the journal or
files) and has at least one action; where not, fail2ban is restarted (which reloads every action) and asked
again. A test ban of an address nobody uses then has to show up in the jail's nftables set and go again.

Pure Python over a `run(argv) -> (rc, stdout, stderr)` callable and a `sleep(seconds)`, so the logic is
unit-tested with a stand-in fail2ban.
"""

from __future__ import annotations

import ipaddress
import json
import time

# The log sources a jail's status names: the systemd backend lists its journal matches, every file
# backend (auto, polling, pyinotify) its files.
BACKEND_KINDS = {"Journal matches": "journal", "File list": "file"}
# fail2ban's own nftables table (action.d/nftables.conf) and its set names per address family.
NFT_FAMILY = "inet"
NFT_TABLE = "f2b-table"


class Fail2banError(RuntimeError):
    pass


def _output(run, argv):
    rc, out, err = run(argv)
    return rc, (out or "") + (err or "")


def jail_list(status_text):
    """The jails of `fail2ban-client status` ("`- Jail list:\tsshd, recidive")."""
    for line in status_text.splitlines():
        if "Jail list:" in line:
            return line.split("Jail list:", 1)[1].replace(",", " ").split()
    return []


def jail_backend(status_text):
    """journal or file, from `fail2ban-client status JAIL`; None when the status names neither."""
    for line in status_text.splitlines():
        for label, kind in BACKEND_KINDS.items():
            if f"{label}:" in line:
                return kind
    return None


def jail_actions(actions_text):
    """The actions of `fail2ban-client get JAIL actions`: none for "No actions for jail JAIL"."""
    lines = actions_text.strip().splitlines()
    if not lines or lines[0].startswith("No actions") or "has the following actions" not in lines[0]:
        return []
    return [name.strip() for line in lines[1:] for name in line.split(",") if name.strip()]


def read_jails(run, expected):
    """The live state of each expected jail (name to journal/file) and the problems found, one per jail."""
    rc, text = _output(run, ["fail2ban-client", "status"])
    if rc != 0:
        live = {}
        problems = {name: f"fail2ban does not answer ({text.strip() or 'exit ' + str(rc)})" for name in expected}
        return live, problems
    running = jail_list(text)
    live, problems = {}, {}
    for name, backend in expected.items():
        if name not in running:
            live[name] = {"running": False, "backend": None, "actions": []}
            problems[name] = "not running"
            continue
        _rc, status_text = _output(run, ["fail2ban-client", "status", name])
        _rc, actions_text = _output(run, ["fail2ban-client", "get", name, "actions"])
        state = {"running": True, "backend": jail_backend(status_text), "actions": jail_actions(actions_text)}
        live[name] = state
        if not state["actions"]:
            problems[name] = "runs without any action (it would ban nobody)"
        elif state["backend"] != backend:
            problems[name] = f"reads {state['backend'] or 'an unknown source'}, not {backend}"
    return live, problems


def settle(run, expected, timeout, sleep=time.sleep, clock=time.monotonic):
    """read_jails until nothing is wrong or TIMEOUT seconds passed: fail2ban starts its jails one by one."""
    deadline = clock() + timeout
    while True:
        live, problems = read_jails(run, expected)
        if not problems or clock() >= deadline:
            return live, problems
        sleep(1)


def describe(problems):
    return "; ".join(f"jail {name} {problem}" for name, problem in sorted(problems.items()))


def nft_set_name(jail, address):
    return f"addr{'6' if ipaddress.ip_address(address).version == 6 else ''}-set-{jail}"


def nft_set_elements(run, set_name):
    """The addresses in fail2ban's nftables set SET_NAME (none when the set does not exist)."""
    rc, out, _err = run(["nft", "-j", "list", "set", NFT_FAMILY, NFT_TABLE, set_name])
    if rc != 0:
        return []
    elements = []
    for item in json.loads(out).get("nftables", []):
        for element in item.get("set", {}).get("elem", []):
            if isinstance(element, dict):  # {"elem": {"val": ADDRESS, ...}} when an element carries options
                element = element.get("elem", {}).get("val", element)
            if isinstance(element, str):
                elements.append(element)
    return elements


def _is_in(address, elements):
    wanted = ipaddress.ip_address(address)
    return any(ipaddress.ip_address(element) == wanted for element in elements if "/" not in element)


def probe_ban(run, jail, address):
    """Ban ADDRESS in JAIL, see it in the jail's nftables set, unban it, see it gone; fail naming what failed."""
    set_name = nft_set_name(jail, address)
    rc, text = _output(run, ["fail2ban-client", "get", jail, "banip"])
    if rc == 0 and address in text.split():
        raise Fail2banError(f"the probe address {address} is already banned in jail {jail}: choose another "
                            "(bruteforce_probe_address)")
    rc, text = _output(run, ["fail2ban-client", "set", jail, "banip", address])
    if rc != 0:
        raise Fail2banError(f"jail {jail} refused a test ban of {address}: {text.strip()}")
    banned = _is_in(address, nft_set_elements(run, set_name))
    rc, text = _output(run, ["fail2ban-client", "set", jail, "unbanip", address])
    if rc != 0:
        raise Fail2banError(f"jail {jail} did not lift the test ban of {address}: {text.strip()}")
    lifted = not _is_in(address, nft_set_elements(run, set_name))
    if not banned:
        raise Fail2banError(f"a test ban of {address} in jail {jail} never reached nftables "
                            f"(set {NFT_FAMILY} {NFT_TABLE} {set_name}): its bans block nobody")
    if not lifted:
        raise Fail2banError(f"the test ban of {address} stays in nftables (set {NFT_FAMILY} {NFT_TABLE} {set_name}) "
                            f"after jail {jail} lifted it")
    return {"jail": jail, "address": address, "set": f"{NFT_FAMILY} {NFT_TABLE} {set_name}",
            "blocked": True, "lifted": True}


def _check_expected(expected):
    for name in expected:
        if expected[name] not in BACKEND_KINDS.values():
            raise Fail2banError(f"jail {name}: backend must be one of {sorted(BACKEND_KINDS.values())}, "
                                f"not {expected[name]!r}")


def inspect(run, expected, timeout=0, sleep=time.sleep, clock=time.monotonic):
    """Read only: each expected jail as the server reports it, and one sentence per jail not in force.

    Waits up to TIMEOUT seconds for a fail2ban that is still starting its jails; restarts nothing.
    """
    _check_expected(expected)
    live, problems = settle(run, expected, timeout, sleep, clock)
    return {"jails": live, "problems": [f"jail {name} {problem}" for name, problem in sorted(problems.items())]}


def enforce(run, expected, probe_jail=None, probe_address=None, check_mode=False, timeout=30,
            sleep=time.sleep, clock=time.monotonic):
    """Prove that every expected jail runs with its backend and actions, restarting fail2ban once if not.

    Returns {changed, restarted, jails, probe}; raises Fail2banError naming each jail still wrong, or the probe's
    failure. In check mode nothing is restarted or banned: a needed restart is reported as a change.
    """
    _check_expected(expected)
    if probe_address is not None:
        try:
            ipaddress.ip_address(probe_address)
        except ValueError:
            raise Fail2banError(f"the probe address {probe_address!r} is not a single IP address") from None
    live, problems = settle(run, expected, timeout, sleep, clock)
    result = {"changed": False, "restarted": False, "jails": live, "probe": None, "repaired": {}}
    if problems:
        if check_mode:
            result.update(changed=True, would_restart=describe(problems))
            return result
        # A restart starts every jail and its actions afresh; a reload is what left them without.
        rc, text = _output(run, ["systemctl", "restart", "fail2ban.service"])
        if rc != 0:
            raise Fail2banError(f"{describe(problems)}; restarting fail2ban failed: {text.strip()}")
        result.update(changed=True, restarted=True, repaired=problems)
        live, still = settle(run, expected, timeout, sleep, clock)
        result["jails"] = live
        if still:
            raise Fail2banError(f"{describe(still)}, even after a restart of fail2ban: see "
                                "`journalctl -u fail2ban` and /var/log/fail2ban.log")
    if probe_jail and probe_address and not check_mode:
        result["probe"] = probe_ban(run, probe_jail, probe_address)
    return result
