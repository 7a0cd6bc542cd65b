#!/usr/bin/env python3
# Per-call overhead of the Python API: net.forward() from Python against the C
# forward pass `caffegrid time` reports, LeNet batch 64 (examples/nets/lenet_time.prototxt);
# writes the "Python" section of docs/benchmarks.md.
"""Usage: python3 bench/python_overhead.py [--iterations N] [--rounds R] [--no-write]

Needs the caffegrid package importable (pip install ./python, or
PYTHONPATH=build/python after tests/python/run.sh) and build/caffegrid.

Each round times the CLI (`caffegrid time`) and then the same net from Python,
each in a fresh process, forward then backward per iteration as `caffegrid
time` does; the best round of each is reported (a shared machine's load only
adds time). Three measures:
  - against the CLI: Python's wall time per net.forward() call versus the CLI's
    "Average Forward pass" (noise between the two processes included);
  - in process: the wall time per net.forward() call versus the time the C
    layers spent inside those same calls (profiling on, as in `caffegrid time`);
  - the Python layer alone: forward() of a net that computes nothing.
"""

import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time
import timeit

ROOT = pathlib.Path(__file__).resolve().parents[1]
MODEL = ROOT / "examples" / "nets" / "lenet_time.prototxt"
DOC = ROOT / "docs" / "benchmarks.md"


def cli_round(cli: str, iterations: int):
    """(forward ms, forward-backward ms) per iteration as `caffegrid time` prints them."""
    log = subprocess.run([cli, "time", "-model", str(MODEL), "-iterations", str(iterations)],
                         capture_output=True, text=True, check=True).stderr
    forward = float(re.search(r"Average Forward pass: ([0-9.e+-]+) ms", log).group(1))
    both = float(re.search(r"Average Forward-Backward: ([0-9.e+-]+) ms", log).group(1))
    return forward, both


def python_round(iterations: int):
    """(forward() wall ms, C layers' forward ms inside those calls, forward+backward wall ms) per iteration,
    timed as `caffegrid time` times: a net built afresh, one untimed pass, then the timed iterations."""
    import caffegrid

    caffegrid.set_log_quiet(True)
    net = caffegrid.Net(str(MODEL), caffegrid.TRAIN, seed=1701)  # as `caffegrid time` builds it
    net.forward()
    net.backward()
    net.set_profiling(True)  # costs what it costs in the CLI
    clock = time.perf_counter
    forward_wall = 0.0
    start = clock()
    for _ in range(iterations):
        t0 = clock()
        net.forward()
        forward_wall += clock() - t0
        net.backward()
    total = clock() - start
    layers = sum(f for _, f, _ in net.layer_times())
    return forward_wall * 1e3 / iterations, layers / iterations, total * 1e3 / iterations


def fixed_cost_us(caffegrid, tmp: pathlib.Path) -> float:
    """What the Python layer costs per forward() call, alone: forward() of a two-layer net
    that computes almost nothing, minus the C call underneath it (best of 5)."""
    path = tmp / "tiny.prototxt"
    path.write_text('name: "tiny"\nlayer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 } } }\n'
                    'layer { name: "relu" type: "ReLU" bottom: "x" top: "y" }\n')
    net = caffegrid.Net(str(path), caffegrid.TEST)
    n = 20000
    wrapped = min(timeit.repeat(net.forward, number=n, repeat=5)) / n
    bare = min(timeit.repeat(net._h.forward, number=n, repeat=5)) / n
    empty = min(timeit.repeat(lambda: None, number=n, repeat=5)) / n
    return (wrapped - empty) * 1e6, (bare - empty) * 1e6


