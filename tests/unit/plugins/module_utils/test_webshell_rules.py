"""Webshell rules: each tell is found, ordinary CMS code is not flagged."""

from __future__ import annotations

import re

import pytest

from ansible_collections.hostguard.hosting.plugins.module_utils import webshell_rules
from ansible_collections.hostguard.hosting.plugins.module_utils.webshell_rules import (
    CHUNK_OVERLAP,
    LINE_LIMIT,
    RULES,
    RuleError,
    Scanner,
)

WEBROOT = "/var/www/site1"


def rule_names(findings):
    return sorted(finding.rule for finding in findings)


def test_every_built_in_rule_is_named_described_and_compiles():
    names = [rule["name"] for rule in RULES]
    assert len(names) == len(set(names))
    for rule in RULES:
        assert rule["description"]
        assert webshell_rules.validate_rule(rule) is rule
        re.compile(rule["pattern"])


def test_built_in_content_patterns_are_lowercase():
    """Content is lowered once; a pattern without capitals is matched case-sensitively, the fast path."""
    for rule in RULES:
        if rule["target"] != "path":
            assert rule["pattern"] == rule["pattern"].lower(), rule["name"]
            assert all(literal == literal.lower() for literal in rule.get("gate", ())), rule["name"]


@pytest.mark.parametrize("rule, path, content", [
    ("eval_decoded", "/x.php", b"<?php @eval(gzinflate(base64_decode('7b0HYBxJ'))); ?>"),
    ("eval_decoded", "/x.php", b"<?php EvAl ( str_rot13('riny($_CBFG[0]);') );"),
    ("eval_decoded", "/x.php", b"<?php include base64_decode('L3RtcC94');"),
    ("eval_request", "/x.php", b"<?php @assert($_REQUEST['x']);"),
    ("eval_request", "/x.php", b"<?php system( $_GET[\"cmd\"] );"),
    ("eval_request", "/x.php", b"<?php include $_COOKIE['page'];"),
    ("request_callable", "/x.php", b"<?php $_POST['f']($_POST['a']);"),
    ("backtick_request", "/x.php", b"<?php echo `ls -la {$_GET['d']}`;"),
    ("preg_replace_eval", "/x.php", b"<?php preg_replace(\"/.*/e\", $_POST['c'], '');"),
    ("preg_replace_eval", "/x.php", b"<?php preg_replace('#x#ie', 'system(\"id\")', 'x');"),
    ("create_function", "/x.php", b"<?php $f = create_function('', $code); $f();"),
    ("split_function_name", "/x.php", b"<?php $a = \"as\" . \"se\".'rt'; $a($x);"),
    ("split_function_name", "/x.php", b"<?php $f = 'base64' . '_' . 'decode';"),
    ("chr_concatenation", "/x.php", b"<?php $f = chr(101).chr(118).chr(97).chr(108).chr(40).chr(36);"),
    ("php_after_image_magic", "/logo.gif", b"GIF89a<?php system($c); ?>"),
    ("php_after_image_magic", "/photo.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64 + b"<?PHP phpinfo();"),
    ("php_after_image_magic", "/a.png", b"\x89PNG\r\n\x1a\n\x00\x00<?php echo 1;"),
    ("md5_password", "/x.php", b"<?php if (md5($_POST['pass']) == '5f4dcc3b5aa765d61d8327deb882cf99') { }"),
    ("md5_password", "/x.php", b"<?php if ('5f4dcc3b5aa765d61d8327deb882cf99' === md5($p)) { }"),
    ("known_shell_string", "/x.php", b"<?php $default_action = 'FilesMan';"),
    ("known_shell_string", "/x.php", b"<?php /* b374k shell 3.2.3 */"),
    ("known_shell_string", "/x.php", b"<?php define('WSO_VERSION', '2.5');"),
    ("known_shell_name", WEBROOT + "/c99.php", b"<?php echo 1;"),
    ("known_shell_name", WEBROOT + "/lib/r57shell.php", b"<?php echo 1;"),
    ("known_shell_name", WEBROOT + "/b374k-3.2.phtml", b"<?php echo 1;"),
    ("php_in_upload_dir", WEBROOT + "/wp-content/uploads/2024/05/cache.php", b"<?php echo 1;"),
    ("php_in_upload_dir", WEBROOT + "/sites/default/files/x.phtml", b"<?php echo 1;"),
])
def test_each_tell_is_found(rule, path, content):
    findings = Scanner().scan_bytes(path, content)
    assert rule in rule_names(findings)


@pytest.mark.parametrize("path, content", [
    ("/wp-includes/class-wp.php", b"<?php $data = base64_decode( $encoded ); $r = curl_exec( $ch );"),
    ("/wp-includes/x.php", b"<?php $this->system_info(); $key = 'wp_' . 'nonce'; $s = 'ev' . 'ent';"),
    ("/wp-includes/pluggable.php", b"<?php $hash = md5( $user->user_login ); if ( md5( $x ) ) {}"),
    ("/wp-includes/formatting.php", b"<?php return preg_replace( '/[^a-z0-9_\\-]/', '', $key );"),
    ("/wp-includes/x.php", b"<?php $s = chr( 65 ) . chr( 66 );"),
    ("/wp-content/plugins/forms/uploader.php", b"<?php echo esc_html( $_GET['page'] );"),
    ("/assets/app.js", b"eval(atob(payload)); document.write($_GET);"),
    ("/wp-content/uploads/2024/05/photo.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF" + b"\x00" * 64 + b"<?xpacket begin='' ?>"),
    ("/readme.txt", b"This plugin mentions eval( base64_decode in its changelog."),
])
def test_ordinary_code_is_not_flagged(path, content):
    assert Scanner().scan_bytes(WEBROOT + path, content) == []


def test_a_rule_is_reported_once_per_file_with_its_first_line():
    content = b"<?php\n// ok\n@eval(base64_decode('a'));\n@eval(base64_decode('b'));\n"
    findings = [f for f in Scanner().scan_bytes("/x.php", content) if f.rule == "eval_decoded"]
    assert len(findings) == 1
    assert findings[0].line_number == 3
    assert findings[0].line == "@eval(base64_decode('a'));"


def test_a_tell_straddling_two_chunks_is_found_with_its_line_number():
    filler = b"<?php\n" + b"// filler line\n" * 70000
    content = filler + b"@eval(base64_decode('x'));\n"
    cut = len(filler) + 6  # inside the call
    scan = Scanner().content_scan("/big.php")
    scan.feed(content[:cut])
    scan.feed(content[cut:])
    (finding,) = [f for f in scan.findings if f.rule == "eval_decoded"]
    assert finding.line_number == filler.count(b"\n") + 1
    assert finding.line == "@eval(base64_decode('x'));"


def test_an_open_tag_seen_in_an_earlier_chunk_makes_later_chunks_php():
    scan = Scanner().content_scan("/notes.txt")
    scan.feed(b"<?php\n" + b"x" * (2 * CHUNK_OVERLAP))
    scan.feed(b"\n$_POST['f']($_POST['a']);\n")
    assert rule_names(scan.findings) == ["request_callable"]


def test_a_long_obfuscated_line_is_trimmed():
    content = b"<?php " + b"$a='x';" * 5000 + b"eval(base64_decode($p));" + b"$b='y';" * 5000
    (finding,) = [f for f in Scanner().scan_bytes("/x.php", content) if f.rule == "eval_decoded"]
    assert len(finding.line) <= LINE_LIMIT
    assert "eval(base64_decode(" in finding.line


def test_local_rules_are_added_to_the_built_in_ones():
    local = {"name": "mailer", "description": "mass mailer", "pattern": r"mail\s*\(\s*\$_POST"}
    findings = Scanner([local]).scan_bytes("/x.php", b"<?php mail($_POST['to'], 'hi', $body);")
    assert rule_names(findings) == ["mailer"]
    path_rule = {"name": "tmp_dir_php", "target": "path", "pattern": r"/tmp/[^/]+\.php$"}
    assert rule_names(Scanner([path_rule]).scan_path(WEBROOT + "/tmp/x.php")) == ["tmp_dir_php"]


@pytest.mark.parametrize("rule, message", [
    ({"name": "broken", "pattern": "eval("}, "webshell rule broken: pattern 'eval(' is not a valid regular expression"),
    ({"name": "eval_decoded", "pattern": "x"}, "webshell rule name eval_decoded is used twice"),
    ({"name": "odd", "pattern": "x", "target": "header"}, "webshell rule odd: target 'header' is not one of"),
    ({"name": "odd", "pattern": "x", "scope": "all"}, "webshell rule odd: scope 'all' is not one of"),
    ({"pattern": "x"}, "has no name"),
    ({"name": "empty"}, "webshell rule empty has no pattern"),
    ({"name": "split", "pattern": "x", "target": "split_string"}, "webshell rule split: target split_string needs words"),
])
def test_a_malformed_local_rule_is_refused_by_name(rule, message):
    with pytest.raises(RuleError) as raised:
        Scanner([rule])
    assert message in str(raised.value)


def test_allow_list_is_by_sha256():
    digest = "AB" * 32
    scanner = Scanner(allow_sha256=[digest])
    assert scanner.allowed(digest.lower())
    assert not scanner.allowed("cd" * 32)
    assert not scanner.allowed(None)
