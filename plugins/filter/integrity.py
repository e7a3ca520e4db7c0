# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that hold the integrity baseline's sites to what file_integrity and the audit rely on."""

from __future__ import annotations

from ansible_collections.hostguard.hosting.plugins.module_utils.integrity_sites import site_problems


def integrity_site_problems(sites, database_dir):
    return site_problems(sites, database_dir)


class FilterModule:
    def filters(self):
        return {"integrity_site_problems": integrity_site_problems}
