# The driver's file service for training tasks (caffegrid.spark_files) over a real
# TCP connection, on local paths (the Hadoop route itself is tested in
# test_spark.py under cgtest://): its secret, what it reads and writes, the
# count of rank 0's starts, and the copier that sends finished snapshot sets.
import pytest

import caffegrid
from caffegrid import spark_files


@pytest.fixture
def service(tmp_path):
    (tmp_path / "w.caffemodel").write_bytes(b"weights")
    (tmp_path / "secret.txt").write_text("not for tasks")
    (tmp_path / "snaps").mkdir()
    files = spark_files.DriverFiles(None, "127.0.0.1", str(tmp_path / "snaps" / "s"), None,
                                    str(tmp_path / "w.caffemodel"))
    yield files
    files.close()


def test_serves_only_the_trainings_files_to_holders_of_its_secret(tmp_path, service):
    task = spark_files.TaskFiles(service.address)
    assert [task.attempt(), task.attempt()] == [0, 1]
    assert task.get(str(tmp_path / "w.caffemodel"), "weights") == b"weights"
    with pytest.raises(caffegrid.IOError, match="is not a file of this training"):
        task.get(str(tmp_path / "secret.txt"), "weights")
    with pytest.raises(caffegrid.IOError, match="is not a file of this training"):
        task.put(str(tmp_path / "w.caffemodel"), b"overwritten", "snapshot_prefix")
    with pytest.raises(caffegrid.IOError, match="is not a file of this training"):
        task.put(str(tmp_path / "snaps" / "s_iter_1/../../secret.txt"), b"x", "snapshot_prefix")
    prefix = str(tmp_path / "snaps" / "s")
    for ext in (".caffemodel", ".solverstate"):
        task.put(f"{prefix}_iter_5{ext}", ext.encode(), "snapshot_prefix")
    assert task.set_iterations(prefix) == []  # no .cgstate yet: not a whole set
    task.put(f"{prefix}_iter_5.cgstate", b"state", "snapshot_prefix")
    assert task.set_iterations(prefix) == [5]
    assert (tmp_path / "w.caffemodel").read_bytes() == b"weights"
    assert (tmp_path / "secret.txt").read_text() == "not for tasks"
    task.close()
    stranger = spark_files.TaskFiles("0" * 32 + "@" + service.address.partition("@")[2])
    with pytest.raises(caffegrid.IOError, match="is not a file of this training"):
        stranger.attempt()
    stranger.close()


def test_copier_sends_whole_sets_and_complete_metrics_lines(tmp_path, service):
    local = tmp_path / "task"
    local.mkdir()
    for ext in (".caffemodel", ".solverstate", ".cgstate"):  # the set resumed from, there before: not sent back
        (local / f"s_iter_5{ext}").write_bytes(b"fetched")
    task = spark_files.TaskFiles(service.address)
    copier = spark_files.SnapshotCopier(task, str(local / "s"), str(tmp_path / "snaps" / "s"), interval_s=60)
    for iteration in (10, 20):
        for ext in (".caffemodel", ".solverstate", ".cgstate"):
            (local / f"s_iter_{iteration}{ext}").write_bytes(f"{iteration}{ext}".encode())
    (local / "s_iter_30.caffemodel").write_bytes(b"being written")  # no .cgstate: not sent
    (local / "s_metrics.jsonl").write_text('{"iter": 10}\n{"iter": 20}\n{"it')
    assert copier.finish() is None
    sent = sorted(p.name for p in (tmp_path / "snaps").iterdir())
    assert sent == sorted([f"s_iter_{i}{ext}" for i in (10, 20) for ext in (".caffemodel", ".solverstate", ".cgstate")]
                          + ["s_metrics.jsonl"])
    assert (tmp_path / "snaps" / "s_iter_20.cgstate").read_bytes() == b"20.cgstate"
    assert (tmp_path / "snaps" / "s_metrics.jsonl").read_text() == '{"iter": 10}\n{"iter": 20}\n'
    assert not (local / "s_iter_10.caffemodel").exists() and (local / "s_iter_20.caffemodel").exists()
    task.close()


def test_an_unreachable_driver_is_named_when_first_needed():
    task = spark_files.TaskFiles("secret@127.0.0.1:1")  # nothing listens on port 1: no connection yet
    with pytest.raises(caffegrid.CommError, match=r"cannot reach the driver's file service at 127\.0\.0\.1:1 .*"
                       r"set spark\.driver\.host"):
        task.attempt()
    task.close()


def test_the_driver_takes_the_prefix_lock_as_a_training_run_does(tmp_path):
    """The Spark driver's lock on a local snapshot prefix is the library's own
    (PREFIX.lock, as `caffegrid train` takes it): another process holding it is
    named by pid, and the lock is free again when the driver's run ends."""
    import subprocess
    import sys

    from caffegrid import spark as cgspark

    prefix = tmp_path / "snaps" / "lenet"
    prefix.parent.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from caffegrid import _caffegrid; "
                               f"_caffegrid.prefix_lock({str(prefix)!r}, 'other.prototxt'); print('held', flush=True); "
                               "sys.stdin.read()"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        with pytest.raises(caffegrid.InvalidArgumentError,
                           match=rf"s.prototxt: snapshot_prefix '{prefix}' is in use by another training run \(pid "
                                 rf"{holder.pid} holds"):
            with cgspark._prefix_lock(None, str(prefix), "s.prototxt"):
                pass
    finally:
        holder.stdin.close()
        holder.wait(10)
    with cgspark._prefix_lock(None, str(prefix), "s.prototxt"):
        assert (tmp_path / "snaps" / "lenet.lock").exists()
