"""A hostile account racing root in its own tree, for the tests of every root operation on customer trees.

A forked process drops to the account's uid and swaps pairs of names with renameat2(RENAME_EXCHANGE) in a
tight loop, as a compromised customer can, until the test stops it.
"""

from __future__ import annotations

import ctypes
import os
import signal

ATTACKER = 1999
RENAME_EXCHANGE = 2
AT_FDCWD = -100


class Attacker(object):
    """A forked process with the account's uid that swaps ``pairs`` of names with RENAME_EXCHANGE until stopped;
    with ``after_locked``, only once it has seen that path's owner turn to root (the run is under way)."""

    def __init__(self, pairs, after_locked=None, uid=ATTACKER, within=None):
        self.pairs = pairs
        self.after_locked = after_locked
        self.uid = uid
        # Names relative to ``within``, a directory root opens for the account: it may lie below directories
        # the account could not traverse (a test's private temporary directory).
        self.within = within
        self.pid = None

    def __enter__(self):
        ready_read, ready_write = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # the attacker: never returns
            try:
                os.close(ready_read)
                base = os.open(self.within, os.O_RDONLY | os.O_DIRECTORY) if self.within else AT_FDCWD
                os.setgroups([])
                os.setresgid(self.uid, self.uid, self.uid)
                os.setresuid(self.uid, self.uid, self.uid)
                libc = ctypes.CDLL(None, use_errno=True)
                encoded = [(os.fsencode(a), os.fsencode(b)) for a, b in self.pairs]
                # Prove the account can make these swaps (it must reach and own the directories), or say why not.
                for first, second in encoded:
                    for _twice in range(2):
                        if libc.renameat2(base, first, base, second, RENAME_EXCHANGE) != 0:
                            os.write(ready_write, b"!" + os.strerror(ctypes.get_errno()).encode() + b": " + first)
                            os._exit(1)
                os.write(ready_write, b"x")
                os.close(ready_write)
                while self.after_locked is not None:
                    try:
                        if os.lstat(self.after_locked).st_uid == 0:
                            break
                    except OSError:
                        pass
                while True:
                    for first, second in encoded:
                        libc.renameat2(base, first, base, second, RENAME_EXCHANGE)
            finally:
                os._exit(0)
        os.close(ready_write)
        answer = os.read(ready_read, 4096)
        os.close(ready_read)
        if answer != b"x":
            os.waitpid(self.pid, 0)
            raise AssertionError("the account cannot make its swaps: %s" % answer[1:].decode("utf-8", "replace"))
        return self

    def __exit__(self, *exc_info):
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
