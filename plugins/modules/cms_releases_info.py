#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: cms_releases_info
short_description: Read the current releases of WordPress, Joomla and WordPress's plugins and themes
version_added: "0.3.0"
description:
  - Returns, per CMS, the latest release and the newest release of each branch that still gets security fixes, and
    the latest version of the WordPress plugins and themes named - what M(hostguard.hosting.cms_info) judges
    installs against.
  - With O(file), that file is the answer as it is (pinned); nothing is asked online.
  - Otherwise, with O(refresh), asks the projects' own services (WordPress's stable-check and its plugin and theme
    directories, Joomla's downloads API) over O(fallback), the document the collection ships; what cannot be read
    (the controller is offline, a service is down) stays as O(fallback) says, and RV(source) names it.
  - Run it on the controller (C(delegate_to=localhost), C(run_once=true)). Changes nothing.
author:
  - hostguard.hosting contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - hostguard.hosting.read_only
options:
  file:
    description: A releases document (YAML or JSON) to use as it is, never refreshed - the releases pinned.
    type: path
  fallback:
    description: The releases document used where the services cannot be read (the collection ships one in the audit
      role, C(files/cms_releases.yml)). Required without O(file).
    type: path
  refresh:
    description: Ask the projects' services. Without O(file) and with V(false), O(fallback) is the answer.
    type: bool
    default: true
  plugins:
    description: WordPress plugin slugs to ask the plugin directory about.
    type: list
    elements: str
    default: []
  themes:
    description: WordPress theme slugs to ask the theme directory about.
    type: list
    elements: str
    default: []
  wordpress_api:
    description: Where WordPress's services answer.
    type: str
    default: https://api.wordpress.org
  joomla_api:
    description: Where Joomla's downloads API answers.
    type: str
    default: https://downloads.joomla.org/api/v1
  timeout:
    description: Seconds to wait for each answer.
    type: int
    default: 10
seealso:
  - module: hostguard.hosting.cms_info
"""

EXAMPLES = r"""
- name: Read the current releases, asking about the plugins and themes the sites have
  hostguard.hosting.cms_releases_info:
    fallback: /usr/share/hostguard/cms_releases.yml
    plugins: [contact-form-7, akismet]
    themes: [twentytwentyfour]
  delegate_to: localhost
  run_once: true
  register: releases

- name: Judge against releases the administrator pinned
  hostguard.hosting.cms_releases_info:
    file: "{{ inventory_dir }}/files/cms_releases.yml"
  delegate_to: localhost
  run_once: true
  register: releases
"""

RETURN = r"""
releases:
  description:
    - C(as_of) (the date the data was read), C(cms) (per CMS, C(latest) and C(branches) - each branch's newest release
      that still gets security fixes), C(plugins) and C(themes) (the latest version by slug).
  returned: always
  type: dict
  sample:
    as_of: "2026-12-07"
    cms:
      wordpress: {latest: "6.9", branches: {"6.9": "6.9", "6.8": "6.8.3"}}
      joomla: {latest: "6.0.1", branches: {"6.0": "6.0.1", "5.4": "5.4.1"}}
    plugins: {contact-form-7: "6.1.4"}
    themes: {twentytwentyfour: "1.3"}
source:
  description:
    - Where the answer came from - C(pinned) (the file of O(file), or null), C(online) (what the services answered),
      C(errors) (what could not be read, with the address and why) and C(unlisted) (plugins and themes the
      directories do not have, such as premium ones).
  returned: always
  type: dict
"""

import datetime
import json

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

from ansible_collections.hostguard.hosting.plugins.module_utils import cms_releases

try:
    import yaml
except ImportError:  # pragma: no cover - PyYAML comes with ansible-core
    yaml = None


def load(path, what):
    with open(path, encoding="utf-8") as stream:
        text = stream.read()
    document = yaml.safe_load(text) if yaml is not None else json.loads(text)
    return cms_releases.validate(document, "%s %s" % (what, path))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            file=dict(type="path"),
            fallback=dict(type="path"),
            refresh=dict(type="bool", default=True),
            plugins=dict(type="list", elements="str", default=[]),
            themes=dict(type="list", elements="str", default=[]),
            wordpress_api=dict(type="str", default=cms_releases.WORDPRESS_API),
            joomla_api=dict(type="str", default=cms_releases.JOOMLA_API),
            timeout=dict(type="int", default=10),
        ),
        required_one_of=[("file", "fallback")],
        supports_check_mode=True,
    )
    params = module.params
    if params["timeout"] < 1:
        module.fail_json(msg="timeout: expected 1 second or more, got %d" % params["timeout"])
    for name in ("wordpress_api", "joomla_api"):
        if not params[name].startswith(("https://", "http://")):
            module.fail_json(msg="%s: expected an http(s) address, got %r" % (name, params[name]))
    try:
        if params["file"]:
            releases = load(params["file"], "file")
            module.exit_json(changed=False, releases=releases,
                             source={"pinned": params["file"], "online": [], "errors": [], "unlisted": []})
        fallback = load(params["fallback"], "fallback")
    except (OSError, ValueError, cms_releases.ReleasesError) as exc:
        module.fail_json(msg=str(exc))
    if not params["refresh"]:
        module.exit_json(changed=False, releases=fallback,
                         source={"pinned": None, "online": [], "errors": [], "unlisted": []})

    def fetch(url):
        with open_url(url, timeout=params["timeout"], headers={"Accept": "application/json"},
                      http_agent="hostguard.hosting cms_releases_info") as response:
            return json.loads(response.read().decode("utf-8"))

    try:
        releases = cms_releases.fetch_releases(
            fetch, fallback, params["plugins"], params["themes"], params["wordpress_api"], params["joomla_api"],
            today=datetime.datetime.now(datetime.timezone.utc).date().isoformat())
    except cms_releases.ReleasesError as exc:
        module.fail_json(msg=str(exc))
    source = dict(releases.pop("source"), pinned=None)
    module.exit_json(changed=False, releases=releases, source=source)


if __name__ == "__main__":
    main()
