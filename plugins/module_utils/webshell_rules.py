# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Webshell rules in YARA, and the PHP-aware matcher that applies them.

The collection's rules live in ``.yar`` files (``roles/webshell_rules/files/``; the
``webshell_rules`` role ships them to managed hosts with Debian's ``python3-yara``),
in two sets that see a file in two ways:

``php_content.yar``  the *PHP view*: comments and docblocks removed (their
                     newlines kept, so line numbers hold), double-quoted escapes
                     (``\\x2f``, ``\\157``) decoded, and constant pieces folded:
                     ``'as'.'sert'``, ``chr(97).chr(115)``, ``strrev('lave')``,
                     ``str_rot13('riny')``, ``base64_decode('ZXZhbA==')`` and
                     ``str_replace('`', '', 'a`s`s`e`r`t')`` become the string
                     they spell; a variable that holds request data
                     (``$cmd = $_GET['c']``, ``isset($_POST['c']) ? $_POST['c']
                     : ''``, a JSON body read from ``php://input``) is followed
                     by the byte 0x02 wherever it is used, so ``system($cmd)``
                     reads as ``system($cmd\x02)``, and so is the first
                     parameter of a function of the file, inside that function,
                     where the file calls it with request data. Matched on
                     files that are PHP to the interpreter: by extension, or by
                     an open tag (``<?php``, ``<?=`` or the short ``<?``)
                     whatever the file is called.
``php_content_gated.yar``
                     more rules on the PHP view, matched only on the files where
                     php_content.yar's rule tagged ``gate`` matched: rules whose
                     costly strings cannot match without a rarer one.
``raw_bytes.yar``    the *raw view*: the file's bytes as they are (an image
                     header followed by PHP, strings of known shells). Users'
                     rule files (``rule_files``) are compiled into this set, as
                     PHP Malware Finder and signature-base expect raw files.

