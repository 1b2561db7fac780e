# Sourced by each suite's ci.sh (clients/*/ci.sh, tests/browser/ci.sh) before it changes directory:
# SWITCHYARD_BIN, the server binary the suite runs against, made absolute (relative to where the
# script was called from) and checked to be executable, or the script stops with a line saying why.
# With a default given as $1, an unset SWITCHYARD_BIN takes it.
if [[ -z ${SWITCHYARD_BIN:-} && -n ${1:-} ]]; then
  SWITCHYARD_BIN=$1
fi
if [[ -z ${SWITCHYARD_BIN:-} ]]; then
  echo "ci.sh: set SWITCHYARD_BIN to the switchyard server binary (e.g. target/debug/switchyard)" >&2
  exit 1
fi
SWITCHYARD_BIN=$(realpath -m "$SWITCHYARD_BIN")
if [[ ! -x $SWITCHYARD_BIN ]]; then
  echo "ci.sh: SWITCHYARD_BIN=$SWITCHYARD_BIN is not an executable file" >&2
  exit 1
fi
export SWITCHYARD_BIN
