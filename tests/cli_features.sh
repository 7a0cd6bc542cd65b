#!/usr/bin/env bash
# Feature extraction: Caffe's trained LeNet over MNIST t10k. With 1, 2 and 3 ranks
# the part files hold every sample exactly once; the values are the forward pass's
# (the accuracy of argmax(ip2) against the labels is Caffe's 0.9905); JSON parses,
# CSV has its header, libsvm loads in liblinear; bad input is refused cleanly.
source "$(dirname "$0")/lib_cli.sh"
source "$TESTS_DIR/mpi_env.sh"
ref=$SHARED_DATA/caffe_ref/lenet_nandahkrishna
cd "$WORK"
make_mnist_test_lmdb mnist_test_lmdb
feat() { "$CAFFEGRID" features -model "$ref/lenet_train_test.prototxt" -weights "$ref/lenet_iter_10000.caffemodel" "$@"; }

for np in 1 2 3; do
  check "$np-rank extraction" mpirun -np $np "$CAFFEGRID" features -model "$ref/lenet_train_test.prototxt" \
    -weights "$ref/lenet_iter_10000.caffemodel" -features ip2 -label label -output "json$np" > "json$np.log" 2>&1
  check "$np ranks: $np part files and _SUCCESS" test "$(ls "json$np" | grep -c '^part-')" -eq $np -a -e "json$np/_SUCCESS"
  check "$np ranks: every sample exactly once, valid JSON, Caffe's accuracy" python3 - "json$np" <<'PY'
import json, os, sys
d = sys.argv[1]
rows = [json.loads(l) for f in sorted(os.listdir(d)) if f.startswith("part-") for l in open(os.path.join(d, f))]
ids = [r["SampleID"] for r in rows]
assert len(ids) == 10000 and len(set(ids)) == 10000, (len(ids), len(set(ids)))
assert set(ids) == {"%08d" % i for i in range(10000)}
correct = sum(max(range(10), key=lambda k: r["ip2"][k]) == r["label"] for r in rows)
assert correct == 9905, correct
PY
done
# the same rows whatever the rank count (to float rounding: the batch a sample shares changes BLAS blocking)
check "1, 2 and 3 ranks give the same rows" python3 - json1 json2 json3 <<'PY'
import json, os, sys
def load(d):
    return {r["SampleID"]: r for f in os.listdir(d) if f.startswith("part-") for r in map(json.loads, open(os.path.join(d, f)))}
a = load(sys.argv[1])
for d in sys.argv[2:]:
    b = load(d)
    assert a.keys() == b.keys(), d
    for k in a:
        assert a[k]["label"] == b[k]["label"], k
        assert all(abs(x - y) <= 1e-5 * max(1, abs(x)) for x, y in zip(a[k]["ip2"], b[k]["ip2"])), (d, k)
PY

check "csv extraction" feat -features ip1,ip2 -label label -output csv -outputFormat csv
check "csv header names every column" python3 - csv/part-00000 <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
head = rows[0]
assert head[0] == "SampleID" and head[-1] == "label", head[:3]
assert head[1] == "ip1_0" and head[500] == "ip1_499" and head[501] == "ip2_0" and len(head) == 1 + 500 + 10 + 1
assert len(rows) == 10001 and all(len(r) == len(head) for r in rows)
PY

check "libsvm extraction" feat -features ip1 -label label -output svm -outputFormat libsvm
head -n 5000 svm/part-00000 > svm_train.txt
tail -n 5000 svm/part-00000 > svm_test.txt
check "liblinear trains on our libsvm file" liblinear-train -q -s 0 svm_train.txt svm.model
out=$(liblinear-predict svm_test.txt svm.model svm.pred)
echo "liblinear on ip1 features: $out"
check "liblinear reads our libsvm and predicts well ($out)" python3 -c "import re,sys; a=float(re.search(r'([0-9.]+)%', '''$out''').group(1)); sys.exit(0 if a > 95 else 1)"

# bad input
expect_error "unknown blob lists the blobs" "the net has no blob 'fc8' (its blobs: data, label, conv1" feat -features fc8 -output bad1
check "no _SUCCESS after a failure" test ! -e bad1/_SUCCESS
expect_error "results already there" "already holds results" feat -features ip2 -output csv
check "-overwrite replaces them" feat -features ip2 -output csv -overwrite
expect_error "bad format" "-outputFormat must be json, csv or libsvm" feat -features ip2 -output x -outputFormat parquet
mkdir ro && chmod 555 ro
if [ "$(id -u)" = 0 ] && touch ro/probe 2>/dev/null; then rm -f ro/probe; mount -t tmpfs -o size=64k tmpfs ro 2>/dev/null && full=1; fi
if [ "${full:-}" = 1 ]; then
  expect_error "disk full" "cannot write" feat -features ip1 -output ro/out
  check "disk full: no _SUCCESS" test ! -e ro/out/_SUCCESS
  umount ro
fi
# CaffeOnSpark's form
printf 'net: "%s"\ntest_iter: 100\nbase_lr: 0.01\nlr_policy: "fixed"\n' "$ref/lenet_train_test.prototxt" > cos_solver.prototxt
check "-features -label -conf -model -output" "$CAFFEGRID" -features ip2 -label label -conf cos_solver.prototxt \
  -model "$ref/lenet_iter_10000.caffemodel" -output cos
check "CaffeOnSpark form wrote 10000 rows" test "$(cat cos/part-00000 | wc -l)" -eq 10000
report
