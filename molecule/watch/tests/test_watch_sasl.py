"""hostguard-watch holding a mailbox that floods through authenticated submission (587), on Postfix.

mailer1 sends 230 messages through submission: the watch names it and holds it (its queued messages on hold, its
map of held SASL users read by check_sasl_access at the end of DATA) while mailer2's mail is delivered; releasing
it lets its mail go. After the mail tests, whose audit check counts one mail_rate event; in order.
"""

from __future__ import annotations

from watch_checks import check_new_sasl_mail_held_at_submission, check_sasl_flood_held, check_sasl_release, postfix_queue

SASL_MAP = "/etc/postfix/hostguard-watch-sasl-hold"


def test_postfix_checks_the_watchs_sasl_map_first_at_the_end_of_data(host):
    shown = host.check_output("postconf -h smtpd_end_of_data_restrictions")
    assert shown.replace(",", " ").split()[:2] == ["check_sasl_access", f"texthash:{SASL_MAP}"]


def test_a_mailbox_flooding_through_submission_is_held_while_another_mailbox_flows(host):
    check_sasl_flood_held(host, postfix_queue, "watch1", SASL_MAP)


def test_new_mail_of_the_held_mailbox_is_held_at_submission(host):
    check_new_sasl_mail_held_at_submission(host, postfix_queue, "watch1")


def test_release_lets_the_mailboxs_mail_go(host):
    check_sasl_release(host, postfix_queue, "watch1", SASL_MAP)
