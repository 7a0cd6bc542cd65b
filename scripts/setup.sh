#!/usr/bin/env bash
# Installs what building and testing caffegrid needs on a fresh Debian 12 machine (run as root).
# Debian's Fashion-MNIST (dataset-fashion-mnist) comes too: the examples train on it, and the tests
# read it where ../shared/data is not beside the checkout (--datasets is still accepted).
set -euo pipefail
packages=(build-essential pkg-config protobuf-c-compiler libprotobuf-c-dev libprotobuf-dev libopenblas-dev libdnnl-dev
  protobuf-compiler openmpi-bin libopenmpi-dev liblmdb-dev lmdb-utils libjpeg62-turbo-dev libpng-dev zlib1g-dev libhdf5-dev python3
  slurm-wlm munge liblinear-tools librsvg2-bin)
packages+=(clang libclang-rt-14-dev valgrind) # fuzz/run.sh (libFuzzer) and fuzz/valgrind_train.sh
packages+=(python3-dev python3-venv python3-pip python3-setuptools python3-numpy python3-pytest) # python/ and its tests
packages+=(openjdk-17-jre-headless openjdk-17-jdk-headless) # Spark; javac builds a test's own Hadoop FileSystem
packages+=(qemu-user) # tests/cli_portable.sh runs the default build on an emulated 2008 CPU (Nehalem)
packages+=(dataset-fashion-mnist)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q -o DPkg::Lock::Timeout=600
  apt-get install -y --no-install-recommends -o DPkg::Lock::Timeout=600 "${missing[@]}"
fi
python3 -c 'import numpy, pytest, setuptools' 2>/dev/null || python3 -m pip install -q numpy pytest setuptools # a python3 other than Debian's (pyenv, venv)
python3 -c 'import pyspark' 2>/dev/null || python3 -m pip install -q 'pyspark>=3.5' # caffegrid.spark and its test
# caffegrid.spark moves rows as Arrow batches (mapInArrow needs pyarrow and pandas)
python3 -c 'import pyarrow, pandas' 2>/dev/null || python3 -m pip install -q pyarrow 'pandas>=2.2,<3'
# ONNX export is checked by a real ONNX runtime (tests/python/test_onnx.py, caffegrid export -check)
python3 -c 'import onnxruntime' 2>/dev/null || python3 -m pip install -q onnxruntime
# caffegrid.spark logs a training to MLflow when a run is active (tests/python/test_spark.py)
python3 -c 'import mlflow' 2>/dev/null || python3 -m pip install -q mlflow-skinny
