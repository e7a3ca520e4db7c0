"""The queue purge playbook on a lab Postfix host whose queue holds spam and legitimate mail, monit watching Postfix.

The tests are shared with molecule/mail_queue_exim: tests/molecule/mail_queue_checks.py.
"""

from __future__ import annotations

import pytest
from mail_queue_checks import *  # noqa: F401,F403  pylint: disable=wildcard-import,unused-wildcard-import
from mail_queue_checks import POSTFIX


@pytest.fixture(scope="module")
def mta():
    return POSTFIX
