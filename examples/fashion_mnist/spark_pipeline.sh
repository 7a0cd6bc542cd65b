#!/usr/bin/env bash
# The main job on Spark: builds the Python package from this checkout (after `make`)
# and runs spark_pipeline.py on a local Spark cluster of 2 executors: LeNet trained
# on Fashion-MNIST (CaffeEstimator), its ip1 features into MLlib's LogisticRegression,
# the test accuracy printed. Arguments go to spark_pipeline.py (--iterations N, ...).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=$root/${BUILD:-build}
[ -f "$build/libcaffegrid.a" ] || { echo "build the library first: make -j2" >&2; exit 1; }
(cd "$root/python" && CAFFEGRID_BUILD=$build CAFFEGRID_SAN=0 python3 setup.py -q build \
  --build-base "$build/python-build" --build-lib "$build/python") >"$build/python-build.log" 2>&1 ||
  { cat "$build/python-build.log" >&2; exit 1; }
export PYTHONPATH=$build/python${PYTHONPATH:+:$PYTHONPATH}
exec python3 "$here/spark_pipeline.py" "$@"
