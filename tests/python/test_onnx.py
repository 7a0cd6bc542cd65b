# ONNX export checked by a real ONNX runtime (onnxruntime from PyPI): BVLC's LeNet
# with Caffe's weights scores MNIST t10k as Caffe does, nets covering every layer
# type the exporter maps compute what caffegrid computes (1e-4 of each output's
# largest value), and layers without a faithful ONNX form are refused by name.
import pathlib
import re
import subprocess

import numpy as np
import pytest

import caffegrid
from conftest import read_idx

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed (python3 -m pip install onnxruntime)")
DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs" / "onnx.md"


def run_onnx(path, feeds):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, feeds)))


def build(tmp_path, text, seed=7):
    path = tmp_path / f"net_{len(list(tmp_path.glob('net_*')))}.prototxt"
    path.write_text(text)
    return caffegrid.Net(str(path), caffegrid.TEST, seed=seed)


def check_export(tmp_path, net, feeds, opset=None, fixed_batch=False):
    """Exports `net`, runs caffegrid and onnxruntime on `feeds`, compares every graph
    output; returns the outputs' names."""
    for name, value in feeds.items():
        net.blobs[name].data[...] = value
    start = next(i for i, layer in enumerate(net.layers) if layer.type not in
                 ("Input", "Data", "MemoryData", "ImageData", "HDF5Data", "DummyData"))
    net.forward(start=net.layers[start].name)
    model = tmp_path / "model.onnx"
    outputs = net.to_onnx(model, opset=opset, fixed_batch=fixed_batch)
    got = run_onnx(model, {k: np.ascontiguousarray(v, np.float32) for k, v in feeds.items()})
    assert set(got) == set(outputs)
    for name in outputs:
        want = net.blobs[name].data
        have = got[name].reshape(want.shape)
        scale = max(1.0, float(np.abs(want).max()))
        assert np.isfinite(want).all(), name
        np.testing.assert_allclose(have, want, rtol=0, atol=1e-4 * scale, err_msg=f"output '{name}'")
    return outputs


def uniform(shape, low=-1.0, high=1.0, seed=0):
    return np.random.default_rng(seed).uniform(low, high, shape).astype(np.float32)


FILLERS = 'weight_filler { type: "gaussian" std: 0.3 } bias_filler { type: "uniform" min: -0.5 max: 0.5 }'

CONV = f'''
layer {{ name: "in" type: "Input" top: "data" input_param {{ shape {{ dim: 2 dim: 6 dim: 11 dim: 13 }} }} }}
layer {{ name: "conv_a" type: "Convolution" bottom: "data" top: "conv_a"
  convolution_param {{ num_output: 4 kernel_size: 3 pad: 1 stride: 2 group: 2 {FILLERS} }} }}
layer {{ name: "conv_b" type: "Convolution" bottom: "data" top: "conv_b"
  convolution_param {{ num_output: 5 kernel_h: 2 kernel_w: 3 pad_h: 1 pad_w: 0 dilation: 2 bias_term: false {FILLERS} }} }}
layer {{ name: "conv_dw" type: "Convolution" bottom: "data" top: "conv_dw"
  convolution_param {{ num_output: 6 kernel_size: 3 group: 6 pad: 1 {FILLERS} }} }}
layer {{ name: "deconv" type: "Deconvolution" bottom: "data" top: "deconv"
  convolution_param {{ num_output: 3 kernel_size: 4 stride: 2 pad: 1 {FILLERS} }} }}
layer {{ name: "deconv_g" type: "Deconvolution" bottom: "conv_dw" top: "deconv_g"
  convolution_param {{ num_output: 6 kernel_size: 3 stride: 1 group: 3 dilation: 2 {FILLERS} }} }}
'''

