# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Set Postfix main.cf parameters and master.cf services, validated before they are live.

Pure Python over a `run(argv) -> (rc, stdout, stderr)` callable, so the logic is
unit-tested with recorded `postconf` output. Postfix itself does the reading and
writing (`postconf -n`, `postconf -M`, `postconf -e`, `postconf -M name/type=...`),
so main.cf's and master.cf's syntax is never parsed or written by hand.

Validation: Postfix has no "test this file" flag, but every command takes `-c DIR`.
The edits go first to a staging copy of the configuration directory, which must
pass `postfix -c STAGING check` without a warning the live configuration does not
already have (postconf warns about unknown parameters; `postfix check` alone
would pass them). Only then are the staged files moved over the live ones, each
with an atomic rename; a configuration that fails never reaches the running MTA.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile

from ansible_collections.hostguard.hosting.plugins.module_utils.relay_networks import trusted_network

# postconf -M prints one service a line: name, type, then the entry's other fields.
SERVICE_KEY_RE = re.compile(r"\A[^/\s]+/(inet|unix|unix-dgram|fifo|pass)\Z")
PARAMETER_NAME_RE = re.compile(r"\A[A-Za-z0-9_]+\Z")
STAGED_FILES = ("main.cf", "master.cf")
# Loopback is always trusted: local scripts and web applications hand mail over on it.
# Written as Debian's default mynetworks writes it.
LOOPBACK_NETWORKS = ["127.0.0.0/8", "[::ffff:127.0.0.0]/104", "[::1]/128"]


class PostfixError(RuntimeError):
    pass


def normalize(value):
    """A parameter value or service entry compared as postconf prints it: whitespace collapsed.

    Booleans (YAML's yes/no arrive as such) become Postfix's yes/no.
    """
    if isinstance(value, bool):
        return "yes" if value else "no"
    return " ".join(str(value).split())


def mynetworks(trusted_networks):
    """Loopback plus TRUSTED_NETWORKS as a mynetworks value (IPv6 in brackets); fails naming a bad CIDR."""
    networks = list(LOOPBACK_NETWORKS)
    for cidr in trusted_networks:
        try:
            network = trusted_network(cidr)
        except ValueError as error:
            raise PostfixError(str(error)) from None
        text = str(network) if network.version == 4 else f"[{network.network_address}]/{network.prefixlen}"
        if text not in networks:
            networks.append(text)
    return " ".join(networks)


def parse_parameters(text):
    """`postconf -n` output to {name: value}."""
    parameters = {}
    for line in text.splitlines():
        name, sep, value = line.partition(" = ")
        if not sep:
            name, sep, value = line.partition(" =")
        if sep and PARAMETER_NAME_RE.match(name.strip()):
            parameters[name.strip()] = normalize(value)
    return parameters


def parse_services(text):
    """`postconf -M` output to {"name/type": "name type private unpriv chroot wakeup maxproc command args"}."""
    services = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 8:
            services[f"{fields[0]}/{fields[1]}"] = " ".join(fields)
    return services


def service_entry(key, fields, options):
    """The master.cf entry for service KEY: its fields (private .. command) and -o options, sorted."""
    name, service_type = key.split("/", 1)
    entry = [name, service_type, *normalize(fields).split()]
    for option, value in sorted(options.items()):
        value = normalize(value)
        if " " in value:
            raise PostfixError(f"service {key}: option {option}={value!r} may not contain spaces (use commas)")
        entry += ["-o", f"{option}={value}"]
    return " ".join(entry)


def check_request(parameters, services):
    """Reject malformed names before anything runs, naming the value."""
    for name in parameters:
        if not PARAMETER_NAME_RE.match(name):
            raise PostfixError(f"parameter name {name!r} is not a Postfix parameter name")
    for key, spec in services.items():
        if not SERVICE_KEY_RE.match(key):
            raise PostfixError(f"service {key!r} is not NAME/TYPE (type inet, unix, unix-dgram, fifo or pass)")
        if spec.get("state", "present") == "present" and not spec.get("fields"):
            raise PostfixError(f"service {key}: 'fields' is required when it is present")


def plan(current_parameters, current_services, parameters, services):
    """What must change: (parameter edits {name: value}, service edits {key: entry or None for removal})."""
    parameter_edits = {name: normalize(value) for name, value in parameters.items()
                       if current_parameters.get(name) != normalize(value)}
    service_edits = {}
    for key, spec in services.items():
        if spec.get("state", "present") == "absent":
            if key in current_services:
                service_edits[key] = None
            continue
        entry = service_entry(key, spec["fields"], spec.get("options") or {})
        if current_services.get(key) != entry:
            service_edits[key] = entry
    return parameter_edits, service_edits


