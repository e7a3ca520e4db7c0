"""PHP and ELF files dropped in the temporary directories: each found with its owner and rule, nothing followed."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile

import pytest
from hostile_account import ATTACKER, Attacker

pytest.importorskip("yara")

from ansible_collections.hostguard.hosting.plugins.module_utils import planted_files  # noqa: E402
from ansible_collections.hostguard.hosting.plugins.module_utils.webshell_rules import Scanner  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to own files as other accounts")

SHELL = b"<?php @eval($_POST['x']); ?>\n"
SHORT_TAG_SHELL = b"<? $c = $_REQUEST['c']; system($c); ?>\n"
ELF = b"\x7fELF\x02\x01\x01\x00" + bytes(56) + b"miner"
OUTSIDE_SHELL = b"<?php @eval($_POST['outside']); ?>\n"
NOBODY = 65534
RACE_ROUNDS = 12


@pytest.fixture(scope="module")
def scanner():
    return Scanner()


@pytest.fixture
def base():
    """A directory like /tmp (root's, sticky, writable by all) and a root-only directory outside it."""
    path = tempfile.mkdtemp(prefix="hostguard-planted-test-", dir="/var/tmp")
    os.chmod(path, 0o755)
    tmp = os.path.join(path, "tmp")
    os.mkdir(tmp)
    os.chmod(tmp, 0o1777)
    outside = os.path.join(path, "outside")
    os.mkdir(outside, 0o700)
    write(os.path.join(outside, "secret.php"), OUTSIDE_SHELL)
    yield path
    shutil.rmtree(path)


def write(path, content, owner=None, mode=0o644):
    with open(path, "wb") as stream:
        stream.write(content)
    os.chmod(path, mode)
    if owner is not None:
        os.chown(path, owner, owner)


def by_path(report):
    return {item["path"]: item for item in report.as_dict()["files"]}


def test_php_by_name_or_open_tag_and_elf_are_found_with_owner_and_rule(base, scanner):
    tmp = os.path.join(base, "tmp")
    os.makedirs(os.path.join(tmp, "systemd-private-1-php8.2-fpm.service-x/tmp"))
    write(os.path.join(tmp, "systemd-private-1-php8.2-fpm.service-x/tmp/.sess.php"), SHELL, owner=NOBODY)
    write(os.path.join(tmp, "notes.txt"), SHORT_TAG_SHELL, owner=NOBODY)
    write(os.path.join(tmp, "kworker"), ELF, owner=NOBODY, mode=0o755)
    write(os.path.join(tmp, "cache.php"), b"<?php return ['a' => 1];\n")
    write(os.path.join(tmp, "readme.txt"), b"nothing to see\n")
    write(os.path.join(tmp, "app.js"), b"if (a <? b) {}\n")
    found = by_path(planted_files.scan([tmp], scanner))
    shell = found[tmp + "/systemd-private-1-php8.2-fpm.service-x/tmp/.sess.php"]
    assert (shell["kind"], shell["owner"], shell["uid"], shell["mode"]) == ("php", "nobody", NOBODY, "0644")
    assert "eval_request" in {finding["rule"] for finding in shell["findings"]}
    assert shell["findings"][0]["line_number"] == 1 and "$_POST" in shell["findings"][0]["line"]
    assert shell["sha256"] == hashlib.sha256(SHELL).hexdigest() and shell["scanned"] is True
    short_tag = found[tmp + "/notes.txt"]
    assert short_tag["kind"] == "php" and "request_through_variable" in {f["rule"] for f in short_tag["findings"]}
    elf = found[tmp + "/kworker"]
    assert (elf["kind"], elf["executable"], elf["owner"]) == ("elf", True, "nobody")
    # Plain PHP is reported too (nothing in a temporary directory is vouched for), without findings.
    assert found[tmp + "/cache.php"]["kind"] == "php" and found[tmp + "/cache.php"]["findings"] == []
    assert set(found) == {tmp + "/systemd-private-1-php8.2-fpm.service-x/tmp/.sess.php", tmp + "/notes.txt",
                          tmp + "/kworker", tmp + "/cache.php"}


def test_the_summary_counts_what_was_examined_and_found(base, scanner):
    tmp = os.path.join(base, "tmp")
    write(os.path.join(tmp, "a.php"), SHELL)
    write(os.path.join(tmp, "b"), ELF)
    write(os.path.join(tmp, "c.txt"), b"plain\n")
    summary = planted_files.scan([tmp], scanner).as_dict()["summary"]
    assert summary == {"examined": 3, "php": 1, "elf": 1, "with_findings": 1}


def test_symlinks_are_never_followed_to_a_file_or_a_directory_outside(base, scanner):
    tmp = os.path.join(base, "tmp")
    os.symlink(os.path.join(base, "outside/secret.php"), os.path.join(tmp, "link.php"))
    os.symlink(os.path.join(base, "outside"), os.path.join(tmp, "linkdir"))
    report = planted_files.scan([tmp], scanner).as_dict()
    assert report["files"] == [] and report["errors"] == []


def test_a_root_that_is_a_symlink_is_refused_and_named(base, scanner):
    link = os.path.join(base, "tmp/elsewhere")
    os.symlink(os.path.join(base, "outside"), link)
    report = planted_files.scan([link], scanner).as_dict()
    assert report["files"] == []
    assert [error["path"] for error in report["errors"]] == [link]


def test_an_absent_directory_is_listed_and_a_relative_one_refused(base, scanner):
    report = planted_files.scan([os.path.join(base, "no-shm"), os.path.join(base, "tmp")], scanner).as_dict()
    assert report["absent"] == [os.path.join(base, "no-shm")]
    with pytest.raises(ValueError, match="'tmp' is not an absolute path"):
        planted_files.scan(["tmp"], scanner)
    with pytest.raises(ValueError, match="is not an absolute path without '..'"):
        planted_files.scan([base + "/tmp/../outside"], scanner)


def test_a_file_past_max_size_is_classified_by_its_start_and_not_matched(base, scanner):
    tmp = os.path.join(base, "tmp")
    write(os.path.join(tmp, "big.bin"), ELF + bytes(4096) + SHELL)
    found = by_path(planted_files.scan([tmp], scanner, max_size=1024))
    big = found[tmp + "/big.bin"]
    assert (big["kind"], big["scanned"], big["sha256"], big["findings"]) == ("elf", False, None, [])


def test_allowed_digests_are_not_reported(base, scanner):
    tmp = os.path.join(base, "tmp")
    write(os.path.join(tmp, "known.php"), SHELL)
    allowing = Scanner(allow_sha256=[hashlib.sha256(SHELL).hexdigest()])
    assert planted_files.scan([tmp], allowing).as_dict()["files"] == []


def test_an_account_swapping_its_directory_for_a_symlink_never_makes_the_scan_read_outside(base, scanner):
    """The account swaps its directory and a symlink to a root-only directory with RENAME_EXCHANGE while the
    scan runs: the file outside is never read, whatever name it would have been reached by."""
    tmp = os.path.join(base, "tmp")
    own = os.path.join(tmp, "d")
    os.mkdir(own)
    write(os.path.join(own, "secret.php"), SHELL, owner=ATTACKER)
    os.chown(own, ATTACKER, ATTACKER)
    os.symlink(os.path.join(base, "outside"), os.path.join(tmp, "s"))
    os.lchown(os.path.join(tmp, "s"), ATTACKER, ATTACKER)
    outside_digest = hashlib.sha256(OUTSIDE_SHELL).hexdigest()
    seen = set()
    with Attacker([("d", "s")], within=tmp):
        for _round in range(RACE_ROUNDS):
            report = planted_files.scan([tmp], scanner).as_dict()
            assert outside_digest not in {item["sha256"] for item in report["files"]}
            seen.update(item["path"] for item in report["files"])
            seen.update(error["path"] for error in report["errors"])
    # The account's own file was reached in some rounds, under one name or the other: the scan did run.
    assert seen & {tmp + "/d/secret.php", tmp + "/s/secret.php", tmp + "/d", tmp + "/s"}
