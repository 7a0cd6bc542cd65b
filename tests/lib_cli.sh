# Helpers for the CLI test scripts (sourced): checks that count, and the closing
# "N passed, M failed" line that tests/run_all.sh sums.
CAFFEGRID=${CAFFEGRID:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/build/caffegrid}
SHARED_DATA=${SHARED_DATA:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/shared/data}
TESTS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cli_passed=0
cli_failed=0
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
report() {
  echo "$cli_passed passed, $cli_failed failed"
  [ $cli_failed -eq 0 ]
}
# mnist_test_lmdb DIR: converts MNIST t10k into DIR (once per test run)
make_mnist_test_lmdb() {
  "$CAFFEGRID" convert mnist "$SHARED_DATA/mnist/t10k-images-idx3-ubyte.gz" \
    "$SHARED_DATA/mnist/t10k-labels-idx1-ubyte.gz" "$1" 2>/dev/null
}
