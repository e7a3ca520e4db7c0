"""Unit tests of the lab's planning and refusals; booting is proven by molecule/baseline."""

from __future__ import annotations

import importlib
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

LAB_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(LAB_DIR))


@pytest.fixture(name="lab")
def fixture_lab(tmp_path, monkeypatch):
    monkeypatch.setenv("HOSTGUARD_LAB_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("HOSTGUARD_LAB_DATA", str(tmp_path / "data"))
    import lab as lab_module

    return importlib.reload(lab_module)


def test_host_spec_names_groups_and_flavour(lab):
    assert lab.parse_host_spec("mixed1:web,mail@exim") == {"name": "mixed1", "groups": ["web", "mail"], "flavour": "exim"}
    assert lab.parse_host_spec("web1") == {"name": "web1", "groups": [], "flavour": "postfix"}


@pytest.mark.parametrize("bad", ["Web1", "1web", "web_1", "a" * 30])
def test_host_spec_rejects_names_that_cannot_be_host_names(lab, bad):
    with pytest.raises(lab.LabError, match="host name"):
        lab.parse_host_spec(bad)


def test_plan_follows_the_address_plan(lab):
    state = lab.plan_lab("t", [lab.parse_host_spec("web1:web"), lab.parse_host_spec("mail1:mail")])
    assert state["network_ipv4"] == f"10.213.{state['index']}.0/24"
    assert [h["ipv4"] for h in state["hosts"]] == [f"10.213.{state['index']}.11", f"10.213.{state['index']}.12"]
    clients = {name: c["ipv4"] for name, c in state["clients"].items()}
    assert clients == {"jp": "198.18.0.10", "office": "198.51.100.10", "abroad": "203.0.113.10",
                       "abroad2": "203.0.113.11"}
    every_address = [state["controller_ipv4"], state["dns_ipv4"], *clients.values(),
                     *(h["ipv4"] for h in state["hosts"])]
    assert not [a for a in every_address if a.startswith("192.0.2.")], "192.0.2.0/24 is the machine's uplink"
    # Interface names must fit the kernel's 15 characters.
    links = [state["bridge"], *(h["link"] for h in state["hosts"]), *(c["link"] for c in state["clients"].values())]
    assert all(len(link) <= 15 for link in links)


def test_plan_takes_the_next_free_slot(lab):
    first = lab.plan_lab("one", [lab.parse_host_spec("h1")])
    lab.save_state(first)
    second = lab.plan_lab("two", [lab.parse_host_spec("h1")])
    assert second["index"] != first["index"]
    assert second["network_ipv4"] != first["network_ipv4"]


def test_inventory_groups_hosts_and_carries_the_lab(lab, tmp_path):
    state = lab.plan_lab("t", [lab.parse_host_spec("web1:web"), lab.parse_host_spec("mixed1:web,mail")])
    path = tmp_path / "inventory.yml"
    lab.write_inventory(state, path)
    inventory = yaml.safe_load(path.read_text())["all"]
    assert set(inventory["children"]["web"]["hosts"]) == {"web1", "mixed1"}
    assert set(inventory["children"]["mail"]["hosts"]) == {"mixed1"}
    assert inventory["children"]["web"]["hosts"]["web1"]["ansible_host"] == state["hosts"][0]["ipv4"]
    assert inventory["vars"]["hostguard_lab_clients"]["office"]["ipv4"] == "198.51.100.10"
    assert inventory["vars"]["hostguard_lab_country_table"]["MD"][0] == "203.0.113.0/24"


def test_rootfs_cache_key_follows_the_package_list(lab):
    flavour = lab.load_flavours()["postfix"]
    changed = dict(flavour, packages=[*flavour["packages"], "exim4"])
    assert lab.rootfs_key(flavour) == lab.rootfs_key(dict(flavour))
    assert lab.rootfs_key(flavour) != lab.rootfs_key(changed)


def test_every_flavour_lists_what_the_roles_act_on(lab):
    for name, flavour in lab.load_flavours().items():
        assert {"openssh-server", "nftables", "python3", "sudo", "systemd-sysv"} <= set(flavour["packages"]), name


def test_netprobe_tells_open_from_refused():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        probe = [sys.executable, str(LAB_DIR / "netprobe.py"), "tcp", "127.0.0.1"]
        opened = json.loads(subprocess.run([*probe, str(port), "--no-banner"], text=True, capture_output=True,
                                           check=True).stdout)
    refused = json.loads(subprocess.run([*probe, str(port)], text=True, capture_output=True, check=True).stdout)
    assert opened["state"] == "open"
    assert refused["state"] == "refused"
