"""File integrity core: the seeds' planted files are found, the database is exact and trustworthy.

Tests run as root, on trees they build in tmp_path.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pathlib
import shutil
import sqlite3
import subprocess
import sys
import tempfile

import pytest
from hostile_account import ATTACKER, Attacker

from ansible_collections.hostguard.hosting.plugins.module_utils import file_integrity, webshell_rules
from ansible_collections.hostguard.hosting.plugins.module_utils.file_integrity import (
    IntegrityError,
    UntrustedDatabaseError,
    hash_file,
    read_database,
)

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to own files as other users")
WEBSHELL = b"<?php @eval(base64_decode($_POST['z'])); ?>\n"
KEY = "correct horse battery staple"


@pytest.fixture
def site(tmp_path):
    """A small WordPress-like docroot and a database directory beside it."""
    root = tmp_path / "www"
    for directory in ("wp-includes", "wp-admin", "wp-content/uploads/2024/05", "wp-content/cache"):
        (root / directory).mkdir(parents=True)
    (root / "index.php").write_bytes(b"<?php require __DIR__ . '/wp-blog-header.php';\n")
    (root / "wp-includes/version.php").write_bytes(b"<?php\n$wp_version = '6.4.3';\n$wp_db_version = 56657;\n")
    (root / "wp-includes/load.php").write_bytes(b"<?php\nfunction wp_load() { return 1; }\n")
    (root / "wp-admin/admin.php").write_bytes(b"<?php\n// admin\n")
    (root / "wp-content/uploads/2024/05/photo.jpg").write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(4096))
    (root / "wp-content/cache/page.html").write_bytes(b"<html></html>")
    (tmp_path / "db").mkdir()
    return root


def database_of(site):
    return str(site.parent / "db" / "site.db")


def run(site, **options):
    options.setdefault("database", database_of(site))
    return file_integrity.run([str(site)], **options)


def paths_of(items):
    return sorted(item["path"] for item in items)


def changes_of(result):
    return {item["path"]: item["changes"] for item in result["modified"]}


def rules_for(result, path):
    return sorted(item["rule"] for item in result["suspicious"] if item["path"] == path)


def key_of(path):
    return os.fsencode(path).replace(b"/", b"\0")


def stored_rows(database):
    """The rows of the database's entries table, read with the standard library alone, in stored order."""
    connection = sqlite3.connect("file:%s?mode=ro" % database, uri=True)
    try:
        return connection.execute("SELECT * FROM entries").fetchall()
    finally:
        connection.close()


def edit_database(database, statement, parameters, reseal=False):
    """Change a row as someone with write access to the file would; ``reseal`` also fixes the plain sha256."""
    connection = sqlite3.connect(database, isolation_level=None)
    try:
        connection.execute(statement, parameters)
        if reseal:
            meta = dict(connection.execute("SELECT name, value FROM meta"))
            digest = hashlib.sha256()
            file_integrity._digest_rows(digest, connection.execute("SELECT * FROM entries ORDER BY key").fetchall())
            sha256 = file_integrity._seal(meta["header"], digest.hexdigest(), None)[0]
            connection.execute("UPDATE meta SET value = ? WHERE name = 'sha256'", (sha256,))
    finally:
        connection.close()


def test_a_baseline_then_a_check_of_the_same_tree_finds_nothing(site):
    baseline = run(site, state="baseline")
    assert baseline["changed"] is True
    assert baseline["summary"]["files"] == 6
    check = run(site, state="check")
    assert check["changed"] is False
    assert (check["added"], check["removed"], check["modified"], check["suspicious"]) == ([], [], [], [])
    assert check["summary"]["files_hashed"] == 0


def test_a_base64_eval_backdoor_in_uploads_is_added_and_suspicious(site):
    run(site, state="baseline")
    backdoor = site / "wp-content/uploads/2024/05/cache.php"
    backdoor.write_bytes(WEBSHELL)
    result = run(site, state="check")
    assert paths_of(result["added"]) == [str(backdoor)]
    assert rules_for(result, str(backdoor)) == ["eval_decoded", "eval_request", "php_in_upload_dir"]
    finding = next(item for item in result["suspicious"] if item["rule"] == "eval_decoded")
    assert finding["line"] == WEBSHELL.decode().strip()
    assert finding["line_number"] == 1


def test_php_inside_a_jpg_is_suspicious(site):
    run(site, state="baseline")
    disguised = site / "wp-content/uploads/2024/05/avatar.jpg"
    disguised.write_bytes(b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 200 + b"<?php system($_GET['c']); ?>")
    result = run(site, state="check")
    assert paths_of(result["added"]) == [str(disguised)]
    assert rules_for(result, str(disguised)) == ["eval_request", "php_after_image_magic"]


def test_a_core_file_modified_and_touched_back_is_found_without_rehashing_everything(site, tmp_path):
    run(site, state="baseline")
    core = site / "wp-includes/load.php"
    before = core.stat()
    original = core.read_bytes()
    reference = tmp_path / "reference"
    shutil.copy2(core, reference)  # keeps the original mtime, as an attacker's reference file would
    tampered = original.replace(b"return 1;", b"eval($_POST[1]);")[:len(original)].ljust(len(original), b" ")
    core.write_bytes(tampered)
    subprocess.run(["touch", "-r", str(reference), str(core)], check=True)
    after = core.stat()
    assert (after.st_mtime_ns, after.st_size, after.st_ino) == (before.st_mtime_ns, before.st_size, before.st_ino)

    result = run(site, state="check", rehash="changed")
    assert changes_of(result) == {str(core): ["content"]}
    assert result["summary"]["files_hashed"] == 1
    assert rules_for(result, str(core)) == ["eval_request"]


