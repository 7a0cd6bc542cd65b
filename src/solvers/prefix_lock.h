/* One training run per snapshot prefix: rank 0 holds an advisory lock (flock) on
 * PREFIX.lock for the solver's life, so a resubmitted job cannot interleave its
 * snapshots with a run still writing them, nor clean up the other's files. The lock
 * file holds the holder's pid, which the refusal names. Under the lock, temporary
 * files an interrupted run left beside the prefix (PATH.tmp.PID.N of the atomic
 * writer) are removed. */
#ifndef CG_SOLVERS_PREFIX_LOCK_H
#define CG_SOLVERS_PREFIX_LOCK_H

/* Takes the lock of `prefix` into *fd (-1 when the prefix's folder does not exist
 * yet: nothing there to protect). A held lock is CG_ERR_INVALID naming the prefix,
 * the lock file and the holder's pid. */
int cg_prefix_lock(const char *prefix, const char *solver_name, int *fd);
/* Releases it (-1 is a no-op). */
void cg_prefix_unlock(int fd);

#endif
