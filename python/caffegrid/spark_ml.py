"""Caffe in pyspark.ml pipelines: ``CaffeEstimator`` trains a solver's net on a
DataFrame (CaffeOnSpark.train) and returns a ``CaffeModel``, a Transformer that
adds the listed blobs of the TEST net, concatenated, as an ML ``Vector`` column
and keeps every input column. Both are MLWritable/MLReadable (the model's net and
weights are saved with it), so a Pipeline holding them fits, saves and loads:

    Pipeline(stages=[CaffeEstimator(solver="lenet_memory_solver.prototxt", clusterSize=2,
                                    featureBlobs=["ip1"], outputCol="features"),
                     LogisticRegression(featuresCol="features")])

Import them from ``caffegrid.spark``.
"""

from __future__ import annotations

from typing import Any, List, Optional

from pyspark import keyword_only
from pyspark.ml import Estimator, Model
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.util import (DefaultParamsReadable, DefaultParamsReader, DefaultParamsWritable, DefaultParamsWriter,
                             MLReadable, MLReader, MLWritable, MLWriter)

from ._errors import InvalidArgumentError
from .spark import CaffeOnSpark
from .spark_data import OPTIONAL_COLUMNS


class _CaffeParams(Params):
    """The Params CaffeEstimator and CaffeModel share."""

    solver = Param(Params._dummy(), "solver", "the solver prototxt; its net reads MemoryData layers",
                   TypeConverters.toString)
    clusterSize = Param(Params._dummy(), "clusterSize", "training tasks in the barrier stage", TypeConverters.toInt)
    iterations = Param(Params._dummy(), "iterations", "iterations to train (default: the solver's max_iter)",
                       TypeConverters.toInt)
    idCol = Param(Params._dummy(), "idCol", "column of unique, sortable row ids", TypeConverters.toString)
    labelCol = Param(Params._dummy(), "labelCol", "column of labels", TypeConverters.toString)
    inputCol = Param(Params._dummy(), "inputCol", "column of raw pixels, float values or encoded images",
                     TypeConverters.toString)
    featureBlobs = Param(Params._dummy(), "featureBlobs", "blobs of the TEST net whose values form outputCol",
                         TypeConverters.toListString)
    outputCol = Param(Params._dummy(), "outputCol", "the Vector column the model adds", TypeConverters.toString)
    weights = Param(Params._dummy(), "weights", ".caffemodel files to fine-tune from (comma-separated)",
                    TypeConverters.toString)
    snapshot = Param(Params._dummy(), "snapshot", "a .solverstate to resume from, or 'auto'", TypeConverters.toString)

    def __init__(self) -> None:
        super().__init__()
        self._setDefault(clusterSize=1, idCol="id", labelCol="label", inputCol="data", outputCol="features")

    def _rows(self, dataset: Any) -> Any:
        """``dataset`` with CaffeOnSpark's ImageDataFrame columns: id, label, data (+ optional)."""
        from pyspark.sql import functions as F

        for name in ("idCol", "inputCol"):
            if self.getOrDefault(name) not in dataset.columns:
                raise InvalidArgumentError(f"caffegrid.spark: {name} '{self.getOrDefault(name)}' is no column of the "
                                           f"DataFrame (it has {dataset.columns})")
        label = self.getOrDefault("labelCol")
        columns = [F.col(self.getOrDefault("idCol")).alias("id"),
                   F.col(label).cast("double").alias("label") if label in dataset.columns else F.lit(0.0).alias("label"),
                   F.col(self.getOrDefault("inputCol")).alias("data")]
        return dataset.select(columns + [F.col(c) for c in OPTIONAL_COLUMNS if c in dataset.columns])


