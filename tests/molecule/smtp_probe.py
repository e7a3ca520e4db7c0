"""Speak SMTP to a host from inside a lab client namespace and print each reply code as JSON.

Run as `ip netns exec NETNS python3 smtp_probe.py HOST PORT [options]`. The
conversation goes as far as the options ask and stops at the first refusal:
connect, EHLO (recording whether AUTH is offered), STARTTLS or implicit TLS,
EHLO again, AUTH (PLAIN or LOGIN), MAIL FROM, RCPT TO, DATA. With ``--count N``
the MAIL, RCPT and DATA are repeated N times in the same session (a mailbox
flooding through submission); ``data`` is then the last reply's code and
``data_codes`` counts the replies by code. Certificates are not verified: the
lab's hosts use Debian's snakeoil certificate.
"""

from __future__ import annotations

import argparse
import base64
import json
import smtplib
import ssl
import sys


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def auth_offer(client: smtplib.SMTP) -> list[str]:
    """The SASL mechanisms the last EHLO offered, [] when it offered no AUTH."""
    return client.esmtp_features.get("auth", "").split()


def authenticate(client: smtplib.SMTP, mechanism: str, user: str, password: str) -> tuple[int, str]:
    if mechanism == "PLAIN":
        return client.docmd("AUTH", "PLAIN " + b64(f"\0{user}\0{password}"))
    code, reply = client.docmd("AUTH", "LOGIN")
    for answer in (user, password):
        if code != 334:
            break
        code, reply = client.docmd(b64(answer))
    return code, reply


def converse(args: argparse.Namespace, report: dict) -> None:
    unverified = ssl.create_default_context()
    unverified.check_hostname = False
    unverified.verify_mode = ssl.CERT_NONE
    if args.implicit_tls:
        client = smtplib.SMTP_SSL(timeout=args.timeout, context=unverified)
        # connect() names the TLS server after the host given to the constructor, here none.
        client._host = args.host
    else:
        client = smtplib.SMTP(timeout=args.timeout)
    code, _banner = client.connect(args.host, args.port)
    report["connect"] = code
    report["ehlo"] = client.ehlo("probe.lab.example")[0]
    report["auth_offered"] = auth_offer(client)
    if args.starttls:
        report["starttls"] = client.docmd("STARTTLS")[0]
        if report["starttls"] != 220:
            return
        client.sock = unverified.wrap_socket(client.sock, server_hostname=args.host)
        client.file = None
        client.helo_resp = client.ehlo_resp = None
        client.esmtp_features = {}
        report["ehlo_after_tls"] = client.ehlo("probe.lab.example")[0]
        report["auth_offered_after_tls"] = auth_offer(client)
    if args.user:
        report["auth"], report["auth_reply"] = authenticate(client, args.mechanism, args.user, args.password)
        if report["auth"] != 235:
            return
    if args.mail_from is None:
        return
    for number in range(1, args.count + 1):
        if not send_one(client, args, report, number):
            return
    client.quit()


def send_one(client: smtplib.SMTP, args: argparse.Namespace, report: dict, number: int) -> bool:
    """MAIL, RCPT and DATA of message `number`; False where the server refused a step (the report says which)."""
    report["mail"], report["mail_reply"] = client.docmd("MAIL", f"FROM:<{args.mail_from}>")
    if report["mail"] != 250 or not args.rcpt:
        return False
    rcpt = args.rcpt.replace("{n}", str(number))
    report["rcpt"], report["rcpt_reply"] = client.docmd("RCPT", f"TO:<{rcpt}>")
    if report["rcpt"] != 250 or not args.data:
        return False
    subject = args.subject + (f" {number}/{args.count}" if args.count > 1 else "")
    message = (f"From: <{args.mail_from}>\r\nTo: <{rcpt}>\r\nSubject: {subject}\r\n\r\n"
               "sent by tests/molecule/smtp_probe.py\r\n")
    try:
        report["data"], reply = client.data(message)
    except smtplib.SMTPDataError as error:
        report["data"], reply = error.smtp_code, error.smtp_error
    report["data_reply"] = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
    codes = report.setdefault("data_codes", {})
    codes[str(report["data"])] = codes.get(str(report["data"]), 0) + 1
    return report["data"] == 250


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--starttls", action="store_true", help="issue STARTTLS after the first EHLO")
    parser.add_argument("--implicit-tls", action="store_true", help="TLS from the first byte (port 465)")
    parser.add_argument("--user")
    parser.add_argument("--password", default="")
    parser.add_argument("--mechanism", choices=["PLAIN", "LOGIN"], default="PLAIN")
    parser.add_argument("--mail-from")
    parser.add_argument("--rcpt")
    parser.add_argument("--data", action="store_true", help="send a short message after RCPT")
    parser.add_argument("--count", type=int, default=1,
                        help="send this many messages in the session ({n} in --rcpt is the message's number)")
    parser.add_argument("--subject", default="hostguard smtp probe")
    args = parser.parse_args()
    report: dict = {"host": args.host, "port": args.port}
    try:
        converse(args, report)
    except smtplib.SMTPResponseException as error:
        report["error"] = f"{error.smtp_code} {error.smtp_error!r}"
    except (OSError, smtplib.SMTPException) as error:
        report["error"] = f"{type(error).__name__}: {error}"
    # Reply texts arrive as bytes from docmd.
    json.dump({key: value.decode("utf-8", "replace") if isinstance(value, bytes) else value
               for key, value in report.items()}, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
