#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: safe_browsing_info
short_description: Ask Google Safe Browsing whether it lists the sites' URLs
version_added: "0.3.0"
description:
  - Asks the Safe Browsing Lookup API (v4, C(threatMatches:find)) about the URLs given and the http and https roots
    of each domain, 500 URLs to a request, for the threat types MALWARE, SOCIAL_ENGINEERING, UNWANTED_SOFTWARE and
    POTENTIALLY_HARMFUL_APPLICATION on any platform.
  - Each URL is C(listed) (with the threat type and platform Google named), C(clean) (Google answered and named no
    match) or C(unchecked) - where Google refused the key (HTTP 400 or 403), the quota is exhausted (HTTP 429), the
    answer did not come within O(timeout) or the controller is offline, RV(error) says why and no URL is said clean
    that Google did not answer for.
  - Google matches on host-suffix and path-prefix expressions without the scheme - a lookup of a site's root finds a
    listing of the whole site (and of its parent domain), not one of a single page below it; name such pages in
    O(urls).
  - The key is never part of the result nor of an error message.
  - Run it on the controller (C(delegate_to=localhost), C(run_once=true)). Changes nothing.
  - Google's terms allow the Safe Browsing API for non-commercial use only; commercial use needs Google's Web Risk API.
author:
  - hostguard.hosting contributors (!UNKNOWN)
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - hostguard.hosting.read_only
options:
  api_key:
    description: The Google API key of a project with the Safe Browsing API enabled.
    type: str
    required: true
  domains:
    description: Host names whose C(http://NAME/) and C(https://NAME/) are checked.
    type: list
    elements: str
    default: []
  urls:
    description: Further http(s) URLs to check as they are (a page that was flagged, a landing page).
    type: list
    elements: str
    default: []
  api:
    description: The address of C(threatMatches:find) (the key is added as its C(key) parameter).
    type: str
    default: https://safebrowsing.googleapis.com/v4/threatMatches:find
  timeout:
    description: Seconds to wait for each answer.
    type: int
    default: 10
seealso:
  - name: Safe Browsing Lookup API (v4)
    description: The request and answer this module uses.
    link: https://developers.google.com/safe-browsing/v4/lookup-api
"""

EXAMPLES = r"""
- name: Ask Google about the sites of the fleet
  hostguard.hosting.safe_browsing_info:
    api_key: "{{ vault_safe_browsing_key }}"
    domains: [example.com, www.example.com]
    urls: [https://shop.example.com/checkout/]
  delegate_to: localhost
  run_once: true
  register: safe_browsing
"""

RETURN = r"""
checked:
  description: Whether Google answered for every URL.
  returned: always
  type: bool
error:
  description: Why some or all URLs could not be checked (null when RV(checked)).
  returned: always
  type: str
  sample: "HTTP 429 - the key's quota is exhausted or its rate limit reached"
requests:
  description: How many requests were sent (a refusal or network failure ends the run).
  returned: always
  type: int
api:
  description: The address asked, without the key.
  returned: always
  type: str
urls:
  description:
    - Each URL asked (canonical - host in lower case, a path), its C(status) (listed, clean or unchecked) and its
      C(matches) (C(threat_type), C(platform_type), C(threat_entry_type), C(cache_duration)).
  returned: always
  type: list
  elements: dict
  sample:
    - url: http://example.com/
      status: listed
      matches: [{threat_type: MALWARE, platform_type: ANY_PLATFORM, threat_entry_type: URL, cache_duration: 300s}]
unattributed:
  description: Matches Google named for a URL that was not asked (with its C(url)).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.six.moves.urllib.error import HTTPError
from ansible.module_utils.urls import open_url

from ansible_collections.hostguard.hosting.plugins.module_utils import safe_browsing


def post(url, body, headers, timeout):
    """(status, body) of a POST; an HTTP error is an answer, not an exception."""
    try:
        with open_url(url, data=body, headers=headers, method="POST", timeout=timeout,
                      http_agent="hostguard.hosting safe_browsing_info") as response:
            return response.getcode(), response.read()
    except HTTPError as error:
        return error.code, error.read()


def main():
    module = AnsibleModule(
        argument_spec=dict(
            api_key=dict(type="str", required=True, no_log=True),
            domains=dict(type="list", elements="str", default=[]),
            urls=dict(type="list", elements="str", default=[]),
            api=dict(type="str", default=safe_browsing.API),
            timeout=dict(type="int", default=10),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if params["timeout"] < 1:
        module.fail_json(msg="timeout: expected 1 second or more, got %d" % params["timeout"])
    try:
        urls = [url for domain in params["domains"] for url in safe_browsing.domain_urls(domain)] + params["urls"]
        result = safe_browsing.find_threats(urls, params["api_key"], post, params["api"], params["timeout"])
    except safe_browsing.SafeBrowsingInputError as exc:
        module.fail_json(msg=safe_browsing.scrub(exc, params["api_key"]))
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
