"""Quarantine against a hostile account that races root in its own tree.

The account (a real uid, in a forked process that dropped root) swaps directories, symlinks and hard links
with renameat2(RENAME_EXCHANGE) in a tight loop while the quarantine and the restore run. Stand-in files
outside the tree (another tenant's files, a service directory) must keep their owner, mode and content
whatever the timing; the account can make a run refuse or fail, never make it act outside the tree.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import signal
import stat
import subprocess
import tarfile
import tempfile
import time

import pytest
from hostile_account import ATTACKER, Attacker

from ansible_collections.hostguard.hosting.plugins.module_utils import quarantine, safe_fs
from ansible_collections.hostguard.hosting.plugins.module_utils.quarantine import QuarantineError

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act for a second account and to lock files")

OTHER_TENANT = 1998
WEBSHELL = b"<?php @eval($_POST['x']); ?>\n"
RACE_ROUNDS = 12


@pytest.fixture
def base():
    path = tempfile.mkdtemp(prefix="hostguard-race-test-", dir="/var/tmp")
    os.chmod(path, 0o755)
    yield path
    subprocess.run(["umount", "-R", os.path.join(path, "home/acct/www/mnt")], capture_output=True, check=False)
    shutil.rmtree(path)


def make_tree(base):
    """/home/acct (the attacker's home, its own) with a docroot www; another tenant's docroot; a service
    directory of root's. Returns (home, docroot, outside stand-ins {path: (uid, mode, content)})."""
    home = os.path.join(base, "home/acct")
    docroot = os.path.join(home, "www")
    os.makedirs(docroot)
    for directory in (os.path.join(base, "home"),):
        os.chmod(directory, 0o755)
    outside = {}
    for directory, uid, mode in ((os.path.join(base, "home/other/www"), OTHER_TENANT, 0o640),
                                 (os.path.join(base, "etc"), 0, 0o644)):
        os.makedirs(directory)
        for index in range(3):
            path = os.path.join(directory, "file%d.php" % index)
            with open(path, "wb") as stream:
                stream.write(b"outside %s %d\n" % (os.fsencode(directory), index))
            os.chown(path, uid, uid)
            os.chmod(path, mode)
            outside[path] = None
        os.chown(directory, uid, uid)
    for index in range(4):
        sub = os.path.join(docroot, "dir%d" % index)
        os.mkdir(sub)
        for name in ("file0.php", "file1.php", "file2.php"):
            with open(os.path.join(sub, name), "wb") as stream:
                stream.write(WEBSHELL)
    for dirpath, dirnames, filenames in os.walk(home):
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), ATTACKER, ATTACKER, follow_symlinks=False)
    os.chown(home, ATTACKER, ATTACKER)
    return home, docroot, snapshot_outside(outside)


def snapshot_outside(paths):
    state = {}
    for path in paths:
        info = os.lstat(path)
        with open(path, "rb") as stream:
            state[path] = (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode), info.st_ino,
                           hashlib.sha256(stream.read()).hexdigest())
    return state


def run(paths, state, docroots, base, **kwargs):
    return quarantine.run(paths, state=state, docroots=docroots, manifest_dir=os.path.join(base, "manifests"),
                          **kwargs)


def attempt(paths, state, docroots, base, **kwargs):
    """One run under attack: its result, or the refusal it raised."""
    try:
        return run(paths, state, docroots, base, **kwargs)
    except QuarantineError as exc:
        return {"refused": str(exc)}


def make_chain(top, depth, owner=None):
    """``depth`` nested directories ``d/d/...`` below ``top``; the deepest one's path."""
    path = top
    for _level in range(depth):
        path = os.path.join(path, "d")
        os.mkdir(path)
        if owner is not None:
            os.chown(path, owner, owner)
    return path


def test_a_docroot_swapped_for_a_symlink_is_refused_and_nothing_outside_is_locked(base):
    home, docroot, outside = make_tree(base)
    real = os.path.join(home, "www-real")
    os.rename(docroot, real)
    os.symlink(os.path.join(base, "home/other/www"), docroot)
    with pytest.raises(QuarantineError, match="docroot %s runs through the symlink %s" % (docroot, docroot)):
        run([docroot], "quarantined", [docroot], base)
    assert snapshot_outside(outside) == outside


def test_a_docroot_exchanged_with_a_symlink_while_it_is_quarantined_never_locks_the_other_tree(base):
    home, docroot, outside = make_tree(base)
    decoy = os.path.join(home, "decoy")
    os.symlink(os.path.join(base, "home/other/www"), decoy)
    outcomes = []
    with Attacker([(docroot, decoy)]):
        for _round in range(RACE_ROUNDS):
            result = attempt([docroot], "quarantined", [docroot], base)
            outcomes.append(result)
            if "refused" not in result:
                attempt([docroot], "restored", [docroot], base)
    assert snapshot_outside(outside) == outside
    assert any("refused" in outcome for outcome in outcomes) or any(
        outcome.get("counts", {}).get("quarantined") for outcome in outcomes)


