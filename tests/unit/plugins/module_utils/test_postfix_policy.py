"""A Postfix policy query and its answer, against stand-in services.

The stand-ins play what a policy daemon does on its socket: answer, close without an answer (policyd-rate-limit
1.2 on Debian 13 without sql_limits_by_id), hang, not listen yet. One test speaks over a real Unix socket to a
server thread; molecule/mail and molecule/mail_trixie ask the real policyd-rate-limit.
"""

from __future__ import annotations

import errno
import socket
import threading

import pytest

from ansible_collections.hostguard.hosting.plugins.module_utils import postfix_policy

QUERY = {"protocol_state": "RCPT", "sasl_username": "policy-probe@hostguard.invalid"}


class FakeSocket:
    """Gives REPLIES (a list of byte chunks; an exception is raised instead) to recv, records what was sent."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.sent = b""
        self.closed = False

    def sendall(self, data):
        self.sent += data

    def recv(self, _size):
        if not self.replies:
            return b""
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    def close(self):
        self.closed = True


class FakeService:
    """connect(): each call takes the next outcome, an OSError to raise or the replies of a FakeSocket."""

    def __init__(self, *outcomes):
        self.outcomes = list(outcomes)
        self.sockets = []
        self.paths = []

    def __call__(self, path, timeout):
        self.paths.append((path, timeout))
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, OSError):
            raise outcome
        sock = FakeSocket(outcome)
        self.sockets.append(sock)
        return sock


class Clock:
    def __init__(self):
        self.now = 0.0
        self.slept = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


def refused():
    return ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")


def missing():
    return FileNotFoundError(errno.ENOENT, "No such file or directory")


def test_the_query_starts_with_its_request_and_ends_with_an_empty_line():
    assert postfix_policy.request_text(QUERY) == (
        b"request=smtpd_access_policy\nprotocol_state=RCPT\nsasl_username=policy-probe@hostguard.invalid\n\n")


def test_an_explicit_request_attribute_is_kept_once_and_must_be_the_policy_one():
    assert postfix_policy.request_text({"request": "smtpd_access_policy", "x": 1}) == (
        b"request=smtpd_access_policy\nx=1\n\n")
    with pytest.raises(postfix_policy.PolicyError, match="request must be smtpd_access_policy"):
        postfix_policy.request_text({"request": "other"})


@pytest.mark.parametrize("attributes", [{"sasl_username": "a\nprotocol_state=VRFY"}, {"a=b": "c"}, {"": "x"},
                                        {"name": "with\rreturn"}])
def test_an_attribute_that_would_break_the_protocol_is_refused_naming_it(attributes):
    with pytest.raises(postfix_policy.PolicyError) as raised:
        postfix_policy.request_text(attributes)
    assert repr(next(iter(attributes))) in str(raised.value)


def test_an_answer_split_over_reads_is_put_together():
    service = FakeService([b"action=450 4.7.1 Too many", b" messages\n", b"\n"])
    result = postfix_policy.ask(service, "/sock", QUERY, 10)
    assert (result["answered"], result["action"], result["error"]) == (True, "450 4.7.1 Too many messages", None)
    assert service.sockets[0].sent == postfix_policy.request_text(QUERY)
    assert service.sockets[0].closed


def test_every_attribute_of_the_answer_is_returned():
    result = postfix_policy.ask(FakeService([b"action=dunno\nextra=1\n\n"]), "/sock", QUERY, 10)
    assert result["reply"] == {"action": "dunno", "extra": "1"}


def test_a_connection_closed_without_an_answer_is_named():
    result = postfix_policy.ask(FakeService([]), "/sock", QUERY, 10)
    assert (result["answered"], result["listening"]) == (False, True)
    assert result["error"] == "closed the connection without an answer"


def test_a_connection_closed_in_the_middle_of_the_answer_is_named_with_what_came():
    result = postfix_policy.ask(FakeService([b"action=du"]), "/sock", QUERY, 10)
    assert not result["answered"]
    assert result["error"] == "closed the connection in the middle of its answer: 'action=du'"


def test_an_answer_without_an_action_is_no_answer():
    result = postfix_policy.ask(FakeService([b"hello\n\n"]), "/sock", QUERY, 10)
    assert (result["answered"], result["action"]) == (False, None)
    assert "answered without an action" in result["error"]


def test_a_service_that_hangs_is_named_with_the_timeout():
    result = postfix_policy.ask(FakeService([socket.timeout("timed out")]), "/sock", QUERY, 2.5)
    assert (result["answered"], result["error"]) == (False, "gave no answer within 2.5 s")


def test_a_service_that_never_ends_its_answer_is_not_read_forever():
    result = postfix_policy.ask(FakeService([b"x" * 5000] * 20), "/sock", QUERY, 10)
    assert not result["answered"]
    assert "without ending its answer" in result["error"]


def test_a_missing_socket_is_waited_for_while_the_daemon_starts():
    clock = Clock()
    service = FakeService(missing(), refused(), [b"action=dunno\n\n"])
    result = postfix_policy.ask_until_listening(service, "/sock", QUERY, 10, 10, sleep=clock.sleep, clock=clock)
    assert (result["answered"], result["action"], result["attempts"]) == (True, "dunno", 3)
    assert clock.slept == [1, 1]
    assert "starting" not in result


def test_nothing_listening_for_the_whole_wait_is_named():
    clock = Clock()
    result = postfix_policy.ask_until_listening(FakeService(refused()), "/sock", QUERY, 10, 3, sleep=clock.sleep,
                                                clock=clock)
    assert (result["answered"], result["listening"], result["attempts"]) == (False, False, 4)
    assert result["error"] == "nothing listens on /sock (connection refused)"
    assert "starting" not in result


def test_a_listening_service_that_answers_wrongly_is_not_asked_again():
    clock = Clock()
    service = FakeService([])
    result = postfix_policy.ask_until_listening(service, "/sock", QUERY, 10, 10, sleep=clock.sleep, clock=clock)
    assert (result["attempts"], clock.slept) == (1, [])
    assert result["error"] == "closed the connection without an answer"


def test_a_socket_it_may_not_open_is_named_at_once():
    clock = Clock()
    denied = PermissionError(errno.EACCES, "Permission denied")
    result = postfix_policy.ask_until_listening(FakeService(denied), "/sock", QUERY, 10, 10, sleep=clock.sleep,
                                                clock=clock)
    assert (result["attempts"], result["error"]) == (1, "/sock: Permission denied")


def serve_once(path, answer):
    """A policy service on a real Unix socket: reads one query, sends ANSWER (None: closes without one)."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    received = []

    def run():
        connection, _address = server.accept()
        data = b""
        while not data.endswith(b"\n\n"):
            data += connection.recv(1024)
        received.append(data)
        if answer is not None:
            connection.sendall(answer)
        connection.close()
        server.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, received


@pytest.mark.parametrize("answer,expected", [(b"action=dunno\n\n", ("dunno", None)),
                                             (None, (None, "closed the connection without an answer"))])
def test_over_a_real_unix_socket(tmp_path, answer, expected):
    path = str(tmp_path / "policy")
    thread, received = serve_once(path, answer)
    result = postfix_policy.ask_until_listening(postfix_policy.connect_unix, path, QUERY, 5, 5)
    thread.join(5)
    assert (result["action"], result["error"]) == expected
    assert received == [postfix_policy.request_text(QUERY)]


def test_over_a_real_unix_socket_nobody_listens_on(tmp_path):
    path = str(tmp_path / "policy")
    result = postfix_policy.ask(postfix_policy.connect_unix, path, QUERY, 5)
    assert result["error"] == "nothing listens on %s (no such socket)" % path
