"""What a restore must put back, for every entry under a directory: the one snapshot the quarantine tests share.

Used by the unit tests (imported), the quarantine benchmark (imported) and the quarantine molecule scenario
(copied to the lab host and run there). Standard library only, so it runs with a host's python3.

For each entry: type, mode, numeric uid and gid, size, mtime and inode, the sha256 of regular files (read
with O_NOATIME, so taking a snapshot does not change one), the target of symlinks; with `detail=True` also
atime, link count, xattrs and the attribute letters lsattr shows. Never follows a symlink.
Keys are paths relative to the root, of the root's type (str or bytes); the root itself is ".".

    python3 tree_snapshot.py ROOT [OUTPUT]    # JSON; OUTPUT omitted or "-": standard output
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys


def describe(path, detail=False):
    info = os.lstat(path)
    described = {"type": stat.S_IFMT(info.st_mode), "mode": stat.S_IMODE(info.st_mode), "uid": info.st_uid,
                 "gid": info.st_gid, "size": info.st_size, "mtime_ns": info.st_mtime_ns, "inode": info.st_ino}
    if detail:
        described.update(atime_ns=info.st_atime_ns, nlink=info.st_nlink)
    if stat.S_ISLNK(info.st_mode):
        described["target"] = os.readlink(path)
        return described
    if detail:
        described["xattrs"] = {name: os.getxattr(path, name) for name in os.listxattr(path)}
        described["attributes"] = lsattr(path)
    if stat.S_ISREG(info.st_mode):
        digest = hashlib.sha256()
        with os.fdopen(os.open(path, os.O_RDONLY | os.O_NOATIME), "rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
        described["sha256"] = digest.hexdigest()
    return described


def snapshot(root, detail=False):
    state = {os.curdir if isinstance(root, str) else os.curdir.encode(): describe(root, detail)}
    for directory, subdirectories, files in os.walk(root):
        for name in subdirectories + files:
            path = os.path.join(directory, name)
            state[os.path.relpath(path, root)] = describe(path, detail)
    return state


def lsattr(path):
    """The attribute letters lsattr shows (chattr's own view, independent of the code under test)."""
    listing = subprocess.run(["lsattr", "-d", os.fsencode(path)], capture_output=True, check=True)
    return listing.stdout.split()[0].decode("ascii")


def main(argv):
    text = json.dumps(snapshot(os.fsdecode(argv[1])), indent=1, sort_keys=True) + "\n"
    if len(argv) < 3 or argv[2] == "-":
        sys.stdout.write(text)
        return
    temporary = argv[2] + ".tmp"
    with open(temporary, "w") as stream:
        stream.write(text)
    os.rename(temporary, argv[2])


if __name__ == "__main__":
    main(sys.argv)
