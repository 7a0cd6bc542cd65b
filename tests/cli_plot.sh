#!/usr/bin/env bash
# caffegrid plot: the metrics file of a short training becomes an SVG picture of
# the expected size, with axes, axis titles, a legend and one curve per series.
source "$(dirname "$0")/lib_cli.sh"
cd "$WORK"
make_mnist_test_lmdb fashion_mnist_train_lmdb
ln -s fashion_mnist_train_lmdb fashion_mnist_test_lmdb
ex=$(cd "$TESTS_DIR/../examples/fashion_mnist" && pwd)
cp "$ex/lenet_train_test.prototxt" .
sed 's/^test_iter.*/test_iter: 5/; s/^test_interval.*/test_interval: 10/; s/^max_iter.*/max_iter: 40/; s/^display.*/display: 5/' \
  "$ex/lenet_solver.prototxt" > solver.prototxt
mkdir -p snapshots
check "short training" "$CAFFEGRID" train -solver solver.prototxt > train.log 2>&1
check "plot" "$CAFFEGRID" plot snapshots/lenet_metrics.jsonl -o curve.svg
check "a valid SVG of 900x420 with titles, legend and curves" python3 - curve.svg <<'PY'
import sys, xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
assert root.tag.endswith("svg") and root.get("width") == "900" and root.get("height") == "420"
ns = "{http://www.w3.org/2000/svg}"
texts = [t.text for t in root.iter(ns + "text")]
for label in ("Loss", "Test accuracy", "iteration", "loss", "accuracy", "train loss (smoothed)", "test loss", "test accuracy"):
    assert label in texts, label
lines = [p.get("points").split() for p in root.iter(ns + "polyline")]
assert len(lines) == 3 and len(lines[0]) == 8 and len(lines[2]) == 5, [len(l) for l in lines]
PY
if command -v rsvg-convert > /dev/null; then
  check "it renders to a 900x420 PNG" sh -c 'rsvg-convert curve.svg > curve.png && python3 -c "
import struct; d = open(\"curve.png\", \"rb\").read(24); assert d[:8] == b\"\\x89PNG\\r\\n\\x1a\\n\"; assert struct.unpack(\">II\", d[16:24]) == (900, 420)"'
fi
expect_error "plot of a file that is not metrics" "holds no training or test lines" "$CAFFEGRID" plot solver.prototxt -o x.svg
expect_error "plot to .png" "name it *.svg" "$CAFFEGRID" plot snapshots/lenet_metrics.jsonl -o x.png
report
