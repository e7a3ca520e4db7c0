# -*- coding: utf-8 -*-
# Copyright: (c) 2026, hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Webshell tells kept as data, and the matcher that applies them.

The tells are the ones PHP Malware Finder looks for in files planted through
vulnerable CMS plugins or leaked FTP passwords. Each rule is a plain dict so
that local rules (the module's ``rules`` option) have the same shape:

``name``         unique identifier reported with each finding
``description``  what the rule means, for the responder reading the report
``target``       ``content`` (regex over the file's bytes), ``path`` (regex over
                 the full path) or ``split_string`` (quoted pieces joined by
                 ``.`` that spell one of ``words``)
``pattern``      a regular expression, matched case-insensitively because PHP
                 function names are case-insensitive (``EvAl`` runs as ``eval``)
``scope``        ``php`` (default): only files that look like PHP (extension or
                 an open tag); ``any``: every scanned file
``gate``         optional lowercase literals, one of which must occur before the
                 regex runs; a substring test is much cheaper than a regex
``magic``        optional byte prefixes the file must start with

Content is scanned in chunks with an overlap, so nothing is skipped because of
its size and a tell that straddles two chunks is still found.
"""

from __future__ import annotations

import re

PHP_EXTENSIONS = (".php", ".php3", ".php4", ".php5", ".php7", ".php8", ".phtml", ".pht", ".phar", ".inc")

# Patterns are lowercase: content is lowered once per chunk and matched case-sensitively, which
# equals a case-insensitive match and keeps the regex engine's fast literal-prefix search.
# Calls that run code or commands when handed a string.
_RUNNERS = r"(?:\b(?:eval|assert|system|exec|passthru|shell_exec|popen|proc_open|pcntl_exec)\s*\(|\b(?:include|require)(?:_once)?\b)"
_DECODERS = r"\b(?:base64_decode|gzinflate|gzuncompress|gzdecode|str_rot13|strrev|convert_uudecode|hex2bin)\s*\("
_REQUEST = r"\$_(?:post|get|request|cookie)\b|\$_server\s*\[\s*['\"]http_"
_UPLOAD_DIRS = r"/(?:wp-content/uploads|uploads?|sites/[^/]+/files)/"
_PHP_SUFFIX = r"\.(?:php[3-8]?|phtml|pht|phar)$"

RULES = (
    {
        "name": "eval_decoded",
        "description": "eval/assert/system/include fed by a decoder (base64_decode, gzinflate, str_rot13, ...)",
        "target": "content",
        "gate": ("base64_decode", "gz", "rot13", "strrev", "uudecode", "hex2bin"),
        "pattern": _RUNNERS + r"[^;]{0,200}?" + _DECODERS,
    },
    {
        "name": "eval_request",
        "description": "eval/assert/system/include fed by request data ($_POST, $_GET, $_REQUEST, $_COOKIE)",
        "target": "content",
        "gate": ("$_",),
        "pattern": _RUNNERS + r"[^;]{0,200}?(?:" + _REQUEST + r")",
    },
    {
        "name": "request_callable",
        "description": "a function name taken from the request and called: $_POST['f']($_POST['a'])",
        "target": "content",
        "gate": ("$_",),
        "pattern": r"\$_(?:post|get|request|cookie)\s*\[[^\]]{1,60}\]\s*\(",
    },
    {
        "name": "backtick_request",
        "description": "shell command in backticks built from request data",
        "target": "content",
        "gate": ("`",),
        "pattern": r"`[^`\n]{0,200}(?:" + _REQUEST + r")[^`\n]{0,200}`",
    },
    {
        "name": "preg_replace_eval",
        "description": "preg_replace with the /e modifier, which evaluates the replacement as PHP",
        "target": "content",
        "gate": ("preg_replace",),
        "pattern": r"preg_replace\s*\(\s*(['\"])([^\w\s\\])(?:(?!\2).){0,400}?\2[a-z]*e[a-z]*\1",
    },
    {
        "name": "create_function",
        "description": "create_function, an eval in disguise (removed in PHP 8)",
        "target": "content",
        "gate": ("create_function",),
        "pattern": r"create_function\s*\(",
    },
    {
        "name": "split_function_name",
        "description": "a dangerous function name split into concatenated strings to hide it ('ev'.'al')",
        "target": "split_string",
        "gate": ("'.", "' .", "\".", "\" .", "'\n", "\"\n"),
        "pattern": r"['\"][a-z0-9_]{0,14}['\"](?:\s*\.\s*['\"][a-z0-9_]{0,14}['\"]){1,8}",
        "words": ("eval", "assert", "system", "exec", "passthru", "shell_exec", "popen", "proc_open",
                  "base64_decode", "gzinflate", "str_rot13", "create_function", "preg_replace"),
    },
    {
        "name": "chr_concatenation",
        "description": "a string assembled from many chr() calls to hide it",
        "target": "content",
        "gate": ("chr",),
        "pattern": r"(?:chr\s*\(\s*\d+\s*\)\s*\.\s*){5,}chr\s*\(\s*\d+\s*\)",
    },
    {
        "name": "php_after_image_magic",
        "description": "PHP code inside a file that starts like a GIF, PNG or JPEG image",
        "target": "content",
        "magic": (b"GIF87a", b"GIF89a", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff"),
        "gate": ("<?php",),
        "pattern": r"<\?php",
    },
    {
        "name": "md5_password",
        "description": "access guarded by comparing md5() of input with a hard-coded hash (password-protected shell)",
        "target": "content",
        "gate": ("md5",),
        "pattern": r"md5\s*\(\s*(?:" + _REQUEST + r")"
                   r"|md5\s*\([^;]{0,120}?\)\s*[!=]==?\s*['\"][0-9a-f]{32}['\"]"
                   r"|['\"][0-9a-f]{32}['\"]\s*[!=]==?\s*md5\s*\(",
    },
    {
        "name": "known_shell_string",
        "description": "a string from a known webshell (c99, r57, b374k, WSO, FilesMan)",
        "target": "content",
        "gate": ("filesman", "b374k", "c99", "r57", "wso"),
        "pattern": r"\bfilesman\b|b374k|c99(?:shell|_buff_prepare|sh_)|r57shell|\bwso_version\b|\bwso\s+\d+\.\d+",
    },
    {
        "name": "known_shell_name",
        "description": "a file named like a known webshell (c99, c100, r57, b374k, WSO)",
        "target": "path",
        "pattern": r"/(?:c99|c100|r57|b374k|wso)[^/]*" + _PHP_SUFFIX,
    },
    {
        "name": "php_in_upload_dir",
        "description": "a PHP file inside an upload directory (wp-content/uploads, uploads, sites/*/files)",
        "target": "path",
        "pattern": _UPLOAD_DIRS + r"(?:[^/]+/)*[^/]+" + _PHP_SUFFIX,
    },
)

TARGETS = ("content", "path", "split_string")
SCOPES = ("php", "any")
CHUNK_OVERLAP = 4096
LINE_LIMIT = 200
# An open tag anywhere makes a file PHP to the interpreter, whatever its name. The short "<?="
# is left out here: those three bytes turn up by chance in about one megabyte of image data in sixteen.
_PHP_OPEN_TAG = re.compile(rb"<\?php", re.IGNORECASE)
_QUOTED_PIECE = re.compile(rb"['\"]([a-z0-9_]*)['\"]")


class RuleError(ValueError):
    """A rule (usually a local one) is malformed; the message names it."""


class _CompiledRule(object):
    def __init__(self, rule):
        self.name = rule["name"]
        self.description = rule.get("description") or ""
        self.target = rule.get("target") or "content"
        self.scope = rule.get("scope") or "php"
        self.magic = tuple(rule.get("magic") or ())
        self.words = frozenset(word.lower() for word in rule.get("words") or ())
        pattern = rule["pattern"]
        if self.target == "path":
            self.gate = ()
            self.regex = re.compile(pattern, re.IGNORECASE)
        else:
            self.gate = tuple(literal.lower().encode("utf-8") for literal in rule.get("gate") or ())
            # Content is lowered before matching: a pattern without capitals can then be matched
            # case-sensitively, which is the same result and much faster; others (\S, \W, ...) keep the flag.
            self.regex = re.compile(pattern.encode("utf-8"), 0 if pattern == pattern.lower() else re.IGNORECASE)

    def content_match(self, lowered):
        """First match in ``lowered`` (a lowercased window), or None."""
        if self.target == "split_string":
            for match in self.regex.finditer(lowered):
                joined = b"".join(_QUOTED_PIECE.findall(match.group(0)))
                if joined.decode("ascii", "replace") in self.words:
                    return match
            return None
        return self.regex.search(lowered)


def validate_rule(rule):
    """Raise RuleError naming what is wrong with ``rule``; return it unchanged otherwise."""
    if not isinstance(rule, dict):
        raise RuleError("webshell rule %r is not a mapping" % (rule,))
    name = rule.get("name")
    if not name or not isinstance(name, str):
        raise RuleError("webshell rule %r has no name" % (rule,))
    target = rule.get("target") or "content"
    if target not in TARGETS:
        raise RuleError("webshell rule %s: target %r is not one of %s" % (name, target, ", ".join(TARGETS)))
    scope = rule.get("scope") or "php"
    if scope not in SCOPES:
        raise RuleError("webshell rule %s: scope %r is not one of %s" % (name, scope, ", ".join(SCOPES)))
    pattern = rule.get("pattern")
    if not pattern or not isinstance(pattern, str):
        raise RuleError("webshell rule %s has no pattern" % name)
    try:
        re.compile(pattern)
    except re.error as exc:
        raise RuleError("webshell rule %s: pattern %r is not a valid regular expression: %s" % (name, pattern, exc))
    if target == "split_string" and not rule.get("words"):
        raise RuleError("webshell rule %s: target split_string needs words" % name)
    return rule


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
    """The built-in rules plus local ones, compiled once and shared by threads."""

    def __init__(self, local_rules=(), allow_sha256=()):
        names = set()
        compiled = []
        for rule in tuple(RULES) + tuple(local_rules):
            validate_rule(rule)
            if rule["name"] in names:
                raise RuleError("webshell rule name %s is used twice" % rule["name"])
            names.add(rule["name"])
            compiled.append(_CompiledRule(rule))
        self.path_rules = [rule for rule in compiled if rule.target == "path"]
        self.content_rules = [rule for rule in compiled if rule.target != "path"]
        self.allow_sha256 = frozenset(digest.lower() for digest in allow_sha256)

    def allowed(self, sha256):
        return sha256 is not None and sha256 in self.allow_sha256

    def scan_path(self, path):
        """Findings of the path rules for ``path`` (a str)."""
        findings = []
        for rule in self.path_rules:
            match = rule.regex.search(path)
            if match:
                findings.append(Finding(rule.name, rule.description, path.rsplit("/", 1)[-1], None))
        return findings

    def content_scan(self, path):
        """A ContentScan to feed the file's bytes into, chunk by chunk."""
        return ContentScan(self.content_rules, path.lower().endswith(PHP_EXTENSIONS))

    def scan_bytes(self, path, data):
        """Path and content findings for a whole file held in memory."""
        scan = self.content_scan(path)
        scan.feed(data)
        return self.scan_path(path) + scan.findings


class ContentScan(object):
    """Content findings of one file, fed in consecutive chunks.

    Each chunk is scanned together with the last CHUNK_OVERLAP bytes of the
    previous one; a rule is reported once per file, at its first match.
    """

    def __init__(self, rules, php_by_name):
        self._rules = rules
        self._looks_like_php = php_by_name
        self._head = None
        self._previous = b""
        self._newlines_before_previous = 0
        self._matched = set()
        self.findings = []

    def feed(self, chunk):
        chunk = bytes(chunk)
        if self._head is None:
            self._head = chunk[:16]
        tail = self._previous[-CHUNK_OVERLAP:]
        if self._previous:
            # Counted only when a file has a second chunk: most files have one.
            self._newlines_before_previous += self._previous.count(b"\n", 0, len(self._previous) - len(tail))
        window = tail + chunk if tail else chunk
        self._previous = window
        if not self._looks_like_php and _PHP_OPEN_TAG.search(window):
            self._looks_like_php = True
        lowered = None
        present = {}
        for rule in self._rules:
            if rule.name in self._matched or (rule.scope == "php" and not self._looks_like_php):
                continue
            if rule.magic and not self._head.startswith(rule.magic):
                continue
            if lowered is None:
                lowered = window.lower()
            if rule.gate and not _any_present(rule.gate, lowered, present):
                continue
            match = rule.content_match(lowered)
            if match:
                self._matched.add(rule.name)
                line, line_number = _line_around(window, match.start(), match.end())
                self.findings.append(Finding(rule.name, rule.description, line,
                                             self._newlines_before_previous + line_number))


def _any_present(literals, text, present):
    """Whether one of ``literals`` occurs in ``text``; ``present`` remembers answers across rules."""
    for literal in literals:
        found = present.get(literal)
        if found is None:
            found = present[literal] = literal in text
        if found:
            return True
    return False


def _line_around(window, start, end):
    """The matched line, trimmed to LINE_LIMIT characters, and its 1-based number in ``window``."""
    line_start = window.rfind(b"\n", 0, start) + 1
    line_end = window.find(b"\n", end)
    if line_end < 0:
        line_end = len(window)
    if line_end - line_start > LINE_LIMIT:
        line_start = max(line_start, start - LINE_LIMIT // 4)
        line_end = min(line_end, line_start + LINE_LIMIT)
    line = window[line_start:line_end].decode("utf-8", "replace").strip()
    return line, window.count(b"\n", 0, start) + 1
