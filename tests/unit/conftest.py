"""Make the collection importable as ``ansible_collections.hostguard.hosting``.

Unit tests import the cores the way Ansible does at run time. The repository
root is the collection root, so a link under ``.build/`` gives it the
namespace path without copying anything.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
LINK_PARENT = REPO_ROOT / ".build" / "unit" / "ansible_collections" / "hostguard"
LINK = LINK_PARENT / "hosting"

LINK_PARENT.mkdir(parents=True, exist_ok=True)
if not LINK.is_symlink():
    LINK.symlink_to(REPO_ROOT, target_is_directory=True)
sys.path.insert(0, str(LINK_PARENT.parent.parent))
# Test helpers shared with the molecule scenarios and benchmarks (tests/tree_snapshot.py).
sys.path.insert(0, str(REPO_ROOT / "tests"))
