#!/usr/bin/env bash
# `make test`: every check of the collection, each stage run even when an
# earlier one failed, then one summary. Exits non-zero when any stage failed.
#   scripts/test.sh [STAGE...]   stages: lint sanity unit molecule (default: all)
# MOLECULE_SCENARIOS="baseline firewall" limits the molecule stage; MOLECULE_JOBS=N runs N
# scenarios side by side (default 3).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2
ROOT=$PWD

scripts/setup.sh || exit $?
# shellcheck disable=SC1091
source .venv/bin/activate
export ANSIBLE_COLLECTIONS_PATH="$ROOT/.build/collections:${ANSIBLE_COLLECTIONS_PATH:-$HOME/.ansible/collections}"
export PYTHONDONTWRITEBYTECODE=1 ANSIBLE_FORCE_COLOR=0 PY_COLORS=0 NO_COLOR=1

# The labs of this run leave nothing behind, also when a stage fails or the run
# is interrupted. Other labs on the machine (a `make demo` fleet) are left alone.
STARTED_LABS=()
cleanup() {
  local lab
  # Scenarios still running side by side (an interrupted run) stop before their labs go.
  # shellcheck disable=SC2046
  kill $(jobs -p) 2>/dev/null && wait
  for lab in "${STARTED_LABS[@]}"; do python tests/lab/lab.py down --name "$lab" >/dev/null 2>&1 || true; done
}
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
  yamllint --strict . && ansible-lint --profile production --offline && python scripts/role_docs.py --check
}

unit() {
  python -m pytest -p no:cacheprovider -q tests/unit tests/lab
}

molecule_scenario() {
  local scenario=$1
  # Forget molecule's record of an earlier run in a checkout at this path (say one that was killed):
  # it would skip create and converge against a host that is gone.
  molecule reset -s "$scenario" >/dev/null 2>&1 || true
  molecule test -s "$scenario"
}

# The scenarios by the seconds each took in a full run (molecule/durations.txt), longest first:
# side by side, a long scenario started last would run alone at the end and lengthen the whole run.
# A scenario the file does not list yet counts as the longest. Each run writes what it measured to
# .build/molecule-durations.txt, to copy over molecule/durations.txt when the times have moved.
longest_first() {
  [ -f molecule/durations.txt ] || { printf '%s\n' "$@"; return; }
  printf '%s\n' "$@" | awk 'NR == FNR { if ($1 !~ /^#/ && NF == 2) seconds[$1] = $2; next }
                              { print (($1 in seconds) ? seconds[$1] : 999999), $1 }' molecule/durations.txt - \
    | sort -k1,1nr -k2,2 | cut -d' ' -f2
}

molecule_scenarios() {
  # molecule/default is only the stub molecule reads first (see its molecule.yml).
  local scenarios=${MOLECULE_SCENARIOS:-$(for f in molecule/*/molecule.yml; do basename "$(dirname "$f")"; done | grep -vx default)}
  # shellcheck disable=SC2086  # one word a scenario
  scenarios=$(longest_first $scenarios)
  # Scenarios spend much of their time waiting (bans, alerts, daemons restarting), each in its own lab:
  # MOLECULE_JOBS of them run side by side (3 by default, which the timing-bound scenarios pass even on a machine
  # loaded several times over; 1 runs them one after another, printing as they go).
  local jobs=${MOLECULE_JOBS:-3}
  local scenario
  for scenario in $scenarios; do
    # The name tests/molecule/create.yml gives the scenario's lab.
    STARTED_LABS+=("molecule-$scenario-$(printf %s "$ROOT" | sha1sum | cut -c1-6)")
  done
  if [ "$jobs" -le 1 ]; then
    for scenario in $scenarios; do stage "molecule $scenario" molecule_scenario "$scenario"; done
    return
  fi
  # Each scenario's output goes to its own log, printed whole when it ends; the summary keeps their order.
  # One directory per run: two runs in one checkout (say `make molecule` twice) keep their own logs.
  local logs=.build/molecule-logs/run-$$
  rm -rf "$logs" && mkdir -p "$logs"
  local running=0
  for scenario in $scenarios; do
    if [ "$running" -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
    (
      started=$SECONDS
      if molecule_scenario "$scenario" >"$logs/$scenario.log" 2>&1; then result=ok; else result=FAILED; fi
      echo "$result $((SECONDS - started))" >"$logs/$scenario.result"
      # One log printed at a time, whole.
      # shellcheck disable=SC2016
      flock "$logs/.print" sh -c 'printf "\n=== molecule %s: %s after %ss\n" "$1" "$2" "$3"; cat "$4"' \
        _ "$scenario" "$result" "$((SECONDS - started))" "$logs/$scenario.log"
    ) &
    running=$((running + 1))
  done
  wait
  local result seconds
  {
    echo "# Seconds each molecule scenario took in a full \`make test\` (MOLECULE_JOBS=$jobs); scripts/test.sh starts the"
    echo "# longest first. Written by a run to .build/molecule-durations.txt; $(date -u +%Y-%m-%d)."
    for scenario in $scenarios; do
      read -r result seconds <"$logs/$scenario.result" 2>/dev/null && echo "$scenario $seconds"
    done
  } >.build/molecule-durations.txt
  for scenario in $scenarios; do
    read -r result seconds <"$logs/$scenario.result" 2>/dev/null || { result=FAILED; seconds=0; }
    SUMMARY+=("$(printf '%-28s %-7s %4ds' "molecule $scenario" "$result" "$seconds")")
    if [ "$result" = ok ]; then PASSED=$((PASSED + 1)); else FAILED=$((FAILED + 1)); fi
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

if [ ${#STARTED_LABS[@]} -gt 0 ]; then
  # Molecule's destroy must have removed each lab; what is still there is a defect.
  leftovers=$(for lab in "${STARTED_LABS[@]}"; do
                [ -e "/run/hostguard-lab/$lab" ] && echo "lab $lab still up"; done
              python tests/lab/lab.py sweep)
  cleanup
fi
if [ -n "${leftovers:-}" ]; then
  SUMMARY+=("$(printf '%-28s FAILED' 'lab left nothing behind')")
  FAILED=$((FAILED + 1))
  echo "$leftovers"
fi

echo
echo "=== make test summary"
printf '%s\n' "${SUMMARY[@]}"
echo "stages: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
