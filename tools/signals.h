/* Caffe's -sigint_effect and -sighup_effect, plus -sigterm_effect (Slurm preemption and
 * YARN container kills send SIGTERM): each signal asks the running solver for an action
 * at the next iteration boundary (snapshot, stop = snapshot then return, or none). */
#ifndef CG_TOOLS_SIGNALS_H
#define CG_TOOLS_SIGNALS_H

#include "caffegrid/solver.h"
#include "flags.h"

/* Reads the three flags ("snapshot", "stop" or "none"; Caffe's defaults: SIGINT stop,
 * SIGHUP snapshot; SIGTERM stop) and installs the handlers; sets the solver options'
 * poll. Prints an error and returns false on a bad value. */
bool cg_signals_install(const cg_flag *flags, const char *command, cg_solver_options *opt);

#endif
