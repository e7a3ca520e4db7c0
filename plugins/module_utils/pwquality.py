# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""libpwquality's effective settings, read the way pam_pwquality reads them.

pam_pwquality builds its settings in two steps: libpwquality reads its
configuration (``pwquality_read_config`` with no file named: every
``pwquality.conf.d/*.conf`` in name order, then ``pwquality.conf``, each
later file overriding the earlier ones), then every argument of the
``pam_pwquality.so`` line that is a setting overrides that
(``pwquality_set_option``). The values here come from the library itself,
through ``ctypes`` (libpwquality1 is on every host that has pam_pwquality);
this module only names the file or argument that set each one, so that a
difference can say where it comes from.
"""

from __future__ import annotations

import ctypes
import os
import re

DEFAULT_CONFIG = "/etc/security/pwquality.conf"
COMMON_PASSWORD = "/etc/pam.d/common-password"

# pwquality.h: the setting ids, and whether a setting holds a number or a text.
SETTINGS = {
    "difok": (1, int), "minlen": (3, int), "dcredit": (4, int), "ucredit": (5, int), "lcredit": (6, int),
    "ocredit": (7, int), "minclass": (8, int), "maxrepeat": (9, int), "dictpath": (10, str),
    "maxclassrepeat": (11, int), "gecoscheck": (12, int), "badwords": (13, str), "maxsequence": (14, int),
    "dictcheck": (15, int), "usercheck": (16, int), "enforcing": (17, int), "retry": (18, int),
    "enforce_for_root": (19, int), "local_users_only": (20, int), "usersubstr": (21, int),
}
# Arguments pam_pwquality takes for itself and never hands to libpwquality (pam_pwquality.c, _pam_parse).
PAM_ONLY_ARGUMENTS = ("debug", "type=", "authtok_type", "use_authtok", "use_first_pass", "try_first_pass",
                      "difignore=", "reject_username")
PAM_TOKENS = re.compile(r"\[[^\]]*\]|\S+")


class PwqualityError(Exception):
    """libpwquality cannot be loaded or asked."""


class Library:
    """libpwquality1, loaded with ctypes: the parser and the values pam_pwquality itself uses."""

    def __init__(self, name="libpwquality.so.1"):
        try:
            lib = ctypes.CDLL(name)
        except OSError as exc:
            raise PwqualityError("libpwquality (%s) cannot be loaded: %s; Debian's package is libpwquality1"
                                 % (name, exc)) from exc
        lib.pwquality_default_settings.restype = ctypes.c_void_p
        lib.pwquality_free_settings.argtypes = [ctypes.c_void_p]
        lib.pwquality_read_config.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
        lib.pwquality_set_option.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.pwquality_get_int_value.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        lib.pwquality_get_str_value.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(ctypes.c_char_p)]
        lib.pwquality_strerror.restype = ctypes.c_char_p
        lib.pwquality_strerror.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_void_p]
        self.lib = lib

    def settings(self, options=()):
        """The settings after reading the library's own files, in its own order, and then applying ``options``
        as pam_pwquality does. Returns ({name: value}, the reading error or None)."""
        handle = self.lib.pwquality_default_settings()
        if not handle:
            raise PwqualityError("libpwquality could not allocate its settings")
        try:
            aux = ctypes.c_void_p()
            rc = self.lib.pwquality_read_config(handle, None, ctypes.byref(aux))
            error = None
            if rc:
                # pam_pwquality logs this and goes on with what was read before the error.
                buffer = ctypes.create_string_buffer(512)
                error = self.lib.pwquality_strerror(buffer, len(buffer), rc, aux).decode(errors="replace")
            for option in options:
                self.lib.pwquality_set_option(handle, option.encode())
            values = {}
            for name, (setting, kind) in SETTINGS.items():
                if kind is int:
                    number = ctypes.c_int()
                    if self.lib.pwquality_get_int_value(handle, setting, ctypes.byref(number)) == 0:
                        values[name] = number.value
                else:
                    text = ctypes.c_char_p()
                    if self.lib.pwquality_get_str_value(handle, setting, ctypes.byref(text)) == 0:
                        values[name] = _decoded(text.value)
            return values, error
        finally:
            self.lib.pwquality_free_settings(handle)


def _decoded(raw):
    return raw.decode(errors="replace") if raw else None


def config_files(config=DEFAULT_CONFIG, listdir=os.listdir, exists=os.path.exists):
    """The files libpwquality reads, in its order: pwquality.conf.d/*.conf by name, then pwquality.conf."""
    directory = config + ".d"
    try:
        names = sorted(name for name in listdir(directory) if name.endswith(".conf") and not name.startswith("."))
    except OSError:
        names = []
    files = [os.path.join(directory, name) for name in names]
    return files + ([config] if exists(config) else [])


def settings_in(text):
    """{name: raw value} of the settings a pwquality configuration file sets (a later line wins)."""
    found = {}
    for line in (text or "").splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, _sep, value = line.partition(" ") if " " in line.split("=", 1)[0] else line.partition("=")
        found[name.strip().lower()] = value.strip().lstrip("=").strip()
    return found


def pam_stack(text):
    """The password stack of a PAM file: [{control, module, arguments, line}] (@include lines are left out)."""
    stack = []
    for number, raw in enumerate((text or "").splitlines(), start=1):
        tokens = PAM_TOKENS.findall(raw.split("#", 1)[0])
        if len(tokens) < 3 or tokens[0].lstrip("-") != "password":
            continue
        stack.append({"control": tokens[1], "module": os.path.basename(tokens[2]), "arguments": tokens[3:],
                      "line": number})
    return stack


def pwquality_options(arguments):
    """The arguments of a pam_pwquality line that pam_pwquality hands to libpwquality."""
    return [argument for argument in arguments if not argument.startswith(PAM_ONLY_ARGUMENTS)]


def normalize(name, value):
    """A setting's value as libpwquality holds it (booleans as 0 or 1, the words of a text one space apart)."""
    kind = SETTINGS[name][1]
    if kind is int:
        return int(value) if value is not None else None
    words = " ".join(str(value).split()) if value is not None else ""
    return words or None


def read(library, pam_text, config=DEFAULT_CONFIG, pam_path=COMMON_PASSWORD, read_text=None, listdir=os.listdir,
         exists=os.path.exists, expected=None):
    """What pam_pwquality enforces now: the effective settings, the PAM line, and each difference from
    ``expected`` ({name: value}) with the file or PAM argument that set the live value."""
    read_text = read_text or _read_text
    stack = pam_stack(pam_text)
    modules = [entry["module"] for entry in stack]
    line = stack[modules.index("pam_pwquality.so")] if "pam_pwquality.so" in modules else None
    options = pwquality_options(line["arguments"]) if line else []
    # Asked for no file, the library reads its own files in its own order, as pam_pwquality asks it to.
    values, error = library.settings(options)
    files = config_files(config, listdir=listdir, exists=exists)
    sources = {}
    for path in files:
        for name in settings_in(read_text(path)):
            sources[name] = path
    for option in options:
        name = option.split("=", 1)[0].lower()
        if name in SETTINGS:
            sources[name] = "%s line %d (pam_pwquality.so argument %s)" % (pam_path, line["line"], option)
    unix = modules.index("pam_unix.so") if "pam_unix.so" in modules else None
    pam = {
        "path": pam_path,
        "pwquality": line,
        "pam_unix": unix is not None,
        "before_pam_unix": bool(line) and unix is not None and stack.index(line) < unix,
        "requisite": bool(line) and line["control"] == "requisite",
    }
    differences = []
    for name, wanted in sorted((expected or {}).items()):
        if name not in SETTINGS:
            raise PwqualityError("%s is not a libpwquality setting" % name)
        wanted, live = normalize(name, wanted), normalize(name, values.get(name))
        if wanted != live:
            differences.append({"setting": name, "expected": wanted, "live": live,
                                "source": sources.get(name, "libpwquality's built-in default")})
    return {"settings": values, "config_error": error, "files": files, "sources": sources, "pam": pam,
            "differences": differences}


def describe(result):
    """One sentence per way the policy is not in force (empty when it is)."""
    problems = ["%s is %s live, not %s (set by %s)" % (d["setting"], _shown(d["live"]), _shown(d["expected"]), d["source"])
                for d in result["differences"]]
    if result["config_error"]:
        problems.append("libpwquality stops reading its settings at an error: %s" % result["config_error"])
    pam = result["pam"]
    if not pam["pwquality"]:
        problems.append("%s has no pam_pwquality line" % pam["path"])
    elif not pam["requisite"] or not pam["before_pam_unix"]:
        problems.append("%s runs pam_pwquality as %s%s, not as requisite before pam_unix" % (
            pam["path"], pam["pwquality"]["control"], "" if pam["before_pam_unix"] else " after pam_unix"))
    return problems


def _shown(value):
    return "unset" if value is None else repr(value) if isinstance(value, str) else str(value)


def _read_text(path):
    try:
        with open(path, encoding="utf-8", errors="replace") as stream:
            return stream.read()
    except OSError:
        return None
