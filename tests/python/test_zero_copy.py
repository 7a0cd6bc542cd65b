# Blob arrays are views of the C memory: writes change what forward computes,
# parameter views change the weights, and every view keeps its net (and a
# solver's net its solver) alive after the Python objects are gone.
import gc

import numpy as np
import pytest

import caffegrid
from conftest import lenet_memory_prototxt, write_solver


@pytest.fixture
def deploy(shared_data):
    return caffegrid.Net(str(shared_data / "caffe_ref" / "bvlc_mnist_prototxt" / "lenet.prototxt"), caffegrid.TEST,
                         weights=str(shared_data / "caffe_ref" / "lenet_nandahkrishna" / "lenet_iter_10000.caffemodel"))


def test_data_view_is_shared(deploy, mnist_test_arrays):
    images, labels = mnist_test_arrays
    a, b = deploy.blobs["data"].data, deploy.blobs["data"].data
    assert a.dtype == np.float32 and a.shape == (64, 1, 28, 28) and a.flags.c_contiguous
    assert np.shares_memory(a, b)
    a[...] = images[:64]
    assert np.array_equal(b, images[:64])
    prob = deploy.forward()["prob"].copy()
    assert (prob.argmax(axis=1) == labels[:64]).mean() > 0.95
    a[...] = 0  # forward must see the write
    blank = deploy.forward()["prob"]
    assert not np.allclose(blank, prob)
    assert np.allclose(blank, blank[0])  # every blank image gets the same answer


def test_forward_returns_views(deploy):
    out = deploy.forward()["prob"]
    assert np.shares_memory(out, deploy.blobs["prob"].data)


def test_param_views_change_weights(deploy, mnist_test_arrays, tmp_path):
    images, labels = mnist_test_arrays
    deploy.blobs["data"].data[...] = images[:64]
    bias = deploy.params["ip2"][1].data
    assert bias.shape == (10,) and [b.shape for b in deploy.params["conv1"]] == [(20, 1, 5, 5), (20,)]
    assert list(deploy.params) == ["conv1", "conv2", "ip1", "ip2"]
    bias[3] += 1000  # every image becomes a 3
    assert (deploy.forward()["prob"].argmax(axis=1) == 3).all()
    deploy.params["ip2"][1].data[3] -= 1000
    assert (deploy.forward()["prob"].argmax(axis=1) == labels[:64]).mean() > 0.95
    # save -> copy_from round trip is exact
    expected = deploy.forward()["prob"].copy()
    deploy.save(str(tmp_path / "w.caffemodel"))
    deploy.params["conv1"][0].data[...] = 0
    assert not np.array_equal(deploy.forward()["prob"], expected)
    deploy.copy_from(str(tmp_path / "w.caffemodel"))
    assert np.array_equal(deploy.forward()["prob"], expected)


def test_reshape_input(deploy, mnist_test_arrays):
    images, labels = mnist_test_arrays
    deploy.blobs["data"].reshape(10, 1, 28, 28)
    assert deploy.blobs["data"].shape == (10, 1, 28, 28)
    out = deploy.forward(data=images[:10])["prob"]
    assert out.shape == (10, 10)
    assert (out.argmax(axis=1) == labels[:10]).all()


def test_views_keep_the_net_alive(shared_data, mnist_test_arrays):
    images, _ = mnist_test_arrays
    net = caffegrid.Net(str(shared_data / "caffe_ref" / "bvlc_mnist_prototxt" / "lenet.prototxt"), caffegrid.TEST)
    data, weights = net.blobs["data"].data, net.params["conv1"][0].data
    net.forward(data=images[:64])
    prob = net.blobs["prob"].data
    kept = prob.copy()
    del net
    gc.collect()
    assert np.array_equal(prob, kept)  # still readable
    data[...] = 1.0  # and writable
    weights[...] = 0.5
    assert float(data.sum()) == 64 * 28 * 28 and float(weights.mean()) == 0.5


def test_solver_net_keeps_the_solver_alive(tmp_path, monkeypatch, mnist_test_arrays):
    monkeypatch.chdir(tmp_path)
    images, labels = mnist_test_arrays
    (tmp_path / "net.prototxt").write_text(lenet_memory_prototxt())
    net = caffegrid.Solver(str(write_solver(tmp_path / "solver.prototxt", "net.prototxt"))).net
    gc.collect()
    weights = net.params["conv1"][0].data
    net.feed("data", images[:640].copy(), labels[:640])
    gc.collect()  # the fed arrays are only referenced by the net now
    net.forward()
    net.backward()
    assert np.abs(net.params["conv1"][0].diff).sum() > 0
    del net
    gc.collect()
    assert np.isfinite(weights).all()


def test_backward_accumulates_parameter_gradients(tmp_path, monkeypatch, mnist_test_arrays):
    monkeypatch.chdir(tmp_path)
    images, labels = mnist_test_arrays
    (tmp_path / "net.prototxt").write_text(lenet_memory_prototxt())
    net = caffegrid.Net(str(tmp_path / "net.prototxt"), caffegrid.TRAIN, seed=1)
    net.feed("data", images[:64], labels[:64])
    net.forward()
    assert net.loss > 0
    net.backward()
    once = net.params["ip2"][0].diff.copy()
    net.forward()
    diffs = net.backward(diffs=["data"])
    assert diffs["data"].shape == (64, 1, 28, 28)
    assert np.allclose(net.params["ip2"][0].diff, 2 * once, rtol=1e-5, atol=1e-7)
    net.clear_param_diffs()
    assert not net.params["ip2"][0].diff.any()
