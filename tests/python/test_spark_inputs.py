# caffegrid.spark's input handling without a Spark cluster: rows decoded as the
# tasks decode them (raw, PNG-encoded, through the C sources), and bad input —
# wrong shapes, broken images, unknown paths, CaffeOnSpark command lines that
# cannot work — rejected with messages naming the row, field or file.
import subprocess

import numpy as np
import pytest

import caffegrid

from caffegrid import InvalidArgumentError
from caffegrid import spark as cgspark
from caffegrid import spark_data, spark_submit
from conftest import lenet_spark_prototxt, png_bytes, read_idx



@pytest.fixture(scope="module")
def image(shared_data):
    return read_idx(shared_data / "fashion-mnist" / "t10k-images-idx3-ubyte.gz")[0]


def frame(**columns):
    """An Arrow record batch of ImageDataFrame rows (ids r0, r1, ... unless given)."""
    pa = pytest.importorskip("pyarrow", reason="pyarrow is not installed (python3 -m pip install pyarrow)")
    n = len(next(iter(columns.values())))
    columns.setdefault("id", [f"r{i}" for i in range(n)])
    columns.setdefault("label", [float(i % 10) for i in range(n)])
    return pa.RecordBatch.from_pydict({k: columns[k] for k in ["id", "label"] + [c for c in columns if c not in
                                                                                 ("id", "label")]})


def memory_net(tmp_path, transform="scale: 0.5", height=28, width=28, batch=2, phase=caffegrid.TEST):
    path = tmp_path / f"memory_{len(list(tmp_path.iterdir()))}.prototxt"
    path.write_text(f'layer {{ name: "d" type: "MemoryData" top: "data" top: "label" transform_param {{ {transform} }} '
                    f'memory_data_param {{ batch_size: {batch} channels: 1 height: {height} width: {width} }} }}')
    return caffegrid.Net(str(path), phase)


def records_of(tmp_path, batch, shape=(1, 28, 28), name="rows.records"):
    path = tmp_path / name
    writer = caffegrid._caffegrid.RecordsWriter(str(path))
    spark_data.write_batch(writer, batch, shape)
    writer.close()
    return path


def test_rows_enter_the_c_pipeline_as_an_lmdb_does(tmp_path, image, shared_data, cli):
    """Raw uint8 rows, float32 bytes, arrays of numbers and PNG-encoded rows (Arrow
    columns, written in C) read by a MemoryData layer give the same scaled pixels; and
    the same as a Data layer over an LMDB of the same image."""
    pixels = image.tobytes()
    floats = image.astype(np.float32).tobytes()
    png = png_bytes(image)
    batch = frame(data=[pixels, floats, png, pixels], encoded=[False, False, True, False])
    net = memory_net(tmp_path)
    net.feed_source(None, "records", records_of(tmp_path, batch))
    want = image.astype(np.float32) * 0.5
    for _ in range(2):
        net.forward()
        assert np.array_equal(net.blobs["data"].data[0], want) and np.array_equal(net.blobs["data"].data[1], want)
    assert [i for i, _ in net.batch_ids()] == ["r2", "r3"] and list(net.blobs["label"].data) == [2.0, 3.0]
    listed = frame(data=[image.reshape(-1).astype(float).tolist()] * 2)
    net = memory_net(tmp_path)
    net.feed_source(None, "records", records_of(tmp_path, listed, name="listed.records"))
    net.forward()
    assert np.array_equal(net.blobs["data"].data[1], want)

    data = shared_data / "fashion-mnist"
    db = tmp_path / "lmdb"
    subprocess.run([cli, "convert", "mnist", str(data / "t10k-images-idx3-ubyte.gz"),
                    str(data / "t10k-labels-idx1-ubyte.gz"), str(db), "--limit=2"], check=True, capture_output=True)
    assert cgspark.source_type(str(db)) == ("lmdb", str(db)) == cgspark.source_type(f"file:{db}")
    net = memory_net(tmp_path)
    net.feed_source(None, "lmdb", str(db))
    net.forward()
    assert np.array_equal(net.blobs["data"].data[0], want) and [i for i, _ in net.batch_ids()] == ["00000000",
                                                                                                   "00000001"]


