#!/usr/bin/env python3
# Feature extraction through Spark against the Python API in one process, on the
# same cores: BVLC's LeNet with Caffe-trained weights (../shared/data/caffe_ref),
# MNIST t10k, ip2. Writes the "Spark features" section of docs/benchmarks.md.
"""Usage: python3 bench/spark_features.py [--rounds R] [--no-write]

Needs the caffegrid package importable (PYTHONPATH=build/python after
tests/python/run.sh), pyspark, pyarrow and pandas, and ../shared/data (or
SHARED_DATA).

The Python API: one process, the rows' pixels fed to a MemoryData layer as one
float32 array, forward batch after batch, ip2 copied out (math on all the cores).
Spark: local[N] (N = the cores), the same rows as a cached DataFrame of
ImageDataFrame rows (raw uint8 pixels), CaffeOnSpark.features(..., ["ip2"])
written to Spark's "noop" sink (every value computed and handed over), timed
warm (after one untimed run). Both report rows per second; the best of R rounds.
"""

import argparse
import gzip
import os
import pathlib
import re
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
SHARED = pathlib.Path(os.environ.get("SHARED_DATA", ROOT.parent / "shared" / "data"))


def read_idx(path):
    with gzip.open(path) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def write_section(title: str, section: str) -> None:
    """Puts `section` (starting with "## title") into docs/benchmarks.md, replacing an older one."""
    text = DOC.read_text()
    start = text.find(f"## {title}")
    if start >= 0:
        end = text.find("\n## ", start + 3)
        text = text[:start] + section + ("\n" + text[end + 1:] if end >= 0 else "")
    else:
        text = text.rstrip() + "\n\n" + section
    DOC.write_text(text)


def cpu_name() -> str:
    return next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")


def lenet_memory_net(batch: int) -> str:
    """BVLC's LeNet (the Caffe-trained weights' layer names) fed by a MemoryData layer."""
    text = (SHARED / "caffe_ref" / "lenet_nandahkrishna" / "lenet_train_test.prototxt").read_text()
    body = text[text.index('layer {\n  name: "conv1"'):]
    body = re.sub(r'layer \{\n  name: "accuracy".*?\n\}\n', "", body, flags=re.S)
    body = re.sub(r'layer \{\n  name: "loss".*?\n\}\n', "", body, flags=re.S)
    return ('name: "LeNet"\nlayer { name: "data" type: "MemoryData" top: "data" top: "label"\n'
            '  transform_param { scale: 0.00390625 }\n'
            f'  memory_data_param {{ batch_size: {batch} channels: 1 height: 28 width: 28 }} }}\n' + body)


