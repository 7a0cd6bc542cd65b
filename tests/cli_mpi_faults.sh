#!/usr/bin/env bash
# MPI jobs that never hang or crash, with real Open MPI: a stopped rank (kill -STOP,
# not dead) ends the job after -peer_timeout naming it; ranks given different nets or
# solvers stop at start saying what differs; ranks given different -snapshot values
# follow rank 0's and end with the weights of an uninterrupted run.
source "$(dirname "$0")/lib_cli.sh"
source "$TESTS_DIR/mpi_env.sh"
cd "$WORK"
have_data mnist/t10k-images-idx3-ubyte.gz -- 15 || { report; exit; }
make_mnist_test_lmdb mnist_lmdb
sed "s|fashion_mnist_train_lmdb|mnist_lmdb|" "$TESTS_DIR/../examples/fashion_mnist/lenet_train_test.prototxt" |
  python3 -c "import re,sys; t=sys.stdin.read(); print('\n'.join(b for b in re.split(r'\n(?=layer \{)', t) if 'phase: TEST' not in b))" > net.prototxt
solver() { # solver NAME NET [MAX_ITER]: a run writing into NAME/
  mkdir -p "$1"
  printf 'net: "%s"\nbase_lr: 0.01\nmomentum: 0.9\nweight_decay: 0.0005\nlr_policy: "inv"\ngamma: 0.0001\npower: 0.75\ndisplay: 0\nmax_iter: %s\nsnapshot: 20\nsnapshot_prefix: "%s/lenet"\nrandom_seed: 1701\n' \
    "$2" "${3:-60}" "$1" > "$1.prototxt"
}

# 1. a stopped rank: the other waits -peer_timeout seconds, asks, and ends the job naming it
solver stopped net.prototxt 1000000
# the solver by its absolute path: pgrep and pkill must match this run's ranks, not another test run's
mpirun -np 2 "$CAFFEGRID" train -solver "$WORK/stopped.prototxt" -peer_timeout 20 >stopped.log 2>&1 &
launcher=$!
victim=$(mpi_rank_pid stopped/lenet_iter_20.cgstate "caffegrid train -solver $WORK/stopped.prototxt" 1)
check "found rank 1 to stop" test -n "$victim"
start=$(date +%s.%N)
kill -STOP "$victim"
for _ in $(seq 900); do kill -0 $launcher 2>/dev/null || break; sleep 0.1; done
ended=$(kill -0 $launcher 2>/dev/null && echo no || echo yes)
[ "$ended" = no ] && { kill -CONT "$victim"; kill $launcher; pkill -9 -f "caffegrid train -solver $WORK/stopped.prototxt"; }
wait $launcher
rc=$?
elapsed=$(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')")
echo "the job ended ${elapsed}s after rank 1 was stopped (exit $rc)"
check "the job ended by itself" test "$ended" = yes
check "within 60 s of the stop ($elapsed s)" python3 -c "import sys; sys.exit(0 if $elapsed < 60 else 1)"
check "non-zero exit ($rc)" test $rc -ne 0
check "the message names the silent rank and the timeout" \
  grep -q "rank(s) 1 did not answer (stopped, hung or lost); ending the job (-peer_timeout 20)" stopped.log
pkill -9 -f "caffegrid train -solver $WORK/stopped.prototxt" 2>/dev/null

# 2. different nets on the two ranks: stopped at start, the first difference named
sed 's/num_output: 500/num_output: 400/' net.prototxt > net_b.prototxt
solver same_a net.prototxt
solver same_b net_b.prototxt
out=$(timeout 120 mpirun -np 1 "$CAFFEGRID" train -solver same_a.prototxt : -np 1 "$CAFFEGRID" train -solver same_b.prototxt 2>&1); rc=$?
check "different nets: non-zero exit, no hang, no crash ($rc)" test $rc -ne 0 -a $rc -ne 124
check "different nets: the message says the nets differ and where" \
  grep -q "rank 1's net differs from rank 0's .*'ip1' (InnerProduct): 64x500; parameters 500x800 500', rank 1 has 'layer [0-9]* 'ip1' (InnerProduct): 64x400; parameters 400x800 400'" <<<"$out"
check "different nets: nothing trained" test ! -e same_a/lenet_iter_20.caffemodel
# same parameter count, other solver settings: also refused
sed 's/base_lr: 0.01/base_lr: 0.02/' same_a.prototxt > same_c.prototxt
out=$(timeout 120 mpirun -np 1 "$CAFFEGRID" train -solver same_a.prototxt : -np 1 "$CAFFEGRID" train -solver same_c.prototxt 2>&1); rc=$?
check "different solvers: non-zero exit ($rc)" test $rc -ne 0 -a $rc -ne 124
check "different solvers: the setting named" grep -q "rank 1's solver differs from rank 0's .*rank 0 has 'base_lr 0.00999999978', rank 1 has 'base_lr 0.0199999996'" <<<"$out"

# 3. ranks given different -snapshot values follow rank 0 and match an uninterrupted run
solver straight net.prototxt
solver split net.prototxt
check "uninterrupted 2-rank run to 60" mpirun -np 2 "$CAFFEGRID" train -solver straight.prototxt >straight.log 2>&1
check "first part, to 40" mpirun -np 2 "$CAFFEGRID" train -solver split.prototxt -iterations 40 >split1.log 2>&1
out=$(timeout 300 mpirun -np 1 "$CAFFEGRID" train -solver split.prototxt -snapshot auto : \
  -np 1 "$CAFFEGRID" train -solver split.prototxt -snapshot split/lenet_iter_20.solverstate 2>&1); rc=$?
check "resumed with different -snapshot values: exit 0 ($rc)" test $rc -eq 0
check "rank 0's choice was taken" grep -q "Resuming from split/lenet_iter_40.solverstate" <<<"$out"
check "final weights equal the uninterrupted run's, bit for bit" cmp -s straight/lenet_iter_60.caffemodel split/lenet_iter_60.caffemodel
report
