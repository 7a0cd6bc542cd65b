# caffegrid.spark on a real Spark: local-cluster[2,1,1024] runs 2 executors as
# separate JVMs (each with its own Python workers). LeNet trains on Fashion-MNIST
# in one barrier stage of 2 tasks over the TCP ring; the weights equal those of
# the same 2-rank training run in this process over caffegrid.TcpListener; then
# features (one row per input row) feed an MLlib LogisticRegression.
import os
import pathlib
import shutil
import subprocess
import sys
import threading
import types
import time

import numpy as np
import pytest

import caffegrid
from caffegrid import spark as cgspark
from conftest import EXAMPLE_NET, read_idx, write_solver

pyspark = pytest.importorskip("pyspark", reason="pyspark is not installed (python3 -m pip install 'pyspark>=3.5')")
if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
    pytest.skip("no Java runtime for Spark (apt-get install openjdk-17-jre-headless)", allow_module_level=True)

TRAIN_ROWS, TEST_ROWS, ITERATIONS, RANKS = 4000, 2000, 200, 2
SCALE = "transform_param {{ scale: 0.00390625 }}"  # doubled braces: a str.format template


def lenet_spark_prototxt() -> str:
    """The example LeNet with MemoryData layers that keep its transform_param scale."""
    text = EXAMPLE_NET.read_text()
    body = text[text.index('layer {\n  name: "conv1"'):]
    memory = ('layer {{ name: "data" type: "MemoryData" top: "data" top: "label" include {{ phase: {phase} }}\n'
              '  ' + SCALE + '\n  memory_data_param {{ batch_size: {batch} channels: 1 height: 28 width: 28 }} }}\n')
    return 'name: "LeNet"\n' + memory.format(phase="TRAIN", batch=64) + memory.format(phase="TEST", batch=100) + body