INNER_PRODUCT = f'''
layer {{ name: "in" type: "Input" top: "data" input_param {{ shape {{ dim: 3 dim: 4 dim: 5 dim: 2 }} }} }}
layer {{ name: "ip1" type: "InnerProduct" bottom: "data" top: "ip1" inner_product_param {{ num_output: 7 {FILLERS} }} }}
layer {{ name: "ip2" type: "InnerProduct" bottom: "data" top: "ip2" inner_product_param {{ num_output: 3 axis: 2 {FILLERS} }} }}
layer {{ name: "ip3" type: "InnerProduct" bottom: "data" top: "ip3"
  inner_product_param {{ num_output: 4 transpose: true bias_term: false {FILLERS} }} }}
layer {{ name: "ip4" type: "InnerProduct" bottom: "ip1" top: "ip4" inner_product_param {{ num_output: 2 {FILLERS} }} }}
'''

POOLING = '''
layer { name: "in" type: "Input" top: "a" top: "b" input_param { shape { dim: 2 dim: 3 dim: 13 dim: 11 } shape { dim: 2 dim: 3 dim: 12 dim: 10 } } }
layer { name: "max_ceil" type: "Pooling" bottom: "a" top: "max_ceil" pooling_param { pool: MAX kernel_size: 3 stride: 2 } }
layer { name: "max_pad" type: "Pooling" bottom: "a" top: "max_pad" pooling_param { pool: MAX kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "ave_pad" type: "Pooling" bottom: "a" top: "ave_pad" pooling_param { pool: AVE kernel_size: 3 stride: 2 pad: 1 } }
layer { name: "ave_odd" type: "Pooling" bottom: "a" top: "ave_odd" pooling_param { pool: AVE kernel_h: 2 kernel_w: 3 stride_h: 3 stride_w: 2 pad_h: 1 pad_w: 2 } }
layer { name: "ave_clipped" type: "Pooling" bottom: "b" top: "ave_clipped" pooling_param { pool: AVE kernel_size: 3 stride: 2 } }
layer { name: "ave_floor" type: "Pooling" bottom: "b" top: "ave_floor" pooling_param { pool: AVE kernel_size: 3 stride: 2 round_mode: FLOOR } }
layer { name: "global_ave" type: "Pooling" bottom: "a" top: "global_ave" pooling_param { pool: AVE global_pooling: true } }
layer { name: "global_max" type: "Pooling" bottom: "b" top: "global_max" pooling_param { pool: MAX global_pooling: true } }
'''

NORMALISATION = '''
layer { name: "in" type: "Input" top: "data" top: "factor" top: "shift" input_param { shape { dim: 2 dim: 4 dim: 5 dim: 6 } shape { dim: 2 dim: 4 } shape { dim: 4 } } }
layer { name: "lrn_across" type: "LRN" bottom: "data" top: "lrn_across" lrn_param { local_size: 3 alpha: 0.5 beta: 0.75 k: 2 } }
layer { name: "lrn_within" type: "LRN" bottom: "data" top: "lrn_within" lrn_param { local_size: 3 alpha: 0.3 beta: 0.6 norm_region: WITHIN_CHANNEL } }
layer { name: "bn" type: "BatchNorm" bottom: "data" top: "bn" batch_norm_param { eps: 0.001 } }
layer { name: "scale" type: "Scale" bottom: "bn" top: "bn" scale_param { bias_term: true filler { type: "uniform" min: 0.5 max: 2 } bias_filler { type: "uniform" min: -1 max: 1 } } }
layer { name: "bias" type: "Bias" bottom: "data" top: "biased" bias_param { filler { type: "uniform" min: -1 max: 1 } } }
layer { name: "scale2" type: "Scale" bottom: "data" bottom: "factor" top: "scaled_by_input" scale_param { axis: 0 } }
layer { name: "bias2" type: "Bias" bottom: "data" bottom: "shift" top: "shifted_by_input" }
'''

