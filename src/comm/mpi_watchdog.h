/* A peer timeout for MPI, which has none of its own: a rank stopped (kill -STOP,
 * a frozen node) or hung outside the collectives leaves the others blocked in
 * MPI_Allreduce forever. A watchdog thread per rank notices when a collective has
 * made no progress for timeout_s seconds, asks every rank over a private duplicate
 * of the communicator what it is doing, and ends the job naming the ranks that did
 * not answer or have made no progress for as long. */
#ifndef CG_COMM_MPI_WATCHDOG_H
#define CG_COMM_MPI_WATCHDOG_H

#include <mpi.h>

typedef struct cg_mpi_watchdog cg_mpi_watchdog;

/* Starts the thread (collective: duplicates `world`). timeout_s <= 0 or one rank:
 * *out = NULL and nothing runs. */
int cg_mpi_watchdog_start(MPI_Comm world, double timeout_s, cg_mpi_watchdog **out);
/* Around every collective; NULL is a no-op. */
void cg_mpi_watchdog_enter(cg_mpi_watchdog *w);
void cg_mpi_watchdog_leave(cg_mpi_watchdog *w);
void cg_mpi_watchdog_stop(cg_mpi_watchdog *w);

#endif
