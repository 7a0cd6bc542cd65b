"""caffegrid.spark: CaffeOnSpark's training, testing and feature extraction on a
real Spark cluster. Training is ONE barrier stage of cluster_size tasks: each
task builds the solver on a TCP ring communicator whose addresses the tasks
exchange with BarrierTaskContext.allGather, then feeds its partition to the
net's MemoryData layer batch by batch; gradients travel task to task, never
through the driver. Only rank 0's final weights come back to the driver.

    from caffegrid.spark import CaffeOnSpark
    cos = CaffeOnSpark(spark)
    cos.train(df, "lenet_solver.prototxt", model="lenet.caffemodel", cluster_size=2)
    rounds = cos.train_with_validation(df, val_df, "lenet_solver.prototxt", cluster_size=2)  # iteration, accuracy, loss
    features = cos.features(df, ["ip1"], label="label")   # SampleID, ip1, label
    scores = cos.test(test_df)                               # {"accuracy": ..., "loss": ...}

Sources are DataFrames with CaffeOnSpark's ImageDataFrame columns: ``id``,
``label`` and ``data``, the sample's C*H*W pixels as raw bytes (uint8, or
float32 little-endian when the length is 4*C*H*W), an array of numbers, or with
``encoded`` true a JPEG/PNG file (optional ``channels``/``height``/``width``
are checked); or paths every executor can read (LMDB of Datum, image list,
SequenceFile), read by the tasks through the C library's sources. C, H, W come
from the MemoryData layer's memory_data_param and values are multiplied by its
``transform_param { scale }`` (no other transform is applied). Snapshots
(``snapshot: N``) are written by rank 0; a barrier stage Spark retries after a
task died resumes from the newest complete one. The executors need numpy,
pyspark and this package (``pip install ./python``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from typing import Any, Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from . import _caffegrid
from ._errors import InvalidArgumentError, UnsupportedError

__all__ = ["CaffeOnSpark"]

def memory_data(net_text: str, phase: str, source_name: str = "net") -> Dict[str, Any]:
    """The MemoryData layer ``phase`` ("TRAIN"/"TEST") feeds, as the C library reads
    the net (Caffe's include/exclude rules and field syntax): its name,
    memory_data_param and transform_param. Errors name ``source_name``."""
    return _caffegrid.memory_data_info(net_text, source_name, 0 if phase == "TRAIN" else 1)


def memory_data_scale(net_text: str, phase: str, source_name: str = "net") -> float:
    """transform_param.scale of the MemoryData layer ``phase`` feeds (1 when absent).
    The rest of Caffe's transform_param is refused, not ignored: the Spark path does
    not apply it yet."""
    info = memory_data(net_text, phase, source_name)
    given = [name for name, on in (("mean_file", info["mean_file"]), ("mean_value", info["num_mean_values"]),
                                   ("crop_size", info["crop_size"]), ("mirror", info["mirror"]),
                                   ("force_color", info["force_color"]), ("force_gray", info["force_gray"])) if on]
    if given:
        raise UnsupportedError(f"caffegrid.spark: {source_name}: transform_param {', '.join(given)} of the {phase} "
                               f"MemoryData layer '{info['layer']}' is not supported on the Spark path yet (only "
                               "scale); prepare the pixels before training")
    return float(info["scale"])


def memory_data_shape(net_text: str, phase: str, source_name: str = "net") -> Tuple[int, int, int]:
    """(channels, height, width) of the MemoryData layer ``phase`` feeds."""
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


def read_solver(path: str) -> Tuple[str, str]:
    """(solver text, net text) of a solver prototxt (see read_solver_and_net)."""
    solver_text, net_text, _ = read_solver_and_net(path)
    return solver_text, net_text


def sample_array(value: Any, sample: int, scale: float) -> np.ndarray:
    """One sample's C*H*W values as float32, scaled: raw uint8 bytes, raw float32 bytes or a list of numbers."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        if len(raw) == sample:
            x = np.frombuffer(raw, np.uint8).astype(np.float32)
        elif len(raw) == 4 * sample:
            x = np.frombuffer(raw, "<f4").astype(np.float32)
        else:
            raise InvalidArgumentError(f"caffegrid.spark: a 'data' value has {len(raw)} bytes; the MemoryData layer "
                                       f"takes {sample} uint8 pixels ({sample} bytes) or {4 * sample} float32 bytes")
    else:
        x = np.asarray(value, np.float32).reshape(-1)
        if x.size != sample:
            raise InvalidArgumentError(f"caffegrid.spark: a 'data' array has {x.size} values, not {sample}")
    if scale != 1.0:
        x = x * np.float32(scale)
    return x


_DECODE_COLOR = {1: 2, 3: 1}  # the net's channels -> decode_image's colour mode (grey, BGR)


class RowDecoder:
    """A source row as the net's input: C*H*W float32 values, scaled. ``data``
    holds raw pixels (uint8 or float32 bytes, or numbers) or, with
    ``encoded`` true, a JPEG/PNG file decoded as Caffe's Data layer decodes it
    (BGR or grey to match the net's channels; resized to the net's height x width
    only when ``resize``). Optional ``channels``/``height``/``width`` columns are
    checked against the net."""

    def __init__(self, shape: Tuple[int, int, int], scale: float, resize: bool = False):
        self.shape, self.scale, self.resize = tuple(shape), float(scale), bool(resize)
        self.sample = self.shape[0] * self.shape[1] * self.shape[2]

    def __call__(self, row: Any) -> np.ndarray:
        if getattr(row, "encoded", None):
            return self._decoded(row)
        for name, want in zip(("channels", "height", "width"), self.shape):
            have = getattr(row, name, None)
            if have is not None and int(have) != want:
                raise InvalidArgumentError(f"caffegrid.spark: row '{row.id}': field '{name}' is {have}, the "
                                           f"MemoryData layer takes {want} (shape {'x'.join(map(str, self.shape))})")
        try:
            return sample_array(row.data, self.sample, self.scale)
        except InvalidArgumentError as e:
            raise InvalidArgumentError(f"row '{row.id}': {e}") from None

    def _decoded(self, row: Any) -> np.ndarray:
        from . import _caffegrid

        channels, height, width = self.shape
        if channels not in _DECODE_COLOR:
            raise InvalidArgumentError(f"caffegrid.spark: row '{row.id}': encoded images need a net with 1 or 3 "
                                       f"channels, not {channels}")
        size = (height, width) if self.resize else (0, 0)
        c, h, w, pixels, _ = _caffegrid.decode_image(bytes(row.data), f"row '{row.id}'", _DECODE_COLOR[channels], *size)
        if (c, h, w) != self.shape:
            raise InvalidArgumentError(f"caffegrid.spark: row '{row.id}': the image is {c}x{h}x{w}, the MemoryData "
                                       f"layer takes {channels}x{height}x{width} (resize=True resizes)")
        return sample_array(pixels, self.sample, self.scale)


class SourceRow(NamedTuple):
    """A record of a path source, as a DataFrame row would hold it (raw pixels in ``data``)."""
    id: str
    label: float
    data: bytes


_SOURCE_TYPES = ("lmdb", "image_list", "seqfile", "hdf5")


def source_type(path: str) -> Tuple[str, str]:
    """(source type, location) of a path source: an explicit ``lmdb:`` /
    ``image_list:`` / ``seqfile:`` / ``hdf5:`` prefix, else what the C library
    finds the file to be (an LMDB, a SequenceFile or a folder of them, an HDF5
    file or list, an image list). CaffeOnSpark's ``file:`` prefix is dropped."""
    kind, _, rest = path.partition(":")
    if kind in _SOURCE_TYPES and rest:
        return kind, rest
    if path.startswith("file://"):
        path = path[len("file://"):]
    elif path.startswith("file:"):
        path = path[len("file:"):]
    return _caffegrid.data_source_type(path), path


def _read_path(path: str, partitions: int, shape: Tuple[int, int, int], resize: bool):
    """mapPartitionsWithIndex function: partition p reads records p, p+P, ... of the
    source, loaded as the Data layer loads them (Datum unpacked, images decoded to the
    net's channels, resized to its height x width when ``resize``)."""
    def read(index: int, _: Iterator[Any]) -> Iterator[SourceRow]:
        from . import _caffegrid

        kind, location = source_type(path)
        reader = _caffegrid.SourceReader(kind, location)
        color = _DECODE_COLOR.get(shape[0], 0)
        size = shape[1:] if resize else (0, 0)
        for i in range(index, reader.count, partitions):
            (sample_id, label), (_, _, _, data, _) = reader.read(i, color, *size)
            yield SourceRow(sample_id, 0.0 if label is None else label, data)
    return read


def cycled_batches(rows: Iterable[Any], n: int, sample: int, scale: float, spill_dir: str,
                   values: Optional[Callable[[Any], np.ndarray]] = None) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """Endless (data n x sample, labels n) float32 batches from rows (with .label
    and .data; ``values(row)`` gives a row's scaled values, raw pixels by default), cycling: the first pass streams the rows and spills them to a
    local file, later passes read that file through a memory map, so a partition
    is never held in memory. Batches run on across the wrap-around."""
    spill_path = os.path.join(spill_dir, "partition.f32")
    count, k = 0, 0
    xs, ys = np.empty((n, sample), np.float32), np.empty(n, np.float32)
    with open(spill_path, "wb") as spill:
        for row in rows:
            x = values(row) if values else sample_array(row.data, sample, scale)
            y = np.float32(row.label)
            spill.write(x.tobytes())
            spill.write(y.tobytes())
            xs[k], ys[k] = x, y
            k, count = k + 1, count + 1
            if k == n:
                yield xs, ys
                xs, ys, k = np.empty((n, sample), np.float32), np.empty(n, np.float32), 0
    if count == 0:
        raise InvalidArgumentError("caffegrid.spark: a training partition is empty; give every task some rows "
                                   "(fewer tasks, or repartition the source)")
    stored = np.memmap(spill_path, np.float32, "r", shape=(count, sample + 1))
    position = 0
    while True:
        while k < n:
            take = min(n - k, count - position)
            xs[k:k + take] = stored[position:position + take, :sample]
            ys[k:k + take] = stored[position:position + take, sample]
            k, position = k + take, (position + take) % count
        yield xs, ys
        xs, ys, k = np.empty((n, sample), np.float32), np.empty(n, np.float32), 0


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
    decoder: RowDecoder
    snapshot_prefix: Optional[str]   # absolute, when the solver snapshots at intervals
    resume: Optional[str]            # a .solverstate, "auto", or None (start fresh on the first attempt)
    weights: Optional[str]           # .caffemodel files to fine-tune from
    validation: Any = None           # a broadcast list of validation rows, or None
    test_iter: int = 0               # validation batches per rank
    validation_decoder: Optional[RowDecoder] = None
    token: str = ""                  # names this train call's first-attempt marker


def _resume_point(ctx: Any, solver: Any, plan: TrainPlan) -> Optional[str]:
    """The snapshot every rank restores, decided by rank 0 and shared through
    allGather (so ranks never disagree): the one asked for, or on a retried stage
    (and with resume="auto") the newest complete snapshot, if any. PySpark does not
    tell a task its stage attempt, so rank 0 marks the first attempt with a file
    beside the snapshots, named for this train call; finding it means a retry."""
    choice = None
    if ctx.partitionId() == 0:
        retried = False
        if plan.snapshot_prefix is not None:
            marker = f"{plan.snapshot_prefix}_{plan.token}.attempt"
            retried = os.path.exists(marker)
            open(marker, "a").close()
        if plan.resume == "auto" or retried:
            choice = solver.latest_snapshot()
        if choice is None and plan.resume not in (None, "auto"):
            choice = plan.resume
    return json.loads(ctx.allGather(json.dumps(choice))[0])


def _feed_validation(solver: Any, plan: TrainPlan, rank: int) -> None:
    """Feeds this rank's share of the validation rows (r, r+W, ...) to the test
    net, completed by cycling to test_iter batches (the same count on every rank)."""
    net = solver.test_nets[0]
    batch, channels, height, width = net.feed_shape(None)
    rows = plan.validation.value[rank::plan.size]
    xs = np.stack([plan.validation_decoder(row) for row in rows])
    ys = np.array([row.label for row in rows], np.float32)
    take = np.arange(plan.test_iter * batch) % len(rows)
    net.feed(None, np.ascontiguousarray(xs[take]).reshape(-1, channels, height, width), ys[take])


def _tested_at(info: Dict[str, Any], iteration: int) -> bool:
    """Whether Caffe's solver (``solver_info``) tests at the start of ``iteration``."""
    interval = info["test_interval"]
    return interval > 0 and iteration % interval == 0 and (iteration > 0 or info["test_initialization"])


def _strided(rdd: Any, size: int) -> Any:
    """The rows in ``size`` partitions, partition r holding rows r, r+size, ... in
    their order (as the Data layer shares records between ranks). The shuffle ends
    the source's lineage before the barrier stage, which refuses chains holding
    union, coalesce, limit and the like; sorting keeps the order fixed, so a
    retried stage feeds the same batches."""
    return (rdd.zipWithIndex().map(lambda pair: (pair[1], pair[0]))
            .repartitionAndSortWithinPartitions(size, lambda index: index % size).values())


def _use_task_cores(ctx: Any) -> None:
    """Runs this task's math and loops on the cores Spark gave it (spark.task.cpus,
    Spark 3.3 and later), as `caffegrid train` gives each MPI rank its share, so
    tasks sharing a machine do not oversubscribe it. OMP_NUM_THREADS is no guide:
    PySpark sets it to the executor's cores, which its concurrent tasks share. A
    user's OPENBLAS_NUM_THREADS wins."""
    import caffegrid

    cpus = getattr(ctx, "cpus", None)
    cores = cpus() if callable(cpus) else 0
    if cores < 1 or os.environ.get("OPENBLAS_NUM_THREADS"):
        return
    caffegrid.set_math_threads(cores)
    caffegrid.set_num_threads(cores)


def _start_solver(ctx: Any, plan: TrainPlan, workdir: str) -> Tuple[Any, Optional[str]]:
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
    overrides = dict(net_path=net_path, max_iter=plan.max_iter,
                     snapshot_prefix=plan.snapshot_prefix or os.path.join(workdir, "solver"),
                     no_interval_snapshots=plan.snapshot_prefix is None, no_testing=plan.validation is None,
                     test_iter=plan.test_iter * plan.size if plan.validation is not None else 0)
    if plan.snapshot_prefix and rank == 0:
        os.makedirs(os.path.dirname(plan.snapshot_prefix), exist_ok=True)
    listener = caffegrid.TcpListener()
    addresses = ctx.allGather(f"{_task_host(ctx)}:{listener.port}")  # in partition order
    solver = caffegrid.Solver(plan.solver_name, comm=listener.connect(rank, plan.size, addresses, plan.timeout),
                              text=plan.solver_text, **overrides)
    if plan.weights:
        solver.copy_from(plan.weights)
    resumed = _resume_point(ctx, solver, plan)
    if resumed:
        solver.restore(resumed)
    return solver, resumed


def _train_partition(plan: TrainPlan):
    """The barrier task: rendezvous, resume, train (validating), and (rank 0) return
    ("model", weights), ("rounds", validation rounds), ("resumed", snapshot or None)."""
    def run(rows: Iterator[Any]) -> Iterator[Tuple[str, Any]]:
        from pyspark import BarrierTaskContext

        ctx = BarrierTaskContext.get()
        rank = ctx.partitionId()
        workdir = tempfile.mkdtemp(prefix=f"caffegrid-rank{rank}-")
        try:
            solver, resumed = _start_solver(ctx, plan, workdir)
            batch, channels, height, width = solver.net.feed_shape(None)
            info = solver_info(plan.solver_text, plan.solver_name)
            iter_size = info["iter_size"]
            batches = cycled_batches(rows, batch * iter_size, channels * height * width, plan.decoder.scale, workdir,
                                     plan.decoder)
            for _ in range(solver.iter):  # the batches the snapshot's iterations consumed
                next(batches)
            rounds = []
            if plan.validation is not None:
                _feed_validation(solver, plan, rank)
                outputs = solver.test_nets[0].outputs
            while solver.iter < plan.max_iter:
                iteration = solver.iter
                x, y = next(batches)
                solver.net.feed(None, x.reshape(-1, channels, height, width), y)
                solver.step(1)
                if plan.validation is not None and _tested_at(info, iteration):
                    rounds.append([iteration] + [solver._h.last_test_score(0, o) for o in outputs])
            if plan.validation is not None and _tested_at(info, plan.max_iter):
                scores = solver.test()[0]  # Caffe's Solve tests once more after the last iteration
                rounds.append([plan.max_iter] + [scores[o] for o in outputs])
            if rank == 0:
                model = os.path.join(workdir, "final.caffemodel")
                solver.net.save(model)
                with open(model, "rb") as f:
                    yield "model", f.read()
                yield "rounds", rounds
                yield "resumed", resumed
                if plan.snapshot_prefix is not None:
                    os.unlink(f"{plan.snapshot_prefix}_{plan.token}.attempt")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return run


def _net_batches(rows: Iterator[Any], net: Any, decoder: RowDecoder, pad_by_cycling: bool):
    """(ids, labels, valid count) per batch fed to net's MemoryData layer; the
    last partial batch is completed with zeros, or by cycling back to the
    partition's first rows (as Caffe's test_iter does) when pad_by_cycling."""
    batch, channels, height, width = net.feed_shape(None)
    sample = channels * height * width
    first: List[Tuple[np.ndarray, float]] = []
    xs, ys, ids = np.zeros((batch, sample), np.float32), np.zeros(batch, np.float32), []
    for row in rows:
        x, y = decoder(row), float(row.label)
        if pad_by_cycling and len(first) < batch:
            first.append((x, y))
        xs[len(ids)], ys[len(ids)] = x, y
        ids.append(row.id)
        if len(ids) == batch:
            net.feed(None, xs.reshape(batch, channels, height, width), ys)
            yield ids, ys, batch
            xs, ys, ids = np.zeros((batch, sample), np.float32), np.zeros(batch, np.float32), []
    if ids:
        valid = len(ids)
        for j in range(valid, batch):
            if pad_by_cycling:
                xs[j], ys[j] = first[(j - valid) % len(first)]
        net.feed(None, xs.reshape(batch, channels, height, width), ys)
        yield ids, ys, valid


def _net_outputs(net_text: str) -> List[str]:
    """The TEST net's output blobs (built once on the driver, without weights)."""
    import caffegrid

    with tempfile.TemporaryDirectory(prefix="caffegrid-net-") as workdir:
        path = os.path.join(workdir, "net.prototxt")
        with open(path, "w") as f:
            f.write(net_text)
        return caffegrid.Net(path, caffegrid.TEST).outputs


def _open_net(workdir: str, net_text: str, model: bytes):
    import caffegrid
    from pyspark import TaskContext

    _use_task_cores(TaskContext.get())
    net_path, model_path = os.path.join(workdir, "net.prototxt"), os.path.join(workdir, "model.caffemodel")
    with open(net_path, "w") as f:
        f.write(net_text)
    with open(model_path, "wb") as f:
        f.write(model)
    return caffegrid.Net(net_path, caffegrid.TEST, weights=model_path)


_OPTIONAL_COLUMNS = ("channels", "height", "width", "encoded")


class CaffeOnSpark:
    """CaffeOnSpark's train / test / features over a SparkSession.

    Sources are DataFrames with CaffeOnSpark's ImageDataFrame columns (``id``,
    ``label``, ``data``, optional ``channels``/``height``/``width``/``encoded``)
    or paths every executor can read: an LMDB of Datum, an image list, a
    SequenceFile (``lmdb:``/``image_list:``/``seqfile:``/``hdf5:`` prefixes
    force the type). ``resize`` is CaffeOnSpark's -resize: encoded images (and
    path sources) are resized to the MemoryData layer's height x width.

    Executors need numpy, pyspark and caffegrid installed (``pip install
    ./python`` on every node, or a packed virtualenv shipped with
    ``spark.archives``); prototxts and models travel with the tasks, so no
    shared file system is needed, except for snapshots that a retried stage
    resumes from.
    """

    def __init__(self, spark: Any, resize: bool = False):
        self.spark = spark
        self.resize = bool(resize)
        self.net_text: Optional[str] = None  # the net of the last train (features and test use it)
        self.model: Optional[bytes] = None   # the weights of the last train (.caffemodel bytes)
        self.resumed_from: Optional[str] = None  # the snapshot the last train's final attempt restored, if any

    def _rows(self, source: Any, partitions: int, shape: Tuple[int, int, int]) -> Any:
        """The source as an RDD of rows with id, label, data (and the optional columns)."""
        if isinstance(source, (str, os.PathLike)):
            read = _read_path(os.fspath(source), partitions, shape, self.resize)
            return self.spark.sparkContext.parallelize(range(partitions), partitions).mapPartitionsWithIndex(read)
        missing = [c for c in ("id", "label", "data") if c not in source.columns]
        if missing:
            raise InvalidArgumentError(f"caffegrid.spark: the source DataFrame has no column {', '.join(missing)} "
                                       f"(CaffeOnSpark's ImageDataFrame: id, label, data; it has {source.columns})")
        return source.select(["id", "label", "data"] + [c for c in _OPTIONAL_COLUMNS if c in source.columns]).rdd

    def train(self, source: Any, solver: str, model: Optional[str] = None, cluster_size: int = 1,
              iterations: Optional[int] = None, timeout: float = 120.0, snapshot: Optional[str] = None,
              weights: Optional[str] = None) -> bytes:
        """Trains the solver's net on ``source`` in one Spark barrier stage of
        ``cluster_size`` tasks (synchronous data-parallel SGD; the effective
        batch is cluster_size x batch_size). Every task runs the solver's
        max_iter (or ``iterations``) iterations, cycling over its share (task r
        of W: rows r, r+W, ... of a DataFrame; records r, r+W, ... of a path).
        Rank 0's final weights are written to ``model`` on the driver (when
        given) and returned as .caffemodel bytes. ``timeout`` is how long a
        silent peer is waited for.

        With ``snapshot: N`` in the solver, rank 0 writes Caffe snapshots under
        snapshot_prefix (relative prefixes are taken from the driver's working
        directory; it must be a directory every executor can read). When a task
        dies Spark retries the whole barrier stage, and the retry resumes from
        the newest complete snapshot. ``snapshot`` resumes from a .solverstate
        (or "auto": the newest complete one) on the first attempt too;
        ``weights`` fine-tunes from .caffemodel files (comma-separated). The
        solver's test nets are left out (see train_with_validation)."""
        self._train(source, None, solver, model, cluster_size, iterations, timeout, snapshot, weights)
        return self.model

    def train_with_validation(self, source: Any, validation: Any, solver: str, model: Optional[str] = None,
                              cluster_size: int = 1, iterations: Optional[int] = None, timeout: float = 120.0,
                              snapshot: Optional[str] = None, weights: Optional[str] = None) -> Any:
        """train, scoring ``validation`` with the solver's TEST net every
        test_interval iterations (and at iteration 0 unless test_initialization
        is false, and after the last one), as Caffe's solver tests. Each task
        scores its share of the validation rows; the means are averaged over the
        tasks. Returns a DataFrame with one row per validation round:
        ``iteration`` and one double column per test-net output (accuracy,
        loss, ...). Rounds before the snapshot a retried stage resumed from are
        not repeated."""
        return self._train(source, validation, solver, model, cluster_size, iterations, timeout, snapshot, weights)

    def _train(self, source, validation, solver, model, cluster_size, iterations, timeout, snapshot, weights):
        solver_text, net_text, net_path = read_solver_and_net(solver)
        info = solver_info(solver_text, solver)
        max_iter = int(iterations if iterations is not None else info["max_iter"])
        if max_iter <= 0:
            raise InvalidArgumentError(f"{solver}: no max_iter to train for (give iterations=)")
        shape = memory_data_shape(net_text, "TRAIN", net_path)
        size = int(cluster_size)
        decoder = RowDecoder(shape, memory_data_scale(net_text, "TRAIN", net_path), self.resize)
        prefix, interval = info["snapshot_prefix"], info["snapshot"]
        plan = TrainPlan(solver, solver_text, net_text, max_iter, size, float(timeout), decoder,
                         os.path.abspath(prefix) if prefix and interval > 0 else None, snapshot, weights,
                         token=uuid.uuid4().hex)
        outputs: List[str] = []
        if validation is not None:
            plan, outputs = self._validation_plan(plan, validation, solver_text, net_text)
        rdd = self._rows(source, size, shape)
        if not isinstance(source, (str, os.PathLike)):  # path rows come in size partitions of their own
            rdd = _strided(rdd, size)
        # the shuffle after the barrier stage makes it a shuffle-map stage, which Spark
        # retries when a task fails (a failed barrier result stage is never retried)
        results = dict(rdd.barrier().mapPartitions(_train_partition(plan)).repartition(1).collect())
        if model is not None:
            with open(model, "wb") as f:
                f.write(results["model"])
        self.net_text, self.model, self.resumed_from = net_text, results["model"], results["resumed"]
        if validation is None:
            return None
        from pyspark.sql.types import DoubleType, IntegerType, StructField, StructType

        schema = StructType([StructField("iteration", IntegerType(), False)]
                            + [StructField(o, DoubleType()) for o in outputs])
        rounds = [(int(r[0]),) + tuple(float(v) for v in r[1:]) for r in results["rounds"]]
        return self.spark.createDataFrame(rounds, schema)

    def _validation_plan(self, plan: TrainPlan, validation: Any, solver_text: str, net_text: str):
        """The plan with the validation rows broadcast and test_iter per rank set so
        every rank scores its whole share; and the test net's output names."""
        if not solver_info(solver_text, plan.solver_name)["test_interval"]:
            raise InvalidArgumentError("caffegrid.spark: train_with_validation needs test_interval in the solver")
        shape = memory_data_shape(net_text, "TEST")
        batch = memory_data(net_text, "TEST")["batch_size"]
        rows = self._rows(validation, plan.size, shape).collect()
        if len(rows) < plan.size:
            raise InvalidArgumentError(f"caffegrid.spark: the validation source has {len(rows)} rows, fewer than "
                                       f"the {plan.size} tasks")
        share = -(-len(rows) // plan.size)
        decoder = RowDecoder(shape, memory_data_scale(net_text, "TEST"), self.resize)
        decoder(rows[0])  # a bad row fails here, on the driver, before the stage starts
        outputs = _net_outputs(net_text)
        shipped = self.spark.sparkContext.broadcast(rows)
        return plan._replace(validation=shipped, test_iter=-(-share // batch), validation_decoder=decoder), outputs

    def _net_and_model(self, net: Optional[str], model: Optional[str]) -> Tuple[str, bytes]:
        net_text = self.net_text
        if net is not None:
            with open(net) as f:
                net_text = f.read()
        weights = self.model
        if model is not None:
            with open(model, "rb") as f:
                weights = f.read()
        if net_text is None or weights is None:
            raise InvalidArgumentError("caffegrid.spark: no trained model; call train first or give net= and model=")
        return net_text, weights

    def features(self, source: Any, blobs: Sequence[str], label: Optional[str] = None,
                 net: Optional[str] = None, model: Optional[str] = None) -> Any:
        """A DataFrame with one row per row of ``source``: ``SampleID`` (its id),
        one array<float> column per blob in ``blobs`` (the sample's values,
        flattened) and, when ``label`` names a blob, a double column ``label``.
        The TEST-phase net (of the last train, or ``net``) runs with the last
        trained weights (or ``model``) in every partition (mapPartitions)."""
        from pyspark.sql.types import ArrayType, DoubleType, FloatType, StringType, StructField, StructType

        net_text, weights = self._net_and_model(net, model)
        blobs = list(blobs)
        shape = memory_data_shape(net_text, "TEST")
        decoder = RowDecoder(shape, memory_data_scale(net_text, "TEST"), self.resize)
        shipped = self.spark.sparkContext.broadcast(weights)

        def run(rows: Iterator[Any]) -> Iterator[tuple]:
            workdir = tempfile.mkdtemp(prefix="caffegrid-features-")
            try:
                cnet = _open_net(workdir, net_text, shipped.value)
                wanted = blobs + ([label] if label else [])
                for ids, _, valid in _net_batches(rows, cnet, decoder, pad_by_cycling=False):
                    out = cnet.forward(blobs=wanted)
                    values = [out[b].reshape(out[b].shape[0], -1) for b in blobs]
                    labels = out[label].reshape(out[label].shape[0], -1)[:, 0] if label else None
                    for i in range(valid):
                        row = (ids[i],) + tuple(v[i].tolist() for v in values)
                        yield row + ((float(labels[i]),) if label else ())
            finally:
                shutil.rmtree(workdir, ignore_errors=True)

        id_type = StringType() if isinstance(source, (str, os.PathLike)) else source.schema["id"].dataType
        fields = [StructField("SampleID", id_type)]
        fields += [StructField(b, ArrayType(FloatType(), False)) for b in blobs]
        if label:
            fields.append(StructField("label", DoubleType()))
        rdd = self._rows(source, self.spark.sparkContext.defaultParallelism, shape).mapPartitions(run)
        return self.spark.createDataFrame(rdd, StructType(fields))

    def test(self, source: Any, net: Optional[str] = None, model: Optional[str] = None) -> Dict[str, float]:
        """The TEST-phase net's scalar outputs (accuracy, loss...) averaged over
        every batch of ``source``, as Caffe's test does; a partition's last
        partial batch is completed by cycling back to its first rows."""
        net_text, weights = self._net_and_model(net, model)
        shape = memory_data_shape(net_text, "TEST")
        decoder = RowDecoder(shape, memory_data_scale(net_text, "TEST"), self.resize)
        shipped = self.spark.sparkContext.broadcast(weights)

        def run(rows: Iterator[Any]) -> Iterator[Tuple[str, Tuple[float, int]]]:
            workdir = tempfile.mkdtemp(prefix="caffegrid-test-")
            try:
                cnet = _open_net(workdir, net_text, shipped.value)
                sums: Dict[str, float] = {}
                batches = 0
                for _ in _net_batches(rows, cnet, decoder, pad_by_cycling=True):
                    for name, value in cnet.forward().items():
                        if value.size == 1:
                            sums[name] = sums.get(name, 0.0) + float(value.reshape(-1)[0])
                    batches += 1
                for name, total in sums.items():
                    yield name, (total, batches)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)

        totals = (self._rows(source, self.spark.sparkContext.defaultParallelism, shape).mapPartitions(run)
                  .reduceByKey(lambda a, b: (a[0] + b[0], a[1] + b[1])).collect())
        return {name: total / batches for name, (total, batches) in totals}
