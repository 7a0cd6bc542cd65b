#!/usr/bin/env bash
# The TCP communicator (for workers no MPI launcher starts, e.g. Spark tasks):
# 2 and 3 processes given CAFFEGRID_PEERS/CAFFEGRID_RANK train data-parallel;
# 2 ranks over TCP give the same weights as 2 ranks over MPI, bit for bit (a+b is
# a+b in both rings); a lost peer ends the others with a clear message, no hang.
source "$(dirname "$0")/lib_cli.sh"
source "$TESTS_DIR/mpi_env.sh"
export OPENBLAS_NUM_THREADS=1 # the same per-rank BLAS as mpirun's binding gives
cd "$WORK"
make_mnist_test_lmdb mnist_lmdb
sed "s|fashion_mnist_train_lmdb|mnist_lmdb|" "$TESTS_DIR/../examples/fashion_mnist/lenet_train_test.prototxt" |
  python3 -c "import re,sys; t=sys.stdin.read(); print('\n'.join(b for b in re.split(r'\n(?=layer \{)', t) if 'phase: TEST' not in b))" > net.prototxt
solver() { printf 'net: "net.prototxt"\nbase_lr: 0.01\nmomentum: 0.9\nlr_policy: "fixed"\ndisplay: 0\nmax_iter: %d\nsnapshot_prefix: "%s"\nrandom_seed: 1701\n' "$2" "$1" > "$1.prototxt"; }
free_port() { python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"; }
run_tcp() { # run_tcp SOLVER RANKS: every rank a separate process, rendezvous through the environment
  local solver=$1 n=$2 peers="" pids=() rc=0
  for _ in $(seq $n); do peers="$peers${peers:+,}127.0.0.1:$(free_port)"; done
  for r in $(seq 0 $((n - 1))); do
    CAFFEGRID_PEERS=$peers CAFFEGRID_RANK=$r "$CAFFEGRID" train -solver "$solver.prototxt" > "$solver.$r.log" 2>&1 &
    pids+=($!)
  done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  return $rc
}
solver mpi 30; solver tcp2 30; solver tcp3 30
check "2 ranks over MPI" mpirun -np 2 "$CAFFEGRID" train -solver mpi.prototxt > mpi.log 2>&1
check "2 ranks over TCP" run_tcp tcp2 2
check "rank 0 says tcp" grep -q "Data-parallel training on 2 ranks (tcp)" tcp2.0.log
check "TCP == MPI, bit for bit" cmp -s mpi_iter_30.caffemodel tcp2_iter_30.caffemodel
check "3 ranks over TCP" run_tcp tcp3 3
check "3-rank run finished" test -s tcp3_iter_30.caffemodel

# a lost peer: rank 1 is killed; rank 0 must stop with a message, not hang
solver lost 100000
peers="127.0.0.1:$(free_port),127.0.0.1:$(free_port)"
CAFFEGRID_PEER_TIMEOUT=5 CAFFEGRID_PEERS=$peers CAFFEGRID_RANK=0 "$CAFFEGRID" train -solver lost.prototxt > lost.0.log 2>&1 &
r0=$!
CAFFEGRID_PEER_TIMEOUT=5 CAFFEGRID_PEERS=$peers CAFFEGRID_RANK=1 "$CAFFEGRID" train -solver lost.prototxt > lost.1.log 2>&1 &
r1=$!
sleep 3
kill -9 $r1
start=$(date +%s.%N)
wait $r0; rc=$?
elapsed=$(python3 -c "print(f'{$(date +%s.%N) - $start:.1f}')")
echo "rank 0 stopped ${elapsed}s after rank 1 was killed (exit $rc)"
check "rank 0 failed" test $rc -ne 0
check "rank 0 stopped within 10 s" python3 -c "import sys; sys.exit(0 if $elapsed < 10 else 1)"
check "the message says a peer was lost" grep -q "a peer was lost" lost.0.log
report
