# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The systems the collection's roles are tested on, and the refusal of every other."""

from __future__ import annotations

# Debian's major release to its code name: the releases the lab builds and every role's meta/main.yml lists.
SUPPORTED_DEBIAN = {"12": "bookworm", "13": "trixie"}


def unsupported_system(facts, role):
    """Empty on a supported Debian release; otherwise why ROLE refuses, naming the system and the supported ones."""
    facts = facts or {}
    distribution = facts.get("distribution") or "an unknown system"
    release = str(facts.get("distribution_major_version") or "")
    if distribution == "Debian" and release in SUPPORTED_DEBIAN:
        return ""
    supported = " and ".join(f"Debian {number} ({name})" for number, name in SUPPORTED_DEBIAN.items())
    running = " ".join(part for part in (distribution, str(facts.get("distribution_version") or "")) if part)
    return (f"{role} supports {supported} only, the systems it is tested on; this host runs {running}. "
            "Nothing was changed.")


class FilterModule:
    def filters(self):
        return {"unsupported_system": unsupported_system}
