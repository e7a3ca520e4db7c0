#!/usr/bin/env bash
# ansible-test sanity on a copy of the collection placed at
# ansible_collections/hostguard/hosting (ansible-test requires that path).
# The copy holds what git would submit: tracked files and untracked ones it does not ignore.
set -euo pipefail
cd "$(dirname "$0")/.." || exit 2
dest=.build/sanity/ansible_collections/hostguard/hosting
rm -rf .build/sanity
mkdir -p "$dest"
git ls-files -z --cached --others --exclude-standard | rsync -a --from0 --files-from=- . "$dest/"

# ansible-test's virtualenvs bootstrap pip with a script from a host these
# machines cannot reach: give it a local stand-in under the name it looks for.
pip_version=$(python -c 'from ansible_test._internal.python_requirements import get_venv_packages as g
from types import SimpleNamespace as N; print(g(N(version="3"))["pip"])')
cache=~/.ansible/test/cache/get_pip_${pip_version//./_}.py
cmp -s scripts/ansible-test-get-pip.py "$cache" || install -D -m 0644 scripts/ansible-test-get-pip.py "$cache"

cd "$dest"
# ansible-test reads the file list from git when there is a repository.
git init -q && git add -A
ansible-test sanity --venv --python "$(python -c 'import sys; print("%d.%d" % sys.version_info[:2])')" --color no "$@"
