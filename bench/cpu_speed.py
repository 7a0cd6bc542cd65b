#!/usr/bin/python3
"""CPU speed, side by side: caffegrid and PyTorch (CPU) on the same nets and batch
sizes (examples/nets/*_time.prototxt), interleaved in one run so both see the same
load on a shared machine. Prints and writes the "CPU speed" section of
docs/benchmarks.md. Needs PyTorch for /usr/bin/python3 (bash bench/setup.sh).

  /usr/bin/python3 bench/cpu_speed.py [--nets lenet,cifar10_quick,caffenet]
      [--threads 1,2] [--rounds 4] [--iters 6] [--warmup 2] [--peak 198] [--no-write]

Each round runs caffegrid's worker (build/bench/cpu_speed), then PyTorch's (this
file with --worker), each doing `warmup` untimed iterations and then `iters`
timed pairs (forward+backward, then a full SGD iteration); medians are over all
rounds (rounds * iters samples each). Peak RSS is each worker's getrusage."""
import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BATCH = {"lenet": 64, "cifar10_quick": 100, "caffenet": 32}
BUILD = "build"  # --build
TITLE = {"lenet": "LeNet", "cifar10_quick": "CIFAR-10 quick", "caffenet": "CaffeNet"}


# ---------------------------------------------------------------- the nets in PyTorch
def torch_net(name):
    """The same layers as examples/nets/NAME_time.prototxt; Caffe's pooling rounds up (ceil_mode)."""
    import torch.nn as nn

    if name == "lenet":
        return nn.Sequential(
            nn.Conv2d(1, 20, 5), nn.MaxPool2d(2, 2, ceil_mode=True),
            nn.Conv2d(20, 50, 5), nn.MaxPool2d(2, 2, ceil_mode=True), nn.Flatten(),
            nn.Linear(800, 500), nn.ReLU(inplace=True), nn.Linear(500, 10)), (1, 28, 28), 10
    if name == "cifar10_quick":
        return nn.Sequential(
            nn.Conv2d(3, 32, 5, padding=2), nn.MaxPool2d(3, 2, ceil_mode=True), nn.ReLU(inplace=True),
            nn.Conv2d(32, 32, 5, padding=2), nn.ReLU(inplace=True), nn.AvgPool2d(3, 2, ceil_mode=True),
            nn.Conv2d(32, 64, 5, padding=2), nn.ReLU(inplace=True), nn.AvgPool2d(3, 2, ceil_mode=True),
            nn.Flatten(), nn.Linear(64 * 4 * 4, 64), nn.Linear(64, 10)), (3, 32, 32), 10
    if name == "caffenet":
        lrn = lambda: nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)  # noqa: E731
        return nn.Sequential(
            nn.Conv2d(3, 96, 11, stride=4), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, ceil_mode=True), lrn(),
            nn.Conv2d(96, 256, 5, padding=2, groups=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, ceil_mode=True),
            lrn(),
            nn.Conv2d(256, 384, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 384, 3, padding=1, groups=2), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, 3, padding=1, groups=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, ceil_mode=True),
            nn.Flatten(), nn.Linear(256 * 6 * 6, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5),
            nn.Linear(4096, 4096), nn.ReLU(inplace=True), nn.Dropout(0.5), nn.Linear(4096, 1000)), (3, 227, 227), 1000
    raise ValueError(name)


def torch_worker(name, threads, iters, warmup):
    import torch

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)
    torch.set_flush_denormal(True)  # as caffegrid does by default (src/math/fpmode.h)
    torch.manual_seed(1701)
    net, shape, classes = torch_net(name)
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.001, momentum=0.9, weight_decay=0.0005)
    loss_fn = torch.nn.CrossEntropyLoss()
    labels = torch.full((BATCH[name],), 1 % classes, dtype=torch.long)

    def fwd_bwd():
        x = torch.randn((BATCH[name],) + shape)  # caffegrid's DummyData refills every pass too
        loss = loss_fn(net(x), labels)
        loss.backward()
        return loss

    def train_step():
        opt.zero_grad(set_to_none=False)
        loss = fwd_bwd()
        opt.step()
        return loss

    for _ in range(warmup):
        fwd_bwd()
        train_step()
    fb, tr = [], []
    for _ in range(iters):
        t0 = time.perf_counter()
        fwd_bwd()
        t1 = time.perf_counter()
        loss = train_step()
        t2 = time.perf_counter()
        fb.append((t1 - t0) * 1e3)
        tr.append((t2 - t1) * 1e3)
    print(json.dumps({"fb_ms": fb, "train_ms": tr, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                      "loss": float(loss), "version": torch.__version__}))


