#!/usr/bin/env bash
# Training end to end through the CLI: LeNet on Fashion-MNIST reaches Caffe's
# accuracy after 500 iterations; resume is exact (200 straight == 100 + resume 100,
# bit for bit); a real BVLC Caffe snapshot resumes; CaffeOnSpark's flags work.
source "$(dirname "$0")/lib_cli.sh"
FM=$SHARED_DATA/fashion-mnist
ex=$(cd "$TESTS_DIR/../examples/fashion_mnist" && pwd)

# 1. 500 iterations of BVLC's lenet_solver on Fashion-MNIST: >= 0.78 (Caffe: about 0.82)
out=$(CAFFEGRID=$CAFFEGRID bash "$ex/train.sh" 500 "$WORK/fm" 2>&1)
acc=$(echo "$out" | sed -n 's/^Fashion-MNIST test accuracy after 500 iterations: \([0-9.]*\)$/\1/p')
echo "fashion-mnist 500 iterations: accuracy $acc"
check "500-iteration accuracy printed" test -n "$acc"
check "500-iteration accuracy $acc >= 0.78" python3 -c "import sys; sys.exit(0 if float('${acc:-0}') >= 0.78 else 1)"
check "metrics file has train and test lines" grep -q '"type":"test","iter":500' "$WORK/fm/snapshots/lenet_metrics.jsonl"
check "snapshot written" test -s "$WORK/fm/snapshots/lenet_iter_500.caffemodel"

# 2. exact resume, on a short LeNet run over the Fashion-MNIST test LMDB
r="$WORK/resume"
mkdir -p "$r/a" "$r/b"
ln -s "$WORK/fm/fashion_mnist_test_lmdb" "$r/fashion_mnist_train_lmdb"
sed 's/^test_iter.*//; s/^test_interval.*//; s/^snapshot:.*/snapshot: 100/; s/^max_iter.*/max_iter: 200/; s/^display.*/display: 50/' \
  "$ex/lenet_solver.prototxt" > "$r/solver.prototxt"
# a train-only net (no TEST layers needed)
python3 - "$ex/lenet_train_test.prototxt" "$r/lenet_train_test.prototxt" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
blocks = re.split(r'\n(?=layer \{)', text)
kept = [b for b in blocks if 'phase: TEST' not in b]
open(sys.argv[2], 'w').write('\n'.join(kept) + '\n')
PY
(cd "$r" && sed 's|snapshots/lenet|a/lenet|' solver.prototxt > solver_a.prototxt && "$CAFFEGRID" train -solver solver_a.prototxt > a.log 2>&1)
check "straight run finished" test -s "$r/a/lenet_iter_200.caffemodel"
(cd "$r" && sed 's|snapshots/lenet|b/lenet|' solver.prototxt > solver_b.prototxt && "$CAFFEGRID" train -solver solver_b.prototxt -iterations 100 > b1.log 2>&1 &&
  "$CAFFEGRID" train -solver solver_b.prototxt -snapshot b/lenet_iter_100.solverstate > b2.log 2>&1)
check "resumed run finished" test -s "$r/b/lenet_iter_200.caffemodel"
check "resumed log says where it resumed" grep -q "Restored solver state from b/lenet_iter_100.solverstate at iteration 100" "$r/b2.log"
check "200 straight == 100 + resume 100, bit for bit" cmp -s "$r/a/lenet_iter_200.caffemodel" "$r/b/lenet_iter_200.caffemodel"
check "solver history identical too" cmp -s <(tail -c 1000000 "$r/a/lenet_iter_200.solverstate") <(tail -c 1000000 "$r/b/lenet_iter_200.solverstate")

# 3. CaffeOnSpark's spelling: -train -conf S -model OUT puts the final weights exactly at OUT
(cd "$r" && sed 's|snapshots/lenet|c/lenet|; s/^max_iter.*/max_iter: 20/' solver.prototxt > solver_c.prototxt && mkdir -p c &&
  "$CAFFEGRID" -train -conf solver_c.prototxt -model "$r/final.caffemodel" > c.log 2>&1)
check "-train -conf -model writes OUT" test -s "$r/final.caffemodel"
check "-model OUT equals the last snapshot" cmp -s "$r/final.caffemodel" "$r/c/lenet_iter_20.caffemodel"

