# Feeding NumPy arrays into MemoryData layers: LeNet trained on Fashion-MNIST
# batches from Python reaches Caffe's accuracy, and long calls release the GIL.
import threading

import numpy as np
import pytest

import caffegrid
from conftest import lenet_memory_prototxt, read_idx, write_solver


@pytest.fixture(scope="session")
def fashion(shared_data):
    def load(kind, count):
        images = read_idx(shared_data / "fashion-mnist" / f"{kind}-images-idx3-ubyte.gz")[:count]
        labels = read_idx(shared_data / "fashion-mnist" / f"{kind}-labels-idx1-ubyte.gz")[:count]
        return images.astype(np.float32) * np.float32(0.00390625), labels.astype(np.float32)
    return load("train", 32000), load("t10k", 10000)  # 500 iterations of 64 = one pass over 32000


def test_fashion_mnist_lenet_from_numpy(tmp_path, monkeypatch, fashion):
    (train_x, train_y), (test_x, test_y) = fashion
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.prototxt").write_text(lenet_memory_prototxt())
    solver = caffegrid.Solver(str(write_solver(tmp_path / "solver.prototxt", "net.prototxt", max_iter=500,
                                               test_initialization="false")))
    assert solver.net.feed_shape("data") == (64, 1, 28, 28)
    solver.net.feed("data", train_x, train_y)
    solver.test_nets[0].feed("data", test_x, test_y)
    solver.step(500)
    (scores,) = solver.test()
    # BVLC Caffe: 0.818 after 500 iterations (shared/data/SOURCES.md)
    assert scores["accuracy"] >= 0.80, scores


def test_integer_labels_and_first_layer(tmp_path, fashion):
    (train_x, train_y), _ = fashion
    (tmp_path / "net.prototxt").write_text(lenet_memory_prototxt())
    net = caffegrid.Net(str(tmp_path / "net.prototxt"), caffegrid.TEST)
    net.set_input_arrays(train_x[:200], train_y[:200].astype(np.int64))  # first MemoryData layer; labels converted
    net.forward()
    assert np.array_equal(net.blobs["label"].data, train_y[:100])
    assert np.array_equal(net.blobs["data"].data, train_x[:100])
    net.forward()  # the next batch, then it cycles
    assert np.array_equal(net.blobs["data"].data, train_x[100:200])
    net.forward()
    assert np.array_equal(net.blobs["data"].data, train_x[:100])


def test_feed_reads_the_callers_array(tmp_path, fashion):
    """Zero copy: the layer reads the fed array itself, so in-place changes show in later batches."""
    (train_x, train_y), _ = fashion
    (tmp_path / "net.prototxt").write_text(lenet_memory_prototxt())
    net = caffegrid.Net(str(tmp_path / "net.prototxt"), caffegrid.TEST)
    batch = train_x[:100].copy()
    net.feed("data", batch, train_y[:100])
    batch[...] = 0.25
    net.forward()
    assert (net.blobs["data"].data == 0.25).all()


def test_step_releases_the_gil(tmp_path, monkeypatch, fashion):
    (train_x, train_y), _ = fashion
    monkeypatch.chdir(tmp_path)
    (tmp_path / "net.prototxt").write_text(lenet_memory_prototxt())
    solver = caffegrid.Solver(str(write_solver(tmp_path / "solver.prototxt", "net.prototxt", test_interval=0,
                                               display=0)))
    solver.net.feed("data", train_x[:6400], train_y[:6400])
    errors = []

    def train():
        while True:
            try:
                solver.step(50)
                return
            except caffegrid.BusyError:  # the main thread's forward() held the net; no iteration ran
                continue
            except Exception as e:  # reported below
                errors.append(e)
                return

    worker = threading.Thread(target=train)
    worker.start()
    saw_busy = False
    while worker.is_alive() and not saw_busy:  # this thread runs during step() only if step() let go of the GIL
        try:
            solver.net.forward()
        except caffegrid.BusyError:  # the same net, while the solver trains it
            saw_busy = True
    worker.join()
    assert not errors and solver.iter == 50
    assert saw_busy


def test_two_nets_in_two_threads(shared_data, mnist_test_arrays):
    images, _ = mnist_test_arrays
    proto = str(shared_data / "caffe_ref" / "bvlc_mnist_prototxt" / "lenet.prototxt")
    weights = str(shared_data / "caffe_ref" / "lenet_nandahkrishna" / "lenet_iter_10000.caffemodel")
    nets = [caffegrid.Net(proto, caffegrid.TEST, weights=weights) for _ in range(2)]
    want = [nets[0].forward(data=images[i * 64:(i + 1) * 64])["prob"].copy() for i in range(2)]
    got = [None, None]

    def run(i):
        for _ in range(10):
            got[i] = nets[i].forward(data=images[i * 64:(i + 1) * 64])["prob"].copy()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