NEURONS = '''
layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 dim: 4 dim: 5 } } }
layer { name: "relu" type: "ReLU" bottom: "data" top: "relu" }
layer { name: "leaky" type: "ReLU" bottom: "data" top: "leaky" relu_param { negative_slope: 0.1 } }
layer { name: "prelu" type: "PReLU" bottom: "data" top: "prelu" prelu_param { filler { type: "uniform" min: -0.5 max: 0.5 } } }
layer { name: "prelu_shared" type: "PReLU" bottom: "data" top: "prelu_shared" prelu_param { channel_shared: true filler { type: "constant" value: 0.3 } } }
layer { name: "elu" type: "ELU" bottom: "data" top: "elu" elu_param { alpha: 0.7 } }
layer { name: "sigmoid" type: "Sigmoid" bottom: "data" top: "sigmoid" }
layer { name: "tanh" type: "TanH" bottom: "data" top: "tanh" }
layer { name: "abs" type: "AbsVal" bottom: "data" top: "abs" }
layer { name: "power" type: "Power" bottom: "data" top: "power" power_param { power: 2 scale: 0.5 shift: 1 } }
layer { name: "power_affine" type: "Power" bottom: "data" top: "power_affine" power_param { scale: -3 shift: 0.5 } }
layer { name: "exp" type: "Exp" bottom: "data" top: "exp" exp_param { scale: 0.5 shift: 0.1 } }
layer { name: "exp2" type: "Exp" bottom: "data" top: "exp2" exp_param { base: 2 } }
layer { name: "log" type: "Log" bottom: "data" top: "log" log_param { shift: 3 } }
layer { name: "log10" type: "Log" bottom: "data" top: "log10" log_param { base: 10 scale: 2 shift: 3 } }
layer { name: "bnll" type: "BNLL" bottom: "data" top: "bnll" }
layer { name: "threshold" type: "Threshold" bottom: "data" top: "threshold" threshold_param { threshold: 0.2 } }
layer { name: "swish" type: "Swish" bottom: "data" top: "swish" swish_param { beta: 1.5 } }
layer { name: "drop" type: "Dropout" bottom: "data" top: "dropped" }
layer { name: "after_drop" type: "ReLU" bottom: "dropped" top: "after_drop" }
layer { name: "inplace" type: "TanH" bottom: "relu" top: "relu" }
'''

SHAPES = '''
layer { name: "in" type: "Input" top: "a" top: "b" top: "c" input_param { shape { dim: 2 dim: 4 dim: 6 dim: 5 } shape { dim: 2 dim: 4 dim: 6 dim: 5 } shape { dim: 1 dim: 1 dim: 3 dim: 2 } } }
layer { name: "sum" type: "Eltwise" bottom: "a" bottom: "b" top: "sum" eltwise_param { operation: SUM coeff: 0.5 coeff: -2 } }
layer { name: "prod" type: "Eltwise" bottom: "a" bottom: "b" bottom: "sum" top: "prod" eltwise_param { operation: PROD } }
layer { name: "max" type: "Eltwise" bottom: "a" bottom: "b" top: "max" eltwise_param { operation: MAX } }
layer { name: "concat" type: "Concat" bottom: "a" bottom: "max" top: "concat" concat_param { axis: 2 } }
layer { name: "slice" type: "Slice" bottom: "concat" top: "s1" top: "s2" top: "s3" slice_param { axis: 1 slice_point: 1 slice_point: 3 } }
layer { name: "crop" type: "Crop" bottom: "s2" bottom: "c" top: "crop" crop_param { axis: 2 offset: 4 offset: 1 } }
layer { name: "flatten" type: "Flatten" bottom: "s3" top: "flat" }
layer { name: "reshape" type: "Reshape" bottom: "s1" top: "reshaped" reshape_param { shape { dim: 0 dim: -1 dim: 4 } } }
layer { name: "softmax" type: "Softmax" bottom: "prod" top: "softmax" }
layer { name: "softmax2" type: "Softmax" bottom: "prod" top: "softmax2" softmax_param { axis: 2 } }
layer { name: "argmax" type: "ArgMax" bottom: "a" top: "argmax" argmax_param { axis: 1 } }
layer { name: "argmax_k" type: "ArgMax" bottom: "b" top: "argmax_k" argmax_param { top_k: 3 out_max_val: true } }
layer { name: "argmax_flat" type: "ArgMax" bottom: "b" top: "argmax_flat" }
layer { name: "argmax_vals" type: "ArgMax" bottom: "a" top: "argmax_vals" argmax_param { axis: 2 top_k: 2 out_max_val: true } }
'''


