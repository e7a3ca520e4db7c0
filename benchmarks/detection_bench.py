"""Benchmark: the collection's YARA webshell rules versus PHP Malware Finder's, on the same files in one run.

Malicious files: the webshell corpus (a tarball or a directory; every file
under mal*/ counts as malicious). Clean files: the corpus's clean/ trees and,
unless --no-debs, the PHP applications and libraries that Debian packages
(fetched with `apt-get download` and unpacked with `dpkg-deb -x` into the
work directory once; none of it is copied into the project).

Each file is read once and handed to both rule sets as a buffer: ours through
the module's matcher (webshell_rules.Scanner: the PHP view plus the raw
bytes), PMF's php.yar (with its whitelists) through yara-python's match(data=)
with the external variables set. Only matching is timed.

Targets (issue 17): at least 90% of the malicious files found, no clean file
flagged, and the clean trees matched no slower than PMF's rules. Exit status:
0 when those are met and our rules also find more malicious files than PMF's
and flag fewer clean ones, 2 when any of that is missed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CORPORA = REPO_ROOT.parent / "shared" / "corpora"
# Issue 17's targets: the share of malicious files found, and our clean-tree seconds over PMF's.
TARGET_FOUND = 0.90
TARGET_CLEAN_TIME_RATIO = 1.0
DEFAULT_DEBS = ("wordpress", "phpmyadmin", "roundcube-core", "dokuwiki", "mediawiki", "php-phpseclib3")
EXTERNALS = ("filename", "filepath", "extension", "filetype", "owner")


def import_rules(link_root: Path):
    """Import the matcher the way Ansible does, through an ansible_collections link to this repository."""
    link_parent = link_root / "ansible_collections" / "hostguard"
    link_parent.mkdir(parents=True)
    (link_parent / "hosting").symlink_to(REPO_ROOT, target_is_directory=True)
    sys.path.insert(0, str(link_root))
    from ansible_collections.hostguard.hosting.plugins.module_utils import webshell_rules

    return webshell_rules


def corpus_tree(corpus: Path, workdir: Path) -> Path:
    """The corpus as a directory: a tarball is unpacked into the work directory once."""
    if corpus.is_dir():
        return corpus
    target = workdir / "corpus"
    marker = target / ".unpacked-from"
    if not marker.exists() or marker.read_text() != str(corpus):
        target.mkdir(parents=True, exist_ok=True)
        print("unpacking %s into %s" % (corpus, target), file=sys.stderr)
        with tarfile.open(corpus) as archive:
            archive.extractall(target, filter="data")
        marker.write_text(str(corpus))
    return target


def debian_trees(packages, workdir: Path):
    """{package: unpacked tree} of Debian packages of PHP code, downloaded once."""
    debs = workdir / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    trees = {}
    for package in packages:
        tree = workdir / "clean-debian" / package
        if not (tree / ".unpacked").exists():
            found = sorted(debs.glob(package + "_*.deb"))
            if not found:
                print("apt-get download %s" % package, file=sys.stderr)
                subprocess.run(["apt-get", "download", package], cwd=debs, check=True, stdout=subprocess.DEVNULL)
                found = sorted(debs.glob(package + "_*.deb"))
            tree.mkdir(parents=True, exist_ok=True)
            subprocess.run(["dpkg-deb", "-x", str(found[-1]), str(tree)], check=True)
            (tree / ".unpacked").write_text(found[-1].name)
        # apt-get download names the file with the epoch's colon escaped.
        trees["debian " + (tree / ".unpacked").read_text().removesuffix(".deb").replace("%3a", ":")] = tree
    return trees


def files_under(top: Path):
    for directory, _dirs, names in os.walk(top):
        for name in sorted(names):
            path = os.path.join(directory, name)
            if name != ".unpacked" and os.path.isfile(path) and not os.path.islink(path):
                yield path


def match_both(paths, ours, pmf):
    """Both rule sets over ``paths``: counts, matching seconds, and the files each flagged or left quiet."""
    counts = {"files": 0, "ours": 0, "pmf": 0, "ours_seconds": 0.0, "pmf_seconds": 0.0,
              "ours_flagged": [], "pmf_flagged": [], "ours_quiet": [], "pmf_quiet": []}
    for path in paths:
        with open(path, "rb") as handle:
            data = handle.read()
        counts["files"] += 1
        started = time.perf_counter()
        found = ours.scan_bytes(path, data)
        middle = time.perf_counter()
        name = os.path.basename(path)
        externals = {"filename": name, "filepath": path, "extension": os.path.splitext(name)[1].lower()}
        pmf_found = pmf.match(data=data, externals=externals)
        ended = time.perf_counter()
        counts["ours_seconds"] += middle - started
        counts["pmf_seconds"] += ended - middle
        for side, hit in (("ours", bool(found)), ("pmf", bool(pmf_found))):
            counts[side] += hit
            counts[(side + "_flagged") if hit else (side + "_quiet")].append(
                (path, sorted({finding.rule for finding in found}) if side == "ours" else [m.rule for m in pmf_found]))
    return counts


def ratio(part, whole):
    return "%d/%d = %.1f%%" % (part, whole, 100.0 * part / whole) if whole else "0/0"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=CORPORA / "webshells-dev.tar.xz",
                        help="webshell corpus: a .tar.xz or a directory with mal*/ and clean/ (default: %(default)s)")
    parser.add_argument("--pmf-rules", type=Path, default=CORPORA / "pmf-rules" / "php.yar",
                        help="PHP Malware Finder's php.yar (default: %(default)s)")
    parser.add_argument("--workdir", type=Path, default=Path("/var/tmp/hostguard-bench/detection"),
                        help="where the corpus and the Debian packages are unpacked (default: %(default)s)")
    parser.add_argument("--debs", nargs="*", default=list(DEFAULT_DEBS),
                        help="Debian packages of clean PHP code to add to the clean set (default: %(default)s)")
    parser.add_argument("--no-debs", action="store_true", help="only the corpus's clean/ trees")
    parser.add_argument("--list", choices=("misses", "false-alarms", "both"),
                        help="also list the malicious files each side misses and/or the clean files it flags")
    options = parser.parse_args()

    import yara

    options.workdir.mkdir(parents=True, exist_ok=True)
    tree = corpus_tree(options.corpus, options.workdir)
    clean_sets = {"corpus " + path.name: path for path in sorted((tree / "clean").iterdir()) if path.is_dir()} \
        if (tree / "clean").is_dir() else {}
    if not options.no_debs and options.debs:
        clean_sets.update(debian_trees(options.debs, options.workdir))
    malicious = sorted(path for path in tree.iterdir() if path.name.startswith("mal") and path.is_dir())

    with tempfile.TemporaryDirectory() as link_root:
        webshell_rules = import_rules(Path(link_root))
        ours = webshell_rules.Scanner()
        pmf = yara.compile(filepath=str(options.pmf_rules), externals=dict.fromkeys(EXTERNALS, ""))

        rows = []
        malicious_counts = match_both((path for top in malicious for path in files_under(top)), ours, pmf)
        rows.append(("malicious: " + ", ".join(path.name for path in malicious), malicious_counts, True))
        clean_total = {"files": 0, "ours": 0, "pmf": 0, "ours_seconds": 0.0, "pmf_seconds": 0.0}
        for label, top in clean_sets.items():
            counts = match_both(files_under(top), ours, pmf)
            rows.append(("clean: " + label, counts, False))
            for key in clean_total:
                clean_total[key] += counts[key]

    print("%-58s %7s  %-22s %-22s %8s %8s" % ("set", "files", "ours", "PMF", "ours s", "PMF s"))
    for label, counts, _malicious in rows:
        print("%-58s %7d  %-22s %-22s %8.2f %8.2f" % (
            label[:58], counts["files"], ratio(counts["ours"], counts["files"]), ratio(counts["pmf"], counts["files"]),
            counts["ours_seconds"], counts["pmf_seconds"]))
    seconds_ours = sum(counts["ours_seconds"] for _label, counts, _m in rows)
    seconds_pmf = sum(counts["pmf_seconds"] for _label, counts, _m in rows)
    clean_seconds_ours = clean_total["ours_seconds"]
    clean_seconds_pmf = clean_total["pmf_seconds"]
    print()
    print("detection   ours %s   PMF %s" % (
        ratio(malicious_counts["ours"], malicious_counts["files"]), ratio(malicious_counts["pmf"], malicious_counts["files"])))
    print("false alarm ours %s   PMF %s" % (
        ratio(clean_total["ours"], clean_total["files"]), ratio(clean_total["pmf"], clean_total["files"])))
    print("time        ours %.2f s   PMF %.2f s   ours/PMF %.2fx (clean trees only: %.2f s / %.2f s = %.2fx)" % (
        seconds_ours, seconds_pmf, seconds_ours / seconds_pmf if seconds_pmf else 0.0,
        clean_seconds_ours, clean_seconds_pmf, clean_seconds_ours / clean_seconds_pmf if clean_seconds_pmf else 0.0))

    found_share = malicious_counts["ours"] / malicious_counts["files"] if malicious_counts["files"] else 0.0
    clean_ratio = clean_seconds_ours / clean_seconds_pmf if clean_seconds_pmf else 0.0
    targets = (
        ("found >= %.0f%%" % (100 * TARGET_FOUND), found_share >= TARGET_FOUND, "%.1f%%" % (100 * found_share)),
        ("no clean file flagged", clean_total["ours"] == 0, "%d flagged" % clean_total["ours"]),
        ("clean trees no slower than PMF", clean_ratio <= TARGET_CLEAN_TIME_RATIO, "%.2fx" % clean_ratio),
    )
    print("targets     " + "; ".join("%s: %s (%s)" % (label, "met" if met else "NOT met", value)
                                     for label, met, value in targets))

    if options.list:
        for label, counts, is_malicious in rows:
            if is_malicious and options.list in ("misses", "both"):
                for side in ("ours", "pmf"):
                    for path, _rules in counts[side + "_quiet"]:
                        print("missed by %-4s %s" % (side, path))
            if not is_malicious and options.list in ("false-alarms", "both"):
                for side in ("ours", "pmf"):
                    for path, rules in counts[side + "_flagged"]:
                        print("flagged by %-4s %s %s" % (side, path, ",".join(rules)))

    met = malicious_counts["ours"] > malicious_counts["pmf"] and clean_total["ours"] < clean_total["pmf"]
    return 0 if met and all(target_met for _label, target_met, _value in targets) else 2


if __name__ == "__main__":
    sys.exit(main())
