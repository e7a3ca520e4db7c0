"""password_policy: pam_pwquality proven through the real PAM stack.

A test user changes its own password with passwd on a pseudo-terminal (PAM
service passwd, which includes Debian's common-password), as a user does: each
weak password is refused with pam_pwquality's reason and the stored hash stays
as it was; passwords from the collection's strong_password lookup are accepted
and then log in (pamtester, service sshd). converge.yml sets enforce_for_root,
so root (pamtester as root) is refused a weak password too.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

import pytest
import yaml
from labtools import PROJECT_DIR, ansible_playbook_stats, audit_enforcement, changed_tasks

SCENARIO = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
CONVERGE = str(SCENARIO / "converge.yml")
STRONG_PASSWORD = str(SCENARIO / "strong-password.yml")
SETTINGS = "/etc/security/pwquality.conf.d/hostguard.conf"
ACCOUNT = "pwtest"
DOMAIN = "kato-shoten.co.jp"  # converge.yml's password_policy_domains
OLD_PASSWORD = "Lab-only-0ld#Pw"

# One weak password per rule, each breaking that rule only, and the reason pam_pwquality gives.
WEAK = [
    ("Qz7#xW", "shorter than 8 characters"),
    ("Qz#xWvKm", "less than 1 digits"),
    ("Qz7xWvK4", "less than 1 non-alphanumeric characters"),
    ("7#4%9!2&", "less than 3 character classes"),
    (f"Qz7#{ACCOUNT}X", "contains the user name"),
    ("Qz7#Kato-shotenX", "forbidden words"),
    ("Qz7#HostguardX", "forbidden words"),
    ("Password1!", "dictionary check"),
    ("Qz#7abcdX", "monotonic sequence"),
    ("Qz#7x12345", "monotonic sequence"),
    ("Qz#7x0000", "same characters consecutively"),
]


def shadow_hash(host):
    return host.check_output(f"getent shadow {ACCOUNT}").split(":")[1]


# Run by the host's python as root: the user's own `passwd` (setuid root, as a user runs it) on a
# pseudo-terminal, answering each prompt in turn. Prints what passwd said; exits with its status.
PASSWD_ON_A_PTY = """
import os, pty, select, sys
account, answers = sys.argv[1], sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp("runuser", ["runuser", "-u", account, "--", "passwd"])
said, pending = b"", b""
def read(seconds):
    global said, pending
    ready, _, _ = select.select([fd], [], [], seconds)
    if not ready:
        return False
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        return False
    said, pending = said + chunk, pending + chunk
    return bool(chunk)
for answer in answers:
    while not pending.rstrip().endswith(b":") and read(20):
        pass
    if not pending.rstrip().endswith(b":"):
        break
    pending = b""
    os.write(fd, answer.encode() + b"\\n")
# Until passwd ends, or asks again after a refusal: then closing the terminal ends it.
while not pending.rstrip().endswith(b":") and read(20):
    pass
os.close(fd)
status = os.waitpid(pid, 0)[1]
sys.stdout.write(said.decode(errors="replace"))
sys.exit(os.waitstatus_to_exitcode(status))
"""


def change_password(host, new_password, as_root=False):
    """Change ACCOUNT's password through PAM: as the user with passwd (old, new, new), or as root with pamtester."""
    if as_root:
        stdin = f"{new_password}\n{new_password}\n"
        return host.run(f"printf %s {shlex.quote(stdin)} | pamtester passwd {ACCOUNT} chauthtok")
    answers = " ".join(shlex.quote(answer) for answer in (OLD_PASSWORD, new_password, new_password))
    return host.run(f"python3 -c {shlex.quote(PASSWD_ON_A_PTY)} {ACCOUNT} {answers}")


@pytest.fixture(scope="module")
def account(host):
    """The test user with OLD_PASSWORD (a fixed salt keeps its hash comparable)."""
    hashed = host.check_output(f"openssl passwd -6 -salt hostguardlab {shlex.quote(OLD_PASSWORD)}")
    if host.run(f"id {ACCOUNT}").rc != 0:
        host.check_output(f"useradd --create-home --shell /bin/bash {ACCOUNT}")
    yield hashed
    host.run(f"userdel --remove {ACCOUNT}")


