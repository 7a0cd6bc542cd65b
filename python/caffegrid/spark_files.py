"""Hadoop filesystems for the training tasks, through the driver.

A PySpark task has no JVM of its own to reach ``hdfs://`` or ``s3a://``; the
driver has Spark's, with the cluster's Hadoop configuration (caffegrid.hadoop_fs).
So while a training stage runs, the driver serves files to its tasks over one
TCP connection each (executors always reach the driver): a task fetches weights
and snapshots it resumes from, and rank 0 sends each snapshot set it completes,
which the driver writes through Hadoop's FileSystem (each file to a temporary
name, renamed into place; the ``.cgstate`` last, so a set on the filesystem is
whole when its ``.cgstate`` is there). The driver also counts rank 0's starts:
a second start is a stage Spark retried, which resumes from the newest set.

Messages are one JSON line, then ``size`` bytes of payload. The service answers
only requests that carry its secret (shipped to the tasks inside the task closure,
Spark's own channel) and only for the files the training names: its weights,
the snapshot it resumes from, and the sets under its snapshot prefix.
"""

from __future__ import annotations

import hmac
import json
import os
import re
import secrets
import socket
import sys
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import hadoop_fs

SET_FILES = (".caffemodel", ".solverstate", ".cgstate")  # the .cgstate, written last, completes a set


def is_remote(path: Optional[str]) -> bool:
    """Whether ``path`` is on a Hadoop filesystem other than the local one."""
    return bool(path) and hadoop_fs.scheme_of(path) not in (None, "file")


def _set_iterations(names: List[str], base: str) -> List[int]:
    """Iterations of the complete snapshot sets of prefix basename ``base`` among ``names``, newest first."""
    found: Dict[int, set] = {}
    pattern = re.compile(re.escape(base) + r"_iter_(\d+)(\.caffemodel|\.solverstate|\.cgstate)$")
    for name in names:
        m = pattern.match(name)
        if m:
            found.setdefault(int(m.group(1)), set()).add(m.group(2))
    return sorted((i for i, kinds in found.items() if kinds == set(SET_FILES)), reverse=True)


def serve(host: str, answer: Callable[[socket.socket], None]) -> Tuple[socket.socket, str]:
    """A listener on the driver for a training stage's tasks (executors always
    reach the driver): each connection is answered by ``answer`` in a thread of its
    own until the returned server socket is closed; and its "host:port"."""
    server = socket.create_server(("", 0))

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return  # closed
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return server, f"{host}:{server.getsockname()[1]}"


