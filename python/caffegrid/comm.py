"""caffegrid.TcpListener and caffegrid.Communicator: the C library's TCP ring
communicator, for data-parallel workers no MPI launcher starts (Spark barrier
tasks, a job script). Every rank listens, the host program shares the
``host:port`` addresses (Spark's ``BarrierTaskContext.allGather``), then every
rank connects with the full list in rank order:

    listener = caffegrid.TcpListener()
    addresses = share(f"{my_host}:{listener.port}")      # all ranks, in rank order
    comm = listener.connect(rank, len(addresses), addresses)
    solver = caffegrid.Solver("solver.prototxt", comm=comm)   # synchronous data-parallel SGD
"""

from __future__ import annotations

from typing import Optional, Sequence

from . import _caffegrid


class Communicator:
    """A connected communicator (from ``TcpListener.connect``). Hand it to
    ``caffegrid.Solver(..., comm=...)``; the solver keeps it alive."""

    def __init__(self, handle: _caffegrid.CommHandle):
        self._h = handle

    rank = property(lambda self: self._h.rank, doc="This process's rank (0 .. size-1).")
    size = property(lambda self: self._h.size, doc="Number of ranks.")
    backend = property(lambda self: self._h.backend, doc='The backend ("tcp").')

    def barrier(self) -> None:
        """Waits until every rank has called barrier."""
        self._h.barrier()

    def __repr__(self) -> str:
        return f"<caffegrid.Communicator {self.backend}: rank {self.rank} of {self.size}>"


class TcpListener:
    """A listening socket of the TCP communicator: on every interface (or
    ``bind_host``), on a free port unless ``port`` is given."""

    def __init__(self, bind_host: Optional[str] = None, port: int = 0):
        self._h = _caffegrid.TcpListener(bind_host, int(port))

    @property
    def port(self) -> int:
        """The port to publish to the other ranks."""
        return self._h.port

    def connect(self, rank: int, size: int, addresses: Sequence[str], timeout: float = 60.0) -> Communicator:
        """Joins the ring: ``addresses`` lists every rank's ``host:port`` in rank
        order. Blocks (GIL released) until both ring neighbours are connected;
        raises CommError when a peer stays silent for ``timeout`` seconds. The
        listener is closed afterwards."""
        return Communicator(self._h.connect(int(rank), int(size), [str(a) for a in addresses], float(timeout)))
