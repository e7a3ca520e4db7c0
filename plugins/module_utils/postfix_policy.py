# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A Postfix policy service asked what it answers, the way Postfix's smtpd asks it.

The protocol (Postfix's SMTPD_POLICY_README): the client sends ``name=value`` lines, the first
``request=smtpd_access_policy``, and an empty line; the service answers ``action=...`` and an empty line on
the same connection. A daemon that runs and listens can still answer nothing: policyd-rate-limit 1.2 (Debian
13) closes the connection on every query when its configuration lacks ``sql_limits_by_id``, and Postfix then
defers every authenticated client's mail after its timeout. So the proof that the service is in force is a
real query, answered with the action the caller expects.

Pure Python over a ``connect(path, timeout) -> socket`` callable, a ``sleep(seconds)`` and a ``clock()``, so
the logic is unit-tested with a stand-in service.
"""

from __future__ import annotations

import errno
import socket
import time

REQUEST = "smtpd_access_policy"
# Postfix's own limit on a policy reply line is far above this; a service that says more is not one.
MAX_REPLY = 65536
# While the daemon (re)starts, its socket is missing or refuses: asked again until the wait is over.
NOT_LISTENING = (errno.ENOENT, errno.ECONNREFUSED)


class PolicyError(ValueError):
    """The query itself is malformed (the caller's mistake, not the service's)."""


def request_text(attributes):
    """The query as bytes: ``request=smtpd_access_policy`` first, then ATTRIBUTES in their order, then an empty line."""
    lines = ["request=" + REQUEST]
    for name, value in attributes.items():
        name, value = str(name), "" if value is None else str(value)
        if name == "request":
            if value != REQUEST:
                raise PolicyError("request must be %s, not %r" % (REQUEST, value))
            continue
        if not name or "=" in name or any(char in name + value for char in "\r\n"):
            raise PolicyError("policy attribute %r=%r: a name without '=' and a value on one line" % (name, value))
        lines.append("%s=%s" % (name, value))
    return ("\n".join(lines) + "\n\n").encode("utf-8")


def parse_reply(data):
    """The attributes of a reply (``action=...`` then an empty line); None while the empty line has not come."""
    text = data.decode("utf-8", errors="replace")
    if "\n\n" not in text:
        return None
    reply = {}
    for line in text.split("\n\n", 1)[0].split("\n"):
        name, sep, value = line.strip().partition("=")
        if sep:
            reply[name] = value
    return reply


def connect_unix(path, timeout):
    """A connected Unix stream socket (the real transport)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        sock.connect(path)
    except BaseException:
        sock.close()
        raise
    return sock


def ask(connect, path, attributes, timeout):
    """One query. Returns {answered, action, reply, error, listening}."""
    data = request_text(attributes)
    result = {"answered": False, "action": None, "reply": {}, "error": None, "listening": False}
    try:
        sock = connect(path, timeout)
    except OSError as exc:
        result["error"] = _describe_os_error(path, exc)
        result["starting"] = exc.errno in NOT_LISTENING
        return result
    result["listening"] = True
    received = b""
    try:
        sock.sendall(data)
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                result["error"] = ("closed the connection without an answer" if not received
                                   else "closed the connection in the middle of its answer: %r" % _text(received))
                return result
            received += chunk
            reply = parse_reply(received)
            if reply is not None:
                break
            if len(received) > MAX_REPLY:
                result["error"] = "sent more than %d bytes without ending its answer" % MAX_REPLY
                return result
    except socket.timeout:
        result["error"] = "gave no answer within %g s" % timeout
        return result
    except OSError as exc:
        result["error"] = _describe_os_error(path, exc)
        return result
    finally:
        sock.close()
    result["reply"] = reply
    if "action" not in reply:
        result["error"] = "answered without an action: %r" % _text(received)
        return result
    result["answered"], result["action"] = True, reply["action"]
    return result


def ask_until_listening(connect, path, attributes, timeout, wait, sleep=time.sleep, clock=time.monotonic):
    """ask(), again every second for up to WAIT seconds while nothing listens on PATH (a daemon starting up).

    A service that listens but answers wrongly, or a socket that cannot be reached for another reason
    (permissions), is not asked again: that is the result.
    """
    deadline = clock() + wait
    attempts = 0
    while True:
        attempts += 1
        result = ask(connect, path, attributes, timeout)
        if not result.pop("starting", False) or clock() >= deadline:
            result["attempts"] = attempts
            return result
        sleep(1)


def _describe_os_error(path, exc):
    if exc.errno == errno.ENOENT:
        return "nothing listens on %s (no such socket)" % path
    if exc.errno == errno.ECONNREFUSED:
        return "nothing listens on %s (connection refused)" % path
    return "%s: %s" % (path, exc.strerror or exc)


def _text(data):
    return data.decode("utf-8", errors="replace")[:200]
