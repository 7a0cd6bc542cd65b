#!/usr/bin/env python3
# Files through Spark's Hadoop FileSystem on the driver (caffegrid.hadoop_fs: how
# models, snapshot sets and fetched weights reach Hadoop filesystems): the JVM
# copying a local file (what hadoop_fs does) against the bytes passed through
# Py4J (what it did before), in the same run, on file:// URIs.
"""Usage: python3 bench/hadoop_transfer.py [--mib N] [--rounds R]

Needs the caffegrid package importable (PYTHONPATH=build/python) and pyspark.
Prints MiB/s of write and read for both routes (best of R) and their ratios.
"""

import argparse
import os
import tempfile
import time


def py4j_write(spark, path, data):
    jvm = spark.sparkContext._jvm
    p = jvm.org.apache.hadoop.fs.Path(path)
    out = p.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).create(p, True)
    try:
        out.write(bytearray(data))
    finally:
        out.close()


def py4j_read(spark, path):
    jvm = spark.sparkContext._jvm
    p = jvm.org.apache.hadoop.fs.Path(path)
    stream = p.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()).open(p)
    try:
        return bytes(jvm.org.apache.commons.io.IOUtils.toByteArray(stream))
    finally:
        stream.close()


def best(rounds, action):
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return min(times)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from pyspark.sql import SparkSession

    from caffegrid import hadoop_fs

    spark = (SparkSession.builder.master("local[1]").config("spark.ui.enabled", "false")
             .config("spark.driver.memory", "2g").getOrCreate())
    data = os.urandom(args.mib << 20)
    with tempfile.TemporaryDirectory() as folder:
        uri = f"file://{folder}/blob"
        hadoop_fs.write_bytes(spark, uri, data, "bench")
        assert hadoop_fs.read_bytes(spark, uri, "bench") == data and py4j_read(spark, uri) == data
        results = {
            "write, JVM copies a local file": best(args.rounds, lambda: hadoop_fs.write_bytes(spark, uri, data, "b")),
            "write, bytes through Py4J": best(args.rounds, lambda: py4j_write(spark, uri, data)),
            "read, JVM copies to a local file": best(args.rounds, lambda: hadoop_fs.read_bytes(spark, uri, "b")),
            "read, bytes through Py4J": best(args.rounds, lambda: py4j_read(spark, uri)),
        }
    spark.stop()
    for name, seconds in results.items():
        print(f"{name}: {args.mib / seconds:.0f} MiB/s ({seconds:.2f} s for {args.mib} MiB)")
    names = list(results)
    print(f"ratio write Py4J/JVM copy time: {results[names[1]] / results[names[0]]:.1f}; "
          f"read: {results[names[3]] / results[names[2]]:.1f}")


if __name__ == "__main__":
    main()
