"""caffegrid.spark: CaffeOnSpark's training, testing and feature extraction on a
real Spark cluster. Training is ONE barrier stage of cluster_size tasks: each
task builds the solver on a TCP ring communicator whose addresses the tasks
exchange with BarrierTaskContext.allGather, then feeds its partition to the
net's MemoryData layer batch by batch; gradients travel task to task, never
through the driver. Only rank 0's final weights come back to the driver.

    from caffegrid.spark import CaffeOnSpark
    cos = CaffeOnSpark(spark)
    cos.train(df, "lenet_solver.prototxt", model="lenet.caffemodel", cluster_size=2)
    features = cos.features(df, ["ip1"], label="label")   # SampleID, ip1, label
    scores = cos.test(test_df)                               # {"accuracy": ..., "loss": ...}

Sources are DataFrames with CaffeOnSpark's ImageDataFrame columns: ``id``,
``label`` and ``data``, the sample's C*H*W pixels as raw bytes (uint8, or
float32 little-endian when the length is 4*C*H*W) or as an array of numbers;
C, H, W come from the MemoryData layer's memory_data_param and values are
multiplied by its ``transform_param { scale }`` (no other transform is applied).
The executors need numpy, pyspark and this package (``pip install ./python``).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ._errors import InvalidArgumentError, UnsupportedError

__all__ = ["CaffeOnSpark"]

_TEST_FIELDS = ("test_iter", "test_interval", "test_initialization", "test_compute_loss", "snapshot")


def _strip_comments(text: str) -> str:
    return re.sub(r'#[^\n"]*(?=\n|$)', "", text)


def _layer_blocks(net_text: str) -> List[str]:
    """The text of every top-level ``layer { ... }`` block (braces matched; quotes respected)."""
    text, blocks = _strip_comments(net_text), []
    for match in re.finditer(r"\blayers?\s*\{", text):
        if blocks and match.start() < blocks[-1][1]:
            continue  # inside the previous block
        depth, i, quoted = 0, match.end() - 1, False
        while i < len(text):
            c = text[i]
            if c == '"':
                quoted = not quoted
            elif not quoted and c == "{":
                depth += 1
            elif not quoted and c == "}":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        blocks.append((text[match.start():i + 1], i + 1))
    return [b for b, _ in blocks]


def memory_data_scale(net_text: str, phase: str) -> float:
    """transform_param.scale of the net's MemoryData layer for ``phase`` ("TRAIN"/"TEST"); 1 when absent."""
    for block in _layer_blocks(net_text):
        if not re.search(r'\btype\s*:\s*"MemoryData"', block):
            continue
        phases = re.findall(r"\binclude\s*\{[^}]*\bphase\s*:\s*(\w+)", block)
        if phases and phase not in phases:
            continue
        transform = re.search(r"\btransform_param\s*\{([^}]*)\}", block)
        if not transform:
            return 1.0
        body = transform.group(1)
        for field in ("mean_file", "mean_value", "crop_size", "mirror: true", "force_color", "force_gray"):
            if field in body:
                raise UnsupportedError(f"caffegrid.spark: MemoryData transform_param '{field}' is not supported "
                                       "(only scale); prepare the pixels before training")
        scale = re.search(r"\bscale\s*:\s*([-+0-9.eE]+)", body)
        return float(scale.group(1)) if scale else 1.0
    raise InvalidArgumentError(f"caffegrid.spark: the net has no MemoryData layer for phase {phase}")


def _field(text: str, name: str) -> Optional[str]:
    match = re.search(rf"^\s*{name}\s*:\s*(\S+)", _strip_comments(text), re.M)
    return match.group(1).strip('"') if match else None


def read_solver(path: str) -> Tuple[str, str]:
    """(solver text, net text) of a solver prototxt; the net path is tried as
    given, then beside the solver file (as the C library does)."""
    with open(path) as f:
        solver_text = f.read()
    net = _field(solver_text, "net") or _field(solver_text, "train_net")
    if net is None:
        raise UnsupportedError(f"{path}: caffegrid.spark needs a solver with a 'net:' file (net_param is not supported)")
    if not os.path.exists(net):
        net = os.path.join(os.path.dirname(os.path.abspath(path)), net)
    with open(net) as f:
        return solver_text, f.read()