class DriverFiles:
    """The driver's side: serves get/put/sets/attempt to the tasks of one training
    stage, each connection in a thread of its own, for the files of a training
    with these snapshot prefix, snapshot to resume from and weights."""

    def __init__(self, spark: Any, host: str, prefix: Optional[str], resume: Optional[str],
                 weights: Optional[str]) -> None:
        self.spark = spark
        self.secret = secrets.token_hex(16)
        self.readable = [w for w in (weights or "").split(",") if w]
        if resume and resume != "auto":
            self.readable.append(resume.rsplit(".", 1)[0] + ".")  # the .solverstate's set
        self.writable = [prefix + "_"] if prefix else []
        self.attempts = 0
        self.lock = threading.Lock()
        self.server, address = serve(host, self._answer)
        self.address = f"{self.secret}@{address}"

    def _answer(self, conn: socket.socket) -> None:
        from ._errors import Error

        with conn, conn.makefile("rb") as stream:
            for line in stream:
                request = json.loads(line)
                data = stream.read(request.get("size", 0))
                try:
                    reply, payload = self._do(request, data)
                except Error as e:
                    reply, payload = {"error": str(e), "type": type(e).__name__}, b""
                except Exception as e:  # noqa: BLE001 - a Py4J or socket failure, said to the task
                    reply, payload = {"error": f"{request.get('path')}: {e}", "type": "IOError"}, b""
                try:
                    conn.sendall(json.dumps(dict(reply, size=len(payload))).encode() + b"\n" + payload)
                except OSError:
                    return  # the task is gone (killed, or its stage failed)

    def _allowed(self, op: str, path: str) -> bool:
        if op in ("attempt", "sets"):
            return op == "attempt" or path + "_" in self.writable
        names = self.writable + (self.readable if op == "get" else [])
        return "/../" not in path and any(path == n or (n[-1] in "._" and path.startswith(n)) for n in names)

    def _do(self, request: Dict[str, Any], data: bytes) -> Tuple[Dict[str, Any], bytes]:
        op, path, what = request["op"], request.get("path", ""), request.get("what", "file")
        if not hmac.compare_digest(str(request.get("secret", "")), self.secret) or not self._allowed(op, path):
            raise PermissionError(f"'{op} {path}' is not a file of this training")
        if op == "attempt":
            with self.lock:
                self.attempts += 1
                return {"attempt": self.attempts - 1}, b""
        if op == "get":
            return {}, hadoop_fs.read_bytes(self.spark, path, what)
        if op == "put":
            hadoop_fs.write_bytes(self.spark, path, data, what)
            if path.endswith(".cgstate"):
                print(f"caffegrid: snapshot {path[:-len('.cgstate')]}.* written", file=sys.stderr, flush=True)
            return {}, b""
        if op == "sets":
            folder, _, base = path.rpartition("/")
            names = hadoop_fs.list_names(self.spark, folder, what)
            return {"iterations": _set_iterations(names, base)}, b""
        raise ValueError(f"unknown request '{op}'")

    def close(self) -> None:
        self.server.close()


class TaskFiles:
    """A task's side: the driver's files, by their Hadoop URIs. It connects when
    first asked, so tasks that need nothing of the driver never depend on it."""

    def __init__(self, address: str, timeout: float = 600.0) -> None:
        self.secret, _, self.address = address.partition("@")
        self.timeout = timeout
        self.conn: Optional[socket.socket] = None
        self.lock = threading.Lock()

    def _connect(self) -> None:
        from . import _errors

        host, _, port = self.address.rpartition(":")
        try:
            self.conn = socket.create_connection((host, int(port)), timeout=self.timeout)
        except OSError as e:
            raise _errors.CommError(f"caffegrid.spark: this task cannot reach the driver's file service at "
                                    f"{self.address} ({e.strerror or e}); the driver serves snapshots and weights on "
                                    "Hadoop filesystems and tells a retried stage to resume: set spark.driver.host to "
                                    "an address the executors reach") from None
        self.stream = self.conn.makefile("rb")

    def _call(self, op: str, path: str = "", what: str = "file", data: bytes = b"") -> Tuple[Dict[str, Any], bytes]:
        from . import _errors

        with self.lock:
            if self.conn is None:
                self._connect()
            header = json.dumps({"op": op, "path": path, "what": what, "size": len(data),
                                 "secret": self.secret}).encode() + b"\n"
            self.conn.sendall(header + data)
            line = self.stream.readline()
            if not line:
                raise _errors.CommError(f"the Spark driver closed its file service while asked for '{path}'")
            reply = json.loads(line)
            payload = self.stream.read(reply["size"])
        if "error" in reply:
            cls = getattr(_errors, reply["type"], None)
            if not (isinstance(cls, type) and issubclass(cls, _errors.Error)):
                cls = _errors.IOError
            raise cls(reply["error"])
        return reply, payload

    def attempt(self) -> int:
        """0 on the stage's first attempt, 1 on its first retry, ..."""
        return self._call("attempt")[0]["attempt"]

    def get(self, uri: str, what: str) -> bytes:
        return self._call("get", uri, what)[1]

    def fetch(self, uri: str, local: str, what: str) -> str:
        """``uri`` copied to the local path ``local``; returns ``local``."""
        data = self.get(uri, what)
        with open(local, "wb") as f:
            f.write(data)
        return local

    def put(self, uri: str, data: bytes, what: str) -> None:
        self._call("put", uri, what, data)

    def set_iterations(self, prefix: str) -> List[int]:
        """Iterations of the complete snapshot sets under ``prefix``, newest first."""
        return self._call("sets", prefix, "snapshot_prefix")[0]["iterations"]

    def close(self) -> None:
        if self.conn is not None:
            self.stream.close()
            self.conn.close()