# ---------------------------------------------------------------- FLOPs from the prototxt
def conv_ip_flops(name):
    """Multiply-adds * 2 of the Convolution and InnerProduct layers in one forward+backward:
    forward, weight gradient, and data gradient for every layer but the first (whose
    bottom is the data). Parsed from the shapes the workers share, computed by hand here."""
    shapes = {
        # (kind, in_c, out_c, k, out_hw, group) per layer, in order
        "lenet": [("conv", 1, 20, 5, 24, 1), ("conv", 20, 50, 5, 8, 1), ("ip", 800, 500), ("ip", 500, 10)],
        "cifar10_quick": [("conv", 3, 32, 5, 32, 1), ("conv", 32, 32, 5, 16, 1), ("conv", 32, 64, 5, 8, 1),
                          ("ip", 1024, 64), ("ip", 64, 10)],
        "caffenet": [("conv", 3, 96, 11, 55, 1), ("conv", 96, 256, 5, 27, 2), ("conv", 256, 384, 3, 13, 1),
                     ("conv", 384, 384, 3, 13, 2), ("conv", 384, 256, 3, 13, 2), ("ip", 9216, 4096),
                     ("ip", 4096, 4096), ("ip", 4096, 1000)],
    }[name]
    total = 0
    for i, l in enumerate(shapes):
        if l[0] == "conv":
            _, ci, co, k, hw, g = l
            macs = co * (ci // g) * k * k * hw * hw
        else:
            macs = l[1] * l[2]
        total += 2 * macs * BATCH[name] * (2 if i == 0 else 3)
    return total


# ---------------------------------------------------------------- the driver
def run_worker(cmd, env):
    out = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if out.returncode:
        sys.exit("worker failed: %s\n%s" % (" ".join(cmd), out.stderr[-2000:]))
    return json.loads(out.stdout.strip().splitlines()[-1])


def per_layer(name, threads, iters):
    """caffegrid time's per-layer averages (ms), forward and backward."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads))
    env.pop("OMP_NUM_THREADS", None)
    out = subprocess.run([os.path.join(ROOT, BUILD, "caffegrid"), "time", "-model",
                          os.path.join(ROOT, "examples/nets/%s_time.prototxt" % name), "-iterations", str(iters)],
                         env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True).stdout
    rows = {}
    for m in re.finditer(r"\]\s+(\S+)\s+(forward|backward): ([0-9.e+-]+) ms\.", out):
        rows.setdefault(m.group(1), {})[m.group(2)] = float(m.group(3))
    total = re.search(r"Average Forward-Backward: ([0-9.e+-]+) ms", out)
    return rows, float(total.group(1)) if total else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--nets", default="lenet,cifar10_quick,caffenet")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--iters", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--peak", type=float, default=None,
                    help="fp32 peak of all cores, GFLOP/s (default: measured by build/bench/peak_flops in this run)")
    ap.add_argument("--no-write", action="store_true")
    ap.add_argument("--build", default="build",
                    help="the build folder whose CLI and workers run (e.g. build-native from make NATIVE=1)")
    a = ap.parse_args()
    if a.worker:
        name, threads = a.worker.split(":")
        torch_worker(name, int(threads), a.iters, a.warmup)
        return
    global BUILD
    BUILD = a.build
    subprocess.run(["make", "-s", "-j2", "BUILD=" + BUILD] + [os.path.join(BUILD, t) for t in (
        "caffegrid", "bench/cpu_speed", "bench/peak_flops")], cwd=ROOT, check=True)
    ncores = os.cpu_count()
    max_threads = max(int(t) for t in a.threads.split(","))
    if a.peak is None:  # FMA throughput on 1..N threads at once, measured now (bench/peak_flops.c)
        measured = run_worker([os.path.join(ROOT, BUILD, "bench/peak_flops"), str(max_threads)], os.environ)
        peaks = {t: measured[str(t)] for t in range(1, max_threads + 1)}
        a.peak_text = "measured in this run by `build/bench/peak_flops` (%s FMAs): %s GFLOP/s" % (
            measured["isa"], ", ".join("%.0f on %d thread%s" % (v, t, "s" if t > 1 else "") for t, v in peaks.items()))
    else:
        peaks = {t: a.peak * t / ncores for t in range(1, max_threads + 1)}
        a.peak_text = "given: %.0f GFLOP/s for %d cores, prorated per thread" % (a.peak, ncores)
    rows, layer_tables, torch_version = [], [], "?"
    load_before = os.getloadavg()[0]
    for name in a.nets.split(","):
        proto = os.path.join(ROOT, "examples/nets/%s_time.prototxt" % name)
        flops = conv_ip_flops(name)
        for threads in [int(t) for t in a.threads.split(",")]:
            # PyTorch's OpenMP workers spin by default and starve OpenBLAS's threads (its Linear
            # layers): passive waiting measured 4x faster on LeNet, so the peer gets it
            env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
                       OMP_WAIT_POLICY="passive")
            cg_env = dict(env)
            cg_env.pop("OMP_NUM_THREADS")  # the CLI's own policy decides
            cg_env.pop("OMP_WAIT_POLICY")
            res = {"cg": {"fb_ms": [], "train_ms": [], "maxrss_kb": 0}, "pt": {"fb_ms": [], "train_ms": [], "maxrss_kb": 0}}
            for r in range(a.rounds):
                for who, cmd, e in (
                        ("cg", [os.path.join(ROOT, BUILD, "bench/cpu_speed"), proto, str(a.iters), str(a.warmup)], cg_env),
                        ("pt", [sys.executable, os.path.abspath(__file__), "--worker", "%s:%d" % (name, threads),
                                "--iters", str(a.iters), "--warmup", str(a.warmup)], env)):
                    out = run_worker(cmd, e)
                    res[who]["fb_ms"] += out["fb_ms"]
                    res[who]["train_ms"] += out["train_ms"]
                    res[who]["maxrss_kb"] = max(res[who]["maxrss_kb"], out["maxrss_kb"])
                    torch_version = out.get("version", torch_version)
            med = {w: {k: statistics.median(res[w][k]) for k in ("fb_ms", "train_ms")} for w in res}
            peak = peaks[threads]
            row = dict(net=name, threads=threads, n=len(res["cg"]["fb_ms"]),
                       cg_fb=med["cg"]["fb_ms"], pt_fb=med["pt"]["fb_ms"],
                       cg_tr=med["cg"]["train_ms"], pt_tr=med["pt"]["train_ms"],
                       cg_eff=flops / (med["cg"]["fb_ms"] * 1e6) / peak, pt_eff=flops / (med["pt"]["fb_ms"] * 1e6) / peak,
                       cg_rss=res["cg"]["maxrss_kb"] / 1024, pt_rss=res["pt"]["maxrss_kb"] / 1024, gflop=flops / 1e9)
            rows.append(row)
            print("%-14s t=%d  fb cg %.1f / pt %.1f ms = %.2f   train cg %.1f / pt %.1f ms = %.2f   "
                  "%% peak cg %.0f pt %.0f   RSS cg %.0f pt %.0f MiB" % (
                      name, threads, row["cg_fb"], row["pt_fb"], row["cg_fb"] / row["pt_fb"], row["cg_tr"], row["pt_tr"],
                      row["cg_tr"] / row["pt_tr"], 100 * row["cg_eff"], 100 * row["pt_eff"], row["cg_rss"], row["pt_rss"]),
                  flush=True)
        layers, total = per_layer(name, max(int(t) for t in a.threads.split(",")), 10 if name == "caffenet" else 20)
        layer_tables.append((name, layers, total))
    load_after = os.getloadavg()[0]
    section = render(rows, layer_tables, torch_version, a, (load_before, load_after))
    print(section)
    if not a.no_write:
        write_section(section)


def render(rows, layer_tables, torch_version, a, loads):
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    out = ["## CPU speed", "",
           "`/usr/bin/python3 bench/cpu_speed.py` (after `bash bench/setup.sh`) on %d cores (%s), shared with other "
           "work (load average %.1f before, %.1f after). caffegrid (oneDNN convolutions and gemms, direct kernels for single-channel convolutions, on `OPENBLAS_NUM_THREADS` OpenMP threads) and PyTorch %s "
           "(CPU, `torch.set_num_threads`, `OMP_WAIT_POLICY=passive`, which measured faster for it than active waiting: 56 against 59 ms on CIFAR-10 quick with 2 threads; both flush denormals to zero, caffegrid's default and `torch.set_flush_denormal(True)`) run the same nets and batch sizes (`examples/nets/*_time.prototxt`), "
           "interleaved: %d rounds, each running caffegrid's worker then PyTorch's, %d untimed warm-up iterations "
           "then %d timed ones; times are medians of all %d samples. *fwd+bwd* is forward and backward (Caffe's "
           "`time`); *train* is a full SGD iteration (clear gradients, forward, backward, momentum + weight-decay "
           "update). *%% peak* is the convolution and inner-product FLOPs of one fwd+bwd over its time, as a "
           "fraction of the fp32 peak for that many threads (%s). RSS is each "
           "process's peak resident memory (PyTorch's includes its ~%s MiB runtime)." % (
               os.cpu_count(), cpu, loads[0], loads[1], torch_version, a.rounds, a.warmup, a.iters,
               a.rounds * a.iters, a.peak_text, "200"),
           "",
           "| net (batch) | threads | caffegrid fwd+bwd ms | PyTorch fwd+bwd ms | ratio | caffegrid train ms | "
           "PyTorch train ms | ratio | GFLOP | caffegrid % peak | PyTorch % peak | caffegrid RSS MiB | PyTorch RSS MiB |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append("| %s (%d) | %d | %.1f | %.1f | **%.2f** | %.1f | %.1f | **%.2f** | %.2f | %.0f%% | %.0f%% | %.0f | %.0f |" % (
            TITLE[r["net"]], BATCH[r["net"]], r["threads"], r["cg_fb"], r["pt_fb"], r["cg_fb"] / r["pt_fb"],
            r["cg_tr"], r["pt_tr"], r["cg_tr"] / r["pt_tr"], r["gflop"], 100 * r["cg_eff"], 100 * r["pt_eff"],
            r["cg_rss"], r["pt_rss"]))
    out += ["", "Where caffegrid's time goes (`caffegrid time`, %s threads, average ms per layer):" %
            max(a.threads.split(",")), ""]
    for name, layers, total in layer_tables:
        out.append("- %s, fwd+bwd %.1f ms: %s" % (TITLE[name], total, ", ".join(
            "%s %.1f+%.1f" % (k, v.get("forward", 0), v.get("backward", 0)) for k, v in layers.items()
            if v.get("forward", 0) + v.get("backward", 0) >= 0.05 * total / max(len(layers), 1))))
    return "\n".join(out) + "\n"


def write_section(section):
    path = os.path.join(ROOT, "docs/benchmarks.md")
    text = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    m = re.search(r"^## CPU speed\n.*?(?=^## |\Z)", text, flags=re.S | re.M)
    text = text[:m.start()] + section + "\n" + text[m.end():] if m else text.rstrip("\n") + "\n\n" + section
    with open(path, "w") as f:
        f.write(text)
    print("wrote the CPU speed section of", path)


if __name__ == "__main__":
    main()
