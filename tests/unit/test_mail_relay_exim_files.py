"""mail_relay's Exim files as Ansible renders them from the role's own vars and templates.

A template that renders nothing must reach exim4_config as an empty content (the file is removed), never as
the text "None", which Exim refuses as an unknown ACL condition (what ansible-core 2.19 made of the ACL file
with every rate limit at its default, 0).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROLE = Path(__file__).resolve().parents[2] / "roles" / "mail_relay"
ACL = "acl/50_hostguard_mail_relay"
MAIN = "main/00_hostguard_mail_relay"


def rendered_files(tmp_path: Path, extra_vars: dict) -> dict:
    """mail_relay_exim_files as a play with the role's defaults, vars and templates renders it."""
    (tmp_path / "templates").symlink_to(ROLE / "templates")
    out = tmp_path / "files.json"
    playbook = tmp_path / "render.yml"
    playbook.write_text(json.dumps([{
        "hosts": "localhost",
        "gather_facts": False,
        "vars_files": [str(ROLE / "defaults" / "main.yml"), str(ROLE / "vars" / "main.yml")],
        "vars": {"mail_relay_exim_relay_hosts": "127.0.0.1 : ::1", "ansible_python_interpreter": sys.executable},
        "tasks": [{"ansible.builtin.copy": {"content": "{{ mail_relay_exim_files | to_json }}", "dest": str(out),
                                            "mode": "0600"}}],
    }]))
    env = dict(os.environ, ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    ansible_playbook = Path(sys.executable).parent / "ansible-playbook"
    result = subprocess.run([str(ansible_playbook), "-i", "localhost,", "-c", "local", str(playbook),
                             "-e", json.dumps(extra_vars)], capture_output=True, text=True, env=env, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(out.read_text())


def test_default_limits_give_no_acl_file_at_all(tmp_path):
    files = rendered_files(tmp_path, {})
    assert files[ACL] == ""
    assert "acl_smtp_predata" not in files[MAIN]
    assert "MAIN_RELAY_NETS = 127.0.0.1 : ::1" in files[MAIN]


@pytest.mark.parametrize(("limits", "acl"), [
    ({"mail_relay_user_message_rate_limit": 5}, "hostguard_relay_check_predata:"),
    ({"mail_relay_script_message_rate_limit": 5}, "hostguard_relay_check_not_smtp:"),
])
def test_a_limit_writes_its_acl(tmp_path, limits, acl):
    files = rendered_files(tmp_path, limits)
    assert acl in files[ACL].splitlines()
    assert "None" not in files[ACL]