def task_solver_text(solver_text: str, net_path: str, max_iter: int) -> str:
    """The solver as each task runs it: its net file, no test nets and no interval
    snapshots (only the final model is written), max_iter as asked."""
    keep = [line for line in solver_text.splitlines()
            if not re.match(r"\s*(net|train_net|max_iter|" + "|".join(_TEST_FIELDS) + r")\s*:", line)]
    return "\n".join(keep + [f'net: "{net_path}"', f"max_iter: {max_iter}"]) + "\n"


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


def cycled_batches(rows: Iterable[Any], n: int, sample: int, scale: float, spill_dir: str) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """Endless (data n x sample, labels n) float32 batches from rows (with .label
    and .data), cycling: the first pass streams the rows and spills them to a
    local file, later passes read that file through a memory map, so a partition
    is never held in memory. Batches run on across the wrap-around."""
    spill_path = os.path.join(spill_dir, "partition.f32")
    count, k = 0, 0
    xs, ys = np.empty((n, sample), np.float32), np.empty(n, np.float32)
    with open(spill_path, "wb") as spill:
        for row in rows:
            x = sample_array(row.data, sample, scale)
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


def _train_partition(solver_text: str, net_text: str, max_iter: int, size: int, timeout: float):
    """The barrier task: rendezvous, train, and (rank 0) return the final weights."""
    def run(rows: Iterator[Any]) -> Iterator[Tuple[int, bytes]]:
        from pyspark import BarrierTaskContext

        import caffegrid

        ctx = BarrierTaskContext.get()
        rank = ctx.partitionId()
        workdir = tempfile.mkdtemp(prefix=f"caffegrid-rank{rank}-")
        try:
            net_path = os.path.join(workdir, "net.prototxt")
            solver_path = os.path.join(workdir, "solver.prototxt")
            with open(net_path, "w") as f:
                f.write(net_text)
            with open(solver_path, "w") as f:
                f.write(task_solver_text(solver_text, net_path, max_iter))
            listener = caffegrid.TcpListener()
            addresses = ctx.allGather(f"{_task_host(ctx)}:{listener.port}")  # in partition order
            comm = listener.connect(rank, size, addresses, timeout)
            solver = caffegrid.Solver(solver_path, comm=comm)
            batch, channels, height, width = solver.net.feed_shape(None)
            iter_size = int(_field(solver_text, "iter_size") or 1)
            batches = cycled_batches(rows, batch * iter_size, channels * height * width,
                                     memory_data_scale(net_text, "TRAIN"), workdir)
            while solver.iter < max_iter:
                x, y = next(batches)
                solver.net.feed(None, x.reshape(-1, channels, height, width), y)
                solver.step(1)
            if rank == 0:
                model = os.path.join(workdir, "final.caffemodel")
                solver.net.save(model)
                with open(model, "rb") as f:
                    yield rank, f.read()
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    return run


def _net_batches(rows: Iterator[Any], net: Any, scale: float, pad_by_cycling: bool):
    """(ids, labels, valid count) per batch fed to net's MemoryData layer; the
    last partial batch is completed with zeros, or by cycling back to the
    partition's first rows (as Caffe's test_iter does) when pad_by_cycling."""
    batch, channels, height, width = net.feed_shape(None)
    sample = channels * height * width
    first: List[Tuple[np.ndarray, float]] = []
    xs, ys, ids = np.zeros((batch, sample), np.float32), np.zeros(batch, np.float32), []
    for row in rows:
        x, y = sample_array(row.data, sample, scale), float(row.label)
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


def _open_net(workdir: str, net_text: str, model: bytes):
    import caffegrid

    net_path, model_path = os.path.join(workdir, "net.prototxt"), os.path.join(workdir, "model.caffemodel")
    with open(net_path, "w") as f:
        f.write(net_text)
    with open(model_path, "wb") as f:
        f.write(model)
    return caffegrid.Net(net_path, caffegrid.TEST, weights=model_path)


