"""The queue purge playbook on a lab Postfix host whose queue holds spam and legitimate mail, monit watching Postfix.

The tests are shared with molecule/mail_queue_exim: tests/molecule/mail_queue_checks.py.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from mail_queue_checks import *  # noqa: F401,F403  pylint: disable=wildcard-import,unused-wildcard-import
from mail_queue_checks import POSTFIX, audit


@pytest.fixture(scope="module")
def mta():
    return POSTFIX


HELD = "/var/spool/postfix/hostguard-purged-20261125T000000Z-interrupted"


def test_purged_mail_an_interrupted_run_left_is_named_by_the_audit_and_deleted_by_state_cleaned(host):
    """A run stopped between taking the spam out of the queue and deleting it leaves a hostguard-purged-* directory."""
    host.run_expect([0], "mkdir -p %s/deferred/9 && echo spam > %s/deferred/9/9E1F91A603F" % (HELD, HELD))
    lines = audit()[1]
    assert "purged mail not deleted yet (mail_queue state=cleaned deletes it): %s" % HELD in lines
    inventory = str(Path(os.environ["MOLECULE_INVENTORY_FILE"]).parent)

    def clean(*options):
        run = subprocess.run(["ansible", "-i", inventory, "all", "-m", "hostguard.hosting.mail_queue",
                              "-a", "state=cleaned", *options], text=True, capture_output=True, timeout=300, check=False)
        assert run.returncode == 0, run.stdout + run.stderr
        return run.stdout

    assert "would delete 1 directories of purged messages" in clean("--check")
    assert host.file(HELD).is_directory
    assert "deleted 1 directories of purged messages" in clean()
    assert not host.file(HELD).exists
    assert "deleted 0 directories of purged messages" in clean()
