"""CaffeOnSpark's command line on caffegrid: a CaffeOnSpark job runs with only
the jar and class replaced by this script (or ``python -m caffegrid.spark_submit``):

    spark-submit --master spark://host:7077 caffegrid/spark_submit.py \\
        -train -features ip1 -label label -conf lenet_solver.prototxt \\
        -model lenet.caffemodel -output features_dir -outputFormat json -clusterSize 2

As in CaffeOnSpark, the data come from the nets' MemoryData layers:
``memory_data_param { source: "..." }`` of the TRAIN layer for -train, of the
TEST layer for -test and -features, with ``source_class`` naming the kind
(com.yahoo.ml.caffe.LMDB, SeqImageDataSource, ImageDataFrame) or, without it,
the kind found from the path (see caffegrid.spark.source_type).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from typing import Any, List, Optional

from caffegrid._errors import Error, InvalidArgumentError
from caffegrid import _caffegrid, hadoop_fs
from caffegrid import spark_data
from caffegrid.spark import CaffeOnSpark, fetch_solver, memory_data, read_solver

_PREFIXES = {"LMDB": "lmdb:", "SeqImageDataSource": "seqfile:", "ImageDataFrame": None}


def parse_args(argv: List[str]) -> argparse.Namespace:
    """CaffeOnSpark's flags (single dash, as its CLI spells them)."""
    p = argparse.ArgumentParser(prog="spark_submit.py", allow_abbrev=False,
                                description="CaffeOnSpark's command line: train, test and extract features on Spark")
    p.add_argument("-train", action="store_true", help="train the -conf solver's net")
    p.add_argument("-test", action="store_true", help="score the TEST net; writes the scores as JSON to -output")
    p.add_argument("-features", help="comma-separated blobs to extract from the TEST net into -output")
    p.add_argument("-label", help="the blob written as the features' label column")
    p.add_argument("-conf", required=True, help="solver prototxt")
    p.add_argument("-model", help="final weights (written by -train, read by -test/-features otherwise)")
    p.add_argument("-output", help="output directory of -features and -test")
    p.add_argument("-outputFormat", default="json", choices=["json", "parquet", "csv", "libsvm"],
                   help="format of -features output (csv: one column per value; libsvm: -label and the blobs' values)")
    p.add_argument("-clusterSize", type=int, default=None,
                   help="training tasks in the barrier stage (default: spark.executor.instances, else the default "
                        "parallelism)")
    p.add_argument("-persistent", action="store_true",
                   help="keep the data read from Hadoop filesystems on the executors' local disks between stages")
    p.add_argument("-devices", type=int, default=None, help="CaffeOnSpark's GPUs per executor; caffegrid runs on CPUs")
    p.add_argument("-connection", default=None, help="CaffeOnSpark's ethernet|infiniband; caffegrid's tasks use TCP")
    p.add_argument("-snapshot", help="a .solverstate to resume training from (or 'auto': the newest complete one)")
    p.add_argument("-weights", help="comma-separated .caffemodel files to fine-tune from")
    p.add_argument("-resize", action="store_true", help="resize images to the MemoryData layer's height x width")
    args = p.parse_args(argv)
    if not (args.train or args.test or args.features):
        p.error("give at least one of -train, -test, -features")
    if (args.test or args.features) and not args.output:
        p.error("-test and -features need -output")
    if not args.train and not args.model:
        p.error("-test and -features without -train need -model (the weights)")
    if args.outputFormat == "libsvm" and not args.label:
        p.error("-outputFormat libsvm needs -label (its first column)")
    if args.clusterSize is not None and args.clusterSize < 1:
        p.error(f"-clusterSize must be at least 1, got {args.clusterSize}")
    return args


def notes(args: argparse.Namespace) -> List[str]:
    """One line for each CaffeOnSpark flag that means something else here."""
    said = []
    if args.persistent:
        said.append("-persistent: sources on Hadoop filesystems are read once onto the executors' local disks and "
                    "kept for every stage of this job (training, test, features); each training task keeps its rows "
                    "in a local records file for every epoch in any case")
    if args.devices is not None:
        said.append(f"-devices {args.devices}: caffegrid computes on the CPU cores Spark gives each task "
                    "(spark.task.cpus), not on GPUs")
    if args.connection is not None:
        said.append(f"-connection {args.connection}: the tasks exchange gradients over TCP sockets among themselves")
    return said


def cluster_size(spark: Any, args: argparse.Namespace) -> int:
    """-clusterSize, else spark.executor.instances (YARN's --num-executors), else the
    default parallelism, as CaffeOnSpark took it."""
    if args.clusterSize is not None:
        return args.clusterSize
    instances = spark.sparkContext.getConf().get("spark.executor.instances", None)
    return int(instances) if instances else int(spark.sparkContext.defaultParallelism)


