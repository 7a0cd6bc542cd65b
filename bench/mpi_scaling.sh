#!/usr/bin/env bash
# Data-parallel scaling: time per iteration split into compute, exposed
# communication and data wait, for LeNet (batch 64 per rank) and CIFAR-10 quick
# (batch 100 per rank) at 1, 2 and 4 ranks, each rank on one BLAS thread (this
# machine has 2 cores: 4 ranks are oversubscribed); then the allreduce bandwidth
# table. Usage: bench/mpi_scaling.sh [ITERATIONS] > table.md
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
caffegrid=$root/build/caffegrid
iterations=${1:-60}
source "$root/tests/mpi_env.sh"
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
echo "| net | ranks | ms/iter | compute | exposed comm | data wait | weak-scaling efficiency |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for net in lenet cifar10_quick; do
  printf 'net: "%s"\nbase_lr: 0.001\nmomentum: 0.9\nlr_policy: "fixed"\ndisplay: 0\nmax_iter: %d\nsnapshot_after_train: false\nrandom_seed: 1\n' \
    "$root/examples/nets/${net}_time.prototxt" "$iterations" > solver.prototxt
  base=""
  for ranks in 1 2 4; do
    line=$(mpirun -np $ranks "$caffegrid" train -solver solver.prototxt 2>&1 | grep "Time per iteration" | tail -n 1)
    read -r total compute comm data <<<"$(echo "$line" | sed -E 's/.*: ([0-9.]+) ms \(compute ([0-9.]+), exposed communication ([0-9.]+), data wait ([0-9.]+)\).*/\1 \2 \3 \4/')"
    [ -n "$base" ] || base=$total
    eff=$(python3 -c "print(f'{100 * $base / $total:.0f}%')")
    echo "| $net | $ranks | $total | $compute | $comm | $data | $eff |"
  done
done
echo
mpirun -np 2 "$root/build/bench/allreduce_bw"
