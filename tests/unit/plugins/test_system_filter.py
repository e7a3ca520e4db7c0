"""Roles run on Debian 12 and 13 only, and refuse every other system, naming it."""

from __future__ import annotations

import pytest

from ansible_collections.hostguard.hosting.plugins.filter.system import unsupported_system


@pytest.mark.parametrize("release", ["12", "13"])
def test_debian_12_and_13_are_supported(release):
    assert unsupported_system({"distribution": "Debian", "distribution_major_version": release,
                               "distribution_version": f"{release}.1"}, "bruteforce") == ""


@pytest.mark.parametrize(("facts", "running"), [
    ({"distribution": "Debian", "distribution_major_version": "11", "distribution_version": "11.11"}, "Debian 11.11"),
    ({"distribution": "Ubuntu", "distribution_major_version": "24", "distribution_version": "24.04"}, "Ubuntu 24.04"),
    ({"distribution": "Debian", "distribution_major_version": "n/a", "distribution_version": "trixie/sid"},
     "Debian trixie/sid"),
    ({}, "an unknown system"),
])
def test_any_other_system_is_refused_naming_it(facts, running):
    message = unsupported_system(facts, "bruteforce")
    assert message.startswith("bruteforce supports Debian 12 (bookworm) and Debian 13 (trixie) only")
    assert f"this host runs {running}." in message