@needs_root
def test_a_chmod_000_root_owned_file_is_hashed_scanned_and_reported(site):
    run(site, state="baseline")
    planted = site / "wp-admin/.cache.php"
    planted.write_bytes(WEBSHELL)
    os.chown(planted, 0, 0)
    os.chmod(planted, 0)
    existing = site / "wp-admin/admin.php"
    os.chmod(existing, 0)
    result = run(site, state="check")
    (added,) = result["added"]
    assert (added["path"], added["mode"], added["uid"], added["gid"]) == (str(planted), "0000", 0, 0)
    assert added["sha256"] is not None
    assert "eval_decoded" in rules_for(result, str(planted))
    assert changes_of(result) == {str(existing): ["mode"]}


@needs_root
def test_files_of_other_owners_are_recorded_by_number_and_owner_changes_reported(site):
    foreign = site / "wp-content/uploads/2024/05/upload.pdf"
    foreign.write_bytes(b"%PDF-1.4\n")
    os.chown(foreign, 12345, 23456)
    run(site, state="baseline")
    recorded = read_database(database_of(site)).entries[str(foreign)]
    assert (recorded.uid, recorded.gid) == (12345, 23456)
    os.chown(foreign, 0, 23456)
    os.chown(site / "index.php", 0, 54321)
    result = run(site, state="check")
    assert changes_of(result) == {str(foreign): ["owner"], str(site / "index.php"): ["group"]}


def test_names_that_are_not_utf8_or_contain_newlines_round_trip_exactly(site):
    latin1 = os.path.join(os.fsencode(site), b"caf\xe9.php")
    newline = site / "evil\n.php"
    with open(latin1, "wb") as handle:
        handle.write(b"<?php echo 1;")
    newline.write_bytes(b"<?php echo 2;")
    run(site, state="baseline")

    entries = read_database(database_of(site)).entries
    assert latin1 in {os.fsencode(path) for path in entries}
    assert str(newline) in entries
    stored = {row[0] for row in stored_rows(database_of(site))}
    assert len(stored) == len(entries)
    assert latin1.replace(b"/", b"\0") in stored  # the exact bytes, as the key

    with open(latin1, "ab") as handle:
        handle.write(b"//")
    newline.write_bytes(b"<?php echo 3;")
    result = run(site, state="check")
    modified = {item["path"]: item for item in result["modified"]}
    assert set(modified) == {str(newline), os.fsdecode(latin1).encode("utf-8", "surrogateescape").decode(
        "utf-8", "backslashreplace")}
    encoded = next(item for item in result["modified"] if "path_base64" in item)
    assert base64.b64decode(encoded["path_base64"]) == latin1
    json.dumps(result)  # what Ansible will send back must serialise


def test_symlinks_are_recorded_and_never_followed_out_of_the_tree(site, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.php").write_bytes(b"<?php echo 'outside';")
    os.symlink(str(outside), str(site / "linked-dir"))
    os.symlink("/etc/passwd", str(site / "passwd"))
    run(site, state="baseline")
    entries = read_database(database_of(site)).entries
    assert entries[str(site / "linked-dir")].type == "symlink"
    assert entries[str(site / "linked-dir")].target == str(outside)
    assert not any("secret.php" in path for path in entries)

    (outside / "secret.php").write_bytes(WEBSHELL)
    (outside / "new.php").write_bytes(WEBSHELL)
    assert run(site, state="check")["modified"] == []
    os.unlink(str(site / "passwd"))
    os.symlink("/etc/shadow", str(site / "passwd"))
    result = run(site, state="check")
    assert changes_of(result) == {str(site / "passwd"): ["link_target"]}


def test_fifos_are_recorded_not_opened(site):
    os.mkfifo(str(site / "pipe"))
    run(site, state="baseline")
    assert read_database(database_of(site)).entries[str(site / "pipe")].type == "fifo"


def test_a_file_swapped_for_a_fifo_or_a_symlink_after_the_walk_is_reported_not_followed(tmp_path):
    fifo = tmp_path / "was-a-file"
    os.mkfifo(str(fifo))
    link = tmp_path / "link"
    os.symlink("/etc/passwd", str(link))
    buffer = bytearray(file_integrity.READ_CHUNK)
    assert hash_file(str(fifo), buffer)[2] == "no longer a regular file"
    assert hash_file(str(link), buffer)[2].startswith("cannot open:")


@needs_root
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv to drop capabilities")
def test_unreadable_files_and_directories_are_reported_and_kept(site):
    """Without CAP_DAC_OVERRIDE (a confined root, or a run as the site user) mode 000 really is unreadable."""
    locked_file = site / "wp-admin/locked.php"
    locked_file.write_bytes(b"<?php echo 1;")
    locked_dir = site / "wp-content/private"
    locked_dir.mkdir()
    (locked_dir / "inside.php").write_bytes(b"<?php echo 2;")
    run(site, state="baseline")
    os.chmod(locked_file, 0)
    os.chmod(locked_dir, 0)
    os.utime(locked_file, ns=(1, 1))  # metadata changed, so the file must be read again

    script = ("import json, sys; from ansible_collections.hostguard.hosting.plugins.module_utils import file_integrity;"
              "print(json.dumps(file_integrity.run([sys.argv[1]], sys.argv[2], state=sys.argv[3])))")

    def run_without_dac_override(state):
        completed = subprocess.run(
            ["setpriv", "--inh-caps=-all", "--bounding-set=-dac_override,-dac_read_search",
             sys.executable, "-c", script, str(site), database_of(site), state],
            env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)), capture_output=True, check=True)
        return json.loads(completed.stdout)

    result = run_without_dac_override("check")
    unreadable = {item["path"]: item["error"] for item in result["unreadable"]}
    assert unreadable[str(locked_file)].startswith("cannot open: Permission denied")
    assert unreadable[str(locked_dir)] == "cannot list directory: Permission denied"
    assert result["removed"] == []  # what could not be listed is not claimed to be gone
    assert changes_of(result) == {str(locked_file): ["mode"], str(locked_dir): ["mode"]}

    run_without_dac_override("update")
    entries = read_database(database_of(site)).entries
    assert entries[str(locked_file)].sha256 is None
    assert entries[str(locked_file)].error.startswith("cannot open")
    assert str(locked_dir / "inside.php") in entries  # kept from the last time it could be seen


