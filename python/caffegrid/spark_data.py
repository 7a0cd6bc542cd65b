"""Rows of a Spark DataFrame into the C data pipeline, as Arrow and never as one
Python object per row.

A DataFrame with CaffeOnSpark's ImageDataFrame columns (``id``, ``label``,
``data``, optional ``encoded``/``channels``/``height``/``width``) reaches its
tasks as Arrow record batches, whose columns are written in one C loop into a
task-local records file (caffegrid/records_file.h: ids, labels and bytes exactly
as they arrived; encoded images stay encoded). The net's MemoryData layer then
reads that file as a Data layer reads an LMDB (Net.feed_source): Caffe's whole
transform_param in C, in prefetch threads, with per-record random crops and
mirrors, a new draw every epoch.

Training shares rows as ranks share an LMDB: the rows are ordered by ``id`` (any
sortable type; ids must be unique) and task r of W gets rows r, r+W, ... of that
order, whatever the input's partitioning and whether it is cached, so a retried
stage feeds exactly the batches the failed one would have. The rows travel as
Arrow IPC chunks through one shuffle into an RDD barrier stage: the barrier API
is what lets the tasks form a ring (allGather) and Spark retry them together.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ._errors import InvalidArgumentError

COLUMNS = ("id", "label", "data")
OPTIONAL_COLUMNS = ("encoded", "channels", "height", "width")
CHUNK_BYTES = 16 << 20  # rows per shuffled chunk: about this many bytes


def local_dir() -> Optional[str]:
    """The executor's local directory (spark.local.dir, which PySpark passes to its
    workers as SPARK_LOCAL_DIRS), or None for the system's temporary directory."""
    dirs = [d for d in os.environ.get("SPARK_LOCAL_DIRS", "").split(",") if d and os.path.isdir(d)]
    return dirs[0] if dirs else None


def task_workdir(prefix: str) -> str:
    """A fresh directory for a task's local copy and files, in the executor's local directory."""
    return tempfile.mkdtemp(prefix=prefix, dir=local_dir())


@contextlib.contextmanager
def user_terms(workdir: str, names: Dict[str, str]) -> Iterator[None]:
    """Errors raised inside in the user's terms: a record of a task's local copy
    becomes "row 'ID'", and the task's own copies of files (``names``: temporary
    path -> the user's name) are named as the user knows them."""
    from ._errors import Error

    try:
        yield
    except Error as e:
        message = re.sub(r"'((?:[^'\\]|\\.)*)' in " + re.escape(workdir) + r"/[^\s:]*\.records", r"row '\1'", str(e))
        message = re.sub(r"records file '" + re.escape(workdir) + r"/[^']*'", "the task's copy of its rows", message)
        for temporary, user in names.items():
            message = message.replace(temporary, user)
        if message == str(e):
            raise
        raise type(e)(message) from None


def source_columns(df: Any) -> List[str]:
    """The ImageDataFrame columns of ``df`` the tasks need; an error names what is missing."""
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise InvalidArgumentError(f"caffegrid.spark: the source DataFrame has no column {', '.join(missing)} "
                                   f"(CaffeOnSpark's ImageDataFrame: id, label, data; it has {df.columns})")
    return list(COLUMNS) + [c for c in OPTIONAL_COLUMNS if c in df.columns]


def _offsets(array: Any) -> Tuple[np.ndarray, Any]:
    """n + 1 int64 offsets and the values buffer of an Arrow binary or string array."""
    import pyarrow as pa

    large = pa.types.is_large_binary(array.type) or pa.types.is_large_string(array.type)
    buffers = array.buffers()
    offsets = np.frombuffer(buffers[1], np.int64 if large else np.int32, count=len(array) + 1, offset=array.offset *
                            (8 if large else 4)).astype(np.int64)
    return offsets, (buffers[2] if buffers[2] is not None else b"")


def _first_null(batch: Any, column: str) -> str:
    import pyarrow.compute as pc

    ids = batch.column("id")
    nulls = np.flatnonzero(np.asarray(pc.is_null(batch.column(column)).to_numpy(zero_copy_only=False)))
    return str(ids[int(nulls[0])].as_py()) if len(nulls) else "?"