def test_convolutions(tmp_path):
    net = build(tmp_path, CONV)
    assert set(check_export(tmp_path, net, {"data": uniform((2, 6, 11, 13))})) == \
        {"conv_a", "conv_b", "deconv", "deconv_g"}


def test_inner_products(tmp_path):
    net = build(tmp_path, INNER_PRODUCT)
    assert set(check_export(tmp_path, net, {"data": uniform((3, 4, 5, 2))})) == {"ip2", "ip3", "ip4"}


def test_pooling_with_caffes_sizes_and_divisors(tmp_path):
    net = build(tmp_path, POOLING)
    assert net.blobs["ave_clipped"].data.shape == (2, 3, 6, 5)  # ceil rounding: the last window is clipped
    check_export(tmp_path, net, {"a": uniform((2, 3, 13, 11), seed=1), "b": uniform((2, 3, 12, 10), seed=2)})


def test_normalisation(tmp_path):
    net = build(tmp_path, NORMALISATION)
    mean, var, factor = (p.data for p in net.params["bn"])
    mean[...] = uniform(mean.shape, seed=3) * 4
    var[...] = uniform(var.shape, 0.5, 2.0, seed=4) * 4
    factor[...] = 4  # Caffe stores sums and their moving-average weight
    check_export(tmp_path, net, {"data": uniform((2, 4, 5, 6)), "factor": uniform((2, 4), seed=5),
                                 "shift": uniform((4,), seed=6)})


def test_neurons(tmp_path):
    net = build(tmp_path, NEURONS)
    outputs = check_export(tmp_path, net, {"data": uniform((2, 3, 4, 5))})
    # Dropout passes its input on (read by after_drop: no output of its own); the in-place TanH keeps 'relu'
    assert "after_drop" in outputs and "dropped" not in outputs and "relu" in outputs


def test_shapes_and_selection(tmp_path):
    net = build(tmp_path, SHAPES)
    check_export(tmp_path, net, {"a": uniform((2, 4, 6, 5), seed=1), "b": uniform((2, 4, 6, 5), seed=2),
                                 "c": uniform((1, 1, 3, 2), seed=3)})


def test_argmax_ranks_ties_as_caffe(tmp_path):
    """Inputs of a few exact values, so ArgMax meets ties in every form: the exported
    graph ranks equal values as Caffe does (the higher index first), not as TopK."""
    net = build(tmp_path, SHAPES)
    tied = {name: np.round(uniform(shape, seed=seed) * 2) / 2
            for name, shape, seed in (("a", (2, 4, 6, 5), 1), ("b", (2, 4, 6, 5), 2), ("c", (1, 1, 3, 2), 3))}
    assert len(np.unique(tied["b"])) <= 5
    check_export(tmp_path, net, tied)


def test_batch_is_symbolic_unless_fixed(tmp_path):
    net = build(tmp_path, CONV)
    model = tmp_path / "symbolic.onnx"
    net.to_onnx(model)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == ["N", 6, 11, 13]
    got = session.run(["conv_a"], {"data": uniform((5, 6, 11, 13))})[0]
    assert got.shape == (5, 4, 6, 7)
    net.to_onnx(model, fixed_batch=True, opset=17)
    assert ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).get_inputs()[0].shape == [2, 6, 11, 13]
    with pytest.raises(caffegrid.InvalidArgumentError, match="ONNX opset 12: this exporter writes opsets 13 to 17"):
        net.to_onnx(model, opset=12)


