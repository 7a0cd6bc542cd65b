# caffegrid.spark on a real Spark: local-cluster[2,1,1024] runs 2 executors as
# separate JVMs (each with its own Python workers). LeNet trains on Fashion-MNIST
# in one barrier stage of 2 tasks over the TCP ring; the weights equal those of
# the same 2-rank training run in this process over caffegrid.TcpListener; then
# features (one row per input row) feed an MLlib LogisticRegression. Then: a
# training task is killed mid-run (the retried stage resumes from the last
# snapshot), validation rounds with an LMDB path and PNG-encoded rows as sources,
# and CaffeOnSpark's command line through spark-submit.
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import threading
import types
import time

import numpy as np
import pytest

import caffegrid
from caffegrid import spark as cgspark
from caffegrid import spark_submit
from conftest import EXAMPLE_NET, lenet_spark_prototxt, png_bytes, read_idx, require_data, write_solver

pyspark = pytest.importorskip("pyspark", reason="pyspark is not installed (python3 -m pip install 'pyspark>=3.5')")
if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
    pytest.skip("no Java runtime for Spark (apt-get install openjdk-17-jre-headless)", allow_module_level=True)

TRAIN_ROWS, TEST_ROWS, ITERATIONS, RANKS = 4000, 2000, 200, 2


@pytest.fixture(scope="module")
def executor_tmp(tmp_path_factory):
    """The executors' TMPDIR: the kill test finds a rank's process by its work directory there."""
    return tmp_path_factory.mktemp("executor-tmp")


TEST_FILESYSTEM = """
import java.net.URI;
import org.apache.hadoop.fs.RawLocalFileSystem;

/** The local disk under another scheme: proves a path goes through Hadoop's FileSystem. */
public class CgTestFileSystem extends RawLocalFileSystem {
  @Override public String getScheme() { return "cgtest"; }
  @Override public URI getUri() { return URI.create("cgtest:///"); }
}
"""


@pytest.fixture(scope="module")
def cgtest_jar(tmp_path_factory):
    """A jar with a Hadoop FileSystem for the scheme cgtest:// (the local disk),
    compiled against the Hadoop jars pyspark ships; None without javac."""
    javac = shutil.which("javac")
    if not javac:
        return None
    folder = tmp_path_factory.mktemp("cgtestfs")
    api = next((pathlib.Path(pyspark.__file__).parent / "jars").glob("hadoop-client-api-*.jar"))
    (folder / "CgTestFileSystem.java").write_text(TEST_FILESYSTEM)
    subprocess.run([javac, "-cp", str(api), "-d", str(folder / "classes"), str(folder / "CgTestFileSystem.java")],
                   check=True, capture_output=True)
    subprocess.run(["jar" if shutil.which("jar") else str(pathlib.Path(javac).parent / "jar"), "cf",
                    str(folder / "cgtestfs.jar"), "-C", str(folder / "classes"), "."], check=True, capture_output=True)
    return folder / "cgtestfs.jar"


def need_cgtest(jar):
    if jar is None:
        pytest.skip("no javac to build the test's Hadoop FileSystem (apt-get install openjdk-17-jdk-headless)")


@pytest.fixture(scope="module")
def spark(executor_tmp, cgtest_jar):
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
               .config("spark.executorEnv.TMPDIR", str(executor_tmp))
               .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
               .config("spark.sql.shuffle.partitions", str(RANKS))
               .config("spark.jars", str(cgtest_jar or "")).config("spark.hadoop.fs.cgtest.impl", "CgTestFileSystem")
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


