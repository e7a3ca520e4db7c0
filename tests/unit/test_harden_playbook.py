"""playbooks/harden.yml runs a role on a host because its <role>_enabled says so, and for no other reason.

The playbook runs on this machine against local hosts that carry the facts of a system no role supports (extra vars
outrank facts): a role that starts is refused by its first task, or by its argument validation, so nothing changes.
Each host of one run gets its own settings; the JSON callback tells which roles each host reached.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
# conftest.py links the repository as ansible_collections/hostguard/hosting under .build/unit.
COLLECTIONS = REPO_ROOT / ".build" / "unit"
HARDEN = REPO_ROOT / "playbooks" / "harden.yml"
# Each hardening role, and the setting whose presence alone ran it before <role>_enabled.
FORMER_SETTINGS = {
    "firewall": ("firewall_services", {"ssh": {"sources": "any"}}),
    "mail_submission": ("mail_submission_tls_cert", "/etc/ssl/certs/x.pem"),
    "mail_relay": ("mail_relay_trusted_networks", ["10.0.0.0/8"]),
    "bruteforce": ("bruteforce_ignore_sources", ["198.51.100.0/24"]),
    "password_policy": ("password_policy_domains", ["example.com"]),
    "account_cleanup": ("account_cleanup_mode", "report"),
}
# Roles whose settings have no default: enabled without them, the role stops at its argument validation.
REQUIRED_SETTINGS = {"firewall": ["firewall_services"],
                     "mail_submission": ["mail_submission_tls_cert", "mail_submission_tls_key"]}
UBUNTU = {"distribution": "Ubuntu", "distribution_major_version": "24", "distribution_version": "24.04"}


def run_harden(tmp_path, hosts):
    """Run harden.yml with one local host per entry of hosts (name -> host vars); return (rc, JSON output)."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": {name: dict(local, **variables)
                                                           for name, variables in hosts.items()}}}))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_FORKS="6",
               # The facts are given (Ubuntu's): gathering the least keeps the run short.
               ANSIBLE_GATHER_SUBSET="!all,!min")
    result = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), str(HARDEN),
                             "-e", json.dumps({"ansible_facts": UBUNTU})],
                            capture_output=True, text=True, env=env, check=False)
    return result.returncode, json.loads(result.stdout)


def reached(output, host):
    """(the roles the host entered, [(task, msg) of each failure], the deprecation messages it was shown)."""
    roles, failures, warnings = [], [], []
    for play in output["plays"]:
        for task in play["tasks"]:
            result = task["hosts"].get(host)
            if result is None or result.get("skipped"):
                continue
            name = task["task"]["name"]
            if " : " in name:
                role = name.split(" : ", 1)[0].removeprefix("hostguard.hosting.")
                if role not in roles:
                    roles.append(role)
            if result.get("failed"):
                failures.append((name, result.get("msg", "")))
            if name.startswith("Warn that a role runs because"):
                warnings.append(result["msg"])
    return roles, failures, warnings


def test_a_host_with_nothing_enabled_is_left_alone_even_with_the_roles_settings(tmp_path):
    with_settings = dict(FORMER_SETTINGS.values())
    with_settings.update({f"{role}_enabled": False for role in FORMER_SETTINGS})
    rc, output = run_harden(tmp_path, {"bare": {}, "settings_not_enabled": with_settings})
    assert rc == 0, output["stats"]
    for host in ("bare", "settings_not_enabled"):
        assert reached(output, host) == ([], [], []), host


def test_each_enabled_role_runs_and_stops_before_any_change(tmp_path):
    # Enabled alone: a role that needs settings fails naming them; every other is refused on the wrong system.
    rc, output = run_harden(tmp_path, {role: {f"{role}_enabled": True} for role in FORMER_SETTINGS})
    assert rc != 0
    for role in FORMER_SETTINGS:
        roles, failures, warnings = reached(output, role)
        assert roles == [role] and len(failures) == 1 and warnings == [], (role, roles, failures)
        task, msg = failures[0]
        if role in REQUIRED_SETTINGS:
            assert task.startswith(f"hostguard.hosting.{role} : Validating arguments against arg spec 'main'"), task
            assert f"missing required arguments: {', '.join(REQUIRED_SETTINGS[role])}" in msg, msg
        else:
            assert task == f"hostguard.hosting.{role} : Refuse a system the role is not tested on, naming it", task
            assert msg.startswith(f"{role} supports Debian 12 (bookworm) and Debian 13 (trixie) only"), msg
        assert output["stats"][role]["changed"] == 0


def test_a_role_run_only_by_one_of_its_settings_says_it_is_deprecated(tmp_path):
    rc, output = run_harden(tmp_path, {role: {setting: value} for role, (setting, value) in FORMER_SETTINGS.items()})
    assert rc != 0
    for role, (setting, _value) in FORMER_SETTINGS.items():
        roles, failures, warnings = reached(output, role)
        assert roles == [role], (role, roles)
        assert warnings == [f"{setting} defined without {role}_enabled: the roles run, but this is deprecated and ends"
                            f" in 2.0.0; set {role}_enabled: true where they should run."]
        assert len(failures) == 1
        assert output["stats"][role]["changed"] == 0


def test_every_role_the_playbook_runs_is_listed_here_and_each_required_setting_has_no_default():
    included = [task["ansible.builtin.include_role"]["name"].removeprefix("hostguard.hosting.")
                for task in yaml.safe_load(HARDEN.read_text())[0]["tasks"] if "ansible.builtin.include_role" in task]
    assert included == list(FORMER_SETTINGS)
    for role in included:
        options = yaml.safe_load((REPO_ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text()
                                 )["argument_specs"]["main"]["options"]
        assert f"{role}_enabled" in options, role
        required = sorted(name for name, option in options.items() if option.get("required"))
        assert required == sorted(REQUIRED_SETTINGS.get(role, [])), role
        assert all("default" not in options[name] for name in required), role
