"""Every role's every entry point refuses a system it is not tested on, naming it, before its first task of any other kind.

Each entry point runs on this machine against localhost with the facts of another system (extra vars outrank facts):
the first task that runs must fail with the refusal, so nothing can have changed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
# conftest.py links the repository as ansible_collections/hostguard/hosting under .build/unit.
COLLECTIONS = REPO_ROOT / ".build" / "unit"
# The least each entry point needs to get past its argument validation to its first task.
REQUIRED = {
    ("change_password", "main"): {"change_password_account": "mbox1"},
    ("firewall", "main"): {"firewall_services": {"ssh": {"sources": "any"}}},
    ("mail_submission", "main"): {"mail_submission_tls_cert": "/etc/ssl/certs/x.pem",
                                  "mail_submission_tls_key": "/etc/ssl/private/x.key"},
    ("quarantine", "main"): {"quarantine_docroots": ["/srv/www/site"]},
    ("quarantine", "restore"): {"quarantine_docroots": ["/srv/www/site"], "quarantine_restore_paths": ["/srv/www/site/x.php"]},
}
ROLES = sorted(path.name for path in (REPO_ROOT / "roles").iterdir() if (path / "tasks" / "main.yml").exists())
ENTRY_POINTS = [(role, entry) for role in ROLES
                for entry in yaml.safe_load((REPO_ROOT / "roles" / role / "meta" / "argument_specs.yml").read_text())
                ["argument_specs"]]
SYSTEMS = {
    "Ubuntu 24.04": {"distribution": "Ubuntu", "distribution_major_version": "24", "distribution_version": "24.04"},
    "Debian 11.11": {"distribution": "Debian", "distribution_major_version": "11", "distribution_version": "11.11"},
}


def run_role(tmp_path, role, entry, facts):
    playbook = tmp_path / "play.yml"
    include = {"name": f"hostguard.hosting.{role}", "tasks_from": entry}
    playbook.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False,
                                     "tasks": [{"name": "Run the entry point", "ansible.builtin.include_role": include,
                                                "vars": REQUIRED.get((role, entry), {})}]}]))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    extra = {"ansible_facts": facts, "ansible_python_interpreter": sys.executable}
    result = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", "-c", "local",
                             str(playbook), "-e", json.dumps(extra)], capture_output=True, text=True, env=env,
                            check=False)
    return result.returncode, json.loads(result.stdout)


@pytest.mark.parametrize(("role", "entry"), ENTRY_POINTS, ids=[f"{role}.{entry}" for role, entry in ENTRY_POINTS])
@pytest.mark.parametrize("system", SYSTEMS)
def test_the_role_refuses_another_system_first_naming_it(tmp_path, role, entry, system):
    rc, output = run_role(tmp_path, role, entry, SYSTEMS[system])
    assert rc != 0
    ran = [(task["task"]["name"].split(" : ", 1)[-1], result) for play in output["plays"] for task in play["tasks"]
           for result in task["hosts"].values() if not result.get("skipped")]
    # The include itself, then Ansible's own validation of the role's arguments (meta/argument_specs.yml), come first;
    # neither changes anything.
    ran = [(name, result) for name, result in ran
           if name != "Run the entry point" and not name.startswith("Validating arguments against arg spec")]
    assert len(ran) == 1, [name for name, _result in ran]
    name, result = ran[0]
    assert name == "Refuse a system the role is not tested on, naming it"
    assert result["failed"] is True
    assert result["msg"].startswith(f"{role} supports Debian 12 (bookworm) and Debian 13 (trixie) only")
    assert f"this host runs {system}." in result["msg"]


def test_every_role_is_covered_and_lists_both_debian_releases():
    assert len(ROLES) >= 9 and ("quarantine", "restore") in ENTRY_POINTS
    for role in ROLES:
        meta = (REPO_ROOT / "roles" / role / "meta" / "main.yml").read_text()
        assert "versions: [bookworm, trixie]" in meta, role
