#!/usr/bin/env bash
# Golden test against BVLC Caffe: the Caffe-trained LeNet weights scored over
# MNIST t10k (converted by our `convert mnist`) print the accuracy and loss that
# `caffe test` printed for the same files (../shared/data/SOURCES.md), to 4 decimals.
source "$(dirname "$0")/lib_cli.sh"

db="$WORK/mnist_test_lmdb"
check "convert mnist" make_mnist_test_lmdb "$db"
mkdir -p "$WORK/examples/mnist" && ln -s "$db" "$WORK/examples/mnist/mnist_test_lmdb"

# model dir, reference accuracy, reference loss (BVLC Caffe's own output)
golden() {
  local dir=$1 want_acc=$2 want_loss=$3
  local out
  out=$(cd "$WORK" && "$CAFFEGRID" test -model "$SHARED_DATA/caffe_ref/$dir/lenet_train_test.prototxt" \
    -weights "$SHARED_DATA/caffe_ref/$dir/lenet_iter_10000.caffemodel" -iterations 100 2>&1)
  local acc loss
  acc=$(echo "$out" | sed -n 's/.*] accuracy = \([0-9.e+-]*\)$/\1/p' | tail -n 1)
  loss=$(echo "$out" | sed -n 's/.*] loss = \([0-9.e+-]*\) (\* 1 = .* loss)$/\1/p' | tail -n 1)
  check "$dir: final accuracy line printed" test -n "$acc"
  check "$dir: final loss line printed" test -n "$loss"
  check "$dir: accuracy $acc == $want_acc (4 decimals)" \
    python3 -c "import sys; sys.exit(0 if abs(float('$acc') - $want_acc) < 5e-5 else 1)"
  check "$dir: loss $loss == $want_loss (4 decimals)" \
    python3 -c "import sys; sys.exit(0 if abs(float('$loss') - $want_loss) < 5e-5 else 1)"
  check "$dir: 100 per-batch accuracy lines" test "$(echo "$out" | grep -c '] Batch [0-9]*, accuracy = ')" -eq 100
}
golden lenet_nandahkrishna 0.9905 0.0297565
have_data caffe_ref/lenet_yuvval/lenet_iter_10000.caffemodel -- 5 && golden lenet_yuvval 0.9833 0.0528099
report
