"""The bruteforce role's ignore list: validated, and never without the controller."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.hostguard.hosting.plugins.filter.bruteforce import bruteforce_ignore_list


def test_the_controller_is_added_unless_a_source_covers_it():
    assert bruteforce_ignore_list(["198.51.100.0/24"], "10.213.0.1") == ["198.51.100.0/24", "10.213.0.1/32"]
    assert bruteforce_ignore_list(["10.213.0.0/24"], "10.213.0.1") == ["10.213.0.0/24"]
    assert bruteforce_ignore_list([], "2001:db8:51::1") == ["2001:db8:51::1/128"]


def test_a_bad_source_fails_naming_it():
    with pytest.raises(AnsibleFilterError, match="'198.51.100.1/24'.*did you mean 198.51.100.0/24"):
        bruteforce_ignore_list(["198.51.100.1/24"], "10.213.0.1")
    with pytest.raises(AnsibleFilterError, match="must be a list"):
        bruteforce_ignore_list("198.51.100.0/24")
