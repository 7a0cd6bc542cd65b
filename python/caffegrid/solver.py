"""caffegrid.Solver: a solver.prototxt run from Python, as pycaffe's solvers —
the train net, the test nets, step/solve, snapshots and resume, over the C
library's solver (the same code `caffegrid train` runs)."""

from __future__ import annotations

from typing import Dict, List, Optional

from . import _caffegrid
from .comm import Communicator
from .net import TEST, TRAIN, Net, PathLike


class Solver:
    """A solver built from a solver prototxt: its train net, its test nets and its
    update rule (``type:`` SGD, Nesterov, AdaGrad, RMSProp, AdaDelta or Adam).

    >>> solver = caffegrid.Solver("lenet_solver.prototxt")
    >>> solver.net.feed("data", images, labels)      # when the net has MemoryData layers
    >>> solver.step(100)
    >>> solver.net.params["conv1"][0].data           # the weights being trained (a view)

    Training from Python gives bit-identical weights to ``caffegrid train`` with
    the same files and ``random_seed``. Relative net paths are tried in the
    working directory, then beside the solver file; data sources in the net are
    relative to the working directory, as in Caffe.

    ``net`` and ``test_nets`` are views of the solver's own nets: they (and
    every array taken from them) keep the solver alive. step, solve, snapshot
    and restore release the GIL; calls must not overlap across threads.

    With ``comm`` (a ``caffegrid.Communicator``, see ``caffegrid.TcpListener``)
    every rank builds the same solver and training is synchronous data-parallel
    SGD: rank 0's weights are broadcast at the start, gradients are summed over
    the ranks in buckets every iteration, rank 0 alone writes snapshots, and
    test nets score each rank's share. Every rank must call step with the same
    counts; each feeds its own MemoryData batches.
    """

    def __init__(self, solver_prototxt: PathLike, comm: Optional[Communicator] = None, *, text: Optional[str] = None,
                 net_path: Optional[str] = None, snapshot_prefix: Optional[str] = None, max_iter: int = 0,
                 no_interval_snapshots: bool = False, no_testing: bool = False, test_iter: int = 0,
                 skip_bad_records: Optional[bool] = None, prefix_lock: bool = True):
        # text: the solver's text (then solver_prototxt only names it in messages); the rest
        # replace the file's own fields as the C library's cg_solver_options say
        self._h = _caffegrid.SolverHandle(solver_prototxt, None if comm is None else comm._h, text=text,
                                          net_path=net_path, snapshot_prefix=snapshot_prefix, max_iter=max_iter,
                                          no_interval_snapshots=no_interval_snapshots, no_testing=no_testing,
                                          test_iter=test_iter, skip_bad_records=skip_bad_records,
                                          prefix_lock=prefix_lock)
        self.comm = comm
        self._net: Optional[Net] = None
        self._test_nets: Optional[List[Net]] = None

    @property
    def net(self) -> Net:
        """The train net (phase TRAIN)."""
        if self._net is None:
            self._net = Net._borrow(self._h.net(-1), self, TRAIN)
        return self._net

    @property
    def test_nets(self) -> List[Net]:
        """The test nets (phase TEST), in the solver's order."""
        if self._test_nets is None:
            self._test_nets = [Net._borrow(self._h.net(i), self, TEST) for i in range(self._h.num_test_nets)]
        return list(self._test_nets)

    @property
    def iter(self) -> int:
        """Iterations done so far."""
        return self._h.iter

    def step(self, iters: int) -> None:
        """Runs ``iters`` training iterations, testing and snapshotting as the
        solver's test_interval and snapshot say."""
        self._h.step(int(iters))

    def solve(self, resume_file: Optional[PathLike] = None) -> None:
        """Trains to max_iter (resuming from a ``.solverstate`` first when given),
        then the final snapshot and test, as Caffe's Solve."""
        if resume_file is not None:
            self.restore(resume_file)
        self._h.solve()

    def snapshot(self) -> None:
        """Writes PREFIX_iter_N.caffemodel and .solverstate now."""
        self._h.snapshot()

    def restore(self, solverstate: PathLike) -> None:
        """Resumes from a ``.solverstate``: weights, solver history and iteration."""
        self._h.restore(solverstate)

    def latest_snapshot(self) -> Optional[str]:
        """The newest complete snapshot (.caffemodel, .solverstate and .cgstate all
        written) under the solver's snapshot_prefix, as a .solverstate path, or None
        (what ``caffegrid train -snapshot auto`` resumes from)."""
        return self._h.latest_snapshot()

    def copy_from(self, weights: str) -> None:
        """Fine-tuning: copies weights from one or more comma-separated ``.caffemodel`` files
        into the train and test nets."""
        self._h.load_weights(weights)

    def test(self) -> List[Dict[str, float]]:
        """Runs every test net for its test_iter batches with the current weights;
        returns, per test net, ``{output name: mean over the batches}``."""
        self._h.test_all()
        return [{name: self._h.last_test_score(i, name) for name in net.outputs}
                for i, net in enumerate(self.test_nets)]

    def __repr__(self) -> str:
        return f"<caffegrid.Solver at iteration {self.iter}: net {self.net.name!r}, {len(self.test_nets)} test net(s)>"


def get_solver(solver_prototxt: PathLike) -> Solver:
    """pycaffe's ``caffe.get_solver``: the solver the prototxt's ``type:`` names."""
    return Solver(solver_prototxt)