def test_an_edited_database_is_refused_when_a_key_is_given(site):
    run(site, state="baseline", database_key=KEY)
    database = database_of(site)
    core = str(site / "wp-includes/load.php")
    # A careful attacker also fixes the plain checksum; only the HMAC still tells.
    edit_database(database, "UPDATE entries SET sha256 = ? WHERE key = ?", ("0" * 64, key_of(core)), reseal=True)
    with pytest.raises(UntrustedDatabaseError) as raised:
        run(site, state="check", database_key=KEY)
    assert "failed HMAC verification" in str(raised.value)
    assert "not trusted" in str(raised.value)


def test_a_wrong_missing_or_stripped_key_is_refused(site):
    database = database_of(site)
    run(site, state="baseline", database_key=KEY)
    with pytest.raises(UntrustedDatabaseError, match="failed HMAC verification"):
        run(site, state="check", database_key="guess")
    with pytest.raises(UntrustedDatabaseError, match="give database_key"):
        run(site, state="check")

    edit_database(database, "DELETE FROM meta WHERE name = 'hmac_sha256'", ())
    with pytest.raises(UntrustedDatabaseError, match="carries no HMAC"):
        run(site, state="check", database_key=KEY)


def test_an_edit_without_a_key_is_caught_as_corruption(site):
    run(site, state="baseline")
    database = database_of(site)
    edit_database(database, "UPDATE entries SET mode = 511 WHERE key = ?", (key_of(str(site / "index.php")),))
    with pytest.raises(UntrustedDatabaseError, match="corrupt or was edited"):
        run(site, state="check")


def test_check_never_writes(site):
    run(site, state="baseline")
    database = database_of(site)
    before = (os.stat(database), open(database, "rb").read(), sorted(os.listdir(os.path.dirname(database))))
    (site / "wp-content/uploads/2024/05/cache.php").write_bytes(WEBSHELL)
    (site / "index.php").write_bytes(b"<?php // changed\n")
    result = run(site, state="check", diff=True)
    assert result["changed"] is False
    assert "diff" not in result
    after = (os.stat(database), open(database, "rb").read(), sorted(os.listdir(os.path.dirname(database))))
    assert (after[0].st_mtime_ns, after[0].st_ino, after[1], after[2]) == (
        before[0].st_mtime_ns, before[0].st_ino, before[1], before[2])
    assert result["summary"]["added"] == 1 and result["summary"]["modified"] == 1


def test_update_accepts_the_current_state_once(site):
    run(site, state="baseline")
    (site / "wp-content/uploads/2024/05/new.jpg").write_bytes(b"\xff\xd8\xff\xe0 photo")
    first = run(site, state="update")
    assert first["changed"] is True
    assert paths_of(first["added"]) == [str(site / "wp-content/uploads/2024/05/new.jpg")]
    written = os.stat(database_of(site))
    second = run(site, state="update")
    assert second["changed"] is False
    assert os.stat(database_of(site)).st_mtime_ns == written.st_mtime_ns
    assert run(site, state="check")["added"] == []


def test_update_in_check_mode_reports_without_writing(site):
    run(site, state="baseline")
    recorded = open(database_of(site), "rb").read()
    (site / "index.php").write_bytes(b"<?php // deploy\n")
    result = run(site, state="update", check_mode=True)
    assert result["changed"] is True
    assert open(database_of(site), "rb").read() == recorded


def test_baseline_leaves_an_existing_database_alone(site):
    run(site, state="baseline")
    recorded = open(database_of(site), "rb").read()
    (site / "index.php").write_bytes(b"<?php // tampered\n")
    result = run(site, state="baseline")
    assert result["changed"] is False
    assert "state=update" in result["msg"]
    assert open(database_of(site), "rb").read() == recorded


def test_baseline_in_check_mode_writes_nothing(site):
    result = run(site, state="baseline", check_mode=True, diff=True)
    assert result["changed"] is True
    assert not os.path.exists(database_of(site))
    assert result["diff"]["before"] == ""
    assert "# entries: %d" % result["summary"]["entries"] in result["diff"]["after"]


def test_diff_shows_counts_and_only_the_changed_paths(site):
    run(site, state="baseline")
    changed = site / "wp-includes/load.php"
    changed.write_bytes(b"<?php // new\n")
    result = run(site, state="update", diff=True)
    before, after = result["diff"]["before"], result["diff"]["after"]
    counts = "# entries: %d" % result["summary"]["entries"]
    assert counts in before and counts in after
    assert str(changed) + " file" in before and str(changed) + " file" in after
    assert str(site / "index.php") not in before + after
    assert len(after.splitlines()) <= 4 + 3  # header, the file and at most its two parent directories