def test_every_mapped_layer_type_is_covered_and_documented(tmp_path):
    """The nets above use every layer type the exporter turns into operators, and
    docs/onnx.md lists each of them."""
    covered = set()
    for text in (CONV, INNER_PRODUCT, POOLING, NORMALISATION, NEURONS, SHAPES):
        covered |= set(re.findall(r'layer \{ name: "[^"]+" type: "(\w+)"', text))
    documented = dict(re.findall(r"^\| `(\w+)` \| ([^|]+) \|", DOCS.read_text(), re.M))
    operators = {t for t, ops in documented.items() if not ops.strip().startswith(("graph input", "left out"))}
    assert operators <= covered, f"mapped but untested: {sorted(operators - covered)}"
    assert covered - {"Input"} <= set(documented), f"tested but undocumented: {sorted(covered - set(documented))}"


def test_layers_without_a_faithful_form_are_refused(tmp_path):
    mask = build(tmp_path, '''
layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 1 dim: 1 dim: 4 dim: 4 } } }
layer { name: "p" type: "Pooling" bottom: "data" top: "p" top: "where" pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
''')
    with pytest.raises(caffegrid.UnsupportedError, match=r"layer 'p' \(Pooling\) cannot be exported to ONNX: its "
                       r"second top \(the MAX positions\) has no ONNX form"):
        mask.to_onnx(tmp_path / "x.onnx")
    assert not (tmp_path / "x.onnx").exists()
    batch_stats = build(tmp_path, '''
layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 } } }
layer { name: "bn" type: "BatchNorm" bottom: "data" top: "bn" batch_norm_param { use_global_stats: false } }
''')
    with pytest.raises(caffegrid.UnsupportedError, match=r"layer 'bn' \(BatchNorm\) cannot be exported to ONNX: "
                       r"use_global_stats: false normalises with each batch's own statistics"):
        batch_stats.to_onnx(tmp_path / "x.onnx")
    batch_reshape = build(tmp_path, '''
layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 2 dim: 3 } } }
layer { name: "r" type: "Reshape" bottom: "data" top: "r" reshape_param { shape { dim: 6 } } }
''')
    with pytest.raises(caffegrid.UnsupportedError, match=r"layer 'r' \(Reshape\) cannot be exported to ONNX: it "
                       r"changes the batch axis \(2 -> 6\), which a symbolic batch cannot follow"):
        batch_reshape.to_onnx(tmp_path / "x.onnx")
    batch_reshape.to_onnx(tmp_path / "fixed.onnx", fixed_batch=True)  # with the batch fixed it is exact
    train = caffegrid.Net(str(tmp_path / "net_0.prototxt"), caffegrid.TRAIN)
    with pytest.raises(caffegrid.InvalidArgumentError, match="build the net in the TEST phase to export it"):
        train.to_onnx(tmp_path / "x.onnx")


def test_lenet_with_caffes_weights_scores_as_caffe(tmp_path, shared_data):
    """BVLC's LeNet deploy net with Caffe-trained weights: onnxruntime over MNIST t10k
    gives Caffe's 0.9905 and caffegrid's own probabilities within 1e-4."""
    ref = shared_data / "caffe_ref"
    net = caffegrid.Net(str(ref / "bvlc_mnist_prototxt" / "lenet.prototxt"), caffegrid.TEST,
                        weights=str(ref / "lenet_nandahkrishna" / "lenet_iter_10000.caffemodel"))
    model = tmp_path / "lenet.onnx"
    assert net.to_onnx(model) == ("prob",)
    images = read_idx(shared_data / "mnist" / "t10k-images-idx3-ubyte.gz").astype(np.float32) * np.float32(0.00390625)
    labels = read_idx(shared_data / "mnist" / "t10k-labels-idx1-ubyte.gz")
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    batch = 500
    net.blobs["data"].reshape(batch, 1, 28, 28)
    net.reshape()
    correct, worst = 0, 0.0
    for start in range(0, len(labels), batch):
        x = images[start:start + batch].reshape(batch, 1, 28, 28)
        prob = session.run(["prob"], {"data": x})[0]
        correct += int((prob.argmax(1) == labels[start:start + batch]).sum())
        ours = net.forward(data=x)["prob"]
        worst = max(worst, float(np.abs(prob - ours).max()))
    print(f"onnxruntime {ort.__version__}: accuracy {correct / len(labels)}, largest difference {worst:.3g}")
    assert correct / len(labels) == 0.9905
    assert worst <= 1e-4


