"""caffegrid.Net and caffegrid.Blob: a net built from a prototxt and its arrays,
shaped like pycaffe's caffe.Net / caffe.Blob, over the C library's nets. Blob
arrays are NumPy views of the C memory (no copies)."""

from __future__ import annotations

import os
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from . import _caffegrid
from ._errors import InvalidArgumentError, NotFoundError, ShapeError

TRAIN = 0
"""Phase of a net built for training (Caffe's TRAIN)."""
TEST = 1
"""Phase of a net built for testing or deployment (Caffe's TEST)."""

PathLike = Union[str, bytes, "os.PathLike[str]"]


class Blob:
    """One blob of a net: activations (``net.blobs[name]``) or learnable
    parameters (``net.params[layer][i]``).

    ``data`` and ``diff`` are float32 NumPy views of the net's own memory, not
    copies: writing into them changes what the net computes, and they see every
    update the net makes. Each view keeps the net alive. Fetch ``.data`` again
    after anything reshapes the blob (a forward pass with a bigger input, or
    ``reshape``): older views keep pointing at the memory the blob had before.
    """

    __slots__ = ("_handle", "_index", "_layer", "name")

    def __init__(self, handle: _caffegrid.NetHandle, name: str, index: int, layer: Optional[int] = None):
        self._handle = handle
        self._index = index  # blob index, or parameter index within `layer`
        self._layer = layer  # None: an activation blob
        self.name = name

    @property
    def data(self) -> np.ndarray:
        """The values, as a float32 view of the C memory (shape = ``self.shape``)."""
        if self._layer is None:
            return self._handle.blob_array(self._index, False)
        return self._handle.param_array(self._layer, self._index, False)

    @property
    def diff(self) -> np.ndarray:
        """The gradients, as a float32 view of the C memory (shape = ``self.shape``)."""
        if self._layer is None:
            return self._handle.blob_array(self._index, True)
        return self._handle.param_array(self._layer, self._index, True)

    @property
    def shape(self) -> Tuple[int, ...]:
        """The blob's shape now."""
        if self._layer is None:
            return self._handle.blob_shape(self._index)
        return self._handle.param_shape(self._layer, self._index)

    @property
    def count(self) -> int:
        """Number of elements."""
        return int(np.prod(self.shape, dtype=np.int64))

    def _legacy(self, axis: int) -> int:
        shape = self.shape
        return shape[axis] if axis < len(shape) else 1

    num = property(lambda self: self._legacy(0), doc="Caffe's legacy num (axis 0; 1 when missing).")
    channels = property(lambda self: self._legacy(1), doc="Caffe's legacy channels (axis 1; 1 when missing).")
    height = property(lambda self: self._legacy(2), doc="Caffe's legacy height (axis 2; 1 when missing).")
    width = property(lambda self: self._legacy(3), doc="Caffe's legacy width (axis 3; 1 when missing).")

    def reshape(self, *shape: int) -> None:
        """Gives an input blob a new shape (``blob.reshape(10, 1, 28, 28)``); the
        next forward pass reshapes the layers after it. Views fetched before are stale."""
        if self._layer is not None:
            raise InvalidArgumentError(f"parameter blob of layer #{self._layer} cannot be reshaped")
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        self._handle.blob_reshape(self._index, [int(d) for d in shape])

    def __repr__(self) -> str:
        return f"<caffegrid.Blob {self.name!r} shape={self.shape}>"


class Layer:
    """One layer of a net, as pycaffe's ``net.layers[i]``: its ``name``, ``type``
    ("Convolution", ...) and learnable ``blobs`` (weights, bias, ...)."""

    __slots__ = ("name", "type", "blobs")

    def __init__(self, name: str, type_: str, blobs: List[Blob]):
        self.name = name
        self.type = type_
        self.blobs = blobs

    def __repr__(self) -> str:
        return f"<caffegrid.Layer {self.name!r} ({self.type}), {len(self.blobs)} blobs>"


