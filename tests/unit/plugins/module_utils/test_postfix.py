"""Setting Postfix parameters and services: what changes, the diff, and validation on a staging copy.

Postfix is not installed here: `postconf` and `postfix check` are played by a
small stand-in that keeps main.cf and master.cf as `postconf -n` and
`postconf -M` print them (recorded from Debian bookworm's Postfix 3.7). The
real commands are proven by molecule/mail on a lab host.
"""

from __future__ import annotations

import pytest

from ansible_collections.hostguard.hosting.plugins.module_utils import postfix

# Recorded from a lab host: `postconf -n` (excerpt) and `postconf -M` (excerpt).
POSTCONF_N = """\
compatibility_level = 3.6
mydestination = $myhostname, localdomain, localhost, localhost.localdomain, localhost
myhostname = mx1.lab.example
mynetworks = 127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128
relayhost =
smtpd_relay_restrictions = permit_mynetworks permit_sasl_authenticated defer_unauth_destination
smtpd_tls_security_level = may
"""
POSTCONF_M = """\
smtp       inet  n       -       y       -       -       smtpd
pickup     unix  n       -       y       60      1       pickup
relay      unix  -       -       y       -       -       smtp -o syslog_name=postfix/$service_name
postlog    unix-dgram n  -       n       -       1       postlogd
"""
SUBMISSION = {"fields": "n - y - - smtpd",
              "options": {"syslog_name": "postfix/submission", "smtpd_sasl_auth_enable": True}}
SUBMISSION_ENTRY = ("submission inet n - y - - smtpd -o smtpd_sasl_auth_enable=yes "
                    "-o syslog_name=postfix/submission")


class FakePostfix:
    """postconf and postfix check over files that hold postconf's own output format."""

    def __init__(self, unknown_parameters=("bogus_parameter",)):
        self.calls = []
        self.unknown_parameters = unknown_parameters

    @staticmethod
    def _read(path):
        with open(path, encoding="utf-8") as handle:
            return handle.read()

    @staticmethod
    def _write(path, text):
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)

    def __call__(self, argv):
        self.calls.append(argv)
        program, _flag, config_dir, *rest = argv
        main_cf, master_cf = f"{config_dir}/main.cf", f"{config_dir}/master.cf"
        if program == "postfix":
            unknown = [name for name in postfix.parse_parameters(self._read(main_cf))
                       if name in self.unknown_parameters]
            return 0, "", "".join(f"/usr/sbin/postconf: warning: {main_cf}: unused parameter: {name}=1\n"
                                  for name in unknown)
        if rest == ["-n"]:
            return 0, self._read(main_cf), ""
        if rest == ["-M"]:
            return 0, self._read(master_cf), ""
        if rest[0] == "-e":
            parameters = postfix.parse_parameters(self._read(main_cf))
            parameters.update(item.split("=", 1) for item in rest[1:])
            self._write(main_cf, "".join(f"{name} = {value}\n" for name, value in sorted(parameters.items())))
            return 0, "", ""
        services = postfix.parse_services(self._read(master_cf))
        if rest[0] == "-MX":
            services.pop(rest[1])
        else:
            key, entry = rest[1].split("=", 1)
            services[key] = entry
        self._write(master_cf, "".join(entry + "\n" for entry in services.values()))
        return 0, "", ""


@pytest.fixture(name="config_dir")
def fixture_config_dir(tmp_path):
    (tmp_path / "main.cf").write_text(POSTCONF_N)
    (tmp_path / "master.cf").write_text(POSTCONF_M)
    return str(tmp_path)


def edits_made(run):
    return [call for call in run.calls if call[0] == "postconf" and call[3] in ("-e", "-M", "-MX") and len(call) > 4]


def test_parameters_are_read_as_postconf_prints_them():
    parameters = postfix.parse_parameters(POSTCONF_N)
    assert parameters["mynetworks"] == "127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128"
    assert parameters["relayhost"] == ""
    assert len(parameters) == 7


def test_services_are_keyed_by_name_and_type_with_their_options():
    services = postfix.parse_services(POSTCONF_M)
    assert services["relay/unix"] == "relay unix - - y - - smtp -o syslog_name=postfix/$service_name"
    assert services["postlog/unix-dgram"] == "postlog unix-dgram n - n - 1 postlogd"
    assert sorted(services) == ["pickup/unix", "postlog/unix-dgram", "relay/unix", "smtp/inet"]


def test_a_service_entry_has_sorted_options_and_postfix_booleans():
    assert postfix.service_entry("submission/inet", SUBMISSION["fields"], SUBMISSION["options"]) == SUBMISSION_ENTRY


def test_an_option_value_with_spaces_is_refused_naming_it():
    with pytest.raises(postfix.PostfixError, match="smtpd_client_restrictions"):
        postfix.service_entry("submission/inet", "n - y - - smtpd",
                              {"smtpd_client_restrictions": "permit_sasl_authenticated reject"})


