# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostguard-watch's planted-files facet on real directories with the kernel's real inotify and the real rules.

The journal is the only stand-in (FakeJournal: the facet reads none); the clock is a Clock that starts at the
real time and is moved on by the tests, so that waiting for a file to settle takes no real time.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import time

import pytest
from hostile_account import ATTACKER, Attacker

pytest.importorskip("yara")

from ansible_collections.hostguard.hosting.plugins.module_utils import (  # noqa: E402
    quarantine, watch_config, watch_files, watch_service)
from ansible_collections.hostguard.hosting.plugins.module_utils.webshell_rules import default_rules_dir  # noqa: E402
from ansible_collections.hostguard.hosting.tests.unit.plugins.module_utils.test_planted_files import (  # noqa: E402
    ELF, NOBODY, OUTSIDE_SHELL, SHELL, write)
# The planted-files tests' fixture: a directory like /tmp next to a root-only one.
from ansible_collections.hostguard.hosting.tests.unit.plugins.module_utils.test_planted_files import base  # noqa: E402,F401 pylint: disable=unused-import
from ansible_collections.hostguard.hosting.tests.unit.plugins.module_utils.watch_fakes import (  # noqa: E402
    Clock, FakeJournal, Runner)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to own files as other accounts")

SHELL_LINE_3 = b"<?php\n// contact form\n$c = $_REQUEST['c']; system($c);\n"
ORDINARY = b"<?php\nfunction site_title() { return 'Example'; }\necho site_title();\n"
CUSTOMER = ATTACKER


@pytest.fixture(autouse=True)
def site(base):
    """The planted-files tests' directory like /tmp (``base``/tmp, next to a root-only ``outside``), plus a customer's
    document root and the watch's state directory."""
    docroot = os.path.join(base, "site1", "public_html")
    os.makedirs(docroot)
    os.chown(os.path.dirname(docroot), CUSTOMER, CUSTOMER)
    os.chown(docroot, CUSTOMER, CUSTOMER)
    os.mkdir(os.path.join(base, "state"), 0o700)
    return docroot


def make_service(base, clock, inotify_factory=None, **files):
    settings = {"enabled": True, "paths": [f"{base}/site1/public_html", f"{base}/tmp"], "temp_dirs": [f"{base}/tmp"],
                "rules_dir": default_rules_dir(), "manifest_dir": f"{base}/manifests"}
    settings.update(files)
    config = watch_config.validate({"host": "web1.example", "state_dir": f"{base}/state", "facets": {"files": settings}},
                                   watch_service.FACET_TYPES)
    service = watch_service.Service(config, journal=FakeJournal(), run=Runner(), clock=clock, log=lambda text: None)
    service.state.load()
    if inotify_factory is not None:
        service.facets[0]._inotify_factory = inotify_factory
    service.facets[0].start()
    service.tick()  # the first tick walks the trees and watches them
    return service, service.facets[0]


def settle(service, clock, rounds=2):
    """Let the facet read what the kernel queued and examine it once it has been quiet (settle: 2 s)."""
    for _round in range(rounds):
        clock.now += 3
        service.tick()


def events(base, kind=None):
    path = os.path.join(base, "state", "events.jsonl")
    if not os.path.exists(path):
        return []
    found = [json.loads(line) for line in open(path, encoding="utf-8")]
    return [event for event in found if kind is None or event["kind"] == kind]


def test_a_webshell_planted_in_a_new_directory_of_a_docroot_is_named_with_rule_line_and_owner(base):
    clock = Clock(time.time())
    service, facet = make_service(base, clock)
    docroot = f"{base}/site1/public_html"
    os.makedirs(f"{docroot}/wp-content/uploads/2026")  # made after the start: watched as it appears
    write(f"{docroot}/wp-content/uploads/2026/cache.php", SHELL_LINE_3, owner=CUSTOMER)
    settle(service, clock)

    found = events(base)
    assert [event["kind"] for event in found] == ["file_planted"]
    event = found[0]
    assert event["path"] == f"{docroot}/wp-content/uploads/2026/cache.php"
    assert event["rule"] and event["rule"] in event["rules"]
    assert event["owner"] == "#1999" or event["uid"] == CUSTOMER
    assert event["line_number"] == 3 and "system($c)" in event["line"], event
    assert event["in"] == "document root" and event["change"] == "new" and event["severity"] == "critical"
    assert event["path"] in event["summary"] and event["rule"] in event["summary"]
    assert "action" not in event  # containment is off unless named
    facet.stop()


