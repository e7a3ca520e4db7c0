"""The hostguard lab: real Debian hosts with systemd, on a private network.

Each host is a systemd-nspawn container booted from an overlayfs over a cached
debootstrap root file system, in a network namespace of its own, attached by a
veth to a lab bridge. Client namespaces on the same bridge carry the source
addresses that stand for the outside world (DESIGN.md's address plan), and a
DNS namespace serves the lab's test zones. The controller (this machine's root
namespace) reaches the hosts over the bridge and nothing else: the lab adds no
routes to the root namespace.

Commands:
  up      boot a lab and write its Ansible inventory
  down    stop a lab and remove everything it made (also after a crash)
  status  show running labs
  sweep   remove leftovers of crashed labs that no state file records
  client  run a command from a client namespace
  rootfs  build (or reuse) a cached root file system

Everything the lab makes is named after its index (hg<N>...) and recorded in
/run/hostguard-lab/<name>/state.json before it is made, so `down` can always
find and remove it.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

LAB_DIR = Path(__file__).resolve().parent
FLAVOURS_FILE = LAB_DIR / "flavours.yml"
DNS_SERVER = LAB_DIR / "dns_server.py"
DNS_ZONES = LAB_DIR / "dns_zones.yml"
STATE_ROOT = Path(os.environ.get("HOSTGUARD_LAB_STATE", "/run/hostguard-lab"))
DATA_ROOT = Path(os.environ.get("HOSTGUARD_LAB_DATA", "/var/lib/hostguard-lab"))
# Bumped whenever the build steps below change, so cached root file systems
# built by older steps are not reused.
ROOTFS_BUILD_VERSION = "3"
# The same for the second stage (extra_packages, installed with apt-get inside
# the new tree): bumped when a change to install_extra_packages changes what it builds.
EXTRA_PACKAGES_BUILD_VERSION = "1"
# Release files of a pinned or slow mirror may be past their Valid-Until;
# debootstrap does not check it, so the second stage does not either.
APT_OPTIONS = ["-o", "Acquire::Check-Valid-Until=false", "-o", "Acquire::Check-Date=false"]
MAX_LABS = 50
# Units that have nothing to do in a booted copy of a prepared image (nspawn
# mounts the root file system; packages created their users at build time),
# each seen failing a boot now and then on a loaded machine.
CONTAINER_MASKED_UNITS = ["systemd-remount-fs.service", "systemd-sysusers.service"]
BOOT_TIMEOUT = 120

# The address plan (DESIGN.md). 192.0.2.0/24 is this machine's uplink: never used.
LAB_NET_V4 = "10.213.{index}.0/24"
LAB_NET_V6 = "fdbb:6a7:{index}::/64"
CLIENT_NETWORKS = {
    # name: (IPv4 network, IPv6 network, what it stands for)
    "jp": ("198.18.0.0/24", "2001:db8:18::/64", "domestic customers (JP)"),
    "office": ("198.51.100.0/24", "2001:db8:51::/64", "the admin office"),
    "abroad": ("203.0.113.0/24", "2001:db8:203::/64", "abroad (MD)"),
}
DEFAULT_CLIENTS = {
    "jp": ("jp", 10),
    "office": ("office", 10),
    "abroad": ("abroad", 10),
    "abroad2": ("abroad", 11),
}
COUNTRY_TABLE = {
    "JP": ["198.18.0.0/24", "2001:db8:18::/64"],
    "MD": ["203.0.113.0/24", "2001:db8:203::/64"],
}
NSPAWN_CAPABILITIES = "CAP_NET_ADMIN,CAP_NET_RAW,CAP_LINUX_IMMUTABLE"
SSH_OPTIONS = [
    "-o", "StrictHostKeyChecking=no",
    "-o", "UserKnownHostsFile=/dev/null",
    "-o", "LogLevel=ERROR",
    "-o", "ConnectTimeout=5",
    "-o", "BatchMode=yes",
]
HOST_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,20}$")
LAB_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,40}$")


class LabError(Exception):
    """A problem the user can act on; printed as one line."""


def log(message: str) -> None:
    print(f"lab: {message}", file=sys.stderr, flush=True)


def run(cmd: list[str], check: bool = True, capture: bool = False, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, text=True, capture_output=capture or check, check=False, **kwargs)
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout or "").strip().splitlines()
        raise LabError(f"{' '.join(cmd)} failed: {detail[-1] if detail else 'exit ' + str(result.returncode)}")
    return result


# --------------------------------------------------------------------------- preflight

REQUIRED_COMMANDS = {
    "systemd-nspawn": "apt-get install systemd-container",
    "debootstrap": "apt-get install debootstrap",
    "ip": "apt-get install iproute2",
    "ssh": "apt-get install openssh-client",
    "ssh-keygen": "apt-get install openssh-client",
    "mount": "apt-get install mount",
}


def preflight() -> None:
    """Refuse at once, in one line, where the lab cannot run."""
    if os.geteuid() != 0:
        raise LabError("the lab needs root (it creates network namespaces, mounts and containers): run as root")
    for command, remedy in REQUIRED_COMMANDS.items():
        if shutil.which(command) is None:
            raise LabError(f"{command} not found on PATH: {remedy}")
    if "overlay" not in Path("/proc/filesystems").read_text() and run(["modprobe", "overlay"], check=False).returncode:
        raise LabError("the kernel has no overlay file system: load it with 'modprobe overlay'")


# --------------------------------------------------------------------------- root file systems

def load_flavours() -> dict:
    import yaml  # the lab runs from the project's virtualenv, which has PyYAML

    return yaml.safe_load(FLAVOURS_FILE.read_text())


def rootfs_key(flavour: dict) -> str:
    material = {"flavour": flavour, "build": ROOTFS_BUILD_VERSION}
    if flavour.get("extra_packages"):
        # Only flavours that use the apt-get stage hash its steps, so the others keep their cache.
        material["extra_build"] = EXTRA_PACKAGES_BUILD_VERSION
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


def debian_mirror() -> str:
    """The Debian mirror this machine's apt uses, so the lab needs no address of its own."""
    override = os.environ.get("HOSTGUARD_LAB_MIRROR")
    if override:
        return override
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:"):
                uri = line.split()[1]
                if "security" not in uri:
                    return uri
    legacy = Path("/etc/apt/sources.list")
    if legacy.exists():
        for line in legacy.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and "security" not in parts[1]:
                return parts[1]
    raise LabError("no Debian mirror found in apt's sources: set HOSTGUARD_LAB_MIRROR")