# 3b. killed while writing a snapshot (forced between write and rename): the previous one stays loadable
(cd "$r" && sed 's|snapshots/lenet|k/lenet|; s/^snapshot:.*/snapshot: 10/; s/^max_iter.*/max_iter: 30/' solver.prototxt > solver_k.prototxt && mkdir -p k)
(cd "$r" && CAFFEGRID_FAULT_BEFORE_RENAME=_iter_20.caffemodel "$CAFFEGRID" train -solver solver_k.prototxt > k.log 2>&1)
check "the forced failure killed the run" test $? -ne 0
check "no half-written snapshot under the real name" test ! -e "$r/k/lenet_iter_20.caffemodel"
check "previous snapshot intact" test -s "$r/k/lenet_iter_10.caffemodel" -a -s "$r/k/lenet_iter_10.solverstate"
(cd "$r" && "$CAFFEGRID" train -solver solver_k.prototxt -snapshot k/lenet_iter_10.solverstate > k2.log 2>&1)
check "resume from the previous snapshot finishes" test -s "$r/k/lenet_iter_30.caffemodel"
(cd "$r" && sed 's|snapshots/lenet|k2/lenet|; s/^snapshot:.*/snapshot: 10/; s/^max_iter.*/max_iter: 30/' solver.prototxt > solver_k2.prototxt && mkdir -p k2 &&
  "$CAFFEGRID" train -solver solver_k2.prototxt > k3.log 2>&1)
check "crashed-and-resumed run equals an uninterrupted one" cmp -s "$r/k/lenet_iter_30.caffemodel" "$r/k2/lenet_iter_30.caffemodel"

# 3c. divergence: base_lr 1e6 stops within the first display interval (display 50), naming the iteration and a
# layer, non-zero, with no snapshot of the NaN weights; -on_nonfinite continue trains on as asked
(cd "$r" && sed 's|snapshots/lenet|nan/lenet|; s/^base_lr.*/base_lr: 1000000/; s/^snapshot:.*/snapshot: 5/; s/^max_iter.*/max_iter: 60/' \
  solver.prototxt > solver_nan.prototxt && mkdir -p nan)
out=$(cd "$r" && "$CAFFEGRID" train -solver solver_nan.prototxt 2>&1); rc=$?
check "a diverging run stops with an error (exit $rc)" test $rc -ne 0 -a $rc -lt 128
check "the message says the training went non-finite" grep -q "went non-finite (NaN or infinite)" <<<"$out"
it=$(sed -n 's/.*solver_nan.prototxt: iteration \([0-9]*\): .* went non-finite.*/\1/p' <<<"$out" | head -n 1)
check "it stopped within the first display interval (iteration '$it' <= 50)" test -n "$it" -a "${it:-99}" -le 50
check "the message names a layer" grep -qE "first non-finite values are in layer '[a-z0-9]+' \([A-Za-z]+\)" <<<"$out"
late=$(ls "$r"/nan/ 2>/dev/null | sed -n 's/^lenet_iter_\([0-9]*\)\.caffemodel$/\1/p' | awk -v it="${it:-0}" '$1 >= it' | head -n 1)
check "no snapshot at or after the iteration it stopped at (found '$late')" test -z "$late"
out=$(cd "$r" && "$CAFFEGRID" train -solver solver_nan.prototxt -on_nonfinite continue -iterations 10 2>&1); rc=$?
check "-on_nonfinite continue trains on (exit $rc)" test $rc -eq 0
# ... and its snapshots hold NaN weights (asked for): scoring them warns instead of printing numbers silently
# (a train-only net here, so scored in its TRAIN phase)
out=$(cd "$r" && "$CAFFEGRID" test -model lenet_train_test.prototxt -phase TRAIN -weights nan/lenet_iter_10.caffemodel \
  -iterations 2 2>&1)
check "caffegrid test warns about the NaN weights, naming the file" \
  grep -qE "nan/lenet_iter_10.caffemodel: [0-9]+ weight values are NaN or infinite" <<<"$out"
expect_error "-on_nonfinite takes stop or continue" "-on_nonfinite must be stop or continue" \
  "$CAFFEGRID" train -solver "$r/solver_nan.prototxt" -on_nonfinite ignore

# 3d. SIGTERM (Slurm preemption, YARN) snapshots at the current iteration and stops with exit 0; -snapshot auto resumes
# there. SIGHUP (Caffe's default: snapshot) snapshots and trains on.
(cd "$r" && sed 's|snapshots/lenet|sig/lenet|; s/^snapshot:.*/snapshot: 100000/; s/^max_iter.*/max_iter: 100000/; s/^display.*/display: 10/' \
  solver.prototxt > solver_sig.prototxt && mkdir -p sig)
