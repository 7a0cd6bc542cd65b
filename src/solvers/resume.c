/* Resuming a job: rank 0 decides. Ranks that disagree on the resume point (a
 * node-local snapshot folder, different -snapshot values) used to run different
 * iterations and crash at the next snapshot; now rank 0 alone reads the set and the
 * others receive what it read: iteration and step here, every rank's data position
 * and RNG here, weights and solver history at the first step (solver.c sends them),
 * so the other ranks need not see the files at all. */
#include <stdlib.h>
#include <string.h>

#include "caffegrid/error.h"
#include "caffegrid/log.h"
#include "solvers/solver_impl.h"

/* What rank 0 tells the others after reading its set. */
typedef struct resume_point {
  int64_t failed, iter, current_step, ranks, per_rank;
  char why[2048]; /* rank 0's error, when it failed */
} resume_point;

static int share_resume_point(cg_solver *s, int rc, cg_run_state *run) {
  resume_point p = {0};
  if (s->opt.rank == 0) {
    p = (resume_point){rc != 0, s->iter, s->current_step, run->ranks, (int64_t)run->per_rank, ""};
    if (rc) snprintf(p.why, sizeof p.why, "%s", cg_error_message());
  }
  int sent = cg_comm_broadcast(s->opt.comm, &p, sizeof p, 0);
  if (sent) return sent;
  if (p.failed) return s->opt.rank == 0 ? rc : cg_error(CG_ERR_IO, "%s", p.why);
  size_t count = (size_t)p.ranks * (size_t)p.per_rank;
  if (s->opt.rank != 0) {
    s->iter = (int)p.iter, s->current_step = (int)p.current_step;
    *run = (cg_run_state){.words = count ? calloc(count, sizeof(uint64_t)) : NULL, .per_rank = (size_t)p.per_rank,
                          .ranks = (int)p.ranks};
    if (count && !run->words) return cg_error(CG_ERR_NOMEM, "out of memory for the snapshot's run state");
  }
  return count ? cg_comm_broadcast(s->opt.comm, run->words, count * sizeof(uint64_t), 0) : CG_OK;
}

int cg_solver_restore(cg_solver *s, const char *state_path) {
  cg_run_state run = {0};
  bool alone = !s->dp;
  int rc = CG_OK;
  if (alone || s->opt.rank == 0) rc = cg_solver_restore_here(s, state_path, &run);
  if (!alone) {
    rc = share_resume_point(s, rc, &run);
    s->weights_synced = false; /* rank 0's restored weights and history go out at the next step */
  }
  if (!rc) rc = cg_solver_apply_run_state(s, &run, alone || s->opt.rank == 0 ? state_path : "rank 0's snapshot");
  if (!rc) cg_solver_metrics_resumed(s);
  free(run.words);
  return rc;
}

int cg_solver_resume(cg_solver *s, const char *snapshot, bool *resumed) {
  if (resumed) *resumed = false;
  if (!snapshot) return CG_OK;
  char *chosen = NULL;
  int64_t resuming = 0;
  if (!s->dp || s->opt.rank == 0) {
    if (strcmp(snapshot, "auto") == 0) {
      chosen = cg_solver_latest_snapshot(s);
      if (!chosen) CG_LOG_INFO("-snapshot auto: no complete snapshot yet; starting from the beginning");
    } else if (!(chosen = strdup(snapshot))) {
      return cg_error(CG_ERR_NOMEM, "out of memory");
    }
    resuming = chosen != NULL;
  }
  int rc = s->dp ? cg_comm_broadcast(s->opt.comm, &resuming, sizeof resuming, 0) : CG_OK;
  if (!rc && resuming) {
    if (chosen) CG_LOG_INFO("Resuming from %s", chosen);
    rc = cg_solver_restore(s, chosen);
    if (!rc && resumed) *resumed = true;
  }
  free(chosen);
  return rc;
}
