# Golden test through the Python API: BVLC Caffe's trained LeNet weights scored
# over MNIST t10k (100 batches of 100) give the accuracy and loss Caffe printed,
# and exactly what `caffegrid test` prints for the same files.
import re
import subprocess

import numpy as np
import pytest

import caffegrid
from conftest import require_data

# model directory under caffe_ref, accuracy and loss from BVLC Caffe (shared/data/SOURCES.md)
REFERENCE = [("lenet_nandahkrishna", 0.9905, 0.0297565), ("lenet_yuvval", 0.9833, 0.0528099)]


def link_lmdb(workdir, db):
    """Both prototxts name their source relatively: mnist_test_lmdb or examples/mnist/mnist_test_lmdb."""
    (workdir / "mnist_test_lmdb").symlink_to(db)
    (workdir / "examples" / "mnist").mkdir(parents=True)
    (workdir / "examples" / "mnist" / "mnist_test_lmdb").symlink_to(db)


@pytest.mark.parametrize("model,want_accuracy,want_loss", REFERENCE)
def test_lenet_accuracy_matches_caffe_and_cli(tmp_path, monkeypatch, shared_data, cli, mnist_test_lmdb, model,
                                              want_accuracy, want_loss):
    require_data(shared_data, f"caffe_ref/{model}/lenet_iter_10000.caffemodel")
    link_lmdb(tmp_path, mnist_test_lmdb)
    monkeypatch.chdir(tmp_path)
    prototxt = shared_data / "caffe_ref" / model / "lenet_train_test.prototxt"
    weights = shared_data / "caffe_ref" / model / "lenet_iter_10000.caffemodel"

    net = caffegrid.Net(str(prototxt), caffegrid.TEST, weights=str(weights))
    assert net.outputs == ["accuracy", "loss"]
    accuracy = loss = 0.0
    for _ in range(100):
        out = net.forward()
        accuracy += float(out["accuracy"])
        loss += float(out["loss"])
    accuracy, loss = accuracy / 100, loss / 100
    assert abs(accuracy - want_accuracy) < 5e-5
    assert abs(loss - want_loss) < 5e-5

    log = subprocess.run([cli, "test", "-model", str(prototxt), "-weights", str(weights), "-iterations", "100"],
                         capture_output=True, text=True, check=True).stderr
    cli_accuracy = re.findall(r"\] accuracy = (\S+)$", log, re.M)[-1]
    cli_loss = re.findall(r"\] loss = (\S+) \(\* 1 = ", log, re.M)[-1]
    assert f"{accuracy:g}" == cli_accuracy
    assert f"{loss:g}" == cli_loss


def test_deploy_net_from_numpy(shared_data, mnist_test_arrays):
    """Caffe's deploy LeNet (Input layer) fed through net.blobs["data"].data: the same predictions."""
    images, labels = mnist_test_arrays
    net = caffegrid.Net(str(shared_data / "caffe_ref" / "bvlc_mnist_prototxt" / "lenet.prototxt"), caffegrid.TEST,
                        weights=str(shared_data / "caffe_ref" / "lenet_nandahkrishna" / "lenet_iter_10000.caffemodel"))
    correct = 0
    for start in range(0, 1024, 64):
        prob = net.forward(data=images[start:start + 64])["prob"]
        correct += int((prob.argmax(axis=1) == labels[start:start + 64]).sum())
    assert correct / 1024 > 0.98
