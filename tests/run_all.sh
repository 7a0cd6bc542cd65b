#!/usr/bin/env bash
# Runs every test program in $BUILD/tests and every tests/cli_*.sh script, sums
# their "N passed, M failed, K skipped" lines, and fails when any test failed or
# crashed, or (with CAFFEGRID_TESTS_SKIP_NONE=1, as CI runs it) when any was skipped.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export CAFFEGRID=$PWD/$BUILD/caffegrid BUILD
# The data the tests read: ../shared/data where it is beside the checkout (CI); otherwise
# the fixtures that ship in tests/fixtures and Debian's Fashion-MNIST, gathered in one
# folder laid out as ../shared/data is. Tests whose files are in neither skip.
if [ -z "${SHARED_DATA:-}" ]; then
  if [ -d ../shared/data ]; then
    SHARED_DATA=$(cd ../shared/data && pwd)
  else
    SHARED_DATA=$PWD/$BUILD/test-data
    rm -rf "$SHARED_DATA" && mkdir -p "$SHARED_DATA"
    for d in tests/fixtures/*/; do ln -s "$PWD/$d" "$SHARED_DATA/$(basename "$d")"; done
    fm=/usr/share/datasets/fashion-mnist
    [ -d $fm ] && ln -s $fm "$SHARED_DATA/fashion-mnist"
    echo "../shared/data is not beside this checkout: tests read tests/fixtures$([ -d $fm ] && echo " and $fm"), and those needing other files skip"
  fi
fi
export SHARED_DATA
passed=0 failed=0 skipped=0 broken=()
run_one() {
  local name=$1; shift
  local log; log=$(mktemp)
  local start=$SECONDS
  "$@" >"$log" 2>&1
  local rc=$?
  local line; line=$(grep -E '^[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$' "$log" | tail -n 1)
  if [ -n "$line" ]; then
    local p f k=0; p=${line%% passed*}; f=${line#*passed, }; f=${f%% failed*}
    [[ $line == *skipped ]] && { k=${line##*failed, }; k=${k%% skipped}; }
    passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + k))
    [ "$k" -gt 0 ] && grep -E '^(SKIP|SKIPPED) ' "$log" | sed 's/^/  /'
  fi
  if [ $rc -ne 0 ] || [ -z "$line" ]; then
    broken+=("$name"); cat "$log"
    [ -z "$line" ] && failed=$((failed + 1))
  fi
  printf '%-40s %s (%ds)\n' "$name" "${line:-no result, exit $rc}" $((SECONDS - start))
  rm -f "$log"
}
for t in "$BUILD"/tests/test_*; do
  [ -x "$t" ] || continue
  run_one "$(basename "$t")" "$t"
done
for s in tests/cli_*.sh; do
  [ -f "$s" ] || continue
  if [ "$BUILD" = build-san ] && [ "$(basename "$s")" = cli_portable.sh ]; then
    # about the default build's CPU baseline and build options, not memory errors; ASan's
    # shadow memory does not map under qemu-user
    echo "cli_portable.sh: not run in the sanitizer build (run by the normal build's pass)"
    continue
  fi
  run_one "$(basename "$s")" bash "$s"
done
# the Python API (python/), built from this tree, when python3 has what building and pytest need.
# Not in the sanitizer pass: its C paths are the library's, run there by the C tests, and
# numpy/Spark under preloaded ASan runtimes take CI's time without finding anything new.
if [ "$BUILD" = build-san ]; then
  echo "python_api: not run in the sanitizer build (run by the normal build's pass)"
elif python3 -c 'import numpy, pytest, setuptools' 2>/dev/null; then
  run_one python_api bash tests/python/run.sh
else
  echo "python_api: skipped (python3 lacks numpy, pytest or setuptools: pip install numpy pytest setuptools)"
  skipped=$((skipped + 1))
fi
[ ${#broken[@]} -eq 0 ] || echo "failing: ${broken[*]}"
if [ "${CAFFEGRID_TESTS_SKIP_NONE:-0}" = 1 ] && [ $skipped -gt 0 ]; then
  echo "CAFFEGRID_TESTS_SKIP_NONE=1: $skipped tests were skipped, and here every test must run"
  broken+=(skipped)
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ $failed -eq 0 ] && [ ${#broken[@]} -eq 0 ]
