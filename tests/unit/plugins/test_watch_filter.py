"""The watch role's country table, built on the controller from watch_country_cidrs (the firewall role's format)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.hostguard.hosting.plugins.filter.watch import FilterModule

TABLE = FilterModule().filters()["watch_country_table"]


def test_lists_and_files_of_cidrs_become_one_sorted_table(tmp_path):
    (tmp_path / "md.txt").write_text("# a registry's delegated data, one CIDR a line\n203.0.113.0/25\n203.0.113.128/25\n")
    text = TABLE({"MD": "md.txt", "JP": ["198.18.0.0/24", "2001:db8:18::/64"]}, base_dir=str(tmp_path))
    assert text == ("198.18.0.0 198.18.0.255 JP\n203.0.113.0 203.0.113.255 MD\n"
                    "2001:db8:18:: 2001:db8:18:0:ffff:ffff:ffff:ffff JP\n")
    assert TABLE({}) == ""


@pytest.mark.parametrize("cidrs, message", [
    ({"jp": ["198.18.0.0/24"]}, "watch_country_cidrs.jp: 'jp' is not a two-letter upper-case country code"),
    ({"JP": ["198.18.0.1/24"]}, r"watch_country_cidrs.JP\[0\]: '198.18.0.1/24' is not a network"),
    ({"JP": "/nonexistent/jp.txt"}, "watch_country_cidrs.JP: cannot read CIDR file '/nonexistent/jp.txt'"),
    ({"JP": ["198.18.0.0/24"], "MD": ["198.18.0.0/25"]}, r"198.18.0.0/24 \(JP\) overlaps 198.18.0.0/25 \(MD\)"),
    (["198.18.0.0/24"], "watch_country_cidrs: expected a mapping"),
])
def test_bad_input_fails_naming_the_variable_and_the_value(cidrs, message):
    with pytest.raises(AnsibleFilterError, match=message):
        TABLE(cidrs)