def write_features(frame: Any, fmt: str, label: Optional[str], output: str) -> None:
    """CaffeOnSpark's feature outputs: json and parquet as they are; csv with one
    column per value (BLOB_0, BLOB_1, ...); libsvm as the label and all blobs' values."""
    from pyspark.sql import functions as F

    blobs = [c for c in frame.columns if c not in ("SampleID", "label")]
    if fmt == "csv":
        first = frame.select([F.size(b).alias(b) for b in blobs]).first()
        widths = {b: first[b] if first else 0 for b in blobs}
        columns = [F.col("SampleID")] + [F.col(b)[i].alias(f"{b}_{i}") for b in blobs for i in range(widths[b])]
        frame = frame.select(columns + ([F.col("label")] if label else []))
        frame.write.mode("overwrite").option("header", True).csv(output)
    elif fmt == "libsvm":
        from pyspark.ml.functions import array_to_vector

        values = F.concat(*[F.col(b) for b in blobs]) if len(blobs) > 1 else F.col(blobs[0])
        frame.select(F.col("label"), array_to_vector(values).alias("features")).write.mode("overwrite") \
            .format("libsvm").save(output)
    else:
        frame.write.mode("overwrite").format(fmt).save(output)


def memory_data_source(net_text: str, phase: str, conf: str) -> Any:
    """The source named by the net's MemoryData layer for ``phase``: a path with the
    source kind as prefix, or ("dataframe", path) for CaffeOnSpark's ImageDataFrame."""
    info = memory_data(net_text, phase, conf)
    if not info["source"]:
        raise InvalidArgumentError(f"{conf}: the {phase} MemoryData layer has no memory_data_param.source "
                                   "(CaffeOnSpark reads its data from there)")
    path = info["source"]
    if not info["source_class"]:
        return path
    short = info["source_class"].rsplit(".", 1)[-1]
    if short not in _PREFIXES:
        raise InvalidArgumentError(f"{conf}: source_class '{info['source_class']}' of the {phase} MemoryData layer is "
                                   f"not supported (known: {', '.join(_PREFIXES)})")
    prefix = _PREFIXES[short]
    return ("dataframe", path) if prefix is None else prefix + path.removeprefix("file://").removeprefix("file:")


def _source(spark: Any, source: Any) -> Any:
    if isinstance(source, tuple):
        return spark.read.load(source[1])  # ImageDataFrame: a DataFrame file (parquet unless configured)
    return source


def check_paths(spark: Any, args: argparse.Namespace) -> None:
    """Every path of the command line whose scheme no Hadoop filesystem of this Spark
    handles is refused now, before any data move or training starts."""
    for what, value in (("-model", args.model if args.train else None), ("-output", args.output)):
        hadoop_fs.check(spark, value, what)  # written
    for what, value in (("-conf", args.conf), ("-model", None if args.train else args.model),
                        ("-snapshot", None if args.snapshot == "auto" else args.snapshot)):
        hadoop_fs.require(spark, value, what)  # read
    for part in (args.weights or "").split(","):
        hadoop_fs.require(spark, part, "-weights")


def run(spark: Any, args: argparse.Namespace) -> None:
    check_paths(spark, args)
    for line in notes(args):
        print(f"caffegrid: {line}", file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="caffegrid-submit-") as workdir:
        conf, names = fetch_solver(spark, args.conf, workdir)
        with spark_data.user_terms(workdir, names):
            _run(spark, args, conf)


def _run(spark: Any, args: argparse.Namespace, conf: str) -> None:
    _, net_text = read_solver(conf)
    cos = CaffeOnSpark(spark, resize=args.resize, persistent=args.persistent)
    if args.train:
        size = cluster_size(spark, args)
        train = _source(spark, memory_data_source(net_text, "TRAIN", args.conf))
        cos.train(train, conf, model=args.model, cluster_size=size, snapshot=args.snapshot, weights=args.weights)
        print(f"caffegrid: trained on {size} task(s); final model "
              f"{args.model or '(not written: no -model)'}", file=sys.stderr)
    net_file = _net_file(conf)
    model = None if args.train else args.model
    if args.test or args.features:
        test = _source(spark, memory_data_source(net_text, "TEST", args.conf))
    if args.test:
        scores = cos.test(test, net=net_file if model else None, model=model)
        if not hadoop_fs.scheme_of(args.output):
            os.makedirs(args.output, exist_ok=True)
        hadoop_fs.write_text(spark, args.output.rstrip("/") + "/test_result.json", json.dumps(scores), "-output")
        print(f"caffegrid test: {scores}", file=sys.stderr)
    if args.features:
        blobs = [b for b in args.features.split(",") if b]
        frame = cos.features(test, blobs, label=args.label, net=net_file if model else None, model=model)
        write_features(frame, args.outputFormat, args.label, args.output)


def _net_file(conf: str) -> str:
    return _caffegrid.solver_net(conf, 1)


def main(argv: Optional[List[str]] = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName("caffegrid").getOrCreate()
    try:
        run(spark, args)
    except (Error, OSError) as e:
        print(f"caffegrid: {e}", file=sys.stderr)
        return 1
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