def test_a_parent_swapped_for_a_symlink_mid_run_never_locks_a_file_outside(base):
    home, docroot, outside = make_tree(base)
    etc = os.path.join(base, "etc")
    targets = [os.path.join(docroot, "dir%d" % index, "file%d.php" % (index % 3)) for index in range(4)]
    # Each later target's parent is exchanged with a symlink to the service directory, whose files carry the
    # same names.
    pairs = []
    for index in range(1, 4):
        link = os.path.join(docroot, "link%d" % index)
        os.symlink(etc, link)
        os.lchown(link, ATTACKER, ATTACKER)
        pairs.append((os.path.join(docroot, "dir%d" % index), link))
    locked_inside = 0
    with Attacker(pairs, after_locked=targets[0]):
        for _round in range(RACE_ROUNDS):
            result = attempt(targets, "quarantined", [docroot], base)
            locked_inside += result.get("counts", {}).get("quarantined", 0)
            attempt(targets, "restored", [docroot], base)
    assert snapshot_outside(outside) == outside
    assert locked_inside > 0  # the race did not simply stop every run


def test_a_symlink_exchanged_with_a_hard_link_is_never_changed_by_name(base):
    home, docroot, outside = make_tree(base)
    victim = os.path.join(base, "home/other/www/file0.php")
    planted = os.path.join(docroot, "c99.php")
    os.symlink("/etc/passwd", planted)
    os.lchown(planted, ATTACKER, ATTACKER)
    # Where protected_hardlinks is off the account can link any file; root makes the link for it here.
    hard = os.path.join(docroot, "hard.php")
    os.link(victim, hard)
    with Attacker([(planted, hard)]):
        for _round in range(RACE_ROUNDS):
            attempt([planted], "quarantined", [docroot], base)
            attempt([planted], "restored", [docroot], base)
    assert snapshot_outside(outside) == outside


def test_a_hard_link_to_another_accounts_file_is_left_alone(base):
    home, docroot, outside = make_tree(base)
    victim = os.path.join(base, "home/other/www/file1.php")
    os.link(victim, os.path.join(docroot, "dir0", "linked.php"))
    result = run([os.path.join(docroot, "dir0")], "quarantined", [docroot], base)
    failures = result["results"][0]["failures"]
    assert [failure["path"] for failure in failures] == [os.path.join(docroot, "dir0", "linked.php")]
    assert "a hard link (2 names) to a file of uid %d" % OTHER_TENANT in failures[0]["reason"]
    assert snapshot_outside(outside) == outside
    assert os.lstat(os.path.join(docroot, "dir0", "file0.php")).st_uid == 0


def test_a_restore_after_the_docroot_was_replaced_fails_and_says_so(base):
    home, docroot, outside = make_tree(base)
    run([docroot], "quarantined", [docroot], base)
    os.rename(docroot, os.path.join(home, "www-locked"))
    os.mkdir(docroot)
    os.chown(docroot, ATTACKER, ATTACKER)
    result = run([docroot], "restored", [docroot], base)
    assert result["failed"] and result["results"][0]["status"] == "failed"
    assert "the docroot %s was replaced since the quarantine" % docroot in result["results"][0]["msg"]
    # And as a symlink to the locked tree: refused before anything, naming it.
    os.rmdir(docroot)
    os.symlink(os.path.join(home, "www-locked"), docroot)
    with pytest.raises(QuarantineError, match="runs through the symlink"):
        run([docroot], "restored", [docroot], base)
    assert os.lstat(os.path.join(home, "www-locked")).st_uid == 0


def test_a_mount_inside_the_docroot_is_never_crossed(base):
    home, docroot, outside = make_tree(base)
    mount_point = os.path.join(docroot, "mnt")
    os.mkdir(mount_point)
    os.chown(mount_point, ATTACKER, ATTACKER)
    if subprocess.run(["mount", "--bind", os.path.join(base, "etc"), mount_point], capture_output=True,
                      check=False).returncode:
        pytest.skip("bind mounts are not allowed here")
    result = run([docroot], "quarantined", [docroot], base)
    assert result["failed"]
    assert snapshot_outside(outside) == outside
    assert any(failure["path"].startswith(mount_point) for failure in result["results"][0]["failures"]) or \
        "mount point" in result["results"][0]["msg"]


