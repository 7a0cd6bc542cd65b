/* Caffe's -sigint_effect and -sighup_effect, plus -sigterm_effect (Slurm preemption and
 * YARN container kills send SIGTERM): each signal asks the running solver for an action
 * at the next iteration boundary (snapshot, stop = snapshot then return, or none). */
#ifndef CG_TOOLS_SIGNALS_H
#define CG_TOOLS_SIGNALS_H

#include "caffegrid/solver.h"
#include "flags.h"

/* Reads the three flags ("snapshot", "stop" or "none"; Caffe's defaults: SIGINT stop,
 * SIGHUP snapshot; SIGTERM stop) and arranges for the signals to be received by one
 * thread of their own: call it before any computing thread starts (MPI, OpenMP,
 * prefetch), which then inherit the signals blocked. A signal landing on a thread
 * inside oneDNN's sgemm was seen to corrupt the heap, about one run in 25 under load
 * (the core: glibc's "corrupted size vs. prev_size" in a free inside dnnl_sgemm; we
 * suspect the signal frame lands where generated code keeps data below the stack
 * pointer). Prints an error and returns false on a bad value. */
bool cg_signals_install(const cg_flag *flags, const char *command);
/* Sets the solver options' poll, which reports the signals received. */
void cg_signals_attach(cg_solver_options *opt);

#endif
