"""Print or write what a restore must put back: every entry under a directory, as JSON.

Used by the quarantine scenario on the lab host, before the quarantine (by
converge) and after the restore (by the verifier). For each entry: type,
numeric uid and gid, mode, size, mtime in ns, sha256 of regular files, symlink
target. Reads as root; never follows a symlink.

    python3 snapshot.py ROOT [OUTPUT]    # OUTPUT omitted or "-": standard output
"""

import hashlib
import json
import os
import stat
import sys


def describe(path):
    info = os.lstat(path)
    entry = {"type": stat.S_IFMT(info.st_mode), "uid": info.st_uid, "gid": info.st_gid,
             "mode": "%04o" % stat.S_IMODE(info.st_mode), "size": info.st_size, "mtime_ns": info.st_mtime_ns}
    if stat.S_ISREG(info.st_mode):
        digest = hashlib.sha256()
        with open(path, "rb") as stream:
            for chunk in iter(lambda: stream.read(1 << 20), b""):
                digest.update(chunk)
        entry["sha256"] = digest.hexdigest()
    elif stat.S_ISLNK(info.st_mode):
        entry["target"] = os.readlink(path)
    return entry


def snapshot(root):
    entries = {".": describe(root)}
    for directory, subdirectories, files in os.walk(root):
        for name in subdirectories + files:
            path = os.path.join(directory, name)
            entries[os.path.relpath(path, root)] = describe(path)
    return entries


def main(argv):
    text = json.dumps(snapshot(argv[1]), indent=1, sort_keys=True) + "\n"
    if len(argv) < 3 or argv[2] == "-":
        sys.stdout.write(text)
        return
    temporary = argv[2] + ".tmp"
    with open(temporary, "w") as stream:
        stream.write(text)
    os.rename(temporary, argv[2])


if __name__ == "__main__":
    main(sys.argv)