def test_excluded_paths_are_neither_recorded_nor_reported(site):
    (site / "debug.log").write_bytes(b"line\n")
    run(site, state="baseline", exclude=["*/cache/*", "*.log"])
    entries = read_database(database_of(site)).entries
    assert not any(path.endswith((".log", "page.html")) for path in entries)
    (site / "debug.log").write_bytes(b"more\n")
    (site / "wp-content/cache/other.html").write_bytes(b"x")
    result = run(site, state="check", exclude=["*/cache/*", "*.log"])
    assert (result["added"], result["modified"]) == ([], [])


def test_a_new_exclude_pattern_needs_update_and_then_removes_no_noise(site):
    run(site, state="baseline")
    with pytest.raises(IntegrityError, match="record the new ones with state=update"):
        run(site, state="check", exclude=["*/cache/*"])
    result = run(site, state="update", exclude=["*/cache/*"])
    assert result["removed"] == []
    assert not any("/cache/" in path for path in read_database(database_of(site)).entries)


def test_only_changed_metadata_triggers_hashing_and_a_touch_is_no_modification(site):
    run(site, state="baseline")
    os.utime(site / "index.php", ns=(10 ** 18, 10 ** 18))
    changed = run(site, state="check", rehash="changed")
    assert changed["summary"]["files_hashed"] == 1
    assert changed["modified"] == []
    always = run(site, state="check", rehash="always")
    assert always["summary"]["files_hashed"] == always["summary"]["files"] == 6


def test_a_docroot_closed_with_chmod_000_and_a_file_replaced_by_a_symlink_are_modifications(site):
    run(site, state="baseline")
    os.unlink(site / "wp-admin/admin.php")
    os.symlink("/etc/passwd", str(site / "wp-admin/admin.php"))
    os.chmod(site, 0)
    try:
        result = run(site, state="check")
    finally:
        os.chmod(site, 0o755)
    assert changes_of(result) == {str(site): ["mode"], str(site / "wp-admin/admin.php"): ["type"]}


def test_removed_files_are_reported(site):
    run(site, state="baseline")
    os.unlink(site / "wp-admin/admin.php")
    result = run(site, state="check")
    assert paths_of(result["removed"]) == [str(site / "wp-admin/admin.php")]


def test_large_files_are_hashed_and_scanned_to_the_end(site):
    run(site, state="baseline")
    big = site / "wp-content/uploads/2024/05/backup.php"
    with open(big, "wb") as handle:
        handle.write(b"<?php\n" + b"/* padding */\n" * 300000)  # about 4 MB, past several read chunks
        handle.write(b"$_POST['f']($_POST['a']);\n")
    result = run(site, state="check")
    (added,) = result["added"]
    assert added["sha256"] == file_integrity.hashlib.sha256(big.read_bytes()).hexdigest()
    assert "request_callable" in rules_for(result, str(big))


def test_allow_list_and_users_rule_files(site, tmp_path):
    run(site, state="baseline")
    known = site / "wp-content/uploads/2024/05/known.php"
    known.write_bytes(b"<?php // a plugin's legitimate upload handler\n")
    notice = site / "wp-admin/notice.php"
    notice.write_bytes(b"<?php echo 'maintenance until 18:00';\n")
    digest = file_integrity.hashlib.sha256(known.read_bytes()).hexdigest()
    rules = tmp_path / "fleet.yar"
    rules.write_text('rule maintenance_page { strings: $m = "maintenance until" condition: $m and filename == "notice.php" }\n')
    result = run(site, state="check", allow_sha256=[digest], rule_files=[str(rules)])
    assert [(item["path"], item["rule"]) for item in result["suspicious"]] == [(str(notice), "maintenance_page")]


def test_a_broken_rule_file_fails_before_anything_is_read(site, tmp_path):
    broken = tmp_path / "broken.yar"
    broken.write_text("rule broken { condition: $nothing }\n")
    with pytest.raises(file_integrity.IntegrityError, match="rule file %s does not compile" % broken):
        run(site, state="baseline", rule_files=[str(broken)])
    assert not os.path.exists(database_of(site))


def test_the_rules_are_compiled_only_when_a_file_is_to_be_matched(site, monkeypatch):
    """An unchanged tree matches nothing, so the compiled rules (most of a check's memory) are never made; a change
    compiles them once."""
    compiled = []
    real_compile = webshell_rules._compile
    monkeypatch.setattr(webshell_rules, "_compile",
                        lambda yara, sources: compiled.append(sorted(sources)) or real_compile(yara, sources))
    run(site, state="baseline")
    assert len(compiled) == 2  # the PHP view's set and the raw set, once each (no gate matched)
    del compiled[:]
    assert run(site, state="check")["summary"]["suspicious"] == 0
    assert compiled == []
    (site / "wp-content/uploads/2024/05/cache.php").write_bytes(WEBSHELL)
    result = run(site, state="check")
    assert len(compiled) == 2
    assert "php_in_upload_dir" in rules_for(result, str(site / "wp-content/uploads/2024/05/cache.php"))