def test_transform_param_applies_to_rows(tmp_path, image):
    """mean_value, crop_size and mirror on rows as the Data layer applies them:
    TEST crops the centre; TRAIN draws per record (crops and mirrors that differ
    between epochs)."""
    batch = frame(data=[image.tobytes()] * 4)
    net = memory_net(tmp_path, "crop_size: 24 mean_value: 33 mirror: true", batch=4)
    assert net.blobs["data"].data.shape == (4, 1, 24, 24)
    net.feed_source(None, "records", records_of(tmp_path, batch))
    net.forward()
    centre = image[:, 2:26, 2:26].astype(np.float32) - 33
    # Caffe mirrors in TEST too (only the crop depends on the phase)
    assert all(np.array_equal(net.blobs["data"].data[i], centre) or
               np.array_equal(net.blobs["data"].data[i], centre[:, :, ::-1]) for i in range(4))
    train = memory_net(tmp_path, "crop_size: 24 mean_value: 33 mirror: true", batch=4, phase=caffegrid.TRAIN)
    train.feed_source(None, "records", records_of(tmp_path, batch, name="train.records"))
    seen = set()
    for _ in range(4):
        train.forward()
        for i in range(4):
            seen.add(train.blobs["data"].data[i].tobytes())
    assert len(seen) > 4  # random crops and mirrors, drawn anew for every record and epoch


def test_bad_rows_name_the_row_and_field(tmp_path, image):
    writer = caffegrid._caffegrid.RecordsWriter(str(tmp_path / "bad.records"))
    with pytest.raises(caffegrid.ShapeError, match=r"row 'r1': 100 bytes of data; its shape 1x28x28 takes 784 uint8"):
        spark_data.write_batch(writer, frame(data=[image.tobytes(), b"x" * 100]), (1, 28, 28))
    with pytest.raises(caffegrid.ShapeError, match=r"row 'r0': 784 bytes of data; its shape 1x32x32 takes 1024"):
        spark_data.write_batch(writer, frame(data=[image.tobytes()], height=[32], width=[32]), (1, 28, 28))
    # the same check, vectorised, before rows travel to the training tasks
    with pytest.raises(caffegrid.ShapeError, match=r"row 'r1': 100 bytes of data; its shape 1x28x28 takes 784 uint8"):
        spark_data.check_sizes(frame(data=[image.tobytes(), b"x" * 100]), (1, 28, 28))
    spark_data.check_sizes(frame(data=[image.tobytes(), b"x" * 100], encoded=[False, True]), (1, 28, 28))
    spark_data.check_sizes(frame(data=[image.astype(np.float32).tobytes()]), (1, 28, 28))
    with pytest.raises(caffegrid.ShapeError, match=r"row 'r0': 3 values, its shape 1x2x2 takes 4"):
        spark_data.check_sizes(frame(data=[[1.0, 2.0, 3.0]]), (1, 2, 2))
    with pytest.raises(InvalidArgumentError, match=r"row 'r1': data is null"):
        spark_data.write_batch(writer, frame(data=[image.tobytes(), None]), (1, 28, 28))
    with pytest.raises(InvalidArgumentError, match=r"column 'data' is string"):
        spark_data.write_batch(writer, frame(data=["text"]), (1, 28, 28))
    # a broken image is named when the layer decodes it, and skipped in skip mode
    batch = frame(data=[png_bytes(image), b"not an image"], encoded=[True, True])
    net = memory_net(tmp_path)
    net.feed_source(None, "records", records_of(tmp_path, batch, name="broken.records"))
    with pytest.raises(caffegrid.UnsupportedError, match=r"'r1' in .*broken.records.*not a JPEG or PNG image"):
        net.forward()
    big = np.zeros((1, 32, 32), np.uint8)
    big_records = records_of(tmp_path, frame(data=[png_bytes(big)] * 2, encoded=[True] * 2), name="big.records")
    net = memory_net(tmp_path)
    with pytest.raises(caffegrid.ShapeError, match=r"come out 1x32x32 after transform_param, the layer's top is 1x28x28"):
        net.feed_source(None, "records", big_records)
    net.feed_source(None, "records", big_records, resize=True)  # CaffeOnSpark's -resize
    net.forward()
    assert net.blobs["data"].data.shape == (2, 1, 28, 28) and not net.blobs["data"].data.any()


