"""hostguard-watch holding a mailbox that floods through authenticated submission (587), on Exim.

As molecule/watch: mailer1's 230 messages through submission are frozen (queued ones with exim -Mf, new ones by
the watch's DATA ACL) while mailer2's mail is delivered, and releasing it thaws them. After the mail tests, whose
audit check counts one mail_rate event; in order.
"""

from __future__ import annotations

from watch_checks import check_new_sasl_mail_held_at_submission, check_sasl_flood_held, check_sasl_release, exim_queue

SASL_LIST = "/etc/exim4/hostguard-watch/held-sasl-users"


def test_exim_runs_smtp_mail_through_the_watchs_data_acl(host):
    assert "acl_smtp_data = hostguard_watch_check_data" in host.check_output("exim4 -bP acl_smtp_data")


def test_a_mailbox_flooding_through_submission_is_frozen_while_another_mailbox_flows(host):
    check_sasl_flood_held(host, exim_queue, "watch1", SASL_LIST)


def test_new_mail_of_the_held_mailbox_is_frozen_at_submission(host):
    check_new_sasl_mail_held_at_submission(host, exim_queue, "watch1")


def test_release_thaws_the_mailboxs_mail(host):
    check_sasl_release(host, exim_queue, "watch1", SASL_LIST)