def test_a_broken_collection_rule_file_fails_the_run_naming_it(site, tmp_path):
    """The collection's own files are compiled at the first match: one that does not compile fails the run there,
    named with its line, rather than matching nothing."""
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    own = pathlib.Path(webshell_rules.default_rules_dir())
    shutil.copy(own / "raw_bytes.yar", rules_dir / "raw_bytes.yar")
    shutil.copy(own / "php_content_gated.yar", rules_dir / "php_content_gated.yar")
    (rules_dir / "php_content.yar").write_text("rule fine { condition: true }\nrule broken { condition: $none }\n")
    with pytest.raises(IntegrityError, match=r"rule file %s does not compile: .*\(2\)" % (rules_dir / "php_content.yar")):
        run(site, state="baseline", rules_dir=str(rules_dir))
    assert not os.path.exists(database_of(site))


def test_hashing_opens_each_directory_once_whatever_the_order_of_the_files(site, monkeypatch):
    """Jobs come largest first, from all over the tree; they are opened in path order so that the directories on
    the way stay open from one file to the next."""
    paths = []
    for index in range(6):
        for directory in ("wp-admin", "wp-content/cache", "wp-content/uploads/2024/05"):
            path = site / directory / ("file-%d.php" % index)
            path.write_bytes(b"<?php // %d\n" % index * (index + 1))
            paths.append(str(path))
    jobs = sorted(((os.path.getsize(path), path, False) for path in paths), reverse=True)
    opened = []
    real_open_entry = file_integrity.safe_fs.open_entry

    def open_entry(dir_fd, name, kind, **options):
        opened.append((name, kind))
        return real_open_entry(dir_fd, name, kind, **options)

    monkeypatch.setattr(file_integrity.safe_fs, "open_entry", open_entry)
    with file_integrity.safe_fs.Roots([str(site)]) as roots:
        monkeypatch.setattr(file_integrity._OPENED, "roots", roots)
        results = file_integrity._hash_jobs(jobs, None)
    assert sorted(result[0] for result in results) == sorted(paths)
    assert all(result[1][9] == hashlib.sha256(pathlib.Path(result[0]).read_bytes()).hexdigest() for result in results)
    directories = [name for name, kind in opened if kind == "directory"]
    assert sorted(directories) == ["05", "2024", "cache", "uploads", "wp-admin", "wp-content"]


def test_first_baseline_scans_every_file(site):
    (site / "wp-content/uploads/2024/05/old-shell.php").write_bytes(WEBSHELL)
    result = run(site, state="baseline")
    assert "php_in_upload_dir" in rules_for(result, str(site / "wp-content/uploads/2024/05/old-shell.php"))


def test_cms_versions_are_read_as_text(site, tmp_path):
    joomla = tmp_path / "www/joomla/libraries/src"
    joomla.mkdir(parents=True)
    (joomla / "Version.php").write_bytes(
        b"<?php\nfinal class Version {\n    const MAJOR_VERSION = 4;\n    const MINOR_VERSION = 2;\n"
        b"    const PATCH_VERSION = 8;\n    const EXTRA_VERSION = '';\n}\n")
    legacy = tmp_path / "www/old/libraries/cms/version"
    legacy.mkdir(parents=True)
    (legacy / "version.php").write_bytes(b"<?php\nfinal class JVersion {\n    const RELEASE = '3.7';\n"
                                         b"    const DEV_LEVEL = '5';\n}\n")
    result = run(site, state="baseline")
    assert [(item["cms"], item["path"], item["version"]) for item in result["cms"]] == [
        ("wordpress", str(site), "6.4.3"),
        ("joomla", str(site / "joomla"), "4.2.8"),
        ("joomla", str(site / "old"), "3.7.5"),
    ]


def test_worker_processes_record_and_find_the_same_as_one_process(site, tmp_path, monkeypatch):
    monkeypatch.setattr(file_integrity, "PROCESS_MIN_JOBS", 1)  # share out even this small tree
    for index in range(50):
        (site / ("wp-admin/file%02d.php" % index)).write_bytes(os.urandom(index * 1000))
    (site / "wp-content/uploads/2024/05/cache.php").write_bytes(WEBSHELL)
    one = str(tmp_path / "db" / "one.db")
    two = str(tmp_path / "db" / "two.db")
    alone = run(site, state="baseline", database=one, workers=1)
    shared = run(site, state="baseline", database=two, workers=2)
    assert (alone["summary"]["workers"], shared["summary"]["workers"]) == (1, 2)
    assert read_database(one).entries == read_database(two).entries
    assert alone["suspicious"] == shared["suspicious"] != []


def test_without_worker_processes_everything_runs_in_one(site, monkeypatch):
    """Where multiprocessing cannot work (no /dev/shm for its semaphores), hashing stays in the process."""
    import multiprocessing

    def no_semaphores(_method):
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(file_integrity, "PROCESS_MIN_JOBS", 1)
    monkeypatch.setattr(multiprocessing, "get_context", no_semaphores)
    result = run(site, state="baseline", workers=2)
    assert result["summary"]["workers"] == 1
    assert result["summary"]["files_hashed"] == result["summary"]["files"]