def test_a_label_outside_the_nets_classes_names_the_row(tmp_path, image):
    """A row whose label is no class of the net (10 here) is named by its id when the
    loss meets it, as the CLI names a record it cannot read."""
    rows = frame(data=[image.tobytes()] * 4, id=["a", "b", "c", "d"], label=[1.0, 2.0, 12.0, 3.0])
    path = tmp_path / "labels.prototxt"
    path.write_text('layer { name: "d" type: "MemoryData" top: "data" top: "label" transform_param { scale: 0.01 } '
                    'memory_data_param { batch_size: 4 channels: 1 height: 28 width: 28 } }\n'
                    'layer { name: "ip" type: "InnerProduct" bottom: "data" top: "ip" '
                    'inner_product_param { num_output: 10 weight_filler { type: "xavier" } } }\n'
                    'layer { name: "loss" type: "SoftmaxWithLoss" bottom: "ip" bottom: "label" top: "loss" }\n')
    net = caffegrid.Net(str(path), caffegrid.TEST)
    net.feed_source(None, "records", records_of(tmp_path, rows, name="labels.records"))
    with pytest.raises(caffegrid.InvalidArgumentError,
                       match=r"layer 'loss' \(SoftmaxWithLoss\) forward: record 'c': label 12 is outside \[0, 10\)"):
        net.forward()


def test_data_threads_read_alike(tmp_path, image):
    """Net(data_threads=0) reads in forward (as Spark's one-core feature tasks do)
    and gives the batches the prefetch thread gives; out-of-range counts are refused."""
    records = records_of(tmp_path, frame(data=[image.tobytes(), image[::-1].tobytes()] * 3), name="threads.records")
    path = tmp_path / "threads.prototxt"
    path.write_text('layer { name: "d" type: "MemoryData" top: "data" top: "label" transform_param { scale: 0.5 '
                    'mirror: true crop_size: 24 } memory_data_param { batch_size: 4 channels: 1 height: 28 width: 28 } }')
    seen = []
    for threads in (None, 0, 2):
        net = caffegrid.Net(str(path), caffegrid.TRAIN, seed=5, data_threads=threads)
        net.feed_source(None, "records", records)
        seen.append([net.forward(blobs=["data"])["data"].copy() for _ in range(3)])
    for other in seen[1:]:
        for a, b in zip(seen[0], other):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(InvalidArgumentError, match=r"data_threads 65: expected 0 \(read in forward\) to 64"):
        caffegrid.Net(str(path), caffegrid.TRAIN, data_threads=65)


COS_DATA = """layer {
  name: "data" type: "CoSData" top: "data" top: "label" include { phase: TRAIN }
  source_class: "com.yahoo.ml.caffe.DataFrameSource"
  cos_data_param {
    source: "file:///tmp/mnist_train_dataframe" batch_size: 4
    top { name: "data" type: RAW_IMAGE channels: 1 height: 28 width: 28
          transform_param { scale: 0.5 crop_size: 24 mirror: true } }
    top { name: "label" type: INT }
  }
}
"""
MEMORY_DATA_TWIN = """layer {
  name: "data" type: "MemoryData" top: "data" top: "label" include { phase: TRAIN }
  source_class: "com.yahoo.ml.caffe.DataFrameSource"
  transform_param { scale: 0.5 crop_size: 24 mirror: true }
  memory_data_param { source: "file:///tmp/mnist_train_dataframe" batch_size: 4 channels: 1 height: 28 width: 28
                      image_encoded: false }
}
"""


