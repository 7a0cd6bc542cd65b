"""Path sources on Hadoop filesystems (``hdfs://``, ``s3a://`` ...) for the Spark
helpers: an LMDB, a SequenceFile or a folder of them, an HDF5 file or list, or an
image list, read by the executors through Spark's own Hadoop input
(``binaryFiles``, with the cluster's Hadoop configuration) and turned into a
DataFrame with CaffeOnSpark's ImageDataFrame columns, which then trains, tests
and gives features as any DataFrame does.

Each file of the source reaches one task whole: the task writes it to its local
disk and reads its records with the C library's source (caffegrid.SourceReader),
so the records are what the same file gives locally. An image list's images
travel encoded; the C pipeline decodes them. Relative image paths (and HDF5 file
names) in a list on a Hadoop filesystem are taken from the list's folder. One
file is read into a task's memory at once, so a single file of the source must
stay under 2 GB (Java's array limit): split SequenceFiles into parts.

The kind is found as the C library finds it locally, from the first MiB of the
source's files copied to the driver (data.mdb in a folder: an LMDB).
"""

from __future__ import annotations

import os
import tempfile
from typing import Any, Dict, Iterator, List, Tuple

from . import _caffegrid, hadoop_fs, spark_data
from ._errors import InvalidArgumentError

PROBE_BYTES = 1 << 20


def _status(spark: Any, uri: str, what: str) -> Tuple[Any, Any, Any]:
    fs, p = hadoop_fs.existing(spark, uri, what)
    return fs, p, fs.getFileStatus(p)


def _visible_files(fs: Any, p: Any) -> List[Any]:
    """A folder's files, without Hadoop's hidden and marker files (.name, _SUCCESS)."""
    return sorted((s for s in fs.listStatus(p) if s.isFile() and s.getPath().getName()[0] not in "._"),
                  key=lambda s: s.getPath().getName())


def _head(spark: Any, fs: Any, status: Any) -> bytes:
    """The first MiB of a file (or all of a shorter one)."""
    stream = fs.open(status.getPath())
    try:
        return bytes(spark.sparkContext._jvm.org.apache.commons.io.IOUtils.toByteArray(
            stream, min(int(status.getLen()), PROBE_BYTES)))
    finally:
        stream.close()


def _probe(spark: Any, fs: Any, status: Any, folder: str) -> str:
    """The first MiB of a file copied to ``folder`` under its name; the copy's path."""
    local = os.path.join(folder, status.getPath().getName())
    with open(local, "wb") as f:
        f.write(_head(spark, fs, status))
    return local


def kind_of(spark: Any, uri: str, what: str = "source") -> str:
    """The source type of a Hadoop URI ("lmdb", "seqfile", "hdf5", "image_list"), as the C library tells it."""
    fs, p, status = _status(spark, uri, what)
    with tempfile.TemporaryDirectory(prefix="caffegrid-probe-") as folder:
        if status.isDirectory():
            if fs.exists(spark.sparkContext._jvm.org.apache.hadoop.fs.Path(p, "data.mdb")):
                return "lmdb"
            for entry in _visible_files(fs, p)[:8]:
                _probe(spark, fs, entry, folder)
            local = folder
        else:
            local = _probe(spark, fs, status, folder)
        kind = _caffegrid.data_source_type(local)
    if kind is None:
        raise InvalidArgumentError(f"{what} '{uri}' is none of the sources caffegrid reads (an LMDB, SequenceFiles, "
                                   "HDF5 or an image list)")
    return kind


def _beside(list_uri: str, name: str) -> str:
    """A name written in a list file on a Hadoop filesystem: a URI or absolute path as it is, else in the list's folder."""
    if hadoop_fs.scheme_of(name):
        return name
    folder = list_uri.rsplit("/", 1)[0]
    if name.startswith("/"):
        scheme, _, rest = folder.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0]}{name}"
    return f"{folder}/{name}"


def _list_entries(spark: Any, uri: str) -> List[Tuple[str, str, float]]:
    """An image list's lines as (id, image URI, label): the label is the last word
    (paths may hold spaces, as Caffe reads them); the id is the path as written."""
    entries, seen = [], set()
    for number, line in enumerate(hadoop_fs.read_text(spark, uri, "image list").splitlines(), 1):
        if not line.strip():
            continue
        path, _, label = line.strip().rpartition(" ")
        try:
            value = float(int(label))
        except ValueError:
            raise InvalidArgumentError(f"image list '{uri}' line {number}: expected 'path label' with an integer "
                                       f"label, got '{line.strip()}'") from None
        sample_id = path if path not in seen else f"{path}@{number}"
        seen.add(path)
        entries.append((sample_id, _beside(uri, path.strip()), value))
    return entries