class Net:
    """A Caffe net built from a prototxt for one phase, as pycaffe's ``caffe.Net``.

    >>> net = caffegrid.Net("lenet.prototxt", caffegrid.TEST, weights="lenet.caffemodel")
    >>> net.blobs["data"].data[...] = images          # N x 1 x 28 x 28 float32
    >>> probabilities = net.forward()["prob"]

    Args:
        prototxt: the net's text prototxt (old Caffe formats are upgraded).
        phase: ``caffegrid.TRAIN`` or ``caffegrid.TEST``. pycaffe's older
            ``Net(prototxt, weights, phase)`` order is accepted too.
        weights: a ``.caffemodel`` to copy weights from (layers matched by name).
        level, stages: the NetState that include/exclude rules test.
        seed: seed of the fillers and of random layers (dropout).
        rank, world_size: this process's share of a data source (records
            rank, rank + world_size, ...), as data-parallel ranks share one.
        exact_pass: data layers read each of this rank's records once, in order
            (scoring, features); the last batch is filled by wrapping around.
        skip_bad_records: skip and count records that cannot be read (None:
            as CAFFEGRID_SKIP_BAD_RECORDS says).
        data_threads: prefetch threads per data layer, 0 to read in forward
            (None: as CAFFEGRID_DATA_THREADS says; default 1).

    Attributes:
        blobs: ordered ``{name: Blob}`` of every activation blob, in net order.
        params: ordered ``{layer name: [Blob, ...]}`` of learnable parameters.
        layers: every layer (``.name``, ``.type``, ``.blobs``), in forward order.
        inputs: names of the net's input blobs (the tops of its Input layers).
        outputs: names of the net's output blobs (tops no layer consumes).
        top_names, bottom_names: ordered ``{layer name: [blob name, ...]}``.
        loss: the weighted loss of the last forward pass.

    As in pycaffe, a layer name given to ``forward``/``backward`` as ``start`` or
    ``end`` means the first layer of that name.

    Errors raise ``caffegrid.Error`` subclasses carrying the C library's message
    (``IOError`` for a missing file, ``ParseError`` for a bad prototxt...).
    Calls on one net must not overlap across threads (``BusyError``);
    forward, backward and file I/O release the GIL.
    """

    def __init__(self, prototxt: PathLike, phase: Union[int, PathLike] = TEST, weights: Optional[PathLike] = None, *,
                 level: int = 0, stages: Sequence[str] = (), seed: int = 0, rank: int = 0, world_size: int = 1,
                 exact_pass: bool = False, skip_bad_records: Optional[bool] = None,
                 data_threads: Optional[int] = None):
        if isinstance(phase, (str, bytes, os.PathLike)):  # pycaffe's Net(prototxt, weights, phase)
            phase, weights = (TEST if weights is None else weights), phase
        if phase not in (TRAIN, TEST) or isinstance(phase, bool):
            raise InvalidArgumentError(f"phase must be caffegrid.TRAIN or caffegrid.TEST, got {phase!r}")
        self._attach(_caffegrid.NetHandle(prototxt, int(phase), level, tuple(stages), seed, rank, world_size,
                                          exact_pass, skip_bad_records,
                                          -2 if data_threads is None else int(data_threads)), None)
        self.phase = int(phase)
        if weights is not None:
            self.copy_from(weights)

    @classmethod
    def _borrow(cls, handle: _caffegrid.NetHandle, owner: Any, phase: int) -> "Net":
        """A Net over a net another object (a Solver) owns; it keeps `owner` alive."""
        net = cls.__new__(cls)
        net._attach(handle, owner)
        net.phase = phase
        return net

    def _attach(self, handle: _caffegrid.NetHandle, owner: Any) -> None:
        self._h = handle
        self._owner = owner
        self._blob_names = handle.blob_names()
        self._blob_index = {name: i for i, name in enumerate(self._blob_names)}
        self._outputs = handle.output_names()
        self._layer_names = handle.layer_names()
        self._layer_tops = handle.layer_blob_ids(True)
        self._layer_bottoms = handle.layer_blob_ids(False)
        self._blobs: Optional["OrderedDict[str, Blob]"] = None
        self._params: Optional["OrderedDict[str, List[Blob]]"] = None
        self._layers: Optional[List[Layer]] = None
        self.loss = float("nan")

    @property
    def name(self) -> str:
        """The net's name (the prototxt's ``name:``)."""
        return self._h.name

    @property
    def blobs(self) -> "OrderedDict[str, Blob]":
        """Ordered ``{name: Blob}`` of the activation blobs (including inserted splits)."""
        if self._blobs is None:
            self._blobs = OrderedDict((n, Blob(self._h, n, i)) for i, n in enumerate(self._blob_names))
        return self._blobs

    @property
    def params(self) -> "OrderedDict[str, List[Blob]]":
        """Ordered ``{layer name: [weights, bias, ...]}`` for layers with learnable parameters."""
        if self._params is None:
            counts = self._h.layer_param_counts()
            self._params = OrderedDict(
                (name, [Blob(self._h, f"{name}[{j}]", j, layer) for j in range(n)])
                for layer, (name, n) in enumerate(zip(self._layer_names, counts)) if n)
        return self._params

    @property
    def outputs(self) -> List[str]:
        """Names of the output blobs, in order."""
        return list(self._outputs)

    @property
    def inputs(self) -> List[str]:
        """Names of the input blobs: the tops of the net's Input layers, as Caffe counts them."""
        types = self._h.layer_types()
        return [self._blob_names[b] for i, tops in enumerate(self._layer_tops) if types[i] == "Input" for b in tops]

    @property
    def layer_names(self) -> List[str]:
        """Every layer's name, in forward order (inserted split layers included)."""
        return list(self._layer_names)

    @property
    def layers(self) -> List[Layer]:
        """Every layer, in forward order, with its ``type`` and learnable ``blobs``."""
        if self._layers is None:
            counts, types = self._h.layer_param_counts(), self._h.layer_types()
            self._layers = [Layer(name, types[i], [Blob(self._h, f"{name}[{j}]", j, i) for j in range(counts[i])])
                            for i, name in enumerate(self._layer_names)]
        return self._layers

    def _names_by_layer(self, ids: Tuple[Tuple[int, ...], ...]) -> "OrderedDict[str, List[str]]":
        # pycaffe's dict: a repeated layer name keeps its first place and the last layer's blobs
        return OrderedDict((name, [self._blob_names[b] for b in ids[i]]) for i, name in enumerate(self._layer_names))

    @property
    def top_names(self) -> "OrderedDict[str, List[str]]":
        """Ordered ``{layer name: [top blob names]}``, as pycaffe's."""
        return self._names_by_layer(self._layer_tops)

    @property
    def bottom_names(self) -> "OrderedDict[str, List[str]]":
        """Ordered ``{layer name: [bottom blob names]}``, as pycaffe's."""
        return self._names_by_layer(self._layer_bottoms)

    def _layer_id(self, name: str) -> int:
        try:
            return self._layer_names.index(name)  # the first layer of that name, as pycaffe
        except ValueError:
            raise NotFoundError(f"net '{self.name}' has no layer named '{name}'") from None

    def reshape(self) -> None:
        """Reshapes every layer to its inputs' shapes (after ``blobs[...].reshape``),
        without computing: later blobs get their new shapes now."""
        self._h.reshape()

    @property
    def layer_types(self) -> List[str]:
        """Every layer's type ("Convolution", ...), in forward order."""
        return list(self._h.layer_types())

    def _blob_id(self, name: str) -> int:
        try:
            return self._blob_index[name]
        except KeyError:
            raise NotFoundError(f"net '{self.name}' has no blob named '{name}'") from None

    def forward(self, blobs: Optional[Sequence[str]] = None, start: Optional[str] = None, end: Optional[str] = None,
                **inputs: np.ndarray) -> Dict[str, np.ndarray]:
        """Runs the net forward and returns ``{output name: array}``.

        Keyword arguments copy arrays into blobs first (``net.forward(data=batch)``;
        shapes must match). ``blobs`` names more blobs to return besides the
        outputs. ``start`` and ``end`` are layer names (pycaffe's): only the layers
        from ``start`` to ``end`` run, and with ``end`` the tops of that layer are
        returned instead of the outputs. The arrays returned are views of the net's
        blobs (no copies): the next forward pass overwrites them, so copy what you keep.
        """
        for name, value in inputs.items():
            target = self._h.blob_array(self._blob_id(name), False)
            if np.shape(value) != target.shape:
                raise ShapeError(f"forward: input '{name}' has shape {np.shape(value)} but the blob is "
                                 f"{target.shape}; reshape the blob first (net.blobs['{name}'].reshape(...))")
            target[...] = value
        first = 0 if start is None else self._layer_id(start)
        last = len(self._layer_names) - 1 if end is None else self._layer_id(end)
        self.loss = self._h.forward(first, last)
        shown = self._outputs if end is None else tuple(self._blob_names[b] for b in self._layer_tops[last])
        names = list(OrderedDict.fromkeys(tuple(shown) + tuple(blobs or ())))
        array, index = self._h.blob_array, self._blob_id
        return {name: array(index(name), False) for name in names}

    def backward(self, diffs: Optional[Sequence[str]] = None, start: Optional[str] = None, end: Optional[str] = None,
                 **top_diffs: np.ndarray) -> Dict[str, np.ndarray]:
        """Runs the net backward, as pycaffe's ``Net.backward``, and returns
        ``{name: diff view}`` for the net's inputs (or, with ``end``, that layer's
        bottoms) and the blobs named in ``diffs``.

        ``start`` and ``end`` are layer names: backward runs from ``start`` (default
        the last layer) down to ``end`` (default the first). Keyword arguments copy
        arrays into the diffs of output blobs first (loss outputs get their loss
        weight, as in Caffe). Parameter gradients ACCUMULATE into
        ``params[...].diff`` (call ``clear_param_diffs`` between iterations, as the
        solver does)."""
        for name, value in top_diffs.items():
            target = self._h.blob_array(self._blob_id(name), True)
            if np.shape(value) != target.shape:
                raise ShapeError(f"backward: diff '{name}' has shape {np.shape(value)} but the blob is {target.shape}")
            target[...] = value
        first = len(self._layer_names) - 1 if start is None else self._layer_id(start)
        last = 0 if end is None else self._layer_id(end)
        self._h.backward(first, last)
        shown = self.inputs if end is None else [self._blob_names[b] for b in self._layer_bottoms[last]]
        names = list(OrderedDict.fromkeys(list(shown) + list(diffs or ())))
        return {name: self._h.blob_array(self._blob_id(name), True) for name in names}

    def clear_param_diffs(self) -> None:
        """Zeroes every parameter gradient."""
        self._h.clear_param_diffs()

    def feed(self, layer: Optional[str], data: np.ndarray, labels: Any = None) -> None:
        """Hands samples to a MemoryData layer, without copying them.

        Args:
            layer: the MemoryData layer's name, or None for the net's first one.
            data: a C-contiguous float32 array N x C x H x W, with C, H, W as the
                layer's memory_data_param says and N a multiple of its batch_size.
                (A strided array is copied once.) Scale it yourself: MemoryData
                applies no transform_param.
            labels: N labels (float32, or integers converted once), or None for 0.

        Forward passes then read batch_size samples at a time, cycling. The net
        keeps a reference to the arrays until the next feed of this layer, so
        changing them in place changes what later batches see.
        Raises DTypeError (not float32), ShapeError (wrong shape, N not a
        multiple of batch_size), NotFoundError / InvalidArgumentError (no such
        MemoryData layer).
        """
        self._h.feed(layer, data, labels)

    def batch_ids(self) -> List[Tuple[str, bool]]:
        """(id, valid) of every record in the batch a source-fed data layer read
        last; valid is False for the repeats that fill an exact pass's last batch."""
        return list(self._h.batch_ids())

    def feed_source(self, layer: Optional[str], source_type: str, location: PathLike, rank_share: bool = False,
                    resize: bool = False) -> None:
        """Makes a MemoryData layer read its batches from a data source, as a Data
        layer reads its database: the layer's transform_param (mean_file or
        mean_value, crop_size, mirror, scale, force_color/force_gray) is applied in
        C to every record in prefetch threads, with random crops and mirrors in
        TRAIN and centred crops in TEST, and the read position is saved in snapshots.

        Args:
            layer: the MemoryData layer's name, or None for the net's first one.
            source_type: "records" (a file written by RecordsWriter), "lmdb",
                "image_list", "seqfile" or "hdf5".
            location: its path.
            rank_share: the source holds only this rank's share of the records
                (records r, r+W, ...); otherwise ranks share it.
            resize: decoded images are resized to memory_data_param's height x
                width first (CaffeOnSpark's -resize).

        The records must come out of the transform in the layer's top shape:
        memory_data_param's channels x height x width, or crop_size square when
        transform_param crops (ShapeError names both shapes otherwise).
        """
        self._h.feed_source(layer, source_type, location, rank_share, resize)

    def set_input_arrays(self, data: np.ndarray, labels: Any = None) -> None:
        """pycaffe's name: feeds the net's first MemoryData layer (see ``feed``)."""
        self._h.feed(None, data, labels)

    def feed_shape(self, layer: Optional[str] = None) -> Tuple[int, int, int, int]:
        """(batch_size, channels, height, width) of a MemoryData layer (None: the first)."""
        return self._h.feed_shape(layer)

    def copy_from(self, weights: PathLike) -> None:
        """Copies weights from a ``.caffemodel`` into the layers of the same name
        (shapes must match: ShapeError names the layer and both shapes)."""
        self._h.load_weights(weights)

    def save(self, path: PathLike) -> None:
        """Writes the weights as a ``.caffemodel`` BVLC Caffe can load (atomically)."""
        self._h.save_weights(path)

    def to_onnx(self, path: PathLike, opset: Optional[int] = None, fixed_batch: bool = False) -> Tuple[str, ...]:
        """Writes this net (built in the TEST phase, weights loaded) as an ONNX model
        that computes what it computes, and returns the graph's output names (the
        blobs no exported layer reads). Data layers become inputs named after their
        data blob, with the batch dimension symbolic unless ``fixed_batch``; losses,
        Accuracy and Silence are left out. A layer without a faithful ONNX form
        raises ``UnsupportedError`` naming it (docs/onnx.md has the mapping)."""
        return self._h.to_onnx(path, 0 if opset is None else int(opset), bool(fixed_batch))

    def set_profiling(self, on: bool = True) -> None:
        """Starts (or stops) timing each layer; read the sums with ``layer_times``."""
        self._h.set_profiling(on)

    def layer_times(self) -> List[Tuple[str, float, float]]:
        """``[(layer name, forward ms, backward ms), ...]`` for every layer in forward
        order (repeated names included), summed since profiling was switched on."""
        return [(name, f, b) for name, (f, b) in zip(self._layer_names, self._h.layer_times())]

    def __repr__(self) -> str:
        return f"<caffegrid.Net {self.name!r}: {len(self._layer_names)} layers, outputs {list(self._outputs)}>"