def render_diff(config_dir, current_parameters, current_services, parameter_edits, service_edits):
    """Before/after of the managed parameters and services, as Ansible's diff list."""
    diff = []
    if parameter_edits:
        names = sorted(parameter_edits)
        diff.append({
            "before_header": os.path.join(config_dir, "main.cf"),
            "after_header": os.path.join(config_dir, "main.cf"),
            "before": "".join(f"{name} = {current_parameters[name]}\n"
                              for name in names if name in current_parameters),
            "after": "".join(f"{name} = {parameter_edits[name]}\n" for name in names),
        })
    if service_edits:
        keys = sorted(service_edits)
        diff.append({
            "before_header": os.path.join(config_dir, "master.cf"),
            "after_header": os.path.join(config_dir, "master.cf"),
            "before": "".join(current_services[key] + "\n" for key in keys if key in current_services),
            "after": "".join(service_edits[key] + "\n" for key in keys if service_edits[key] is not None),
        })
    return diff


def _checked(run, argv, what):
    rc, out, err = run(argv)
    if rc != 0:
        raise PostfixError(f"{what} failed ({' '.join(argv)}): {(err or out).strip()}")
    return out


def read(run, config_dir):
    """(parameters set in main.cf, services of master.cf) of the configuration in CONFIG_DIR."""
    parameters = parse_parameters(_checked(run, ["postconf", "-c", config_dir, "-n"], "reading main.cf"))
    services = parse_services(_checked(run, ["postconf", "-c", config_dir, "-M"], "reading master.cf"))
    return parameters, services


def edit(run, config_dir, parameter_edits, service_edits):
    """Apply the edits to the configuration in CONFIG_DIR with postconf."""
    if parameter_edits:
        _checked(run, ["postconf", "-c", config_dir, "-e",
                       *(f"{name}={value}" for name, value in sorted(parameter_edits.items()))],
                 "editing main.cf")
    for key, entry in sorted(service_edits.items()):
        if entry is None:
            _checked(run, ["postconf", "-c", config_dir, "-MX", key], f"removing service {key}")
        else:
            _checked(run, ["postconf", "-c", config_dir, "-M", f"{key}={entry}"], f"setting service {key}")


def warnings(text):
    """The warning and error lines of postfix/postconf output, without the program's path prefix."""
    found = set()
    for line in text.splitlines():
        if re.search(r"\b(warning|fatal|error):", line):
            found.add(re.sub(r"\A\S*?(postconf|postfix|postfix-script)(\[\d+\])?:\s*", "", line.strip()))
    return found


def check(run, config_dir):
    """`postfix -c DIR check`: (passed, warnings). The config dir's own path is left out of the warnings."""
    rc, out, err = run(["postfix", "-c", config_dir, "check"])
    found = {line.replace(config_dir.rstrip("/") + "/", "") for line in warnings(out + "\n" + err)}
    return rc == 0, found


def validate_staged(run, live_dir, staging_dir):
    """Fail unless the staged configuration passes `postfix check` with no warning the live one lacks."""
    passed, staged_warnings = check(run, staging_dir)
    _live_passed, live_warnings = check(run, live_dir)
    new_warnings = sorted(staged_warnings - live_warnings)
    if not passed or new_warnings:
        raise PostfixError("the new configuration fails postfix check, nothing was changed: "
                           + ("; ".join(new_warnings) or "postfix check failed"))


def install_staged(staging_dir, live_dir):
    """Move each staged file over the live one with an atomic rename, keeping the live file's owner and mode."""
    for name in STAGED_FILES:
        live = os.path.join(live_dir, name)
        fd, temporary = tempfile.mkstemp(prefix=f".{name}.", dir=live_dir)
        os.close(fd)
        try:
            shutil.copyfile(os.path.join(staging_dir, name), temporary)
            shutil.copystat(live, temporary)
            stat = os.stat(live)
            os.chown(temporary, stat.st_uid, stat.st_gid)
            os.replace(temporary, live)
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise


def apply(run, config_dir, parameters, services, check_mode=False, validate=True):
    """Make CONFIG_DIR's main.cf and master.cf carry PARAMETERS and SERVICES.

    parameters: {name: value}; services: {"name/type": {"fields": "n - y - - smtpd",
    "options": {name: value}, "state": "present" | "absent"}}.
    Returns {"changed", "parameters" (edited), "services" (edited), "diff"}.
    """
    check_request(parameters, services)
    current_parameters, current_services = read(run, config_dir)
    parameter_edits, service_edits = plan(current_parameters, current_services, parameters, services)
    result = {
        "changed": bool(parameter_edits or service_edits),
        "parameters": parameter_edits,
        "services": service_edits,
        "diff": render_diff(config_dir, current_parameters, current_services, parameter_edits, service_edits),
    }
    if check_mode or not result["changed"]:
        return result
    if not validate:
        edit(run, config_dir, parameter_edits, service_edits)
        return result
    staging_root = tempfile.mkdtemp(prefix="hostguard-postfix-")
    try:
        # The whole directory, so that postfix check sees what it sees live (sasl/, maps, postfix-files).
        staging_dir = os.path.join(staging_root, "postfix")
        shutil.copytree(config_dir, staging_dir, symlinks=True)
        edit(run, staging_dir, parameter_edits, service_edits)
        validate_staged(run, config_dir, staging_dir)
        install_staged(staging_dir, config_dir)
    finally:
        shutil.rmtree(staging_root, ignore_errors=True)
    return result
