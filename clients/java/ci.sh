#!/usr/bin/env bash
# CI for the Java client: `mvn package` generates the stubs from ../../proto (protoc and its gRPC
# plugin come from Maven Central), compiles, runs the JUnit tests against the real broker binary
# named by SWITCHYARD_BIN (required) and builds the jar. Then one line per passed test,
# "PASS Class.method", and the closing "java client tests: N passed, M failed". Needs only java 17+
# and mvn; Maven's cache is ~/.m2, filled from Maven Central on a fresh machine.
set -euo pipefail
# The tests run in this directory, so a path relative to the caller's is made absolute first.
source "$(dirname "${BASH_SOURCE[0]}")/../../.ci/switchyard-bin.sh"
cd "$(dirname "$0")"

for tool in java mvn; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "ci.sh: $tool not found: the Java client needs a JDK 17 or newer and Maven" >&2
    exit 1
  fi
done
echo "ci.sh: $(java -version 2>&1 | head -n 1); $(mvn -v 2>/dev/null | head -n 1)"

# Reports of an earlier run would be counted again (or stand in for tests that no longer ran).
rm -rf target/surefire-reports

echo "== mvn package"
status=0
mvn -B -ntp -Dstyle.color=never package </dev/null || status=$?
# Debian's Maven 3.8 writes a colour reset (ESC[0m) without a newline as it exits, whatever -B
# says: end that line, so each line below starts with what it says.
echo

java ci/SurefireSummary.java target/surefire-reports
exit "$status"