@pytest.fixture
def fresh_account(host, account):
    host.check_output(f"usermod -p {shlex.quote(account)} {ACCOUNT}")
    return account


def strong_passwords():
    run = ansible_playbook_stats(STRONG_PASSWORD, "-e", json.dumps({"pw_account": ACCOUNT, "pw_domain": DOMAIN}))
    assert run["rc"] == 0, run["stats"]
    results = run["plays"][0]["tasks"][0]["hosts"]["localhost"]["results"]
    return [result["msg"] for result in results]


def test_the_rules_are_in_pwquality_settings(host):
    settings = host.file(SETTINGS).content_string
    for line in ("minlen = 8", "dcredit = -1", "ocredit = -1", "minclass = 3", "maxsequence = 2",
                 "maxrepeat = 2", "usercheck = 1", "dictcheck = 1", "enforce_for_root"):
        assert f"\n{line}\n" in settings, line
    badwords = next(line for line in settings.splitlines() if line.startswith("badwords = ")).split()[2:]
    # converge.yml's domain and its first label, its forbidden word, and the host's own domain.
    assert {"kato-shoten.co.jp", "kato-shoten", "hostguard"} <= set(badwords)
    domain = host.check_output("hostname --domain").strip()
    if domain:
        assert domain in badwords


def test_common_password_runs_pwquality_before_pam_unix(host):
    stack = [line.split() for line in host.file("/etc/pam.d/common-password").content_string.splitlines()
             if line.startswith("password")]
    modules = [fields[2] if not fields[1].startswith("[") else next(f for f in fields if f.endswith(".so"))
               for fields in stack]
    assert modules.index("pam_pwquality.so") < modules.index("pam_unix.so")


@pytest.mark.parametrize(("password", "reason"), WEAK)
def test_a_weak_password_is_refused_through_pam(host, fresh_account, password, reason):
    change = change_password(host, password)
    assert change.rc != 0, f"{password!r} was accepted"
    assert reason in change.stdout + change.stderr
    assert shadow_hash(host) == fresh_account


def test_root_is_refused_a_weak_password_too(host, fresh_account):
    change = change_password(host, "Qz#7x0000", as_root=True)
    assert change.rc != 0
    assert "same characters consecutively" in change.stdout + change.stderr
    assert shadow_hash(host) == fresh_account


def test_strong_passwords_are_accepted_and_log_in(host, account):
    for password in strong_passwords():
        host.check_output(f"usermod -p {shlex.quote(account)} {ACCOUNT}")
        change = change_password(host, password)
        assert change.rc == 0, (password, change.stdout, change.stderr)
        assert shadow_hash(host) != account
        login = host.run(f"printf '%s\\n' {shlex.quote(password)} | pamtester sshd {ACCOUNT} authenticate")
        assert login.rc == 0, login.stderr


def test_a_bad_variable_fails_before_any_change(host):
    settings_before = host.file(SETTINGS).content_string
    for bad, named in (({"password_policy_minlen": 5}, "password_policy_minlen (5)"),
                       ({"password_policy_domains": ["kato shoten.jp"]}, "'kato shoten.jp' is not a domain name")):
        run = ansible_playbook_stats(CONVERGE, "-e", json.dumps(bad))
        assert run["rc"] != 0, bad
        assert all(stats["changed"] == 0 for stats in run["stats"].values()), run["stats"]
        assert named in json.dumps(run["plays"]), bad
    assert host.file(SETTINGS).content_string == settings_before


def test_the_settings_check_refuses_what_libpwquality_cannot_read(host):
    """The role's validate command (libpwquality's own parser) on the live file and on two broken copies."""
    validate = yaml.safe_load((PROJECT_DIR / "roles" / "password_policy" / "vars" / "main.yml").read_text())[
        "password_policy_validate"]
    assert host.run(validate % SETTINGS).rc == 0
    for broken in ("minlen = 8\nno_such_setting = 1\n", "minlen = eight\n"):
        host.check_output(f"printf %s {shlex.quote(broken)} > /tmp/pwquality-broken.conf")
        check = host.run(validate % "/tmp/pwquality-broken.conf")
        assert check.rc != 0, broken
        assert "libpwquality refused the settings" in check.stdout