def test_depth_is_not_limited_by_the_open_files_limit(base):
    home, docroot, outside = make_tree(base)
    deep = make_chain(docroot, 300, owner=ATTACKER)
    with open(os.path.join(deep, "shell.php"), "wb") as stream:
        stream.write(WEBSHELL)
    os.chown(os.path.join(deep, "shell.php"), ATTACKER, ATTACKER)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # Far fewer descriptors than the chain has levels.
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 60, hard))
    try:
        result = run([docroot], "quarantined", [docroot], base)
        assert result["counts"]["quarantined"] == 1, result["results"][0]["msg"]
        assert os.lstat(os.path.join(deep, "shell.php")).st_uid == 0
        restored = run([docroot], "restored", [docroot], base)
        assert restored["counts"]["restored"] == 1, restored["msg"]
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert os.lstat(os.path.join(deep, "shell.php")).st_uid == ATTACKER


def test_a_huge_sparse_file_is_locked_at_once_and_copied_with_its_holes(base):
    home, docroot, outside = make_tree(base)
    sparse = os.path.join(docroot, "dir0", "huge.bin")
    size = 1 << 40  # 1 TiB of holes around two small pieces of data
    with open(sparse, "wb") as stream:
        stream.write(b"head")
        stream.seek(size // 2)
        stream.write(WEBSHELL)
        stream.truncate(size)
    os.chown(sparse, ATTACKER, ATTACKER)
    evidence = os.path.join(base, "evidence")
    started = time.monotonic()
    result = run([os.path.join(docroot, "dir0")], "quarantined", [docroot], base, evidence_dir=evidence)
    assert result["counts"]["quarantined"] == 1, result["msg"]
    assert time.monotonic() - started < 60  # reading 1 TiB of zeros would take far longer
    with open(result["results"][0]["manifest"], "rb") as stream:
        entries = {entry["path"]: entry for entry in json.loads(stream.read())["entries"]}
    assert "sha256_data" in entries["huge.bin"] and "sha256" not in entries["huge.bin"]
    with tarfile.open(result["results"][0]["evidence"]) as tar:
        member = tar.getmember("dir0/huge.bin")
        assert member.size == size
        data = tar.extractfile(member)
        assert data.read(4) == b"head"
        data.seek(size // 2)
        assert data.read(len(WEBSHELL)) == WEBSHELL
    restored = run([os.path.join(docroot, "dir0")], "restored", [docroot], base)
    assert restored["counts"]["restored"] == 1, restored["msg"]


def test_the_walker_comes_back_up_only_to_the_directory_it_left(base):
    home, docroot, outside = make_tree(base)
    make_chain(docroot, 10)
    top = os.open(docroot, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with safe_fs.Walker(top, open_limit=3) as walker:
            walker.directory(("d",) * 10)
            # The account moves a directory in the middle of the chain elsewhere: the way back up refuses.
            os.rename(os.path.join(docroot, "d", "d", "d"), os.path.join(docroot, "moved"))
            with pytest.raises(safe_fs.UnsafePath, match="was moved during the walk"):
                walker.directory(("d", "d"))
    finally:
        os.close(top)


class Rewriter(object):
    """A process of the account that rewrites ``path`` through a descriptor it opened beforehand, until stopped."""

    def __init__(self, path):
        self.path = path
        self.pid = None

    def __enter__(self):
        read_end, write_end = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            try:
                os.close(read_end)
                os.setgroups([])
                os.setresgid(ATTACKER, ATTACKER, ATTACKER)
                os.setresuid(ATTACKER, ATTACKER, ATTACKER)
                fd = os.open(self.path, os.O_WRONLY)
                os.write(write_end, b"x")
                counter = 0
                while True:
                    counter += 1
                    os.pwrite(fd, b"<?php // rewrite %012d ?>\n" % counter, 0)
            finally:
                os._exit(0)
        os.close(write_end)
        assert os.read(read_end, 1) == b"x"
        os.close(read_end)
        return self

    def __exit__(self, *exc_info):
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)


@pytest.mark.parametrize("round_number", range(4))
def test_a_file_rewritten_during_an_evidence_quarantine_is_locked_and_copied_as_hashed(base, round_number):
    """The account keeps rewriting a file through a descriptor it opened before the quarantine: the tree is locked
    all the same, and the evidence holds exactly the bytes the manifest's hash names."""
    home, docroot, outside = make_tree(base)
    busy = os.path.join(docroot, "dir0", "file0.php")
    with Rewriter(busy):
        result = run([docroot], "quarantined", [docroot], base, evidence_dir=os.path.join(base, "evidence"))
    assert result["counts"]["quarantined"] == 1, result["results"][0]["msg"]
    assert os.lstat(busy).st_uid == 0 and stat.S_IMODE(os.lstat(busy).st_mode) == 0
    with open(result["results"][0]["manifest"], "rb") as stream:
        recorded = {entry["path"]: entry for entry in json.loads(stream.read())["entries"]}
    with tarfile.open(result["results"][0]["evidence"]) as tar:
        copied = tar.extractfile("www/dir0/file0.php").read()
    assert hashlib.sha256(copied).hexdigest() == recorded["dir0/file0.php"]["sha256"]