def id_strings(ids: Any) -> Any:
    """The id column as UTF-8 strings (numbers, dates... as Arrow casts them), for
    record ids and messages."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_string(ids.type) or pa.types.is_large_string(ids.type):
        return ids
    if pa.types.is_binary(ids.type) or pa.types.is_large_binary(ids.type):
        return ids.cast(pa.large_binary())
    return pc.cast(ids, pa.string())


def write_batch(writer: Any, batch: Any, shape: Tuple[int, int, int]) -> None:
    """Appends an Arrow record batch of ImageDataFrame rows to a RecordsWriter.
    ``shape`` (C, H, W) is every raw row's unless the batch has channels/height/width
    columns; ``data`` is binary (uint8 pixels, float32 bytes, or an encoded image
    where ``encoded`` is true) or an array of numbers."""
    import pyarrow as pa
    import pyarrow.compute as pc

    n = batch.num_rows
    if n == 0:
        return
    names = batch.schema.names
    ids = batch.column("id")
    if ids.null_count:
        raise InvalidArgumentError("caffegrid.spark: a row has no id (id is null); every row needs a unique id")
    id_offsets, id_data = _offsets(id_strings(ids))
    labels = batch.column("label")
    if labels.null_count:
        raise InvalidArgumentError(f"caffegrid.spark: row '{_first_null(batch, 'label')}': label is null")
    labels = pc.cast(labels, pa.float64()).to_numpy(zero_copy_only=False)
    data = batch.column("data")
    if data.null_count:
        raise InvalidArgumentError(f"caffegrid.spark: row '{_first_null(batch, 'data')}': data is null")
    floats = pa.types.is_list(data.type) or pa.types.is_large_list(data.type)
    if floats:
        values = pc.cast(data.flatten(), pa.float32())
        if values.null_count:
            raise InvalidArgumentError("caffegrid.spark: a 'data' array holds a null value")
        list_offsets = np.asarray(data.offsets.to_numpy(zero_copy_only=False), np.int64)
        data_offsets, data_values = list_offsets - list_offsets[0], values.to_numpy(zero_copy_only=False)
    elif pa.types.is_binary(data.type) or pa.types.is_large_binary(data.type):
        data_offsets, data_values = _offsets(data)
    else:
        raise InvalidArgumentError(f"caffegrid.spark: column 'data' is {data.type}; it must hold bytes (raw pixels, "
                                   "float32 values or an encoded image) or an array of numbers")
    encoded = None
    if "encoded" in names:
        encoded = pc.fill_null(pc.cast(batch.column("encoded"), pa.uint8()), 0).to_numpy(zero_copy_only=False)
    shapes = None
    if any(c in names for c in ("channels", "height", "width")):
        shapes = np.empty((n, 3), np.int32)
        for k, c in enumerate(("channels", "height", "width")):
            column = batch.column(c) if c in names else None
            shapes[:, k] = (pc.fill_null(pc.cast(column, pa.int32()), shape[k]).to_numpy(zero_copy_only=False)
                            if column is not None else shape[k])
    writer.add_rows(id_offsets, id_data, data_offsets, data_values, tuple(shape), labels=labels, encoded=encoded,
                    shapes=shapes, floats=floats)


def check_sizes(batch: Any, shape: Tuple[int, int, int]) -> None:
    """Every raw row's data fits its shape (vectorised over the batch, before the rows
    travel): the job fails early, in an ordinary stage, with the row named, in the
    words the C writer would use."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from ._errors import ShapeError

    n, names = batch.num_rows, batch.schema.names
    if n == 0 or "data" not in names:
        return
    data = batch.column("data")
    is_list = pa.types.is_list(data.type) or pa.types.is_large_list(data.type)
    if not (is_list or pa.types.is_binary(data.type) or pa.types.is_large_binary(data.type)) or data.null_count:
        return  # write_batch names those
    lengths = np.asarray(pc.list_value_length(data) if is_list else pc.binary_length(data), np.int64)
    dims = np.empty((n, 3), np.int64)
    for k, c in enumerate(("channels", "height", "width")):
        dims[:, k] = (pc.fill_null(pc.cast(batch.column(c), pa.int64()), shape[k]).to_numpy(zero_copy_only=False)
                      if c in names else shape[k])
    values = np.prod(np.clip(dims, 0, None), axis=1)
    fits = lengths == values if is_list else (lengths == values) | (lengths == 4 * values)
    if "encoded" in names:
        fits |= pc.fill_null(batch.column("encoded"), False).to_numpy(zero_copy_only=False).astype(bool)
    if fits.all():
        return
    i = int(np.argmin(fits))
    c, h, w = (int(x) for x in dims[i])
    row = str(id_strings(batch.column("id"))[i].as_py())
    if is_list:
        raise ShapeError(f"row '{row}': {lengths[i]} values, its shape {c}x{h}x{w} takes {values[i]}")
    raise ShapeError(f"row '{row}': {lengths[i]} bytes of data; its shape {c}x{h}x{w} takes {values[i]} uint8 pixels "
                     f"({values[i]} bytes) or {values[i]} float32 values ({4 * values[i]} bytes), or mark it encoded")


