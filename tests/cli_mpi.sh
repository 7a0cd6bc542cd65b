#!/usr/bin/env bash
# MPI failure handling with real Open MPI: kill -9 one rank mid-training; the job
# ends within 10 s with a message naming the lost rank; rerunning the same command
# with -snapshot auto resumes from the last complete snapshot and ends with the
# same weights as an uninterrupted run.
source "$(dirname "$0")/lib_cli.sh"
source "$TESTS_DIR/mpi_env.sh"
cd "$WORK"
make_mnist_test_lmdb mnist_lmdb
sed "s|fashion_mnist_train_lmdb|mnist_lmdb|" "$TESTS_DIR/../examples/fashion_mnist/lenet_train_test.prototxt" |
  python3 -c "import re,sys; t=sys.stdin.read(); print('\n'.join(b for b in re.split(r'\n(?=layer \{)', t) if 'phase: TEST' not in b))" > net.prototxt
solver() { # solver NAME: a run writing into NAME/
  mkdir -p "$1"
  printf 'net: "net.prototxt"\nbase_lr: 0.01\nmomentum: 0.9\nweight_decay: 0.0005\nlr_policy: "inv"\ngamma: 0.0001\npower: 0.75\ndisplay: 0\nmax_iter: 300\nsnapshot: 20\nsnapshot_prefix: "%s/lenet"\nrandom_seed: 1701\n' "$1" > "$1.prototxt"
}
solver straight
solver killed
check "uninterrupted 2-rank run" mpirun -np 2 "$CAFFEGRID" train -solver straight.prototxt -snapshot auto >straight.log 2>&1
check "uninterrupted run ends at 300" test -s straight/lenet_iter_300.caffemodel

# the solver by its absolute path: pgrep must match this run's ranks, not another test run's
mpirun -np 2 "$CAFFEGRID" train -solver "$WORK/killed.prototxt" -snapshot auto >killed.log 2>&1 &
launcher=$!
victim=$(mpi_rank_pid killed/lenet_iter_60.cgstate "caffegrid train -solver $WORK/killed.prototxt" 1)
check "found rank 1 to kill" test -n "$victim"
start=$(date +%s.%N)
kill -9 "$victim"
wait $launcher
rc=$?
elapsed=$(python3 -c "print(f'{$(date +%s.%N) - $start:.2f}')")
echo "job ended ${elapsed}s after rank 1 was killed (exit $rc)"
check "the job failed" test $rc -ne 0
check "the job ended within 10 s ($elapsed s)" python3 -c "import sys; sys.exit(0 if $elapsed < 10 else 1)"
check "the message names the lost rank" grep -qE "rank 1 .*(killed|signal 9|exited)|process rank 1" killed.log
check "it did not finish" test ! -e killed/lenet_iter_300.caffemodel
check "rerun of the same command resumes and finishes" mpirun -np 2 "$CAFFEGRID" train -solver killed.prototxt -snapshot auto >rerun.log 2>&1
check "rerun resumed from a snapshot" grep -q "Resuming from killed/lenet_iter_" rerun.log
check "final weights equal the uninterrupted run's, bit for bit" cmp -s straight/lenet_iter_300.caffemodel killed/lenet_iter_300.caffemodel

# distributed scoring: 2 and 4 ranks each score their share of MNIST t10k; combined, Caffe's numbers
ref=$SHARED_DATA/caffe_ref/lenet_nandahkrishna
ln -s mnist_lmdb mnist_test_lmdb
for np in 2 4; do
  out=$(mpirun -np $np "$CAFFEGRID" test -model "$ref/lenet_train_test.prototxt" -weights "$ref/lenet_iter_10000.caffemodel" \
    -iterations $((100 / np)) -output "scores$np.txt" 2>&1)
  check "$np-rank test: accuracy 0.9905 as BVLC Caffe" grep -q "] accuracy = 0.9905$" <<<"$out"
  got=$(sed -n 's/^accuracy: //p' "scores$np.txt")
  check "$np-rank test: -output holds 'accuracy: $got'" python3 -c "import sys; sys.exit(0 if abs(float('${got:-0}') - 0.9905) < 5e-5 else 1)"
done
expect_error "-output refuses to overwrite" "already exists" "$CAFFEGRID" test -model "$ref/lenet_train_test.prototxt" \
  -weights "$ref/lenet_iter_10000.caffemodel" -iterations 1 -output scores2.txt
# interleaved validation in distributed training: each rank scores its share of the test set, metrics averaged
ln -s mnist_lmdb mnist_train_lmdb
printf 'net: "%s"\ntest_iter: 100\ntest_interval: 10\nbase_lr: 0\nlr_policy: "fixed"\nmax_iter: 1\nsnapshot_prefix: "val"\nrandom_seed: 3\n' \
  "$ref/lenet_train_test.prototxt" > val_solver.prototxt
out=$(mpirun -np 2 "$CAFFEGRID" train -solver val_solver.prototxt -weights "$ref/lenet_iter_10000.caffemodel" 2>&1)
check "2-rank validation during training: Caffe's accuracy" grep -q "Test net output #0: accuracy = 0.9905$" <<<"$out"
check "validation rounds in the metrics file" grep -q '"type":"test","iter":0,"net":0,"accuracy":0.99' val_metrics.jsonl
# CaffeOnSpark's form: -test -conf SOLVER -model WEIGHTS (the solver names the net; test_iter is the default)
printf 'net: "%s"\ntest_iter: 100\nbase_lr: 0.01\nlr_policy: "fixed"\n' "$ref/lenet_train_test.prototxt" > cos_solver.prototxt
out=$("$CAFFEGRID" -test -conf cos_solver.prototxt -model "$ref/lenet_iter_10000.caffemodel" -output cos.txt 2>&1)
check "-test -conf -model: Caffe's accuracy" grep -q "] accuracy = 0.9905$" <<<"$out"
check "-test -conf: test_iter 100 used" grep -q "Running for 100 iterations" <<<"$out"
report
