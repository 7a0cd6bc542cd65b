#!/usr/bin/env bash
# CaffeOnSpark's nets under the plain CLI: MemoryData layers that name their data
# (memory_data_param.source, source_class) are read by `caffegrid -train -conf`,
# `-test`, `-features` and mpirun as they are, and train exactly as the same net with
# Data layers over the same LMDB; sources only Spark reads are refused naming the layer.
source "$(dirname "$0")/lib_cli.sh"
source "$TESTS_DIR/mpi_env.sh"
cd "$WORK"
have_data mnist/t10k-images-idx3-ubyte.gz -- 13 || { report; exit; }
ex=$TESTS_DIR/../examples/fashion_mnist
"$CAFFEGRID" convert mnist "$SHARED_DATA/mnist/t10k-images-idx3-ubyte.gz" "$SHARED_DATA/mnist/t10k-labels-idx1-ubyte.gz" \
  fashion_mnist_train_lmdb --limit=2000 2>/dev/null
"$CAFFEGRID" convert mnist "$SHARED_DATA/mnist/t10k-images-idx3-ubyte.gz" "$SHARED_DATA/mnist/t10k-labels-idx1-ubyte.gz" \
  fashion_mnist_test_lmdb --limit=1000 2>/dev/null
cp "$ex/lenet_train_test.prototxt" "$ex/lenet_memory_train_test.prototxt" .
short() { # short NAME NET: the example solver, 60 iterations, a test every 30, into NAME/
  mkdir -p "$1"
  sed "s|^net:.*|net: \"$2\"|; s|^max_iter:.*|max_iter: 60|; s|^test_interval:.*|test_interval: 30|; s|^test_iter:.*|test_iter: 10|; s|^snapshot:.*|snapshot: 0|; s|^snapshot_prefix:.*|snapshot_prefix: \"$1/lenet\"|; s|^display:.*|display: 20|" \
    "$ex/lenet_solver.prototxt" > "$1.prototxt"
}
short data lenet_train_test.prototxt
short memory lenet_memory_train_test.prototxt
check "the Data-layer net trains" "$CAFFEGRID" train -solver data.prototxt -model data.caffemodel >data.log 2>&1
check "CaffeOnSpark's -train -conf -model trains the MemoryData net" \
  "$CAFFEGRID" -train -conf memory.prototxt -model memory.caffemodel >memory.log 2>&1
# the .caffemodels name the layer types (Data, MemoryData): the weights are compared through one net's outputs
same_weights() { # same_weights A.caffemodel B.caffemodel: ip2 of every test record, bit for bit
  "$CAFFEGRID" features -model lenet_train_test.prototxt -weights "$1" -features ip2 -output "out_$1" -outputFormat csv \
    >/dev/null 2>&1 && "$CAFFEGRID" features -model lenet_train_test.prototxt -weights "$2" -features ip2 \
    -output "out_$2" -outputFormat csv >/dev/null 2>&1 && cmp -s "out_$1/part-00000" "out_$2/part-00000"
}
check "MemoryData layers read their LMDB sources exactly as Data layers: same weights, bit for bit" \
  same_weights data.caffemodel memory.caffemodel
check "its test nets read their source too (Caffe's test lines)" grep -q "Test net output #0: accuracy = " memory.log
short mpi_data lenet_train_test.prototxt
short mpi_memory lenet_memory_train_test.prototxt
check "2 MPI ranks, Data layers" mpirun -np 2 "$CAFFEGRID" train -solver mpi_data.prototxt -model mpi_data.caffemodel
check "2 MPI ranks, the CaffeOnSpark net" mpirun -np 2 "$CAFFEGRID" train -solver mpi_memory.prototxt -model mpi_memory.caffemodel
check "under mpirun too: same weights as the Data-layer net" same_weights mpi_data.caffemodel mpi_memory.caffemodel
weights_differ() { ! same_weights "$@"; }
check "and not the one-rank weights (the comparison can fail)" weights_differ data.caffemodel mpi_data.caffemodel
out=$("$CAFFEGRID" -test -conf memory.prototxt -model memory.caffemodel 2>&1)
want=$("$CAFFEGRID" test -model lenet_train_test.prototxt -weights memory.caffemodel -iterations 10 2>&1 | grep "] accuracy = ")
check "-test -conf reads the TEST source: the Data net's accuracy" test "$(grep "] accuracy = " <<<"$out" | sed 's/.*] //')" = "${want##*] }"
check "-features reads it too" "$CAFFEGRID" -features ip2 -label label -conf memory.prototxt -model memory.caffemodel -output feats
check "-features: one row per test record" test "$(cat feats/part-* | wc -l)" -eq 1000
sed 's|com.yahoo.ml.caffe.LMDB|com.yahoo.ml.caffe.ImageDataFrame|' lenet_memory_train_test.prototxt > frame.prototxt
expect_error "an ImageDataFrame source is Spark's: refused naming the layer" \
  "layer 'mnist' (MemoryData): source_class 'com.yahoo.ml.caffe.ImageDataFrame' is a Spark DataFrame" \
  "$CAFFEGRID" test -model frame.prototxt -iterations 1
sed 's|file:fashion_mnist_test_lmdb|hdfs:///data/fashion_mnist_test_lmdb|' lenet_memory_train_test.prototxt > hdfs.prototxt
expect_error "an hdfs:// source is refused naming its scheme" \
  "source 'hdfs:///data/fashion_mnist_test_lmdb' is on a Hadoop filesystem (hdfs)" \
  "$CAFFEGRID" test -model hdfs.prototxt -iterations 1
report
