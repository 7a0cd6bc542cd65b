#!/usr/bin/env python3
"""CaffeOnSpark's MyMLPipeline on caffegrid, as a pyspark.ml Pipeline: LeNet
trained on a Fashion-MNIST DataFrame in a Spark barrier stage (CaffeEstimator),
its `ip1` features as an ML Vector for MLlib's LogisticRegression, and the
pipeline's test accuracy.

    python3 examples/fashion_mnist/spark_pipeline.py                  # local-cluster[2,1,1024]
    spark-submit --master spark://host:7077 examples/fashion_mnist/spark_pipeline.py --master ""

Fashion-MNIST comes from Debian's dataset-fashion-mnist (/usr/share/datasets/
fashion-mnist) or --data. With the defaults (500 iterations on 2 tasks, 10,000
training images) it prints 0.8671 in about 104 s on 2 cores. Needs caffegrid
importable (pip install ./python, or PYTHONPATH=build/python after `make`),
pyspark >= 3.5 and Java.
"""

import argparse
import gzip
import os
import re
import struct
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
DATA_DIRS = ["/usr/share/datasets/fashion-mnist", os.path.join(HERE, "..", "..", "..", "shared", "data", "fashion-mnist")]


def read_idx(path):
    """An idx file (gzip'd): images as uint8 N x 28 x 28, labels as uint8 N."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, n = struct.unpack(">II", raw[:8])
    if magic == 2051:
        rows, cols = struct.unpack(">II", raw[8:16])
        return np.frombuffer(raw, np.uint8, offset=16).reshape(n, rows, cols)
    if magic == 2049:
        return np.frombuffer(raw, np.uint8, offset=8)
    raise SystemExit(f"{path}: not an idx image or label file (magic {magic})")


def image_frame(spark, images, labels, prefix, partitions):
    """CaffeOnSpark's ImageDataFrame columns: id, label, data (raw uint8 pixels)."""
    from pyspark.sql.types import BinaryType, DoubleType, StringType, StructField, StructType

    schema = StructType([StructField("id", StringType()), StructField("label", DoubleType()),
                         StructField("data", BinaryType())])
    rows = [(f"{prefix}{i:05d}", float(labels[i]), images[i].tobytes()) for i in range(len(labels))]
    return spark.createDataFrame(rows, schema).repartition(partitions)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--master", default="local-cluster[2,1,1024]", help='Spark master ("" keeps spark-submit\'s)')
    p.add_argument("--cluster-size", type=int, default=2, help="training tasks")
    p.add_argument("--iterations", type=int, default=500)
    p.add_argument("--train-samples", type=int, default=10000, help="training images (from the 60,000)")
    p.add_argument("--data", help="directory holding Fashion-MNIST's *-idx*-ubyte.gz files")
    p.add_argument("--min-accuracy", type=float, default=0.0, help="exit 1 when the accuracy is below this")
    args = p.parse_args()
    data = args.data or next((d for d in DATA_DIRS if os.path.exists(f"{d}/train-images-idx3-ubyte.gz")), None)
    if data is None:
        raise SystemExit("Fashion-MNIST not found: apt-get install dataset-fashion-mnist, or give --data")

    from pyspark.ml import Pipeline
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator
    from pyspark.sql import SparkSession

    from caffegrid.spark import CaffeEstimator

    builder = SparkSession.builder.appName("caffegrid-fashion-mnist-pipeline")
    if args.master:
        builder = builder.master(args.master).config("spark.driver.host", "127.0.0.1") \
            .config("spark.executorEnv.CAFFEGRID_HOST", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    spark = (builder.config("spark.executorEnv.PYTHONPATH", os.environ.get("PYTHONPATH", ""))
             .config("spark.executorEnv.OPENBLAS_NUM_THREADS", "1")
             .config("spark.ui.showConsoleProgress", "false").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    try:
        n = args.train_samples
        train = image_frame(spark, read_idx(f"{data}/train-images-idx3-ubyte.gz")[:n],
                            read_idx(f"{data}/train-labels-idx1-ubyte.gz")[:n], "train", args.cluster_size)
        test = image_frame(spark, read_idx(f"{data}/t10k-images-idx3-ubyte.gz"),
                           read_idx(f"{data}/t10k-labels-idx1-ubyte.gz"), "test", args.cluster_size)
        with tempfile.TemporaryDirectory(prefix="caffegrid-pipeline-") as work:
            # the shipped CaffeOnSpark form of the net (MemoryData layers), its solver without snapshots
            with open(os.path.join(HERE, "lenet_memory_solver.prototxt")) as f:
                solver = re.sub(r'^(net|snapshot|snapshot_prefix):.*$', "", f.read(), flags=re.M)
            with open(f"{work}/solver.prototxt", "w") as f:
                f.write(solver + f'net: "{os.path.join(HERE, "lenet_memory_train_test.prototxt")}"\n')

            # LeNet trained on the DataFrame, its ip1 features as an ML Vector, MLlib's logistic regression
            pipeline = Pipeline(stages=[
                CaffeEstimator(solver=f"{work}/solver.prototxt", clusterSize=args.cluster_size,
                               iterations=args.iterations, featureBlobs=["ip1"], outputCol="features"),
                LogisticRegression(featuresCol="features", maxIter=100, regParam=0.001)])
            start = time.time()
            model = pipeline.fit(train)
            print(f"fitted LeNet ({args.iterations} iterations on {args.cluster_size} tasks) and the logistic "
                  f"regression in {time.time() - start:.1f}s")
        accuracy = MulticlassClassificationEvaluator(metricName="accuracy").evaluate(model.transform(test))
        print(f"LogisticRegression on ip1 features: test accuracy {accuracy:.4f}")
    finally:
        spark.stop()
    return 0 if accuracy >= args.min_accuracy else 1


if __name__ == "__main__":
    sys.exit(main())
