/*
    hostguard.hosting: webshell rules on the raw bytes of a file.

    These see the file exactly as it is on disk: image headers, escapes as
    written, strings of known shells, and the file's path (external variables
    filename, filepath, extension, filetype and owner are set for every file).
    Users' rule files are compiled with this set and see the same.
    Rules on the path carry example_path and example_no_path instead, and
    rules on an image name the image in example_path.

    Every rule says in its meta what it catches and why (description), a
    fragment it matches (matches) and one it must not match (not_matches);
    the unit tests hold each rule to both.
*/

rule php_after_image_magic
{
    meta:
        description = "PHP code that does something right after an open tag (a call ending its statement, request data, an assignment, echo or include, a backtick command, a function or class; one comment may come first) in a file that starts like a GIF, PNG, JPEG or icon: an upload filter fooled by the magic number, run through include or a handler"
        example_match = "GIF89a<?php system($c); ?>"
        example_no_match = "GIF89a\x01\x01<?xpacket begin='' ?>\x16<?=\x1aYjN\x16[\x05(\x02);"
    strings:
        $code = /<\?(php\b|=|[ \t\r\n])[ \t\r\n]{0,20}((\/\*([^*]|\*+[^*\/]){0,100}\*+\/|(\/\/|#)[^\n]{0,100}\n)[ \t\r\n]{0,20})?@?(\$_(GET|POST|REQUEST|COOKIE|SERVER|FILES|SESSION|ENV)\s*\[|\(?((throw\s+)?new\s+|return\s+)?\$?[a-z_]\w+(\[[^\]\n]{0,40}\])*\s*\([\t\n\r -~]{0,200}\)\s*(;|\?>|\{)|(echo|print|include|include_once|require|require_once)\b[\t\n\r -~]{1,200}(;|\?>)|\$\w+\s*(\[[^\]]{0,40}\]\s*)?=[\t\n\r -~]{1,200};|`[\t\n\r -~]{2,200}`\s*(;|\?>)|(function|class)\s+\w+[\t\n\r -~]{1,200}[;{}])/ nocase
    condition:
        (uint32be(0) == 0x47494638 or uint32be(0) == 0x89504e47 or (uint16be(0) == 0xffd8 and uint8(2) == 0xff) or uint32be(0) == 0x00000100)
        and $code
}

rule php_in_image_file
{
    meta:
        description = "a file named like an image or icon (.jpg, .gif, .png, .ico, ...) with PHP code that does something after an open tag (the code as in php_after_image_magic, which names files with an image header): images never hold PHP, while their compressed bytes hold the two or three bytes of an open tag by chance"
        example_path = "/var/www/site1/favicon_1a3f84.ico"
        example_match = "<?php @eval($_POST['x']); ?>"
        example_no_match = "<?xml version=\"1.0\"?><svg/><?=\x07\x08\x12w3F\x0d<? \x16u\x17($a);"
    strings:
        $code = /<\?(php\b|=|[ \t\r\n])[ \t\r\n]{0,20}((\/\*([^*]|\*+[^*\/]){0,100}\*+\/|(\/\/|#)[^\n]{0,100}\n)[ \t\r\n]{0,20})?@?(\$_(GET|POST|REQUEST|COOKIE|SERVER|FILES|SESSION|ENV)\s*\[|\(?((throw\s+)?new\s+|return\s+)?\$?[a-z_]\w+(\[[^\]\n]{0,40}\])*\s*\([\t\n\r -~]{0,200}\)\s*(;|\?>|\{)|(echo|print|include|include_once|require|require_once)\b[\t\n\r -~]{1,200}(;|\?>)|\$\w+\s*(\[[^\]]{0,40}\]\s*)?=[\t\n\r -~]{1,200};|`[\t\n\r -~]{2,200}`\s*(;|\?>)|(function|class)\s+\w+[\t\n\r -~]{1,200}[;{}])/ nocase
    condition:
        extension matches /^\.(jpe?g|gif|png|ico|bmp|webp|tiff?)$/ and $code
        and not php_after_image_magic
}

rule include_escaped_path
{
    meta:
        description = "include/require of a path written with \\x or octal escapes: nobody writes a real include that way, droppers do to hide the target"
        example_match = "<?php @include \"\\x2fhome/u/www/favicon_1a3f84.ico\";"
        example_no_match = "<?php require_once \"includes/db.php\"; $s = \"\\x2f\";"
    strings:
        $escaped = /(include|require)(_once)?\s*\(?\s*"[^"\n]{0,40}\\(x[0-9a-fA-F]{2}|[0-7]{3})/ nocase
    condition:
        $escaped
}

rule known_shell_string
{
    meta:
        description = "a string that only known webshell kits carry (c99, r57, b374k, WSO/FilesMan, antSword, Weevely)"
        example_match = "<?php $default_action = 'FilesMan';"
        example_no_match = "<?php $files_manager = new Files_Manager();"
    strings:
        $filesman = /\bFilesMan\b/
        $b374k = "b374k" nocase
        $c99 = /c99(shell|_buff_prepare|sh_)/ nocase
        $r57 = "r57shell" nocase
        $wso = /WSO_VERSION|\bwso\s+[0-9]\.[0-9]/ nocase
        $antsword = /@ini_set\(\s*["']display_errors["']\s*,\s*["']0["']\s*\);@set_time_limit\(0\);\$opdir=@ini_get\(["']open_basedir["']\)/
    condition:
        any of them
}

rule known_shell_name
{
    meta:
        description = "a PHP file named like a known webshell kit (c99, c100, r57, b374k, wso)"
        example_path = "/var/www/site1/lib/r57shell.php"
        example_no_path = "/var/www/site1/wp-includes/class-wp.php"
    condition:
        filename matches /^(c99|c100|r57|b374k|wso)[^\/]*\.(php[3-8]?|phtml|pht|phar)$/i
}

rule php_in_upload_dir
{
    meta:
        description = "a PHP file in a media upload directory (wp-content/uploads, Drupal's sites/*/files), where a CMS stores only media"
        example_path = "/var/www/site1/wp-content/uploads/2024/05/cache.php"
        example_no_path = "/var/www/site1/wp-admin/includes/class-wp-upload.php"
    condition:
        filepath matches /\/(wp-content\/uploads|sites\/[^\/]+\/files)\/([^\/]+\/)*[^\/]+\.(php[3-8]?|phtml|pht|phar)$/i
}