class SnapshotCopier:
    """In rank 0's task: each snapshot set the solver completes under the local
    ``local_prefix`` is sent to ``remote_prefix`` as soon as its ``.cgstate`` is
    there (a thread, so training goes on meanwhile), with the complete lines of
    the metrics file; older local sets are then removed. ``finish`` sends the
    last ones and says what could not be sent."""

    def __init__(self, files: TaskFiles, local_prefix: str, remote_prefix: str, interval_s: float = 0.2) -> None:
        self.files, self.local, self.remote = files, local_prefix, remote_prefix
        folder, base = os.path.split(local_prefix)
        self.sent = set(_set_iterations(os.listdir(folder), base))  # the set resumed from is there already
        self.error: Optional[str] = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(interval_s,), daemon=True)
        self.thread.start()

    def _run(self, interval_s: float) -> None:
        while not self.stop.wait(interval_s):
            self._send_new()

    def _send_new(self) -> None:
        folder, base = os.path.split(self.local)
        for iteration in sorted(set(_set_iterations(os.listdir(folder), base)) - self.sent):
            if self.error:
                return
            try:
                for ext in SET_FILES:
                    with open(f"{self.local}_iter_{iteration}{ext}", "rb") as f:
                        self.files.put(f"{self.remote}_iter_{iteration}{ext}", f.read(), "snapshot_prefix")
                self._send_metrics()
            except Exception as e:  # noqa: BLE001 - said by finish; training goes on
                self.error = f"snapshot of iteration {iteration} not written to '{self.remote}_iter_{iteration}.*': {e}"
                return
            self.sent.add(iteration)
            for old in self.sent - {iteration}:
                for ext in SET_FILES:
                    with_ext = f"{self.local}_iter_{old}{ext}"
                    if os.path.exists(with_ext):
                        os.unlink(with_ext)

    def _send_metrics(self) -> None:
        path = self.local + "_metrics.jsonl"
        if os.path.exists(path):
            with open(path, "rb") as f:
                text = f.read()
            self.files.put(self.remote + "_metrics.jsonl", text[:text.rfind(b"\n") + 1], "snapshot_prefix")

    def finish(self) -> Optional[str]:
        """Stops the thread and sends what is left; the first failure, or None."""
        self.stop.set()
        self.thread.join()
        self._send_new()
        return self.error


def task_path_rewrites(prefix: Optional[str], resume: Optional[str],
                       weights: Optional[str]) -> List[Tuple[Any, str]]:
    """(pattern, URI folder) pairs that turn the local paths of a training task's
    copies of Hadoop files (TaskSnapshots) back into the URIs in its log lines."""
    task = r"\S*/caffegrid-rank\d+-[^/\s]+/"
    rewrites = []
    if is_remote(prefix):
        rewrites.append((re.compile(task + "snapshots/"), prefix.rsplit("/", 1)[0] + "/"))
    for uri in [resume or ""] + (weights or "").split(","):
        if is_remote(uri):
            folder, _, name = uri.rpartition("/")
            stem = name.rsplit(".", 1)[0]  # a .solverstate's .caffemodel and .cgstate come along
            rewrites.append((re.compile(task + r"fetched\d+/(?=" + re.escape(stem) + r"\.)"), folder + "/"))
    return rewrites


