#!/usr/bin/env bash
# The pipeline example end to end (examples/fashion_mnist/features_pipeline.sh):
# LeNet trained 500 iterations on Fashion-MNIST, ip1 features in libsvm format,
# liblinear's logistic regression on them reaches >= 0.85 test accuracy.
source "$(dirname "$0")/lib_cli.sh"
out=$(CAFFEGRID=$CAFFEGRID bash "$TESTS_DIR/../examples/fashion_mnist/features_pipeline.sh" 500 "$WORK/pipeline" 10000 2>&1)
acc=$(echo "$out" | sed -n 's/^Logistic regression on ip1 features: test accuracy \([0-9.]*\).*/\1/p')
echo "logistic regression on ip1 features: accuracy ${acc:-none}"
check "the pipeline printed an accuracy" test -n "$acc"
check "logistic regression accuracy $acc >= 0.85" python3 -c "import sys; sys.exit(0 if float('${acc:-0}') >= 0.85 else 1)"
check "one libsvm row per test image" test "$(wc -l < "$WORK/pipeline/ip1_test.libsvm")" -eq 10000
report
