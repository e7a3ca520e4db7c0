# Copyright: hostguard.hosting contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write a file so that readers see the old content or the new, never half of it.

A temporary file in the same directory, fsync, rename over the target, fsync the
directory; on any error the temporary file is removed and the target untouched.
"""

from __future__ import annotations

import contextlib
import os


@contextlib.contextmanager
def atomic_file(path, mode=0o600, suffix=""):
    """Yield a binary stream; on a clean exit its content replaces `path` with `mode`."""
    # Imported here: tempfile brings shutil, random, bz2 and lzma, a megabyte that readers of files never need.
    import tempfile  # pylint: disable=import-outside-toplevel
    directory = os.path.dirname(path) or "."
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".tmp-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as stream:
            yield stream
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    fsync_directory(directory)


def write_atomically(path, data, mode=0o600):
    with atomic_file(path, mode) as stream:
        stream.write(data)


def fsync_directory(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