class TaskSnapshots:
    """Where a training task's solver writes and finds snapshots and weights: the
    plan's prefix itself when it is local (a folder every executor mounts), else a
    local folder whose sets rank 0 sends to the Hadoop prefix through the driver
    (SnapshotCopier) and a retried rank 0 fetches back. Files fetched for the
    task are named by their URIs in its messages (``names``)."""

    def __init__(self, prefix: Optional[str], address: str, workdir: str, names: Dict[str, str]) -> None:
        self.files = TaskFiles(address)
        self.workdir, self.names = workdir, names
        self.remote = prefix if is_remote(prefix) else None
        self.local = prefix
        if self.remote:
            self.local = os.path.join(workdir, "snapshots", self.remote.rsplit("/", 1)[-1])
            os.makedirs(os.path.dirname(self.local))
            names[self.local] = self.remote
        self.copier: Optional[SnapshotCopier] = None
        self.fetched = 0

    def _local_copy(self, uri: str, what: str) -> str:
        """``uri`` fetched into the task's folder (a folder of its own per file, so
        a set's files keep the names that find each other)."""
        self.fetched += 1
        folder = os.path.join(self.workdir, f"fetched{self.fetched}")
        os.makedirs(folder, exist_ok=True)
        local = os.path.join(folder, uri.rsplit("/", 1)[-1])
        self.names[local] = uri
        return self.files.fetch(uri, local, what)

    def weights(self, weights: Optional[str]) -> Optional[str]:
        """Comma-separated .caffemodel paths with those on Hadoop filesystems fetched."""
        if not weights:
            return weights
        return ",".join(self._local_copy(w, "weights") if is_remote(w) else hadoop_fs.local_form(w)
                        for w in weights.split(","))

    def retried(self) -> bool:
        """Whether this stage is a retry (rank 0 asks the driver, which counts its starts)."""
        return self.files.attempt() > 0

    def newest(self, solver: Any) -> Optional[str]:
        """The newest snapshot set that passes the library's checks: under a local
        prefix as the solver finds it; on a Hadoop prefix fetched set by set, newest
        first, until one passes (the metrics file comes along)."""
        if not self.remote:
            return solver.latest_snapshot()
        iterations = self.files.set_iterations(self.remote)
        if iterations:
            try:
                self.files.fetch(self.remote + "_metrics.jsonl", self.local + "_metrics.jsonl", "snapshot")
            except Exception:  # noqa: BLE001 - a run without a metrics file resumes without one
                pass
        for iteration in iterations:
            stem, local = f"{self.remote}_iter_{iteration}", f"{self.local}_iter_{iteration}"
            for ext in SET_FILES:
                self.files.fetch(stem + ext, local + ext, "snapshot")
            choice = solver.latest_snapshot()
            if choice:
                return choice
            for ext in SET_FILES:
                os.unlink(local + ext)
        return None

    def named(self, snapshot: str) -> str:
        """A .solverstate named by the user, fetched with its set when on a Hadoop filesystem."""
        if not is_remote(snapshot):
            return hadoop_fs.local_form(snapshot)
        state = self._local_copy(snapshot, "snapshot")
        stem = snapshot[:-len(".solverstate")] if snapshot.endswith(".solverstate") else snapshot
        local_stem = state[:-len(".solverstate")] if state.endswith(".solverstate") else state
        self.files.fetch(stem + ".caffemodel", local_stem + ".caffemodel", "snapshot")
        try:  # a set of caffegrid's (Caffe's own snapshots have none)
            self.files.fetch(stem + ".cgstate", local_stem + ".cgstate", "snapshot")
        except Exception:  # noqa: BLE001
            pass
        return state

    def user_name(self, path: Optional[str]) -> Optional[str]:
        """A local path of this task's as the user names it (a Hadoop URI for fetched files)."""
        if path is None:
            return None
        for local, uri in self.names.items():
            if path.startswith(local):
                return uri + path[len(local):]
        return path

    def start_copying(self) -> None:
        """Rank 0: sets completed from now on go to the Hadoop prefix."""
        if self.remote:
            self.copier = SnapshotCopier(self.files, self.local, self.remote)

    def finish(self) -> Optional[str]:
        """Sends the last sets; what could not be sent, or None."""
        return self.copier.finish() if self.copier else None

    def close(self) -> None:
        if self.copier:
            self.copier.stop.set()
        self.files.close()
