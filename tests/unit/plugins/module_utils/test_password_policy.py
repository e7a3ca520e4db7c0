"""The providers' password rules: each one caught, and generated passwords that pass them all."""

from __future__ import annotations

import pytest

from ansible_collections.hostguard.hosting.plugins.module_utils.password_policy import generate, problems


@pytest.mark.parametrize("password,broken", [
    ("Xk7#p2", "shorter than 8 characters"),
    ("Xkrpqwvzmt", "no digits and no symbols"),
    ("58203947#!", "no letters"),
    ("Xk7p2Qz9Lm", "no symbols"),
    ("info#7Kq2zX", "contains the account name"),
    ("Kq7#example", "contains the domain name"),
    ("Kq7#Password", "contains the dictionary word or name 'password'"),
    ("Zq#9sakuraX", "contains the dictionary word or name 'sakura'"),
    ("Zq#9abcXm", "contains the sequence 'abc'"),
    ("Zq#12345Xm", "contains the sequence '123'"),
    ("Zq#qwertXm", "contains the sequence 'qwe'"),
    # pam_pwquality's maxsequence counts any characters whose codes run: ( ) * are 40, 41, 42.
    ("q4d!Zt?U9_W8()*c", "contains the sequence '()*'"),
    ("Zq#9/.-Xm", "contains the sequence '/.-'"),
    ("Zq#0000Xm7", "contains the repeat '000'"),
    ("Zq#7katokato", "contains the repeat 'katokato'"),
])
def test_each_rule_is_caught(password, broken):
    assert broken in problems(password, account="info", domain="example.com")


def test_a_password_following_every_rule_passes():
    assert problems("Tq7#vB2!mZ9x", account="info", domain="example.com") == []


def test_generated_passwords_pass_every_rule_and_differ():
    drawn = [generate(16, account="info", domain="example.com") for _index in range(50)]
    assert all(len(password) == 16 and problems(password, "info", "example.com") == [] for password in drawn)
    assert len(set(drawn)) == 50


def test_generated_passwords_hold_no_run_pam_pwquality_refuses():
    # maxsequence = 2 in the password_policy role: three characters in a row whose codes rise or fall by one.
    for _index in range(300):
        password = generate(16)
        codes = [ord(character) for character in password]
        assert not any(b - a == c - b and abs(b - a) == 1 for a, b, c in zip(codes, codes[1:], codes[2:])), password


def test_a_length_below_the_minimum_is_refused():
    with pytest.raises(ValueError, match="length 6 is below the minimum of 8"):
        generate(6)
