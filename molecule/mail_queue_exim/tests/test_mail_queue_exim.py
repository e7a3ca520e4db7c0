"""The queue purge playbook on a lab Exim host whose queue holds spam and legitimate mail, monit watching Exim.

The tests are shared with molecule/mail_queue: tests/molecule/mail_queue_checks.py.
"""

from __future__ import annotations

import pytest
from mail_queue_checks import *  # noqa: F401,F403  pylint: disable=wildcard-import,unused-wildcard-import
from mail_queue_checks import EXIM


@pytest.fixture(scope="module")
def mta():
    return EXIM
