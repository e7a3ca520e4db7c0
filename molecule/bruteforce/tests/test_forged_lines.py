"""A compromised customer forges failed-login lines in the journal (a program it calls sshd, logger with the
authpriv facility, as PHP's syslog() can): fail2ban must never ban the addresses those lines name."""

from __future__ import annotations

import time

# In the abroad range, used by no lab client.
FORGED = ["203.0.113.%d" % last for last in range(90, 96)]
CUSTOMER = "forger"


def test_forged_login_failures_get_no_address_banned(host):
    host.run(f"useradd --create-home --shell /bin/bash {CUSTOMER}")
    host.check_output(f"install -o {CUSTOMER} -m 0755 /usr/bin/logger /home/{CUSTOMER}/sshd")
    for _round in range(3):
        for address in FORGED:
            # As sshd writes it, from a program named sshd; and as pam_unix writes it, through the authpriv
            # facility, for one mailbox from many addresses (what the per-account jail counts).
            host.check_output(f"runuser -u {CUSTOMER} -- /home/{CUSTOMER}/sshd -p authpriv.info -t sshd "
                              f"'Failed password for root from {address} port 4242 ssh2'")
            host.check_output(f"runuser -u {CUSTOMER} -- logger -p authpriv.notice -t sshd 'pam_unix(sshd:auth): "
                              f"authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost={address}  "
                              f"user=labmail'")
    # fail2ban reads the journal within a second or two; give it ten.
    time.sleep(10)
    seen = int(host.check_output(f"journalctl --no-pager -q -t sshd --grep '{FORGED[0]}' | wc -l"))
    assert seen >= 6  # the forged lines are in the journal: it is the filters that must not take them
    ruleset = host.check_output("nft list ruleset")
    jails = host.check_output("fail2ban-client status").split("Jail list:", 1)[1].replace(",", " ").split()
    assert "sshd" in jails and "hostguard-accounts" in jails, jails
    for jail in jails:
        status = host.check_output(f"fail2ban-client status {jail}")
        for address in FORGED:
            assert address not in status, (jail, status)
    for address in FORGED:
        assert address not in ruleset
    # Nor reported as attacking a mailbox (the per-account jail's report names the addresses it counted).
    reported = host.run("journalctl --no-pager -q -t hostguard-bruteforce --grep '203\\.0\\.113\\.9[0-5]'")
    assert reported.stdout.strip() == "", reported.stdout
