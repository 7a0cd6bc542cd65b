/* The metrics file, PREFIX_metrics.jsonl: one JSON object per line (train, test
 * and timing records), written by rank 0. A resumed run replays the iterations
 * after its snapshot, so the interrupted run's lines for them are dropped first:
 * every iteration appears once, as an uninterrupted run would have logged it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "caffegrid/atomic_file.h"
#include "caffegrid/error.h"
#include "caffegrid/log.h"
#include "solvers/solver_impl.h"

static void give_up(cg_solver *s, const char *what, int err) {
  CG_LOG_WARN("cannot %s metrics file '%s': %s; training goes on without it", what, s->metrics_path, strerror(err));
  if (s->metrics) fclose(s->metrics);
  s->metrics = NULL;
  free(s->metrics_path);
  s->metrics_path = NULL;
}

/* Rewrites the file without lines whose "iter" is `from` or later (atomically). */
static void drop_lines_from(cg_solver *s, int from) {
  FILE *in = fopen(s->metrics_path, "r");
  if (!in) return; /* nothing logged yet */
  cg_atomic_file *out = NULL;
  if (cg_atomic_file_open(s->metrics_path, &out)) {
    fclose(in);
    CG_LOG_WARN("cannot rewrite metrics file '%s' after the resume: %s", s->metrics_path, cg_error_message());
    return;
  }
  char *line = NULL;
  size_t cap = 0;
  int dropped = 0;
  while (getline(&line, &cap, in) > 0) {
    const char *iter = strstr(line, "\"iter\":");
    if (iter && atoi(iter + 7) >= from) {
      dropped++;
      continue;
    }
    fputs(line, cg_atomic_file_stream(out));
  }
  free(line);
  fclose(in);
  if (cg_atomic_file_commit(out))
    CG_LOG_WARN("cannot rewrite metrics file '%s' after the resume: %s", s->metrics_path, cg_error_message());
  else if (dropped)
    CG_LOG_INFO("Dropped %d line(s) of iterations %d and later from %s: the resumed run logs them again", dropped,
                from, s->metrics_path);
}

void cg_solver_metrics_resumed(cg_solver *s) {
  if (s->metrics) fclose(s->metrics);
  s->metrics = NULL;
  s->metrics_resumed_at = s->iter;
}

void cg_solver_metrics_line(cg_solver *s, const char *json) {
  if (!s->metrics_path) return;
  if (!s->metrics) {
    if (s->metrics_resumed_at >= 0) drop_lines_from(s, s->metrics_resumed_at);
    s->metrics_resumed_at = -1;
    s->metrics = fopen(s->metrics_path, "a");
    if (!s->metrics) {
      give_up(s, "open", errno);
      return;
    }
  }
  errno = 0;
  if (fprintf(s->metrics, "%s\n", json) < 0 || fflush(s->metrics) != 0) give_up(s, "write to", errno ? errno : EIO);
}
