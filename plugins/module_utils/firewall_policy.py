# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether the policy the firewall role recorded on a host is the one in force there.

Pure Python over one injected runner (argv -> (rc, stdout, stderr)). The firewall role records its policy as JSON
(firewall_record_path); it is in force when the live nftables table carries the recorded digest in its comment, or,
with firewalld, when the role's zone is firewalld's default zone. A record alone proves nothing.
"""

from __future__ import annotations

import json

from ansible_collections.hostguard.hosting.plugins.module_utils import firewalld, nftables

# The table and the zone the firewall role writes.
NFTABLES_FAMILY = "inet"
NFTABLES_TABLE = "hostguard"
FIREWALLD_ZONE = "hostguard"


class FirewallPolicyError(RuntimeError):
    pass


def read_record(path):
    """The recorded policy, or None where the role recorded none. A record that is not a JSON object fails."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        return None
    try:
        record = json.loads(text)
    except ValueError as error:
        raise FirewallPolicyError(f"{path} is not the firewall role's record (not JSON: {error})") from None
    if not isinstance(record, dict) or record.get("backend") not in ("nftables", "firewalld"):
        raise FirewallPolicyError(f"{path} is not the firewall role's record (no nftables or firewalld backend)")
    return record


def policy_state(path, run):
    """{recorded, backend, in_force, live, record}: live is the digest of the live table (nftables) or firewalld's
    default zone, null where there is none."""
    record = read_record(path)
    if record is None:
        return {"recorded": False, "backend": None, "in_force": False, "live": None, "record": {}}
    if record["backend"] == "nftables":
        try:
            exists, live = nftables.live_table(run, NFTABLES_FAMILY, NFTABLES_TABLE)
        except nftables.NftablesError as error:
            raise FirewallPolicyError(str(error)) from None
        in_force = exists and live is not None and live == record.get("digest")
    else:
        live = firewalld.runtime_default_zone(run)
        in_force = live == FIREWALLD_ZONE
    return {"recorded": True, "backend": record["backend"], "in_force": in_force, "live": live, "record": record}
