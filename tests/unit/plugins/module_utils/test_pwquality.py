"""pwquality: the settings pam_pwquality enforces, read through the real libpwquality.

Each read runs in a private mount namespace whose /etc/security is a fresh tmpfs holding only the test's files,
so the library reads them from its own default paths, in its own order, exactly as pam_pwquality does.
"""

from __future__ import annotations

import ctypes.util
import json
import os
import shutil
import subprocess
import sys

import pytest

from ansible_collections.hostguard.hosting.plugins.module_utils.pwquality import (
    pam_stack,
    pwquality_options,
    settings_in,
)

CONF = "/etc/security/pwquality.conf"
DROP_IN = "/etc/security/pwquality.conf.d/hostguard.conf"
ROLE_FILE = "minlen = 8\nlcredit = 0\nucredit = 0\ndcredit = -1\nocredit = -1\nminclass = 3\nmaxsequence = 2\n" \
            "maxrepeat = 2\nusercheck = 1\ndictcheck = 1\nenforcing = 1\nbadwords = example hostguard\n"
EXPECTED = {"minlen": 8, "lcredit": 0, "ucredit": 0, "dcredit": -1, "ocredit": -1, "minclass": 3, "maxsequence": 2,
            "maxrepeat": 2, "usercheck": 1, "dictcheck": 1, "enforcing": 1, "enforce_for_root": 0,
            "badwords": "example  hostguard"}
# Debian's pwquality.conf: every setting commented out.
DEBIAN_CONF = "# Configuration for systemwide password quality limits\n# minlen = 8\n# dcredit = 0\n"
DEBIAN_STACK = (
    "password\trequisite\t\t\tpam_pwquality.so retry=3\n"
    "password\t[success=1 default=ignore]\tpam_unix.so obscure use_authtok try_first_pass yescrypt\n"
    "password\trequisite\t\t\tpam_deny.so\n"
)

READ = """
import json, os, sys
from ansible_collections.hostguard.hosting.plugins.module_utils.pwquality import Library, describe, read
files, pam_text, expected = json.loads(sys.argv[1])
os.makedirs("/etc/security/pwquality.conf.d")
for path, text in files.items():
    with open(path, "w") as stream:
        stream.write(text)
result = read(Library(), pam_text, expected=expected)
result["problems"] = describe(result)
print(json.dumps(result))
"""

pytestmark = [
    pytest.mark.skipif(ctypes.util.find_library("pwquality") is None,
                       reason="needs libpwquality (Debian: libpwquality1, which scripts/setup.sh installs)"),
    pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                       reason="a private /etc/security needs root and unshare"),
]


def live(files, pam_text=DEBIAN_STACK, expected=None):
    """read() on a host whose /etc/security holds only ``files`` ({path: text})."""
    mount = 'mount -t tmpfs hostguard-unit /etc/security && exec "$0" "$@"'
    result = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", mount, sys.executable, "-c", READ,
         json.dumps([files, pam_text, EXPECTED if expected is None else expected])],
        capture_output=True, text=True, timeout=60, env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)),
        check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_role_file_alone_is_what_libpwquality_reads():
    result = live({CONF: DEBIAN_CONF, DROP_IN: ROLE_FILE})
    assert result["differences"] == [] and result["problems"] == []
    assert result["settings"]["minlen"] == 8 and result["settings"]["badwords"] == "example hostguard"
    assert result["files"] == [DROP_IN, CONF]
    assert result["sources"]["minlen"] == DROP_IN
    assert result["pam"]["requisite"] and result["pam"]["before_pam_unix"]
    assert result["pam"]["pwquality"]["arguments"] == ["retry=3"]


def test_pwquality_conf_is_read_last_and_its_lower_minlen_is_named():
    result = live({CONF: DEBIAN_CONF + "minlen = 6\n", DROP_IN: ROLE_FILE})
    assert result["settings"]["minlen"] == 6
    assert result["differences"] == [{"setting": "minlen", "expected": 8, "live": 6, "source": CONF}]
    assert result["problems"] == ["minlen is 6 live, not 8 (set by %s)" % CONF]