def ipc_bytes(batch: Any) -> bytes:
    """One record batch as Arrow's IPC stream format."""
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as stream:
        stream.write_batch(batch)
    return sink.getvalue().to_pybytes()


def read_ipc(data: bytes) -> List[Any]:
    import pyarrow as pa

    return pa.ipc.open_stream(data).read_all().to_batches()


def _slices(batch: Any) -> Iterator[Any]:
    """The batch cut into slices of about CHUNK_BYTES (at least one row each)."""
    per_row = max(1, batch.nbytes // max(1, batch.num_rows))
    rows = max(1, CHUNK_BYTES // per_row)
    for start in range(0, batch.num_rows, rows):
        yield batch.slice(start, rows)


CHUNK_SCHEMA = "seq int, rows long, first string, last string, chunk binary"


def _ordered_chunks(shape: Tuple[int, int, int]) -> Any:
    """mapInArrow over the id-sorted rows: each slice as an IPC chunk with its place
    in the partition, its row count and its first and last id (so the driver can
    number every row and find ids given twice); rows whose data do not fit ``shape``
    fail here, before anything is trained."""
    def chunk(batches: Iterator[Any]) -> Iterator[Any]:
        yield from _chunks_of(batches, shape)
    return chunk


def _chunks_of(batches: Iterator[Any], shape: Tuple[int, int, int]) -> Iterator[Any]:
    import pyarrow as pa
    import pyarrow.compute as pc

    seq, previous = 0, None
    for batch in batches:
        check_sizes(batch, shape)
        for piece in _slices(batch):
            ids = id_strings(piece.column("id"))
            if piece.num_rows > 1:
                same = pc.equal(ids.slice(1), ids.slice(0, piece.num_rows - 1)).to_numpy(zero_copy_only=False)
                if same.any():
                    raise InvalidArgumentError(f"caffegrid.spark: id '{ids[int(np.argmax(same))].as_py()}' is given "
                                               "to more than one row; ids order the rows and must be unique")
            first, last = str(ids[0].as_py()), str(ids[piece.num_rows - 1].as_py())
            if previous is not None and previous == first:
                raise InvalidArgumentError(f"caffegrid.spark: id '{first}' is given to more than one row; ids order "
                                           "the rows and must be unique")
            previous = last
            yield pa.RecordBatch.from_arrays(
                [pa.array([seq], pa.int32()), pa.array([piece.num_rows], pa.int64()),
                 pa.array([first]), pa.array([last]), pa.array([ipc_bytes(piece)], pa.binary())],
                names=["seq", "rows", "first", "last", "chunk"])
            seq += 1


def strided_chunks(df: Any, size: int, dataset: str, shape: Tuple[int, int, int]) -> Tuple[Any, int]:
    """(RDD of (task, (dataset, first row number, IPC chunk)), row count): the rows
    of ``df`` ordered by id and dealt out as ranks share an LMDB, task r getting rows
    r, r+size, ... (each chunk holds rows of one task, in order)."""
    columns = source_columns(df)
    # the sorted frame's partitions in order, numbered by this RDD's own partition index (a
    # task's partitionId would change once the stage below pipelines it into a union); one
    # RDD object, so the count below and the stage after read the same sorted shuffle output
    chunks = (df.select(columns).orderBy("id").mapInArrow(_ordered_chunks(tuple(shape)), CHUNK_SCHEMA).rdd
              .mapPartitionsWithIndex(lambda part, rows: ((part, row) for row in rows)))
    meta = sorted(chunks.map(lambda pr: (pr[0], pr[1].seq, pr[1].rows, pr[1].first, pr[1].last)).collect())
    starts: Dict[Tuple[int, int], int] = {}
    total, previous_last = 0, None
    for part, seq, rows, first, last in meta:
        if previous_last is not None and previous_last == first:
            raise InvalidArgumentError(f"caffegrid.spark: id '{first}' is given to more than one row; ids order the "
                                       "rows and must be unique")
        starts[(part, seq)], total, previous_last = total, total + rows, last
    shipped = df.sparkSession.sparkContext.broadcast(starts)

    def deal(part_row: Any) -> Iterator[Tuple[int, Tuple[str, int, bytes]]]:
        import pyarrow as pa

        part, row = part_row
        start = shipped.value[(part, row.seq)]
        for batch in read_ipc(row.chunk):
            for task in range(size):
                first = (task - start) % size
                if first >= batch.num_rows:
                    continue
                taken = batch.take(pa.array(np.arange(first, batch.num_rows, size)))
                yield task, (dataset, start + first, ipc_bytes(taken))
            start += batch.num_rows
    return chunks.flatMap(deal), total


def gather(items: Iterator[Tuple[int, Tuple[str, int, bytes]]], workdir: str) -> Dict[str, List[str]]:
    """A barrier task's chunks spilled to its workdir as they arrive (memory stays
    bounded): {dataset: chunk files in row order}."""
    files: Dict[str, List[Tuple[int, str]]] = {}
    for _, (dataset, start, chunk) in items:
        if start < 0:  # the placeholder every task gets
            continue
        path = os.path.join(workdir, f"{dataset}-{start:020d}.arrow")
        with open(path, "wb") as f:
            f.write(chunk)
        files.setdefault(dataset, []).append((start, path))
    return {name: [p for _, p in sorted(entries)] for name, entries in files.items()}


def write_records(path: str, chunk_files: Sequence[str], shape: Tuple[int, int, int], fill_to: int = 0) -> int:
    """Writes the chunk files' rows, in order, into a records file at ``path`` (each
    chunk file removed once written); with ``fill_to``, the first rows are written
    again until there are that many (a validation share completed to whole test
    batches, as Caffe's test_iter cycles). Returns the record count."""
    from . import _caffegrid

    writer = _caffegrid.RecordsWriter(path)
    try:
        batches: List[Any] = []
        for name in chunk_files:
            with open(name, "rb") as f:
                for batch in read_ipc(f.read()):
                    write_batch(writer, batch, shape)
                    if fill_to and sum(b.num_rows for b in batches) < fill_to:
                        batches.append(batch)
            os.unlink(name)
        count = writer.count
        if count == 0:
            raise InvalidArgumentError("caffegrid.spark: a task was given no rows; give every task some rows "
                                       "(fewer tasks, or more rows)")
        while fill_to and count < fill_to:
            for batch in batches:
                need = fill_to - count
                if need <= 0:
                    break
                write_batch(writer, batch.slice(0, need), shape)
                count = writer.count
        writer.close()
        return count
    except BaseException:
        del writer  # abandoned: the file is removed
        raise


def write_partition(path: str, batches: Iterator[Any], shape: Tuple[int, int, int]) -> Tuple[int, List[Any]]:
    """A task's Arrow batches, in their order, into a records file; returns the count
    and the id columns (for outputs keyed by the rows' own ids)."""
    from . import _caffegrid

    writer = _caffegrid.RecordsWriter(path)
    ids: List[Any] = []
    for batch in batches:
        write_batch(writer, batch, shape)
        ids.append(batch.column("id"))
    count = writer.count
    writer.close()
    return count, ids
