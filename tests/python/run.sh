#!/usr/bin/env bash
# The Python API's tests: builds the package from this tree into $BUILD/python
# (linked with $BUILD/libcaffegrid.a), runs pytest over tests/python, and prints
# the "N passed, M failed, K skipped" line tests/run_all.sh sums.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
case $BUILD in /*) build_dir=$BUILD ;; *) build_dir=$PWD/$BUILD ;; esac
out=$build_dir/python
san=0 preload=${LD_PRELOAD:-} asan_options=${ASAN_OPTIONS:-}
if nm "$build_dir/libcaffegrid.a" 2>/dev/null | grep -q __asan_report; then
  # `make SAN=1`: the extension gets the sanitizers too, and Python must load their runtimes first; leak
  # detection stays off (the interpreter keeps objects alive at exit on purpose)
  san=1
  preload="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)"
  asan_options="${asan_options:+$asan_options:}detect_leaks=0"
fi
mkdir -p "$out"
if ! (cd python && CAFFEGRID_BUILD=$build_dir CAFFEGRID_SAN=$san python3 setup.py -q build \
      --build-base "$out-build" --build-lib "$out") >"$out/build.log" 2>&1; then
  cat "$out/build.log"
  echo "0 passed, 1 failed, 0 skipped"
  exit 1
fi
log=$(mktemp)
trap 'rm -f "$log"' EXIT
LD_PRELOAD=$preload ASAN_OPTIONS=$asan_options PYTHONPATH=$out${PYTHONPATH:+:$PYTHONPATH} \
  python3 -m pytest -q -rs -p no:cacheprovider tests/python 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}
summary=$(tail -n 1 "$log")
count() { grep -oE "[0-9]+ $1" <<<"$summary" | grep -oE '[0-9]+' || echo 0; }
passed=$(count passed)
failed=$(($(count failed) + $(count error)))
[ "$rc" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1 # pytest itself failed (nothing collected, a crash)
echo "$passed passed, $failed failed, $(count skipped) skipped"
exit "$rc"
