"""The password filter and lookup, loaded by Ansible itself from the collection."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
PLAYBOOK = """
- hosts: localhost
  gather_facts: false
  tasks:
    - ansible.builtin.debug:
        msg:
          weak: "{{ 'info12345' | hostguard.hosting.password_problems('info', 'example.com') }}"
          drawn: "{{ lookup('hostguard.hosting.strong_password', length=20, account='info') }}"
"""


def test_filter_and_lookup_work_in_a_playbook(tmp_path):
    playbook = tmp_path / "password.yml"
    playbook.write_text(PLAYBOOK)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(REPO / ".build" / "unit"),
               ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json", ANSIBLE_LOCALHOST_WARNING="false")
    ansible_playbook = Path(sys.executable).with_name("ansible-playbook")
    done = subprocess.run([str(ansible_playbook), "-i", "localhost,", "-c", "local", str(playbook)],
                          text=True, capture_output=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    message = json.loads(done.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]["msg"]
    assert "contains the account name" in message["weak"] and "no symbols" in message["weak"]
    assert len(message["drawn"]) == 20 and "info" not in message["drawn"].lower()