def python_api_rate(net_path: str, weights: str, images: np.ndarray, labels: np.ndarray, batch: int) -> float:
    import caffegrid

    net = caffegrid.Net(net_path, caffegrid.TEST, weights=weights)
    n = len(images) // batch * batch
    start = time.perf_counter()
    data = images[:n].reshape(n, 1, 28, 28).astype(np.float32) * np.float32(0.00390625)
    net.feed(None, data, labels[:n].astype(np.float32))
    out = np.empty((n, 10), np.float32)
    for b in range(n // batch):
        out[b * batch:(b + 1) * batch] = net.forward(blobs=["ip2"])["ip2"].reshape(batch, -1)
    return n / (time.perf_counter() - start)


def spark_rate(spark, frame, rows: int, net_path: str, weights: str) -> float:
    from caffegrid.spark import CaffeOnSpark

    cos = CaffeOnSpark(spark)
    start = time.perf_counter()
    cos.features(frame, ["ip2"], label="label", net=net_path, model=weights).write.mode("overwrite") \
        .format("noop").save()
    return rows / (time.perf_counter() - start)  # rows counted before: a count is a Spark job of its own


def _count_rows(batches):
    import pyarrow as pa

    yield pa.RecordBatch.from_pydict({"rows": [sum(b.num_rows for b in batches)]})


def spark_floor(frame) -> float:
    """Seconds of a Spark job over the same frame that only counts its rows in
    Python (mapInArrow, noop sink): what any features job costs before computing."""
    start = time.perf_counter()
    frame.mapInArrow(_count_rows, "rows long").write.mode("overwrite").format("noop").save()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeat", type=int, default=6, help="also time the rows repeated this many times")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    images = read_idx(SHARED / "mnist" / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(SHARED / "mnist" / "t10k-labels-idx1-ubyte.gz")
    weights = str(SHARED / "caffe_ref" / "lenet_nandahkrishna" / "lenet_iter_10000.caffemodel")
    work = tempfile.mkdtemp(prefix="caffegrid-bench-")
    net_path = os.path.join(work, "lenet_memory.prototxt")
    with open(net_path, "w") as f:
        f.write(lenet_memory_net(100))

    from pyspark.sql import SparkSession

    import caffegrid

    package_dir = os.path.dirname(os.path.dirname(caffegrid.__file__))
    os.environ["PYSPARK_PYTHON"] = os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    spark = (SparkSession.builder.master(f"local[{cores}]").appName("caffegrid-bench")
             .config("spark.executorEnv.PYTHONPATH", package_dir).config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false").config("spark.driver.memory", "2g").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    results = []
    for repeat in (1, args.repeat):
        imgs, labs = np.tile(images, (repeat, 1, 1)), np.tile(labels, repeat)
        rows = [(f"{i:06d}", float(labs[i]), imgs[i].tobytes()) for i in range(len(labs))]
        frame = spark.createDataFrame(spark.sparkContext.parallelize(rows, cores),
                                      "id string, label double, data binary").cache()
        frame.count()
        spark_rate(spark, frame, len(labs), net_path, weights)  # warm: workers started, weights shipped once
        spark_floor(frame)
        python_rates, spark_rates, floors = [], [], []
        for _ in range(args.rounds):
            python_rates.append(python_api_rate(net_path, weights, imgs, labs, 100))
            spark_rates.append(spark_rate(spark, frame, len(labs), net_path, weights))
            floors.append(spark_floor(frame))
        frame.unpersist()
        results.append((len(labs), max(python_rates), max(spark_rates), min(floors)))
    spark.stop()
    cpu = cpu_name()
    for rows, best_python, best_spark, floor in results:
        print(f"{rows} rows: Python API, one process: {best_python:,.0f} rows/s; Spark local[{cores}] features: "
              f"{best_spark:,.0f} rows/s ({best_spark / best_python:.2f} of one process) on {cores} cores, {cpu}; "
              f"a Spark job that only counts the rows: {floor:.3f} s, {floor * best_python / rows:.2f} of the "
              "one-process time")
    if not args.no_write:
        table = "".join(f"| {rows:,} | {p:,.0f} | {s:,.0f} | {s / p:.2f} | {f:.3f} s ({f * p / rows:.2f}) |\n"
                        for rows, p, s, f in results)
        section = ("## Spark features\n\n"
                   "`bench/spark_features.py`: BVLC's LeNet with Caffe-trained weights over MNIST t10k (10,000 rows; "
                   f"and the same rows {args.repeat} times over), blob ip2, best of {args.rounds} rounds, on {cores} "
                   f"cores ({cpu}). The Python API feeds one float32 array to a MemoryData layer in one process, math "
                   f"on {cores} threads; Spark runs `CaffeOnSpark.features` on a cached DataFrame of raw pixel rows in "
                   f"`local[{cores}]` ({cores} tasks of one core), warm, written to the `noop` sink: rows travel as "
                   "Arrow batches, are written to a local records file in C, read by the MemoryData layer as a Data "
                   "layer reads an LMDB, and ip2 leaves as an Arrow list column. The last column is Spark's floor: "
                   "a job over the same cached frame whose Python tasks only count their rows (in parentheses, as a "
                   "share of the one-process time); a features job cannot take less.\n\n"
                   "| rows | Python API, one process (rows/s) | Spark `features` (rows/s) | Spark / one process | "
                   "Spark job floor |\n"
                   "|---|---|---|---|---|\n" + table)
        write_section("Spark features", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
