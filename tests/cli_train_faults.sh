#!/usr/bin/env bash
# The smaller faults of a reliability trial: messages for absurd layer sizes, a legal
# snapshot name near NAME_MAX, a metrics file that cannot be written, a resumed run's
# metrics without repeated iterations, and test/features that say when values went
# NaN or infinite instead of printing a plausible score.
source "$(dirname "$0")/lib_cli.sh"
cd "$WORK"
have_data mnist/t10k-images-idx3-ubyte.gz -- 20 || { report; exit; }
make_mnist_test_lmdb mnist_lmdb
sed "s|fashion_mnist_train_lmdb|mnist_lmdb|" "$TESTS_DIR/../examples/fashion_mnist/lenet_train_test.prototxt" |
  python3 -c "import re,sys; t=sys.stdin.read(); print('\n'.join(b for b in re.split(r'\n(?=layer \{)', t) if 'phase: TEST' not in b))" > net.prototxt
solver() { # solver FILE NET PREFIX MAX_ITER: SGD, snapshots every 10, a metrics line every 5
  printf 'net: "%s"\nbase_lr: 0.01\nmomentum: 0.9\nlr_policy: "fixed"\ndisplay: 5\nmax_iter: %s\nsnapshot: 10\nsnapshot_prefix: "%s"\nrandom_seed: 7\n' \
    "$2" "$4" "$3" > "$1"
}

# 1. layer sizes beyond what a parameter can hold: the size and the limit, not an axis or "must be positive"
sed 's/num_output: 500/num_output: 2147483647/' net.prototxt > huge1.prototxt
sed 's/num_output: 500/num_output: 1000000000/' net.prototxt > huge2.prototxt
solver huge1.solver huge1.prototxt huge1 1
solver huge2.solver huge2.prototxt huge2 1
expect_error "num_output 2^31-1: too large, with the limit" \
  "layer 'ip1' (InnerProduct): num_output 2147483647 is too large (at most 1073741824)" "$CAFFEGRID" train -solver huge1.solver
expect_error "num_output 1e9: the parameter's whole shape" \
  "layer 'ip1' (InnerProduct): parameter 0 would be 1000000000 x 800 values, more than the 2^36 a parameter may hold" \
  "$CAFFEGRID" train -solver huge2.solver

# 2. a snapshot name of 252 characters (legal: NAME_MAX is 255) is written, its temporary name shortened
mkdir -p long
stem=$(python3 -c "print('n' * (252 - len('_iter_10.solverstate')))")
solver long.solver net.prototxt "long/$stem" 10
check "252-character snapshot names: training succeeds" "$CAFFEGRID" train -solver long.solver >long.log 2>&1
check "the 252-character .solverstate is there" test -s "long/${stem}_iter_10.solverstate"
check "no temporary file left" test -z "$(ls long | grep '\.tmp\.')"

# 3. a metrics file that cannot be written (a full disk: /dev/full) is said once; training goes on
mkdir -p full
ln -s /dev/full full/lenet_metrics.jsonl
solver full.solver net.prototxt full/lenet 10
out=$("$CAFFEGRID" train -solver full.solver 2>&1); rc=$?
check "metrics on a full disk: training finishes (exit $rc)" test $rc -eq 0 -a -s full/lenet_iter_10.caffemodel
check "metrics on a full disk: said, with the file and why" \
  grep -q "cannot write to metrics file 'full/lenet_metrics.jsonl': No space left on device; training goes on without it" <<<"$out"
check "metrics on a full disk: said once" test "$(grep -c "metrics file" <<<"$out")" -eq 1

# 4. resumed after an interruption between snapshots: each iteration once in the metrics file
mkdir -p again
solver again.solver net.prototxt again/lenet 30
"$CAFFEGRID" train -solver again.solver -iterations 25 >again1.log 2>&1
rm again/lenet_iter_25.*   # as if killed at 25: the newest set is 20's
"$CAFFEGRID" train -solver again.solver -snapshot auto >again2.log 2>&1
check "resumed from 20" grep -q "Resuming from again/lenet_iter_20.solverstate" again2.log
iters=$(python3 -c "
import json
lines = [json.loads(l) for l in open('again/lenet_metrics.jsonl')]
print(' '.join(str(l['iter']) for l in lines if l['type'] == 'train'))")
check "train lines 0, 5, ..., 25 once each (got: $iters)" test "$iters" = "0 5 10 15 20 25"
check "the dropped lines are said" grep -q "Dropped 2 line(s) of iterations 20 and later from again/lenet_metrics.jsonl" again2.log

# 5. test and features say where values went NaN (log of negatives), though accuracy looks plausible
cat > nan_net.prototxt <<'NET'
layer { name: "mnist" type: "Data" top: "data" top: "label"
  transform_param { scale: 0.00390625 } data_param { source: "mnist_lmdb" batch_size: 100 backend: LMDB } }
layer { name: "log" type: "Log" bottom: "data" top: "logged" log_param { shift: -2 } }
layer { name: "ip2" type: "InnerProduct" bottom: "logged" top: "ip2"
  inner_product_param { num_output: 10 weight_filler { type: "xavier" } } }
layer { name: "accuracy" type: "Accuracy" bottom: "ip2" bottom: "label" top: "accuracy" }
NET
out=$("$CAFFEGRID" test -model nan_net.prototxt -iterations 2 2>&1); rc=$?
check "test over NaN activations: runs (exit $rc)" test $rc -eq 0
check "test over NaN activations: the first layer named" \
  grep -q "Batch 0: layer 'log' (Log): its output 'logged' holds NaN or infinite values" <<<"$out"
out=$("$CAFFEGRID" features -model nan_net.prototxt -features ip2 -label label -output feats -outputFormat csv 2>&1)
check "features with NaN values: the first row named" grep -q "row '00000000': its features hold NaN or infinite values" <<<"$out"
check "features with NaN values: counted" grep -q "10000 of the 10000 rows written to feats/part-00000 hold NaN or infinite features" <<<"$out"

# 6. Hadoop's spelling of paths: file: URIs are local paths; other schemes are refused at once, never made folders
check "file:// URIs for -solver and -model" "$CAFFEGRID" train -solver "file://$WORK/long.solver" -iterations 2 -model "file://$WORK/uri.caffemodel"
check "the model went to the file:// path" test -s "$WORK/uri.caffemodel"
expect_error "test -output on hdfs:// is refused, naming the scheme" "-output 'hdfs:///tmp/out' is on a Hadoop filesystem (hdfs)" \
  "$CAFFEGRID" test -model nan_net.prototxt -iterations 1 -output hdfs:///tmp/out
sed 's|snapshot_prefix: "full/lenet"|snapshot_prefix: "hdfs:///snaps/lenet"|' full.solver > hdfs.solver
expect_error "snapshot_prefix on hdfs:// is refused before training" \
  "hdfs.solver: snapshot_prefix 'hdfs:///snaps/lenet' is on a Hadoop filesystem (hdfs)" "$CAFFEGRID" train -solver hdfs.solver
check "no local folder named after a scheme" test ! -e "hdfs:"
report
