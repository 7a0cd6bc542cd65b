# Helpers for the CLI test scripts (sourced): checks that count, skips that are said
# and counted, and the closing "N passed, M failed, K skipped" line that tests/run_all.sh sums.
CAFFEGRID=${CAFFEGRID:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build/caffegrid}
SHARED_DATA=${SHARED_DATA:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/shared/data}
TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cli_passed=0
cli_failed=0
cli_skipped=0
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

pass() { cli_passed=$((cli_passed + 1)); }
fail() { cli_failed=$((cli_failed + 1)); echo "FAIL: $*" >&2; }
check() { # check DESCRIPTION COMMAND...
  local what=$1; shift
  if "$@"; then pass; else fail "$what"; fi
}
# expect_error DESCRIPTION EXPECTED_SUBSTRING COMMAND...: non-zero exit, no crash, message present
expect_error() {
  local what=$1 expected=$2; shift 2
  local out rc
  out=$("$@" 2>&1); rc=$?
  if [ $rc -eq 0 ]; then fail "$what: exit 0, expected an error"; return; fi
  if [ $rc -ge 128 ]; then fail "$what: crashed (exit $rc): $out"; return; fi
  if [[ "$out" != *"$expected"* ]]; then fail "$what: message lacks '$expected': $out"; return; fi
  pass
}
# skip N WHY: N tests cannot run here; says why and counts them
skip() {
  cli_skipped=$((cli_skipped + $1)); shift
  echo "SKIP $(basename "$0"): $*"
}
# have_data REL... [-- N]: true when every file named (relative to $SHARED_DATA) is here;
# otherwise skips the N tests (default 1) that need them, naming the first missing one
have_data() {
  local n=1 rel files=()
  while [ $# -gt 0 ]; do
    if [ "$1" = -- ]; then n=$2; break; fi
    files+=("$1"); shift
  done
  for rel in "${files[@]}"; do
    if [ ! -e "$SHARED_DATA/$rel" ]; then
      skip "$n" "needs $SHARED_DATA/$rel, which is not here (../shared/data is beside this project's CI only)"
      return 1
    fi
  done
}
report() {
  echo "$cli_passed passed, $cli_failed failed, $cli_skipped skipped"
  [ $cli_failed -eq 0 ]
}
# mnist_test_lmdb DIR: converts MNIST t10k into DIR (once per test run)
make_mnist_test_lmdb() {
  "$CAFFEGRID" convert mnist "$SHARED_DATA/mnist/t10k-images-idx3-ubyte.gz" \
    "$SHARED_DATA/mnist/t10k-labels-idx1-ubyte.gz" "$1" 2>/dev/null
}