def test_an_ordinary_php_file_in_a_docroot_is_no_event_but_one_in_a_temporary_directory_is(base):
    clock = Clock(time.time())
    service, facet = make_service(base, clock)
    write(f"{base}/site1/public_html/about.php", ORDINARY, owner=CUSTOMER)
    write(f"{base}/tmp/helper.php", ORDINARY, owner=NOBODY)
    write(f"{base}/tmp/kworker", ELF, owner=NOBODY, mode=0o755)
    write(f"{base}/tmp/notes.txt", b"nothing to see\n", owner=NOBODY)
    settle(service, clock)

    found = {event["path"]: event for event in events(base)}
    assert set(found) == {f"{base}/tmp/helper.php", f"{base}/tmp/kworker"}
    assert found[f"{base}/tmp/helper.php"]["rule"] is None and found[f"{base}/tmp/helper.php"]["owner"] == "nobody"
    assert found[f"{base}/tmp/kworker"]["file_type"] == "elf" and found[f"{base}/tmp/kworker"]["severity"] == "warning"
    facet.stop()


def test_a_shell_moved_into_place_or_written_in_two_steps_is_examined_once_complete(base):
    clock = Clock(time.time())
    service, facet = make_service(base, clock)
    docroot = f"{base}/site1/public_html"
    write(f"{base}/tmp/upload.tmp", b"GIF89a harmless so far\n", owner=CUSTOMER)
    settle(service, clock)
    os.rename(f"{base}/tmp/upload.tmp", f"{docroot}/image.php")  # moved in: IN_MOVED_TO
    with open(f"{docroot}/image.php", "ab") as stream:
        stream.write(SHELL)
    settle(service, clock)
    assert [event["path"] for event in events(base, "file_planted")] == [f"{docroot}/image.php"]
    facet.stop()


def test_a_cms_update_of_2000_files_with_one_shell_is_one_event(base):
    clock = Clock(time.time())
    service, facet = make_service(base, clock)
    docroot = f"{base}/site1/public_html"
    for directory in range(20):
        os.makedirs(f"{docroot}/wp-includes/part{directory}")
        for number in range(100):
            write(f"{docroot}/wp-includes/part{directory}/file{number}.php", ORDINARY, owner=CUSTOMER)
    write(f"{docroot}/wp-includes/part7/class-wp-feed.php", SHELL, owner=CUSTOMER)
    settle(service, clock, rounds=3)
    assert [event["path"] for event in events(base)] == [f"{docroot}/wp-includes/part7/class-wp-feed.php"]
    facet.stop()


def test_a_burst_of_php_in_a_temporary_directory_is_said_up_to_the_burst_then_summed_up(base):
    clock = Clock(time.time())
    service, facet = make_service(base, clock, burst=5)
    os.mkdir(f"{base}/tmp/vendor")
    for number in range(40):
        write(f"{base}/tmp/vendor/lib{number}.php", ORDINARY, owner=NOBODY)
    write(f"{base}/tmp/vendor/x.php", SHELL, owner=NOBODY)
    settle(service, clock)
    clock.now += watch_files.BURST_WINDOW
    service.tick()

    planted = events(base, "file_planted")
    with_rule = [event for event in planted if event["rule"]]
    assert [event["path"] for event in with_rule] == [f"{base}/tmp/vendor/x.php"]  # a rule hit is always said
    assert len(planted) - len(with_rule) == 5
    burst = events(base, "file_planted_burst")
    assert len(burst) == 1 and burst[0]["count"] == 35 and burst[0]["owners"] == {"nobody": 35}
    assert "35 more" in burst[0]["summary"]
    facet.stop()


def test_quarantine_locks_a_new_shell_in_a_docroot_and_the_restore_puts_it_back(base):
    clock = Clock(time.time())
    service, facet = make_service(base, clock, contain="quarantine")
    docroot = f"{base}/site1/public_html"
    write(f"{base}/tmp/x.php", SHELL, owner=NOBODY)
    write(f"{docroot}/wso.php", SHELL, owner=CUSTOMER)
    settle(service, clock)

    found = {event["path"]: event for event in events(base)}
    assert "action" not in found[f"{base}/tmp/x.php"]  # temporary directories are not quarantined
    action = found[f"{docroot}/wso.php"]["action"]
    assert action["kind"] == "quarantine" and not action.get("failed")
    info = os.lstat(f"{docroot}/wso.php")
    assert (info.st_uid, info.st_gid, info.st_mode & 0o7777) == (0, 0, 0)
    manifest = json.load(open(action["manifest"], encoding="ascii"))
    assert manifest["path"] == f"{docroot}/wso.php"
    assert manifest["entries"][0]["sha256"] == hashlib.sha256(SHELL).hexdigest()
    assert "hostguard.hosting.restore" in action["undo"] and f"{docroot}/wso.php" in action["undo"]
    assert "quarantined" in action["done"]

    restored = quarantine.run([f"{docroot}/wso.php"], "restored", [docroot], manifest_dir=f"{base}/manifests")
    assert restored["counts"]["restored"] == 1
    info = os.lstat(f"{docroot}/wso.php")
    assert (info.st_uid, info.st_mode & 0o7777) == (CUSTOMER, 0o644)
    facet.stop()


