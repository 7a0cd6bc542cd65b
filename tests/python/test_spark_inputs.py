# caffegrid.spark's input handling without a Spark cluster: rows decoded as the
# tasks decode them (raw, PNG-encoded, through the C sources), and bad input —
# wrong shapes, broken images, unknown paths, CaffeOnSpark command lines that
# cannot work — rejected with messages naming the row, field or file.
import subprocess
import types

import numpy as np
import pytest

import caffegrid

from caffegrid import InvalidArgumentError, UnsupportedError
from caffegrid import spark as cgspark
from caffegrid import spark_submit
from conftest import lenet_spark_prototxt, png_bytes, read_idx



def row(**fields):
    return types.SimpleNamespace(id="r7", label=3.0, **fields)


@pytest.fixture(scope="module")
def image(shared_data):
    return read_idx(shared_data / "fashion-mnist" / "t10k-images-idx3-ubyte.gz")[0]


def test_rows_decode_raw_png_and_lmdb_alike(tmp_path, image, shared_data, cli):
    decoder = cgspark.RowDecoder((1, 28, 28), 0.5)
    raw = decoder(row(data=image.tobytes()))
    assert raw.dtype == np.float32 and np.array_equal(raw, image.reshape(-1).astype(np.float32) * 0.5)
    assert np.array_equal(decoder(row(data=png_bytes(image), encoded=True, channels=1, height=28, width=28)), raw)
    data = shared_data / "fashion-mnist"
    db = tmp_path / "lmdb"
    subprocess.run([cli, "convert", "mnist", str(data / "t10k-images-idx3-ubyte.gz"),
                    str(data / "t10k-labels-idx1-ubyte.gz"), str(db), "--limit=5"], check=True, capture_output=True)
    assert cgspark.source_type(str(db)) == ("lmdb", str(db)) == cgspark.source_type(f"file:{db}")
    read = cgspark._read_path(str(db), 2, (1, 28, 28), False)
    rows = list(read(0, iter(()))) + list(read(1, iter(())))
    assert sorted(r.id for r in rows) == [f"{i:08d}" for i in range(5)]
    first = next(r for r in rows if r.id == "00000000")
    assert np.array_equal(decoder(first), raw)


def test_bad_rows_name_the_row_and_field(image):
    decoder = cgspark.RowDecoder((1, 28, 28), 1.0)
    with pytest.raises(InvalidArgumentError, match=r"row 'r7': field 'height' is 32, the MemoryData layer takes 28"):
        decoder(row(data=image.tobytes(), height=32))
    with pytest.raises(InvalidArgumentError, match=r"row 'r7': .*'data' value has 100 bytes"):
        decoder(row(data=b"x" * 100))
    with pytest.raises(UnsupportedError, match=r"row 'r7': not a JPEG or PNG image"):
        decoder(row(data=b"not an image", encoded=True))
    big = np.zeros((1, 32, 32), np.uint8)
    with pytest.raises(InvalidArgumentError, match=r"row 'r7': the image is 1x32x32.*resize=True"):
        decoder(row(data=png_bytes(big), encoded=True))
    resized = cgspark.RowDecoder((1, 28, 28), 1.0, resize=True)(row(data=png_bytes(big), encoded=True))
    assert resized.shape == (784,) and not resized.any()


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
    assert cgspark.memory_data_scale(net, "TRAIN") == pytest.approx(0.00390625)
    mirrored = net.replace("transform_param { scale: 0.00390625 }",
                           "transform_param { scale: 0.00390625 mirror:true crop_size:24 mean_value: 33 }", 1)
    info = cgspark.memory_data(mirrored, "TRAIN", "lenet.prototxt")
    assert info["mirror"] and info["crop_size"] == 24 and info["mean_values"] == (33.0,)
    with pytest.raises(UnsupportedError, match=r"lenet.prototxt: transform_param mean_value, crop_size, mirror of the "
                                               r"TRAIN MemoryData layer 'train_data' is not supported"):
        cgspark.memory_data_scale(mirrored, "TRAIN", "lenet.prototxt")
    with pytest.raises(caffegrid.ParseError, match=r"lenet.prototxt:2:\d+: .*has no field 'scal'"):
        cgspark.memory_data("name: 'x'\nlayer { name: 'd' type: 'MemoryData' transform_param { scal: 1 } }",
                            "TRAIN", "lenet.prototxt")
    with pytest.raises(caffegrid.NotFoundError, match=r"lenet.prototxt: no MemoryData layer for phase TEST"):
        cgspark.memory_data(net.replace('include { phase: TEST }', 'include { phase: TRAIN }'), "TEST", "lenet.prototxt")
