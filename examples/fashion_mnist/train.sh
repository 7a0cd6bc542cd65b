#!/usr/bin/env bash
# The main job: LeNet on Fashion-MNIST with BVLC Caffe's lenet_solver, then the
# final test accuracy. Usage: train.sh [ITERATIONS] [WORKDIR]  (default 10000, ./run)
# Data comes from Debian's dataset-fashion-mnist package (or ../shared/data).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
iterations=${1:-10000}
work=${2:-$root/run/fashion_mnist}
caffegrid=${CAFFEGRID:-$root/build/caffegrid}
data=""
for d in /usr/share/datasets/fashion-mnist "$root/../shared/data/fashion-mnist"; do
  [ -f "$d/train-images-idx3-ubyte.gz" ] && data=$d && break
done
[ -n "$data" ] || { echo "Fashion-MNIST not found: apt-get install dataset-fashion-mnist" >&2; exit 1; }
mkdir -p "$work/snapshots"
cp "$here/lenet_train_test.prototxt" "$here/lenet_solver.prototxt" "$work/"
cd "$work"
[ -d fashion_mnist_train_lmdb ] || "$caffegrid" convert mnist "$data/train-images-idx3-ubyte.gz" "$data/train-labels-idx1-ubyte.gz" fashion_mnist_train_lmdb
[ -d fashion_mnist_test_lmdb ] || "$caffegrid" convert mnist "$data/t10k-images-idx3-ubyte.gz" "$data/t10k-labels-idx1-ubyte.gz" fashion_mnist_test_lmdb
"$caffegrid" train -solver lenet_solver.prototxt -iterations "$iterations" 2>&1 | tee train.log
accuracy=$(sed -n 's/.*Test net output #[0-9]*: accuracy = \([0-9.]*\)$/\1/p' train.log | tail -n 1)
echo "Fashion-MNIST test accuracy after $iterations iterations: $accuracy"
