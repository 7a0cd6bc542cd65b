# Training from Python is training by the CLI: 200 iterations of LeNet with the
# same solver and seed give byte-identical .caffemodel and .solverstate files;
# step() in pieces and snapshot/restore resume exactly.
import subprocess

import numpy as np

import caffegrid
from conftest import EXAMPLE_NET, write_solver


def training_dir(path, db):
    """A working directory with the example LeNet reading MNIST t10k for both phases."""
    path.mkdir()
    (path / "fashion_mnist_train_lmdb").symlink_to(db)
    (path / "fashion_mnist_test_lmdb").symlink_to(db)
    (path / "snapshots").mkdir()
    write_solver(path / "solver.prototxt", str(EXAMPLE_NET), max_iter=200, test_interval=100, test_iter=5,
                 display=50)
    return path


def test_python_training_is_bit_identical_to_cli(tmp_path, monkeypatch, cli, mnist_test_lmdb):
    by_cli = training_dir(tmp_path / "cli", mnist_test_lmdb)
    subprocess.run([cli, "train", "-solver", "solver.prototxt"], cwd=by_cli, check=True, capture_output=True)
    want = (by_cli / "snapshots" / "lenet_iter_200.caffemodel").read_bytes()

    solved = training_dir(tmp_path / "solve", mnist_test_lmdb)
    monkeypatch.chdir(solved)
    solver = caffegrid.Solver("solver.prototxt")
    solver.solve()
    assert solver.iter == 200
    assert (solved / "snapshots" / "lenet_iter_200.caffemodel").read_bytes() == want
    assert (solved / "snapshots" / "lenet_iter_200.solverstate").read_bytes() == \
        (by_cli / "snapshots" / "lenet_iter_200.solverstate").read_bytes()

    solver.net.save("saved.caffemodel")  # what the snapshot wrote, through Net.save
    assert (solved / "saved.caffemodel").read_bytes() == want


def test_snapshot_and_restore_resume_exactly(tmp_path, monkeypatch, mnist_test_lmdb):
    work = training_dir(tmp_path / "resume", mnist_test_lmdb)
    monkeypatch.chdir(work)
    first = caffegrid.Solver("solver.prototxt")
    first.step(30)
    first.snapshot()
    assert (work / "snapshots" / "lenet_iter_30.caffemodel").exists()
    second = caffegrid.Solver("solver.prototxt")
    second.restore("snapshots/lenet_iter_30.solverstate")
    assert second.iter == 30
    for name, blobs in first.net.params.items():
        for a, b in zip(blobs, second.net.params[name]):
            assert np.array_equal(a.data, b.data)
    first.step(20)
    second.step(20)
    straight = caffegrid.Solver("solver.prototxt")
    straight.step(50)  # in one piece
    for name, blobs in first.net.params.items():
        for a, b, c in zip(blobs, second.net.params[name], straight.net.params[name]):
            assert np.array_equal(a.data, b.data) and np.array_equal(a.data, c.data)


def test_test_nets_and_scores(tmp_path, monkeypatch, mnist_test_lmdb):
    work = training_dir(tmp_path / "scores", mnist_test_lmdb)
    monkeypatch.chdir(work)
    solver = caffegrid.Solver("solver.prototxt")
    assert len(solver.test_nets) == 1 and solver.test_nets[0].phase == caffegrid.TEST
    assert solver.net.phase == caffegrid.TRAIN and solver.net.outputs == ["loss"]
    solver.step(60)
    (scores,) = solver.test()
    assert set(scores) == {"accuracy", "loss"} and 0.5 < scores["accuracy"] <= 1.0
    assert solver.iter == 60


def test_divergence_raises_nonfinite_error(tmp_path, monkeypatch, mnist_test_lmdb):
    """base_lr 1e6: step() stops at the iteration the gradients went non-finite, raising
    caffegrid.NonFiniteError (an ArithmeticError) that names the user's solver and a layer."""
    work = training_dir(tmp_path / "nan", mnist_test_lmdb)
    write_solver(work / "solver.prototxt", str(EXAMPLE_NET), max_iter=50, base_lr=1000000, test_interval=1000,
                 test_iter=5, display=10)
    monkeypatch.chdir(work)
    solver = caffegrid.Solver("solver.prototxt")
    try:
        solver.step(50)
        raised = None
    except caffegrid.NonFiniteError as e:
        raised = e
    assert raised is not None and isinstance(raised, ArithmeticError)
    assert "solver.prototxt: iteration" in str(raised) and "went non-finite" in str(raised) and "layer '" in str(raised)
    assert solver.iter < 10


CTRL_C_SCRIPT = """
import signal, sys, time
import caffegrid
signal.signal(signal.SIGINT, signal.default_int_handler)  # a child of a non-interactive shell may ignore SIGINT
solver = caffegrid.Solver("solver.prototxt")
print("ready", flush=True)
try:
    solver.step(10000000)
except KeyboardInterrupt:
    print(f"interrupted {time.time():.6f} {solver.iter}", flush=True)
    sys.exit(3)
"""


def test_ctrl_c_interrupts_a_long_step(tmp_path, mnist_test_lmdb):
    """Ctrl-C during solver.step(10000000) raises KeyboardInterrupt at the next iteration
    boundary (the C loop runs Python's signal handlers between iterations)."""
    import os
    import signal
    import sys
    import time

    work = training_dir(tmp_path / "ctrlc", mnist_test_lmdb)
    write_solver(work / "solver.prototxt", str(EXAMPLE_NET), max_iter=10000000, test_interval=100000000, test_iter=5,
                 display=0)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    log = open(tmp_path / "ctrlc.log", "w+")
    child = subprocess.Popen([sys.executable, "-c", CTRL_C_SCRIPT], cwd=work, env=env, stdout=subprocess.PIPE,
                             stderr=log, text=True)
    ready = child.stdout.readline().strip()
    time.sleep(1.0)  # well into the step
    sent = time.time()
    child.send_signal(signal.SIGINT)
    line = child.stdout.readline().split() or ["(nothing)"]
    code = child.wait(timeout=30)
    log.seek(0)
    said = log.read()[-2000:]
    assert ready == "ready" and code == 3, f"exit {code}, stdout {ready!r} {line}, stderr: {said}"
    assert line[0] == "interrupted" and int(line[2]) > 0, said
    assert float(line[1]) - sent < 1.0, f"KeyboardInterrupt came {float(line[1]) - sent:.2f} s after Ctrl-C"
