"""Unit tests of the lab's planning and refusals; booting is proven by molecule/baseline."""

from __future__ import annotations

import hashlib
import importlib
import json
import os
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


def test_flavours_without_a_second_stage_keep_their_cache_key(lab):
    # The key as it was before the apt-get stage existed: their built trees stay valid.
    for name, flavour in lab.load_flavours().items():
        if not flavour.get("extra_packages"):
            material = json.dumps({"flavour": flavour, "build": lab.ROOTFS_BUILD_VERSION}, sort_keys=True)
            assert lab.rootfs_key(flavour) == hashlib.sha256(material.encode()).hexdigest()[:16], name


def test_the_second_stage_is_part_of_the_key_of_flavours_that_use_it(lab, monkeypatch):
    flavour = dict(lab.load_flavours()["postfix"], extra_packages=["firewalld"])
    key = lab.rootfs_key(flavour)
    assert key != lab.rootfs_key(dict(flavour, extra_packages=["firewalld", "ipset"]))
    monkeypatch.setattr(lab, "EXTRA_PACKAGES_BUILD_VERSION", "changed")
    assert lab.rootfs_key(flavour) != key


def test_the_second_stage_installs_with_apt_get_inside_the_tree(lab, tmp_path):
    commands = lab.extra_packages_commands(tmp_path, {"extra_packages": ["firewalld", "ipset"]})
    assert all(cmd[:3] == ["chroot", str(tmp_path), "apt-get"] for cmd in commands)
    assert [cmd[3 + len(lab.APT_OPTIONS):] for cmd in commands] == [
        ["update"], ["install", "-y", "--no-install-recommends", "firewalld", "ipset"], ["clean"]]


@pytest.fixture(name="tree")
def fixture_tree(tmp_path):
    """The few parts of a debootstrapped tree the second stage touches."""
    root = tmp_path / "root"
    for part in ("etc/apt", "usr/sbin", "proc"):
        (root / part).mkdir(parents=True)
    (root / "etc/apt/sources.list").write_text("deb http://mirror.example/debian bookworm main\n")
    (root / "etc/resolv.conf").write_text("nameserver 10.255.255.53\n")
    return root


def fake_commands(lab, monkeypatch, root, fail_on=None):
    """Record the commands of the second stage, and what policy-rc.d said while each ran; run none."""
    seen = []

    def fake_run(cmd, **_kwargs):
        policy = root / "usr/sbin/policy-rc.d"
        seen.append((cmd, policy.read_text() if policy.exists() else None, os.access(policy, os.X_OK)))
        return subprocess.CompletedProcess(cmd, 100 if fail_on and fail_on in cmd else 0)

    monkeypatch.setattr(lab.subprocess, "run", fake_run)
    mounts = []
    monkeypatch.setattr(lab, "run", lambda cmd, **_kwargs: mounts.append(cmd))
    monkeypatch.setattr(lab, "unmount", lambda path: mounts.append(["umount", path]))
    return seen, mounts


def test_the_second_stage_starts_no_service_and_leaves_the_tree_clean(lab, monkeypatch, tree, tmp_path):
    seen, mounts = fake_commands(lab, monkeypatch, tree)
    with open(tmp_path / "build.log", "w") as build_log:
        lab.install_extra_packages(tree, {"suite": "bookworm", "extra_packages": ["firewalld"]},
                                   "http://mirror.example/debian", build_log)
    assert [cmd for cmd, _policy, _executable in seen] == lab.extra_packages_commands(
        tree, {"extra_packages": ["firewalld"]})
    # While apt-get ran, invoke-rc.d was told to start nothing (exit 101).
    assert all(policy and policy.rstrip().endswith("exit 101") and executable for _cmd, policy, executable in seen)
    assert mounts == [["mount", "-t", "proc", "proc", str(tree / "proc")], ["umount", str(tree / "proc")]]
    assert not (tree / "usr/sbin/policy-rc.d").exists()
    assert (tree / "etc/resolv.conf").read_text() == "nameserver 10.255.255.53\n"
    assert "apt-get" in (tmp_path / "build.log").read_text()


def test_a_failing_apt_get_fails_the_build_and_still_cleans_up(lab, monkeypatch, tree, tmp_path):
    _seen, mounts = fake_commands(lab, monkeypatch, tree, fail_on="install")
    with open(tmp_path / "build.log", "w") as build_log, pytest.raises(lab.LabError, match="install"):
        lab.install_extra_packages(tree, {"suite": "bookworm", "extra_packages": ["firewalld"]},
                                   "http://mirror.example/debian", build_log)
    assert mounts[-1] == ["umount", str(tree / "proc")]
    assert not (tree / "usr/sbin/policy-rc.d").exists()


def test_a_resolv_conf_link_of_the_tree_is_put_back(lab, monkeypatch, tree, tmp_path):
    (tree / "etc/resolv.conf").unlink()
    (tree / "etc/resolv.conf").symlink_to("../run/systemd/resolve/stub-resolv.conf")
    fake_commands(lab, monkeypatch, tree)
    with open(tmp_path / "build.log", "w") as build_log:
        lab.install_extra_packages(tree, {"suite": "bookworm", "extra_packages": ["firewalld"]},
                                   "http://mirror.example/debian", build_log)
    assert os.readlink(tree / "etc/resolv.conf") == "../run/systemd/resolve/stub-resolv.conf"


def test_the_second_stage_uses_the_mirror_debootstrap_used_when_the_tree_names_none(lab, monkeypatch, tree, tmp_path):
    (tree / "etc/apt/sources.list").unlink()
    fake_commands(lab, monkeypatch, tree)
    with open(tmp_path / "build.log", "w") as build_log:
        lab.install_extra_packages(tree, {"suite": "bookworm", "extra_packages": ["firewalld"]},
                                   "http://mirror.example/debian", build_log)
    assert (tree / "etc/apt/sources.list").read_text() == "deb http://mirror.example/debian bookworm main\n"


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
