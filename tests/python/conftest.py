# Shared fixtures of the Python API tests: where the data and the CLI are, the
# MNIST t10k LMDB (made once with `caffegrid convert mnist`), Fashion-MNIST as
# NumPy arrays, LeNet prototxts (the repository's example, MemoryData-fed) and PNG files.
import gzip
import os
import pathlib
import struct
import subprocess
import zlib

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLE_NET = ROOT / "examples" / "fashion_mnist" / "lenet_train_test.prototxt"


@pytest.fixture(scope="session")
def shared_data() -> pathlib.Path:
    path = pathlib.Path(os.environ.get("SHARED_DATA", ROOT.parent / "shared" / "data"))
    if not (path / "caffe_ref").is_dir():
        pytest.skip(f"shared test data not found at {path} (set SHARED_DATA)")
    return path


def require_data(shared_data: pathlib.Path, *relative: str) -> None:
    """Skips the calling test unless every file named (relative to the data folder) is here."""
    for rel in relative:
        if not (shared_data / rel).exists():
            pytest.skip(f"needs {shared_data / rel}, which is not here (../shared/data is beside this project's CI only)")


@pytest.fixture(scope="session")
def cli() -> str:
    path = os.environ.get("CAFFEGRID", str(ROOT / os.environ.get("BUILD", "build") / "caffegrid"))
    if not os.access(path, os.X_OK):
        pytest.skip(f"the caffegrid CLI is not built ({path}); run make")
    return path


@pytest.fixture(scope="session")
def mnist_test_lmdb(tmp_path_factory, shared_data, cli) -> pathlib.Path:
    """MNIST t10k as an LMDB, converted by the CLI as the golden CLI test does."""
    db = tmp_path_factory.mktemp("mnist") / "mnist_test_lmdb"
    subprocess.run([cli, "convert", "mnist", str(shared_data / "mnist" / "t10k-images-idx3-ubyte.gz"),
                    str(shared_data / "mnist" / "t10k-labels-idx1-ubyte.gz"), str(db)],
                   check=True, capture_output=True)
    return db


def read_idx(path: pathlib.Path) -> np.ndarray:
    """An idx file (gzip'd): images as uint8 N x 1 x rows x cols, labels as uint8 N."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic, n = struct.unpack(">II", raw[:8])
    if magic == 2051:
        rows, cols = struct.unpack(">II", raw[8:16])
        return np.frombuffer(raw, np.uint8, offset=16).reshape(n, 1, rows, cols)
    if magic == 2049:
        return np.frombuffer(raw, np.uint8, offset=8)
    raise ValueError(f"{path}: not an idx image or label file (magic {magic})")


@pytest.fixture(scope="session")
def mnist_test_arrays(shared_data):
    """MNIST t10k as float32 images scaled by 1/256 (LeNet's transform) and labels."""
    images = read_idx(shared_data / "mnist" / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(shared_data / "mnist" / "t10k-labels-idx1-ubyte.gz")
    return images.astype(np.float32) * np.float32(0.00390625), labels


def lenet_memory_prototxt(train_batch: int = 64, test_batch: int = 100) -> str:
    """examples/fashion_mnist's LeNet with its two Data layers replaced by MemoryData layers named "data"."""
    text = EXAMPLE_NET.read_text()
    body = text[text.index('layer {\n  name: "conv1"'):]
    memory = ('layer {{ name: "data" type: "MemoryData" top: "data" top: "label" include {{ phase: {phase} }}\n'
              '  memory_data_param {{ batch_size: {batch} channels: 1 height: 28 width: 28 }} }}\n')
    return ('name: "LeNet"\n' + memory.format(phase="TRAIN", batch=train_batch)
            + memory.format(phase="TEST", batch=test_batch) + body)


def write_solver(path: pathlib.Path, net: str, **settings) -> pathlib.Path:
    """A solver prototxt with lenet_solver's settings, overridden by `settings`."""
    values = dict(test_iter=100, test_interval=500, base_lr=0.01, momentum=0.9, weight_decay=0.0005,
                  lr_policy='"inv"', gamma=0.0001, power=0.75, display=100, max_iter=500, snapshot=0,
                  snapshot_prefix='"snapshots/lenet"', random_seed=1701)
    values.update(settings)
    lines = [f'net: "{net}"'] + [f"{k}: {v}" for k, v in values.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def lenet_spark_prototxt() -> str:
    """The example LeNet with MemoryData layers that keep its transform_param scale."""
    text = EXAMPLE_NET.read_text()
    body = text[text.index('layer {\n  name: "conv1"'):]
    memory = ('layer {{ name: "data" type: "MemoryData" top: "data" top: "label" include {{ phase: {phase} }}\n'
              '  transform_param {{ scale: 0.00390625 }}\n'
              '  memory_data_param {{ batch_size: {batch} channels: 1 height: 28 width: 28 }} }}\n')
    return 'name: "LeNet"\n' + memory.format(phase="TRAIN", batch=64) + memory.format(phase="TEST", batch=100) + body


def png_bytes(image: np.ndarray) -> bytes:
    """A grey 8-bit image (1 x H x W) as a PNG file (filter 0 rows, zlib-deflated)."""
    _, height, width = image.shape
    raw = b"".join(b"\x00" + image[0, r].tobytes() for r in range(height))

    def chunk(tag, body):
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
