"""Mail daemons' effective settings, read from real output captured on the lab's hosts.

Fixtures (tests/unit/plugins/module_utils/fixtures/mail_settings/): Postfix 3.7 (Debian 12) and 3.10
(Debian 13), Exim 4.96 (Debian 12) and 4.98 (Debian 13), and Dovecot 2.3 (Debian 12) and 2.4 (Debian 13), each after
mail_submission and mail_relay converged on the host. A fake runner answers each command from them.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ansible_collections.hostguard.hosting.plugins.module_utils import mail_settings
from ansible_collections.hostguard.hosting.plugins.module_utils.mail_settings import SettingsError

FIXTURES = Path(__file__).parent / "fixtures" / "mail_settings"
POSTFIX = ["postfix-3.7-bookworm", "postfix-3.10-trixie"]
DOVECOT = ["dovecot-2.3-bookworm", "dovecot-2.4-trixie"]
EXIM = ["exim-4.96-bookworm", "exim-4.98-trixie"]


class PostfixHost:
    """postconf and postfix status as the captured host answers them; master.cf overrides can be added."""

    def __init__(self, name, running=True, extra_overrides=()):
        self.dir = FIXTURES / name
        self.running = running
        self.extra = list(extra_overrides)
        self.ran = []

    def run(self, argv):
        self.ran.append(argv)
        if argv[:2] == ["postfix", "-c"] and argv[-1] == "status":
            return (0, "", "") if self.running else (1, "", "postfix/postfix-script: the Postfix mail system is not running")
        assert argv[:3] == ["postconf", "-c", "/etc/postfix"], argv
        args = argv[3:]
        if args == ["-n"]:
            return 0, (self.dir / "postconf-n").read_text(), ""
        if args == ["-M"]:
            text = (self.dir / "postconf-M").read_text()
            for key, option in self.extra:
                text = "\n".join(line + f" -o {option}" if line.startswith(key.replace("/", " ").split()[0] + " ")
                                 and key.split("/")[1] in line.split()[1:2] else line for line in text.splitlines())
            return 0, text, ""
        if args == ["-P"]:
            text = (self.dir / "postconf-P").read_text()
            return 0, text + "".join(f"{key}/{option.replace('=', ' = ', 1)}\n" for key, option in self.extra), ""
        everything = (self.dir / "postconf").read_text()
        if not args:
            return 0, everything, ""
        lines = {line.split(" =")[0]: line for line in everything.splitlines()}
        return 0, "".join(lines[name] + "\n" for name in args if name in lines), ""


@pytest.mark.parametrize("fixture", POSTFIX)
def test_postfix_reads_main_cf_defaults_services_and_their_overrides(fixture):
    daemon = mail_settings.Postfix(PostfixHost(fixture).run)
    settings = daemon.settings(["smtpd_sasl_type", "smtpd_helo_required", "submission/inet",
                                "submission/inet/smtpd_sasl_auth_enable", "submission/inet/smtpd_sasl_type",
                                "smtps/inet", "smtps/inet/smtpd_sasl_auth_enable", "smtp/inet/smtpd_relay_restrictions"])
    assert settings["smtpd_sasl_type"] == {"value": "dovecot", "source": "main.cf"}
    assert settings["smtpd_helo_required"] == {"value": "no", "source": "default"}
    assert settings["submission/inet"] == {"value": "n - y - - smtpd", "source": "master.cf"}
    assert settings["submission/inet/smtpd_sasl_auth_enable"] == {
        "value": "yes", "source": "master.cf: submission/inet -o smtpd_sasl_auth_enable"}
    # Not overridden on the service: main.cf's value is what it runs with.
    assert settings["submission/inet/smtpd_sasl_type"] == {"value": "dovecot", "source": "main.cf"}
    assert settings["smtps/inet"] == {"value": None, "source": "master.cf: no smtps/inet service"}
    assert settings["smtps/inet/smtpd_sasl_auth_enable"]["value"] is None
    assert settings["smtp/inet/smtpd_relay_restrictions"]["value"] == (
        "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination")
    assert daemon.running()


@pytest.mark.parametrize("fixture", POSTFIX)
def test_a_master_cf_override_behind_the_roles_back_is_named_with_where_it_comes_from(fixture):
    host = PostfixHost(fixture, extra_overrides=[("smtp/inet", "smtpd_relay_restrictions=permit")])
    result = mail_settings.report(host.run, {"postfix": {"expect": {
        "smtp/inet/smtpd_relay_restrictions": "permit_mynetworks,permit_sasl_authenticated,reject_unauth_destination",
        "submission/inet/smtpd_tls_security_level": "encrypt",
        "smtps/inet": None}}})
    assert result["differences"] == [{
        "daemon": "postfix", "setting": "smtp/inet/smtpd_relay_restrictions",
        "expected": "permit_mynetworks,permit_sasl_authenticated,reject_unauth_destination", "live": "permit",
        "source": "master.cf: smtp/inet -o smtpd_relay_restrictions",
        "message": "postfix: smtp/inet/smtpd_relay_restrictions is 'permit' (master.cf: smtp/inet -o "
                   "smtpd_relay_restrictions), the role set "
                   "'permit_mynetworks,permit_sasl_authenticated,reject_unauth_destination'"}]
    assert result["not_running"] == []
    assert result["daemons"]["postfix"]["unit"] == "postfix"


def test_lists_compare_as_postfix_reads_them_and_booleans_as_yes_and_no():
    same = mail_settings.Postfix.same
    assert same("permit_mynetworks,permit_sasl_authenticated", "permit_mynetworks, permit_sasl_authenticated")
    assert not same("permit_sasl_authenticated,reject", "permit_sasl_authenticated")
    assert not same("yes", None)
    result = mail_settings.report(PostfixHost(POSTFIX[0]).run, {"postfix": {"expect": {"smtpd_tls_auth_only": True}}})
    assert result["differences"] == []


def test_a_stopped_postfix_is_reported_not_running():
    result = mail_settings.report(PostfixHost(POSTFIX[1], running=False).run, {"postfix": {"settings": ["myhostname"]}})
    assert result["not_running"] == ["postfix"]
    assert result["daemons"]["postfix"]["running"] is False
    assert result["daemons"]["postfix"]["settings"] == {"myhostname": {"value": "pf13.lab.example", "source": "main.cf"}}


def test_all_postfix_settings_come_back_when_none_are_named():
    settings = mail_settings.Postfix(PostfixHost(POSTFIX[0]).run).settings()
    assert settings["submission/inet/syslog_name"]["value"] == "postfix/submission"
    assert settings["smtp/inet"]["value"] == "n - y - - smtpd"
    assert settings["mail_version"]["value"] == "3.7.11"
    assert len(settings) > 900


class EximHost:
    """exim4 -bP and the pid file as a captured host answers them."""

    def __init__(self, name, running=True):
        self.dir = FIXTURES / name
        self.running = running

    def run(self, argv):
        if argv == ["cat", mail_settings.EXIM_PIDFILE]:
            return (0, "295\n", "") if self.running else (1, "", "No such file or directory")
        if argv[:3] == ["ps", "-o", "comm="]:
            return 0, "exim4\n", ""
        args = [arg for arg in argv[1:] if arg != "-C" and not arg.endswith("config.autogenerated")]
        assert argv[0] == "exim4" and args[0] == "-bP", argv
        options = (self.dir / "exim-bP").read_text()
        if args == ["-bP"]:
            return 0, options, ""
        if args[1] == "macro":
            macros = {line.split("=", 1)[0]: line for line in (self.dir / "exim-bP-macros").read_text().splitlines()}
            return (0, macros[args[2]] + "\n", "") if args[2] in macros else (1, "", f"{args[2]} is not a known option")
        lines = {line.split(" =")[0].replace("no_", "", 1): line for line in options.splitlines()}
        known = [lines[name] + "\n" for name in args[1:] if name in lines]
        return (0 if len(known) == len(args) - 1 else 1), "".join(known), ""

    def exim(self, **changes):
        return mail_settings.Exim(self.run, confdir=str(changes.get("confdir", self.dir)),
                                  generated=str(changes.get("generated", self.dir / "config.autogenerated")))


@pytest.mark.parametrize("fixture", EXIM)
def test_exim_options_named_lists_and_the_roles_files_in_the_generated_configuration(fixture):
    settings = EximHost(fixture).exim().settings([
        "tls_advertise_hosts", "daemon_smtp_ports", "acl_smtp_mail", "tls_on_connect_ports", "no_such_option", "hostlist relay_from_hosts",
        "conf.d/main/00_hostguard_mail_relay", "conf.d/acl/50_hostguard_mail_submission", "conf.d/main/99_missing"])
    # Debian 12's tlsoptions sets it to its macro's default, *; Debian 13's leaves it to Exim's default, *.
    assert settings["tls_advertise_hosts"]["value"] == "*"
    assert settings["daemon_smtp_ports"]["value"] == "25 : 587 : 465"
    # Every line that sets it, in the order Exim reads them: the role's macro, then Debian's default behind
    # its .ifndef, then the option that uses the macro.
    assert settings["acl_smtp_mail"] == {
        "value": "hostguard_submission_check_mail",
        "source": "main/00_hostguard_mail_submission: MAIN_ACL_CHECK_MAIL = hostguard_submission_check_mail; "
                  "main/02_exim4-config_options: MAIN_ACL_CHECK_MAIL = acl_check_mail; "
                  "main/02_exim4-config_options: acl_smtp_mail = MAIN_ACL_CHECK_MAIL"}
    assert settings["tls_on_connect_ports"] == {
        "value": "465", "source": "main/00_hostguard_mail_submission: tls_on_connect_ports = 465"}
    assert settings["no_such_option"]["value"] is None
    assert settings["hostlist relay_from_hosts"]["value"] == "<; 127.0.0.0/8 ; ::1 ; 198.51.100.0/24"
    assert settings["conf.d/main/00_hostguard_mail_relay"]["value"] == "included"
    assert settings["conf.d/acl/50_hostguard_mail_submission"]["value"] == "included"
    assert settings["conf.d/main/99_missing"]["value"] is None


@pytest.mark.parametrize("fixture", EXIM)
def test_an_exim_file_that_redefines_the_roles_macro_is_named(tmp_path, fixture):
    host = EximHost(fixture)
    confdir = tmp_path / "exim4"
    shutil.copytree(host.dir, confdir)
    (confdir / "conf.d" / "main" / "99_local").write_text("MAIN_ACL_CHECK_MAIL == acl_check_mail\n")
    # What the running Exim would read: its generated configuration with the local file at the end of main.
    generated = (host.dir / "config.autogenerated").read_text().replace(
        "MAIN_ACL_CHECK_MAIL = hostguard_submission_check_mail\n",
        "MAIN_ACL_CHECK_MAIL = hostguard_submission_check_mail\nMAIN_ACL_CHECK_MAIL == acl_check_mail\n")
    (tmp_path / "config.autogenerated").write_text(generated)

    def run(argv):
        code, out, err = host.run(argv)
        return code, out.replace("acl_smtp_mail = hostguard_submission_check_mail", "acl_smtp_mail = acl_check_mail"), err

    exim = mail_settings.Exim(run, confdir=str(confdir), generated=str(tmp_path / "config.autogenerated"))
    settings = exim.settings(["acl_smtp_mail", "conf.d/main/00_hostguard_mail_submission"])
    found = mail_settings.differences(exim, {"acl_smtp_mail": "hostguard_submission_check_mail",
                                             "conf.d/main/00_hostguard_mail_submission": "included"}, settings)
    assert [(item["setting"], item["live"]) for item in found] == [("acl_smtp_mail", "acl_check_mail")]
    assert found[0]["source"].endswith("; main/99_local: MAIN_ACL_CHECK_MAIL == acl_check_mail")


@pytest.mark.parametrize("fixture", EXIM)
def test_a_role_file_the_generated_configuration_lacks_is_not_included(tmp_path, fixture):
    host = EximHost(fixture)
    generated = (host.dir / "config.autogenerated").read_text().replace(
        "tls_on_connect_ports = 465\n", "")
    (tmp_path / "config.autogenerated").write_text(generated)
    exim = host.exim(generated=tmp_path / "config.autogenerated")
    settings = exim.settings(["conf.d/main/00_hostguard_mail_submission", "conf.d/main/00_hostguard_mail_relay"])
    assert settings["conf.d/main/00_hostguard_mail_submission"]["value"] == "not included"
    assert settings["conf.d/main/00_hostguard_mail_relay"]["value"] == "included"


@pytest.mark.parametrize("fixture", EXIM)
def test_a_dead_exim_daemon_is_not_running_and_a_missing_generated_configuration_fails(fixture):
    assert EximHost(fixture, running=False).exim().running() is False
    assert EximHost(fixture).exim().running() is True
    with pytest.raises(SettingsError, match="update-exim4.conf has not generated"):
        EximHost(fixture).exim(generated="/nonexistent/config.autogenerated").settings(["daemon_smtp_ports"])


@pytest.mark.parametrize("fixture", EXIM)
def test_exim_booleans_read_as_true_and_false(fixture):
    settings = EximHost(fixture).exim().settings(["accept_8bitmime", "allow_domain_literals"])
    assert (settings["accept_8bitmime"]["value"], settings["allow_domain_literals"]["value"]) == ("true", "false")


class DovecotHost:
    def __init__(self, name, active=True):
        self.dir = FIXTURES / name
        self.active = active
        self.answers = json.loads((self.dir / "doveconf-h.json").read_text())

    def run(self, argv):
        if argv == ["systemctl", "is-active", "dovecot"]:
            return (0, "active\n", "") if self.active else (3, "inactive\n", "")
        assert argv[:3] == ["doveconf", "-c", "/etc/dovecot/dovecot.conf"], argv
        if argv[3:] == ["-n"]:
            return 0, (self.dir / "doveconf-n").read_text(), ""
        assert argv[3] == "-h"
        return tuple(self.answers[argv[4]])


@pytest.mark.parametrize("fixture,version", [(DOVECOT[0], "2.3.19.1"), (DOVECOT[1], "2.4.1-4")])
def test_dovecot_23_and_24_give_the_mtas_socket_and_mechanisms_alike(fixture, version):
    daemon = mail_settings.Dovecot(DovecotHost(fixture).run)
    assert daemon.version() == version
    settings = daemon.settings(["auth_mechanisms", "unix_listener /var/spool/postfix/private/auth",
                                "unix_listener /run/dovecot/auth-exim", "disable_plaintext_auth"])
    assert settings["auth_mechanisms"] == {"value": "plain login", "source": "doveconf -n"}
    assert settings["unix_listener /var/spool/postfix/private/auth"] == {
        "value": "mode=0660 user=postfix group=postfix", "source": "doveconf -n"}
    assert settings["unix_listener /run/dovecot/auth-exim"] == {"value": None, "source": "none"}
    # 2.4 calls it auth_allow_cleartext, the other way round; read under the 2.3 name on both.
    assert settings["disable_plaintext_auth"] == {"value": "yes", "source": "default"}


def test_dovecot_24_sections_and_relative_listeners():
    _version, values = mail_settings.parse_doveconf((FIXTURES / DOVECOT[1] / "doveconf-n").read_text())
    assert mail_settings.flat_doveconf(values)["ssl_server/cert_file"] == "/etc/dovecot/private/dovecot.pem"
    listeners = mail_settings.dovecot_listeners(values)
    assert listeners["/run/dovecot/auth-userdb"] == ""
    assert listeners["/var/spool/postfix/private/auth"] == "mode=0660 user=postfix group=postfix"
    # 2.4's named listener with a path of its own.
    named = mail_settings.dovecot_listeners({
        ("service auth", "unix_listener auth-postfix", None): None,
        ("service auth", "unix_listener auth-postfix", "path"): "/var/spool/postfix/private/auth",
        ("service auth", "unix_listener auth-postfix", "mode"): "0600"})
    assert named == {"/var/spool/postfix/private/auth": "mode=0600"}


def test_dovecot_24_reads_the_23_certificate_name_under_its_new_one():
    settings = mail_settings.Dovecot(DovecotHost(DOVECOT[1]).run).settings(["ssl_cert"])
    assert settings["ssl_cert"] == {"value": "</etc/dovecot/private/dovecot.pem", "source": "doveconf -n"}


def test_a_missing_listener_is_a_difference_and_a_stopped_dovecot_is_not_running():
    result = mail_settings.report(DovecotHost(DOVECOT[0], active=False).run, {"dovecot": {"expect": {
        "unix_listener /run/dovecot/auth-exim": "mode=0660 user=Debian-exim group=Debian-exim"}}})
    assert result["not_running"] == ["dovecot"]
    assert [(item["setting"], item["live"], item["source"]) for item in result["differences"]] == [
        ("unix_listener /run/dovecot/auth-exim", None, "none")]


def test_an_unknown_daemon_fails_naming_it():
    with pytest.raises(SettingsError, match="'sendmail'"):
        mail_settings.report(lambda argv: (0, "", ""), {"sendmail": {}})


def test_what_a_postconf_edit_must_read_back_per_service():
    expected = mail_settings.postfix_expected(
        {"smtpd_sasl_type": "dovecot", "smtpd_tls_auth_only": True},
        {"submission/inet": {"fields": "n  -  y - - smtpd",
                             "options": {"smtpd_tls_auth_only": "yes", "syslog_name": "postfix/submission"}},
         "smtps/inet": {"state": "absent", "fields": "n - y - - smtpd"}},
        ["smtp/inet"])
    assert expected == {
        "submission/inet": "n - y - - smtpd", "submission/inet/smtpd_sasl_type": "dovecot",
        "submission/inet/smtpd_tls_auth_only": "yes", "submission/inet/syslog_name": "postfix/submission",
        "smtps/inet": None, "smtp/inet/smtpd_sasl_type": "dovecot", "smtp/inet/smtpd_tls_auth_only": "yes"}
    # Read back from the converged Debian 12 host: no difference.
    result = mail_settings.report(PostfixHost(POSTFIX[0]).run, {"postfix": {"expect": {
        name: value for name, value in expected.items() if name != "submission/inet/smtpd_tls_auth_only"}}})
    assert result["differences"] == []


def test_the_exim_files_a_role_writes_or_removes():
    assert mail_settings.exim_expected_files({"main/00_a": "X = 1\n", "acl/50_b": ""}) == {
        "conf.d/main/00_a": "included", "conf.d/acl/50_b": None}


def test_pending_postfix_edits_are_read_on_a_copy_and_the_live_configuration_is_untouched(tmp_path):
    live = tmp_path / "postfix"
    live.mkdir()
    (live / "main.cf").write_text("smtpd_sasl_auth_enable = yes\n")
    host = PostfixHost(POSTFIX[0])
    edits = []

    def run(argv):
        if argv[:2] == ["postconf", "-c"] and argv[2] != str(live):
            staged = argv[2]
            if argv[3] == "-e":
                edits.append(argv)
                return 0, "", ""
            code, out, err = host.run(["postconf", "-c", "/etc/postfix", *argv[3:]])
            # The staged main.cf as the edit left it.
            if any(edit[2] == staged for edit in edits):
                out = out.replace("smtpd_sasl_auth_enable = yes", "smtpd_sasl_auth_enable = no")
            return code, out, err
        return host.run(argv)

    staged = mail_settings.Postfix(run, str(live)).staged({"parameters": {"smtpd_sasl_auth_enable": "no"}},
                                                          str(tmp_path / "staging"))
    assert staged.config_dir != str(live)
    assert edits == [["postconf", "-c", staged.config_dir, "-e", "smtpd_sasl_auth_enable=no"]]
    assert staged.settings(["smtp/inet/smtpd_sasl_auth_enable"])["smtp/inet/smtpd_sasl_auth_enable"]["value"] == "no"
    assert (live / "main.cf").read_text() == "smtpd_sasl_auth_enable = yes\n"


def test_pending_dovecot_files_are_read_on_a_copy_and_never_outside_it(tmp_path):
    live = tmp_path / "dovecot"
    (live / "conf.d").mkdir(parents=True)
    (live / "dovecot.conf").write_text("!include conf.d/*.conf\n")
    ran = []

    def run(argv):
        ran.append(argv)
        return 0, "", ""

    daemon = mail_settings.Dovecot(run, str(live / "dovecot.conf"))
    target = str(live / "conf.d" / "99-hostguard-mta-auth.conf")
    staged = daemon.staged({"files": {target: "auth_mechanisms = plain login\n"}}, str(tmp_path / "staging"))
    assert staged.config == str(tmp_path / "staging" / "dovecot" / "dovecot.conf")
    assert (tmp_path / "staging" / "dovecot" / "conf.d" / "99-hostguard-mta-auth.conf").read_text() == (
        "auth_mechanisms = plain login\n")
    assert not (live / "conf.d" / "99-hostguard-mta-auth.conf").exists()
    with pytest.raises(SettingsError, match="outside"):
        daemon.staged({"files": {"/etc/passwd": "x"}}, str(tmp_path / "staging2"))