def image_frame(spark, images, labels, prefix, encoded=False):
    """CaffeOnSpark's ImageDataFrame columns (with encoded: PNG files in data, and the
    optional encoded/channels/height/width columns); RANKS contiguous partitions, in order."""
    from pyspark.sql.types import BinaryType, BooleanType, DoubleType, IntegerType, StringType, StructField, StructType

    fields = [StructField("id", StringType()), StructField("label", DoubleType()), StructField("data", BinaryType())]
    if encoded:
        fields += [StructField("encoded", BooleanType())] + [StructField(n, IntegerType())
                                                              for n in ("channels", "height", "width")]
        rows = [(f"{prefix}{i:05d}", float(labels[i]), png_bytes(images[i]), True, 1, 28, 28)
                for i in range(len(labels))]
    else:
        rows = [(f"{prefix}{i:05d}", float(labels[i]), bytes(images[i].tobytes())) for i in range(len(labels))]
    schema = StructType(fields)
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
    rank r reading rows r, r+RANKS, ... (the tasks' share) from a records file, as the tasks do."""
    solver_text, net_text = cgspark.read_solver(str(solver_path))
    net_path = tmp_path / "ref_net.prototxt"
    net_path.write_text(net_text)
    # the solver as the tasks run it: its text with the net, iterations and no snapshots or tests
    overrides = dict(text=solver_text, net_path=str(net_path), max_iter=iterations,
                     snapshot_prefix=str(tmp_path / "ref_solver"), no_interval_snapshots=True, no_testing=True)
    listeners = [caffegrid.TcpListener("127.0.0.1") for _ in range(RANKS)]
    addresses = [f"127.0.0.1:{listener.port}" for listener in listeners]
    saved, errors = tmp_path / "ref.caffemodel", []

    def rank(r):
        try:
            comm = listeners[r].connect(r, RANKS, addresses, 60)
            solver = caffegrid.Solver(str(solver_path), comm=comm, **overrides)
            # the task's share, written and read as the tasks write and read it
            import pyarrow as pa

            share = range(r, len(labels), RANKS)
            batch = pa.RecordBatch.from_pydict({"id": [f"train{i:05d}" for i in share],
                                                "label": [float(labels[i]) for i in share],
                                                "data": [images[i].tobytes() for i in share]})
            records = str(tmp_path / f"rank{r}.records")
            writer = caffegrid._caffegrid.RecordsWriter(records)
            cgspark.spark_data.write_batch(writer, batch, (1, 28, 28))
            writer.close()
            solver.net.feed_source(None, "records", records, rank_share=True)
            solver.step(iterations)
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


@pytest.fixture(scope="module")
def trained(tmp_path_factory, spark, fashion):
    """LeNet trained in Spark for ITERATIONS iterations on 2 tasks (the kill test's uninterrupted run)."""
    tmp_path = tmp_path_factory.mktemp("trained")
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
    return types.SimpleNamespace(dir=tmp_path, solver=solver, model=model, cos=cos, train_df=train_df,
                                 test_df=test_df, train_s=time.time() - start)


def max_relative_difference(net_path, model_a, model_b) -> float:
    a = caffegrid.Net(str(net_path), caffegrid.TEST, weights=str(model_a))
    b = caffegrid.Net(str(net_path), caffegrid.TEST, weights=str(model_b))
    worst = 0.0
    for layer, blobs in a.params.items():
        for x, y in zip(blobs, b.params[layer]):
            worst = max(worst, float(np.max(np.abs(x.data - y.data)) / max(float(np.max(np.abs(y.data))), 1e-12)))
    return worst


def test_caffe_on_spark_lenet(tmp_path, trained, fashion, shared_data):
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.evaluation import MulticlassClassificationEvaluator
    from pyspark.ml.functions import array_to_vector

    (train_x, train_y), (test_x, test_y) = fashion
    cos, model, solver, train_s = trained.cos, trained.model, trained.solver, trained.train_s
    train_df, test_df = trained.train_df, trained.test_df
    assert model.stat().st_size > 0

    # the same 2-rank training over the TCP communicator without Spark: the same weights
    reference = reference_weights(tmp_path, solver, shared_data)
    worst = max_relative_difference(trained.dir / "net.prototxt", model, reference)
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


def task_pid(executor_tmp, rank):
    """The Python worker running training rank `rank`: the process mapping its local
    copy of its rows (caffegrid-rankR-*/train.records in an executor's local dir), or None."""
    marker = f"/caffegrid-rank{rank}-"
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/maps") as f:
                    if any(marker in line and line.rstrip().endswith("/train.records") for line in f):
                        return int(entry)
            except OSError:
                continue  # gone, or not ours
    return None


def wait_for(what, condition, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"waited {seconds}s for {what}")


@pytest.mark.parametrize("scheme", ["local", "cgtest"])
def test_killed_task_resumes_from_last_snapshot(tmp_path, spark, trained, executor_tmp, cgtest_jar, scheme):
    """SIGKILL rank 1's Python worker after the first snapshot: Spark retries the
    barrier stage, the retry resumes from the newest snapshot, and the final weights
    equal the uninterrupted run's (`trained`), bit for bit. The snapshot prefix is
    a local folder, or a Hadoop URI of a scheme of the test's own (cgtest://, the
    local disk through Hadoop's FileSystem in the driver's JVM)."""
    if scheme == "cgtest":
        need_cgtest(cgtest_jar)
    (tmp_path / "net.prototxt").write_text(lenet_spark_prototxt())
    prefix = tmp_path / "snapshots" / "lenet"
    named = f"cgtest://{prefix}" if scheme == "cgtest" else str(prefix)
    solver = write_solver(tmp_path / "solver.prototxt", "net.prototxt", max_iter=ITERATIONS, display=100,
                          test_initialization="false", snapshot=50, snapshot_prefix=f'"{named}"')
    cos, outcome = cgspark.CaffeOnSpark(spark), {}

    def train():
        try:
            outcome["model"] = cos.train(trained.train_df, str(solver), model=str(tmp_path / "final.caffemodel"),
                                         cluster_size=RANKS)
        except Exception as e:  # noqa: BLE001 - reported below
            outcome["error"] = e
    runner = threading.Thread(target=train, daemon=True)
    runner.start()
    wait_for("the snapshot of iteration 50", lambda: pathlib.Path(f"{prefix}_iter_50.cgstate").exists(), 120)
    pid = wait_for("rank 1's process", lambda: task_pid(executor_tmp, 1), 10)
    os.kill(pid, signal.SIGKILL)
    killed = time.time()
    runner.join(90)
    if runner.is_alive():
        spark.sparkContext.cancelAllJobs()
        runner.join(30)
        pytest.fail("training hung for 90 s after a task was killed")
    recovered_s = time.time() - killed
    assert "error" not in outcome, f"training did not recover: {outcome.get('error')}"
    resumed = re.search(r"lenet_iter_(\d+)\.solverstate$", cos.resumed_from or "")
    assert resumed and 50 <= int(resumed.group(1)) < ITERATIONS, cos.resumed_from
    assert cos.resumed_from.startswith(named), cos.resumed_from
    assert pathlib.Path(f"{prefix}_iter_{ITERATIONS}.caffemodel").exists()
    worst = max_relative_difference(tmp_path / "net.prototxt", tmp_path / "final.caffemodel", trained.model)
    print(f"\nkilled rank 1 (pid {pid}) after iteration {resumed.group(1)}'s snapshot; resumed from it and finished "
          f"{recovered_s:.1f}s after the kill; max weight difference vs the uninterrupted run {worst:.2g}")
    assert worst == 0.0, f"the resumed run's weights differ from the uninterrupted run's by {worst:g}"
    assert recovered_s < 60


def test_validation_rounds_lmdb_and_encoded_sources(tmp_path, spark, fashion, cli, shared_data):
    """train_with_validation from an LMDB path (read by the tasks through the C
    source), validated on a DataFrame of PNG-encoded rows: rounds at 0, 30, 60, the
    last equal to test() over the same rows; PNG rows give the same features as the
    raw pixels; an LMDB path gives one feature row per record; a broken image is
    named in the error."""
    (train_x, train_y), (test_x, test_y) = fashion
    data = shared_data / "fashion-mnist"
    lmdb = tmp_path / "train_lmdb"
    subprocess.run([cli, "convert", "mnist", str(data / "train-images-idx3-ubyte.gz"),
                    str(data / "train-labels-idx1-ubyte.gz"), str(lmdb), "--limit=2000"], check=True, capture_output=True)
    (tmp_path / "net.prototxt").write_text(lenet_spark_prototxt())
    solver = write_solver(tmp_path / "solver.prototxt", "net.prototxt", max_iter=60, test_interval=30, display=0)
    validation = image_frame(spark, test_x[:600], test_y[:600], "val", encoded=True)
    cos = cgspark.CaffeOnSpark(spark)
    rounds = cos.train_with_validation(str(lmdb), validation, str(solver), cluster_size=RANKS)
    assert rounds.columns == ["iteration", "accuracy", "loss"]
    rows = rounds.orderBy("iteration").collect()
    assert [r.iteration for r in rows] == [0, 30, 60]
    assert rows[0].accuracy < 0.3 and rows[-1].accuracy > 0.5, rows
    scores = cos.test(validation)  # the final weights over the same 600 rows
    assert abs(scores["accuracy"] - rows[-1].accuracy) < 1e-5 and abs(scores["loss"] - rows[-1].loss) < 1e-4

    raw = image_frame(spark, test_x[:600], test_y[:600], "val")
    decoded = {r.SampleID: r for r in cos.features(validation, ["ip1"], label="label").collect()}
    plain = {r.SampleID: r for r in cos.features(raw, ["ip1"], label="label").collect()}
    assert len(decoded) == 600 and decoded.keys() == plain.keys()
    assert all(decoded[k].ip1 == plain[k].ip1 and decoded[k].label == plain[k].label for k in plain)

    from_lmdb = cos.features(str(lmdb), ["ip1"], label="label").collect()
    assert len(from_lmdb) == 2000 and len({r.SampleID for r in from_lmdb}) == 2000
    assert all(r.label == float(train_y[int(r.SampleID)]) for r in from_lmdb)
    print(f"\nvalidation rounds {[(r.iteration, round(r.accuracy, 4)) for r in rows]}, test() {scores}")

    from pyspark.sql.types import BinaryType, BooleanType, DoubleType, StringType, StructField, StructType
    schema = StructType([StructField("id", StringType()), StructField("label", DoubleType()),
                         StructField("data", BinaryType()), StructField("encoded", BooleanType())])
    broken = spark.createDataFrame([("broken7", 1.0, b"not an image", True)], schema)
    with pytest.raises(Exception, match=r"row 'broken7': not a JPEG or PNG image"):
        cos.features(broken, ["ip1"]).collect()


def test_tasks_use_the_cores_spark_gives_them(spark):
    """A task's math and loops run on spark.task.cpus threads (1 here), not on every core
    of the machine (nor the executor's, which PySpark puts in OMP_NUM_THREADS), unless
    the user's OPENBLAS_NUM_THREADS says otherwise."""
    def probe(_):
        from pyspark import TaskContext

        import caffegrid
        from caffegrid import spark as cgs

        ctx = TaskContext.get()
        saved = os.environ.pop("OPENBLAS_NUM_THREADS", None)  # the fixture's; put back below
        try:
            caffegrid.set_math_threads(2)
            caffegrid.set_num_threads(2)
            cgs._use_task_cores(ctx)
            given = (caffegrid.get_math_threads(), caffegrid.get_num_threads())
            os.environ["OPENBLAS_NUM_THREADS"] = "2"
            caffegrid.set_math_threads(2)
            cgs._use_task_cores(ctx)
            kept = caffegrid.get_math_threads()
        finally:
            os.environ.pop("OPENBLAS_NUM_THREADS", None)
            if saved is not None:
                os.environ["OPENBLAS_NUM_THREADS"] = saved
            caffegrid.set_math_threads(int(saved or 1))
        yield ctx.cpus(), given, kept

    assert spark.sparkContext.parallelize(range(RANKS), RANKS).mapPartitions(probe).collect() == [(1, (1, 1), 2)] * RANKS


def test_task_error_fails_the_job_with_its_message(tmp_path, spark, fashion):
    """A bad row (700 bytes among 784-byte rows) fails the job within 40 s, raised on
    the driver as the library's own exception naming the row; a label outside the
    net's classes, met by one rank during training while its peer waits in the
    allreduce, ends the job at the first attempt the same way; a cluster_size above
    the slots is refused in seconds, naming both numbers."""
    (train_x, train_y), _ = fashion
    (tmp_path / "net.prototxt").write_text(lenet_spark_prototxt())
    solver = write_solver(tmp_path / "solver.prototxt", "net.prototxt", max_iter=50, display=0)
    frame = image_frame(spark, train_x[:256], train_y[:256], "ok")
    bad = spark.createDataFrame([("bad0200", 1.0, b"x" * 700)], frame.schema)
    source = frame.filter("id < 'ok00200'").union(bad).union(frame.filter("id > 'ok00200'")).coalesce(RANKS)
    start = time.time()
    with pytest.raises(caffegrid.ShapeError, match=r"row 'bad0200': 700 bytes of data; its shape 1x28x28 takes 784 uint8"):
        cgspark.CaffeOnSpark(spark).train(source, str(solver), cluster_size=RANKS)
    failed_s = time.time() - start
    print(f"\na bad row: the job failed after {failed_s:.1f}s")
    assert failed_s < 40
    label = spark.createDataFrame([("ok00201", 12.0, bytes(train_x[201].tobytes()))], frame.schema)
    source = frame.filter("id != 'ok00201'").union(label)
    start = time.time()
    with pytest.raises(caffegrid.InvalidArgumentError, match=r"record 'ok00201': label 12 is outside \[0, 10\)"):
        cgspark.CaffeOnSpark(spark).train(source, str(solver), cluster_size=RANKS)
    failed_s = time.time() - start
    print(f"a label outside the classes, met during training: the job failed after {failed_s:.1f}s")
    assert failed_s < 40
    hdfs = tmp_path / "hdfs_solver.prototxt"
    hdfs.write_text(solver.read_text().replace('snapshot_prefix: "snapshots/lenet"', 'snapshot_prefix: "hdfs:///snaps/lenet"')
                    .replace("snapshot: 0", "snapshot: 10"))
    # an HDFS URI without a name node (and no default one configured): refused before training, with HDFS's reason
    with pytest.raises(caffegrid.IOError, match=r"snapshot_prefix 'hdfs:///snaps/lenet': Incomplete HDFS URI, no host"):
        cgspark.CaffeOnSpark(spark).train(frame, str(hdfs), cluster_size=RANKS)
    assert not pathlib.Path("hdfs:").exists() and not (tmp_path / "hdfs:").exists()
    start = time.time()
    with pytest.raises(caffegrid.InvalidArgumentError, match=r"cluster_size 3 needs 3 task slots at once \(a barrier "
                       r"stage\), but this Spark application has 2"):
        cgspark.CaffeOnSpark(spark).train(frame, str(solver), cluster_size=3)
    assert time.time() - start < 60


def caffeonspark_net(sources) -> str:
    """lenet_spark_prototxt with CaffeOnSpark's data sources: {phase: (source_class, source)}."""
    net = lenet_spark_prototxt()
    for phase, (kind, source) in sources.items():
        net = net.replace(f"include {{ phase: {phase} }}", f'include {{ phase: {phase} }} source_class: "{kind}"', 1)
        at = net.index("memory_data_param {", net.index(f"phase: {phase}")) + len("memory_data_param {")
        net = net[:at] + f' source: "{source}"' + net[at:]
    return net


def test_spark_submit_test_and_dataframe_source(tmp_path, spark, trained, fashion, cli, shared_data):
    """spark_submit.run in this session: -test over an LMDB gives the accuracy and loss
    `caffegrid test` prints for the same weights and images; -features reads an
    ImageDataFrame (parquet) source, one row per row."""
    data = shared_data / "fashion-mnist"
    lmdb = tmp_path / "test_lmdb"
    subprocess.run([cli, "convert", "mnist", str(data / "t10k-images-idx3-ubyte.gz"),
                    str(data / "t10k-labels-idx1-ubyte.gz"), str(lmdb), "--limit=600"], check=True, capture_output=True)
    (tmp_path / "net.prototxt").write_text(caffeonspark_net({"TEST": ("com.yahoo.ml.caffe.LMDB", f"file:{lmdb}")}))
    solver = write_solver(tmp_path / "solver.prototxt", "net.prototxt")
    spark_submit.run(spark, spark_submit.parse_args(["-test", "-conf", str(solver), "-model", str(trained.model),
                                                     "-output", str(tmp_path / "test_out")]))
    import json
    scores = json.loads((tmp_path / "test_out" / "test_result.json").read_text())

    # the CLI over the same LMDB, through the example's Data-layer net (same scale, batch 100): 6 batches
    cli_net = EXAMPLE_NET.read_text().replace("fashion_mnist_test_lmdb", str(lmdb))
    (tmp_path / "cli_net.prototxt").write_text(cli_net)
    out = subprocess.run([cli, "test", "-model", str(tmp_path / "cli_net.prototxt"), "-weights", str(trained.model),
                          "-iterations", "6"], check=True, capture_output=True, text=True).stderr
    cli_scores = {m.group(1): float(m.group(2)) for m in re.finditer(r"\] (accuracy|loss) = ([0-9.e+-]+)", out)}
    assert set(cli_scores) == {"accuracy", "loss"}, out[-2000:]
    assert abs(scores["accuracy"] - cli_scores["accuracy"]) < 1e-5 and abs(scores["loss"] - cli_scores["loss"]) < 1e-4

    (_, _), (test_x, test_y) = fashion
    parquet = tmp_path / "images.parquet"
    image_frame(spark, test_x[:300], test_y[:300], "img", encoded=True).write.parquet(str(parquet))
    (tmp_path / "net.prototxt").write_text(caffeonspark_net({"TEST": ("com.yahoo.ml.caffe.ImageDataFrame", str(parquet))}))
    spark_submit.run(spark, spark_submit.parse_args(["-features", "ip1,ip2", "-label", "label", "-conf", str(solver),
                                                     "-model", str(trained.model), "-output", str(tmp_path / "f"),
                                                     "-outputFormat", "parquet"]))
    rows = spark.read.parquet(str(tmp_path / "f")).collect()
    assert len(rows) == 300 and len({r.SampleID for r in rows}) == 300
    assert all(len(r.ip1) == 500 and len(r.ip2) == 10 and r.label == float(test_y[int(r.SampleID[3:])]) for r in rows)
    by_id = {r.SampleID: r for r in rows}
    for fmt in ("csv", "libsvm"):
        spark_submit.run(spark, spark_submit.parse_args(["-features", "ip2", "-label", "label", "-conf", str(solver),
                                                         "-model", str(trained.model), "-output", str(tmp_path / fmt),
                                                         "-outputFormat", fmt]))
    csv = spark.read.option("header", True).option("inferSchema", True).csv(str(tmp_path / "csv")).collect()
    assert len(csv) == 300 and csv[0].asDict().keys() == {"SampleID", "label", *(f"ip2_{i}" for i in range(10))}
    assert all(abs(r[f"ip2_{i}"] - by_id[r.SampleID].ip2[i]) < 1e-4 * max(1.0, abs(by_id[r.SampleID].ip2[i]))
               for r in csv for i in range(10))
    svm = spark.read.format("libsvm").option("numFeatures", 10).load(str(tmp_path / "libsvm")).collect()
    assert len(svm) == 300 and sorted(r.label for r in svm) == sorted(r.label for r in rows)
    svm_values = sorted(tuple(np.round(r.features.toArray(), 3)) for r in svm)
    assert svm_values == sorted(tuple(np.round(np.array(r.ip2, np.float64), 3)) for r in rows)
    print(f"\nspark_submit -test {scores} (caffegrid test: {cli_scores})")


def caffeonspark_lmdbs(tmp_path, cli, shared_data, train_rows, test_rows):
    """Fashion-MNIST LMDBs and a CaffeOnSpark net reading them (MemoryData source/source_class)."""
    data = shared_data / "fashion-mnist"
    for kind, name, limit in (("train", "train_lmdb", train_rows), ("t10k", "test_lmdb", test_rows)):
        subprocess.run([cli, "convert", "mnist", str(data / f"{kind}-images-idx3-ubyte.gz"),
                        str(data / f"{kind}-labels-idx1-ubyte.gz"), str(tmp_path / name), f"--limit={limit}"],
                       check=True, capture_output=True)
    net = caffeonspark_net({"TRAIN": ("com.yahoo.ml.caffe.LMDB", f"file:{tmp_path / 'train_lmdb'}"),
                            "TEST": ("com.yahoo.ml.caffe.LMDB", f"file:{tmp_path / 'test_lmdb'}")})
    (tmp_path / "net.prototxt").write_text(net)


def spark_submit_run(*flags, spark_args=()):
    """spark_submit.py through spark-submit on its own local-cluster of RANKS executors."""
    package_dir = os.path.dirname(os.path.dirname(caffegrid.__file__))
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable, PYSPARK_DRIVER_PYTHON=sys.executable,
               PYTHONPATH=package_dir + os.pathsep + os.environ.get("PYTHONPATH", ""),
               SPARK_HOME=os.environ.get("SPARK_HOME", os.path.dirname(pyspark.__file__)))
    command = [os.path.join(env["SPARK_HOME"], "bin", "spark-submit"), "--master", f"local-cluster[{RANKS},1,1024]",
               *spark_args, "--conf", "spark.driver.host=127.0.0.1", "--conf", "spark.ui.enabled=false",
               "--conf", f"spark.executorEnv.PYTHONPATH={env['PYTHONPATH']}",
               "--conf", "spark.executorEnv.OPENBLAS_NUM_THREADS=1", "--conf", "spark.executorEnv.CAFFEGRID_HOST=127.0.0.1",
               os.path.join(os.path.dirname(caffegrid.__file__), "spark_submit.py"), *flags]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def test_spark_submit_caffeonspark_flags(tmp_path, cli, shared_data):
    """CaffeOnSpark's command line through spark-submit (its own local-cluster of 2
    executors): -train -persistent -features ip1 -label label -conf -model -output
    -outputFormat json, the cluster size from --num-executors 2 (no -clusterSize),
    data from the MemoryData layers' source/source_class."""
    caffeonspark_lmdbs(tmp_path, cli, shared_data, 1000, 300)
    solver = write_solver(tmp_path / "solver.prototxt", "net.prototxt", max_iter=40, display=0)
    start = time.time()
    run = spark_submit_run("-train", "-persistent", "-features", "ip1", "-label", "label", "-conf", str(solver),
                           "-model", str(tmp_path / "out.caffemodel"), "-output", str(tmp_path / "features"),
                           "-outputFormat", "json", "-devices", "1", spark_args=["--num-executors", str(RANKS)])
    assert run.returncode == 0, run.stderr[-3000:]
    said = [line for line in (run.stderr + run.stdout).splitlines() if "caffegrid:" in line]
    assert f"caffegrid: trained on {RANKS} task(s); final model {tmp_path / 'out.caffemodel'}" in said, said
    assert any(s.startswith("caffegrid: -persistent: sources on Hadoop filesystems are read once") for s in said), said
    assert (tmp_path / "out.caffemodel").stat().st_size > 0 and (tmp_path / "features" / "_SUCCESS").exists()
    import json
    rows = [json.loads(line) for part in sorted((tmp_path / "features").glob("part-*"))
            for line in part.read_text().splitlines()]
    labels = read_idx(shared_data / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz")
    assert len(rows) == 300 and len({r["SampleID"] for r in rows}) == 300
    assert all(len(r["ip1"]) == 500 and r["label"] == float(labels[int(r["SampleID"])]) for r in rows)
    print(f"\nspark-submit -train -features: {time.time() - start:.1f}s, 300 feature rows")


MPI_ENV = dict(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMPI_MCA_rmaps_base_oversubscribe="1",
               OMPI_MCA_mpi_yield_when_idle="1", OPENBLAS_NUM_THREADS="1")


def lenet_with(data_layer: str, transform: str) -> str:
    """The example LeNet with only a TRAIN data layer, this one."""
    text = EXAMPLE_NET.read_text()
    body = text[text.index('layer {\n  name: "conv1"'):]
    return (f'name: "LeNet"\nlayer {{ name: "data" top: "data" top: "label" include {{ phase: TRAIN }}\n'
            f'  transform_param {{ {transform} }} {data_layer} }}\n' + body)


def relative_blob_differences(net_path, model_a, model_b):
    """Per learnable blob: max |a - b| / max |b| (the issue's 'to 1e-6 of each blob's largest value')."""
    a = caffegrid.Net(str(net_path), caffegrid.TRAIN, weights=str(model_a))
    b = caffegrid.Net(str(net_path), caffegrid.TRAIN, weights=str(model_b))
    return {f"{layer}[{i}]": float(np.max(np.abs(x.data - y.data)) / max(float(np.max(np.abs(y.data))), 1e-30))
            for layer, blobs in a.params.items() for i, (x, y) in enumerate(zip(blobs, b.params[layer]))}


def plain_solver(path, net, iterations, prefix, base_lr=0.01):
    """lenet_solver's settings without test nets (the nets here have no TEST data layer)."""
    path.write_text(f'net: "{net}"\nbase_lr: {base_lr}\nmomentum: 0.9\nweight_decay: 0.0005\nlr_policy: "inv"\n'
                    f'gamma: 0.0001\npower: 0.75\ndisplay: 0\nmax_iter: {iterations}\nsnapshot: 0\n'
                    f'snapshot_prefix: "{prefix}"\nrandom_seed: 1701\n')
    return path


def mpirun_train(tmp_path, cli, solver, ranks=RANKS):
    run = subprocess.run(["mpirun", "-np", str(ranks), cli, "train", "-solver", str(solver)], cwd=tmp_path,
                         env=dict(os.environ, **MPI_ENV), capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]


def test_dataframe_trains_exactly_as_an_lmdb_under_mpirun(tmp_path, spark, cli, shared_data):
    """LeNet on 24x24 random crops with mirror and mean_value: 1,024 Fashion-MNIST rows of
    a shuffled DataFrame in a 2-task barrier stage, and the same records in an LMDB
    (keys = the rows' ids) under mpirun -np 2: the same weights, to 1e-6 of each blob's
    largest value. Then train() twice on the rows repartition(3)'d, uncached: identical."""
    data = shared_data / "fashion-mnist"
    count, iterations = 1024, 30
    lmdb = tmp_path / "train_lmdb"
    subprocess.run([cli, "convert", "mnist", str(data / "train-images-idx3-ubyte.gz"),
                    str(data / "train-labels-idx1-ubyte.gz"), str(lmdb), f"--limit={count}"], check=True,
                   capture_output=True)
    transform = "crop_size: 24 mirror: true mean_value: 33 scale: 0.00390625"
    (tmp_path / "lmdb_net.prototxt").write_text(lenet_with(
        f'type: "Data" data_param {{ source: "{lmdb}" batch_size: 64 backend: LMDB }}', transform))
    (tmp_path / "frame_net.prototxt").write_text(lenet_with(
        'type: "MemoryData" memory_data_param { batch_size: 64 channels: 1 height: 28 width: 28 }', transform))
    lmdb_solver = plain_solver(tmp_path / "lmdb_solver.prototxt", "lmdb_net.prototxt", iterations, tmp_path / "lmdb")
    frame_solver = plain_solver(tmp_path / "frame_solver.prototxt", "frame_net.prototxt", iterations,
                                tmp_path / "frame")
    mpirun_train(tmp_path, cli, lmdb_solver)

    images = read_idx(data / "train-images-idx3-ubyte.gz")[:count]
    labels = read_idx(data / "train-labels-idx1-ubyte.gz")[:count]
    order = np.random.default_rng(3).permutation(count)  # rows arrive shuffled, in 3 partitions
    rows = [(f"{i:08d}", float(labels[i]), images[i].tobytes()) for i in order]
    frame = spark.createDataFrame(spark.sparkContext.parallelize(rows, 3), "id string, label double, data binary")
    cos = cgspark.CaffeOnSpark(spark)
    model = tmp_path / "frame.caffemodel"
    cos.train(frame, str(frame_solver), model=str(model), cluster_size=RANKS)
    differences = relative_blob_differences(tmp_path / "frame_net.prototxt", model,
                                            tmp_path / f"lmdb_iter_{iterations}.caffemodel")
    print(f"\nDataFrame (2 Spark tasks) vs LMDB (mpirun -np 2), {iterations} iterations of 24x24 random crops: "
          f"largest relative blob difference {max(differences.values()):.2g}")
    assert max(differences.values()) <= 1e-6, differences

    again = frame.repartition(3)  # uncached: every train() recomputes the shuffle's input
    first = cos.train(again, str(frame_solver), cluster_size=RANKS, iterations=10)
    second = cos.train(again, str(frame_solver), cluster_size=RANKS, iterations=10)
    assert first == second


def test_jpeg_frame_with_mean_crop_mirror_trains_as_an_encoded_lmdb(tmp_path, spark, cli, shared_data):
    """A colour net on JPEG rows (mean_value per channel, crop_size, mirror): the
    transformed batches equal a Data layer's over an LMDB of the same encoded files,
    and 2 Spark tasks train it to the weights mpirun -np 2 gets from that LMDB."""
    require_data(shared_data, "images/images_list.txt")
    images = shared_data / "images"
    listing = [line.split() for line in (images / "images_list.txt").read_text().splitlines()[:16]]  # the photos
    (tmp_path / "photos.txt").write_text("".join(f"{path} {label}\n" for path, label in listing))
    lmdb = tmp_path / "photos_lmdb"
    subprocess.run([cli, "convert", "imageset", f"{images}/", str(tmp_path / "photos.txt"), str(lmdb), "--encoded"],
                   check=True, capture_output=True)
    transform = ("crop_size: 64 mirror: true mean_value: 104 mean_value: 117 mean_value: 123 scale: 0.0078125 "
                 "force_color: true")
    body = ('layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1" convolution_param { num_output: 4 '
            'kernel_size: 5 stride: 2 weight_filler { type: "xavier" } } }\n'
            'layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" pooling_param { pool: MAX '
            'kernel_size: 2 stride: 2 } }\n'
            'layer { name: "ip" type: "InnerProduct" bottom: "pool1" top: "ip" inner_product_param { num_output: 8 '
            'weight_filler { type: "xavier" } } }\n'
            'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }\n')
    head = 'name: "colour"\nlayer { name: "data" top: "data" top: "label" transform_param { ' + transform + ' } '
    (tmp_path / "lmdb_net.prototxt").write_text(
        head + f'type: "Data" data_param {{ source: "{lmdb}" batch_size: 4 backend: LMDB }} }}\n' + body)
    (tmp_path / "frame_net.prototxt").write_text(
        head + 'type: "MemoryData" memory_data_param { batch_size: 4 channels: 3 height: 120 width: 120 } }\n' + body)
    import pyarrow as pa

    ids = [f"{i:08d}_{path}" for i, (path, _) in enumerate(listing)]  # convert imageset's keys
    files = [(images / path).read_bytes() for path, _ in listing]
    batch = pa.RecordBatch.from_pydict({"id": ids, "label": [float(label) for _, label in listing], "data": files,
                                        "encoded": [True] * len(ids)})
    records = tmp_path / "photos.records"
    writer = caffegrid._caffegrid.RecordsWriter(str(records))
    cgspark.spark_data.write_batch(writer, batch, (3, 120, 120))
    writer.close()
    from_lmdb = caffegrid.Net(str(tmp_path / "lmdb_net.prototxt"), caffegrid.TRAIN, seed=9)
    from_rows = caffegrid.Net(str(tmp_path / "frame_net.prototxt"), caffegrid.TRAIN, seed=9)
    from_rows.feed_source(None, "records", str(records))
    for _ in range(8):  # two epochs: new crops and mirrors, the same on both sides
        from_lmdb.forward()
        from_rows.forward()
        assert from_rows.blobs["data"].data.shape == (4, 3, 64, 64)
        assert np.array_equal(from_lmdb.blobs["data"].data, from_rows.blobs["data"].data)
        assert np.array_equal(from_lmdb.blobs["label"].data, from_rows.blobs["label"].data)

    lmdb_solver = plain_solver(tmp_path / "lmdb_solver.prototxt", "lmdb_net.prototxt", 12, tmp_path / "lmdb", 0.001)
    frame_solver = plain_solver(tmp_path / "frame_solver.prototxt", "frame_net.prototxt", 12, tmp_path / "frame", 0.001)
    mpirun_train(tmp_path, cli, lmdb_solver)
    rows = spark.createDataFrame(list(zip(ids, [float(label) for _, label in listing], files, [True] * len(ids))),
                                 "id string, label double, data binary, encoded boolean")
    model = tmp_path / "frame.caffemodel"
    cgspark.CaffeOnSpark(spark).train(rows, str(frame_solver), model=str(model), cluster_size=RANKS)
    differences = relative_blob_differences(tmp_path / "frame_net.prototxt", model, tmp_path / "lmdb_iter_12.caffemodel")
    assert max(differences.values()) <= 1e-6, differences


if __name__ == "__main__":  # reference_weights' process: TMP SOLVER SHARED_DATA ITERATIONS
    data = pathlib.Path(sys.argv[3]) / "fashion-mnist"
    reference_in_process(pathlib.Path(sys.argv[1]), sys.argv[2],
                         read_idx(data / "train-images-idx3-ubyte.gz")[:TRAIN_ROWS],
                         read_idx(data / "train-labels-idx1-ubyte.gz")[:TRAIN_ROWS], int(sys.argv[4]))


def test_pipeline_of_caffe_estimator_and_logistic_regression(tmp_path, spark, fashion):
    """CaffeOnSpark's seed use case as a pyspark.ml Pipeline: CaffeEstimator (LeNet on
    3,000 Fashion-MNIST rows, 2 tasks) feeding ip1 as an ML Vector to MLlib's
    LogisticRegression; scored on 1,000 test rows; input columns kept; the saved and
    loaded PipelineModel predicts identically; the fitted CaffeModel exports to ONNX."""
    from pyspark.ml import Pipeline, PipelineModel
    from pyspark.ml.classification import LogisticRegression
    from pyspark.sql import functions as F

    from caffegrid.spark import CaffeEstimator, CaffeModel

    (train_x, train_y), (test_x, test_y) = fashion
    (tmp_path / "net.prototxt").write_text(lenet_spark_prototxt())
    solver = write_solver(tmp_path / "solver.prototxt", "net.prototxt", max_iter=300, display=0)
    train = image_frame(spark, train_x[:3000], train_y[:3000], "tr").withColumn("note", F.lit("kept"))
    test = image_frame(spark, test_x[:1000], test_y[:1000], "te").withColumn("note", F.lit("kept"))
    caffe = CaffeEstimator(solver=str(solver), clusterSize=RANKS, featureBlobs=["ip1"], outputCol="features")
    assert caffe.getOrDefault("idCol") == "id" and caffe.getOrDefault("clusterSize") == RANKS
    start = time.time()
    fitted = Pipeline(stages=[caffe, LogisticRegression(featuresCol="features", maxIter=60)]).fit(train)
    scored = fitted.transform(test)
    assert set(test.columns) <= set(scored.columns) and scored.count() == 1000
    assert scored.filter("note != 'kept'").count() == 0
    accuracy = scored.filter("prediction = label").count() / 1000
    print(f"\nPipeline(CaffeEstimator, LogisticRegression): fit and scored in {time.time() - start:.1f}s, "
          f"test accuracy {accuracy:.4f}")
    assert accuracy >= 0.75
    fitted.save(str(tmp_path / "pipeline"))
    loaded = PipelineModel.load(str(tmp_path / "pipeline"))
    assert isinstance(loaded.stages[0], CaffeModel) and loaded.stages[0].getOrDefault("featureBlobs") == ["ip1"]
    before = {r.id: r.prediction for r in scored.select("id", "prediction").collect()}
    after = {r.id: r.prediction for r in loaded.transform(test).select("id", "prediction").collect()}
    assert before == after
    assert loaded.stages[0].export_onnx(str(tmp_path / "lenet.onnx")) == ("ip2",)


def test_rank_zero_progress_shows_on_the_driver(tmp_path, spark, fashion, capfd):
    """Caffe's log lines of rank 0 (iterations, losses, test scores) reach the driver's
    stderr while the stage runs, and the metrics file lands next to the model."""
    (train_x, train_y), _ = fashion
    (tmp_path / "net.prototxt").write_text(lenet_spark_prototxt())
    solver = write_solver(tmp_path / "solver.prototxt", "net.prototxt", max_iter=40, display=10)
    frame = image_frame(spark, train_x[:512], train_y[:512], "p")
    cgspark.CaffeOnSpark(spark).train(frame, str(solver), model=str(tmp_path / "m.caffemodel"), cluster_size=RANKS)
    err = capfd.readouterr().err
    for i in (10, 20, 30):
        assert re.search(rf"solver\.c:\d+\] Iteration {i} \([0-9.]+ iter/s, [^)]*\), loss = [0-9.]+", err), err[-2000:]
    assert re.search(r"Time per iteration: [0-9.]+ ms \(compute [^)]*\) on 2 rank\(s\)", err)
    import json
    lines = [json.loads(line) for line in (tmp_path / "m_metrics.jsonl").read_text().splitlines()]
    assert [line["iter"] for line in lines if line["type"] == "train"] == [0, 10, 20, 30]


def test_training_logs_to_an_active_mlflow_run(tmp_path, spark, fashion, monkeypatch):
    """With mlflow importable and a run active, train() logs its parameters, the
    metrics file's values per iteration and the model and net as artifacts."""
    mlflow = pytest.importorskip("mlflow", reason="mlflow is not installed (python3 -m pip install mlflow-skinny)")
    (train_x, train_y), _ = fashion
    (tmp_path / "net.prototxt").write_text(lenet_spark_prototxt())
    solver = write_solver(tmp_path / "solver.prototxt", "net.prototxt", max_iter=30, display=10)
    frame = image_frame(spark, train_x[:256], train_y[:256], "m")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # a local store for the test, no database server
    mlflow.set_tracking_uri((tmp_path / "mlruns").as_uri())
    with mlflow.start_run() as run:
        cgspark.CaffeOnSpark(spark).train(frame, str(solver), cluster_size=RANKS)
    logged = mlflow.get_run(run.info.run_id).data
    assert logged.params["cluster_size"] == str(RANKS) and logged.params["iterations"] == "30"
    history = mlflow.tracking.MlflowClient().get_metric_history(run.info.run_id, "loss")
    assert [m.step for m in history] == [0, 10, 20] and all(m.value > 0 for m in history)
    artifacts = {a.path for a in mlflow.tracking.MlflowClient().list_artifacts(run.info.run_id, "caffegrid")}
    assert artifacts == {"caffegrid/model.caffemodel", "caffegrid/net.prototxt"}


def test_hadoop_uris_through_the_spark_jvm(tmp_path, cli, shared_data, cgtest_jar):
    """Paths in Hadoop's spelling go through Spark's own Hadoop FileSystem: -conf and
    -model as file:// URIs, -output and a -model read back under a scheme of the test's
    own (a FileSystem compiled here against the Hadoop jars pyspark ships); a scheme
    no filesystem handles is refused in seconds, before training, writing nothing."""
    need_cgtest(cgtest_jar)
    caffeonspark_lmdbs(tmp_path, cli, shared_data, 600, 200)
    net = tmp_path / "net.prototxt"  # the training LMDB read through Hadoop (kept by -persistent)
    net.write_text(net.read_text().replace(f'"file:{tmp_path / "train_lmdb"}"', f'"cgtest://{tmp_path}/train_lmdb"'))
    assert "cgtest://" in net.read_text()
    snapshots = f"cgtest://{tmp_path}/snaps/s"
    write_solver(tmp_path / "solver.prototxt", "net.prototxt", max_iter=20, display=0, snapshot=10,
                 snapshot_prefix=f'"{snapshots}"')

    def submit(*flags):
        return spark_submit_run(*flags, spark_args=["--jars", str(cgtest_jar),
                                                    "--conf", "spark.hadoop.fs.cgtest.impl=CgTestFileSystem"])

    model = tmp_path / "out" / "m.caffemodel"
    model.parent.mkdir()
    run = submit("-train", "-persistent", "-conf", (tmp_path / "solver.prototxt").as_uri(), "-model", model.as_uri(),
                 "-clusterSize", str(RANKS), "-features", "ip1", "-label", "label",
                 "-output", f"cgtest://{tmp_path}/features")
    assert run.returncode == 0, run.stderr[-3000:]
    assert model.stat().st_size > 0 and (tmp_path / "out" / "m_metrics.jsonl").exists()
    assert (tmp_path / "features" / "_SUCCESS").exists() and list((tmp_path / "features").glob("part-*"))
    # the snapshots went through the driver's Hadoop FileSystem, whole sets, the lock removed after
    written = sorted(p.name for p in (tmp_path / "snaps").iterdir())
    assert written == [f"s_iter_{i}{ext}" for i in (10, 20) for ext in (".caffemodel", ".cgstate", ".solverstate")] \
        + ["s_metrics.jsonl"], written
    assert f"caffegrid: snapshot {snapshots}_iter_20.* written" in run.stdout + run.stderr
    assert f"Snapshotting to binary proto file {snapshots}_iter_10.caffemodel" in run.stdout + run.stderr
    # -snapshot as a Hadoop URI: the resumed run ends with the uninterrupted run's weights, bit for bit
    resumed = tmp_path / "out" / "resumed.caffemodel"
    run = submit("-train", "-conf", str(tmp_path / "solver.prototxt"), "-model", str(resumed), "-clusterSize",
                 str(RANKS), "-snapshot", f"{snapshots}_iter_10.solverstate")
    assert run.returncode == 0, run.stderr[-3000:]
    assert f"Restored solver state from {snapshots}_iter_10.solverstate at iteration 10" in run.stdout + run.stderr
    assert resumed.read_bytes() == model.read_bytes()
    # a missing -weights URI and a prefix another run holds are refused before training
    run = submit("-train", "-conf", str(tmp_path / "solver.prototxt"), "-clusterSize", str(RANKS),
                 "-weights", f"{model.as_uri()},cgtest://{tmp_path}/none.caffemodel")
    said = run.stdout + run.stderr
    assert run.returncode == 1 and f"-weights 'cgtest://{tmp_path}/none.caffemodel' does not exist" in said, said[-2000:]
    (tmp_path / "snaps" / "s.lock").write_text("app-20261206-0001\n")
    run = submit("-train", "-conf", str(tmp_path / "solver.prototxt"), "-clusterSize", str(RANKS))
    said = run.stdout + run.stderr
    assert run.returncode == 1 and "Iteration" not in said, said[-2000:]
    assert f"snapshot_prefix '{snapshots}' is in use by another training run (Spark application " \
           "app-20261206-0001 holds" in said, said[-2000:]
    run = submit("-test", "-conf", str(tmp_path / "solver.prototxt"), "-model", f"cgtest://{model}",
                 "-output", f"cgtest://{tmp_path}/scores")
    assert run.returncode == 0, run.stderr[-3000:]
    import json
    assert set(json.loads((tmp_path / "scores" / "test_result.json").read_text())) == {"accuracy", "loss"}
    start = time.time()
    run = submit("-train", "-conf", str(tmp_path / "solver.prototxt"), "-model", "nosuchfs://x/m.caffemodel",
                 "-clusterSize", str(RANKS))
    refused_s = time.time() - start
    said = run.stdout + run.stderr  # spark-submit's driver output may come on either stream
    assert run.returncode == 1
    assert "-model 'nosuchfs://x/m.caffemodel': no Hadoop filesystem handles the scheme 'nosuchfs'" in said, said[-2000:]
    assert "Iteration" not in said and not (tmp_path / "nosuchfs:").exists()
    print(f"\nHadoop URIs: an unknown scheme refused {refused_s:.1f}s after spark-submit started (JVM start included)")
    assert refused_s < 60


def local_rows(kind, path, channels):
    """A source's records as caffegrid reads them locally: (id, label, pixels, c, h, w)."""
    reader = caffegrid._caffegrid.SourceReader(kind, str(path))
    rows = []
    for i in range(reader.count):
        (sample_id, label), (c, h, w, data, _) = reader.read(i, {1: 2, 3: 1}.get(channels, 0), 0, 0)
        rows.append((sample_id, 0.0 if label is None else label, bytes(data), c, h, w))
    return rows


def test_hadoop_path_sources_read_as_they_read_locally(tmp_path, spark, trained, cli, shared_data, cgtest_jar):
    """Path sources under a Hadoop scheme (cgtest://, the local disk through the
    test's own FileSystem) are read by the executors through Spark and give what
    the same files give locally: an LMDB trains to the same weights bit for bit,
    an image list (relative paths from its folder) gives the features of the same
    PNG rows, an HDF5 list the same records."""
    from caffegrid import spark_sources

    need_cgtest(cgtest_jar)
    data = shared_data / "fashion-mnist"
    subprocess.run([cli, "convert", "mnist", str(data / "train-images-idx3-ubyte.gz"),
                    str(data / "train-labels-idx1-ubyte.gz"), str(tmp_path / "lmdb"), "--limit=512"],
                   check=True, capture_output=True)
    shutil.copy(trained.dir / "net.prototxt", tmp_path / "net.prototxt")
    solver = write_solver(tmp_path / "solver.prototxt", "net.prototxt", max_iter=20, display=0)
    local, remote = cgspark.CaffeOnSpark(spark), cgspark.CaffeOnSpark(spark)
    start = time.time()  # the solver and its net through Hadoop too
    remote_model = remote.train(f"cgtest://{tmp_path}/lmdb", f"cgtest://{solver}", cluster_size=RANKS)
    remote_s = time.time() - start
    assert remote_model == local.train(str(tmp_path / "lmdb"), str(solver), cluster_size=RANKS)

    images, labels = read_idx(data / "t10k-images-idx3-ubyte.gz")[:40], read_idx(data / "t10k-labels-idx1-ubyte.gz")[:40]
    (tmp_path / "pngs").mkdir()
    for i in range(40):
        (tmp_path / "pngs" / f"t{i:05d}.png").write_bytes(png_bytes(images[i]))
    (tmp_path / "list.txt").write_text("".join(f"pngs/t{i:05d}.png {labels[i]}\n" for i in range(40)))
    assert remote.net_name == f"cgtest://{tmp_path}/net.prototxt"
    from_list = remote.features(f"image_list:cgtest://{tmp_path}/list.txt", ["ip1"], label="label")
    from_rows = remote.features(image_frame(spark, images, labels, "pngs/t", encoded=True), ["ip1"], label="label")
    listed = sorted((r.SampleID, r.label, tuple(r.ip1)) for r in from_list.collect())
    framed = sorted((r.SampleID + ".png", r.label, tuple(r.ip1)) for r in from_rows.collect())
    assert len(listed) == 40 and listed == framed

    h5 = shared_data / "caffe_ref" / "hdf5_bvlc_test_data"
    if caffegrid._caffegrid.data_source_type(str(h5 / "sample_data.h5")) == "hdf5":
        for name in ("sample_data.h5", "sample_data_2_gzip.h5"):
            shutil.copy(h5 / name, tmp_path / name)
        (tmp_path / "h5_list.txt").write_text("sample_data.h5\nsample_data_2_gzip.h5\n")
        rows = spark_sources.remote_frame(spark, None, f"cgtest://{tmp_path}/h5_list.txt", (8, 6, 5), False).collect()
        expected = []
        for name in ("sample_data.h5", "sample_data_2_gzip.h5"):
            expected += [(f"cgtest:{tmp_path}/{name}" + r[0][len(str(tmp_path / name)):],) + r[1:]
                         for r in local_rows("hdf5", tmp_path / name, 8)]
        assert sorted(tuple(r) for r in rows) == sorted(expected)

    with pytest.raises(caffegrid.IOError, match=f"source 'cgtest://{tmp_path}/nothing' does not exist"):
        remote.train(f"cgtest://{tmp_path}/nothing", str(solver), cluster_size=RANKS)
    print(f"\nHadoop path sources: LMDB via cgtest:// trained in {remote_s:.1f}s to the local LMDB's weights; "
          f"image list and HDF5 list read as locally")


def test_hadoop_sequence_file_folder_reads_as_locally(tmp_path, spark, shared_data, cgtest_jar):
    """A folder of SequenceFiles under cgtest:// (two parts and Hadoop's _SUCCESS
    marker; BigDL's file of decoded BGR images) gives the records the same folder
    gives locally, one task per part."""
    from caffegrid import spark_sources

    need_cgtest(cgtest_jar)
    require_data(shared_data, "seqfile/bigdl/imagenet-seq-0_0.seq")
    (tmp_path / "seq").mkdir()
    for part in ("part-00000", "part-00001"):
        shutil.copy(shared_data / "seqfile" / "bigdl" / "imagenet-seq-0_0.seq", tmp_path / "seq" / part)
    (tmp_path / "seq" / "_SUCCESS").write_text("")
    rows = spark_sources.remote_frame(spark, None, f"cgtest://{tmp_path}/seq", (3, 256, 256), False).collect()
    assert len(rows) == 6
    assert sorted(tuple(r) for r in rows) == sorted(local_rows("seqfile", tmp_path / "seq", 3))


def readme_spark_snippets():
    """The Python blocks of the README's Spark section, as written."""
    text = (pathlib.Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text[text.index("\n## Spark\n"):]
    section = section[:section.index("\n## ", 1)]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_readme_spark_snippets_run_as_written(tmp_path, spark, fashion, cli, shared_data, cgtest_jar, monkeypatch):
    """Every Python block of the README's Spark section runs as written, given the
    inputs its comments name (spark, df, val_df, test_df, train_df, lmdb: here a
    Fashion-MNIST LMDB under cgtest://, a Hadoop filesystem), from a folder holding
    the shipped examples; then what the blocks made is checked."""
    need_cgtest(cgtest_jar)
    blocks = readme_spark_snippets()
    assert len(blocks) == 2, blocks
    shutil.copytree(pathlib.Path(__file__).resolve().parents[2] / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    (train_x, train_y), (test_x, test_y) = fashion
    data = shared_data / "fashion-mnist"
    subprocess.run([cli, "convert", "mnist", str(data / "t10k-images-idx3-ubyte.gz"),
                    str(data / "t10k-labels-idx1-ubyte.gz"), str(tmp_path / "test_lmdb"), "--limit=500"],
                   check=True, capture_output=True)
    df = image_frame(spark, train_x[:2000], train_y[:2000], "train")
    test_df = image_frame(spark, test_x[:1000], test_y[:1000], "test")
    given = dict(spark=spark, df=df, val_df=test_df, test_df=test_df, train_df=df, lmdb=f"cgtest://{tmp_path}/test_lmdb")
    start = time.time()
    for number, block in enumerate(blocks, 1):
        exec(compile(block, f"README.md (Spark block {number})", "exec"), given)  # noqa: S102 - the README's own code
    ran_s = time.time() - start
    assert (tmp_path / "lenet.caffemodel").stat().st_size > 0 and (tmp_path / "lenet.onnx").stat().st_size > 0
    assert [r.iteration for r in given["rounds"].orderBy("iteration").collect()] == [0, 500]
    assert given["feats"].count() == 2000 and given["lmdb_feats"].count() == 500
    accuracy = given["predictions"].filter("prediction = label").count() / 1000
    print(f"\nREADME Spark snippets ran as written in {ran_s:.1f}s; the pipeline's accuracy {accuracy:.3f}")
    assert accuracy >= 0.7