@pytest.mark.parametrize("arguments, message", [
    ({"paths": ["www"]}, "path 'www' is not absolute"),
    ({"paths": ["/nonexistent/hostguard/www"]}, "path /nonexistent/hostguard/www cannot be used: No such file"),
    ({"paths": "/var/www"}, "paths '/var/www' must be a non-empty list"),
    ({"database": "/nonexistent/hostguard/site.db"}, "database directory /nonexistent/hostguard does not exist"),
    ({"database": "site.db"}, "database 'site.db' is not an absolute path"),
    ({"state": "audit"}, "state 'audit' is not one of baseline, check, update"),
    ({"rehash": "never"}, "rehash 'never' is not one of changed, always"),
    ({"allow_sha256": ["abc"]}, "allow_sha256 entry 'abc' is not a sha256 hex digest"),
    ({"rule_files": ["/nonexistent/hostguard/site.yar"]}, "rule file /nonexistent/hostguard/site.yar does not exist"),
    ({"exclude": "*.log"}, "exclude '*.log' must be a list"),
    ({"workers": -1}, "workers -1 is not a number"),
])
def test_bad_input_fails_before_any_work_naming_the_value(site, arguments, message):
    arguments = dict({"paths": [str(site)], "database": database_of(site), "state": "baseline"}, **arguments)
    with pytest.raises(IntegrityError) as raised:
        file_integrity.run(**arguments)
    assert message in str(raised.value)
    assert os.listdir(str(site.parent / "db")) == []


def test_a_database_inside_the_checked_paths_or_a_symlinked_root_is_refused(site, tmp_path):
    with pytest.raises(IntegrityError, match="is inside path"):
        run(site, state="baseline", database=str(site / "integrity.db"))
    os.symlink(str(site), str(tmp_path / "www-link"))
    with pytest.raises(IntegrityError, match="is a symbolic link to %s" % site):
        file_integrity.run([str(tmp_path / "www-link")], database_of(site), state="baseline")


def test_check_without_a_database_says_to_record_one(site):
    with pytest.raises(IntegrityError, match="does not exist: record one with state=baseline first"):
        run(site, state="check")


def test_the_report_is_limited_but_the_counts_are_complete(site):
    run(site, state="baseline")
    for index in range(5):
        (site / ("wp-admin/new%d.php" % index)).write_bytes(b"<?php echo %d;" % index)
    result = run(site, state="check", report_limit=2)
    assert len(result["added"]) == 2
    assert result["summary"]["added"] == 5
    assert result["summary"]["truncated"] is True


@pytest.fixture
def reachable_dir():
    """A directory the test account can reach (pytest's tmp_path is root's only)."""
    path = tempfile.mkdtemp(prefix="hostguard-integrity-race-", dir="/var/tmp")
    os.chmod(path, 0o755)
    yield pathlib.Path(path)
    shutil.rmtree(path)


def test_a_directory_swapped_for_a_symlink_during_the_walk_is_never_followed(reachable_dir):
    """The account exchanges one of its directories with a symlink to a root-only directory while baselines
    run: the root-only file is never hashed, recorded or quoted."""
    base = reachable_dir / "race"
    site = base / "www"
    (site / "uploads").mkdir(parents=True)
    for index in range(200):
        (site / "uploads" / ("f%d.txt" % index)).write_bytes(b"plain %d\n" % index)
    secret_dir = base / "root-only"
    secret_dir.mkdir()
    secret = secret_dir / "f7.txt"
    secret.write_bytes(b"<?php eval(base64_decode($_POST['root-only-secret'])); ?>\n")
    secret_dir.chmod(0o700)
    secret.chmod(0o600)
    (site / "link").symlink_to(secret_dir)
    for path in [site, site / "uploads", site / "link"] + list((site / "uploads").iterdir()):
        os.chown(path, ATTACKER, ATTACKER, follow_symlinks=False)
    os.chmod(base, 0o755)
    secret_hash = hashlib.sha256(secret.read_bytes()).hexdigest()
    outputs = []
    with Attacker([(str(site / "uploads"), str(site / "link"))]):
        for round_number in range(8):
            database = str(base / ("db%d" % round_number))
            outputs.append(json.dumps(file_integrity.run([str(site)], database, state="baseline")))
            with open(database, "rb") as stream:
                outputs.append(stream.read().decode("utf-8", "replace"))
    assert outputs
    assert not any(secret_hash in output or "root-only-secret" in output for output in outputs)


# --- the database: SQLite, streamed in the walk's order ---

def test_the_database_round_trips_and_is_stored_in_the_walks_order_indexed_by_path(site):
    # Names that sort around "/": "a-b" and "a.php" come before "a/..." as strings, after it in the walk.
    for name in ("a-b", "a.php", "a!"):
        (site / name).write_bytes(b"<?php echo 1;")
    (site / "a").mkdir()
    (site / "a/inside.php").write_bytes(b"<?php echo 2;")
    result = run(site, state="baseline")
    rows = stored_rows(database_of(site))
    keys = [row[0] for row in rows]
    assert keys == sorted(keys)  # the primary key: one B-tree, read back in order without a sort
    assert keys.index(key_of(str(site / "a/inside.php"))) < keys.index(key_of(str(site / "a-b")))
    assert len(rows) == result["summary"]["entries"]
    entries = read_database(database_of(site)).entries
    recorded = entries[str(site / "a/inside.php")]
    info = os.lstat(site / "a/inside.php")
    assert (recorded.type, recorded.size, recorded.inode, recorded.mtime_ns, recorded.sha256) == (
        "file", info.st_size, info.st_ino, info.st_mtime_ns, hashlib.sha256(b"<?php echo 2;").hexdigest())

    connection = sqlite3.connect("file:%s?mode=ro" % database_of(site), uri=True)
    plan = " ".join(str(row) for row in connection.execute(
        "EXPLAIN QUERY PLAN SELECT * FROM entries WHERE key = ?", (key_of(str(site / "a-b")),)))
    meta = dict(connection.execute("SELECT name, value FROM meta"))
    connection.close()
    assert "PRIMARY KEY" in plan  # a lookup by path is an index search, not a scan
    assert (meta["format"], meta["version"], json.loads(meta["header"])["entries"]) == (
        "hostguard-file-integrity", "3", len(rows))

    check = run(site, state="check")
    assert (check["added"], check["removed"], check["modified"], check["summary"]["files_hashed"]) == ([], [], [], 0)


