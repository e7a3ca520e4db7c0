#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cms_info
short_description: List the CMS installs of the sites, with the version of each and of WordPress's plugins and themes
version_added: "0.3.0"
description:
  - Looks for WordPress and Joomla installs at each document root in O(paths) and in the directories up to
    O(depth) levels below it, reading each install's version file as text (never running it).
  - For WordPress, also lists the plugins (the top-level PHP file of C(wp-content/plugins/SLUG/) whose header names
    the plugin, as WordPress finds it) and themes (C(wp-content/themes/SLUG/style.css)) with their versions.
  - A customer owns the tree - every directory and file is reached from the document root without following a
    symlink or crossing a mount, so a link planted in the tree cannot make root read elsewhere.
  - With O(releases) (what M(hostguard.hosting.cms_releases_info) returns), judges each install, plugin and theme
    against it. Changes nothing.
author:
  - hostguard.hosting contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - hostguard.hosting.read_only
options:
  paths:
    description: The sites' document roots (absolute paths).
    type: list
    elements: path
    required: true
  depth:
    description: How many directory levels below a document root an install may be (V(0) for the root only).
    type: int
    default: 2
  releases:
    description:
      - The releases to judge against - the C(releases) of M(hostguard.hosting.cms_releases_info) - as C(cms),
        C(plugins) and C(themes).
      - Without it, each install's C(status) is V(unknown).
    type: dict
seealso:
  - module: hostguard.hosting.cms_releases_info
"""

EXAMPLES = r"""
- name: Read the current releases on the controller
  hostguard.hosting.cms_releases_info:
    fallback: "{{ role_path }}/files/cms_releases.yml"
  delegate_to: localhost
  run_once: true
  register: releases

- name: List the sites' installs and how old each is
  hostguard.hosting.cms_info:
    paths: [/var/www/site1, /var/www/site2]
    releases: "{{ releases.releases }}"
  register: cms
"""

RETURN = r"""
installs:
  description:
    - Each install found - C(cms) (V(wordpress) or V(joomla)), C(path) (its root), C(version) (null when the version
      file says none), C(version_file), C(docroot) - and, judged against O(releases), C(status) (V(current),
      V(outdated), V(insecure) - its branch has a newer security release, named in C(fixed_in) -, V(unsupported) -
      its branch gets no security fixes any more - or V(unknown)) and C(latest).
    - For WordPress, C(plugins) and C(themes), each with C(slug), C(name), C(version), C(path) and, judged,
      C(status) (V(current), V(outdated) or V(unknown) - not in the directory, such as a premium one) and C(latest).
  returned: always
  type: list
  elements: dict
  sample:
    - cms: wordpress
      path: /var/www/site1
      docroot: /var/www/site1
      version: "6.4.3"
      version_file: /var/www/site1/wp-includes/version.php
      status: insecure
      latest: "6.9"
      fixed_in: "6.4.7"
      plugins:
        - {slug: contact-form-7, name: Contact Form 7, version: "5.1", status: outdated, latest: "6.1.4",
           path: /var/www/site1/wp-content/plugins/contact-form-7/wp-contact-form-7.php}
      themes:
        - {slug: twentytwentyfour, name: Twenty Twenty-Four, version: "1.0", status: outdated, latest: "1.3",
           path: /var/www/site1/wp-content/themes/twentytwentyfour/style.css}
errors:
  description: The document roots that could not be surveyed, each with C(path) and C(reason).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostguard.hosting.plugins.module_utils import cms_releases, cms_survey


def main():
    module = AnsibleModule(
        argument_spec=dict(
            paths=dict(type="list", elements="path", required=True),
            depth=dict(type="int", default=cms_survey.INSTALL_DEPTH),
            releases=dict(type="dict"),
        ),
        supports_check_mode=True,
    )
    depth, releases = module.params["depth"], module.params["releases"]
    if depth < 0:
        module.fail_json(msg="depth: expected 0 or more, got %d" % depth)
    for path in module.params["paths"]:
        if not path.startswith("/"):
            module.fail_json(msg="paths: %r is not an absolute path" % path)
    if releases is not None:
        try:
            cms_releases.validate(releases, "releases")
        except cms_releases.ReleasesError as exc:
            module.fail_json(msg=str(exc))
    installs, errors = [], []
    for docroot in module.params["paths"]:
        try:
            found = cms_survey.survey(docroot, depth)
        except cms_survey.SurveyError as exc:
            errors.append({"path": docroot, "reason": str(exc)})
            continue
        installs.extend(dict(install, docroot=docroot) for install in found)
    if releases is not None:
        installs = cms_releases.judge(installs, releases)
    module.exit_json(changed=False, installs=installs, errors=errors)


if __name__ == "__main__":
    main()
