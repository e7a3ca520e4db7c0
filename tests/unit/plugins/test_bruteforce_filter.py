"""The bruteforce role's ignore list: validated, and never without the controller."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.hostguard.hosting.plugins.filter.bruteforce import bruteforce_ignore_list, bruteforce_probe_address


def test_the_controller_is_added_unless_a_source_covers_it():
    assert bruteforce_ignore_list(["198.51.100.0/24"], "10.213.0.1") == ["198.51.100.0/24", "10.213.0.1/32"]
    assert bruteforce_ignore_list(["10.213.0.0/24"], "10.213.0.1") == ["10.213.0.0/24"]
    assert bruteforce_ignore_list([], "2001:db8:51::1") == ["2001:db8:51::1/128"]


def test_a_bad_source_fails_naming_it():
    with pytest.raises(AnsibleFilterError, match="'198.51.100.1/24'.*did you mean 198.51.100.0/24"):
        bruteforce_ignore_list(["198.51.100.1/24"], "10.213.0.1")
    with pytest.raises(AnsibleFilterError, match="must be a list"):
        bruteforce_ignore_list("198.51.100.0/24")


def test_the_probe_address_is_one_address_outside_the_ignore_list():
    assert bruteforce_probe_address("203.0.113.254", ["198.51.100.0/24", "10.213.0.1/32"]) == "203.0.113.254"
    assert bruteforce_probe_address("2001:DB8::F2B", []) == "2001:db8::f2b"
    with pytest.raises(AnsibleFilterError, match="'203.0.113.0/24' is a network"):
        bruteforce_probe_address("203.0.113.0/24", [])
    with pytest.raises(AnsibleFilterError, match="'198.51.100.7' is in 198.51.100.0/24, which is never banned"):
        bruteforce_probe_address("198.51.100.7", ["198.51.100.0/24"])
    with pytest.raises(AnsibleFilterError, match="'nonsense' is not a network"):
        bruteforce_probe_address("nonsense", [])