def test_changed_added_and_removed_are_found_across_chunks_and_row_batches(site, monkeypatch):
    """The merge of the walk with the recorded rows, cut into chunks of 3 entries and batches of 2 rows."""
    monkeypatch.setattr(file_integrity, "CHUNK_ENTRIES", 3)
    monkeypatch.setattr(file_integrity, "ROWS_AT_ONCE", 2)
    for name in ("a-b.php", "a.php", "a/x.php", "a/y/z.php", "b.php"):
        (site / name).parent.mkdir(parents=True, exist_ok=True)
        (site / name).write_bytes(b"<?php echo '%s';" % name.encode())
    run(site, state="baseline")
    (site / "a/y/z.php").write_bytes(b"<?php echo 'edited';")
    (site / "a.php").unlink()
    shutil.rmtree(site / "wp-content/cache")
    (site / "a/new.php").write_bytes(WEBSHELL)
    (site / "a-c").write_bytes(b"plain")

    result = run(site, state="check")
    assert paths_of(result["added"]) == [str(site / "a-c"), str(site / "a/new.php")]
    assert paths_of(result["removed"]) == [str(site / "a.php"), str(site / "wp-content/cache"),
                                           str(site / "wp-content/cache/page.html")]
    assert changes_of(result) == {str(site / "a/y/z.php"): ["content", "size"]}
    assert rules_for(result, str(site / "a/new.php"))

    update = run(site, state="update")
    assert update["changed"] is True
    assert read_database(database_of(site)).entries.keys() == {
        os.path.join(directory, name) for directory, dirs, files in os.walk(str(site)) for name in dirs + files
    } | {str(site)}
    assert run(site, state="check")["summary"]["added"] == 0


def write_version_1_database(path, header, entries, key=None):
    """A database as the previous version of the module wrote it: a seal line, a header line, a JSON row a path."""
    header = dict(header, entries=len(entries), written="2026-11-25T00:00:00Z")
    lines = [json.dumps(header, sort_keys=True)]
    lines.extend(json.dumps([name] + list(entries[name]), separators=(",", ":")) for name in sorted(entries))
    payload = ("\n".join(lines) + "\n").encode("ascii")
    seal = {"format": "hostguard-file-integrity", "version": 1, "sha256": hashlib.sha256(payload).hexdigest(),
            "hmac_sha256": file_integrity.hmac.new(key, payload, hashlib.sha256).hexdigest() if key else None}
    with open(path, "wb") as handle:
        handle.write(json.dumps(seal, sort_keys=True).encode("ascii") + b"\n" + payload)


def test_a_database_of_the_previous_version_is_read_then_replaced_by_update(site, tmp_path):
    run(site, state="baseline", database_key=KEY)
    recorded = read_database(database_of(site), KEY.encode())
    old = str(tmp_path / "db" / "old.db")
    write_version_1_database(old, recorded.header, recorded.entries, KEY.encode())
    (site / "index.php").write_bytes(b"<?php // deploy\n")
    (site / "wp-content/uploads/2024/05/cache.php").write_bytes(WEBSHELL)

    check = run(site, state="check", database=old, database_key=KEY)
    assert changes_of(check) == {str(site / "index.php"): ["content", "size"]}
    assert paths_of(check["added"]) == [str(site / "wp-content/uploads/2024/05/cache.php")]
    with open(old, "rb") as handle:
        assert handle.read(1) == b"{"  # a check writes nothing, also not a conversion
    with pytest.raises(UntrustedDatabaseError, match="failed HMAC verification"):
        run(site, state="check", database=old, database_key="guess")

    update = run(site, state="update", database=old, database_key=KEY)
    assert update["changed"] is True
    with open(old, "rb") as handle:
        assert handle.read(16) == b"SQLite format 3\0"
    again = run(site, state="update", database=old, database_key=KEY)
    assert again["changed"] is False
    assert run(site, state="check", database=old, database_key=KEY)["summary"]["added"] == 0


def reseal_as_version_2(database, key=None):
    """Turn a database into one as the version 2 module wrote it: the same rows, sealed through their repr."""
    connection = sqlite3.connect(database, isolation_level=None)
    try:
        meta = dict(connection.execute("SELECT name, value FROM meta"))
        digest = hashlib.sha256()
        file_integrity._digest_rows_by_repr(digest, connection.execute("SELECT * FROM entries ORDER BY key").fetchall())
        sha256, seal_hmac = file_integrity._seal(meta["header"], digest.hexdigest(), key)
        assert sha256 != meta["sha256"]  # the two versions' seals differ, so the version read is the one checked
        connection.execute("UPDATE meta SET value = '2' WHERE name = 'version'")
        connection.execute("UPDATE meta SET value = ? WHERE name = 'sha256'", (sha256,))
        if key is not None:
            connection.execute("UPDATE meta SET value = ? WHERE name = 'hmac_sha256'", (seal_hmac,))
    finally:
        connection.close()


def stored_version(database):
    connection = sqlite3.connect("file:%s?mode=ro" % database, uri=True)
    try:
        return connection.execute("SELECT value FROM meta WHERE name = 'version'").fetchone()[0]
    finally:
        connection.close()