echo stale > "$r/sig/lenet_iter_7.caffemodel.tmp.999999.0"  # what a crash between write and rename leaves
(cd "$r" && exec "$CAFFEGRID" train -solver solver_sig.prototxt > sig.log 2>&1) &
pid=$!
for _ in $(seq 1 600); do grep -q "Iteration 30, lr" "$r/sig.log" 2>/dev/null && break; sleep 0.1; done
# one run per snapshot prefix: a second run is refused at once, naming the prefix and the holder
start=$(date +%s)
expect_error "a second run on the same snapshot_prefix is refused" \
  "snapshot_prefix 'sig/lenet' is in use by another training run (pid $pid holds 'sig/lenet.lock')" \
  bash -c "cd '$r' && exec '$CAFFEGRID' train -solver solver_sig.prototxt"
check "refused within seconds ($(($(date +%s) - start)) s)" test $(($(date +%s) - start)) -le 10
check "the stale temporary file was removed under the lock" test ! -e "$r/sig/lenet_iter_7.caffemodel.tmp.999999.0"
check "its removal is logged" grep -q "lenet_iter_7.caffemodel.tmp.999999.0, a temporary file an interrupted run left" "$r/sig.log"
kill -HUP $pid
for _ in $(seq 1 100); do grep -q "snapshot requested" "$r/sig.log" && break; sleep 0.1; done
kill -TERM $pid
wait $pid; rc=$?
stopped=$(sed -n 's/.*Iteration \([0-9]*\): stop requested; stopping.*/\1/p' "$r/sig.log")
[ $rc -eq 0 ] || tail -20 "$r/sig.log"  # what ended it, when it did not end well
check "SIGTERM: exit 0 (got $rc)" test $rc -eq 0
check "SIGHUP wrote a snapshot and training went on" grep -q "snapshot requested" "$r/sig.log"
check "SIGTERM stopped at iteration '$stopped' (>= 30) with a snapshot there" test -n "$stopped" -a "${stopped:-0}" -ge 30 -a -s "$r/sig/lenet_iter_${stopped:-x}.caffemodel"
check "the log says it stopped early" grep -q "Optimization stopped early." "$r/sig.log"
out=$(cd "$r" && "$CAFFEGRID" train -solver solver_sig.prototxt -snapshot auto -iterations $((stopped + 2)) 2>&1)
check "-snapshot auto resumes at iteration $stopped" grep -q "at iteration $stopped" <<<"$out"
expect_error "-sigterm_effect takes snapshot, stop or none" "-sigterm_effect must be snapshot, stop or none" \
  "$CAFFEGRID" train -solver "$r/solver_sig.prototxt" -sigterm_effect kill

# 3e. snapshot sets prove themselves: NaN bytes written into the newest .caffemodel make -snapshot auto skip that
# set, saying why, and resume the previous one, training on with a finite loss; the damaged set asked for by
# name is refused; a copied folder resumes with its own weights, not the original folder's
(cd "$r" && sed 's|snapshots/lenet|ver/lenet|; s/^snapshot:.*/snapshot: 10/; s/^max_iter.*/max_iter: 30/; s/^display.*/display: 10/' \
  solver.prototxt > solver_ver.prototxt && mkdir -p ver && "$CAFFEGRID" train -solver solver_ver.prototxt > ver1.log 2>&1)
check "three verified snapshot sets written" test -s "$r/ver/lenet_iter_30.cgstate" -a -s "$r/ver/lenet_iter_20.cgstate"
check "the run-state file records the files' sums" grep -q '^caffemodel [0-9]* [0-9a-f]\{8\}$' "$r/ver/lenet_iter_30.cgstate"
python3 - "$r/ver/lenet_iter_30.caffemodel" <<'PY'
import struct, sys
data = bytearray(open(sys.argv[1], "rb").read())
at = len(data) - 4000  # inside the last layer's weights
data[at:at + 400] = struct.pack("<f", float("nan")) * 100
open(sys.argv[1], "wb").write(data)
PY
expect_error "the damaged set asked for by name is refused" "lenet_iter_30.solverstate: this snapshot cannot be resumed: 'ver/lenet_iter_30.caffemodel' is not the file written with it" \
  bash -c "cd '$r' && exec '$CAFFEGRID' train -solver solver_ver.prototxt -snapshot ver/lenet_iter_30.solverstate -iterations 31"