def write_section(text: str) -> None:
    """Replaces (or appends) the "## Python" section of docs/benchmarks.md, leaving the others."""
    doc = DOC.read_text() if DOC.exists() else "# Benchmarks\n"
    match = re.search(r"^## Python\n.*?(?=^## |\Z)", doc, re.M | re.S)
    if match:
        rest = doc[match.end():]
        doc = doc[:match.start()] + text + ("\n" if rest else "") + rest
    else:
        doc = doc.rstrip("\n") + "\n\n" + text
    DOC.write_text(doc)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--iterations", type=int, default=20, help="timed iterations per round (default 20)")
    parser.add_argument("--rounds", type=int, default=40, help="rounds, alternating CLI and Python (default 40)")
    parser.add_argument("--cli", default=os.environ.get("CAFFEGRID", str(ROOT / "build" / "caffegrid")))
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    parser.add_argument("--one-round", action="store_true", help=argparse.SUPPRESS)  # the child process of a round
    args = parser.parse_args()
    if args.one_round:
        print(json.dumps(python_round(args.iterations)))
        return 0

    import caffegrid

    cli_fwd, cli_both, py_fwd, py_layers, py_both = [], [], [], [], []
    for r in range(args.rounds):
        f, b = cli_round(args.cli, args.iterations)
        cli_fwd.append(f), cli_both.append(b)
        # a fresh process per round, as the CLI's: a long-lived process runs faster than a new one
        f, layers, b = json.loads(subprocess.run([sys.executable, __file__, "--one-round", "--iterations",
                                                  str(args.iterations)], capture_output=True, text=True,
                                                 check=True).stdout)
        py_fwd.append(f), py_layers.append(layers), py_both.append(b)
        print(f"round {r + 1}: CLI forward {cli_fwd[-1]:.3f} ms, fwd+bwd {cli_both[-1]:.3f} ms | Python forward() "
              f"{f:.3f} ms (C layers {layers:.3f} ms), fwd+bwd {b:.3f} ms", file=sys.stderr)
    with tempfile.TemporaryDirectory() as tmp:
        fixed, bare = fixed_cost_us(caffegrid, pathlib.Path(tmp))
    cf, cb, pf, pl, pb = (min(v) for v in (cli_fwd, cli_both, py_fwd, py_layers, py_both))  # best round of each
    over_cli, over_in, over_both = (pf / cf - 1) * 100, (pf / pl - 1) * 100, (pb / cb - 1) * 100
    per_call_us = (pf - pl) * 1e3
    rows = [
        ("forward, LeNet batch 64", f"{cf:.3f}", f"{pf:.3f}", f"{over_cli:+.2f}%"),
        ("forward + backward, LeNet batch 64", f"{cb:.3f}", f"{pb:.3f}", f"{over_both:+.2f}%"),
    ]
    text = (
        "## Python\n\n"
        f"`python3 bench/python_overhead.py --iterations {args.iterations} --rounds {args.rounds}` on "
        f"{os.cpu_count()} cores shared with other work (expect noise): {args.rounds} rounds, each timing "
        f"`caffegrid time -model examples/nets/lenet_time.prototxt -iterations {args.iterations}` and then the "
        "same net from Python, each in a fresh process (forward then backward per iteration, as `caffegrid time` "
        "does); best round of each.\n\n"
        "| pass | CLI ms | Python ms | Python vs CLI |\n|---|---|---|---|\n"
        + "".join(f"| {a} | {b} | {c} | {d} |\n" for a, b, c, d in rows)
        + f"\nBetween processes, the C layers themselves took {pl:.3f} ms per forward pass in the Python process "
        f"against the CLI's {cf:.3f} ms ({(pl / cf - 1) * 100:+.2f}%): that part of the difference is the machine, "
        f"not Python, since the same library code runs in both. Across rounds the CLI's forward pass took "
        f"{min(cli_fwd):.1f} to {max(cli_fwd):.1f} ms and Python's forward() {min(py_fwd):.1f} to {max(py_fwd):.1f} ms: "
        "on a shared machine this comparison cannot resolve 2%; the next one can.\n"
        + f"\nIn process, where noise between runs cannot enter: a `net.forward()` call took {pf:.3f} ms, of "
        f"which the C layers spent {pl:.3f} ms (the CLI's \"Average Forward pass\" measure): {per_call_us:.1f} us "
        f"or {over_in:.2f}% more (target: under 2%), an upper bound that also holds the C loop around the layers "
        f"and scheduling noise. The Python layer alone (forward() of a two-layer net that computes nothing) costs "
        f"{fixed:.2f} us per call, {bare:.2f} us of it in the extension's call into C (argument handling, GIL "
        f"release): {fixed / (cf * 1e3) * 100:.3f}% of LeNet's forward pass.\n"
    )
    print(text)
    if not args.no_write:
        write_section(text)
        print(f"written to {DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
