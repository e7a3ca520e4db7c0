"""Quarantine core: locked away from the compromised account, restored exactly, nothing hidden.

Tests run as root, on trees they build under /var/tmp (which the test account can traverse, unlike
pytest's tmp_path) with files owned by another uid, and check the results with lstat, sha256,
xattrs and lsattr, and by acting as that account through setpriv.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import json
import os
import re
import shutil
import stat
import struct
import subprocess
import sys
import tarfile
import tempfile
import time

import pytest
import tree_snapshot

from ansible_collections.hostguard.hosting.plugins.module_utils import quarantine
from ansible_collections.hostguard.hosting.plugins.module_utils.quarantine import QuarantineError

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to own files as other users and to lock them")
needs_setpriv = pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv to act as the account")

ACCOUNT = 1234
WEB_SERVER_GID = 33
WEBSHELL = b"<?php @eval(base64_decode($_POST['z'])); ?>\n"
NON_UTF8_NAME = b"caf\xe9-\xff.php"
NOW_NS = 1_790_000_000 * 10**9
# POSIX ACL as the kernel stores it: user::rw- user:33:r-- group::r-- mask::r-- other::---
ACL_TAGS = ((0x01, 6, 0xFFFFFFFF), (0x02, 4, WEB_SERVER_GID), (0x04, 4, 0xFFFFFFFF), (0x10, 4, 0xFFFFFFFF),
            (0x20, 0, 0xFFFFFFFF))
ACL_WEB_SERVER_READS = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *tag) for tag in ACL_TAGS)


@pytest.fixture
def base():
    """A directory the account can traverse to, removed at the end even with immutable entries left in it."""
    path = tempfile.mkdtemp(prefix="hostguard-quarantine-test-", dir="/var/tmp")
    os.chmod(path, 0o755)
    yield path
    subprocess.run(["chattr", "-R", "-i", "-a", path], capture_output=True, check=False)
    shutil.rmtree(path)


@pytest.fixture
def site(base):
    """A WordPress-like docroot owned by the account, with every kind of entry a restore must get right."""
    root = os.path.join(base, "www")
    files = {
        "index.php": (b"<?php require __DIR__ . '/wp-blog-header.php';\n", 0o644),
        "wp-config.php": (b"<?php define('DB_PASSWORD', 's3cret');\n", 0o640),
        "wp-includes/version.php": (b"<?php\n$wp_version = '6.4.3';\n", 0o644),
        "wp-content/uploads/2024/05/cache.php": (WEBSHELL, 0o644),
        "wp-content/uploads/2024/05/photo.jpg": (b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8, 0o664),
        "cgi-bin/helper": (b"#!/bin/sh\necho ok\n", 0o4755),
        "private/nothing-to-see": (b"", 0o000),
    }
    for rel, (content, mode) in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as stream:
            stream.write(content)
    with open(os.path.join(os.fsencode(root), b"wp-content/uploads/" + NON_UTF8_NAME), "wb") as stream:
        stream.write(WEBSHELL)
    os.symlink("wp-content/uploads/2024", os.path.join(root, "latest"))
    os.link(os.path.join(root, "index.php"), os.path.join(root, "index-copy.php"))
    os.setxattr(os.path.join(root, "index.php"), "user.origin", b"deploy 2024-05-01")
    for dirpath, dirnames, filenames in os.walk(os.fsencode(root)):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), ACCOUNT, ACCOUNT, follow_symlinks=False)
    os.chown(root, ACCOUNT, ACCOUNT)
    os.chown(os.path.join(root, "wp-config.php"), ACCOUNT, WEB_SERVER_GID)
    for rel, (content, mode) in files.items():
        os.chmod(os.path.join(root, rel), mode)
    os.chmod(os.path.join(root, "wp-content/uploads"), 0o2775)
    os.chmod(os.path.join(root, "private"), 0o700)
    os.setxattr(os.path.join(root, "wp-config.php"), "system.posix_acl_access", ACL_WEB_SERVER_READS)
    _set_distinct_times(root)
    return root


def _set_distinct_times(root):
    """Old, distinct mtimes, deepest first (adding an entry moves its directory's mtime).

    Under relatime a read moves an atime that is not later than the mtime and the ctime (which every
    chown, chmod and utime sets to now): atimes a day ahead stay put while the tests look around."""
    entries = []
    for dirpath, dirnames, filenames in os.walk(os.fsencode(root)):
        entries.extend(os.path.join(dirpath, name) for name in dirnames + filenames)
    for number, path in enumerate(sorted(entries, key=lambda path: -path.count(b"/"))):
        mtime = NOW_NS - (number + 2) * 86400 * 10**9 - number * 1234567
        os.utime(path, ns=(_atime(number), mtime), follow_symlinks=False)
    os.utime(root, ns=(_atime(0), NOW_NS - 86400 * 10**9))


def _atime(number):
    return (int(time.time()) + 86400 + number) * 10**9


def snapshot(root):
    """Everything a restore must put back, for every entry under root (and root), by relative bytes path."""
    return tree_snapshot.snapshot(os.fsencode(root), detail=True)


def _describe(path):
    return tree_snapshot.describe(path, detail=True)


def run(site, paths=None, **options):
    options.setdefault("docroots", [site])
    options.setdefault("manifest_dir", os.path.join(os.path.dirname(site), "manifests"))
    return quarantine.run(paths if paths is not None else [site], **options)


def as_account(*command):
    """Run a command as the account that owns the docroot, without root's capabilities."""
    return subprocess.run(["setpriv", "--reuid=%d" % ACCOUNT, "--regid=%d" % ACCOUNT, "--clear-groups", *command],
                          capture_output=True, text=True, timeout=30, check=False)


def errno_as_account(operation, *paths):
    """The errno a Python os operation gets as the account (0 when it succeeds)."""
    code = ("import os, sys\ntry:\n    %s\n    print(0)\nexcept OSError as exc:\n    print(exc.errno)\n" % operation)
    completed = as_account(sys.executable, "-c", code, *paths)
    assert completed.returncode == 0, completed.stderr
    return int(completed.stdout)


def assert_locked(path):
    info = os.lstat(path)
    assert (info.st_uid, info.st_gid) == (0, 0), path
    if not stat.S_ISLNK(info.st_mode):
        assert stat.S_IMODE(info.st_mode) == 0, path


# --- the round trip ----------------------------------------------------------------------------

@pytest.mark.parametrize("immutable", [False, True], ids=["owner-and-mode", "immutable"])
def test_a_quarantined_docroot_is_locked_and_restored_exactly(site, immutable):
    before = snapshot(site)
    result = run(site, state="quarantined", immutable=immutable)
    assert result["changed"] is True
    assert result["counts"]["quarantined"] == 1
    assert result["results"][0]["entries"] == len(before)
    assert result["results"][0]["failures"] == []
    for rel in before:
        path = os.path.join(os.fsencode(site), rel)
        assert_locked(path)
        if immutable and not os.path.islink(path):
            assert "i" in tree_snapshot.lsattr(path), rel

    restored = run(site, state="restored")
    assert restored["counts"]["restored"] == 1, restored["results"]
    assert restored["results"][0]["failures"] == []
    assert snapshot(site) == before


def test_setuid_bits_acls_and_xattrs_survive_the_round_trip(site):
    helper, config, index = (os.path.join(site, name) for name in ("cgi-bin/helper", "wp-config.php", "index.php"))
    run(site, state="quarantined")
    # The lockdown really took them away: chown cleared setuid, chmod emptied the ACL's mask.
    assert stat.S_IMODE(os.lstat(helper).st_mode) == 0
    assert os.getxattr(config, "system.posix_acl_access") != ACL_WEB_SERVER_READS
    run(site, state="restored")
    assert stat.S_IMODE(os.lstat(helper).st_mode) == 0o4755
    assert os.getxattr(config, "system.posix_acl_access") == ACL_WEB_SERVER_READS
    assert stat.S_IMODE(os.lstat(config).st_mode) == 0o640
    assert os.getxattr(index, "user.origin") == b"deploy 2024-05-01"


def test_a_file_that_was_immutable_before_is_immutable_again_after_the_restore(site):
    config = os.path.join(site, "wp-config.php")
    subprocess.run(["chattr", "+i", config], check=True)
    before = snapshot(site)
    result = run(site, [config], state="quarantined")
    assert result["results"][0]["failures"] == []
    assert_locked(config)
    assert "i" in tree_snapshot.lsattr(config)
    run(site, [config], state="restored")
    assert snapshot(site) == before


def test_hard_links_keep_sharing_their_inode_and_links_from_outside_are_reported(site):
    index = os.path.join(site, "index.php")
    outside = os.path.join(site, "wp-includes/index-link.php")
    os.link(index, outside)
    result = run(site, [index], state="quarantined")
    assert result["results"][0]["links_outside"] == 2
    # The other names share the inode, so they are locked as well.
    assert_locked(outside)
    run(site, [index], state="restored")
    assert os.lstat(outside).st_ino == os.lstat(index).st_ino == os.lstat(os.path.join(site, "index-copy.php")).st_ino
    assert os.lstat(index).st_uid == ACCOUNT


def test_a_name_that_is_not_utf8_round_trips_through_the_manifest(site):
    planted = os.path.join(os.fsencode(site), b"wp-content/uploads/" + NON_UTF8_NAME)
    before = _describe(planted)
    result = run(site, [os.fsdecode(planted)], state="quarantined")
    entry = result["results"][0]
    assert base64.b64decode(entry["path_base64"]) == planted
    with open(entry["manifest"], "rb") as stream:
        manifest = json.loads(stream.read().decode("ascii"))
    assert base64.b64decode(manifest["path_base64"]) == planted
    assert_locked(planted)
    run(site, [os.fsdecode(planted)], state="restored")
    assert _describe(planted) == before


def test_a_symlink_is_quarantined_as_a_symlink_and_its_target_is_untouched(site):
    link = os.path.join(site, "latest")
    target = os.path.join(site, "wp-content/uploads/2024")
    target_before = _describe(target)
    run(site, [link], state="quarantined")
    assert_locked(link)
    assert os.readlink(link) == "wp-content/uploads/2024"
    assert _describe(target) == target_before


# --- what the compromised account can do --------------------------------------------------------

@needs_setpriv
def test_the_account_can_neither_read_nor_chmod_nor_chown_a_quarantined_file(site):
    planted = os.path.join(site, "wp-content/uploads/2024/05/cache.php")
    assert errno_as_account("open(sys.argv[1]).read()", planted) == 0
    run(site, [planted], state="quarantined")
    assert errno_as_account("open(sys.argv[1]).read()", planted) == errno.EACCES
    assert errno_as_account("os.chmod(sys.argv[1], 0o644)", planted) == errno.EPERM
    assert errno_as_account("os.chown(sys.argv[1], %d, %d)" % (ACCOUNT, ACCOUNT), planted) == errno.EPERM
    catting = as_account("cat", planted)
    assert catting.returncode != 0 and "Permission denied" in catting.stderr


@needs_setpriv
def test_without_immutable_the_parent_directory_owner_can_still_move_it_and_with_it_cannot(site):
    # What the documentation says each level protects against, shown.
    planted = os.path.join(site, "wp-content/uploads/2024/05/cache.php")
    shell2 = os.path.join(site, "wp-content/uploads/2024/05/shell2.php")
    with open(shell2, "wb") as stream:
        stream.write(WEBSHELL)
    os.chown(shell2, ACCOUNT, ACCOUNT)
    run(site, [planted], state="quarantined", immutable=False)
    run(site, [shell2], state="quarantined", immutable=True)
    assert errno_as_account("os.rename(sys.argv[1], sys.argv[1] + '.moved')", planted) == 0
    assert errno_as_account("os.rename(sys.argv[1], sys.argv[1] + '.moved')", shell2) == errno.EPERM
    assert errno_as_account("os.unlink(sys.argv[1])", shell2) == errno.EPERM
    assert errno_as_account("open(sys.argv[1]).read()", planted + ".moved") == errno.EACCES


@needs_setpriv
def test_the_account_cannot_list_enter_or_rename_anything_in_a_quarantined_docroot(site):
    run(site, state="quarantined")
    uploads = os.path.join(site, "wp-content/uploads")
    assert errno_as_account("os.listdir(sys.argv[1])", site) == errno.EACCES
    assert errno_as_account("os.stat(sys.argv[1])", os.path.join(site, "index.php")) == errno.EACCES
    assert errno_as_account("os.rename(sys.argv[1], sys.argv[1] + '.x')", uploads) == errno.EACCES
    assert errno_as_account("os.chmod(sys.argv[1], 0o755)", site) == errno.EPERM


# --- idempotence and check mode -----------------------------------------------------------------

def test_quarantining_twice_changes_nothing(site):
    first = run(site, state="quarantined", immutable=True)
    manifest = first["results"][0]["manifest"]
    with open(manifest, "rb") as stream:
        recorded = stream.read()
    locked = snapshot(site)
    ctimes = {rel: os.lstat(os.path.join(os.fsencode(site), rel)).st_ctime_ns for rel in locked}
    second = run(site, state="quarantined", immutable=True)
    assert second["changed"] is False
    assert [item["status"] for item in second["results"]] == ["already_quarantined"]
    assert snapshot(site) == locked
    assert {rel: os.lstat(os.path.join(os.fsencode(site), rel)).st_ctime_ns for rel in locked} == ctimes
    with open(manifest, "rb") as stream:
        assert stream.read() == recorded


def test_an_entry_unlocked_since_is_locked_again_and_the_manifest_kept(site):
    before = snapshot(site)
    index = os.path.join(site, "index.php")
    run(site, state="quarantined")
    os.chmod(index, 0o644)
    again = run(site, state="quarantined")
    assert again["changed"] is True
    assert again["results"][0]["status"] == "quarantined"
    assert again["results"][0]["changed_entries"] == 1
    assert_locked(index)
    run(site, state="restored")
    assert snapshot(site) == before


def test_restoring_what_is_not_quarantined_changes_nothing(site):
    before = snapshot(site)
    result = run(site, state="restored")
    assert result["changed"] is False
    assert [item["status"] for item in result["results"]] == ["not_quarantined"]
    assert snapshot(site) == before
    assert not os.path.exists(os.path.join(os.path.dirname(site), "manifests"))


def test_restoring_twice_changes_nothing_the_second_time(site):
    run(site, state="quarantined")
    run(site, state="restored")
    restored = snapshot(site)
    again = run(site, state="restored")
    assert again["changed"] is False
    assert again["results"][0]["status"] == "not_quarantined"
    assert snapshot(site) == restored


def test_check_mode_lists_what_would_change_and_changes_nothing(site):
    before = snapshot(site)
    planted = os.path.join(site, "wp-content/uploads/2024/05/cache.php")
    result = run(site, [planted, site], state="quarantined", check_mode=True, diff=True)
    assert result["changed"] is True
    assert [item["status"] for item in result["results"]] == ["quarantined", "already_quarantined"]
    assert result["results"][0]["changed_entries"] == len(before)
    assert result["results"][1]["covered_by"] == site
    assert result["diff"]["before"].startswith("%s tree of %d entries: owners %d:%d x" % (
        site, len(before), ACCOUNT, ACCOUNT))
    assert "owners 0:0 x%d; modes 0000 x%d" % (len(before), len(before) - 1) in result["diff"]["after"]
    assert snapshot(site) == before
    assert not os.path.exists(os.path.join(os.path.dirname(site), "manifests"))

    run(site, state="quarantined")
    locked = snapshot(site)
    check_restore = run(site, state="restored", check_mode=True, diff=True)
    assert check_restore["changed"] is True
    assert check_restore["results"][0]["status"] == "restored"
    assert check_restore["results"][0]["msg"].startswith("would restore %d entries" % len(before))
    assert snapshot(site) == locked


def test_diff_of_a_single_file_shows_owner_and_mode(site):
    planted = os.path.join(site, "wp-content/uploads/2024/05/cache.php")
    result = run(site, [planted], state="quarantined", diff=True, immutable=True)
    assert result["diff"] == {"before": "%s file %d:%d 0644\n" % (planted, ACCOUNT, ACCOUNT),
                              "after": "%s file 0:0 0000 (immutable or append-only)\n" % planted}


# --- what restore refuses or reports ------------------------------------------------------------

def test_restore_refuses_a_file_that_appeared_at_the_path_since_and_says_so(site):
    planted = os.path.join(site, "wp-content/uploads/2024/05/cache.php")
    run(site, [planted], state="quarantined")
    # The owner of the parent directory removed the quarantined file and put another one there.
    os.unlink(planted)
    with open(planted, "wb") as stream:
        stream.write(b"<?php echo 'new';\n")
    os.chown(planted, ACCOUNT, ACCOUNT)
    newcomer = _describe(planted)
    result = run(site, [planted], state="restored")
    assert result["changed"] is False
    assert result["results"][0]["status"] == "refused"
    assert "a different file is at this path now" in result["results"][0]["msg"]
    assert _describe(planted) == newcomer
    assert os.path.exists(result["results"][0]["manifest"])


def test_a_tampered_file_is_reported_per_file_left_locked_and_the_rest_restored(site):
    before = snapshot(site)
    tampered = os.path.join(site, "wp-includes/version.php")
    run(site, state="quarantined")
    with open(tampered, "r+b") as stream:
        stream.write(b"<?php eval($_POST[1]);")
    result = run(site, state="restored")
    entry = result["results"][0]
    assert entry["status"] == "failed"
    assert [(failure["path"], failure["status"]) for failure in entry["failures"]] == [(tampered, "failed")]
    assert "content changed since the quarantine" in entry["failures"][0]["reason"]
    assert entry["changed_entries"] == len(before) - 1
    assert_locked(tampered)
    after = snapshot(site)
    assert {rel for rel in before if after[rel] != before[rel]} == {b"wp-includes/version.php"}
    assert os.path.exists(entry["manifest"])
    assert result["counts"]["entries_failed"] == 1


def test_a_removed_file_is_reported_and_everything_else_restored(site):
    gone = os.path.join(site, "wp-includes/version.php")
    before = snapshot(site)
    run(site, state="quarantined")
    os.unlink(gone)
    result = run(site, state="restored")
    assert result["results"][0]["failures"] == [
        {"path": gone, "status": "failed", "reason": "missing: removed since the quarantine"}]
    after = snapshot(site)
    for rel, described in after.items():
        if rel != b"wp-includes":  # its mtime moved when the file was removed
            assert described == before[rel], rel


def test_a_file_inside_a_quarantined_docroot_is_covered_and_cannot_be_restored_alone(site):
    planted = os.path.join(site, "wp-content/uploads/2024/05/cache.php")
    run(site, state="quarantined")
    again = run(site, [planted], state="quarantined")
    assert again["changed"] is False
    assert again["results"][0]["status"] == "already_quarantined"
    assert again["results"][0]["covered_by"] == site
    alone = run(site, [planted], state="restored")
    assert alone["results"][0]["status"] == "refused"
    assert "restore %s" % site in alone["results"][0]["msg"]
    assert_locked(planted)


def test_a_file_quarantined_before_its_docroot_stays_quarantined_when_the_docroot_is_restored(site):
    before = snapshot(site)
    planted = os.path.join(site, "wp-content/uploads/2024/05/cache.php")
    run(site, [planted], state="quarantined")
    run(site, state="quarantined")
    run(site, state="restored")
    assert_locked(planted)
    run(site, [planted], state="restored")
    assert snapshot(site) == before


def test_a_replaced_quarantined_file_is_quarantined_anew_and_the_old_manifest_kept(site):
    planted = os.path.join(site, "wp-content/uploads/2024/05/cache.php")
    first = run(site, [planted], state="quarantined")
    os.unlink(planted)
    with open(planted, "wb") as stream:
        stream.write(WEBSHELL + b"// again\n")
    os.chown(planted, ACCOUNT, ACCOUNT)
    second = run(site, [planted], state="quarantined")
    assert second["results"][0]["status"] == "quarantined"
    superseded = second["results"][0]["superseded_manifest"]
    assert os.path.basename(os.path.dirname(superseded)) == "superseded"
    with open(superseded, "rb") as stream:
        assert json.loads(stream.read())["entries"][0]["sha256"] == hashlib.sha256(WEBSHELL).hexdigest()
    # The active manifest (same path, same name) now describes the new file.
    assert second["results"][0]["manifest"] == first["results"][0]["manifest"]
    with open(second["results"][0]["manifest"], "rb") as stream:
        recorded = json.loads(stream.read())["entries"][0]
    assert recorded["sha256"] == hashlib.sha256(WEBSHELL + b"// again\n").hexdigest()
    assert (recorded["uid"], recorded["mode"]) == (ACCOUNT, "0644")
    assert_locked(planted)


# --- inputs -------------------------------------------------------------------------------------

def test_the_suspicious_list_of_file_integrity_is_accepted_as_it_is(site):
    planted = os.path.join(site, "wp-content/uploads/2024/05/cache.php")
    non_utf8 = os.path.join(os.fsencode(site), b"wp-content/uploads/" + NON_UTF8_NAME)
    suspicious = [
        {"path": planted, "rule": "eval_decoded"},
        {"path": planted, "rule": "php_in_upload_dir"},
        {"path": non_utf8.decode("utf-8", "backslashreplace"), "rule": "eval_decoded",
         "path_base64": base64.b64encode(non_utf8).decode("ascii")},
    ]
    result = run(site, suspicious, state="quarantined")
    assert [item["status"] for item in result["results"]] == ["quarantined", "quarantined"]
    assert_locked(planted)
    assert_locked(non_utf8)


@pytest.mark.parametrize("paths, docroots, message", [
    (["www/index.php"], None, "path www/index.php is not absolute"),
    (["/etc/passwd"], None, "path /etc/passwd is outside the docroots"),
    (["{site}/../../etc/passwd"], None, "contains '..'"),
    (["{site}/nowhere.php"], None, "path {site}/nowhere.php does not exist"),
    (["{site}/index.php"], ["/"], "docroot / is a system directory"),
    (["{site}/index.php"], ["/etc"], "docroot /etc is a system directory"),
    (["{site}/index.php"], ["/var/"], "docroot /var/ is a system directory"),
    (["{site}/index.php"], ["{base}/etc-link"],
     "docroot {base}/etc-link runs through the symlink {base}/etc-link (-> /etc): give the path without symlinks"),
    (["{site}/index.php"], "{site}", "must be a non-empty list"),
    ("{site}/index.php", None, "must be a non-empty list"),
    ([{"rule": "eval_decoded"}], None, "has no path key"),
    ([42], None, "path 42 is not a string"),
], ids=["relative", "outside", "dotdot", "missing", "root", "etc", "var", "symlink-to-etc", "docroots-string",
        "paths-string", "dict-without-path", "not-a-string"])
def test_bad_input_fails_before_any_change_naming_the_value(site, base, paths, docroots, message):
    os.symlink("/etc", os.path.join(base, "etc-link"))
    before = snapshot(site)

    def filled(value):
        if isinstance(value, list):
            return [filled(item) for item in value]
        return value.format(site=site, base=base) if isinstance(value, str) else value

    with pytest.raises(QuarantineError, match=re.escape(filled(message))):
        run(site, filled(paths), state="quarantined", docroots=filled(docroots) if docroots else [site])
    assert snapshot(site) == before
    assert not os.path.exists(os.path.join(base, "manifests"))


def test_a_symlinked_directory_cannot_lead_a_path_out_of_the_docroot(site, base):
    outside = os.path.join(base, "outside")
    os.mkdir(outside)
    with open(os.path.join(outside, "victim"), "wb") as stream:
        stream.write(b"not the account's\n")
    os.symlink(outside, os.path.join(site, "wp-content/escape"))
    with pytest.raises(QuarantineError, match=re.escape("cannot be reached from docroot %s without following a symlink "
                                                        "or leaving its file system (escape is a symlink (-> %s): "
                                                        "not followed)" % (site, outside))):
        run(site, [os.path.join(site, "wp-content/escape/victim")], state="quarantined")
    assert os.lstat(os.path.join(outside, "victim")).st_uid == 0
    assert stat.S_IMODE(os.lstat(os.path.join(outside, "victim")).st_mode) == 0o644


def test_a_manifest_dir_inside_the_docroot_or_open_to_others_is_refused(site, base):
    with pytest.raises(QuarantineError, match="manifest_dir %s/manifests overlaps docroot" % site):
        run(site, state="quarantined", manifest_dir=os.path.join(site, "manifests"))
    loose = os.path.join(base, "loose")
    os.mkdir(loose, 0o755)
    os.chmod(loose, 0o755)
    with pytest.raises(QuarantineError, match="manifest_dir %s must be owned by root with mode 0700" % loose):
        run(site, state="quarantined", manifest_dir=loose)


def test_manifests_are_root_only_and_list_every_entry_with_its_hash(site):
    result = run(site, state="quarantined")
    manifest_path = result["results"][0]["manifest"]
    assert stat.S_IMODE(os.stat(os.path.dirname(manifest_path)).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(manifest_path).st_mode) == 0o600
    with open(manifest_path, "rb") as stream:
        manifest = json.loads(stream.read().decode("ascii"))
    by_path = {entry["path"]: entry for entry in manifest["entries"]}
    planted = by_path["wp-content/uploads/2024/05/cache.php"]
    assert planted["sha256"] == hashlib.sha256(WEBSHELL).hexdigest()
    assert (planted["uid"], planted["gid"], planted["mode"]) == (ACCOUNT, ACCOUNT, "0644")
    assert by_path["latest"]["target"] == "wp-content/uploads/2024"
    assert base64.b64decode(by_path["wp-config.php"]["xattrs"]["system.posix_acl_access"]) == ACL_WEB_SERVER_READS
    assert by_path["cgi-bin/helper"]["mode"] == "4755"


def test_the_evidence_copy_holds_the_manifest_and_the_files_with_numeric_owners(site, base):
    planted = os.path.join(site, "wp-content/uploads")
    result = run(site, [planted], state="quarantined", evidence_dir=os.path.join(base, "evidence"))
    evidence = result["results"][0]["evidence"]
    assert stat.S_IMODE(os.stat(evidence).st_mode) == 0o600
    with tarfile.open(evidence, encoding="utf-8", errors="surrogateescape") as tar:
        members = {member.name: member for member in tar.getmembers()}
        shell = members["uploads/2024/05/cache.php"]
        assert (shell.uid, shell.gid, shell.uname, shell.gname, shell.mode) == (ACCOUNT, ACCOUNT, "", "", 0o644)
        assert tar.extractfile(shell).read() == WEBSHELL
        assert os.fsencode("uploads/" + os.fsdecode(NON_UTF8_NAME)) in {os.fsencode(name) for name in members}
        manifest = json.loads(tar.extractfile("manifest.json").read())
    assert manifest["evidence"] == evidence
    assert_locked(os.path.join(planted, "2024/05/cache.php"))


# --- what is quarantined now (quarantine_info) -----------------------------------------------------

def test_what_is_quarantined_is_listed_with_its_manifest_whether_its_lock_holds_and_how_to_restore_it(site):
    manifests = os.path.join(os.path.dirname(site), "manifests")
    webshell = os.path.join(site, "wp-content/uploads/2024/05/cache.php")
    helper = os.path.join(site, "cgi-bin/helper")
    private = os.path.join(site, "private")
    assert quarantine.quarantined(manifests)["quarantined"] == []  # no manifest directory yet
    assert run(site, [webshell, helper, private], state="quarantined")["failed"] is False
    before = snapshot(site)
    listed = {item["path"]: item for item in quarantine.quarantined(manifests)["quarantined"]}
    assert snapshot(site) == before  # reading changes nothing, not even an atime
    assert set(listed) == {webshell, helper, private}
    item = listed[webshell]
    manifest = json.loads(open(item["manifest"]).read())
    assert manifest["path"] == webshell and os.path.dirname(item["manifest"]) == manifests
    assert (item["docroot"], item["quarantined_at"], item["entries"], item["type"]) == (
        site, manifest["quarantined_at"], 1, "file")
    assert (item["lock"], item["lock_problem"]) == ("in_force", None)
    assert json.loads(item["restore"].split(" -e ", 1)[1].strip("'")) == {
        "quarantine_docroots": [site], "quarantine_restore_paths": [webshell]}
    assert (listed[private]["type"], listed[private]["entries"]) == ("directory", 2)
    # Undone behind the quarantine's back, removed, replaced by another file: each told apart.
    os.chown(webshell, ACCOUNT, ACCOUNT)
    os.chmod(webshell, 0o644)
    os.unlink(helper)
    shutil.rmtree(private)
    os.mkdir(private)
    states = {item["path"]: (item["lock"], item["lock_problem"])
              for item in quarantine.quarantined(manifests)["quarantined"]}
    assert states[webshell] == ("undone", "owner %d:%d, mode 0644 now (locked: 0:0 0000)" % (ACCOUNT, ACCOUNT))
    assert states[helper] == ("gone", "nothing is at the path now")
    assert states[private][0] == "replaced" and "a different directory is at this path now" in states[private][1]


def test_a_restored_path_is_no_longer_listed_and_a_broken_manifest_is_named(site):
    manifests = os.path.join(os.path.dirname(site), "manifests")
    webshell = os.path.join(site, "wp-content/uploads/2024/05/cache.php")
    run(site, [webshell], state="quarantined")
    assert [item["path"] for item in quarantine.quarantined(manifests)["quarantined"]] == [webshell]
    assert run(site, [webshell], state="restored")["failed"] is False
    with open(os.path.join(manifests, "broken.json"), "w") as stream:
        stream.write("{\"format\": \"something else\"}")
    listed = quarantine.quarantined(manifests)
    assert listed["quarantined"] == []
    assert listed["unreadable"] == [{"manifest": os.path.join(manifests, "broken.json"),
                                     "reason": "not a hostguard-quarantine v1 manifest"}]


def test_a_quarantine_whose_docroot_became_a_symlink_is_not_followed_and_is_said_unknown(site, base):
    manifests = os.path.join(base, "manifests")
    webshell = os.path.join(site, "wp-content/uploads/2024/05/cache.php")
    run(site, [webshell], state="quarantined")
    os.rename(site, site + ".moved")
    os.symlink(site + ".moved", site)
    (item,) = quarantine.quarantined(manifests)["quarantined"]
    assert item["lock"] == "unknown" and item["lock_problem"]
