#!/usr/bin/env bash
# Builds the libFuzzer targets (make fuzz) and runs each for SECONDS (default 20),
# one at a time, starting from the seeds in fuzz/corpus/<target>/ plus what earlier
# runs found (build-fuzz/corpus/<target>/). Fails on the first crash, leak, timeout
# or out-of-memory; the input that did it is left in build-fuzz/crashes/.
#   fuzz/run.sh [SECONDS] [TARGET...]   e.g. fuzz/run.sh 600 seqfile image
#   fuzz/run.sh --valgrind              5 LeNet iterations under valgrind (docs/fuzzing.md)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--valgrind" ]; then
  exec bash fuzz/valgrind_train.sh
fi
seconds=${1:-20}
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for f in fuzz/fuzz_*.c; do t=${f#fuzz/fuzz_}; targets+=("${t%.c}"); done
fi
make -s fuzz -j"${JOBS:-2}"
mkdir -p build-fuzz/crashes
failed=()
for t in "${targets[@]}"; do
  bin=build-fuzz/fuzz_$t
  work=build-fuzz/corpus/$t
  mkdir -p "$work"
  log=build-fuzz/fuzz_$t.log
  start=$SECONDS
  # -rss_limit_mb bounds memory; -timeout calls a single input taking 10 s a hang
  if "$bin" "$work" "fuzz/corpus/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2560 \
    -max_len=65536 -print_final_stats=1 -artifact_prefix="build-fuzz/crashes/$t-" >"$log" 2>&1; then
    status=ok
  else
    status=FAILED
    failed+=("$t")
    grep -E "ERROR|SUMMARY|runtime error|Test unit written" "$log" | head -20 >&2 || true
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  printf '%-14s %-6s %4ds  %s runs  corpus %s files\n' "$t" "$status" $((SECONDS - start)) "${runs:-?}" \
    "$(find "$work" -type f | wc -l)"
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found crashes in: ${failed[*]} (inputs in build-fuzz/crashes/, logs in build-fuzz/fuzz_<target>.log)" >&2
  exit 1
fi
