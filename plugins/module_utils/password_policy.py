# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The providers' password rules, as a check and a generator that obeys them.

The rules (the Plesk provider's advice in the project's seeds): at least 8
characters mixing letters, digits and symbols; not containing the account or
domain name; no dictionary words or names; no runs like abc or 12345; no
repeats like 0000 or katokato.
"""

from __future__ import annotations

import functools
import os
import re
import secrets
import string

MIN_LENGTH = 8
SEQUENCE_LENGTH = 3   # abc, 123, cba: three in a row is already a guessable run
WORD_MIN_LENGTH = 4   # shorter dictionary words hit by chance in any random string
SYMBOLS = "!#$%&()*+,-./:;<=>?@[]^_{|}~"
KEYBOARD_ROWS = ["qwertyuiop", "asdfghjkl", "zxcvbnm", "1234567890"]
# Words and names found in leaked-password lists; a system word list, where present, adds the rest.
COMMON_WORDS = {
    "password", "passwd", "admin", "administrator", "welcome", "login", "letmein", "master", "secret",
    "dragon", "monkey", "shadow", "sunshine", "princess", "football", "baseball", "soccer", "superman",
    "batman", "trustno", "iloveyou", "love", "hello", "freedom", "whatever", "qwerty", "server", "mail",
    "test", "guest", "user", "root", "webmaster", "info", "support", "sales", "office", "company",
    "michael", "jennifer", "thomas", "jessica", "daniel", "charlie", "taro", "hanako", "sakura", "tokyo",
    "osaka", "nihon", "japan", "suzuki", "tanaka", "sato", "kato", "yamada", "pokemon", "naruto",
}
SYSTEM_WORD_LISTS = ("/usr/share/dict/words",)


@functools.lru_cache(maxsize=1)
def words():
    """The words a password must not contain, read once."""
    found = set(COMMON_WORDS)
    for path in SYSTEM_WORD_LISTS:
        if os.path.exists(path):
            with open(path, encoding="utf-8", errors="ignore") as handle:
                found.update(w.strip().lower() for w in handle if len(w.strip()) >= WORD_MIN_LENGTH
                             and w.strip().isalpha())
    return frozenset(found)


def _has_sequence(text):
    lowered = text.lower()
    runs = [string.ascii_lowercase, string.digits] + KEYBOARD_ROWS
    for run in runs:
        for start in range(len(run) - SEQUENCE_LENGTH + 1):
            piece = run[start:start + SEQUENCE_LENGTH]
            if piece in lowered or piece[::-1] in lowered:
                return piece
    return _code_point_run(text)


def _code_point_run(text):
    """Characters whose codes rise or fall by one, as pam_pwquality's maxsequence counts them: ()* and XYZ too."""
    for start in range(len(text) - SEQUENCE_LENGTH + 1):
        piece = text[start:start + SEQUENCE_LENGTH]
        steps = {ord(later) - ord(earlier) for earlier, later in zip(piece, piece[1:])}
        if steps in ({1}, {-1}):
            return piece
    return None


def _repeat(text):
    """A character three times in a row (000), or a chunk said twice (katokato)."""
    match = re.search(r"(.)\1\1", text)
    if match:
        return match.group(0)
    match = re.search(r"(.{2,})\1", text.lower())
    return match.group(0) if match else None


def _dictionary_word(text):
    """The longest dictionary word inside the text (every substring looked up in the word set)."""
    lowered = text.lower()
    known = words()
    found = [lowered[start:end] for start in range(len(lowered))
             for end in range(start + WORD_MIN_LENGTH, len(lowered) + 1) if lowered[start:end] in known]
    return max(found, key=len) if found else None


def problems(password, account=None, domain=None):
    """The rules a password breaks, as sentences; [] when it follows them all."""
    found = []
    if len(password) < MIN_LENGTH:
        found.append(f"shorter than {MIN_LENGTH} characters")
    classes = {
        "letters": any(c.isalpha() for c in password),
        "digits": any(c.isdigit() for c in password),
        "symbols": any(not c.isalnum() for c in password),
    }
    missing = [name for name, present in classes.items() if not present]
    if missing:
        found.append(f"no {' and no '.join(missing)}")
    lowered = password.lower()
    for label, value in (("account name", account), ("domain name", domain)):
        if value:
            parts = [value.lower()] + ([value.lower().split(".")[0]] if label == "domain name" else [])
            if any(part and len(part) >= 3 and part in lowered for part in parts):
                found.append(f"contains the {label}")
    word = _dictionary_word(password)
    if word:
        found.append(f"contains the dictionary word or name '{word}'")
    sequence = _has_sequence(password)
    if sequence:
        found.append(f"contains the sequence '{sequence}'")
    repeat = _repeat(password)
    if repeat:
        found.append(f"contains the repeat '{repeat}'")
    return found


def generate(length=16, account=None, domain=None):
    """A random password that follows every rule (drawn again until it does)."""
    if length < MIN_LENGTH:
        raise ValueError(f"length {length} is below the minimum of {MIN_LENGTH}")
    alphabet = string.ascii_letters + string.digits + SYMBOLS
    while True:
        candidate = "".join(secrets.choice(alphabet) for _index in range(length))
        if not problems(candidate, account=account, domain=domain):
            return candidate