def test_a_changed_file_with_a_rule_hit_is_named_but_not_locked(base):
    docroot = f"{base}/site1/public_html"
    write(f"{docroot}/index.php", ORDINARY, owner=CUSTOMER)
    clock = Clock(time.time())
    service, facet = make_service(base, clock, contain="quarantine")
    with open(f"{docroot}/index.php", "ab") as stream:  # an injected line in the site's own file
        stream.write(b"<?php @eval($_POST['x']); ?>\n")
    settle(service, clock)

    event = events(base)[0]
    assert event["change"] == "changed" and event["action"]["failed"]
    assert "hostguard.hosting.quarantine" in event["action"]["undo"]
    assert os.lstat(f"{docroot}/index.php").st_uid == CUSTOMER
    facet.stop()


def test_a_symlink_to_a_shell_outside_is_never_followed(base):
    clock = Clock(time.time())
    service, facet = make_service(base, clock)
    docroot = f"{base}/site1/public_html"
    os.symlink(f"{base}/outside/secret.php", f"{docroot}/link.php")
    os.symlink(f"{base}/outside", f"{docroot}/linkdir")
    settle(service, clock)
    write(f"{base}/outside/another.php", SHELL)  # in the directory a symlink points to: not watched
    settle(service, clock)
    assert events(base) == []
    facet.stop()