def _qualified(spark: Any, uri: str, what: str) -> str:
    """An existing file's URI as Spark's binaryFiles names it (the filesystem's qualified form)."""
    fs, p = hadoop_fs.existing(spark, uri, what)
    return str(fs.makeQualified(p).toString())


def _image_list_frame(spark: Any, uri: str) -> Any:
    from pyspark.sql.types import BinaryType, BooleanType, DoubleType, StringType, StructField, StructType

    by_file: Dict[str, List[Tuple[str, float]]] = {}
    for sample_id, image, label in _list_entries(spark, uri):
        by_file.setdefault(_qualified(spark, image, f"image of list '{uri}'"), []).append((sample_id, label))
    if not by_file:
        raise InvalidArgumentError(f"image list '{uri}' names no images")
    rows = spark.sparkContext.binaryFiles(",".join(by_file), minPartitions=spark.sparkContext.defaultParallelism)
    labels = spark.sparkContext.broadcast(by_file)
    schema = StructType([StructField("id", StringType()), StructField("label", DoubleType()),
                         StructField("data", BinaryType()), StructField("encoded", BooleanType())])
    return spark.createDataFrame(
        rows.flatMap(lambda item: [(i, lab, item[1], True) for i, lab in labels.value[item[0]]]), schema)


def _record_files(spark: Any, kind: str, uri: str) -> List[str]:
    """The files of a source that each read alone as a source of ``kind``."""
    fs, p, status = _status(spark, uri, "source")
    if kind == "lmdb":
        return [uri.rstrip("/") + "/data.mdb"] if status.isDirectory() else [uri]
    if status.isDirectory():
        return [str(s.getPath().toString()) for s in _visible_files(fs, p)]
    if kind == "hdf5" and not _head(spark, fs, status).startswith(b"\x89HDF"):
        # an HDF5 list names its files (only its head is read to tell: an HDF5 file may be GBs)
        return [_beside(uri, word) for word in hadoop_fs.read_text(spark, uri, "source").split()]
    return [uri]


def _records_frame(spark: Any, kind: str, uri: str, color: int, size: Tuple[int, int]) -> Any:
    from pyspark.sql.types import BinaryType, DoubleType, IntegerType, StringType, StructField, StructType

    files = [_qualified(spark, f, f"file of source '{uri}'") for f in _record_files(spark, kind, uri)]

    def read(item: Tuple[str, bytes]) -> Iterator[tuple]:
        from . import _caffegrid as ext

        name, data = item
        folder = spark_data.task_workdir("caffegrid-source-")
        try:
            local = os.path.join(folder, "data.mdb" if kind == "lmdb" else name.rsplit("/", 1)[-1])
            with open(local, "wb") as f:
                f.write(data)
            del data
            with spark_data.user_terms(folder, {local: name, folder: name.rsplit("/", 1)[0]}):
                reader = ext.SourceReader(kind, folder if kind == "lmdb" else local)
                for i in range(reader.count):
                    (sample_id, label), (c, h, w, pixels, _) = reader.read(i, color, *size)
                    yield sample_id.replace(local, name), 0.0 if label is None else label, pixels, c, h, w
        finally:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)

    schema = StructType([StructField("id", StringType()), StructField("label", DoubleType()),
                         StructField("data", BinaryType())] +
                        [StructField(n, IntegerType()) for n in ("channels", "height", "width")])
    rows = spark.sparkContext.binaryFiles(",".join(files), minPartitions=len(files)).flatMap(read)
    return spark.createDataFrame(rows, schema)


def remote_frame(spark: Any, kind: str, uri: str, shape: Tuple[int, int, int], resize: bool) -> Any:
    """The records of the source ``uri`` (of ``kind``, or None: found) as an
    ImageDataFrame, images read in the channels of ``shape`` (resized to its
    height x width with ``resize``)."""
    hadoop_fs.require(spark, uri, "source")
    kind = kind or kind_of(spark, uri)
    if kind == "image_list":
        return _image_list_frame(spark, uri)
    color = {1: 2, 3: 1}.get(shape[0], 0)
    return _records_frame(spark, kind, uri, color, shape[1:] if resize else (0, 0))
