#!/usr/bin/env bash
# Runs a short training under valgrind's memcheck: 5 LeNet iterations on DummyData
# (examples/nets/lenet_time.prototxt at batch 8: memcheck runs ~50x slower) with a
# snapshot at the end, one thread, on the im2col + OpenBLAS paths: oneDNN's JIT
# kernels read up to a vector past buffers oneDNN allocated itself (memcheck flags
# ~250 contexts, all in JIT code without symbols, so no suppression can single them
# out); our side of the oneDNN calls runs under ASan in CI. Fails
# on any memory error or definite leak. Needs `valgrind` (apt-get install valgrind).
#   fuzz/valgrind_train.sh [CAFFEGRID]   (default build/caffegrid; run `make` first)
set -euo pipefail
cd "$(dirname "$0")/.."
cg=${1:-build/caffegrid}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed "s/dim: 64/dim: 8/g" examples/nets/lenet_time.prototxt > "$work/lenet.prototxt"
cat > "$work/solver.prototxt" <<SOLVER
net: "$work/lenet.prototxt"
base_lr: 0.01
momentum: 0.9
lr_policy: "fixed"
max_iter: 5
display: 1
snapshot_prefix: "$work/lenet"
SOLVER
rc=0
OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 CAFFEGRID_DATA_THREADS=0 CAFFEGRID_CONV=gemm CAFFEGRID_GEMM=openblas \
  valgrind --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
  --log-file="$work/valgrind.log" "$cg" train -solver "$work/solver.prototxt" >"$work/train.log" 2>&1 || rc=$?
grep -E "ERROR SUMMARY|definitely lost|indirectly lost|in use at exit" "$work/valgrind.log" || true
grep -E "Iteration 5|Optimization Done" "$work/train.log" || true
test -s "$work/lenet_iter_5.caffemodel" || { echo "valgrind_train: no snapshot written" >&2; exit 1; }
[ "$rc" -eq 0 ] || { echo "valgrind_train: valgrind reported errors (exit $rc); logs follow" >&2; cat "$work/train.log" "$work/valgrind.log" >&2; exit 1; }
echo "valgrind_train: clean"
