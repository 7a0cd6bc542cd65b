"""Hadoop filesystems on the Spark driver: a path with a scheme (``hdfs://``,
``s3a://``, ``file://`` ...) is read and written through Spark's own JVM,
``org.apache.hadoop.fs.FileSystem`` with the application's Hadoop configuration
(its core-site.xml and hdfs-site.xml, HA name services, Kerberos login), as Spark
itself reaches them. Plain paths are local files. A scheme no filesystem handles
is refused by name before any work (``check``). Writes are atomic: a temporary
file beside the target, renamed into place when complete.
"""

from __future__ import annotations

import os
import re
import tempfile
import uuid
from typing import Any, List, Optional, Tuple

from ._errors import InvalidArgumentError
from ._errors import IOError as CgIOError

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")


def scheme_of(path: str) -> Optional[str]:
    """The URI scheme of ``path`` ("hdfs", "file" ...), or None for a plain path."""
    m = _SCHEME.match(path)
    return m.group(1).lower() if m and (path[m.end():].startswith("//") or m.group(1) == "file") else None


def local_form(path: str) -> str:
    """A file: URI as the plain local path it names ("file:///a" and "file:/a" -> "/a");
    any other path as it is."""
    return re.sub(r"^file:(//)?", "", path)


def _jvm_path(spark: Any, path: str, what: str) -> Any:
    """(FileSystem, Path) of ``path``; the scheme's refusal names it."""
    jvm = spark.sparkContext._jvm
    p = jvm.org.apache.hadoop.fs.Path(path)
    try:
        return p.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), p
    except Exception as e:  # Py4JJavaError: UnsupportedFileSystemException and the like
        java = re.search(r"(?m)^[:\s]*(?:[\w$]+\.)+([\w$]+(?:Exception|Error)): (.+)$", str(e))
        reason = (f"{java.group(2)} ({java.group(1)})" if java else
                  str(e).splitlines()[0] if str(e) else type(e).__name__)
        found = re.search(r"No FileSystem for scheme \"?([^\"\s]+)", str(e))
        if found:
            raise InvalidArgumentError(f"{what} '{path}': no Hadoop filesystem handles the scheme '{found.group(1)}' "
                                       f"in this Spark application (no fs.{found.group(1)}.impl in its Hadoop "
                                       "configuration)") from None
        raise CgIOError(f"{what} '{path}': {reason}") from None


def check(spark: Any, path: Optional[str], what: str) -> None:
    """Refuses ``path`` now when its scheme has no Hadoop filesystem (plain paths pass)."""
    if path and scheme_of(path):
        _jvm_path(spark, path, what)


def existing(spark: Any, path: str, what: str) -> Tuple[Any, Any]:
    """(FileSystem, Path) of a URI that names something; else the refusal says it does not exist."""
    fs, p = _jvm_path(spark, path, what)
    if not fs.exists(p):
        raise CgIOError(f"{what} '{path}' does not exist")
    return fs, p


def read_bytes(spark: Any, path: str, what: str) -> bytes:
    if not scheme_of(path):
        with open(path, "rb") as f:
            return f.read()
    fs, p = existing(spark, path, what)
    # the JVM copies to a local file and Python reads that: bytes through Py4J are
    # base64 text, many times slower for a snapshot of hundreds of MB
    with tempfile.TemporaryDirectory(prefix="caffegrid-hadoop-") as folder:
        local = os.path.join(folder, "copy")
        fs.copyToLocalFile(False, p, spark.sparkContext._jvm.org.apache.hadoop.fs.Path(local), True)
        with open(local, "rb") as f:
            return f.read()


def read_text(spark: Any, path: str, what: str) -> str:
    return read_bytes(spark, path, what).decode("utf-8")


def write_bytes(spark: Any, path: str, data: bytes, what: str) -> None:
    """``data`` into ``path``, whole or not at all (a temporary beside it, renamed)."""
    if not scheme_of(path):
        folder = os.path.dirname(os.path.abspath(path))
        fd, temporary = tempfile.mkstemp(prefix=os.path.basename(path) + ".", suffix=".tmp", dir=folder)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(temporary, path)
        return
    fs, p = _jvm_path(spark, path, what)
    jvm = spark.sparkContext._jvm
    temporary = jvm.org.apache.hadoop.fs.Path(p.getParent(), f".{p.getName()}.{uuid.uuid4().hex}.tmp")
    with tempfile.TemporaryDirectory(prefix="caffegrid-hadoop-") as folder:  # the JVM reads it (see read_bytes)
        local = os.path.join(folder, "data")
        with open(local, "wb") as f:
            f.write(data)
        fs.copyFromLocalFile(True, True, jvm.org.apache.hadoop.fs.Path(local), temporary)
    if fs.exists(p):
        fs.delete(p, False)
    if not fs.rename(temporary, p):
        fs.delete(temporary, False)
        raise CgIOError(f"{what} '{path}': the Hadoop filesystem refused to rename the written file into place")


def write_text(spark: Any, path: str, text: str, what: str) -> None:
    write_bytes(spark, path, text.encode("utf-8"), what)


def list_names(spark: Any, folder: str, what: str) -> List[str]:
    """The names of the entries of ``folder`` (none when it does not exist)."""
    if not scheme_of(folder):
        return os.listdir(folder) if os.path.isdir(folder) else []
    fs, p = _jvm_path(spark, folder, what)
    if not fs.exists(p):
        return []
    return [status.getPath().getName() for status in fs.listStatus(p)]


def create_new(spark: Any, path: str, text: str, what: str) -> bool:
    """Creates ``path`` holding ``text`` unless it exists (Hadoop's create without
    overwrite, atomic on HDFS); whether it was created."""
    fs, p = _jvm_path(spark, path, what)
    try:
        out = fs.create(p, False)
    except Exception as e:  # Py4JJavaError around FileAlreadyExistsException
        if "FileAlreadyExists" in str(e) or fs.exists(p):
            return False
        raise CgIOError(f"{what} '{path}': {str(e).splitlines()[0]}") from None
    try:
        out.write(bytearray(text.encode("utf-8")))
    finally:
        out.close()
    return True


def delete(spark: Any, path: str, what: str) -> None:
    fs, p = _jvm_path(spark, path, what)
    fs.delete(p, False)


def require(spark: Any, path: Optional[str], what: str) -> None:
    """Refuses a Hadoop URI that names nothing (plain paths are left to whoever reads them)."""
    if path and scheme_of(path):
        existing(spark, path, what)
