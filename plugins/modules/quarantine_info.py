#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: quarantine_info
short_description: List the paths quarantined on a host, with their manifests and how to restore them
version_added: "0.3.0"
description:
  - Reads the active manifests that M(hostguard.hosting.quarantine) (and hostguard-watch's containment) wrote in
    O(manifest_dir) - one per path still quarantined; restored and superseded ones are archived below it and not
    listed - and checks on the host as it is now that each path's lock is in force (the recorded entry, owned by
    root:root, mode 0000), reaching it from its document root without following a symlink.
  - Changes nothing.
author:
  - hostguard.hosting contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - hostguard.hosting.read_only
options:
  manifest_dir:
    description: Where the quarantine keeps its manifests.
    type: path
    default: /var/lib/hostguard/quarantine
notes:
  - Run it as root (C(become=true)); the manifest directory is root-only.
"""

EXAMPLES = r"""
- name: List what is quarantined
  hostguard.hosting.quarantine_info:
  register: quarantined

- name: Name each quarantined path and how to put it back
  ansible.builtin.debug:
    msg: "{{ item.path }} since {{ item.quarantined_at }}: {{ item.restore }}"
  loop: "{{ quarantined.quarantined }}"
"""

RETURN = r"""
manifest_dir:
  description: The directory read.
  returned: always
  type: str
quarantined:
  description:
    - Each quarantined path, oldest manifest name first - C(path) (and C(path_base64) with the exact bytes of a name
      that is not UTF-8), C(docroot), C(quarantined_at), C(manifest), C(evidence) (the tar.gz copy, or null),
      C(immutable), C(entries) (how many entries the manifest records), C(type) of the path, C(restore) (the command
      that puts it back), and C(lock) - V(in_force), V(undone) (no longer root:root 0000), V(gone) (nothing at the
      path), V(replaced) (another file is there) or V(unknown) - with C(lock_problem) saying why when it is not in force.
  returned: always
  type: list
  elements: dict
  sample:
    - path: /var/www/site1/wp-content/uploads/2024/05/cache.php
      docroot: /var/www/site1
      quarantined_at: "20261206T101500.123456Z"
      manifest: /var/lib/hostguard/quarantine/0c6f9e1d2b3a4c5d6e7f8091a2b3c4d5.json
      evidence: /var/lib/hostguard/evidence/0c6f9e1d2b3a4c5d6e7f8091a2b3c4d5-20261206T101500.120001Z.tar.gz
      immutable: true
      entries: 1
      type: file
      lock: in_force
      lock_problem: null
      restore: >-
        ansible-playbook hostguard.hosting.restore -l HOST -e '{"quarantine_docroots": ["/var/www/site1"],
        "quarantine_restore_paths": ["/var/www/site1/wp-content/uploads/2024/05/cache.php"]}'
unreadable:
  description: Manifests that could not be read, each with its C(manifest) path and the C(reason).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostguard.hosting.plugins.module_utils.quarantine import DEFAULT_MANIFEST_DIR, quarantined


def main():
    module = AnsibleModule(
        argument_spec=dict(manifest_dir=dict(type="path", default=DEFAULT_MANIFEST_DIR)),
        supports_check_mode=True,
    )
    try:
        result = quarantined(module.params["manifest_dir"])
    except OSError as exc:
        module.fail_json(msg="%s: cannot be read: %s" % (module.params["manifest_dir"], exc.strerror))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
