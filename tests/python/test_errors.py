# Bad input raises caffegrid.Error subclasses carrying the C library's message:
# missing files, prototxt mistakes, feeds of the wrong shape or dtype. Never a
# crash, never a silent None.
import numpy as np
import pytest

import caffegrid
from caffegrid import _caffegrid
from conftest import lenet_memory_prototxt, write_solver


@pytest.fixture
def memory_net(tmp_path):
    (tmp_path / "net.prototxt").write_text(lenet_memory_prototxt())
    return caffegrid.Net(str(tmp_path / "net.prototxt"), caffegrid.TEST)


def test_every_status_code_has_a_class():
    for name, value, _text in _caffegrid.status_codes():
        if value == 0:
            continue
        cls = caffegrid._errors.BY_CODE[value]
        assert issubclass(cls, caffegrid.Error) and cls.code == value, name


def test_missing_prototxt(tmp_path):
    with pytest.raises(caffegrid.IOError) as e:
        caffegrid.Net(str(tmp_path / "nope.prototxt"), caffegrid.TEST)
    assert "nope.prototxt" in str(e.value) and "No such file" in str(e.value)
    assert isinstance(e.value, OSError) and e.value.code == -1


def test_misspelled_field(tmp_path):
    text = lenet_memory_prototxt().replace("num_output: 20  kernel_size: 5", "num_output: 20  kernal_size: 5")
    (tmp_path / "bad.prototxt").write_text(text)
    with pytest.raises(caffegrid.ParseError) as e:
        caffegrid.Net(str(tmp_path / "bad.prototxt"), caffegrid.TEST)
    message = str(e.value)
    assert "bad.prototxt:" in message and "kernal_size" in message and e.value.message == message


def test_bad_phase_and_missing_weights(tmp_path, memory_net):
    with pytest.raises(caffegrid.InvalidArgumentError):
        caffegrid.Net(str(tmp_path / "net.prototxt"), 7)
    with pytest.raises(caffegrid.IOError, match="missing.caffemodel"):
        memory_net.copy_from(str(tmp_path / "missing.caffemodel"))


def test_weights_of_another_shape(tmp_path, memory_net):
    other = lenet_memory_prototxt().replace("num_output: 500", "num_output: 300")
    (tmp_path / "other.prototxt").write_text(other)
    caffegrid.Net(str(tmp_path / "other.prototxt"), caffegrid.TEST).save(str(tmp_path / "other.caffemodel"))
    with pytest.raises(caffegrid.ShapeError, match="ip1"):
        memory_net.copy_from(str(tmp_path / "other.caffemodel"))


def test_feed_wrong_dtype(memory_net):
    with pytest.raises(caffegrid.DTypeError, match="float32") as e:
        memory_net.feed("data", np.zeros((100, 1, 28, 28)))  # float64
    assert isinstance(e.value, TypeError)
    with pytest.raises(caffegrid.DTypeError):
        memory_net.feed("data", [[0.0]])
    with pytest.raises(caffegrid.DTypeError, match="labels"):
        memory_net.feed("data", np.zeros((100, 1, 28, 28), np.float32), np.array(["a"] * 100))


def test_feed_wrong_shape(memory_net):
    with pytest.raises(caffegrid.ShapeError, match=r"\(N, 1, 28, 28\).*got \(100, 3, 28, 28\)"):
        memory_net.feed("data", np.zeros((100, 3, 28, 28), np.float32))
    with pytest.raises(caffegrid.ShapeError, match="not a positive multiple of batch_size 100"):
        memory_net.feed("data", np.zeros((150, 1, 28, 28), np.float32))  # the C library's check
    with pytest.raises(caffegrid.ShapeError, match="labels"):
        memory_net.feed("data", np.zeros((100, 1, 28, 28), np.float32), np.zeros(99, np.float32))


def test_feed_wrong_layer(memory_net, shared_data):
    with pytest.raises(caffegrid.NotFoundError, match="no layer named 'dta'"):
        memory_net.feed("dta", np.zeros((100, 1, 28, 28), np.float32))
    with pytest.raises(caffegrid.InvalidArgumentError, match="Convolution"):
        memory_net.feed("conv1", np.zeros((100, 1, 28, 28), np.float32))
    deploy = caffegrid.Net(str(shared_data / "caffe_ref" / "bvlc_mnist_prototxt" / "lenet.prototxt"), caffegrid.TEST)
    with pytest.raises(caffegrid.NotFoundError, match="no MemoryData layer"):
        deploy.set_input_arrays(np.zeros((64, 1, 28, 28), np.float32))


def test_forward_before_feed(memory_net):
    with pytest.raises(caffegrid.InvalidArgumentError, match="no data has been fed"):
        memory_net.forward()


def test_forward_input_errors(memory_net):
    with pytest.raises(caffegrid.NotFoundError, match="no blob named 'image'"):
        memory_net.forward(image=np.zeros(3, np.float32))
    with pytest.raises(caffegrid.ShapeError):
        memory_net.forward(data=np.zeros((1, 1, 28, 28), np.float32))


def test_solver_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(caffegrid.IOError, match="nothere.prototxt"):
        caffegrid.Solver("nothere.prototxt")
    write_solver(tmp_path / "s.prototxt", "missing_net.prototxt")
    with pytest.raises(caffegrid.IOError, match="missing_net.prototxt"):
        caffegrid.Solver("s.prototxt")
    (tmp_path / "net.prototxt").write_text(lenet_memory_prototxt())
    write_solver(tmp_path / "t.prototxt", "net.prototxt", type='"Adamm"')
    with pytest.raises(caffegrid.InvalidArgumentError, match="Adamm"):
        caffegrid.Solver("t.prototxt")
    solver = caffegrid.Solver(str(write_solver(tmp_path / "u.prototxt", "net.prototxt")))
    with pytest.raises(caffegrid.InvalidArgumentError, match="no data has been fed"):
        solver.step(1)
    with pytest.raises(caffegrid.Error):
        solver.restore("no.solverstate")


def test_environment_variables_reach_the_library_through_python(monkeypatch, tmp_path):
    """The library reads no environment: the module turns CAFFEGRID_DATA_THREADS into the
    net's options, and a bad value is an error naming the variable, as in the CLI."""
    net = tmp_path / "dummy.prototxt"
    net.write_text('layer { name: "d" type: "DummyData" top: "x" dummy_data_param { shape { dim: 1 dim: 2 } } }\n')
    monkeypatch.setenv("CAFFEGRID_DATA_THREADS", "lots")
    with pytest.raises(caffegrid.InvalidArgumentError, match="CAFFEGRID_DATA_THREADS='lots'"):
        caffegrid.Net(str(net), caffegrid.TEST)
    monkeypatch.setenv("CAFFEGRID_DATA_THREADS", "0")
    assert caffegrid.Net(str(net), caffegrid.TEST).forward()["x"].shape == (1, 2)
