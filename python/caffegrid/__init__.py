"""caffegrid: Caffe's nets and solvers from Python, over the caffegrid C library
(a C11 reimplementation of BVLC Caffe). The API follows pycaffe:

    import caffegrid
    net = caffegrid.Net("lenet.prototxt", caffegrid.TEST, weights="lenet.caffemodel")
    net.blobs["data"].data[...] = images            # float32 N x 1 x 28 x 28, no copy
    prob = net.forward()["prob"]

    solver = caffegrid.Solver("lenet_solver.prototxt")
    solver.net.feed("data", train_images, train_labels)   # MemoryData layers
    solver.step(500)
    solver.net.save("lenet.caffemodel")

Errors from the library raise caffegrid.Error subclasses with its message.
Like the `caffegrid` CLI, the library's own OpenMP loops run on as many threads
as its math (OPENBLAS_NUM_THREADS, else every core) unless OMP_NUM_THREADS is
set; results are bit-identical to the CLI's (set_num_threads changes speed only).
set_math_threads(n) sets the math's own count (convolutions, gemms) for nets built
afterwards, as `caffegrid train` gives each MPI rank its share of the cores; Spark
tasks take the cores Spark gives them (spark.task.cpus).
"""

from ._errors import (BusyError, CommError, CorruptDataError, DTypeError, Error, InvalidArgumentError, NonFiniteError,  # noqa: F401
                      IOError, NotFoundError, OutOfMemoryError, ParseError, ShapeError, UnsupportedError)
from ._caffegrid import get_math_threads, get_num_threads, set_log_quiet, set_math_threads, set_num_threads  # noqa: F401
from .comm import Communicator, TcpListener  # noqa: F401
from .net import TEST, TRAIN, Blob, Layer, Net  # noqa: F401
from .solver import Solver, get_solver  # noqa: F401

__version__ = "0.1.0"


def set_mode_cpu() -> None:
    """Does nothing: caffegrid runs on the CPU. Here so pycaffe scripts run unchanged."""


# IOError is left out of `from caffegrid import *` so it never hides the built-in name.
__all__ = ["Net", "Blob", "Layer", "Solver", "get_solver", "TcpListener", "Communicator", "TRAIN", "TEST", "Error", "ParseError", "InvalidArgumentError",
           "ShapeError", "OutOfMemoryError", "UnsupportedError", "NotFoundError", "CorruptDataError", "CommError", "NonFiniteError",
           "DTypeError", "BusyError", "set_log_quiet", "set_num_threads", "get_num_threads", "set_math_threads", "get_math_threads",
           "set_mode_cpu"]
