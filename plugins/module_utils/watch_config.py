# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostguard-watch's configuration: read, fill in defaults, and refuse what would not work.

The role writes /etc/hostguard/watch.yml and has the service check it
(``hostguard-watch --check FILE``) before it is live, so every refusal names
the key and the value, the way the roles' own input checks do.
"""

from __future__ import annotations

import copy
import re
import urllib.parse

DEFAULTS = {
    "host": None,
    "state_dir": "/var/lib/hostguard/watch",
    "alerts": {
        "email": None,
        "email_from": None,
        "smtp_host": "127.0.0.1",
        "smtp_port": 25,
        "webhook_url": None,
        "interval": 3600,
        "max_per_hour": 60,
        "timeout": 10,
        "runbooks_url": "https://github.com/hostguard/hosting/blob/main/docs/runbooks/",
    },
    "facets": {},
}

_HOST_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$")
_EMAIL_RE = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")


class ConfigError(ValueError):
    """A configuration the service refuses; the message names the key and the value."""


def _merge(defaults, given, where):
    if given is None:
        return copy.deepcopy(defaults)
    if not isinstance(given, dict):
        raise ConfigError(f"{where or 'the configuration'}: expected a mapping, got {given!r}")
    unknown = sorted(set(given) - set(defaults))
    if unknown and where != "facets":
        raise ConfigError(f"{where + '.' if where else ''}{unknown[0]}: unknown setting "
                          f"(known: {', '.join(sorted(defaults))})")
    merged = {}
    for key, default in defaults.items():
        value = given.get(key)
        path = f"{where}.{key}" if where else key
        if isinstance(default, dict):
            merged[key] = _merge(default, value, path)
        else:
            merged[key] = default if value is None else value
    for key in unknown:  # facets that this version does not know are refused below
        merged[key] = given[key]
    return merged


def _integer(config, path, minimum, maximum=None):
    node = config
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[key]
    check_integer(node[keys[-1]], path, minimum, maximum)


def check_integer(value, path, minimum, maximum=None):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum or (maximum and value > maximum):
        bound = f"from {minimum} to {maximum}" if maximum else f"at least {minimum}"
        raise ConfigError(f"{path}: expected a whole number {bound}, got {value!r}")


def check_boolean(value, path):
    if not isinstance(value, bool):
        raise ConfigError(f"{path}: expected true or false, got {value!r}")


def validate(data, facet_types):
    """The configuration with every default filled in; raises ConfigError naming a wrong value.

    `facet_types` maps a facet's name to its class, whose DEFAULTS and validate(settings, where) say what
    the facet takes.
    """
    config = _merge(DEFAULTS, data, "")
    host = config["host"]
    if not isinstance(host, str) or not _HOST_RE.match(host):
        raise ConfigError(f"host: expected the host's name, got {host!r}")
    check_absolute_path(config["state_dir"], "state_dir")

    alerts = config["alerts"]
    for key in ("email", "email_from"):
        if alerts[key] is not None and not (isinstance(alerts[key], str) and _EMAIL_RE.match(alerts[key])):
            raise ConfigError(f"alerts.{key}: expected an address like root@example.org, got {alerts[key]!r}")
    url = alerts["webhook_url"]
    if url is not None:
        parsed = urllib.parse.urlsplit(url) if isinstance(url, str) else None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ConfigError(f"alerts.webhook_url: expected an http:// or https:// URL, got {url!r}")
    if not isinstance(alerts["smtp_host"], str) or not alerts["smtp_host"]:
        raise ConfigError(f"alerts.smtp_host: expected a host name or address, got {alerts['smtp_host']!r}")
    _integer(config, "alerts.smtp_port", 1, 65535)
    _integer(config, "alerts.interval", 60)
    _integer(config, "alerts.max_per_hour", 1)
    _integer(config, "alerts.timeout", 1, 300)

    facets = config["facets"]
    unknown = sorted(set(facets) - set(facet_types))
    if unknown:
        raise ConfigError(f"facets.{unknown[0]}: unknown facet (known: {', '.join(sorted(facet_types))})")
    for name, facet_type in facet_types.items():
        where = f"facets.{name}"
        settings = _merge(dict(facet_type.DEFAULTS, enabled=False), facets.get(name), where)
        check_boolean(settings["enabled"], f"{where}.enabled")
        facet_type.validate(settings, where)
        facets[name] = settings
    return config


def load(path, facet_types, yaml_module=None):
    """Read and validate the YAML file at `path`."""
    if yaml_module is None:
        import yaml as yaml_module  # python3-yaml on managed hosts
    try:
        with open(path, encoding="utf-8") as stream:
            data = yaml_module.safe_load(stream)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc.strerror}") from exc
    except yaml_module.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    return validate(data, facet_types)


def check_choice(value, path, choices):
    if value not in choices:
        raise ConfigError(f"{path}: expected one of {', '.join(choices)}, got {value!r}")


def check_absolute_path(value, path):
    if not isinstance(value, str) or not value.startswith("/"):
        raise ConfigError(f"{path}: expected an absolute path, got {value!r}")