def test_a_version_2_database_is_verified_as_sealed_then_replaced_by_update(site):
    run(site, state="baseline", database_key=KEY)
    database = database_of(site)
    reseal_as_version_2(database, KEY.encode())
    (site / "index.php").write_bytes(b"<?php // deploy\n")

    check = run(site, state="check", database_key=KEY)
    assert changes_of(check) == {str(site / "index.php"): ["content", "size"]}
    assert stored_version(database) == "2"  # a check writes nothing, also not a conversion
    with pytest.raises(UntrustedDatabaseError, match="failed HMAC verification"):
        run(site, state="check", database_key="guess")

    update = run(site, state="update", database_key=KEY)
    assert update["changed"] is True
    assert stored_version(database) == "3"
    assert run(site, state="update", database_key=KEY)["changed"] is False
    assert run(site, state="check", database_key=KEY)["modified"] == []


def test_an_edited_version_2_database_is_refused(site):
    run(site, state="baseline")
    database = database_of(site)
    reseal_as_version_2(database)
    edit_database(database, "UPDATE entries SET sha256 = ? WHERE key = ?",
                  ("0" * 64, key_of(str(site / "index.php"))))
    with pytest.raises(UntrustedDatabaseError, match="sha256 does not match"):
        run(site, state="check")


def test_the_rows_seal_is_marshal_format_2_byte_for_byte():
    """The seal of version 3 rests on these bytes staying what they are in every Python that reads the database."""
    row = (b"\0var\0www\0a.php", "file", 0o644, 2001, 2001, 70000, 1733500000123456789, 1733500000123456789,
           -(1 << 62), None, "ab" * 32, "caf\u00e9".encode("utf-8"))
    expected = (b"(\x0c\x00\x00\x00" + b"s\x0e\x00\x00\x00\x00var\x00www\x00a.php" + b"u\x04\x00\x00\x00file"
                + b"i\xa4\x01\x00\x00" + b"i\xd1\x07\x00\x00" * 2 + b"i\x70\x11\x01\x00")
    encoded = file_integrity.marshal.dumps(row, 2)
    assert encoded.startswith(expected)
    digest = hashlib.sha256()
    file_integrity._digest_rows(digest, [row, row])
    assert digest.hexdigest() == hashlib.sha256(encoded * 2).hexdigest()
    assert file_integrity.marshal.loads(encoded) == row


@pytest.mark.parametrize("damage", ["truncated", "garbled pages", "dropped table"])
def test_a_corrupt_database_fails_naming_the_file(site, damage):
    run(site, state="baseline")
    database = database_of(site)
    size = os.path.getsize(database)
    if damage == "truncated":
        os.truncate(database, size // 2)
    elif damage == "garbled pages":
        with open(database, "r+b") as handle:
            handle.seek(100)
            handle.write(os.urandom(size - 100))
    else:
        edit_database(database, "DROP TABLE entries", ())
    with pytest.raises(IntegrityError) as raised:
        run(site, state="check")
    assert database in str(raised.value)
    assert "corrupt" in str(raised.value) or "malformed" in str(raised.value)


def test_a_file_that_is_no_database_at_all_is_refused(site):
    with open(database_of(site), "wb") as handle:
        handle.write(b"not a database\n")
    with pytest.raises(IntegrityError, match="database %s is not a hostguard-file-integrity database"
                       % database_of(site)):
        run(site, state="check")


def test_a_chunk_is_hashed_while_the_next_is_walked_and_chunks_finish_in_walk_order(site, tmp_path, monkeypatch):
    monkeypatch.setattr(file_integrity, "PROCESS_MIN_JOBS", 1)
    monkeypatch.setattr(file_integrity, "CHUNK_ENTRIES", 4)
    for index in range(30):
        (site / ("wp-admin/file%02d.php" % index)).write_bytes(os.urandom(index * 100))
    events = []
    start, finish = file_integrity._Pass._start_chunk, file_integrity._Pass._finish_chunk

    def recording_start(self, chunk):
        events.append(("start", chunk[0][0] if chunk else None))  # the last may be empty
        return start(self, chunk)

    def recording_finish(self, chunk, hashing):
        events.append(("finish", chunk[0][0] if chunk else None))
        return finish(self, chunk, hashing)

    monkeypatch.setattr(file_integrity._Pass, "_start_chunk", recording_start)
    monkeypatch.setattr(file_integrity._Pass, "_finish_chunk", recording_finish)
    one, two = str(tmp_path / "db" / "one.db"), str(tmp_path / "db" / "two.db")
    shared = run(site, state="baseline", database=two, workers=2)
    starts = [key for event, key in events if event == "start"]
    assert len(starts) > 3 and starts[:-1] == sorted(starts[:-1])
    assert [key for event, key in events if event == "finish"] == starts
    # The second chunk is handed out before the first is finished; each later one before the one before it is.
    assert events[:3] == [("start", starts[0]), ("start", starts[1]), ("finish", starts[0])]
    assert shared["summary"]["workers"] == 2

    alone = run(site, state="baseline", database=one, workers=1)
    assert read_database(one).entries == read_database(two).entries
    (site / "wp-admin/file07.php").write_bytes(b"<?php echo 7;")
    (site / "wp-admin/file21.php").unlink()
    (site / "wp-admin/file22.php.new").write_bytes(WEBSHELL)
    checks = [run(site, state="check", database=database, workers=workers, rehash="always")
              for database, workers in ((one, 1), (two, 2))]
    for name in ("added", "removed", "modified", "suspicious"):
        assert checks[0][name] == checks[1][name] != []
    assert alone["summary"]["files"] == shared["summary"]["files"]