def test_an_account_swapping_its_new_directory_for_a_symlink_never_makes_the_watch_read_outside(base):
    """While the account swaps its directory and a symlink to a root-only directory, files keep appearing in its
    directory: whatever the watch examines, the shell outside is never read."""
    clock = Clock(time.time())
    service, facet = make_service(base, clock)
    tmp = f"{base}/tmp"
    os.mkdir(f"{tmp}/d")
    os.chown(f"{tmp}/d", ATTACKER, ATTACKER)
    os.symlink(f"{base}/outside", f"{tmp}/s")
    os.lchown(f"{tmp}/s", ATTACKER, ATTACKER)
    outside = hashlib.sha256(OUTSIDE_SHELL).hexdigest()
    with Attacker([("d", "s")], within=tmp):
        for number in range(12):
            for name in ("d", "s"):
                try:
                    fd = os.open(f"{tmp}/{name}", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
                except OSError:
                    continue
                try:
                    descriptor = os.open(f"f{number}.php", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
                    os.write(descriptor, SHELL)
                    os.close(descriptor)
                finally:
                    os.close(fd)
                break
            settle(service, clock, rounds=1)
    settle(service, clock)
    found = events(base)
    assert found, "the account's own files were examined"
    assert outside not in {event["sha256"] for event in found}
    assert not [event for event in found if "outside" in event["path"] or event["path"].endswith("secret.php")]
    facet.stop()


def test_a_big_tree_is_watched_over_several_ticks_then_a_shell_deep_in_it_is_named(base, monkeypatch):
    monkeypatch.setattr(watch_files, "WALK_BUDGET", 3)
    docroot = f"{base}/site1/public_html"
    os.makedirs(f"{docroot}/a/b/c/d/e/f")
    clock = Clock(time.time())
    service, facet = make_service(base, clock)
    assert len(facet._directories) > 0  # not all of it in the first tick
    write(f"{docroot}/a/b/c/d/e/f/deep.php", SHELL, owner=CUSTOMER)  # before its directory is watched
    settle(service, clock, rounds=4)
    assert facet._directories == []
    assert [event["path"] for event in events(base)] == []  # first start: what is there is not new
    write(f"{docroot}/a/b/c/d/e/f/later.php", SHELL, owner=CUSTOMER)
    settle(service, clock)
    assert [event["path"] for event in events(base)] == [f"{docroot}/a/b/c/d/e/f/later.php"]
    facet.stop()


class LimitedInotify(watch_files.Inotify):
    """The kernel's watch limit cannot be lowered for one test without lowering it for the whole machine, so this
    real inotify instance refuses watches past `LIMIT` the way the kernel does at its limit (ENOSPC)."""
    LIMIT = 2

    def add(self, dir_fd):
        if getattr(self, "added", 0) >= self.LIMIT:
            raise watch_files.WatchLimit(errno.ENOSPC, os.strerror(errno.ENOSPC))
        self.added = getattr(self, "added", 0) + 1
        return super().add(dir_fd)


def test_past_the_watch_limit_the_event_says_so_and_the_tree_is_checked_periodically(base):
    docroot = f"{base}/site1/public_html"
    os.makedirs(f"{docroot}/a/b/c")
    clock = Clock(time.time())
    service, facet = make_service(base, clock, LimitedInotify, poll_interval=10)
    limit = events(base, "files_watch_limit")
    paths = [event["path"] for event in limit]
    assert docroot in paths and len(paths) == len(set(paths))  # once per watched path past the limit
    assert "fs.inotify.max_user_watches" in limit[0]["summary"]

    write(f"{docroot}/a/b/c/deep.php", SHELL, owner=CUSTOMER)
    settle(service, clock)  # 6 s: not yet checked
    assert events(base, "file_planted") == []
    settle(service, clock, rounds=4)  # past the 10 s poll interval, then settled
    event = events(base, "file_planted")[0]
    assert event["path"] == f"{docroot}/a/b/c/deep.php" and event["change"] == "found by the periodic check"
    facet.stop()


def test_without_inotify_every_path_is_checked_periodically(base):
    def no_inotify():
        raise OSError(errno.EMFILE, "inotify_init1: Too many open files")

    clock = Clock(time.time())
    service, facet = make_service(base, clock, no_inotify, poll_interval=10)
    assert facet.fds() == []
    write(f"{base}/tmp/x.php", SHELL, owner=NOBODY)
    clock.now += 11
    service.tick()
    clock.now += 3
    service.tick()
    assert [event["path"] for event in events(base)] == [f"{base}/tmp/x.php"]
    facet.stop()


def test_a_restart_catches_up_on_what_was_planted_while_stopped_and_repeats_no_alert(base):
    clock = Clock(time.time())
    service, facet = make_service(base, clock)
    write(f"{base}/tmp/first.php", SHELL, owner=NOBODY)
    settle(service, clock)
    assert len(events(base)) == 1
    facet.stop()
    service.state.save()

    write(f"{base}/site1/public_html/while-stopped.php", SHELL, owner=CUSTOMER)
    service, facet = make_service(base, clock)
    settle(service, clock)
    assert [event["path"] for event in events(base)] == [f"{base}/tmp/first.php",
                                                         f"{base}/site1/public_html/while-stopped.php"]
    facet.stop()


def test_the_first_start_says_nothing_about_files_already_there(base):
    write(f"{base}/tmp/old.php", SHELL, owner=NOBODY)
    clock = Clock(time.time())
    service, facet = make_service(base, clock)
    settle(service, clock)
    assert events(base) == []
    facet.stop()


@pytest.mark.parametrize("files, message", [
    ({"paths": ["var/www"]}, "facets.files.paths: 'var/www' is not an absolute path"),
    ({"paths": []}, "facets.files.paths: expected at least one path"),
    ({"paths": ["/srv/www", "/srv/www/site1/public_html"]}, "/srv/www/site1/public_html is inside /srv/www, also watched"),
    ({"contain": "delete"}, "facets.files.contain: expected one of none, quarantine, got 'delete'"),
    ({"paths": ["/srv", "/tmp"], "contain": "quarantine"}, "/srv is a system directory"),
    ({"manifest_dir": "/srv/www/site1/q", "paths": ["/srv/www/site1"]}, "is inside the watched path /srv/www/site1"),
    ({"poll_interval": 1}, "facets.files.poll_interval: expected a whole number from 5 to 3600, got 1"),
])
def test_a_bad_setting_is_refused_naming_it(files, message):
    config = {"host": "web1", "facets": {"files": dict({"enabled": True}, **files)}}
    with pytest.raises(watch_config.ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        watch_config.validate(config, watch_service.FACET_TYPES)


def test_check_refuses_missing_rules_and_a_path_through_a_symlink(base):
    settings = watch_config.validate({"host": "web1", "facets": {"files": {
        "enabled": True, "paths": [f"{base}/tmp"], "rules_dir": f"{base}/no-rules"}}},
        watch_service.FACET_TYPES)["facets"]["files"]
    with pytest.raises(watch_config.ConfigError, match="facets.files.rules_dir: .*php_content.yar is missing"):
        watch_files.FilesFacet.check_host(settings, "facets.files")
    os.symlink(f"{base}/site1", f"{base}/link")
    settings.update(rules_dir=default_rules_dir(), paths=[f"{base}/link/public_html", f"{base}/not-yet"])
    with pytest.raises(watch_config.ConfigError, match="runs through the symlink"):
        watch_files.FilesFacet.check_host(settings, "facets.files")
    settings["paths"] = [f"{base}/not-yet"]  # a path that is not there yet is watched once it appears
    watch_files.FilesFacet.check_host(settings, "facets.files")