@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    package_dir = os.path.dirname(os.path.dirname(caffegrid.__file__))
    os.environ.setdefault("SPARK_HOME", os.path.dirname(pyspark.__file__))
    os.environ["PYSPARK_PYTHON"] = os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    python_path = package_dir + os.pathsep + os.environ.get("PYTHONPATH", "")
    session = (SparkSession.builder.master(f"local-cluster[{RANKS},1,1024]").appName("caffegrid-test")
               .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.executorEnv.PYTHONPATH", python_path)
               .config("spark.executorEnv.OPENBLAS_NUM_THREADS", "1")
               .config("spark.executorEnv.CAFFEGRID_HOST", "127.0.0.1")
               .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", str(RANKS))
               .config("spark.driver.memory", "1g").getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def fashion(shared_data):
    def load(kind, count):
        images = read_idx(shared_data / "fashion-mnist" / f"{kind}-images-idx3-ubyte.gz")[:count]
        labels = read_idx(shared_data / "fashion-mnist" / f"{kind}-labels-idx1-ubyte.gz")[:count]
        return images, labels
    return load("train", TRAIN_ROWS), load("t10k", TEST_ROWS)


def image_frame(spark, images, labels, prefix):
    """CaffeOnSpark's ImageDataFrame columns; RANKS contiguous partitions, in order."""
    from pyspark.sql.types import BinaryType, DoubleType, StringType, StructField, StructType

    schema = StructType([StructField("id", StringType()), StructField("label", DoubleType()),
                         StructField("data", BinaryType())])
    rows = [(f"{prefix}{i:05d}", float(labels[i]), bytes(images[i].tobytes())) for i in range(len(labels))]
    share = -(-len(rows) // RANKS)  # parallelize alone splits on its serialisation batches, not evenly
    chunks = spark.sparkContext.parallelize([rows[i:i + share] for i in range(0, len(rows), share)], RANKS)
    return spark.createDataFrame(chunks.flatMap(lambda chunk: chunk), schema)


def reference_weights(tmp_path, solver_path, shared_data, iterations=ITERATIONS):
    """The same training outside Spark, in a fresh process with one BLAS thread per
    rank as the executors have (OpenBLAS's thread count changes the last bits)."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    subprocess.run([sys.executable, __file__, str(tmp_path), str(solver_path), str(shared_data), str(iterations)],
                   env=env, check=True)
    return tmp_path / "ref.caffemodel"


def reference_in_process(tmp_path, solver_path, images, labels, iterations):
    """RANKS solvers in threads of this process on a TCP ring (caffegrid.TcpListener),
    rank r fed partition r (its contiguous share) cycled as the tasks do."""
    solver_text, net_text = cgspark.read_solver(str(solver_path))
    net_path = tmp_path / "ref_net.prototxt"
    net_path.write_text(net_text)
    (tmp_path / "ref_solver.prototxt").write_text(cgspark.task_solver_text(solver_text, str(net_path), iterations))
    listeners = [caffegrid.TcpListener("127.0.0.1") for _ in range(RANKS)]
    addresses = [f"127.0.0.1:{listener.port}" for listener in listeners]
    share = len(labels) // RANKS
    saved, errors = tmp_path / "ref.caffemodel", []

    def rank(r):
        try:
            comm = listeners[r].connect(r, RANKS, addresses, 60)
            solver = caffegrid.Solver(str(tmp_path / "ref_solver.prototxt"), comm=comm)
            rows = [types.SimpleNamespace(data=images[i].tobytes(), label=labels[i])
                    for i in range(r * share, (r + 1) * share)]
            spill = tmp_path / f"spill{r}"
            spill.mkdir()
            batches = cgspark.cycled_batches(iter(rows), 64, 784, 0.00390625, str(spill))
            while solver.iter < iterations:
                x, y = next(batches)
                solver.net.feed(None, x.reshape(-1, 1, 28, 28), y)
                solver.step(1)
            if r == 0:
                solver.net.save(str(saved))
        except Exception as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=rank, args=(r,)) for r in range(RANKS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return saved


def test_caffe_on_spark_lenet(tmp_path, spark, fashion, shared_data):
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator
    from pyspark.ml.functions import array_to_vector

    (train_x, train_y), (test_x, test_y) = fashion
    (tmp_path / "net.prototxt").write_text(lenet_spark_prototxt())
    solver = write_solver(tmp_path / "solver.prototxt", "net.prototxt", max_iter=ITERATIONS, display=100,
                          test_initialization="false")
    train_df = image_frame(spark, train_x, train_y, "train")
    test_df = image_frame(spark, test_x, test_y, "test")
    cos = cgspark.CaffeOnSpark(spark)

    start = time.time()
    model = tmp_path / "lenet.caffemodel"
    cos.train(train_df, str(solver), model=str(model), cluster_size=RANKS)
    train_s = time.time() - start
    assert model.stat().st_size > 0

    # the same 2-rank training over the TCP communicator without Spark: the same weights
    reference = reference_weights(tmp_path, solver, shared_data)
    spark_net = caffegrid.Net(str(tmp_path / "net.prototxt"), caffegrid.TEST, weights=str(model))
    ref_net = caffegrid.Net(str(tmp_path / "net.prototxt"), caffegrid.TEST, weights=str(reference))
    worst = 0.0
    for layer, blobs in spark_net.params.items():
        for a, b in zip(blobs, ref_net.params[layer]):
            worst = max(worst, float(np.max(np.abs(a.data - b.data)) / max(float(np.max(np.abs(b.data))), 1e-12)))
    assert worst <= 1e-5, f"Spark and in-process TCP training differ: max relative difference {worst:g}"

    scores = cos.test(test_df)
    start = time.time()
    train_features = cos.features(train_df, ["ip1"], label="label").cache()
    test_features = cos.features(test_df, ["ip1"], label="label").cache()
    assert train_features.count() == TRAIN_ROWS and test_features.count() == TEST_ROWS
    assert train_features.select("SampleID").distinct().count() == TRAIN_ROWS
    assert train_features.columns == ["SampleID", "ip1", "label"]
    first = test_features.orderBy("SampleID").first()
    assert first.SampleID == "test00000" and len(first.ip1) == 500 and first.label == float(test_y[0])
    features_s = time.time() - start

    vectors = lambda df: df.select(array_to_vector("ip1").alias("features"), "label")  # noqa: E731
    classifier = LogisticRegression(maxIter=100, regParam=0.001).fit(vectors(train_features))
    predictions = classifier.transform(vectors(test_features))
    accuracy = MulticlassClassificationEvaluator(metricName="accuracy").evaluate(predictions)
    print(f"\nSpark LeNet: {ITERATIONS} iterations x {RANKS} tasks in {train_s:.1f}s, test {scores}, "
          f"features {features_s:.1f}s, LogisticRegression on ip1: accuracy {accuracy:.4f} "
          f"(max weight difference vs in-process TCP {worst:.2g})")
    assert scores["accuracy"] >= 0.70, scores
    assert accuracy >= 0.75, accuracy


if __name__ == "__main__":  # reference_weights' process: TMP SOLVER SHARED_DATA ITERATIONS
    data = pathlib.Path(sys.argv[3]) / "fashion-mnist"
    reference_in_process(pathlib.Path(sys.argv[1]), sys.argv[2],
                         read_idx(data / "train-images-idx3-ubyte.gz")[:TRAIN_ROWS],
                         read_idx(data / "train-labels-idx1-ubyte.gz")[:TRAIN_ROWS], int(sys.argv[4]))
