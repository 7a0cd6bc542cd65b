#!/usr/bin/env bash
# The engine through the CLI: `time` on LeNet, CIFAR-10 quick and CaffeNet, and
# bad input — each a clear message naming file/line/field/layer and a non-zero exit, never a crash.
source "$(dirname "$0")/lib_cli.sh"
nets=$(cd "$TESTS_DIR/../examples/nets" && pwd)
ref=$SHARED_DATA/caffe_ref/lenet_nandahkrishna

for n in lenet cifar10_quick caffenet; do
  out=$("$CAFFEGRID" time -model "$nets/${n}_time.prototxt" -iterations 1 2>&1)
  check "time $n prints the average" grep -q "Average Forward-Backward: [0-9.]* ms." <<<"$out"
  check "time $n prints per-layer lines" grep -q "conv1	forward: " <<<"$out"
done

# bad prototxt: a misspelled field, a wrong type, an unknown layer type, a bottom nobody produces
net() { # net NAME BODY: writes a small net around BODY
  printf 'name: "bad"\nlayer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 8 dim: 8 } } }\n%s\n' "$2" > "$WORK/$1"
}
net typo.prototxt 'layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 4 kernal_size: 3 } }'
expect_error "misspelled field" "typo.prototxt:4:37" "$CAFFEGRID" test -model "$WORK/typo.prototxt" -iterations 1
expect_error "misspelled field named" "kernal_size" "$CAFFEGRID" test -model "$WORK/typo.prototxt" -iterations 1
net type.prototxt 'layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: "four" kernel_size: 3 } }'
expect_error "wrong value type" "num_output" "$CAFFEGRID" test -model "$WORK/type.prototxt" -iterations 1
net unknown.prototxt 'layer { name: "c" type: "Convolutoin" bottom: "data" top: "c" }'
expect_error "unknown layer type" "unknown layer type 'Convolutoin'" "$CAFFEGRID" test -model "$WORK/unknown.prototxt" -iterations 1
net bottom.prototxt 'layer { name: "r" type: "ReLU" bottom: "dta" top: "r" }'
expect_error "bottom nobody produces" "unknown bottom blob 'dta'" "$CAFFEGRID" test -model "$WORK/bottom.prototxt" -iterations 1
expect_error "missing prototxt" "no-such.prototxt" "$CAFFEGRID" test -model "$WORK/no-such.prototxt"

# weights that do not fit the net: name the layer and both shapes
sed 's/num_output: 20/num_output: 30/' "$ref/lenet_train_test.prototxt" > "$WORK/lenet30.prototxt"
make_mnist_test_lmdb "$WORK/mnist_test_lmdb"
(cd "$WORK" && expect_error "caffemodel shape mismatch" "layer 'conv1': cannot copy blob 0: shape mismatch, the weights file has 20 1 5 5 (500), the net expects 30 1 5 5 (750)" \
  "$CAFFEGRID" test -model lenet30.prototxt -weights "$ref/lenet_iter_10000.caffemodel" -iterations 1)
head -c 100000 "$ref/lenet_iter_10000.caffemodel" > "$WORK/truncated.caffemodel"
(cd "$WORK" && expect_error "truncated caffemodel" "truncated.caffemodel" \
  "$CAFFEGRID" test -model "$ref/lenet_train_test.prototxt" -weights truncated.caffemodel -iterations 1)
expect_error "missing LMDB" "cannot open LMDB 'mnist_test_lmdb'" \
  "$CAFFEGRID" test -model "$ref/lenet_train_test.prototxt" -weights "$ref/lenet_iter_10000.caffemodel" -iterations 1
expect_error "missing caffemodel" "nothere.caffemodel" "$CAFFEGRID" test -model "$nets/lenet_time.prototxt" -weights "$WORK/nothere.caffemodel"
expect_error "unknown flag" "unknown flag 'modle'" "$CAFFEGRID" test -modle x
expect_error "convert of a non-MNIST file" "not an MNIST image file" "$CAFFEGRID" convert mnist "$ref/lenet_train_test.prototxt" \
  "$SHARED_DATA/mnist/t10k-labels-idx1-ubyte.gz" "$WORK/x_lmdb"
check "failed convert leaves no database behind" test ! -e "$WORK/x_lmdb"
# a damaged .gz: the message zlib gives, read before the file is closed (it was read after: a use after free)
python3 -c "import sys; d = bytearray(open(sys.argv[1], 'rb').read()); d[2000:2200] = bytes(b ^ 0x5a for b in d[2000:2200]); open(sys.argv[2], 'wb').write(d)" \
  "$SHARED_DATA/mnist/t10k-images-idx3-ubyte.gz" "$WORK/damaged.gz"
expect_error "convert mnist on a damaged .gz names it" "cannot read '$WORK/damaged.gz': " \
  "$CAFFEGRID" convert mnist "$WORK/damaged.gz" "$SHARED_DATA/mnist/t10k-labels-idx1-ubyte.gz" "$WORK/damaged_lmdb"
expect_error "... and says what is wrong with it" "(a damaged or incomplete gzip file?)" \
  "$CAFFEGRID" convert mnist "$WORK/damaged.gz" "$SHARED_DATA/mnist/t10k-labels-idx1-ubyte.gz" "$WORK/damaged_lmdb"
expect_error "convert refuses to overwrite" "already exists" "$CAFFEGRID" convert mnist "$SHARED_DATA/mnist/t10k-images-idx3-ubyte.gz" \
  "$SHARED_DATA/mnist/t10k-labels-idx1-ubyte.gz" "$WORK/mnist_test_lmdb"

# the flags every command shares are refused and validated the same way everywhere (tools/cli_context.c)
net plain.prototxt ''
for cmd in train test time features; do
  what=(-model "$WORK/plain.prototxt"); [ $cmd = train ] && what=(-solver x.prototxt)
  [ $cmd = features ] && what+=(-features data -output "$WORK/feat_$cmd")
  expect_error "$cmd refuses -gpu" "caffegrid $cmd: -gpu was given but this build has no GPU support" \
    "$CAFFEGRID" $cmd "${what[@]}" -gpu 0
done
for cmd in train features; do
  what=(-model "$WORK/plain.prototxt" -features data -output "$WORK/feat_dev"); [ $cmd = train ] && what=(-solver x.prototxt)
  expect_error "$cmd refuses -devices 2" "caffegrid $cmd: -devices 2: this CPU build runs one device per process" \
    "$CAFFEGRID" $cmd "${what[@]}" -devices 2
done
for cmd in test time; do
  expect_error "$cmd validates -phase" "caffegrid $cmd: -phase must be TRAIN or TEST, got 'test'" \
    "$CAFFEGRID" $cmd -model "$WORK/plain.prototxt" -phase test
done
report