def test_a_drop_in_read_after_the_role_file_overrides_it_and_one_before_does_not():
    result = live({DROP_IN: ROLE_FILE, "/etc/security/pwquality.conf.d/aa-local.conf": "maxrepeat = 0\n",
                   "/etc/security/pwquality.conf.d/zz-local.conf": "minclass=1\n",
                   "/etc/security/pwquality.conf.d/zz-notes.txt": "minlen = 6\n"})
    assert result["differences"] == [{"setting": "minclass", "expected": 3, "live": 1,
                                      "source": "/etc/security/pwquality.conf.d/zz-local.conf"}]
    assert result["settings"]["maxrepeat"] == 2 and result["settings"]["minlen"] == 8


def test_enforcing_0_anywhere_turns_the_rules_into_warnings_and_is_named():
    result = live({CONF: "enforcing = 0\n", DROP_IN: ROLE_FILE})
    assert result["differences"] == [{"setting": "enforcing", "expected": 1, "live": 0, "source": CONF}]


def test_a_setting_argument_on_the_pam_line_overrides_every_file():
    stack = DEBIAN_STACK.replace("retry=3", "retry=3 minlen=6 enforce_for_root")
    result = live({DROP_IN: ROLE_FILE}, pam_text=stack)
    assert result["differences"] == [
        {"setting": "enforce_for_root", "expected": 0, "live": 1,
         "source": "/etc/pam.d/common-password line 1 (pam_pwquality.so argument enforce_for_root)"},
        {"setting": "minlen", "expected": 8, "live": 6,
         "source": "/etc/pam.d/common-password line 1 (pam_pwquality.so argument minlen=6)"}]


def test_an_unknown_setting_stops_the_reading_and_is_named():
    result = live({CONF: "minlen = 12\n", DROP_IN: ROLE_FILE, "/etc/security/pwquality.conf.d/bad.conf": "minlen = 9\n"
                   "no_such_setting = 1\n"})
    # libpwquality stops at the error: hostguard.conf and pwquality.conf (read after bad.conf) are never read.
    assert result["settings"]["minlen"] == 9
    assert "no_such_setting" in result["config_error"]
    assert any(problem.startswith("libpwquality stops reading its settings at an error") for problem in
               result["problems"])


@pytest.mark.parametrize("stack, problem", [
    ("password\t[success=1 default=ignore]\tpam_unix.so obscure\n", "has no pam_pwquality line"),
    (DEBIAN_STACK.replace("requisite\t\t\tpam_pwquality", "optional pam_pwquality"),
     "runs pam_pwquality as optional, not as requisite before pam_unix"),
    ("password\t[success=1 default=ignore]\tpam_unix.so obscure\npassword requisite pam_pwquality.so\n",
     "runs pam_pwquality as requisite after pam_unix"),
])
def test_a_stack_where_pam_pwquality_does_not_guard_pam_unix_is_named(stack, problem):
    result = live({DROP_IN: ROLE_FILE}, pam_text=stack)
    assert any(problem in line for line in result["problems"]), result["problems"]


def test_the_configuration_syntax_libpwquality_takes():
    assert settings_in("minlen=9\nMinLen =11 # a comment\n# dcredit = 0\n  enforce_for_root\nbadwords = a b\n") == {
        "minlen": "11", "enforce_for_root": "", "badwords": "a b"}


def test_only_the_setting_arguments_reach_libpwquality():
    assert pwquality_options(["retry=3", "use_authtok", "debug", "type=UNIX", "minlen=6", "enforce_for_root"]) == [
        "retry=3", "minlen=6", "enforce_for_root"]
    stack = pam_stack("@include common-other\n-password optional pam_gnome_keyring.so\n" + DEBIAN_STACK)
    modules = [entry["module"] for entry in stack]
    assert modules == ["pam_gnome_keyring.so", "pam_pwquality.so", "pam_unix.so", "pam_deny.so"]