def test_cos_data_layers_read_as_memory_data(tmp_path, image):
    """CaffeOnSpark's CoSData layer (image top + label top) is its MemoryData twin:
    same shape and transforms for the Spark helpers, same batches from the same rows;
    other forms are refused naming the layer and why."""
    info = cgspark.memory_data(COS_DATA, "TRAIN")
    assert info == cgspark.memory_data(MEMORY_DATA_TWIN, "TRAIN")
    assert (info["batch_size"], info["crop_size"], info["source"]) == (4, 24, "file:///tmp/mnist_train_dataframe")
    records = records_of(tmp_path, frame(data=[image.tobytes(), image[::-1].tobytes()] * 3), name="cos.records")
    batches = []
    for text in (COS_DATA, MEMORY_DATA_TWIN):
        path = tmp_path / f"cos_{len(batches)}.prototxt"
        path.write_text(text)
        net = caffegrid.Net(str(path), caffegrid.TRAIN, seed=3)
        net.feed_source(None, "records", records)
        batches.append([net.forward(blobs=["data"])["data"].copy() for _ in range(2)])
    assert batches[0][0].shape == (4, 1, 24, 24)
    for a, b in zip(*batches):
        np.testing.assert_array_equal(a, b)
    strings = tmp_path / "cos_strings.prototxt"
    strings.write_text(COS_DATA.replace("type: RAW_IMAGE", "type: STRING"))
    with pytest.raises(caffegrid.UnsupportedError,
                       match=r"CoSData layer 'data': its tops are not an image then a label \(caffegrid reads"):
        caffegrid.Net(str(strings), caffegrid.TRAIN)


def test_source_types_come_from_the_library(tmp_path, shared_data):
    h5 = shared_data / "caffe_ref" / "hdf5_bvlc_test_data" / "sample_data.h5"
    assert cgspark.source_type(str(h5)) == ("hdf5", str(h5))
    listed = tmp_path / "h5_list.txt"  # every word an .h5 file: an HDF5 list, not an image list
    listed.write_text(f"{h5}\n")
    assert cgspark.source_type(str(listed)) == ("hdf5", str(listed))
    images = tmp_path / "images.txt"
    images.write_text("a.png 0\nb.png 1\n")
    assert cgspark.source_type(str(images)) == ("image_list", str(images))
    seq = shared_data / "seqfile" / "warp10-pig" / "test.seq"
    parts = tmp_path / "parts"  # a folder of SequenceFile parts, as Spark writes them
    parts.mkdir()
    (parts / "part-00000").write_bytes(seq.read_bytes())
    (parts / "_SUCCESS").write_bytes(b"")
    assert cgspark.source_type(str(seq))[0] == "seqfile" and cgspark.source_type(str(parts))[0] == "seqfile"
    assert cgspark.source_type(f"image_list:{h5}") == ("image_list", str(h5))  # an explicit prefix wins