out=$(cd "$r" && "$CAFFEGRID" train -solver solver_ver.prototxt -snapshot auto -iterations 40 2>&1); rc=$?
check "-snapshot auto past a damaged set: exit 0 (got $rc)" test $rc -eq 0
check "it says which set it skipped and why" grep -q "Skipping the snapshot of iteration 30: 'ver/lenet_iter_30.caffemodel' is not the file written with it" <<<"$out"
check "it resumed the previous set" grep -q "Restored solver state from ver/lenet_iter_20.solverstate at iteration 20" <<<"$out"
check "and trained on with a finite loss" grep -Eq "Iteration 40, loss = [0-9]" <<<"$out"
cp -r "$r/ver" "$r/ver_copy"
printf 'overwritten' > "$r/ver/lenet_iter_20.caffemodel"  # the original folder's weights, which learned_net names
out=$(cd "$r" && "$CAFFEGRID" train -solver solver_ver.prototxt -snapshot ver_copy/lenet_iter_20.solverstate -iterations 21 2>&1); rc=$?
check "a copied folder resumes with its own weights (exit $rc)" grep -q "Restoring weights from ver_copy/lenet_iter_20.caffemodel" <<<"$out"

# 4. a real BVLC Caffe snapshot (iteration 10000, deprecated solver_type field) resumes and continues
if have_data caffe_ref/lenet_yuvval/lenet_iter_10000.solverstate -- 2; then
  y="$WORK/yuvval"
  mkdir -p "$y/examples/mnist"
  cp "$SHARED_DATA/caffe_ref/lenet_yuvval/lenet_train_test.prototxt" "$SHARED_DATA/caffe_ref/lenet_yuvval/lenet_solver.prototxt" "$y/examples/mnist/"
  make_mnist_test_lmdb "$y/examples/mnist/mnist_test_lmdb"
  ln -s mnist_test_lmdb "$y/examples/mnist/mnist_train_lmdb"
  out=$(cd "$y" && "$CAFFEGRID" train -solver examples/mnist/lenet_solver.prototxt \
    -snapshot "$SHARED_DATA/caffe_ref/lenet_yuvval/lenet_iter_10000.solverstate" -iterations 10002 2>&1)
  check "Caffe snapshot restored at 10000" grep -q "at iteration 10000" <<<"$out"
  check "continued to 10002 and snapshotted" test -s "$y/examples/mnist/lenet_iter_10002.caffemodel"
fi

# fine-tuning: Caffe's trained weights loaded by -weights give Caffe's accuracy at the initial test
# (BVLC's own examples/mnist solver and net)
f="$WORK/finetune"
mkdir -p "$f/examples/mnist"
cp "$SHARED_DATA/caffe_ref/bvlc_mnist_prototxt/lenet_train_test.prototxt" \
  "$SHARED_DATA/caffe_ref/bvlc_mnist_prototxt/lenet_solver.prototxt" "$f/examples/mnist/"
make_mnist_test_lmdb "$f/examples/mnist/mnist_test_lmdb"
ln -s mnist_test_lmdb "$f/examples/mnist/mnist_train_lmdb"
out=$(cd "$f" && "$CAFFEGRID" train -solver examples/mnist/lenet_solver.prototxt \
  -weights "$SHARED_DATA/caffe_ref/lenet_nandahkrishna/lenet_iter_10000.caffemodel" -iterations 1 2>&1)
check "-weights fine-tunes from Caffe's model (test at iteration 0 = 0.9905)" grep -q "Test net output #0: accuracy = 0.9905" <<<"$out"

# 5. bad input through the CLI
expect_error "missing solver file" "no-such-solver.prototxt" "$CAFFEGRID" train -solver "$WORK/no-such-solver.prototxt"
cd "$r"
expect_error "-snapshot that does not exist" "nope.solverstate" "$CAFFEGRID" train -solver solver_a.prototxt -snapshot nope.solverstate
cp "$r/b/lenet_iter_100.solverstate" "$r/orphan.solverstate"
mv b/lenet_iter_100.caffemodel b/moved.caffemodel
expect_error "-snapshot whose learned_net is missing" "learned_net" "$CAFFEGRID" train -solver solver_a.prototxt -snapshot orphan.solverstate
sed 's/^momentum.*/momentum: 0.9\ntype: "Adam"/' solver_a.prototxt > solver_adam.prototxt
have_data caffe_ref/lenet_yuvval/lenet_iter_10000.solverstate &&
  expect_error "solverstate from a different solver type" "field 'history'" "$CAFFEGRID" train -solver solver_adam.prototxt \
    -snapshot "$SHARED_DATA/caffe_ref/lenet_yuvval/lenet_iter_10000.solverstate"
expect_error "-weights and -snapshot together" "not both" "$CAFFEGRID" train -solver solver_a.prototxt -snapshot x -weights y
report
