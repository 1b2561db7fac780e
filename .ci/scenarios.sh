#!/usr/bin/env bash
# Checks that every client passed a test of every scenario in clients/scenarios.txt, reading each
# language's test log: `.ci/scenarios.sh rust=LOG go=LOG ...`. Each language names a scenario's
# test after its id in its own way (the list's header says how); a name that is not in the list is
# an error too, so a typo cannot pass for a scenario. Prints one line per language.
set -euo pipefail
list="$(dirname "${BASH_SOURCE[0]}")/../clients/scenarios.txt"
mapfile -t ids < <(grep -v '^#' "$list" | awk 'NF { print $1 }' | sort)

# The ids of the scenario tests a log shows passing, one per line.
passed_in() {
  local language=$1 log=$2 pattern
  case $language in
    rust) pattern='^test scenario_\K[a-z_]+(?= \.\.\. ok$)' ;;
    go) pattern='^--- PASS: TestScenario_\K[a-z_]+' ;;
    python) pattern='(PASSED \S*::test_scenario_\K[a-z_]+)|(::test_scenario_\K[a-z_]+(?= PASSED))' ;;
    typescript) pattern='^\s*ok \d+ - scenario_\K[a-z_]+$' ;;
    java) pattern='^PASS ScenariosTest\.scenario_\K[a-z_]+$' ;;
    *)
      echo "scenarios.sh: no rule for the language $language" >&2
      return 1
      ;;
  esac
  grep -oP "$pattern" "$log" | sort -u || true
}

status=0
for pair in "$@"; do
  language=${pair%%=*}
  log=${pair#*=}
  passed=$(passed_in "$language" "$log")
  missing=$(comm -23 <(printf '%s\n' "${ids[@]}") <(printf '%s\n' "$passed" | sed '/^$/d'))
  unknown=$(comm -13 <(printf '%s\n' "${ids[@]}") <(printf '%s\n' "$passed" | sed '/^$/d'))
  count=$(comm -12 <(printf '%s\n' "${ids[@]}") <(printf '%s\n' "$passed" | sed '/^$/d') | wc -l)
  if [[ -z $missing && -z $unknown ]]; then
    echo "scenarios, $language: all ${#ids[@]} passed"
  else
    status=1
    echo "scenarios, $language: $count of ${#ids[@]} passed${missing:+; not passed: $(echo $missing)}${unknown:+; not in clients/scenarios.txt: $(echo $unknown)}"
  fi
done
exit "$status"
