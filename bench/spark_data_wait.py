#!/usr/bin/env python3
# How long Spark training waits for data: LeNet on Fashion-MNIST rows and CaffeNet on
# JPEG rows (resize 256, crop 227, mirror, mean_value), each trained by
# CaffeOnSpark.train in 2 barrier tasks; the solver's timing line (rank 0) splits
# the iteration into compute, exposed communication and data wait. Writes the
# "Spark training data wait" section of docs/benchmarks.md.
"""Usage: python3 bench/spark_data_wait.py [--no-write]

Needs the caffegrid package importable (PYTHONPATH=build/python), pyspark, pyarrow,
pandas, and ../shared/data (or SHARED_DATA)."""

import argparse
import json
import os
import pathlib
import sys
import tempfile


sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
from spark_features import SHARED, cpu_name, read_idx, write_section  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[1]


def solver(path: pathlib.Path, net: str, iterations: int, prefix: pathlib.Path) -> str:
    # a snapshot at the end only: it gives the run a snapshot_prefix, where rank 0's metrics go
    path.write_text(f'net: "{net}"\nbase_lr: 0.001\nmomentum: 0.9\nlr_policy: "fixed"\ndisplay: 0\n'
                    f'max_iter: {iterations}\nsnapshot: {iterations}\nsnapshot_prefix: "{prefix}"\nrandom_seed: 1\n')
    return str(path)


def timing(prefix: pathlib.Path) -> dict:
    lines = [json.loads(line) for line in open(f"{prefix}_metrics.jsonl")]
    return [line for line in lines if line.get("type") == "timing"][-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    work = pathlib.Path(tempfile.mkdtemp(prefix="caffegrid-bench-"))
    from pyspark.sql import SparkSession

    import caffegrid
    from caffegrid.spark import CaffeOnSpark

    package_dir = os.path.dirname(os.path.dirname(caffegrid.__file__))
    os.environ["PYSPARK_PYTHON"] = os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    spark = (SparkSession.builder.master("local[2]").appName("caffegrid-bench")
             .config("spark.executorEnv.PYTHONPATH", package_dir).config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false").config("spark.driver.memory", "2g").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    results = []

    # LeNet, 4,000 Fashion-MNIST rows (raw pixels), batch 64 per task
    images = read_idx(SHARED / "fashion-mnist" / "train-images-idx3-ubyte.gz")[:4000]
    labels = read_idx(SHARED / "fashion-mnist" / "train-labels-idx1-ubyte.gz")[:4000]
    text = (ROOT / "examples" / "fashion_mnist" / "lenet_train_test.prototxt").read_text()
    body = text[text.index('layer {\n  name: "conv1"'):]
    (work / "lenet.prototxt").write_text(
        'name: "LeNet"\nlayer { name: "data" type: "MemoryData" top: "data" top: "label" include { phase: TRAIN }\n'
        '  transform_param { scale: 0.00390625 } memory_data_param { batch_size: 64 channels: 1 height: 28 width: 28 } }\n'
        + body)
    rows = [(f"{i:05d}", float(labels[i]), images[i].tobytes()) for i in range(len(labels))]
    frame = spark.createDataFrame(rows, "id string, label double, data binary").cache()
    frame.count()
    CaffeOnSpark(spark).train(frame, solver(work / "lenet_solver.prototxt", "lenet.prototxt", 300, work / "lenet"),
                              cluster_size=2)
    results.append(("LeNet, raw 1x28x28 rows, batch 64 per task", timing(work / "lenet")))

    # CaffeNet, JPEG rows resized to 256x256, crop 227 + mirror + mean_value, batch 8 per task
    listing = [line.split() for line in (SHARED / "images" / "images_list.txt").read_text().splitlines()[:16]]
    files = [(SHARED / "images" / path).read_bytes() for path, _ in listing]
    jpeg_rows = [(f"{k:04d}", float(k % 10), files[k % len(files)], True) for k in range(64)]
    net = (ROOT / "examples" / "nets" / "caffenet_time.prototxt").read_text()
    start = net.index("layer {\n  name: \"data\"")
    end = net.index("layer { name: \"conv1\"")
    net = (net[:start] + 'layer { name: "data" type: "MemoryData" top: "data" top: "label"\n'
           '  transform_param { crop_size: 227 mirror: true mean_value: 104 mean_value: 117 mean_value: 123 '
           'force_color: true }\n  memory_data_param { batch_size: 8 channels: 3 height: 256 width: 256 } }\n'
           + net[end:])
    (work / "caffenet.prototxt").write_text(net)
    jpegs = spark.createDataFrame(jpeg_rows, "id string, label double, data binary, encoded boolean").cache()
    jpegs.count()
    CaffeOnSpark(spark, resize=True).train(
        jpegs, solver(work / "caffenet_solver.prototxt", "caffenet.prototxt", 6, work / "caffenet"), cluster_size=2)
    results.append(("CaffeNet, JPEG rows (120x160 to 576x768) resized to 256x256, crop 227, mirror, mean_value, "
                    "batch 8 per task", timing(work / "caffenet")))
    spark.stop()

    cpu = cpu_name()
    table = ["| net and rows | ms per iteration | data wait ms | data wait share |", "|---|---|---|---|"]
    for name, t in results:
        share = t["data_wait_ms"] / t["ms_per_iter"]
        table.append(f"| {name} | {t['ms_per_iter']:.1f} | {t['data_wait_ms']:.2f} | {100 * share:.2f}% |")
        print(f"{name}: {t['ms_per_iter']:.1f} ms per iteration, data wait {t['data_wait_ms']:.2f} ms "
              f"({100 * share:.2f}%)")
    if not args.no_write:
        section = ("## Spark training data wait\n\n"
                   "`bench/spark_data_wait.py`: `CaffeOnSpark.train` in `local[2]`, 2 barrier tasks of 1 core each, "
                   f"on {cpu}. Rank 0's solver timing line: the time its net waited for a prepared batch (rows read "
                   "from the task's local records file, decoded, resized, cropped, mirrored and mean-subtracted in the "
                   "prefetch thread) per iteration.\n\n" + "\n".join(table) + "\n")
        write_section("Spark training data wait", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
