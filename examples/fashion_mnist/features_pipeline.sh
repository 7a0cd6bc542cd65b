#!/usr/bin/env bash
# CaffeOnSpark's pipeline example, on one machine: train LeNet on Fashion-MNIST,
# extract the `ip1` features of training and test images with `caffegrid
# features` (libsvm format), fit a logistic regression with Debian's liblinear,
# and print its accuracy on the test set.
# Usage: features_pipeline.sh [ITERATIONS] [WORKDIR] [TRAIN_SAMPLES]  (defaults: 2000, ./run/pipeline, 10000)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
iterations=${1:-2000}
work=${2:-$root/run/pipeline}
train_samples=${3:-10000}
caffegrid=${CAFFEGRID:-$root/build/caffegrid}
command -v liblinear-train >/dev/null || { echo "liblinear not found: apt-get install liblinear-tools" >&2; exit 1; }

# 1. train (the main job's script, fewer iterations)
CAFFEGRID=$caffegrid bash "$here/train.sh" "$iterations" "$work" >/dev/null
cd "$work"
weights=snapshots/lenet_iter_$iterations.caffemodel
data=""
for d in /usr/share/datasets/fashion-mnist "$root/../shared/data/fashion-mnist"; do
  [ -f "$d/train-images-idx3-ubyte.gz" ] && data=$d && break
done
[ -d features_train_lmdb ] || "$caffegrid" convert mnist "$data/train-images-idx3-ubyte.gz" \
  "$data/train-labels-idx1-ubyte.gz" features_train_lmdb --limit="$train_samples" 2>/dev/null

# 2. features of the training subset and of the test set, from the net's TEST phase
sed 's|fashion_mnist_test_lmdb|features_train_lmdb|' lenet_train_test.prototxt > features_train.prototxt
rm -rf ip1_train ip1_test
"$caffegrid" features -model features_train.prototxt -weights "$weights" -features ip1 -label label \
  -outputFormat libsvm -output ip1_train 2>/dev/null
"$caffegrid" features -model lenet_train_test.prototxt -weights "$weights" -features ip1 -label label \
  -outputFormat libsvm -output ip1_test 2>/dev/null

# 3. logistic regression (liblinear -s 0: L2-regularised logistic regression)
cat ip1_train/part-* > ip1_train.libsvm
cat ip1_test/part-* > ip1_test.libsvm
liblinear-train -q -s 0 -c 0.1 ip1_train.libsvm ip1_logreg.model
result=$(liblinear-predict ip1_test.libsvm ip1_logreg.model ip1_test.predictions)
accuracy=$(echo "$result" | sed -n 's/^Accuracy = \([0-9.]*\)%.*/\1/p')
echo "Logistic regression on ip1 features: test accuracy $(python3 -c "print(f'{$accuracy / 100:.4f}')") ($result)"