class CaffeEstimator(Estimator, _CaffeParams, DefaultParamsReadable, DefaultParamsWritable):
    """Trains ``solver``'s net on a DataFrame in a barrier stage of ``clusterSize``
    tasks (CaffeOnSpark.train) and returns a CaffeModel with the trained weights."""

    @keyword_only
    def __init__(self, *, solver: Optional[str] = None, clusterSize: int = 1, iterations: Optional[int] = None,
                 idCol: str = "id", labelCol: str = "label", inputCol: str = "data",
                 featureBlobs: Optional[List[str]] = None, outputCol: str = "features", weights: Optional[str] = None,
                 snapshot: Optional[str] = None) -> None:
        super().__init__()
        self._set(**{k: v for k, v in self._input_kwargs.items() if v is not None})

    def _fit(self, dataset: Any) -> "CaffeModel":
        if not self.isDefined(self.solver):
            raise InvalidArgumentError("caffegrid.spark: CaffeEstimator needs solver=")
        if not self.isDefined(self.featureBlobs):
            raise InvalidArgumentError("caffegrid.spark: CaffeEstimator needs featureBlobs= (the blobs its model adds)")
        cos = CaffeOnSpark(dataset.sparkSession)
        get = self.getOrDefault
        cos.train(self._rows(dataset), get("solver"), cluster_size=get("clusterSize"),
                  iterations=get("iterations") if self.isDefined(self.iterations) else None,
                  snapshot=get("snapshot") if self.isDefined(self.snapshot) else None,
                  weights=get("weights") if self.isDefined(self.weights) else None)
        model = CaffeModel()
        model._trained(cos.net_text, cos.model, cos.net_name)
        return self._copyValues(model)



class CaffeModel(Model, _CaffeParams, MLReadable, MLWritable):
    """Adds ``outputCol``: the TEST net's ``featureBlobs`` for each row, concatenated
    into an ML Vector, computed in the tasks (CaffeOnSpark.features) and joined back
    on ``idCol``; every input column is kept."""

    def __init__(self) -> None:
        super().__init__()
        self.net_text: Optional[str] = None
        self.model: Optional[bytes] = None
        self.net_name = "net"

    def _trained(self, net_text: Optional[str], model: Optional[bytes], net_name: str) -> None:
        self.net_text, self.model, self.net_name = net_text, model, net_name

    def _transform(self, dataset: Any) -> Any:
        from pyspark.ml.functions import array_to_vector
        from pyspark.sql import functions as F

        if self.net_text is None or self.model is None:
            raise InvalidArgumentError("caffegrid.spark: this CaffeModel holds no trained net")
        blobs = list(self.getOrDefault("featureBlobs"))
        out, key = self.getOrDefault("outputCol"), self.getOrDefault("idCol")
        if out in dataset.columns:
            raise InvalidArgumentError(f"caffegrid.spark: outputCol '{out}' is already a column of the DataFrame")
        cos = CaffeOnSpark(dataset.sparkSession)
        cos.net_text, cos.model, cos.net_name = self.net_text, self.model, self.net_name
        feats = cos.features(self._rows(dataset), blobs)
        values = F.concat(*[F.col(b) for b in blobs]) if len(blobs) > 1 else F.col(blobs[0])
        feats = feats.select(F.col("SampleID").alias(key), array_to_vector(values).alias(out))
        return dataset.join(feats, on=key, how="left")

    def export_onnx(self, path: str, opset: Optional[int] = None, fixed_batch: bool = False) -> Any:
        """The trained TEST net as an ONNX model (docs/onnx.md); the graph's output names."""
        cos = CaffeOnSpark(None)
        cos.net_text, cos.model, cos.net_name = self.net_text, self.model, self.net_name
        return cos.export_onnx(path, opset=opset, fixed_batch=fixed_batch)

    def write(self) -> MLWriter:
        return _CaffeModelWriter(self)

    @classmethod
    def read(cls) -> MLReader:
        return _CaffeModelReader(cls)


class _CaffeModelWriter(MLWriter):
    """Params as pyspark's metadata; the net and weights as one parquet row, written
    through Spark, so any Hadoop filesystem Spark reaches can hold the model."""

    def __init__(self, instance: CaffeModel) -> None:
        super().__init__()
        self.instance = instance

    def saveImpl(self, path: str) -> None:
        DefaultParamsWriter.saveMetadata(self.instance, path, self.sc, extraMetadata={"netName": self.instance.net_name})
        row = [(self.instance.net_text, bytearray(self.instance.model or b""))]
        self.sparkSession.createDataFrame(row, "net string, model binary").coalesce(1).write.parquet(path + "/data")


class _CaffeModelReader(MLReader):
    def __init__(self, cls: type) -> None:
        super().__init__()
        self.cls = cls

    def load(self, path: str) -> CaffeModel:
        metadata = DefaultParamsReader.loadMetadata(path, self.sc)
        model = self.cls()
        DefaultParamsReader.getAndSetParams(model, metadata)
        row = self.sparkSession.read.parquet(path + "/data").first()
        model._trained(row.net, bytes(row.model), metadata.get("netName", "net"))
        model._resetUid(metadata["uid"])
        return model