Every rule set gets the external variables ``filename``, ``filepath`` (the full
path), ``extension`` (with its dot, lowercase), ``filetype`` (``php``, ``gif``,
``jpeg``, ``png``, ``elf`` or empty) and ``owner`` (the owner's user name).

YARA comes from ``yara-python`` (Debian: ``python3-yara``); it is imported when
a Scanner is made, so the rest of the collection works without it.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import os
import re

PHP_EXTENSIONS = (".php", ".php3", ".php4", ".php5", ".php7", ".php8", ".phtml", ".pht", ".phar", ".inc")
RULE_SETS = ("php_content.yar", "php_content_gated.yar", "raw_bytes.yar")
# The tag of the rules in php_content.yar that are no finding: their match says the gated set is to be matched.
GATE_TAG = "gate"
DEBIAN_PACKAGE = "python3-yara"
LINE_LIMIT = 200
# Files are matched as a whole; one bigger than this is matched in windows of this size that
# overlap by WINDOW_OVERLAP bytes, so memory stays bounded and nothing past the first window is skipped.
# A window is one bytearray, matched where it is.
WINDOW = 8 << 20
WINDOW_OVERLAP = 64 << 10
EXTERNALS = ("filename", "filepath", "extension", "filetype", "owner")
# A file that is PHP only by an open tag is seen whole by the PHP view up to this size; past it (media, archives,
# where a tag turns up by chance), only its PHP blocks are, each at most PHP_BLOCK_LIMIT bytes.
PHP_WHOLE_LIMIT = 1 << 20
PHP_BLOCK_LIMIT = 256 << 10

# An open tag makes a file PHP to the interpreter whatever its name, the short "<?" included
# (short_open_tag is on in many hosting PHP builds). "<?xml" is not PHP. In scripts, styles and
# media the two bytes "<?" turn up by chance, so there only "<?php" and "<?=" count.
_OPEN_TAG = re.compile(rb"<\?(?:php\b|=|[\s$@(])", re.IGNORECASE)
_FULL_OPEN_TAG = re.compile(rb"<\?(?:php\b|=)", re.IGNORECASE)
_NOT_SCRIPTS = (".js", ".mjs", ".css", ".map", ".json", ".svg", ".woff", ".woff2", ".ttf", ".eot", ".mp4", ".webm",
                ".mp3", ".pdf", ".zip", ".gz", ".jpg", ".jpeg", ".png", ".gif", ".ico", ".webp", ".bmp")
_MAGIC = ((b"GIF8", "gif"), (b"\xff\xd8\xff", "jpeg"), (b"\x89PNG", "png"), (b"\x7fELF", "elf"))

# Inside PHP blocks (from an open tag to "?>"), the tokens whose meaning the PHP view changes: strings
# (kept, so a "//" or "#" inside one is not taken for a comment; escapes in double-quoted ones decoded) and
# comments (dropped), and the close tag. "#[" is a PHP 8 attribute. Text outside PHP blocks (HTML) is left
# as it is: a "/*" or an apostrophe there is no PHP.
# One match is (the code up to the next token the view changes, that token or the end of the file): code,
# single-quoted strings and double-quoted ones without a backslash pass in C, so the Python loop turns once
# per comment, escaped string and close tag, not once per string. A quote that opens no string (it is never
# closed) is code.
_PHP_OPEN = re.compile(rb"<\?(?:php\b|=)?", re.IGNORECASE)
_SINGLE_QUOTED = rb"'[^'\\]*(?:\\.[^'\\]*)*'"
_DOUBLE_QUOTED_REST = rb"[^\"\\]*(?:\\.[^\"\\]*)*\""  # what follows the opening quote
_PHP_CODE_THEN_TOKEN = re.compile(
    rb"((?:[^'\"/#?]+"
    rb"|" + _SINGLE_QUOTED + rb"|'"
    rb"|\"[^\"\\]*\"|\"(?!" + _DOUBLE_QUOTED_REST + rb")"
    rb"|/(?![*/])|\#\[|\?(?!>))*)"
    rb"(\"" + _DOUBLE_QUOTED_REST
    + rb"|/\*(?:.*?\*/|.*)"
    rb"|(?://|\#(?!\[))[^\n]*?(?=\?>|\n|$)"
    rb"|\?>|\Z)",
    re.DOTALL)
_ESCAPE = re.compile(rb"\\(?:x([0-9a-fA-F]{1,2})|([0-7]{1,3}))")
_CHR = re.compile(rb"\bchr\s*\(\s*(\d{1,3})\s*\)", re.IGNORECASE)
_JOIN = re.compile(rb"'[ \t]*\.[ \t]*'|\"[ \t]*\.[ \t]*\"")
_DECODE_CALL = re.compile(
    rb"\b(strrev|str_rot13|base64_decode|hex2bin)\s*\(\s*(?:'([^'\\]{1,80})'|\"([^\"\\$]{1,80})\")\s*\)",
    re.IGNORECASE)
_DECODER_NAMES = (b"strrev", b"str_rot13", b"base64_decode", b"hex2bin")
# What every match of _STR_REPLACE_CALL holds: an empty string as a middle argument.
_STR_REPLACE_HINT = re.compile(rb",\s*(?:''|\"\")\s*,")
# Also through a variable that holds str_replace ($r = 'str_replace'; $r('x', '', 'axsxsxexrxt')): a
# three-argument call that removes a short junk string from a literal is folded whatever its name.
_STR_REPLACE_CALL = re.compile(
    rb"(?:\bstr_replace|\$\w+)\s*\(\s*(['\"])([^'\"\\]{1,10})\1\s*,\s*(?:''|\"\")\s*,\s*(['\"])([^'\"\\]{1,200})\3\s*\)",
    re.IGNORECASE)
# A variable given request data directly, through a decoder that keeps it what it was (not a
# sanitizer: sanitize_text_field or intval end it), or from another such variable. Its uses are marked
# with TAINT in the PHP view, so that rules see "$cmd = $_GET['c']; system($cmd);" as what it is.
TAINT = b"\x02"
_NOT_TAINT = b"\x01"
_TAINT_WRAPPER = (rb"(?:(?:trim|stripslashes|urldecode|rawurldecode|base64_decode|str_rot13|strrev|gzinflate|gzuncompress"
                  rb"|hex2bin|html_entity_decode|htmlspecialchars_decode|strval|implode|join|array_values|explode|substr"
                  rb"|unserialize|json_decode)\s*\(\s*(?:'[^'\n]{0,8}'\s*,\s*)?){0,3}")
# A value chosen by whether the request has it: $c = isset($_POST['c']) ? $_POST['c'] : '';
_TAINT_CHOICE = rb"(?:!?\s*(?:isset|empty|array_key_exists)\s*\([^;?]{0,80}\)\s*\?\s*)?"
_REQUEST_DATA = (rb"(?:\$_(?:GET|POST|REQUEST|COOKIE)\b|\$HTTP_(?:GET|POST|COOKIE)_VARS\b|\$_SERVER\s*\[\s*['\"]HTTP_"
                 rb"|\$\s*\{\s*['\"]_(?:GET|POST|REQUEST|COOKIE)|getenv\s*\(\s*['\"]HTTP_|getallheaders\s*\("
                 rb"|file_get_contents\s*\(\s*['\"]php://input|\$\w+\x02)")
_TAINT_SOURCE = re.compile(
    rb"\$(\w+)\s*=\s*@?\(?\s*" + _TAINT_CHOICE + _TAINT_WRAPPER + _REQUEST_DATA, re.IGNORECASE)
# The text that may hold request data: without any of it there is nothing to follow.
_TAINT_HINTS = (b"$_", b"$http_", b"getenv", b"getallheaders", b"php://input")
# Request data handed as the first argument of a call; the callee's name is read back from the text before the
# parenthesis, reversed (a name that follows "->", "::" or "$" is a method or a variable, not a function of the file).
_REQUEST_ARGUMENT = re.compile(rb"\(\s*@?" + _TAINT_CHOICE + _REQUEST_DATA, re.IGNORECASE)
_CALLEE_REVERSED = re.compile(rb"\s*(\w+)(?:[^\w$>:\\]|$)")
# A function of the file and its first parameter (a type before it, or a reference), searched in the lowercased
# view: a literal start is found fast, where a case-insensitive search tries every position.
_FUNCTION = re.compile(rb"function\s+&?\s*(\w+)\s*\(\s*(?:\??[\w\\]+\s+)?&?\s*\$(\w+)")
# How far a function's body is read for its braces: a longer function is followed that far.
_BODY_LIMIT = 64 << 10
_SUPERGLOBALS = frozenset((b"_GET", b"_POST", b"_REQUEST", b"_COOKIE", b"_SERVER", b"_FILES", b"_SESSION", b"_ENV",
                           b"GLOBALS", b"this"))
# What a decoded constant may spell to be folded in: a name (of a function, most of all). Decoded
# code stays as it is written, so that the decoder call is still there for the rules to see.
_NAME = re.compile(rb"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class RuleError(ValueError):
    """A rule file is missing or does not compile; the message names it."""


class MissingYaraError(RuleError):
    """YARA's Python binding is not installed; the message names the package."""


def import_yara():
    try:
        import yara  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise MissingYaraError(
            "the webshell rules need YARA's Python binding: install the Debian package %s (yara-python from PyPI "
            "elsewhere), or run with scan=false" % DEBIAN_PACKAGE)
    return yara


def default_rules_dir():
    """The collection's own rule files, next to this source tree (tests and benchmarks)."""
    here = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(os.path.dirname(os.path.dirname(here)), "roles", "webshell_rules", "files")


def rule_files_in(paths):
    """The ``.yar``/``.yara`` files named by ``paths`` (files, or directories read one level deep), sorted."""
    found = []
    for path in paths:
        if os.path.isdir(path):
            found.extend(sorted(os.path.join(path, name) for name in os.listdir(path)
                                if name.endswith((".yar", ".yara")) and os.path.isfile(os.path.join(path, name))))
        elif os.path.isfile(path):
            found.append(path)
        else:
            raise RuleError("rule file %s does not exist" % path)
    return found


def _compile(yara, sources):
    """Compile {namespace: path} at once; a file that does not compile is named with its line."""
    externals = dict.fromkeys(EXTERNALS, "")
    try:
        return yara.compile(filepaths=sources, externals=externals)
    except yara.Error as exc:
        # YARA names only the line: compile each file alone to name the file it is in.
        for path in sources.values():
            _check_compiles(yara, path)
        raise RuleError("rule files %s do not compile together: %s" % (", ".join(sources.values()), exc))


def _check_compiles(yara, path):
    """Raise RuleError naming ``path`` and the line if the rule file ``path`` does not compile on its own."""
    try:
        yara.compile(filepath=path, externals=dict.fromkeys(EXTERNALS, ""))
    except yara.SyntaxError as exc:
        raise RuleError("rule file %s does not compile: %s" % (path, exc))
    except yara.Error as exc:
        raise RuleError("rule file %s cannot be used: %s" % (path, exc))


class Finding(object):
    __slots__ = ("rule", "description", "line", "line_number")

    def __init__(self, rule, description, line, line_number):
        self.rule = rule
        self.description = description
        self.line = line
        self.line_number = line_number

    def as_dict(self):
        return {"rule": self.rule, "description": self.description, "line": self.line, "line_number": self.line_number}


class Scanner(object):
    """The collection's rules plus users' rule files, shared by worker processes.

    The rule sets are compiled when the first file is matched (or by ``compile``): a check of an unchanged tree
    matches nothing, and the compiled rules are most of its memory. Users' rule files are each compiled once
    when the Scanner is made, so that a broken one fails before anything is scanned, named with its line.
    """

    def __init__(self, rule_files=(), allow_sha256=(), rules_dir=None):
        self._yara = yara = import_yara()
        rules_dir = rules_dir or default_rules_dir()
        own = {}
        for name in RULE_SETS:
            path = os.path.join(rules_dir, name)
            if not os.path.isfile(path):
                raise RuleError("the collection's rule file %s is missing: the hostguard.hosting.webshell_rules role "
                                "ships %s to the host" % (path, ", ".join(RULE_SETS)))
            own[name] = path
        users = rule_files_in(rule_files)
        for path in users:
            _check_compiles(yara, path)
        self._php_sources = {"hostguard": own["php_content.yar"]}
        self._gated_sources = {"hostguard": own["php_content_gated.yar"]}
        self._raw_sources = {"hostguard": own["raw_bytes.yar"]}
        for index, path in enumerate(users):
            self._raw_sources["user%d" % index] = path
        self._php_rules = self._gated_rules = self._raw_rules = None
        self.wants_owner = bool(users)
        self.allow_sha256 = frozenset(digest.lower() for digest in allow_sha256)

    def compile(self):
        """Compile the PHP view's and the raw rule sets now, if not done yet, and check that the gated set
        compiles (it is kept only once a gate matches); RuleError names a file that does not compile."""
        if self._raw_rules is None:
            self._php_rules = _compile(self._yara, self._php_sources)
            self._raw_rules = _compile(self._yara, self._raw_sources)
            if self._gated_rules is None:
                for path in self._gated_sources.values():
                    _check_compiles(self._yara, path)
        return self

    @property
    def compiled(self):
        return self._raw_rules is not None

    @property
    def php_rules(self):
        return self.compile()._php_rules

    @property
    def gated_rules(self):
        """Compiled when a gate first matches: a tree where none does (most) never holds them in memory."""
        if self._gated_rules is None:
            self._gated_rules = _compile(self._yara, self._gated_sources)
        return self._gated_rules

    @property
    def raw_rules(self):
        return self.compile()._raw_rules

    def allowed(self, sha256):
        return sha256 is not None and sha256 in self.allow_sha256

    def scan_path(self, path):
        """Rules on the path alone are YARA rules on ``filepath`` too: they are reported with the content."""
        return []

    def content_scan(self, path, uid=None):
        """A ContentScan to feed the file's bytes into, chunk by chunk.

        ``uid`` is the owner of the open file (its fstat), for rules that read ``owner``; the caller may also set
        the scan's ``uid`` once it has opened the file. The path is never looked up again: it may name another file
        by now.
        """
        return ContentScan(self, path, uid)

    def scan_bytes(self, path, data, uid=None):
        """Findings for a whole file held in memory."""
        scan = self.content_scan(path, uid)
        scan.feed(data)
        return scan.findings

    def match(self, path, data, first=True, uid=None):
        """Findings of both views of ``data`` (the file, or a window of it), owned by ``uid``."""
        if not isinstance(data, (bytes, bytearray)):
            data = bytes(data)  # a bytearray (a ContentScan's window) is matched as it is, not copied
        # A name that is not UTF-8 (kept with surrogateescape) is handed to YARA with replacement characters.
        path = path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        name = path.rsplit("/", 1)[-1]
        extension = os.path.splitext(name)[1].lower()
        tag = _open_tag_for(extension)
        if extension in PHP_EXTENSIONS:
            php_source = data
        elif len(data) <= PHP_WHOLE_LIMIT:
            php_source = data if tag.search(data) else None
        else:
            php_source = _php_blocks(tag, data)
        php = php_source is not None
        filetype = "php" if php else ""
        if first:
            for magic, kind in _MAGIC:
                if data.startswith(magic):
                    filetype = kind
                    break
        externals = {"filename": name, "filepath": path, "extension": extension, "filetype": filetype,
                     "owner": _owner_name(uid) if self.wants_owner else ""}
        findings = []
        seen = set()
        matched = [(match, data) for match in self.raw_rules.match(data=data, externals=externals)]
        if php:
            view = php_view(php_source)
            php_matches = self.php_rules.match(data=view, externals=externals)
            if any(GATE_TAG in match.tags for match in php_matches):
                php_matches += self.gated_rules.match(data=view, externals=externals)
            matched += [(match, view) for match in php_matches if GATE_TAG not in match.tags]
        for match, view in matched:
            if match.rule in seen:
                continue
            seen.add(match.rule)
            findings.append(_finding(match, view))
        return findings


def is_php(name, data):
    """Whether PHP runs the file ``name``: by its extension, or by an open tag in ``data`` (its start, or all)."""
    extension = os.path.splitext(name)[1].lower()
    return extension in PHP_EXTENSIONS or _open_tag_for(extension).search(data) is not None


def _open_tag_for(extension):
    return _FULL_OPEN_TAG if extension in _NOT_SCRIPTS else _OPEN_TAG


def _php_blocks(tag, data):
    """The PHP blocks of a large file that is PHP only by an open tag (a video, an archive, an unknown name): each
    from its tag to its close tag, at most PHP_BLOCK_LIMIT bytes, joined; None without a tag. Media and binary files
    hold the two or three bytes of a tag by chance every few megabytes, so the PHP view (which costs what it reads)
    sees those blocks, not the whole file; the raw view still sees every byte."""
    blocks = []
    position = 0
    while True:
        match = tag.search(data, position)
        if match is None:
            break
        start = match.start()
        close = data.find(b"?>", start, start + PHP_BLOCK_LIMIT)
        position = close + 2 if close >= 0 else start + PHP_BLOCK_LIMIT
        blocks.append(data[start:position])
    return b"\n".join(blocks) if blocks else None


class ContentScan(object):
    """Findings of one file, fed in consecutive chunks; matched when ``findings`` is read.

    YARA matches a whole buffer, so chunks are gathered in one bytearray, the window, which is matched where it
    is (no second copy of it is made); a file bigger than WINDOW is matched window by window, each overlapping the
    last by WINDOW_OVERLAP bytes.
    """

    def __init__(self, scanner, path, uid=None):
        self._scanner = scanner
        self._path = path
        self.uid = uid
        self._window = bytearray()
        self._size = 0  # how much of the window holds the file
        self._lines_before = 0
        self._first = True
        self._findings = []
        self._names = set()
        self._done = False

    def feed(self, chunk):
        chunk = memoryview(chunk)
        while len(chunk):
            window, size = self._window, self._size
            piece = chunk[:WINDOW - size]
            chunk = chunk[len(piece):]
            end = size + len(piece)
            if end > len(window):
                if not size:
                    window = bytearray(piece)  # most files are one chunk: a window of their size
                else:
                    # Grown once, to a whole window: grown a chunk at a time, it could be copied at every step
                    # (the old and the new buffer both held).
                    grown = bytearray(WINDOW)
                    grown[:size] = memoryview(window)[:size]
                    window = grown
                    window[size:end] = piece
                self._window = window
            else:
                window[size:end] = piece
            self._size = end
            if end == WINDOW:
                self._match(window)
                dropped = WINDOW - WINDOW_OVERLAP
                self._lines_before += window.count(b"\n", 0, dropped)
                window[:WINDOW_OVERLAP] = memoryview(window)[dropped:]
                self._size = WINDOW_OVERLAP

    def _match(self, window):
        for finding in self._scanner.match(self._path, window, self._first, self.uid):
            if finding.rule in self._names:
                continue
            self._names.add(finding.rule)
            if finding.line_number is not None:
                finding.line_number += self._lines_before
            self._findings.append(finding)
        self._first = False

    @property
    def findings(self):
        if not self._done:
            self._done = True
            if self._size or self._first:
                window = self._window
                del window[self._size:]
                self._match(window)
            self._window = bytearray()
            self._size = 0
        return self._findings


def php_view(data):
    """The file as the PHP content rules see it (see the module docstring)."""
    if TAINT in data:
        # Only the marks _taint adds may read as request data: a TAINT byte of the file's own (media and binary
        # files hold them by chance, "$v\x02(" is a variable call to the rules) becomes another control byte.
        data = data.replace(TAINT, _NOT_TAINT)
    view = _strip_comments(data)
    lowered = view.lower()
    if b"chr" in lowered:
        view = _CHR.sub(_chr, view)
    if b"'" in view or b'"' in view:
        # Twice: a folded call can complete a concatenation and the other way round ("ev".strrev('la')).
        # A round that changed nothing would change nothing the second time. The two call patterns are
        # costly searches over every variable and word of a file, so each runs only where the text it
        # cannot match without ("," '' "," or a decoder's name) is there.
        for _round in range(2):
            before = view
            view = _JOIN.sub(b"", view)
            if _STR_REPLACE_HINT.search(view):
                view = _STR_REPLACE_CALL.sub(_str_replace, view)
            folded = view.lower()
            if any(name in folded for name in _DECODER_NAMES):
                view = _DECODE_CALL.sub(_decode, view)
            if view == before:
                break
    if any(hint in lowered for hint in _TAINT_HINTS):
        view = _taint(view)
    return view


def _taint(view):
    """Mark the uses of variables that hold request data: copies from one variable to another, and the first
    parameter of a function of the file that is called with request data, inside that function (and the
    variables given it there: a function's variables are its own). Two rounds of functions: one calling the
    next, which the second round looks for only in the functions the first one marked."""
    view = _taint_variables(view)
    followed = set()
    searched = [(0, len(view))]
    for _round in range(2):
        view, searched = _taint_parameters(view, followed, searched)
        if not searched:
            break
    return view


def _taint_variables(view):
    """Two rounds: one copy to another variable."""
    for _round in range(2):
        names = set(match.group(1) for match in _TAINT_SOURCE.finditer(view)) - _SUPERGLOBALS
        if not names:
            break
        pattern = re.compile(rb"\$(?:" + b"|".join(re.escape(name) for name in sorted(names)) + rb")\b(?!\x02)")
        view = pattern.sub(lambda match: match.group(0) + TAINT, view)
    return view


def _taint_parameters(view, followed, searched):
    """Mark, inside each function of the file called with request data as its first argument (in the ranges
    ``searched`` of the view), that parameter's uses: ``function run($c) { passthru($c); } run($_GET['c']);``
    reads as ``passthru($c\x02)``. ``followed`` holds the names of the functions marked before and gets those
    marked now. Returns the view and the ranges of it that were marked."""
    called = set()
    for start, end in searched:
        for argument in _REQUEST_ARGUMENT.finditer(view, start, end):
            callee = _CALLEE_REVERSED.match(view[max(0, argument.start() - 80):argument.start()][::-1])
            if callee is not None:
                called.add(callee.group(1)[::-1].lower())
    called -= followed
    if not called:
        return view, []
    followed |= called
    bodies = []
    # Function names are the same in any case, variable names are not: the parameter's is read from the view.
    for function in _FUNCTION.finditer(view.lower()):
        if function.group(1) in called:
            body = _body(view, function.end())
            if body is not None:
                bodies.append(body + (view[function.start(2):function.end(2)],))
    # Bodies that overlap (a function defined inside another) are marked together, the last first so that the
    # offsets of the ones before stay as they were; the file is joined once.
    parts = []
    marked = []
    length = 0
    position = 0
    group = []
    group_end = 0
    for body in sorted(bodies) + [None]:
        if group and (body is None or body[0] >= group_end):
            group_start = group[0][0]
            segment = view[group_start:group_end]
            for start, end, name in reversed(group):
                parameter = re.compile(rb"\$" + re.escape(name) + rb"\b(?!\x02)")
                inside = parameter.sub(lambda match: match.group(0) + TAINT, segment[start - group_start:end - group_start])
                segment = segment[:start - group_start] + _taint_variables(inside) + segment[end - group_start:]
            length += group_start - position
            marked.append((length, length + len(segment)))
            length += len(segment)
            parts.extend((view[position:group_start], segment))
            position = group_end
            group = []
        if body is not None:
            group.append(body)
            group_end = max(group_end, body[1]) if len(group) > 1 else body[1]
    parts.append(view[position:])
    return b"".join(parts), marked


def _body(view, position):
    """(start, end) of the function body whose signature goes on at ``position``: from its first brace to the one
    that closes it (strings are not told apart, so a brace in one counts); None for an abstract or interface
    method, or a body longer than _BODY_LIMIT."""
    start = view.find(b"{", position, position + 400)
    if start < 0 or b";" in view[position:start]:
        return None
    depth = 0
    for match in re.finditer(rb"[{}]", view[start:start + _BODY_LIMIT]):
        depth += 1 if match.group(0) == b"{" else -1
        if depth == 0:
            return start, start + match.end()
    return None


def _strip_comments(data):
    """``data`` with the comments of its PHP blocks removed (their newlines kept) and escapes decoded."""
    parts = []
    append = parts.append
    position = 0
    find_open = _PHP_OPEN.search
    code_then_token = _PHP_CODE_THEN_TOKEN.match
    while True:
        found = find_open(data, position)  # outside PHP: up to the next open tag
        if found is None:
            append(data[position:])
            return b"".join(parts)
        append(data[position:found.end()])
        position = found.end()
        while True:  # inside PHP: up to the close tag
            found = code_then_token(data, position)
            code, token = found.group(1, 2)
            append(code)
            position = found.end()
            if not token:  # the end of the file
                return b"".join(parts)
            if token == b"?>":
                append(token)
                break
            append(_token(token))


def _token(token):
    if token[:1] == b'"':
        return _ESCAPE.sub(_unescape, token)  # a double-quoted string with a backslash
    # A comment: its newlines stay so that line numbers in the view are those of the file.
    return b"\n" * token.count(b"\n") or b" "


def _unescape(match):
    value = int(match.group(1), 16) if match.group(1) else int(match.group(2), 8)
    # Only printable characters that cannot end or escape the string are decoded.
    if 0x20 <= value < 0x7f and value not in (0x22, 0x24, 0x5c):
        return bytes((value,))
    return match.group(0)


def _chr(match):
    value = int(match.group(1))
    if 0x20 <= value < 0x7f and value not in (0x27, 0x5c):
        return b"'" + bytes((value,)) + b"'"
    return match.group(0)


def _quoted(value, original):
    if not _NAME.match(value):
        return original
    return b"'" + value + b"'"


def _decode(match):
    function = match.group(1).lower()
    text = match.group(2) if match.group(2) is not None else match.group(3)
    try:
        if function == b"strrev":
            value = text[::-1]
        elif function == b"str_rot13":
            value = codecs.encode(text.decode("ascii"), "rot13").encode("ascii")
        elif function == b"base64_decode":
            value = base64.b64decode(text + b"=" * (-len(text) % 4), validate=True)
        else:
            value = binascii.unhexlify(text)
    except (ValueError, UnicodeDecodeError, binascii.Error):
        return match.group(0)
    return _quoted(value, match.group(0))


def _str_replace(match):
    return _quoted(match.group(4).replace(match.group(2), b""), match.group(0))


def _owner_name(uid):
    """The account name of ``uid``; its number where no account has it; "" where the owner is unknown."""
    if uid is None:
        return ""
    try:
        import pwd  # pylint: disable=import-outside-toplevel
        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return str(uid)


_PIECE = re.compile(r"_\d+$")
_BOUNDARY = frozenset(bytes((value,)) for value in b" \t\r\n;{}()[]@=.,!&|?")


def _finding(match, view):
    description = match.meta.get("description", "")
    if not match.strings:
        return Finding(match.rule, description, None, None)
    # The first string a rule declares is the one that tells most (the others often only gate it). Its pieces
    # ($name_1, $name_2, ...: one string split so that YARA anchors each piece on its rarest text) count as one
    # string: the earliest match of any of them is the line.
    found = []
    piece_of = None
    for string in match.strings:
        if isinstance(string, tuple):
            # yara-python before 4.3 (Debian 12's python3-yara): (offset, identifier, data) per match.
            identifier, instances = string[1], [(string[0], string[2])]
        else:
            identifier, instances = string.identifier, [(hit.offset, hit.matched_data) for hit in string.instances]
        piece = _PIECE.sub("", identifier)
        if piece_of is None:
            piece_of = piece
        if piece == piece_of:
            found.extend(instances)
    if not found:
        return Finding(match.rule, description, None, None)
    start, matched = min(found, key=lambda hit: hit[0])
    end = start + len(matched)
    if matched[:1] in _BOUNDARY:
        start += 1  # the character before a name that rules match to tell eval( from ->eval(
    line, line_number = _line_around(view, start, end)
    return Finding(match.rule, description, line, line_number)


def _line_around(window, start, end):
    """The matched line, trimmed to LINE_LIMIT characters, and its 1-based number in ``window``."""
    line_start = window.rfind(b"\n", 0, start) + 1
    line_end = window.find(b"\n", end)
    if line_end < 0:
        line_end = len(window)
    if line_end - line_start > LINE_LIMIT:
        line_start = max(line_start, start - LINE_LIMIT // 4)
        line_end = min(line_end, line_start + LINE_LIMIT)
    line = window[line_start:line_end].replace(TAINT, b"").decode("utf-8", "replace").strip()
    return line, window.count(b"\n", 0, start) + 1