class CaffeOnSpark:
    """CaffeOnSpark's train / test / features over a SparkSession.

    Executors need numpy, pyspark and caffegrid installed (``pip install
    ./python`` on every node, or a packed virtualenv shipped with
    ``spark.archives``); prototxts and models travel with the tasks, so no
    shared file system is needed.
    """

    def __init__(self, spark: Any):
        self.spark = spark
        self.net_text: Optional[str] = None  # the net of the last train (features and test use it)
        self.model: Optional[bytes] = None   # the weights of the last train (.caffemodel bytes)

    def train(self, source: Any, solver: str, model: Optional[str] = None, cluster_size: int = 1,
              iterations: Optional[int] = None, timeout: float = 120.0) -> bytes:
        """Trains the solver's net on ``source`` in one Spark barrier stage of
        ``cluster_size`` tasks (synchronous data-parallel SGD; the effective
        batch is cluster_size x batch_size). Every task runs the solver's
        max_iter (or ``iterations``) iterations, cycling over its partition.
        Rank 0's final weights are written to ``model`` on the driver (when
        given) and returned as .caffemodel bytes. The solver's test nets and
        interval snapshots are left out (use ``test``); ``timeout`` is how long
        a silent peer is waited for."""
        solver_text, net_text = read_solver(solver)
        max_iter = int(iterations if iterations is not None else (_field(solver_text, "max_iter") or 0))
        if max_iter <= 0:
            raise InvalidArgumentError(f"{solver}: no max_iter to train for (give iterations=)")
        memory_data_scale(net_text, "TRAIN")  # fail early on the driver for a net without MemoryData
        size = int(cluster_size)
        rdd = source.select("label", "data").rdd
        if rdd.getNumPartitions() != size:
            rdd = rdd.repartition(size)
        results = rdd.barrier().mapPartitions(_train_partition(solver_text, net_text, max_iter, size, timeout)).collect()
        weights = dict(results)[0]
        if model is not None:
            with open(model, "wb") as f:
                f.write(weights)
        self.net_text, self.model = net_text, weights
        return weights

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
        from pyspark.sql.types import ArrayType, DoubleType, FloatType, StructField, StructType

        net_text, weights = self._net_and_model(net, model)
        blobs = list(blobs)
        scale = memory_data_scale(net_text, "TEST")
        shipped = self.spark.sparkContext.broadcast(weights)

        def run(rows: Iterator[Any]) -> Iterator[tuple]:
            workdir = tempfile.mkdtemp(prefix="caffegrid-features-")
            try:
                cnet = _open_net(workdir, net_text, shipped.value)
                wanted = blobs + ([label] if label else [])
                for ids, _, valid in _net_batches(rows, cnet, scale, pad_by_cycling=False):
                    out = cnet.forward(blobs=wanted)
                    values = [out[b].reshape(out[b].shape[0], -1) for b in blobs]
                    labels = out[label].reshape(out[label].shape[0], -1)[:, 0] if label else None
                    for i in range(valid):
                        row = (ids[i],) + tuple(v[i].tolist() for v in values)
                        yield row + ((float(labels[i]),) if label else ())
            finally:
                shutil.rmtree(workdir, ignore_errors=True)

        fields = [StructField("SampleID", source.schema["id"].dataType)]
        fields += [StructField(b, ArrayType(FloatType(), False)) for b in blobs]
        if label:
            fields.append(StructField("label", DoubleType()))
        rdd = source.select("id", "label", "data").rdd.mapPartitions(run)
        return self.spark.createDataFrame(rdd, StructType(fields))

    def test(self, source: Any, net: Optional[str] = None, model: Optional[str] = None) -> Dict[str, float]:
        """The TEST-phase net's scalar outputs (accuracy, loss...) averaged over
        every batch of ``source``, as Caffe's test does; a partition's last
        partial batch is completed by cycling back to its first rows."""
        net_text, weights = self._net_and_model(net, model)
        scale = memory_data_scale(net_text, "TEST")
        shipped = self.spark.sparkContext.broadcast(weights)

        def run(rows: Iterator[Any]) -> Iterator[Tuple[str, Tuple[float, int]]]:
            workdir = tempfile.mkdtemp(prefix="caffegrid-test-")
            try:
                cnet = _open_net(workdir, net_text, shipped.value)
                sums: Dict[str, float] = {}
                batches = 0
                for _ in _net_batches(rows, cnet, scale, pad_by_cycling=True):
                    for name, value in cnet.forward().items():
                        if value.size == 1:
                            sums[name] = sums.get(name, 0.0) + float(value.reshape(-1)[0])
                    batches += 1
                for name, total in sums.items():
                    yield name, (total, batches)
            finally:
                shutil.rmtree(workdir, ignore_errors=True)

        totals = (source.select("id", "label", "data").rdd.mapPartitions(run)
                  .reduceByKey(lambda a, b: (a[0] + b[0], a[1] + b[1])).collect())
        return {name: total / batches for name, (total, batches) in totals}