def ensure_rootfs(flavour_name: str) -> Path:
    """Return the cached root file system of a flavour, building it once."""
    flavours = load_flavours()
    if flavour_name not in flavours:
        raise LabError(f"unknown flavour '{flavour_name}': known are {', '.join(sorted(flavours))}")
    flavour = flavours[flavour_name]
    target = DATA_ROOT / "rootfs" / f"{flavour_name}-{rootfs_key(flavour)}"
    if (target / ".hostguard-complete").exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{flavour_name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two labs booting at once build it once
        if (target / ".hostguard-complete").exists():
            return target
        building = target.with_name(target.name + ".building")
        unmount(str(building / "proc"))  # left mounted by a build that was killed in its second stage
        shutil.rmtree(building, ignore_errors=True)
        log(f"building the '{flavour_name}' root file system (about a minute, cached afterwards)")
        started = time.monotonic()
        mirror = debian_mirror()
        cmd = [
            "debootstrap", "--variant=minbase",
            "--include=" + ",".join(flavour["packages"]),
            flavour["suite"], str(building), mirror,
        ]
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        log_path = target.parent / f"{flavour_name}.build.log"
        with open(log_path, "w") as build_log:
            result = subprocess.run(cmd, stdout=build_log, stderr=subprocess.STDOUT, env=env, check=False)
            if result.returncode == 0 and flavour.get("extra_packages"):
                try:
                    install_extra_packages(building, flavour, mirror, build_log)
                except LabError:
                    shutil.rmtree(building, ignore_errors=True)
                    raise LabError(f"installing {' '.join(flavour['extra_packages'])} failed; see {log_path}")
        if result.returncode != 0:
            shutil.rmtree(building, ignore_errors=True)
            raise LabError(f"debootstrap failed; see {log_path}")
        prepare_rootfs(building, flavour)
        (building / ".hostguard-complete").write_text(json.dumps(flavour, sort_keys=True) + "\n")
        # Older builds of the same flavour are left for `rootfs --prune`.
        building.rename(target)
        log(f"root file system '{flavour_name}' built in {time.monotonic() - started:.0f} s: {target}")
    return target


def extra_packages_commands(root: Path, flavour: dict) -> list[list[str]]:
    """The apt-get commands of the second build stage, run inside the new tree."""
    apt = ["chroot", str(root), "apt-get", *APT_OPTIONS]
    return [
        [*apt, "update"],
        [*apt, "install", "-y", "--no-install-recommends", *flavour["extra_packages"]],
        [*apt, "clean"],
    ]


def install_extra_packages(root: Path, flavour: dict, mirror: str, build_log) -> None:
    """Second build stage: install a flavour's extra_packages with apt-get inside the tree.

    Some packages fail to configure inside debootstrap's own pass (polkitd,
    which firewalld needs); apt-get in the finished tree, with /proc mounted,
    installs them as on any Debian host. policy-rc.d keeps the new services
    from starting in the build machine; they start when a lab host boots.
    """
    sources = root / "etc/apt/sources.list"
    if not sources.exists() or not sources.read_text().strip():
        sources.write_text(f"deb {mirror} {flavour['suite']} main\n")
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\n# Written by the lab's build: no service starts in the build chroot.\nexit 101\n")
    policy.chmod(0o755)
    resolv = root / "etc/resolv.conf"
    saved_link = os.readlink(resolv) if resolv.is_symlink() else None
    saved_resolv = resolv.read_bytes() if saved_link is None and resolv.is_file() else None
    if Path("/etc/resolv.conf").exists():  # the tree resolves the mirror as this machine does
        resolv.unlink(missing_ok=True)
        shutil.copyfile("/etc/resolv.conf", resolv)
    proc = root / "proc"
    proc.mkdir(exist_ok=True)
    run(["mount", "-t", "proc", "proc", str(proc)])
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive", LC_ALL="C.UTF-8")
    try:
        for cmd in extra_packages_commands(root, flavour):
            build_log.write(f"lab: {' '.join(cmd)}\n")
            build_log.flush()
            result = subprocess.run(cmd, stdout=build_log, stderr=subprocess.STDOUT, env=env, check=False)
            if result.returncode != 0:
                raise LabError(f"{' '.join(cmd)} failed with exit {result.returncode}")
    finally:
        unmount(str(proc))
        policy.unlink(missing_ok=True)
        if saved_link is not None:
            resolv.unlink(missing_ok=True)
            resolv.symlink_to(saved_link)
        elif saved_resolv is not None:
            resolv.write_bytes(saved_resolv)


def prepare_rootfs(root: Path, flavour: dict) -> None:
    """Make a fresh debootstrap tree boot cleanly as a lab host."""
    for unit in flavour.get("disabled_services", []):
        for wants in (root / "etc/systemd/system").glob("*.wants"):
            with contextlib.suppress(FileNotFoundError):
                (wants / unit).unlink()
    for unit in CONTAINER_MASKED_UNITS:
        masked = root / "etc/systemd/system" / unit
        masked.unlink(missing_ok=True)
        masked.symlink_to("/dev/null")
    # Each host gets its own machine-id and host name at boot from its overlay.
    (root / "etc/machine-id").write_text("")
    (root / "etc/hostname").write_text("localhost\n")
    apt_cache = root / "var/cache/apt/archives"
    for deb in apt_cache.glob("*.deb"):
        deb.unlink()


# --------------------------------------------------------------------------- state

def state_dir(name: str) -> Path:
    return STATE_ROOT / name


def load_state(name: str) -> dict | None:
    path = state_dir(name) / "state.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())


def save_state(state: dict) -> None:
    directory = state_dir(state["name"])
    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / "state.json.tmp"
    tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    tmp.replace(directory / "state.json")


def all_states() -> list[dict]:
    if not STATE_ROOT.exists():
        return []
    states = []
    for path in sorted(STATE_ROOT.glob("*/state.json")):
        with contextlib.suppress(ValueError, OSError):
            states.append(json.loads(path.read_text()))
    return states


def allocate_index() -> int:
    used = {state["index"] for state in all_states()}
    used |= {int(m.group(1)) for m in (re.match(r"hgbr(\d+)$", link) for link in list_links()) if m}
    for index in range(MAX_LABS):
        if index not in used:
            return index
    raise LabError(f"all {MAX_LABS} lab slots are in use: stop one with 'lab.py down --name NAME'")


def list_links() -> list[str]:
    result = run(["ip", "-o", "link", "show"], check=False, capture=True)
    return [line.split(":")[1].strip().split("@")[0] for line in result.stdout.splitlines() if ":" in line]


def list_netns() -> list[str]:
    result = run(["ip", "netns", "list"], check=False, capture=True)
    return [line.split()[0] for line in result.stdout.splitlines() if line.strip()]


# --------------------------------------------------------------------------- network

def netns_exec(netns: str, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    return run(["ip", "netns", "exec", netns, *cmd], check=check)


def address(network: str, host_number: int) -> str:
    return str(ipaddress.ip_network(network)[host_number])


def add_endpoint(state: dict, netns: str, link: str, ipv4: str, ipv6: str, onlink_routes: list[str]) -> None:
    """A namespace with a veth on the lab bridge, its addresses and on-link routes."""
    state["netns"].append(netns)
    state["links"].append(link)
    save_state(state)
    run(["ip", "netns", "add", netns])
    run(["ip", "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", netns])
    run(["ip", "link", "set", link, "master", state["bridge"], "up"])
    netns_exec(netns, "ip", "link", "set", "lo", "up")
    # Host addresses (/32, /128) plus on-link routes: every lab network is one
    # hop away on the bridge, with no router and nothing routed beyond it.
    netns_exec(netns, "ip", "addr", "add", f"{ipv4}/32", "dev", "eth0")
    netns_exec(netns, "ip", "-6", "addr", "add", f"{ipv6}/128", "dev", "eth0", "nodad")
    netns_exec(netns, "ip", "link", "set", "eth0", "up")
    for route in onlink_routes:
        family = "-6" if ":" in route else "-4"
        netns_exec(netns, "ip", family, "route", "add", route, "dev", "eth0")


def create_bridge(state: dict) -> None:
    bridge = state["bridge"]
    state["links"].append(bridge)
    save_state(state)
    run(["ip", "link", "add", bridge, "type", "bridge"])
    # The controller's addresses on the lab network: only the lab's own /24 and
    # /64 become reachable from the root namespace, nothing else is routed.
    run(["ip", "addr", "add", f"{state['controller_ipv4']}/24", "dev", bridge])
    run(["ip", "-6", "addr", "add", f"{state['controller_ipv6']}/64", "dev", bridge, "nodad"])
    run(["ip", "link", "set", bridge, "up"])


# --------------------------------------------------------------------------- hosts

def ssh_key() -> Path:
    key = DATA_ROOT / "ssh" / "id_ed25519"
    if not key.exists():
        key.parent.mkdir(parents=True, exist_ok=True)
        key.parent.chmod(0o700)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hostguard-lab", "-f", str(key)])
    return key


def prepare_overlay(state: dict, host: dict, lower: Path) -> None:
    base = Path(host["overlay"])
    for part in ("upper", "work", "merged"):
        (base / part).mkdir(parents=True, exist_ok=True)
    state["mounts"].append(str(base / "merged"))
    save_state(state)
    run(["mount", "-t", "overlay", "overlay", "-o",
         f"lowerdir={lower},upperdir={base / 'upper'},workdir={base / 'work'}", str(base / "merged")])
    root = base / "merged"
    (root / "etc/hostname").write_text(host["name"] + "\n")
    (root / "etc/machine-id").write_text(uuid.uuid4().hex + "\n")
    (root / "etc/hosts").write_text(
        f"127.0.0.1\tlocalhost\n{host['ipv4']}\t{host['name']}.lab.example {host['name']}\n"
        f"::1\tlocalhost ip6-localhost ip6-loopback\n"
    )
    resolv = root / "etc/resolv.conf"
    if resolv.is_symlink() or resolv.exists():
        resolv.unlink()
    resolv.write_text(f"nameserver {state['dns_ipv4']}\noptions timeout:1 attempts:1\n")
    fqdn = f"{host['name']}.lab.example"
    mailname = root / "etc/mailname"
    if mailname.exists():
        mailname.write_text(fqdn + "\n")
    postfix_main = root / "etc/postfix/main.cf"
    if postfix_main.exists():  # debootstrap baked the build machine's name in
        postfix_main.write_text(re.sub(r"(?m)^myhostname = .*$", f"myhostname = {fqdn}", postfix_main.read_text()))
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, exist_ok=True)
    (ssh_dir / "authorized_keys").write_text(Path(str(ssh_key()) + ".pub").read_text())
    (ssh_dir / "authorized_keys").chmod(0o600)


def cgroup_roots() -> list[Path]:
    """The cgroup hierarchies a container's systemd uses: name=systemd (v1) and the unified one."""
    base = Path("/sys/fs/cgroup")
    if (base / "cgroup.procs").exists():  # a pure cgroup2 machine
        return [base]
    return [root for root in (base / "systemd", base / "unified") if (root / "cgroup.procs").exists()]


def cgroup_dirs(state: dict, host: dict) -> list[str]:
    return [str(root / "hostguard-lab" / f"{state['prefix']}-{host['name']}") for root in cgroup_roots()]


def join_cgroups(directories: list[str]) -> None:
    """Run in the child before exec: give the container a cgroup of its own.

    With --keep-unit, nspawn puts the container in the cgroup it was started
    in. Containers sharing one cgroup fight over its subtree (units failing at
    boot with 'Failed to attach to cgroup ... No such device').
    """
    for directory in directories:
        os.makedirs(directory, exist_ok=True)
        with open(os.path.join(directory, "cgroup.procs"), "w", encoding="ascii") as procs:
            procs.write(str(os.getpid()))


def remove_cgroups(directories: list[str]) -> None:
    for directory in directories:
        for sub in sorted(Path(directory).glob("**/"), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                sub.rmdir()
        with contextlib.suppress(OSError):  # the shared parent, once the last lab is gone
            Path(directory).parent.rmdir()


def boot_host(state: dict, host: dict) -> None:
    merged = str(Path(host["overlay"]) / "merged")
    log_path = state_dir(state["name"]) / f"{host['name']}.console.log"
    cmd = [
        "systemd-nspawn", "--quiet", "-D", merged, "--boot",
        # PID 1 of the machines that run the lab need not be systemd.
        "--register=no", "--keep-unit",
        f"--network-namespace-path=/run/netns/{host['netns']}",
        f"--capability={NSPAWN_CAPABILITIES}",
        # The controller's resolver is unreachable from the lab.
        "--resolv-conf=off", "--timezone=off", "--link-journal=no",
        "--console=read-only", f"--machine={state['prefix']}-{host['name']}",
    ]
    cgroups = cgroup_dirs(state, host)
    state["cgroups"].extend(cgroups)
    save_state(state)
    with open(log_path, "w") as console:
        process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=console, stderr=subprocess.STDOUT,
                                   start_new_session=True, preexec_fn=lambda: join_cgroups(cgroups))
    state["processes"].append({"pid": process.pid, "start": process_start_time(process.pid), "what": host["name"]})
    save_state(state)


def start_dns(state: dict) -> None:
    if not DNS_SERVER.exists():
        log("no tests/lab/dns_server.py: the lab runs without its DNS server")
        return
    log_path = state_dir(state["name"]) / "dns.log"
    cmd = ["ip", "netns", "exec", state["dns_netns"], sys.executable, str(DNS_SERVER),
           "--zones", str(DNS_ZONES), "--runtime-listings", state["dns_listings"],
           "--listen", f"{state['dns_ipv4']}:53", "--listen", f"[{state['dns_ipv6']}]:53"]
    with open(log_path, "w") as output:
        process = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    state["processes"].append({"pid": process.pid, "start": process_start_time(process.pid), "what": "dns"})
    save_state(state)


def ssh(state: dict, host: dict, command: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["ssh", "-i", state["ssh_key"], *SSH_OPTIONS, f"root@{host['ipv4']}", command],
        text=True, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL, check=False,
    )


def wait_until_running(state: dict, host: dict, deadline: float) -> None:
    """Wait for sshd, then for systemd to finish booting with no failed unit."""
    while True:
        if time.monotonic() > deadline:
            raise LabError(f"host {host['name']} did not accept SSH within {BOOT_TIMEOUT} s; "
                           f"console: {state_dir(state['name']) / (host['name'] + '.console.log')}")
        with contextlib.suppress(OSError), socket.create_connection((host["ipv4"], 22), timeout=1):
            break
        time.sleep(0.3)
    remaining = max(5, deadline - time.monotonic())
    result = ssh(state, host, "systemctl is-system-running --wait", timeout=remaining)
    status = result.stdout.strip()
    if status != "running":
        failed = [line.split()[0] for line in
                  ssh(state, host, "systemctl --failed --no-legend --plain").stdout.splitlines() if line.strip()]
        kept = DATA_ROOT / "failed-boots" / f"{state['name']}-{host['name']}-{time.strftime('%Y%m%d-%H%M%S')}.log"
        kept.parent.mkdir(parents=True, exist_ok=True)
        journal = ssh(state, host, "journalctl -b --no-pager -o short-monotonic")
        kept.write_text(journal.stdout)
        raise LabError(f"host {host['name']} booted '{status}'; failed units: {' '.join(failed) or 'none'}; "
                       f"its journal is kept in {kept}")


# --------------------------------------------------------------------------- processes

def process_start_time(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def process_alive(entry: dict) -> bool:
    return entry["start"] is not None and process_start_time(entry["pid"]) == entry["start"]


def children_of(pid: int) -> list[int]:
    children = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            children += [int(c) for c in (task / "children").read_text().split()]
    return children


def stop_processes(entries: list[dict], grace: float = 20) -> None:
    """SIGTERM (nspawn halts its container cleanly), then SIGKILL what is left.

    Killing nspawn alone would orphan the container, so a container whose nspawn
    does not end in time is killed through its PID 1, which ends its whole PID
    namespace.
    """
    alive = [e for e in entries if process_alive(e)]
    for entry in alive:
        with contextlib.suppress(ProcessLookupError):
            os.kill(entry["pid"], signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(process_alive(e) for e in alive):
        time.sleep(0.2)
    for entry in alive:
        if process_alive(entry):
            for child in children_of(entry["pid"]):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(entry["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(process_alive(e) for e in alive):
        time.sleep(0.2)


# --------------------------------------------------------------------------- up / down

def parse_host_spec(spec: str) -> dict:
    """name[:group,group][@flavour], e.g. web1:web or exim1:mail@exim."""
    flavour = "postfix"
    if "@" in spec:
        spec, flavour = spec.split("@", 1)
    name, _separator, groups = spec.partition(":")
    if not HOST_NAME_RE.match(name):
        raise LabError(f"host name '{name}' must be lower-case letters, digits and '-', starting with a letter")
    return {"name": name, "groups": [g for g in groups.split(",") if g], "flavour": flavour}


def plan_lab(name: str, host_specs: list[dict]) -> dict:
    index = allocate_index()
    prefix = f"hg{index}"
    net_v4 = LAB_NET_V4.format(index=index)
    net_v6 = LAB_NET_V6.format(index=index)
    client_routes = [net for v4, v6, _meaning in CLIENT_NETWORKS.values() for net in (v4, v6)]
    state = {
        "name": name,
        "index": index,
        "prefix": prefix,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "network_ipv4": net_v4,
        "network_ipv6": net_v6,
        "controller_ipv4": address(net_v4, 1),
        "controller_ipv6": address(net_v6, 1),
        "dns_ipv4": address(net_v4, 2),
        "dns_ipv6": address(net_v6, 2),
        "dns_netns": f"{prefix}-dns",
        # listings tests add while the lab runs (tests/molecule/labtools.py, Lab.list_in_dns)
        "dns_listings": str(state_dir(name) / "dns-listings.yml"),
        "bridge": f"hgbr{index}",
        "ssh_key": str(ssh_key()),
        "country_table": COUNTRY_TABLE,
        "client_routes": client_routes,
        "hosts": [],
        "clients": {},
        "netns": [],
        "links": [],
        "mounts": [],
        "processes": [],
        "cgroups": [],
        "overlay_root": str(DATA_ROOT / "run" / name),
    }
    for number, spec in enumerate(host_specs):
        state["hosts"].append({
            **spec,
            "ipv4": address(net_v4, 11 + number),
            "ipv6": address(net_v6, 11 + number),
            "netns": f"{prefix}-{spec['name']}",
            "link": f"{prefix}h{number}",
            "overlay": str(DATA_ROOT / "run" / name / spec["name"]),
        })
    for number, (client, (network, host_number)) in enumerate(DEFAULT_CLIENTS.items()):
        v4, v6, meaning = CLIENT_NETWORKS[network]
        state["clients"][client] = {
            "network": network,
            "meaning": meaning,
            "ipv4": address(v4, host_number),
            "ipv6": address(v6, host_number),
            "netns": f"{prefix}-c-{client}",
            "link": f"{prefix}c{number}",
        }
    return state


def lab_up(name: str, host_specs: list[dict], inventory: Path | None, json_out: Path | None) -> dict:
    preflight()
    if load_state(name):
        raise LabError(f"a lab named '{name}' is already up: 'lab.py down --name {name}' first")
    names = [h["name"] for h in host_specs]
    if len(set(names)) != len(names):
        raise LabError(f"host names must be unique: {' '.join(names)}")
    lowers = {spec["flavour"]: ensure_rootfs(spec["flavour"]) for spec in host_specs}
    STATE_ROOT.mkdir(parents=True, exist_ok=True)
    with open(STATE_ROOT / ".allocate.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two labs booting at once take different slots
        state = plan_lab(name, host_specs)
        save_state(state)
    started = time.monotonic()
    try:
        create_bridge(state)
        lab_routes = [state["network_ipv4"], state["network_ipv6"]]
        add_endpoint(state, state["dns_netns"], f"{state['prefix']}d", state["dns_ipv4"], state["dns_ipv6"],
                     lab_routes + state["client_routes"])
        start_dns(state)
        for client in state["clients"].values():
            add_endpoint(state, client["netns"], client["link"], client["ipv4"], client["ipv6"], lab_routes)
        for host in state["hosts"]:
            add_endpoint(state, host["netns"], host["link"], host["ipv4"], host["ipv6"],
                         lab_routes + state["client_routes"])
            prepare_overlay(state, host, lowers[host["flavour"]])
            boot_host(state, host)
        deadline = time.monotonic() + BOOT_TIMEOUT
        for host in state["hosts"]:
            wait_until_running(state, host, deadline)
    except BaseException:
        log("lab did not come up; removing what it made")
        lab_down(name, quiet=True)
        raise
    log(f"lab '{name}' up in {time.monotonic() - started:.1f} s: "
        + ", ".join(f"{h['name']} {h['ipv4']}" for h in state["hosts"]))
    if inventory:
        write_inventory(state, inventory)
        state["inventory"] = str(inventory)
        save_state(state)
    if json_out:
        json_out.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
    return state


def lab_down(name: str, quiet: bool = False) -> None:
    state = load_state(name)
    if state is None:
        if not quiet:
            log(f"no lab named '{name}' is up")
        return
    stop_processes(state["processes"])
    remove_cgroups(state.get("cgroups", []))
    for mount in reversed(state["mounts"]):
        unmount(mount)
    for netns in state["netns"]:
        if netns in list_netns():
            run(["ip", "netns", "del", netns], check=False)
    existing = set(list_links())
    for link in state["links"]:
        if link in existing:  # a veth goes with its namespace; the bridge stays until now
            run(["ip", "link", "del", link], check=False, capture=True)
    shutil.rmtree(state["overlay_root"], ignore_errors=True)
    shutil.rmtree(state_dir(name), ignore_errors=True)
    if not quiet:
        log(f"lab '{name}' is down")


def unmount(path: str) -> None:
    if not is_mounted(path):
        return
    if run(["umount", path], check=False).returncode != 0:
        # A process that escaped the container may still hold it: detach it.
        run(["umount", "--lazy", path], check=False)


def is_mounted(path: str) -> bool:
    with open("/proc/self/mounts") as mounts:
        return any(line.split()[1] == path for line in mounts)


def sweep_orphans() -> list[str]:
    """Remove lab leftovers that no state file records (a crash mid-`up`)."""
    removed = []
    known = {s["name"] for s in all_states()}
    run_root = DATA_ROOT / "run"
    with open("/proc/self/mounts") as mounts:
        lab_mounts = [line.split()[1] for line in mounts if line.split()[1].startswith(str(run_root) + "/")]
    for mount in lab_mounts:
        if mount.split("/")[len(run_root.parts)] not in known:
            for proc in Path("/proc").glob("[0-9]*"):
                with contextlib.suppress(OSError):
                    if mount.encode() in (proc / "cmdline").read_bytes():
                        stop_processes([{"pid": int(proc.name), "start": process_start_time(int(proc.name)),
                                         "what": "orphan"}])
            unmount(mount)
            removed.append(f"mount {mount}")
    known_prefixes = {s["prefix"] for s in all_states()}
    for netns in list_netns():
        m = re.match(r"^(hg\d+)-", netns)
        if m and m.group(1) not in known_prefixes:
            run(["ip", "netns", "del", netns], check=False)
            removed.append(f"netns {netns}")
    for link in list_links():
        m = re.match(r"^(?:hgbr(\d+)|hg(\d+)[hcd]\d*)$", link)
        if m and f"hg{m.group(1) or m.group(2)}" not in known_prefixes:
            run(["ip", "link", "del", link], check=False)
            removed.append(f"link {link}")
    if run_root.exists():
        for leftover in run_root.iterdir():
            still_mounted = any(m.startswith(str(leftover) + "/") and is_mounted(m) for m in lab_mounts)
            if leftover.name not in known and not still_mounted:
                shutil.rmtree(leftover, ignore_errors=True)
                removed.append(f"dir {leftover}")
    return removed


def write_inventory(state: dict, path: Path) -> None:
    import yaml

    groups: dict[str, dict] = {}
    for host in state["hosts"]:
        host_vars = {
            "ansible_host": host["ipv4"],
            "hostguard_lab_ipv4": host["ipv4"],
            "hostguard_lab_ipv6": host["ipv6"],
            "hostguard_lab_netns": host["netns"],
            "hostguard_lab_flavour": host["flavour"],
        }
        for group in host["groups"] or ["ungrouped"]:
            groups.setdefault(group, {"hosts": {}})["hosts"][host["name"]] = host_vars
    inventory = {
        "all": {
            "vars": {
                "ansible_user": "root",
                "ansible_ssh_private_key_file": state["ssh_key"],
                "ansible_ssh_common_args": " ".join(SSH_OPTIONS[:6]),
                "ansible_python_interpreter": "/usr/bin/python3",
                # One SSH exchange a task instead of four (no temporary module file): the lab's hosts share the
                # machine's cores with the controller, and every scenario runs its play three times.
                "ansible_pipelining": True,
                "hostguard_lab_name": state["name"],
                "hostguard_lab_controller_ipv4": state["controller_ipv4"],
                "hostguard_lab_controller_ipv6": state["controller_ipv6"],
                "hostguard_lab_dns_ipv4": state["dns_ipv4"],
                "hostguard_lab_clients": {
                    name: {k: c[k] for k in ("ipv4", "ipv6", "netns", "network", "meaning")}
                    for name, c in state["clients"].items()
                },
                "hostguard_lab_country_table": state["country_table"],
            },
            "children": groups,
        }
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("---\n# Written by tests/lab/lab.py for the lab '" + state["name"] + "'.\n"
                    + yaml.safe_dump(inventory, sort_keys=False))


# --------------------------------------------------------------------------- CLI

def cmd_up(args: argparse.Namespace) -> int:
    if not LAB_NAME_RE.match(args.name):
        raise LabError(f"lab name '{args.name}' must be lower-case letters, digits, '.', '_' or '-'")
    specs = [parse_host_spec(s) for s in args.host] or [parse_host_spec("host1")]
    state = lab_up(args.name, specs, args.inventory, args.json)
    if args.inventory:
        log(f"inventory: {args.inventory}")
    return 0 if state else 1


def cmd_down(args: argparse.Namespace) -> int:
    preflight()
    names = [s["name"] for s in all_states()] if args.all else [args.name]
    for name in names:
        lab_down(name)
    if args.all:
        for item in sweep_orphans():
            log(f"removed leftover {item}")
    return 0


def cmd_sweep(_args: argparse.Namespace) -> int:
    preflight()
    for item in sweep_orphans():
        print(f"removed leftover {item}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    states = all_states()
    if args.json:
        print(json.dumps(states, indent=2, sort_keys=True))
        return 0
    if not states:
        print("no lab is up")
        return 0
    for state in states:
        running = sum(process_alive(p) for p in state["processes"])
        print(f"lab {state['name']} (hg{state['index']}, {state['network_ipv4']}), "
              f"{running}/{len(state['processes'])} processes running, up since {state['created']}")
        for host in state["hosts"]:
            print(f"  host   {host['name']:<10} {host['ipv4']:<15} {host['ipv6']:<22} "
                  f"groups={','.join(host['groups']) or '-'} flavour={host['flavour']}")
        for client, info in state["clients"].items():
            print(f"  client {client:<10} {info['ipv4']:<15} {info['ipv6']:<22} {info['meaning']}")
        print(f"  dns    {state['dns_ipv4']}   ssh -i {state['ssh_key']} root@HOST")
    return 0


def cmd_client(args: argparse.Namespace) -> int:
    state = load_state(args.name)
    if state is None:
        raise LabError(f"no lab named '{args.name}' is up")
    if args.client not in state["clients"]:
        raise LabError(f"unknown client '{args.client}': known are {', '.join(state['clients'])}")
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        raise LabError("no command given: lab.py client --name NAME CLIENT -- COMMAND...")
    return subprocess.call(["ip", "netns", "exec", state["clients"][args.client]["netns"], *command])


def cmd_rootfs(args: argparse.Namespace) -> int:
    preflight()
    print(ensure_rootfs(args.flavour))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lab.py", description=__doc__.split("\n\n", maxsplit=1)[0])
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="boot a lab")
    up.add_argument("--name", default="default")
    up.add_argument("--host", action="append", default=[], metavar="NAME[:GROUP,..][@FLAVOUR]")
    up.add_argument("--inventory", type=Path, help="write an Ansible inventory here")
    up.add_argument("--json", type=Path, help="write the lab's state as JSON here")
    up.set_defaults(func=cmd_up)
    down = sub.add_parser("down", help="stop a lab and remove all it made")
    target = down.add_mutually_exclusive_group()
    target.add_argument("--name", default="default")
    target.add_argument("--all", action="store_true", help="every lab, and leftovers of crashed ones")
    down.set_defaults(func=cmd_down)
    sweep = sub.add_parser("sweep", help="remove leftovers that no running lab records, and print them")
    sweep.set_defaults(func=cmd_sweep)
    status = sub.add_parser("status", help="show running labs")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)
    client = sub.add_parser("client", help="run a command from a client namespace")
    client.add_argument("--name", default="default")
    client.add_argument("client")
    client.add_argument("command", nargs=argparse.REMAINDER)
    client.set_defaults(func=cmd_client)
    rootfs = sub.add_parser("rootfs", help="build or reuse a cached root file system")
    rootfs.add_argument("--flavour", default="postfix")
    rootfs.set_defaults(func=cmd_rootfs)
    args = parser.parse_args(argv)

    def interrupted(signum, _frame):
        raise KeyboardInterrupt(signal.Signals(signum).name)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, interrupted)
    try:
        return args.func(args)
    except LabError as error:
        log(str(error))
        return 2
    except KeyboardInterrupt:
        log("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
