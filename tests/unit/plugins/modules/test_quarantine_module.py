"""The quarantine module as Ansible runs it: a process reading its arguments from a JSON file."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from pathlib import Path

import pytest
from module_process import run_module

WEBSHELL = b"<?php @eval(base64_decode($_POST['z'])); ?>\n"
ACCOUNT = 1234

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to own files as other users and to lock them")


@pytest.fixture
def docroot():
    base = Path(tempfile.mkdtemp(prefix="hostguard-quarantine-module-", dir="/var/tmp"))
    root = base / "www"
    (root / "wp-content/uploads").mkdir(parents=True)
    (root / "index.php").write_bytes(b"<?php echo 'hello';\n")
    (root / "wp-content/uploads/cache.php").write_bytes(WEBSHELL)
    for path in (root, root / "wp-content", root / "wp-content/uploads", root / "index.php",
                 root / "wp-content/uploads/cache.php"):
        os.chown(path, ACCOUNT, ACCOUNT)
    yield root
    shutil.rmtree(base)


def manifests_of(docroot):
    return str(docroot.parent / "manifests")


def test_check_mode_reports_a_diff_and_writes_nothing(docroot):
    planted = docroot / "wp-content/uploads/cache.php"
    code, result = run_module("quarantine", docroot.parent, path=[str(planted)], docroots=[str(docroot)],
                              manifest_dir=manifests_of(docroot), _ansible_check_mode=True, _ansible_diff=True)
    assert code == 0, result
    assert result["changed"] is True
    assert result["results"][0]["status"] == "quarantined"
    assert result["diff"]["before"] == "%s file %d:%d 0644\n" % (planted, ACCOUNT, ACCOUNT)
    assert result["diff"]["after"] == "%s file 0:0 0000\n" % planted
    assert os.lstat(planted).st_uid == ACCOUNT
    assert not os.path.exists(manifests_of(docroot))


def test_a_suspicious_list_is_quarantined_then_restored(docroot):
    planted = docroot / "wp-content/uploads/cache.php"
    suspicious = [{"path": str(planted), "rule": "eval_decoded"}, {"path": str(planted), "rule": "php_in_upload_dir"}]
    code, result = run_module("quarantine", docroot.parent, path=suspicious, docroots=[str(docroot)],
                              manifest_dir=manifests_of(docroot))
    assert code == 0, result
    assert result["counts"]["quarantined"] == 1
    info = os.lstat(planted)
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (0, 0, 0)

    code, result = run_module("quarantine", docroot.parent, path=[str(planted)], docroots=[str(docroot)], state="restored",
                              manifest_dir=manifests_of(docroot))
    assert code == 0, result
    assert result["counts"]["restored"] == 1
    info = os.lstat(planted)
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (ACCOUNT, ACCOUNT, 0o644)


def test_bad_input_fails_naming_the_value(docroot):
    code, result = run_module("quarantine", docroot.parent, path=["/etc/passwd"], docroots=[str(docroot)],
                              manifest_dir=manifests_of(docroot))
    assert code != 0
    assert result["failed"] is True
    assert result["msg"].startswith("path /etc/passwd is outside the docroots")
    assert os.lstat("/etc/passwd").st_mode & 0o444


def test_a_refused_restore_fails_the_task_and_says_why(docroot):
    planted = docroot / "wp-content/uploads/cache.php"
    run_module("quarantine", docroot.parent, path=[str(planted)], docroots=[str(docroot)], manifest_dir=manifests_of(docroot))
    planted.unlink()
    planted.write_bytes(b"<?php echo 'replacement';\n")
    code, result = run_module("quarantine", docroot.parent, path=[str(planted)], docroots=[str(docroot)], state="restored",
                              manifest_dir=manifests_of(docroot))
    assert code != 0
    assert result["failed"] is True
    assert result["counts"]["refused"] == 1
    assert "a different file is at this path now" in result["results"][0]["msg"]
    assert planted.read_bytes() == b"<?php echo 'replacement';\n"
