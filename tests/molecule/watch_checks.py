"""What the watch scenario's tests share: the webhook receiver, the events log, the alert mailbox."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from labtools import PROJECT_DIR, Lab

RECEIVER = PROJECT_DIR / "tests" / "molecule" / "webhook_receiver.py"
EVENTS = "/var/lib/hostguard/watch/events.jsonl"
ALERT_MAILBOX = "/var/mail/abuse"


class Receiver:
    """The webhook receiver in the admin office's namespace, on the port the converge configured."""

    def __init__(self, out: Path, port: int = 8025):
        office = Lab.from_env().clients["office"]
        self.out = out
        self.process = subprocess.Popen(["ip", "netns", "exec", office.netns, sys.executable, str(RECEIVER),
                                         "--port", str(port), "--out", str(out)])

    def messages(self) -> list[dict]:
        if not self.out.exists():
            return []
        return [json.loads(line)["body"] for line in self.out.read_text().splitlines()]

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)


def events(host) -> list[dict]:
    result = host.run("cat %s", EVENTS)
    return [json.loads(line) for line in result.stdout.splitlines()] if result.rc == 0 else []


def wait_for(what, timeout: float = 60.0, every: float = 1.0):
    """Poll `what()` until it returns something true; that value, or the last one after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    value = what()
    while not value and time.monotonic() < deadline:
        time.sleep(every)
        value = what()
    return value


# Run by the client's python: IMAP login after STARTTLS (Dovecot refuses plaintext auth without TLS).
IMAP_LOGIN = """
import imaplib, ssl, sys
imap = imaplib.IMAP4(sys.argv[1], 143, timeout=10)
imap.starttls(ssl_context=ssl._create_unverified_context())  # the lab's certificate is self-signed
try:
    imap.login(sys.argv[2], sys.argv[3])
except imaplib.IMAP4.error as error:
    print("refused", error)
else:
    print("ok")
"""


def imap_login(client, address: str, user: str, password: str) -> str:
    """'ok' or 'refused ...': an IMAP login from a client namespace of the lab."""
    result = client.run(sys.executable, "-c", IMAP_LOGIN, address, user, password, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()