def test_bad_paths_and_command_lines(tmp_path):
    with pytest.raises(caffegrid.IOError, match=r"cannot open '/nowhere/db': No such file or directory"):
        cgspark.source_type("/nowhere/db")
    with pytest.raises(caffegrid.UnsupportedError, match=r"neither an LMDB \(no data.mdb\) nor a directory of SequenceFiles"):
        cgspark.source_type(str(tmp_path))
    model = tmp_path / "w.caffemodel"
    model.write_bytes(b"\x0a\x05LeNet\x00\x01")
    with pytest.raises(InvalidArgumentError, match=r"w.caffemodel' is not a data source"):
        cgspark.source_type(str(model))
    net = lenet_spark_prototxt().replace("include { phase: TEST }", 'include { phase: TEST } source_class: "Foo"')
    with pytest.raises(InvalidArgumentError, match=r"s.prototxt: the TRAIN MemoryData layer has no memory_data_param.source"):
        spark_submit.memory_data_source(net, "TRAIN", "s.prototxt")
    net = net.replace("memory_data_param { batch_size: 100", 'memory_data_param { source: "x" batch_size: 100')
    with pytest.raises(InvalidArgumentError, match=r"source_class 'Foo' of the TEST MemoryData layer is not supported"):
        spark_submit.memory_data_source(net, "TEST", "s.prototxt")
    args = spark_submit.parse_args(["-train", "-features", "ip1", "-label", "label", "-conf", "s.prototxt", "-model",
                                    "m", "-output", "o", "-outputFormat", "json", "-clusterSize", "2", "-devices", "1"])
    assert args.train and args.features == "ip1" and args.clusterSize == 2 and args.outputFormat == "json"
    with pytest.raises(SystemExit):
        spark_submit.parse_args(["-features", "ip1", "-conf", "s.prototxt", "-output", "o"])  # no -model
    # CaffeOnSpark's whole command line: -persistent, csv and libsvm, -devices and -connection noted
    args = spark_submit.parse_args(["-train", "-persistent", "-conf", "s.prototxt", "-features", "ip1", "-label", "l",
                                    "-output", "o", "-outputFormat", "csv", "-devices", "2", "-connection",
                                    "infiniband"])
    assert args.persistent and args.outputFormat == "csv" and args.clusterSize is None
    said = spark_submit.notes(args)
    assert len(said) == 3 and said[0].startswith("-persistent: sources on Hadoop filesystems are read once onto the executors' local disks")
    assert "-devices 2: caffegrid computes on the CPU cores" in said[1] and "-connection infiniband" in said[2]
    with pytest.raises(SystemExit):
        spark_submit.parse_args(["-features", "ip1", "-conf", "s", "-model", "m", "-output", "o", "-outputFormat",
                                 "libsvm"])  # libsvm needs -label


def test_spark_helpers_read_the_net_through_the_library():
    """exclude { phase: TEST } and mirror:true (no space) are read as Caffe reads them,
    and errors name the user's file and line: the C parser answers, not regexes."""
    net = lenet_spark_prototxt()
    train_layer = 'layer { name: "data" type: "MemoryData" top: "data" top: "label" include { phase: TRAIN }'
    assert train_layer in net
    # the TRAIN layer written with exclude instead of include, and a second TRAIN-only layer before it that
    # a TEST query must pass over
    net = net.replace(train_layer, 'layer { name: "train_data" type: "MemoryData" top: "data" top: "label" '
                                    'exclude { phase: TEST }')
    info = cgspark.memory_data(net, "TRAIN", "lenet.prototxt")
    assert info["layer"] == "train_data" and info["batch_size"] == 64
    assert (info["channels"], info["height"], info["width"]) == (1, 28, 28)
    assert cgspark.memory_data(net, "TEST", "lenet.prototxt")["layer"] == "data"  # the excluded one passed over
    assert info["scale"] == pytest.approx(0.00390625)
    mirrored = net.replace("transform_param { scale: 0.00390625 }",
                           "transform_param { scale: 0.00390625 mirror:true crop_size:24 mean_value: 33 }", 1)
    info = cgspark.memory_data(mirrored, "TRAIN", "lenet.prototxt")
    assert info["mirror"] and info["crop_size"] == 24 and info["mean_values"] == (33.0,)
    with pytest.raises(caffegrid.ParseError, match=r"lenet.prototxt:2:\d+: .*has no field 'scal'"):
        cgspark.memory_data("name: 'x'\nlayer { name: 'd' type: 'MemoryData' transform_param { scal: 1 } }",
                            "TRAIN", "lenet.prototxt")
    with pytest.raises(caffegrid.NotFoundError, match=r"lenet.prototxt: no MemoryData layer for phase TEST"):
        cgspark.memory_data(net.replace('include { phase: TEST }', 'include { phase: TRAIN }'), "TEST", "lenet.prototxt")
