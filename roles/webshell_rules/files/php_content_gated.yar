/*
    hostguard.hosting: webshell rules on the PHP view of a file, matched only
    where php_content.yar's rule gated_rules_wanted matched.

    These rules need strings whose only literal is a variable's "$" (a variable
    called, short assignments in a row, a variable joined from others): YARA
    tries such a string at every variable of every file, and on ordinary code
    that was about half of the content rules' time. Each rule here also needs a
    rarer string (eval of a variable, a runner's name assigned, extract() of the
    request, a long encoded blob), and gated_rules_wanted matches any of those
    with the same expression: so the PHP view is matched with this set only
    where one of them is, and a rule here finds what it would find if it were
    in php_content.yar. Each rule has the name of the php_content.yar rule whose
    other half it is, so that a finding names the same rule either way.

    The PHP view, the meta and the tests are as in php_content.yar.
*/

rule many_piece_code
{
    meta:
        description = "code assembled from many short variables joined and evaluated (the other half of php_content.yar's many_piece_code)"
        example_match = "<?php $a='e';$b='val($_';$c='PO';$d='ST[x]);';$e=$a.$b.$c.$d; @eval($e);"
        example_no_match = "<?php $url = $scheme . $host . $port . $path; wp_redirect( $url ); eval($code);"
    strings:
        $pieces = /\$\w+\s*=\s*(\$\w+\s*\.\s*){3,}(\$\w+|['"][^'"\n]{0,40}['"])\s*;/
        $short_literals = /(\$\w+\s*=\s*['"][^'"\n]{1,8}['"]\s*;\s*){4}/
        $eval_var = /[^\w$>:](eval|assert)\s*\(\s*@?\$\w+\s*\)/ nocase
    condition:
        $pieces and $short_literals and $eval_var
}

rule hidden_runner_name
{
    meta:
        description = "the name of a runner assembled from pieces or picked character by character out of a string ($s[4].$s[21].$s[0].$s[11]), then a variable called (the other half of php_content.yar's hidden_runner_name)"
        example_match = "<?php $a = 'abcdefghijklmnopqrstuvwxyz'; $f = $a[4].$a[21].$a[0].$a[11].$a[18]; $f($x);"
        example_no_match = "<?php $key = 'wp_' . 'nonce'; $s = 'ev' . 'ent'; if ( function_exists( 'system' ) ) {}"
    strings:
        $assigned = /[$]\w+\s*(\.?=|=>)\s*['"](assert|eval|system|exec|passthru|shell_exec|popen|proc_open|pcntl_exec|create_function|call_user_func|call_user_func_array|base64_decode|gzinflate|gzuncompress|str_rot13)['"]\s*[;,\])]/ nocase
        $suffix = /(\$\w+|\])\s*\.\s*['"](ert|sert|ssert|ystem|stem|xec)['"]\s*[;),]/ nocase
        $variable_call = /(^|[^\w>:])[$]\w+\x02?\s*(\[[^\]]{1,40}\]\s*){0,3}\(/
        $picked = /(\$\w+\x02?(\[['"]\w{1,20}['"]\])?(\[\d{1,3}\]|\{\d{1,3}\})\.){4}\$\w+\x02?(\[['"]\w{1,20}['"]\])?(\[\d{1,3}\]|\{\d{1,3}\})/
        $picked_call = /(\[\d{1,3}\]|\{\d{1,3}\})\]\s*\(/
    condition:
        (($assigned or $suffix) and $variable_call) or ($picked and ($variable_call or $picked_call))
}

rule request_through_variable
{
    meta:
        description = "a runner or a variable function called after extract() of the request made its fields variables (the other half of php_content.yar's request_through_variable)"
        example_match = "<?php extract($_REQUEST); @die($ctime($atime));"
        example_no_match = "<?php extract($args); $callback($value);"
    strings:
        $runner = /[^\w$>:](eval|assert|system|passthru|shell_exec|exec|popen|proc_open|pcntl_exec)\s*\(\s*@?\$\w+/ nocase
        $variable_call = /(^|[^\w>:])[$]\w+\s*\(\s*@?[$]\w+\s*\)/
        $extract = /extract\s*\(\s*\$_(GET|POST|REQUEST|COOKIE)\b/ nocase
    condition:
        $extract and ($runner or $variable_call)
}

rule packed_payload_runner
{
    meta:
        description = "a long encoded blob decoded in a file that also runs code: eval, assert, create_function or a variable function (the other half of php_content.yar's packed_payload_runner)"
        example_match = "<?php $x = base64_decode('SGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQgSGVsbG8gd29ybGQ='); eval($x);"
        example_no_match = "<?php $png = base64_decode('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=='); echo $png;"
    strings:
        $blob = /(base64_decode|gzinflate|gzuncompress|gzdecode|str_rot13|convert_uudecode|hex2bin)\s*\(\s*['"][A-Za-z0-9+\/=\\\r\n]{256}/ nocase
        $runner = /[^\w$>:](eval|assert|create_function)\s*\(|(^|[^\w>:])\$\w+\s*\(\s*\$\w+\s*\)\s*;/ nocase
    condition:
        $blob and $runner
}
