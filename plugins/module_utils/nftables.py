# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Load one nftables table safely: only when it differs, with a rollback armed first.

Pure Python over a `run(argv) -> (rc, stdout, stderr)` callable, so the logic is
unit-tested without a host. The table is compared by the digest its comment
carries (see firewall.render_nftables), parsed from `nft list` by this module.

Rollback: before the new table is loaded, the current one (or its absence) is
saved as an nft script, and a transient systemd timer is started that loads it
after `rollback_seconds`. The controller must reconnect through the new rules
and confirm, which stops the timer; if it cannot, the host restores the
previous table by itself.
"""

from __future__ import annotations

import os
import re

from ansible_collections.hostguard.hosting.plugins.module_utils import rollback
from ansible_collections.hostguard.hosting.plugins.module_utils.atomic_file import write_atomically
from ansible_collections.hostguard.hosting.plugins.module_utils.firewall import digest_from_comment, ruleset_digest

# The table's own comment is the first line of its body: `table inet NAME {` then `comment "..."`.
TABLE_COMMENT_RE = re.compile(r'\Atable \S+ \S+ \{\n\s*comment "([^"]*)"')


class NftablesError(RuntimeError):
    pass


def _checked(run, argv, what):
    rc, out, err = run(argv)
    if rc != 0:
        raise NftablesError(f"{what} failed ({' '.join(argv)}): {(err or out).strip()}")
    return out


def live_table(run, family, name):
    """(exists, digest) of the live table; digest None when the table carries none.

    Read from `nft list` text: nft 1.0.x leaves table comments out of its JSON.
    """
    rc, out, err = run(["nft", "list", "table", family, name])
    if rc != 0:
        if "No such file or directory" in err or "does not exist" in err:
            return False, None
        raise NftablesError(f"nft list table {family} {name} failed: {err.strip()}")
    match = TABLE_COMMENT_RE.search(out)
    return True, digest_from_comment(match.group(1)) if match else None


def file_digest(path):
    """The digest of the rules in a ruleset file, recomputed from its text.

    The rules are the lines after the table's comment, up to its closing brace,
    as render_nftables hashed them: an edit to any rule changes the result.
    """
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    starts = [index for index, line in enumerate(lines) if line.strip().startswith("comment ")]
    ends = [index for index, line in enumerate(lines) if line == "}"]
    if not starts or not ends or ends[-1] <= starts[0]:
        return None
    return ruleset_digest("\n".join(lines[starts[0] + 1:ends[-1]]))


def save_rollback(run, family, name, path):
    """Write an nft script that puts the current table back (or removes ours if there was none)."""
    exists, _digest = live_table(run, family, name)
    script = [f"table {family} {name}", f"delete table {family} {name}"]
    if exists:
        script.append(_checked(run, ["nft", "list", "table", family, name], "saving the current table"))
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    write_atomically(path, ("\n".join(script) + "\n").encode("utf-8"))
    return exists


def load(run, path, family, name, digest, rollback_seconds, rollback_path, check_mode):
    """Make the live table the one in `path`. Returns a result dict."""
    exists, live_digest = live_table(run, family, name)
    result = {"changed": False, "previous_digest": live_digest, "digest": digest, "table_existed": exists,
              "rollback_armed": False}
    if exists and live_digest == digest:
        return result
    result["changed"] = True
    if check_mode:
        return result
    if not os.path.exists(path):
        raise NftablesError(f"ruleset file {path} does not exist")
    if file_digest(path) != digest:
        raise NftablesError(f"ruleset file {path} does not hold the rules of digest {digest}: "
                            "it was edited since it was written; run the role again to rewrite it")
    _checked(run, ["nft", "-c", "-f", path], "checking the ruleset")
    save_rollback(run, family, name, rollback_path)
    if rollback_seconds > 0:
        rollback.arm(run, ["/usr/sbin/nft", "-f", rollback_path], rollback_seconds)
        result["rollback_armed"] = True
    _checked(run, ["nft", "-f", path], "loading the ruleset")
    return result


def confirm(run, family, name, digest=None):
    """Stop the pending rollback; then make sure the rules confirmed are the ones live.

    A rollback that fired before the controller confirmed (a window too short
    for a slow reconnect) has put the previous table back: say so instead of
    reporting success for rules that are not in force.
    """
    was_armed = rollback.disarm(run)
    if digest is not None:
        _exists, live_digest = live_table(run, family, name)
        if live_digest != digest:
            raise NftablesError("the rollback ran before the controller confirmed: the previous rules are live, "
                                "not the new ones; raise firewall_rollback_seconds and run again")
    return was_armed
