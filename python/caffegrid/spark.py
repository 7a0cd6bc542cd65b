"""caffegrid.spark: CaffeOnSpark's training, testing and feature extraction on a
real Spark cluster. Training is ONE barrier stage of cluster_size tasks: each
task builds the solver on a TCP ring communicator whose addresses the tasks
exchange with BarrierTaskContext.allGather, and its net's MemoryData layer reads
the task's share of the rows from a local copy, exactly as a Data layer reads an
LMDB; gradients travel task to task, never through the driver. Only rank 0's
final weights come back to the driver.

    from caffegrid.spark import CaffeOnSpark
    cos = CaffeOnSpark(spark)
    cos.train(df, "lenet_solver.prototxt", model="lenet.caffemodel", cluster_size=2)
    rounds = cos.train_with_validation(df, val_df, "lenet_solver.prototxt", cluster_size=2)  # iteration, accuracy, loss
    features = cos.features(df, ["ip1"], label="label")   # SampleID, ip1, label
    scores = cos.test(test_df)                               # {"accuracy": ..., "loss": ...}

Sources are DataFrames with CaffeOnSpark's ImageDataFrame columns: ``id``
(unique, any sortable type), ``label`` and ``data``: the sample's pixels as raw
bytes (uint8, or float32 little-endian when the length is 4*C*H*W), an array of
numbers, or with ``encoded`` true a JPEG/PNG file; optional
``channels``/``height``/``width`` give a raw row's size (else memory_data_param's).
Or paths (LMDB of Datum, image list, SequenceFile, HDF5): local ones every executor
mounts, read by the tasks through the C library's sources, or on Hadoop filesystems
(hdfs://, s3a:// ...), read by the executors through Spark (caffegrid.spark_sources). Rows travel as Arrow batches
and enter the C data pipeline (caffegrid.spark_data); the MemoryData layer's
whole transform_param is applied in C, per record, as the Data layer applies it.
Snapshots (``snapshot: N``) are written by rank 0, under a local prefix or through
the driver to a Hadoop one (caffegrid.spark_files); a barrier stage Spark retries
after a task died resumes from the newest complete one. The executors need
numpy, pyarrow, pandas, pyspark and this package (``pip install ./python``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from typing import Any, Dict, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from . import _caffegrid, hadoop_fs, spark_data, spark_files, spark_sources
from ._errors import InvalidArgumentError, UnsupportedError

__all__ = ["CaffeOnSpark"]

def memory_data(net_text: str, phase: str, source_name: str = "net") -> Dict[str, Any]:
    """The MemoryData layer ``phase`` ("TRAIN"/"TEST") feeds, as the C library reads
    the net (Caffe's include/exclude rules and field syntax): its name,
    memory_data_param and transform_param. Errors name ``source_name``."""
    return _caffegrid.memory_data_info(net_text, source_name, 0 if phase == "TRAIN" else 1)


def memory_data_shape(net_text: str, phase: str, source_name: str = "net") -> Tuple[int, int, int]:
    """(channels, height, width) of the MemoryData layer ``phase`` feeds: the size of
    its raw records (before transform_param crops them)."""
    info = memory_data(net_text, phase, source_name)
    for name in ("channels", "height", "width"):
        if info[name] <= 0:
            raise InvalidArgumentError(f"caffegrid.spark: {source_name}: the {phase} MemoryData layer "
                                       f"'{info['layer']}' needs memory_data_param.{name}")
    return info["channels"], info["height"], info["width"]


def solver_info(solver_text: str, source_name: str = "solver") -> Dict[str, Any]:
    """The solver fields the Spark helpers plan with (net, snapshot_prefix, max_iter,
    snapshot, test_interval, iter_size, test_iter, test_initialization), as the C
    library reads them. Errors name ``source_name``."""
    return _caffegrid.solver_info(solver_text, source_name)


def read_solver_and_net(path: str) -> Tuple[str, str, str]:
    """(solver text, net text, net path) of a solver prototxt; the net path is tried
    as given, then beside the solver file (as the C library does)."""
    with open(path) as f:
        solver_text = f.read()
    if not solver_info(solver_text, path)["net"]:
        raise UnsupportedError(f"{path}: caffegrid.spark needs a solver with a 'net:' file (net_param is not supported)")
    net = _caffegrid.solver_net(path, 0)
    with open(net) as f:
        return solver_text, f.read(), net


def fetch_solver(spark: Any, path: str, workdir: str) -> Tuple[str, Dict[str, str]]:
    """The solver (and the net it names) as local files: a Hadoop URI is fetched
    through Spark's JVM into workdir, its net found beside it as Caffe finds it;
    and {local copy: the user's URI} for messages. A local path is returned as it is."""
    if not hadoop_fs.scheme_of(path):
        return path, {}
    hadoop_fs.require(spark, path, "solver")
    local = os.path.join(workdir, "solver.prototxt")
    text = hadoop_fs.read_text(spark, path, "solver")
    names = {local: path}
    net = solver_info(text, path)["net"]
    if net:
        if not hadoop_fs.scheme_of(net) and not net.startswith("/"):
            net = path.rsplit("/", 1)[0] + "/" + net
        local_net = os.path.join(workdir, "net.prototxt")
        with open(local_net, "w") as f:
            f.write(hadoop_fs.read_text(spark, net, "the solver's net"))
        names[local_net] = net
        text = re.sub(r'(?m)^(\s*net\s*:\s*)"[^"]*"', r'\1"net.prototxt"', text)
    with open(local, "w") as f:
        f.write(text)
    return local, names


def read_solver(path: str) -> Tuple[str, str]:
    """(solver text, net text) of a solver prototxt (see read_solver_and_net)."""
    solver_text, net_text, _ = read_solver_and_net(path)
    return solver_text, net_text


_SOURCE_TYPES = ("lmdb", "image_list", "seqfile", "hdf5")


def _typed(path: str) -> Tuple[Optional[str], str]:
    """(the type an ``lmdb:``/``image_list:``/``seqfile:``/``hdf5:`` prefix forces, or None; the location)."""
    kind, _, rest = path.partition(":")
    return (kind, rest) if kind in _SOURCE_TYPES and rest else (None, path)


def source_type(path: str) -> Tuple[str, str]:
    """(source type, location) of a path source: an explicit ``lmdb:`` /
    ``image_list:`` / ``seqfile:`` / ``hdf5:`` prefix, else what the C library
    finds the file to be (an LMDB, a SequenceFile or a folder of them, an HDF5
    file or list, an image list). CaffeOnSpark's ``file:`` prefix is dropped."""
    kind, location = _typed(path)
    if kind:
        return kind, location
    path = hadoop_fs.local_form(path)
    return _caffegrid.data_source_type(path), path


def remote_source(path: str) -> Optional[Tuple[Optional[str], str]]:
    """(source type or None, URI) of a path source on a Hadoop filesystem other
    than the local one (read through Spark: caffegrid.spark_sources), else None."""
    kind, location = _typed(path)
    return (kind, location) if spark_files.is_remote(location) else None


def _task_host(ctx: Any) -> str:
    """This task's address for its peers: CAFFEGRID_HOST, else the executor's address Spark knows."""
    host = os.environ.get("CAFFEGRID_HOST")
    if host:
        return host
    address = ctx.getTaskInfos()[ctx.partitionId()].address
    return address.rsplit(":", 1)[0]


class TrainPlan(NamedTuple):
    """What every training task needs, shipped with the task closure."""
    solver_name: str                 # the user's solver file, which messages name
    solver_text: str
    net_text: str
    max_iter: int
    size: int
    timeout: float
    record_shape: Tuple[int, int, int]  # memory_data_param's C, H, W: raw rows' size
    resize: bool                     # CaffeOnSpark's -resize
    skip_bad_records: Optional[bool]
    snapshot_prefix: Optional[str]   # absolute or a Hadoop URI, when the solver snapshots at intervals
    resume: Optional[str]            # a .solverstate (path or URI), "auto", or None (start fresh on the first attempt)
    weights: Optional[str]           # .caffemodel files (paths or URIs) to fine-tune from
    path: Optional[Tuple[str, str]] = None  # (source type, location) read by the tasks; None: a DataFrame
    validation_shape: Optional[Tuple[int, int, int]] = None  # None: no validation
    test_iter: int = 0               # validation batches per rank
    test_batch: int = 0
    files: str = ""                  # "host:port" of the driver's file service (caffegrid.spark_files)
    net_name: str = "net"            # the user's net file, which messages name
    progress: Optional[str] = None   # "host:port" where the driver shows rank 0's log lines


class _Progress:
    """Rank 0's log lines on the driver while a training stage runs: a listener the
    task connects to (executors always reach the driver), each line printed to the
    driver's stderr as it arrives; the last one is kept. Files the task holds for
    Hadoop URIs are named by their URIs (``rewrites``: spark_files.task_path_rewrites)."""

    def __init__(self, host: str, rewrites: Sequence[Tuple[Any, str]] = ()) -> None:
        self.rewrites = list(rewrites)
        self.last = ""
        self.server, self.address = spark_files.serve(host, self._show)

    def _show(self, conn: Any) -> None:
        with conn, conn.makefile("r", errors="replace") as lines:
            for line in lines:
                for pattern, folder in self.rewrites:
                    line = pattern.sub(lambda _, f=folder: f, line)
                self.last = line.rstrip("\n")
                sys.stderr.write(line)
                sys.stderr.flush()

    def close(self) -> None:
        self.server.close()


@contextlib.contextmanager
def _progress_to(address: Optional[str]) -> Iterator[None]:
    """In rank 0's task: the library's log lines also go to the driver at `address`."""
    import socket

    from . import _caffegrid as ext

    conn = None
    if address:
        host, _, port = address.rpartition(":")
        try:
            conn = socket.create_connection((host, int(port)), timeout=5)
        except OSError:
            conn = None  # progress is a courtesy: training goes on without it
    if conn is not None:
        ext.set_log_tee(conn.fileno())
    try:
        yield
    finally:
        if conn is not None:
            ext.set_log_tee(-1)
            conn.close()


def _driver_host() -> str:
    import socket

    return socket.gethostname()


def _metrics_path(model: str) -> str:
    """M.caffemodel -> M_metrics.jsonl, as PREFIX_metrics.jsonl sits beside PREFIX's snapshots."""
    stem = model[:-len(".caffemodel")] if model.endswith(".caffemodel") else model
    return stem + "_metrics.jsonl"


def _log_to_mlflow(plan: TrainPlan, info: Dict[str, Any], results: Dict[str, Any], model: Optional[str]) -> None:
    """With mlflow importable and a run active: the training's parameters, its
    metrics file (train loss and lr per display, test outputs per test) and the
    trained weights, as MLflow users expect of a trainer."""
    try:
        import mlflow
    except ImportError:
        return
    if mlflow.active_run() is None:
        return
    mlflow.log_params({"solver": plan.solver_name, "net": plan.net_name, "cluster_size": plan.size,
                       "iterations": plan.max_iter, "iter_size": info.get("iter_size", 1)})
    for line in results.get("metrics", "").splitlines():
        record = json.loads(line)
        kind, step = record.pop("type", ""), record.pop("iter", 0)
        if kind == "train":
            mlflow.log_metrics({k: float(v) for k, v in record.items() if isinstance(v, (int, float))}, step=step)
        elif kind == "test":
            net = record.pop("net", 0)
            mlflow.log_metrics({f"test{net}_{k}": float(v) for k, v in record.items() if isinstance(v, (int, float))},
                               step=step)
    with tempfile.TemporaryDirectory(prefix="caffegrid-mlflow-") as work:
        path = model
        if path is None:
            path = os.path.join(work, "model.caffemodel")
            with open(path, "wb") as f:
                f.write(results["model"])
        mlflow.log_artifact(path, artifact_path="caffegrid")
        net = os.path.join(work, "net.prototxt")
        with open(net, "w") as f:
            f.write(plan.net_text)
        mlflow.log_artifact(net, artifact_path="caffegrid")


def _resume_point(ctx: Any, solver: Any, plan: TrainPlan, store: spark_files.TaskSnapshots) -> Optional[str]:
    """The snapshot every rank restores, decided by rank 0 and shared through
    allGather (so ranks never disagree): the one asked for, or on a retried stage
    (and with resume="auto") the newest complete snapshot that passes its checks,
    if any. PySpark does not tell a task its stage attempt: the driver counts rank
    0's starts."""
    choice = None
    if ctx.partitionId() == 0:
        retried = plan.snapshot_prefix is not None and store.retried()  # without snapshots: nothing to resume
        if plan.resume == "auto" or retried:
            choice = store.newest(solver)
        if choice is None and plan.resume not in (None, "auto"):
            choice = store.named(plan.resume)
    return json.loads(ctx.allGather(json.dumps(choice))[0])


def _tested_at(info: Dict[str, Any], iteration: int) -> bool:
    """Whether Caffe's solver (``solver_info``) tests at the start of ``iteration``."""
    interval = info["test_interval"]
    return interval > 0 and iteration % interval == 0 and (iteration > 0 or info["test_initialization"])


def _use_task_cores(ctx: Any) -> int:
    """Runs this task's math and loops on the cores Spark gave it (spark.task.cpus,
    Spark 3.3 and later), as `caffegrid train` gives each MPI rank its share, so
    tasks sharing a machine do not oversubscribe it. OMP_NUM_THREADS is no guide:
    PySpark sets it to the executor's cores, which its concurrent tasks share. A
    user's OPENBLAS_NUM_THREADS wins. Returns the task's cores (0: unknown)."""
    import caffegrid

    cpus = getattr(ctx, "cpus", None)
    cores = cpus() if callable(cpus) else 0
    if cores < 1 or os.environ.get("OPENBLAS_NUM_THREADS"):
        return cores
    caffegrid.set_math_threads(cores)
    caffegrid.set_num_threads(cores)
    return cores


def _start_solver(ctx: Any, plan: TrainPlan, workdir: str,
                  store: spark_files.TaskSnapshots) -> Tuple[Any, Optional[str]]:
    """This task's solver on the TCP ring (files written into workdir), fine-tuned
    or resumed as the plan says; and the snapshot it resumed from."""
    import caffegrid

    rank = ctx.partitionId()
    _use_task_cores(ctx)
    net_path = os.path.join(workdir, "net.prototxt")
    with open(net_path, "w") as f:
        f.write(plan.net_text)
    # the user's solver as the library reads it, with this task's net and iterations: interval
    # snapshots only with a snapshot_prefix (else the metrics file stays in the task's folder),
    # test nets only for validation
    validating = plan.validation_shape is not None
    overrides = dict(net_path=net_path, max_iter=plan.max_iter,
                     snapshot_prefix=store.local or os.path.join(workdir, "solver"),
                     no_interval_snapshots=plan.snapshot_prefix is None, no_testing=not validating,
                     test_iter=plan.test_iter * plan.size if validating else 0,
                     skip_bad_records=plan.skip_bad_records, prefix_lock=False)  # the driver holds it
    if store.local and not store.remote and rank == 0:
        os.makedirs(os.path.dirname(store.local), exist_ok=True)
    listener = caffegrid.TcpListener()
    addresses = ctx.allGather(f"{_task_host(ctx)}:{listener.port}")  # in partition order
    solver = caffegrid.Solver(plan.solver_name, comm=listener.connect(rank, plan.size, addresses, plan.timeout),
                              text=plan.solver_text, **overrides)
    weights = store.weights(plan.weights)
    if weights:
        solver.copy_from(weights)
    resumed = _resume_point(ctx, solver, plan, store)
    if resumed:
        solver.restore(resumed)  # before the sources are attached: their read positions resume too
    return solver, resumed


def _train_task(plan: TrainPlan):
    """The barrier task: its rows into local records files, rendezvous, resume, train
    (validating), and (rank 0) return ("model", weights), ("rounds", validation
    rounds), ("resumed", snapshot or None)."""
    def run(items: Iterator[Any]) -> Iterator[Tuple[str, Any]]:
        from pyspark import BarrierTaskContext

        from ._errors import Error

        ctx = BarrierTaskContext.get()
        rank = ctx.partitionId()
        workdir = spark_data.task_workdir(f"caffegrid-rank{rank}-")
        names = {os.path.join(workdir, "net.prototxt"): plan.net_name}  # fetched files join it
        try:
            with spark_data.user_terms(workdir, names), _progress_to(plan.progress if rank == 0 else None):
                yield from _train_in(ctx, rank, plan, items, workdir, names)
        except Error as e:
            # The library's errors come back as a result, not a failed task: a bad row or a typo
            # fails the same way on every attempt, so the job ends at the first (a lost executor
            # still fails its task, and Spark retries the stage). Peers of the failing task see
            # their connections close (CommError) and report that.
            yield "error", (rank, type(e).__name__, str(e))
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return run


def _raise_task_errors(results: List[Tuple[str, Any]]) -> None:
    """A training stage's error results, raised on the driver as the library's own
    exception: the root cause (a rank's own error) before its peers' CommErrors."""
    from . import _errors

    errors = sorted((v for k, v in results if k == "error"), key=lambda e: (e[1] == "CommError", e[0]))
    if errors:
        rank, kind, message = errors[0]
        cls = getattr(_errors, kind, None)
        if not (isinstance(cls, type) and issubclass(cls, _errors.Error)):
            cls = _errors.Error
        raise cls(f"rank {rank}: {message}")


@contextlib.contextmanager
def _library_errors() -> Iterator[None]:
    """A library error raised in a Spark task (a bad row found while rows are checked
    or converted) reaches the driver wrapped in Py4J and Spark's traces; it is raised
    again as the library's own exception type with its message."""
    from . import _errors

    try:
        yield
    except _errors.Error:
        raise
    except Exception as e:  # Py4JJavaError, PythonException: whatever wraps the task's error
        found = re.findall(r"caffegrid\._errors\.(\w+): ([^\n]*)", str(e))
        cls = getattr(_errors, found[-1][0], None) if found else None
        if not (isinstance(cls, type) and issubclass(cls, _errors.Error)):
            raise
        raise cls(found[-1][1]) from None


def _task_slots(sc: Any) -> Tuple[int, int]:
    """(tasks Spark can run at once, as its barrier check counts them; spark.task.cpus)."""
    cpus = int(sc.getConf().get("spark.task.cpus", "1"))
    jsc = sc._jsc.sc()
    try:  # Scala's private[spark] is public in the JVM: the number the barrier check compares
        return int(jsc.maxNumConcurrentTasks(jsc.resourceProfileManager().defaultResourceProfile())), cpus
    except Exception:
        return int(sc.defaultParallelism) // max(cpus, 1), cpus


def _check_slots(sc: Any, size: int, wait_s: float = 15.0) -> None:
    """A barrier stage needs all its tasks running at once: with fewer slots Spark
    retries its check 40 times, 15 s apart, in silence. Executors still registering
    get wait_s seconds; then the job is refused with both numbers."""
    deadline = time.monotonic() + wait_s
    while True:
        slots, cpus = _task_slots(sc)
        if slots >= size:
            return
        if time.monotonic() >= deadline:
            raise InvalidArgumentError(
                f"caffegrid.spark: cluster_size {size} needs {size} task slots at once (a barrier stage), but this "
                f"Spark application has {slots} (its executors' cores / spark.task.cpus {cpus}); lower cluster_size "
                "or start more executors")
        time.sleep(0.5)


def _train_in(ctx: Any, rank: int, plan: TrainPlan, items: Iterator[Any], workdir: str,
              names: Dict[str, str]) -> Iterator[Tuple[str, Any]]:
    """The body of a training task (see _train_task), in its workdir."""
    files = spark_data.gather(items, workdir)
    train_records = val_records = None
    if plan.path is None:
        train_records = os.path.join(workdir, "train.records")
        spark_data.write_records(train_records, files.get("train", []), plan.record_shape)
    if plan.validation_shape is not None:
        val_records = os.path.join(workdir, "validation.records")
        spark_data.write_records(val_records, files.get("val", []), plan.validation_shape,
                                 fill_to=plan.test_iter * plan.test_batch)
    store = spark_files.TaskSnapshots(plan.snapshot_prefix, plan.files, workdir, names)
    try:
        yield from _train_with(ctx, rank, plan, workdir, store, train_records, val_records)
    finally:
        store.close()


def _train_with(ctx: Any, rank: int, plan: TrainPlan, workdir: str, store: spark_files.TaskSnapshots,
                train_records: Optional[str], val_records: Optional[str]) -> Iterator[Tuple[str, Any]]:
    """Training once the task's rows are local (see _train_in)."""
    solver, resumed = _start_solver(ctx, plan, workdir, store)
    if rank == 0:
        store.start_copying()
    if train_records:
        solver.net.feed_source(None, "records", train_records, rank_share=True, resize=plan.resize)
    else:
        solver.net.feed_source(None, plan.path[0], plan.path[1], resize=plan.resize)
    rounds = []
    info = solver_info(plan.solver_text, plan.solver_name)
    if val_records:
        solver.test_nets[0].feed_source(None, "records", val_records, rank_share=True, resize=plan.resize)
        outputs = solver.test_nets[0].outputs
    if not val_records:  # one call: one timing line (compute, communication, data wait) for the run
        solver.step(plan.max_iter - solver.iter)
    while solver.iter < plan.max_iter:
        iteration = solver.iter
        solver.step(1)
        if _tested_at(info, iteration):
            rounds.append([iteration] + [solver._h.last_test_score(0, o) for o in outputs])
    if val_records and _tested_at(info, plan.max_iter):
        scores = solver.test()[0]  # Caffe's Solve tests once more after the last iteration
        rounds.append([plan.max_iter] + [scores[o] for o in outputs])
    if rank == 0:
        model = os.path.join(workdir, "final.caffemodel")
        solver.net.save(model)
        with open(model, "rb") as f:
            yield "model", f.read()
        yield "rounds", rounds
        yield "resumed", store.user_name(resumed)
        problem = store.finish()
        if problem:
            yield "warning", problem
        metrics = (store.local or os.path.join(workdir, "solver")) + "_metrics.jsonl"
        if os.path.exists(metrics):
            with open(metrics) as f:
                yield "metrics", f.read()


def _net_outputs(net_text: str) -> List[str]:
    """The TEST net's output blobs (built once on the driver, without weights)."""
    import caffegrid

    with tempfile.TemporaryDirectory(prefix="caffegrid-net-") as workdir:
        path = os.path.join(workdir, "net.prototxt")
        with open(path, "w") as f:
            f.write(net_text)
        return caffegrid.Net(path, caffegrid.TEST).outputs


def _task_net(workdir: str, net_text: str, model: bytes, skip_bad_records: Optional[bool], rank: int = 0,
              world_size: int = 1) -> Any:
    """The TEST net of a features/test task, reading each of its records once."""
    import caffegrid
    from pyspark import TaskContext

    cores = _use_task_cores(TaskContext.get())
    net_path, model_path = os.path.join(workdir, "net.prototxt"), os.path.join(workdir, "model.caffemodel")
    with open(net_path, "w") as f:
        f.write(net_text)
    with open(model_path, "wb") as f:
        f.write(model)
    # on one core a prefetch thread has no core to run beside the math: it only adds hand-offs
    threads = 0 if cores == 1 and not os.environ.get("CAFFEGRID_DATA_THREADS") else None
    return caffegrid.Net(net_path, caffegrid.TEST, weights=model_path, rank=rank, world_size=world_size,
                         exact_pass=True, skip_bad_records=skip_bad_records, data_threads=threads)


class _Outputs:
    """What features and test collect from a task's net, batch after batch: the
    valid rows' blob values (float32, one row per record) and scalar output sums."""

    def __init__(self, blobs: Sequence[str], label: Optional[str]):
        self.blobs, self.label = list(blobs), label
        self.values: Dict[str, List[np.ndarray]] = {b: [] for b in self.blobs}
        self.labels: List[np.ndarray] = []
        self.ids: List[str] = []
        self.sums: Dict[str, float] = {}
        self.batches = 0

    def run(self, net: Any, records: int, want_ids: bool) -> None:
        batch = net.feed_shape(None)[0]
        wanted = self.blobs + ([self.label] if self.label else [])
        for start in range(0, records, batch):
            valid = min(batch, records - start)
            out = net.forward(blobs=wanted)
            for b in self.blobs:
                self.values[b].append(np.array(out[b].reshape(out[b].shape[0], -1)[:valid], np.float32))
            if self.label:
                self.labels.append(np.array(out[self.label].reshape(out[self.label].shape[0], -1)[:valid, 0]))
            if want_ids:
                self.ids.extend(i for i, _ in net.batch_ids()[:valid])
            for name in net.outputs:
                value = out[name] if name in out else net.blobs[name].data
                if value.size == 1:
                    self.sums[name] = self.sums.get(name, 0.0) + float(value.reshape(-1)[0])
            self.batches += 1

    def arrow(self, ids: Any, id_type: Any) -> Any:
        """The rows as one Arrow record batch: SampleID, one list<float> per blob, label."""
        import pyarrow as pa

        columns, names = [ids.cast(id_type) if ids.type != id_type else ids], ["SampleID"]
        for b in self.blobs:
            values = np.concatenate(self.values[b]) if self.values[b] else np.zeros((0, 1), np.float32)
            n, k = values.shape
            offsets = pa.array(np.arange(0, n * k + 1, k, dtype=np.int32))
            columns.append(pa.ListArray.from_arrays(offsets, pa.array(values.reshape(-1))))
            names.append(b)
        if self.label:
            columns.append(pa.array(np.concatenate(self.labels).astype(np.float64) if self.labels else
                                    np.zeros(0, np.float64)))
            names.append("label")
        return pa.RecordBatch.from_arrays(columns, names=names)


@contextlib.contextmanager
def _prefix_lock(spark: Any, prefix: Optional[str], solver_name: str) -> Iterator[None]:
    """The driver holds the snapshot prefix's lock (PREFIX.lock, as `caffegrid train`
    takes it) for the whole training job, so another run cannot write beside it. On
    a Hadoop filesystem the lock is a file created only if absent, removed at the
    end (one left by a driver that died must be removed by hand: the message says so)."""
    if prefix is None:
        yield
        return
    if spark_files.is_remote(prefix):
        lock = f"{prefix}.lock"
        if not hadoop_fs.create_new(spark, lock, f"{spark.sparkContext.applicationId}\n", "snapshot_prefix"):
            holder = hadoop_fs.read_text(spark, lock, "snapshot_prefix").strip() or "?"
            raise InvalidArgumentError(f"{solver_name}: snapshot_prefix '{prefix}' is in use by another training run "
                                       f"(Spark application {holder} holds '{lock}'); wait for it to end, or delete "
                                       "the lock if that application is gone, or give this run another "
                                       "snapshot_prefix")
        try:
            yield
        finally:
            hadoop_fs.delete(spark, lock, "snapshot_prefix")
        return
    os.makedirs(os.path.dirname(prefix) or ".", exist_ok=True)
    fd = _caffegrid.prefix_lock(prefix, solver_name)  # as `caffegrid train`'s rank 0 takes it
    try:
        yield
    finally:
        _caffegrid.prefix_unlock(fd)


class CaffeOnSpark:
    """CaffeOnSpark's train / test / features over a SparkSession.

    Sources are DataFrames with CaffeOnSpark's ImageDataFrame columns (``id``,
    ``label``, ``data``, optional ``encoded``/``channels``/``height``/``width``)
    or paths every executor can read: an LMDB of Datum, an image list, a
    SequenceFile (``lmdb:``/``image_list:``/``seqfile:``/``hdf5:`` prefixes
    force the type). Rows reach the tasks as Arrow batches and are written to a
    local copy in C (caffegrid.spark_data); the MemoryData layer reads it as the
    Data layer reads an LMDB, applying its whole transform_param (mean_file or
    mean_value, crop_size, mirror, scale, force_color/force_gray) per record,
    with new random crops and mirrors every epoch. ``resize`` is CaffeOnSpark's
    -resize: decoded images are resized to memory_data_param's height x width
    first. ``skip_bad_records`` skips and counts rows that cannot be read (None:
    as CAFFEGRID_SKIP_BAD_RECORDS says); otherwise the job fails naming the row.

    Executors need numpy, pyarrow, pandas, pyspark and caffegrid installed
    (``pip install ./python`` on every node, or a packed virtualenv shipped with
    ``spark.archives``); prototxts and models travel with the tasks, and
    snapshots, weights and sources may be on Hadoop filesystems, so no shared
    file system is needed.
    """

    def __init__(self, spark: Any, resize: bool = False, skip_bad_records: Optional[bool] = None,
                 persistent: bool = False):
        self.spark = spark
        self.resize = bool(resize)
        self.persistent = bool(persistent)
        self._frames: Dict[Tuple[str, Tuple[int, int, int], bool], Any] = {}  # sources read from Hadoop, kept
        self.skip_bad_records = skip_bad_records
        self.net_text: Optional[str] = None  # the net of the last train (features and test use it)
        self.net_name = "net"                # its file, which messages name
        self.model: Optional[bytes] = None   # the weights of the last train (.caffemodel bytes)
        self.resumed_from: Optional[str] = None  # the snapshot the last train's final attempt restored, if any

    @contextlib.contextmanager
    def _readable(self, source: Any, shape: Tuple[int, int, int], keep: bool = True) -> Iterator[Any]:
        """``source``, or for a path on a Hadoop filesystem its records as a
        DataFrame read by the executors through Spark (spark_sources), on their
        local disks for this call (``keep``), or for every call with ``persistent``
        (CaffeOnSpark's -persistent)."""
        remote = remote_source(os.fspath(source)) if isinstance(source, (str, os.PathLike)) else None
        if remote is None:
            yield source
            return
        from pyspark import StorageLevel

        key = (remote[1], shape, self.resize)
        frame = self._frames.get(key)
        if frame is None:
            with _library_errors():
                frame = spark_sources.remote_frame(self.spark, remote[0], remote[1], shape, self.resize)
            if self.persistent or keep:
                frame = frame.persist(StorageLevel.DISK_ONLY)
            if self.persistent:
                self._frames[key] = frame
        try:
            yield frame
        finally:
            if not self.persistent and frame.is_cached:
                frame.unpersist()

    def _path_frame(self, path: str, shape: Tuple[int, int, int]) -> Any:
        """A path source as a DataFrame of its records' pixels (for validation rows,
        which every round reads in full), read by the tasks through the C sources."""
        from pyspark.sql.types import BinaryType, DoubleType, IntegerType, StringType, StructField, StructType

        parts = self.spark.sparkContext.defaultParallelism
        resize, color = self.resize, {1: 2, 3: 1}.get(shape[0], 0)

        def read(index: int, _: Iterator[Any]) -> Iterator[tuple]:
            from . import _caffegrid as ext

            kind, location = source_type(path)
            reader = ext.SourceReader(kind, location)
            for i in range(index, reader.count, parts):
                (sample_id, label), (c, h, w, data, is_float) = reader.read(i, color, *(shape[1:] if resize else (0, 0)))
                yield sample_id, 0.0 if label is None else label, data, c, h, w

        schema = StructType([StructField("id", StringType()), StructField("label", DoubleType()),
                             StructField("data", BinaryType())] +
                            [StructField(n, IntegerType()) for n in ("channels", "height", "width")])
        rows = self.spark.sparkContext.parallelize(range(parts), parts).mapPartitionsWithIndex(read)
        return self.spark.createDataFrame(rows, schema)

    def train(self, source: Any, solver: str, model: Optional[str] = None, cluster_size: int = 1,
              iterations: Optional[int] = None, timeout: float = 120.0, snapshot: Optional[str] = None,
              weights: Optional[str] = None) -> bytes:
        """Trains the solver's net on ``source`` in one Spark barrier stage of
        ``cluster_size`` tasks (synchronous data-parallel SGD; the effective
        batch is cluster_size x batch_size). Every task runs the solver's
        max_iter (or ``iterations``) iterations over its share, as MPI ranks
        share an LMDB: a DataFrame's rows are ordered by ``id`` (unique) and task
        r of W gets rows r, r+W, ...; a path's records r, r+W, ... So a DataFrame
        trains exactly like an LMDB of the same records in id order under as
        many MPI ranks (when the row count is a multiple of W), and the same rows
        give the same weights however they are partitioned or cached.
        Rank 0's final weights are written to ``model`` on the driver (when
        given) and returned as .caffemodel bytes. ``timeout`` is how long a
        silent peer is waited for.

        With ``snapshot: N`` in the solver, rank 0 writes Caffe snapshots under
        snapshot_prefix: a Hadoop URI (``hdfs://``, ``s3a://`` ...; rank 0 sends
        each set to the driver, which writes it through Spark's Hadoop
        FileSystem, caffegrid.spark_files), or a local directory every executor
        mounts (relative prefixes are taken from the driver's working directory).
        When a task dies Spark retries the whole barrier stage, and the retry
        resumes from the newest complete snapshot that passes its checks, reading
        on from the same records. ``snapshot`` resumes from a .solverstate (or
        "auto": the newest complete one) on the first attempt too; ``weights``
        fine-tunes from .caffemodel files (comma-separated); both may be Hadoop
        URIs. The solver's test nets are left out (see
        train_with_validation)."""
        self._train(source, None, solver, model, cluster_size, iterations, timeout, snapshot, weights)
        return self.model

    def _train(self, source, validation, solver, model, cluster_size, iterations, timeout, snapshot, weights):
        with tempfile.TemporaryDirectory(prefix="caffegrid-solver-") as workdir:
            solver, names = fetch_solver(self.spark, solver, workdir)  # a Hadoop URI fetched; messages name it
            with spark_data.user_terms(workdir, names):
                texts = read_solver_and_net(solver)
                _, net_text, net_path = texts
                with self._readable(source, memory_data_shape(net_text, "TRAIN", net_path)) as source, \
                        self._readable(validation, memory_data_shape(net_text, "TEST", net_path)
                                       if validation is not None else (0, 0, 0)) as validation:
                    return self._train_on(source, validation, solver, texts, model, cluster_size, iterations,
                                          timeout, snapshot, weights, names)

    def train_with_validation(self, source: Any, validation: Any, solver: str, model: Optional[str] = None,
                              cluster_size: int = 1, iterations: Optional[int] = None, timeout: float = 120.0,
                              snapshot: Optional[str] = None, weights: Optional[str] = None) -> Any:
        """train, scoring ``validation`` with the solver's TEST net every
        test_interval iterations (and at iteration 0 unless test_initialization
        is false, and after the last one), as Caffe's solver tests. Each task
        scores its share of the validation rows (rows r, r+W, ... in id order,
        completed to whole batches by cycling, as Caffe's test_iter does); the
        means are averaged over the tasks. Returns a DataFrame with one row per
        validation round: ``iteration`` and one double column per test-net output
        (accuracy, loss, ...). Rounds before the snapshot a retried stage resumed
        from are not repeated."""
        return self._train(source, validation, solver, model, cluster_size, iterations, timeout, snapshot, weights)

    def _train_on(self, source, validation, solver, texts, model, cluster_size, iterations, timeout, snapshot,
                  weights, names):
        solver_text, net_text, net_path = texts  # read_solver_and_net(solver), read once by _train
        info = solver_info(solver_text, solver)
        max_iter = int(iterations if iterations is not None else info["max_iter"])
        if max_iter <= 0:
            raise InvalidArgumentError(f"{solver}: no max_iter to train for (give iterations=)")
        size = int(cluster_size)
        if size < 1:
            raise InvalidArgumentError(f"caffegrid.spark: cluster_size must be at least 1, got {cluster_size}")
        _check_slots(self.spark.sparkContext, size)
        prefix = self._check_paths(solver, info, model, snapshot, weights)
        is_path = isinstance(source, (str, os.PathLike))
        plan = TrainPlan(names.get(solver, solver), solver_text, net_text, max_iter, size, float(timeout),
                         memory_data_shape(net_text, "TRAIN", net_path), self.resize, self.skip_bad_records,
                         prefix, snapshot, weights, path=source_type(os.fspath(source)) if is_path else None,
                         net_name=names.get(net_path, net_path))
        sc = self.spark.sparkContext
        # every task gets a placeholder, so a task with no rows still runs (and says so)
        keyed = sc.parallelize([(task, ("start", -1, b"")) for task in range(size)], size)
        if not is_path:
            with _library_errors():  # rows are checked as they are counted
                chunks, rows = spark_data.strided_chunks(source, size, "train", plan.record_shape)
            if rows < size:
                raise InvalidArgumentError(f"caffegrid.spark: the source has {rows} rows, fewer than the {size} tasks")
            keyed = keyed.union(chunks)
        outputs: List[str] = []
        if validation is not None:
            plan, outputs, val_chunks = self._validation_plan(plan, validation, solver_text, net_text)
            keyed = keyed.union(val_chunks)
        # the shuffle after the barrier stage makes it a shuffle-map stage, which Spark
        # retries when a task fails (a failed barrier result stage is never retried)
        shares = keyed.partitionBy(size, lambda task: task)
        host = sc.getConf().get("spark.driver.host", None) or _driver_host()
        named = (plan.snapshot_prefix, plan.resume, plan.weights)
        progress = _Progress(host, spark_files.task_path_rewrites(*named))
        files = spark_files.DriverFiles(self.spark, host, *named)
        plan = plan._replace(progress=progress.address, files=files.address)
        sc.setJobDescription(f"caffegrid train {os.path.basename(solver)}: {max_iter} iterations on {size} tasks")
        try:  # one run per prefix, retries included
            with _prefix_lock(self.spark, plan.snapshot_prefix, solver), _library_errors():
                collected = shares.barrier().mapPartitions(_train_task(plan)).repartition(1).collect()
        finally:
            sc.setJobDescription(None)
            progress.close()
            files.close()
        _raise_task_errors(collected)
        for kind, said in collected:
            if kind == "warning":
                print(f"caffegrid: warning: {said}", file=sys.stderr)
        results = dict(collected)
        if model is not None:  # a local path, or a Hadoop URI (hdfs://, file:// ...) written through Spark's JVM
            hadoop_fs.write_bytes(self.spark, model, results["model"], "model")
            if "metrics" in results:  # the run's metrics (train and test lines) next to the model
                hadoop_fs.write_text(self.spark, _metrics_path(model), results["metrics"], "model")
        _log_to_mlflow(plan, info, results, model)
        self.net_text, self.model, self.resumed_from = net_text, results["model"], results["resumed"]
        self.net_name = plan.net_name
        if validation is None:
            return None
        from pyspark.sql.types import DoubleType, IntegerType, StructField, StructType

        schema = StructType([StructField("iteration", IntegerType(), False)]
                            + [StructField(o, DoubleType()) for o in outputs])
        rounds = [(int(r[0]),) + tuple(float(v) for v in r[1:]) for r in results["rounds"]]
        return self.spark.createDataFrame(rounds, schema)

    def _check_paths(self, solver: str, info: Dict[str, Any], model: Optional[str], snapshot: Optional[str],
                     weights: Optional[str]) -> Optional[str]:
        """Refuses, before any work, a path whose scheme no Hadoop filesystem
        handles; returns the snapshot prefix the tasks use (absolute, or a Hadoop
        URI), or None without interval snapshots."""
        hadoop_fs.check(self.spark, model, "model")
        hadoop_fs.require(self.spark, None if snapshot == "auto" else snapshot, "snapshot")
        for part in (weights or "").split(","):
            hadoop_fs.require(self.spark, part, "weights")
        prefix = info["snapshot_prefix"]
        if not prefix or info["snapshot"] <= 0:
            return None
        hadoop_fs.check(self.spark, prefix, f"{solver}: snapshot_prefix")
        return prefix if spark_files.is_remote(prefix) else os.path.abspath(hadoop_fs.local_form(prefix))

    def _validation_plan(self, plan: TrainPlan, validation: Any, solver_text: str, net_text: str):
        """The plan with test_iter per rank set so every rank scores its whole share,
        the test net's output names, and the validation rows dealt out to the tasks."""
        if not solver_info(solver_text, plan.solver_name)["test_interval"]:
            raise InvalidArgumentError("caffegrid.spark: train_with_validation needs test_interval in the solver")
        shape = memory_data_shape(net_text, "TEST")
        batch = memory_data(net_text, "TEST")["batch_size"]
        if isinstance(validation, (str, os.PathLike)):
            validation = self._path_frame(os.fspath(validation), shape)
        chunks, rows = spark_data.strided_chunks(validation, plan.size, "val", shape)
        if rows < plan.size:
            raise InvalidArgumentError(f"caffegrid.spark: the validation source has {rows} rows, fewer than the "
                                       f"{plan.size} tasks")
        share = -(-rows // plan.size)
        test_iter = -(-share // batch)
        plan = plan._replace(validation_shape=shape, test_iter=test_iter, test_batch=batch)
        return plan, _net_outputs(net_text), chunks

    def _net_and_model(self, net: Optional[str], model: Optional[str]) -> Tuple[str, bytes]:
        self._names = {"net.prototxt": net or self.net_name, "model.caffemodel": model or "the trained weights"}
        net_text = self.net_text
        if net is not None:
            net_text = hadoop_fs.read_text(self.spark, net, "net")
        weights = self.model
        if model is not None:
            weights = hadoop_fs.read_bytes(self.spark, model, "model")
        if net_text is None or weights is None:
            raise InvalidArgumentError("caffegrid.spark: no trained model; call train first or give net= and model=")
        return net_text, weights

    def export_onnx(self, path: str, net: Optional[str] = None, model: Optional[str] = None,
                    opset: Optional[int] = None, fixed_batch: bool = False) -> Tuple[str, ...]:
        """Writes the TEST-phase net of the last train (or ``net``) with its trained
        weights (or ``model``) as an ONNX model on the driver (``Net.to_onnx``;
        docs/onnx.md), and returns the graph's output names. The MemoryData layer's
        data blob is the model's input."""
        import caffegrid

        net_text, weights = self._net_and_model(net, model)
        with tempfile.TemporaryDirectory(prefix="caffegrid-export-") as workdir:
            net_path, model_path = os.path.join(workdir, "net.prototxt"), os.path.join(workdir, "model.caffemodel")
            with open(net_path, "w") as f:
                f.write(net_text)
            with open(model_path, "wb") as f:
                f.write(weights)
            with spark_data.user_terms(workdir, {net_path: self._names["net.prototxt"],
                                                 model_path: self._names["model.caffemodel"]}):
                built = caffegrid.Net(net_path, caffegrid.TEST, weights=model_path)
                return built.to_onnx(path, opset=opset, fixed_batch=fixed_batch)

    def _run_tasks(self, source: Any, net_text: str, weights: bytes, blobs: Sequence[str], label: Optional[str],
                   schema: Any, emit: Any) -> Any:
        """A DataFrame from running the TEST net over every record of ``source``
        once, one task per partition (a DataFrame's, or defaultParallelism shares of
        a path's records), each task's outputs turned into Arrow by ``emit``."""
        shape = memory_data_shape(net_text, "TEST")
        with self._readable(source, shape, keep=False) as source:
            return self._run_tasks_on(source, shape, net_text, weights, blobs, label, schema, emit)

    def _run_tasks_on(self, source: Any, shape: Tuple[int, int, int], net_text: str, weights: bytes,
                      blobs: Sequence[str], label: Optional[str], schema: Any, emit: Any) -> Any:
        shipped = self.spark.sparkContext.broadcast(weights)
        resize, skip, names = self.resize, self.skip_bad_records, dict(self._names)

        def in_user_terms(workdir: str) -> Any:
            return spark_data.user_terms(workdir, {os.path.join(workdir, k): v for k, v in names.items()})

        if isinstance(source, (str, os.PathLike)):
            kind, location = source_type(os.fspath(source))
            parts = self.spark.sparkContext.defaultParallelism

            def run_path(batches: Iterator[Any]) -> Iterator[Any]:
                import pyarrow as pa

                indices = [i for b in batches for i in b.column(0).to_pylist()]
                workdir = spark_data.task_workdir("caffegrid-features-")
                try:
                    with in_user_terms(workdir):
                        for index in indices:
                            net = _task_net(workdir, net_text, shipped.value, skip, int(index), parts)
                            net.feed_source(None, kind, location, resize=resize)
                            collected = _Outputs(blobs, label)
                            collected.run(net, net._h.rank_records(), True)
                            yield from emit(collected, pa.array(collected.ids, pa.string()))
                finally:
                    shutil.rmtree(workdir, ignore_errors=True)
            return self.spark.range(0, parts, 1, parts).mapInArrow(run_path, schema)

        columns = spark_data.source_columns(source)

        def run_rows(batches: Iterator[Any]) -> Iterator[Any]:
            import pyarrow as pa

            workdir = spark_data.task_workdir("caffegrid-features-")
            try:
                with in_user_terms(workdir):
                    records = os.path.join(workdir, "rows.records")
                    count, ids = spark_data.write_partition(records, batches, shape)
                    if count == 0:
                        return
                    net = _task_net(workdir, net_text, shipped.value, skip)
                    net.feed_source(None, "records", records, resize=resize)
                    collected = _Outputs(blobs, label)
                    collected.run(net, count, False)
                    yield from emit(collected, pa.concat_arrays(ids) if len(ids) > 1 else ids[0])
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
        return source.select(columns).mapInArrow(run_rows, schema)

    def features(self, source: Any, blobs: Sequence[str], label: Optional[str] = None,
                 net: Optional[str] = None, model: Optional[str] = None) -> Any:
        """A DataFrame with one row per row (or record) of ``source``: ``SampleID``
        (its id), one array<float> column per blob in ``blobs`` (the sample's values,
        flattened) and, when ``label`` names a blob, a double column ``label``. The
        TEST-phase net (of the last train, or ``net``) runs with the last trained
        weights (or ``model``) in every partition, over its rows read as the Data
        layer reads them (transform_param applied, centred crops), and the values
        leave as Arrow arrays."""
        from pyspark.sql.types import ArrayType, DoubleType, FloatType, StringType, StructField, StructType

        net_text, weights = self._net_and_model(net, model)
        blobs = list(blobs)
        is_path = isinstance(source, (str, os.PathLike))
        id_type = StringType() if is_path else source.schema["id"].dataType
        fields = [StructField("SampleID", id_type)]
        fields += [StructField(b, ArrayType(FloatType(), True)) for b in blobs]
        if label:
            fields.append(StructField("label", DoubleType()))
        schema = StructType(fields)
        from pyspark.sql.pandas.types import to_arrow_type

        arrow_id = to_arrow_type(id_type)

        def emit(collected: _Outputs, ids: Any) -> Iterator[Any]:
            yield collected.arrow(ids, arrow_id)
        return self._run_tasks(source, net_text, weights, blobs, label, schema, emit)

    def test(self, source: Any, net: Optional[str] = None, model: Optional[str] = None) -> Dict[str, float]:
        """The TEST-phase net's scalar outputs (accuracy, loss...) averaged over
        every batch of ``source``, as Caffe's test does; a partition's last
        partial batch is completed by cycling back to its first rows."""
        net_text, weights = self._net_and_model(net, model)

        def emit(collected: _Outputs, ids: Any) -> Iterator[Any]:
            import pyarrow as pa

            names = sorted(collected.sums)
            yield pa.RecordBatch.from_arrays(
                [pa.array(names, pa.string()), pa.array([collected.sums[n] for n in names], pa.float64()),
                 pa.array([collected.batches] * len(names), pa.int64())], names=["name", "total", "batches"])
        frame = self._run_tasks(source, net_text, weights, [], None, "name string, total double, batches long", emit)
        sums: Dict[str, List[float]] = {}
        with _library_errors():
            rows = frame.collect()
        for row in rows:
            entry = sums.setdefault(row.name, [0.0, 0])
            entry[0] += row.total
            entry[1] += row.batches
        return {name: total / batches for name, (total, batches) in sums.items()}


def __getattr__(name: str) -> Any:
    """CaffeEstimator and CaffeModel (pyspark.ml, in spark_ml.py), imported when asked for."""
    if name in ("CaffeEstimator", "CaffeModel"):
        from . import spark_ml

        return getattr(spark_ml, name)
    raise AttributeError(f"module 'caffegrid.spark' has no attribute '{name}'")
