# pycaffe's Net surface: reshape(), forward/backward with start= and end= (layer
# names, the first layer of a repeated name, as pycaffe resolves them), layers,
# _layer_names, top_names, bottom_names, inputs, and layer_times() that keeps
# layers sharing a name. Typical pycaffe snippets run unchanged.
import numpy as np
import pytest

import caffegrid

NET = """name: "repeated"
force_backward: true  # no loss layer: backward runs only when forced, as in Caffe
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 8 dim: 8 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
  convolution_param { num_output: 4 kernel_size: 3 weight_filler { type: "gaussian" std: 0.3 }
                      bias_filler { type: "constant" value: 0.1 } } }
layer { name: "act" type: "ReLU" bottom: "conv" top: "a1" }
layer { name: "act" type: "Sigmoid" bottom: "a1" top: "a2" }
layer { name: "pool" type: "Pooling" bottom: "a2" top: "pool" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
layer { name: "ip" type: "InnerProduct" bottom: "pool" top: "ip"
  inner_product_param { num_output: 5 weight_filler { type: "xavier" } bias_filler { type: "constant" value: 0.5 } } }
"""


@pytest.fixture
def net(tmp_path):
    path = tmp_path / "repeated.prototxt"
    path.write_text(NET)
    n = caffegrid.Net(str(path), caffegrid.TEST, seed=7)
    n.blobs["data"].data[...] = np.random.default_rng(3).standard_normal(n.blobs["data"].shape).astype(np.float32)
    return n


def max_pool_2x2(x):
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def test_pycaffe_snippets_run_unchanged(net):
    # the model-zoo notebooks' ways of looking at a net
    shapes = [(layer_name, blob.data.shape) for layer_name, blob in net.blobs.items()]
    assert shapes[0] == ("data", (2, 3, 8, 8)) and [s[0] for s in shapes] == ["data", "conv", "a1", "a2", "pool", "ip"]
    params = [(k, v[0].data.shape, v[1].data.shape) for k, v in net.params.items()]
    assert params == [("conv", (4, 3, 3, 3), (4,)), ("ip", (5, 36), (5,))]
    assert list(net._layer_names) == ["data", "conv", "act", "act", "pool", "ip"]
    assert [layer.type for layer in net.layers] == ["Input", "Convolution", "ReLU", "Sigmoid", "Pooling", "InnerProduct"]
    assert net.layers[1].blobs[0].data.shape == (4, 3, 3, 3) and len(net.layers[2].blobs) == 0
    filters = net.params["conv"][0].data
    assert np.shares_memory(filters, net.layers[1].blobs[0].data)
    assert net.inputs == ["data"] and net.outputs == ["ip"]
    assert list(net.top_names) == ["data", "conv", "act", "pool", "ip"]  # a repeated name keeps its first place
    assert net.top_names["conv"] == ["conv"] and net.bottom_names["pool"] == ["a2"] and net.bottom_names["data"] == []
    out = net.forward()
    assert list(out) == ["ip"] and out["ip"].shape == (2, 5)


def test_reshape_then_later_blobs_have_their_shapes(net):
    net.blobs["data"].reshape(4, 3, 8, 8)
    net.reshape()
    conv = 8 - 3 + 1
    assert net.blobs["conv"].data.shape == (4, 4, conv, conv)
    assert net.blobs["a2"].data.shape == (4, 4, conv, conv)
    assert net.blobs["pool"].data.shape == (4, 4, conv // 2, conv // 2)
    assert net.blobs["ip"].data.shape == (4, 5)
    net.blobs["data"].data[...] = 1.0
    assert net.forward()["ip"].shape == (4, 5)
    # an input the inner product cannot take: the error names the file and the layer
    net.blobs["data"].reshape(4, 3, 10, 10)
    with pytest.raises(caffegrid.ShapeError, match=r"repeated.prototxt: layer 'ip' \(InnerProduct\) reshape"):
        net.reshape()


def test_forward_start_end_resolve_the_first_layer_of_a_name(net):
    full = net.forward()["ip"].copy()
    conv = net.blobs["conv"].data.copy()
    part = net.forward(end="act")  # the first "act": the ReLU
    assert list(part) == ["a1"]
    np.testing.assert_array_equal(part["a1"], np.maximum(conv, 0))
    again = net.forward(start="act")  # from the ReLU on: the same result as a full pass
    np.testing.assert_array_equal(again["ip"], full)
    # only the layers from "pool" on run: a2 changed by hand is what they see
    net.blobs["a2"].data[...] = np.linspace(-1, 1, net.blobs["a2"].count, dtype=np.float32).reshape(2, 4, 6, 6)
    out = net.forward(start="pool", blobs=["pool"])
    pooled = max_pool_2x2(net.blobs["a2"].data)
    np.testing.assert_array_equal(out["pool"], pooled)
    w, b = net.params["ip"][0].data, net.params["ip"][1].data
    np.testing.assert_allclose(out["ip"], pooled.reshape(2, -1) @ w.T + b, rtol=1e-5, atol=1e-6)
    with pytest.raises(caffegrid.NotFoundError, match="no layer named 'nope'"):
        net.forward(start="nope")


def test_backward_start_end(net):
    net.forward()
    g = np.random.default_rng(5).standard_normal((2, 5)).astype(np.float32)
    out = net.backward(start="ip", end="ip", ip=g)  # the inner product alone: its bottom's diff
    assert list(out) == ["pool"]
    np.testing.assert_allclose(out["pool"].reshape(2, -1), g @ net.params["ip"][0].data, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(net.params["ip"][1].diff, g.sum(axis=0), rtol=1e-5, atol=1e-6)
    full = net.backward(ip=g)  # down to the first layer: the net's inputs
    assert list(full) == ["data"] and full["data"].shape == (2, 3, 8, 8) and np.abs(full["data"]).sum() > 0


def test_layer_times_keep_layers_that_share_a_name(net):
    net.set_profiling(True)
    for _ in range(3):
        net.forward()
        net.backward()
    times = net.layer_times()
    assert [name for name, _, _ in times] == ["data", "conv", "act", "act", "pool", "ip"]
    assert times[3][1] > 0 and times[2][1] > 0  # both "act" layers were timed
    assert all(f >= 0 and b >= 0 for _, f, b in times)