# --------------------------------------------------------------------------- the rules in force, every run

PWQUALITY_CONF = "/etc/security/pwquality.conf"
COMMON_PASSWORD = "/etc/pam.d/common-password"
SHORT = "Qz7#xW"  # 6 characters, breaking only minlen = 8


def role_tasks(run):
    """{task name without the role prefix: the pw1 result} of a converge run."""
    return {task["task"]["name"].split(" : ", 1)[-1]: task["hosts"]["pw1"] for play in run["plays"]
            for task in play["tasks"] if "pw1" in task["hosts"]}


def test_a_lower_minlen_in_pwquality_conf_is_commented_out_by_the_next_run(host, fresh_account):
    original = host.file(PWQUALITY_CONF).content_string
    host.check_output(f"printf 'minlen = 6\\n' >> {PWQUALITY_CONF}")
    try:
        # libpwquality reads pwquality.conf after pwquality.conf.d: the protection is really undone.
        weakened = change_password(host, SHORT)
        assert weakened.rc == 0, weakened.stdout
        host.check_output(f"usermod -p {shlex.quote(fresh_account)} {ACCOUNT}")
        run = ansible_playbook_stats(CONVERGE)
        assert run["rc"] == 0, run["stats"]
        assert changed_tasks(run["plays"]) == [
            "pw1: hostguard.hosting.password_policy : Comment out the lines of pwquality.conf that override the "
            "role's rules"], run["stats"]
        assert role_tasks(run)["Read the rules pam_pwquality enforces and its place in common-password"][
            "differences"] == [{"setting": "minlen", "expected": 8, "live": 6, "source": PWQUALITY_CONF}]
        assert "\n# minlen = 6  # overrode minlen = 8 of hostguard.hosting.password_policy\n" in \
            host.file(PWQUALITY_CONF).content_string
        # In force again: the short password is refused through PAM.
        refused = change_password(host, SHORT)
        assert refused.rc != 0 and "shorter than 8 characters" in refused.stdout
        assert shadow_hash(host) == fresh_account
        again = ansible_playbook_stats(CONVERGE)
        assert again["rc"] == 0 and changed_tasks(again["plays"]) == [], again["stats"]
    finally:
        host.check_output(f"printf %s {shlex.quote(original)} > {PWQUALITY_CONF}")


@pytest.mark.parametrize(("undo", "named"), [
    ("printf 'minclass = 1\\n' > /etc/security/pwquality.conf.d/zz-local.conf",
     "minclass is 1 live, not 3 (set by /etc/security/pwquality.conf.d/zz-local.conf)"),
    (f"sed -i 's/pam_pwquality.so retry=3/pam_pwquality.so retry=3 minlen=6/' {COMMON_PASSWORD}",
     f"minlen is 6 live, not 8 (set by {COMMON_PASSWORD} line "),
    (f"sed -i 's/^password.*pam_pwquality.so.*$/# removed by hand/' {COMMON_PASSWORD}",
     f"{COMMON_PASSWORD} has no pam_pwquality line"),
])
def test_an_override_the_role_does_not_own_fails_the_run_naming_it(host, undo, named):
    stack = host.file(COMMON_PASSWORD).content_string
    host.check_output(undo)
    try:
        # The audit reports it: configured but not in force, named as the role names it.
        entry = audit_enforcement("pw1")["password_policy"]
        assert entry["in_force"] is False and any(named in problem for problem in entry["problems"]), entry
        run = ansible_playbook_stats(CONVERGE)
        assert run["rc"] != 0, run["stats"]
        failed = role_tasks(run)["Fail unless every rule is in force, naming each one that is not"]
        assert failed.get("failed") is True and named in failed["msg"], failed
    finally:
        host.run("rm -f /etc/security/pwquality.conf.d/zz-local.conf")
        host.check_output(f"printf %s {shlex.quote(stack)} > {COMMON_PASSWORD}")
    assert ansible_playbook_stats(CONVERGE)["rc"] == 0
