#!/usr/bin/env bash
# `make test`: every check of the collection, each stage run even when an
# earlier one failed, then one summary. Exits non-zero when any stage failed.
#   scripts/test.sh [STAGE...]   stages: lint sanity unit molecule (default: all)
# MOLECULE_SCENARIOS="baseline firewall" limits the molecule stage.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD

scripts/setup.sh || exit $?
# shellcheck disable=SC1091
source .venv/bin/activate
export ANSIBLE_COLLECTIONS_PATH="$ROOT/.build/collections:${ANSIBLE_COLLECTIONS_PATH:-$HOME/.ansible/collections}"
export PYTHONDONTWRITEBYTECODE=1 ANSIBLE_FORCE_COLOR=0 PY_COLORS=0 NO_COLOR=1

# The lab leaves nothing behind, also when a stage fails or the run is interrupted.
cleanup() { python tests/lab/lab.py down --all >/dev/null 2>&1 || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM

declare -a SUMMARY=()
FAILED=0
PASSED=0

stage() {
  local name=$1; shift
  local started=$SECONDS
  echo
  echo "=== $name: $*"
  if "$@"; then
    SUMMARY+=("$(printf '%-28s ok      %4ds' "$name" $((SECONDS - started)))")
    PASSED=$((PASSED + 1))
  else
    SUMMARY+=("$(printf '%-28s FAILED  %4ds' "$name" $((SECONDS - started)))")
    FAILED=$((FAILED + 1))
  fi
}

lint() {
  yamllint --strict . && ansible-lint --profile production --offline
}

unit() {
  python -m pytest -p no:cacheprovider -q tests/unit tests/lab/test_lab.py
}

molecule_scenarios() {
  local scenarios=${MOLECULE_SCENARIOS:-$(for f in molecule/*/molecule.yml; do basename "$(dirname "$f")"; done)}
  local scenario
  for scenario in $scenarios; do
    stage "molecule $scenario" molecule test -s "$scenario"
  done
}

stages=("$@")
[ ${#stages[@]} -gt 0 ] || stages=(lint sanity unit molecule)
for s in "${stages[@]}"; do
  case $s in
    lint) stage lint lint ;;
    sanity) stage "ansible-test sanity" scripts/sanity.sh ;;
    unit) stage "unit tests" unit ;;
    molecule) molecule_scenarios ;;
    *) echo "test.sh: unknown stage '$s' (lint sanity unit molecule)" >&2; exit 2 ;;
  esac
done

cleanup
leftovers=$( { ip netns list | grep -E '^hg[0-9]+-'; grep -F /var/lib/hostguard-lab/run /proc/mounts; pgrep -af 'systemd-nspawn.*hostguard-lab'; } 2>/dev/null || true)
if [ -n "$leftovers" ]; then
  SUMMARY+=("$(printf '%-28s FAILED' 'lab left nothing behind')")
  FAILED=$((FAILED + 1))
  echo "$leftovers"
fi

echo
echo "=== make test summary"
printf '%s\n' "${SUMMARY[@]}"
echo "stages: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