@pytest.mark.parametrize("parameters,services,named", [
    ({"bad name": "x"}, {}, "bad name"),
    ({}, {"submission": SUBMISSION}, "submission"),
    ({}, {"submission/tcp": SUBMISSION}, "submission/tcp"),
    ({}, {"submission/inet": {"options": {}}}, "fields"),
])
def test_malformed_requests_fail_before_anything_runs(parameters, services, named):
    run = FakePostfix()
    with pytest.raises(postfix.PostfixError, match=named):
        postfix.apply(run, "/etc/postfix", parameters, services)
    assert run.calls == []


def test_values_already_set_change_nothing_whatever_their_spacing(config_dir):
    run = FakePostfix()
    result = postfix.apply(run, config_dir,
                           {"mynetworks": "127.0.0.0/8   [::ffff:127.0.0.0]/104\n[::1]/128", "relayhost": ""},
                           {"smtp/inet": {"fields": "n  -  y  -  -  smtpd"}, "smtps/inet": {"state": "absent"}})
    assert result["changed"] is False and result["diff"] == []
    assert edits_made(run) == []


def test_check_mode_reports_the_diff_and_writes_nothing(config_dir):
    run = FakePostfix()
    result = postfix.apply(run, config_dir, {"smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
                                             "smtpd_sasl_type": "dovecot"},
                           {"submission/inet": SUBMISSION, "relay/unix": {"state": "absent"}}, check_mode=True)
    assert result["changed"] is True
    assert result["parameters"] == {"smtpd_relay_restrictions": "permit_mynetworks, reject_unauth_destination",
                                    "smtpd_sasl_type": "dovecot"}
    assert result["services"] == {"submission/inet": SUBMISSION_ENTRY, "relay/unix": None}
    main_diff, master_diff = result["diff"]
    assert main_diff["before"] == ("smtpd_relay_restrictions = permit_mynetworks permit_sasl_authenticated "
                                   "defer_unauth_destination\n")
    assert main_diff["after"] == ("smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination\n"
                                  "smtpd_sasl_type = dovecot\n")
    assert master_diff["before"] == "relay unix - - y - - smtp -o syslog_name=postfix/$service_name\n"
    assert master_diff["after"] == SUBMISSION_ENTRY + "\n"
    assert edits_made(run) == []


def test_validated_edits_reach_the_live_files_and_a_second_run_changes_nothing(config_dir):
    run = FakePostfix()
    parameters = {"smtpd_sasl_type": "dovecot"}
    services = {"submission/inet": SUBMISSION, "relay/unix": {"state": "absent"}}
    assert postfix.apply(run, config_dir, parameters, services)["changed"] is True
    # The edits were made on the staging copy, never with -c on the live directory.
    assert all(call[2] != config_dir for call in edits_made(run))
    live_parameters, live_services = postfix.read(run, config_dir)
    assert live_parameters["smtpd_sasl_type"] == "dovecot"
    assert live_services["submission/inet"] == SUBMISSION_ENTRY and "relay/unix" not in live_services
    assert postfix.apply(FakePostfix(), config_dir, parameters, services)["changed"] is False


def test_an_edit_that_postfix_check_warns_about_never_reaches_the_live_files(config_dir):
    run = FakePostfix()
    with pytest.raises(postfix.PostfixError, match="unused parameter: bogus_parameter"):
        postfix.apply(run, config_dir, {"bogus_parameter": "1"}, {"submission/inet": SUBMISSION})
    with open(f"{config_dir}/main.cf", encoding="utf-8") as main_cf, \
            open(f"{config_dir}/master.cf", encoding="utf-8") as master_cf:
        assert (main_cf.read(), master_cf.read()) == (POSTCONF_N, POSTCONF_M)


def test_a_warning_the_live_configuration_already_has_does_not_block_a_change(config_dir):
    with open(f"{config_dir}/main.cf", "a", encoding="utf-8") as main_cf:
        main_cf.write("bogus_parameter = 1\n")
    result = postfix.apply(FakePostfix(), config_dir, {"smtpd_sasl_type": "dovecot"}, {})
    assert result["changed"] is True
    assert postfix.read(FakePostfix(), config_dir)[0]["smtpd_sasl_type"] == "dovecot"


def test_trusted_networks_join_loopback_with_ipv6_in_brackets():
    assert postfix.mynetworks([]) == " ".join(postfix.LOOPBACK_NETWORKS)
    assert postfix.mynetworks(["198.51.100.0/24", "2001:db8:51::/48", "::1/128"]) == (
        "127.0.0.0/8 [::ffff:127.0.0.0]/104 [::1]/128 198.51.100.0/24 [2001:db8:51::]/48")


@pytest.mark.parametrize("cidr,message", [
    ("10.0.0.1/8", "'10.0.0.1/8' is not a network in CIDR notation: 10.0.0.1/8 has host bits set "
                   "(did you mean 10.0.0.0/8?)"),
    ("office", "'office' is not a network in CIDR notation"),
    ("0.0.0.0/0", "'0.0.0.0/0' is every address"),
    ("::/0", "'::/0' is every address"),
])
def test_a_bad_trusted_network_is_refused_naming_it(cidr, message):
    with pytest.raises(postfix.PostfixError) as error:
        postfix.mynetworks(["198.51.100.0/24", cidr])
    assert message in str(error.value)