def test_cli_export_with_parity_check(tmp_path, shared_data, cli):
    ref = shared_data / "caffe_ref"
    out = subprocess.run([cli, "export", "-model", str(ref / "bvlc_mnist_prototxt" / "lenet.prototxt"), "-weights",
                          str(ref / "lenet_nandahkrishna" / "lenet_iter_10000.caffemodel"), "-output",
                          str(tmp_path / "lenet.onnx"), "-input_shape", "8,1,28,28", "-check"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "Wrote " in out.stdout and "outputs: prob" in out.stdout
    largest = float(re.search(r"largest difference, relative to each output's largest value: (\S+)", out.stdout)[1])
    assert largest <= 1e-4
    fixed = ort.InferenceSession(str(tmp_path / "lenet.onnx"), providers=["CPUExecutionProvider"])
    assert fixed.get_inputs()[0].shape == [8, 1, 28, 28]
    bad = subprocess.run([cli, "export", "-model", str(ref / "bvlc_mnist_prototxt" / "lenet.prototxt"), "-output",
                          str(tmp_path / "x.onnx"), "-input_shape", "8,1,28"], capture_output=True, text=True)
    assert bad.returncode == 1 and "-input_shape gives 3 dimensions, the net's input 'data' has 4" in bad.stderr


def test_train_test_net_exports_its_inference_part(tmp_path, shared_data, cli):
    """Caffe's own LeNet train_test net: the Data layer's images become the input, the
    label and its Split, the loss and Accuracy are left out, ip2 is the output."""
    ref = shared_data / "caffe_ref" / "lenet_nandahkrishna"
    subprocess.run([cli, "convert", "mnist", str(shared_data / "mnist" / "t10k-images-idx3-ubyte.gz"),
                    str(shared_data / "mnist" / "t10k-labels-idx1-ubyte.gz"), str(tmp_path / "mnist_test_lmdb")],
                   check=True, capture_output=True)
    text = (ref / "lenet_train_test.prototxt").read_text().replace('"mnist_test_lmdb"',
                                                                   f'"{tmp_path / "mnist_test_lmdb"}"')
    net = build(tmp_path, text)
    net.copy_from(str(ref / "lenet_iter_10000.caffemodel"))
    net.forward()
    model = tmp_path / "train_test.onnx"
    assert net.to_onnx(model) == ("ip2",)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    assert [(i.name, i.shape) for i in session.get_inputs()] == [("data", ["N", 1, 28, 28])]
    got = session.run(["ip2"], {"data": net.blobs["data"].data})[0]
    np.testing.assert_allclose(got, net.blobs["ip2"].data, rtol=0, atol=1e-4 * np.abs(got).max())


def test_spark_door_exports_the_trained_model(tmp_path, shared_data):
    """CaffeOnSpark.export_onnx: the same exporter from the Spark door (here with the
    net and weights given, as after a train), errors in the user's file names."""
    from caffegrid.spark import CaffeOnSpark

    ref = shared_data / "caffe_ref"
    cos = CaffeOnSpark(None)
    with pytest.raises(caffegrid.InvalidArgumentError, match="no trained model; call train first"):
        cos.export_onnx(str(tmp_path / "none.onnx"))
    deploy = str(ref / "bvlc_mnist_prototxt" / "lenet.prototxt")
    outputs = cos.export_onnx(str(tmp_path / "lenet.onnx"), net=deploy,
                              model=str(ref / "lenet_nandahkrishna" / "lenet_iter_10000.caffemodel"))
    assert outputs == ("prob",)
    x = np.zeros((3, 1, 28, 28), np.float32)
    assert run_onnx(tmp_path / "lenet.onnx", {"data": x})["prob"].shape == (3, 10)
    with pytest.raises(caffegrid.Error, match=re.escape(deploy)):
        cos.export_onnx(str(tmp_path / "bad.onnx"), net=deploy, model=deploy)  # a prototxt is no .caffemodel
