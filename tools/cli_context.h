/* What every command that builds a net or joins a job shares, set up one way:
 * -gpu and -devices refused alike (this build computes on the CPU), -phase
 * validated alike, the data options (CAFFEGRID_DATA_THREADS,
 * CAFFEGRID_SKIP_BAD_RECORDS) and the communicator (mpirun/srun, CAFFEGRID_PEERS,
 * or alone) read alike; ranks other than 0 go quiet. */
#ifndef CG_TOOLS_CLI_CONTEXT_H
#define CG_TOOLS_CLI_CONTEXT_H

#include <stdbool.h>

#include "caffegrid/comm.h"
#include "caffegrid/net.h"
#include "flags.h"

typedef struct cg_cli_context {
  const char *command;
  cg_net_options net; /* phase, data options, rank and world size filled in */
  cg_comm *comm;      /* when the command joins the job; else NULL */
} cg_cli_context;

/* Checks the shared flags (a flag the command does not declare counts as absent)
 * and, with join_job, creates the communicator. On a bad flag or a failure it
 * prints "caffegrid COMMAND: why", leaves nothing to free and returns false. */
bool cg_cli_begin(const cg_flag *flags, const char *command, int default_phase, bool join_job, cg_cli_context *ctx);
void cg_cli_end(cg_cli_context *ctx);

#endif
