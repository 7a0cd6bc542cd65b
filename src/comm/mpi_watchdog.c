/* The MPI peer-timeout watchdog (mpi_watchdog.h). Ranks talk to each other's
 * watchdogs only when a collective is overdue, so a healthy job pays one
 * MPI_Iprobe every quarter second. */
#include "comm/mpi_watchdog.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "caffegrid/error.h"

enum { TAG_ASK = 7101, TAG_TELL = 7102 };
static const double ANSWER_WAIT_S = 5; /* how long a live rank gets to answer */

struct cg_mpi_watchdog {
  MPI_Comm side; /* private: never matches the job's own messages */
  int rank, size;
  double timeout_s;
  atomic_int in_flight;      /* collectives entered and not yet left */
  atomic_llong completed;    /* collectives left */
  atomic_llong progress_ns;  /* last enter or leave */
  atomic_bool stop;
  pthread_t thread;
};

/* What a rank tells: completed collectives, whether it is in one, seconds since progress. */
typedef struct report {
  double completed, in_flight, idle_s;
} report;

static long long now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static void nap(long ms) {
  struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&t, NULL);
}

static report my_report(const cg_mpi_watchdog *w) {
  return (report){(double)atomic_load(&w->completed), atomic_load(&w->in_flight) > 0,
                  (double)(now_ns() - atomic_load(&w->progress_ns)) / 1e9};
}

/* Answers every question waiting from other ranks' watchdogs. */
static void answer_questions(cg_mpi_watchdog *w) {
  for (;;) {
    int waiting = 0, question;
    MPI_Status st;
    if (MPI_Iprobe(MPI_ANY_SOURCE, TAG_ASK, w->side, &waiting, &st) != MPI_SUCCESS || !waiting) return;
    MPI_Recv(&question, 1, MPI_INT, st.MPI_SOURCE, TAG_ASK, w->side, MPI_STATUS_IGNORE);
    report r = my_report(w);
    MPI_Send(&r, 3, MPI_DOUBLE, st.MPI_SOURCE, TAG_TELL, w->side);
  }
}

/* Asks every other rank; fills reports[] and answered[] for ANSWER_WAIT_S at most. */
static void ask_everyone(cg_mpi_watchdog *w, report *reports, bool *answered) {
  int question = 1, pending = w->size - 1;
  for (int r = 0; r < w->size; r++) {
    if (r == w->rank) continue;
    MPI_Request req;
    if (MPI_Isend(&question, 1, MPI_INT, r, TAG_ASK, w->side, &req) == MPI_SUCCESS) MPI_Request_free(&req);
  }
  long long deadline = now_ns() + (long long)(ANSWER_WAIT_S * 1e9);
  while (pending > 0 && now_ns() < deadline && !atomic_load(&w->stop)) {
    answer_questions(w);
    int arrived = 0;
    MPI_Status st;
    if (MPI_Iprobe(MPI_ANY_SOURCE, TAG_TELL, w->side, &arrived, &st) != MPI_SUCCESS) break;
    if (!arrived) {
      nap(20);
      continue;
    }
    report got;
    MPI_Recv(&got, 3, MPI_DOUBLE, st.MPI_SOURCE, TAG_TELL, w->side, MPI_STATUS_IGNORE);
    if (!answered[st.MPI_SOURCE]) pending--;
    answered[st.MPI_SOURCE] = true, reports[st.MPI_SOURCE] = got;
  }
}

static void append(char *text, size_t len, const char *fmt, int rank, double a) {
  size_t used = strlen(text);
  if (used < len) snprintf(text + used, len - used, fmt, rank, a);
}

/* Decides from the answers; true (with `why`) when the job must end. */
static bool job_is_stuck(const cg_mpi_watchdog *w, const report *reports, const bool *answered, double waited, char *why,
                         size_t len) {
  char silent[1024] = "", frozen[1024] = "";
  bool working = false, counts_differ = false;
  for (int r = 0; r < w->size; r++) {
    if (r == w->rank) continue;
    if (!answered[r]) append(silent, sizeof silent, silent[0] ? ", %d" : "%d", r, 0);
    else if (!reports[r].in_flight && reports[r].idle_s > w->timeout_s)
      append(frozen, sizeof frozen, " rank %d (no progress for %.0f s)", r, reports[r].idle_s);
    else if (!reports[r].in_flight) working = true;
    else if (reports[r].completed != (double)atomic_load(&w->completed)) counts_differ = true;
  }
  if (silent[0])
    snprintf(why, len,
             "no progress in a collective for %.0f s: rank(s) %s did not answer (stopped, hung or lost); ending the "
             "job (-peer_timeout %g)",
             waited, silent, w->timeout_s);
  else if (frozen[0])
    snprintf(why, len, "no progress in a collective for %.0f s: waiting for%s, alive but stuck outside the "
             "collectives; ending the job (-peer_timeout %g)", waited, frozen, w->timeout_s);
  else if (working) return false; /* someone is computing: a slow rank, not a dead one */
  else if (counts_differ)
    snprintf(why, len, "no progress for %.0f s: every rank waits in a collective, but not the same one (the ranks "
             "run different nets, solvers or iteration counts?); ending the job", waited);
  else
    snprintf(why, len, "no progress for %.0f s: every rank waits in the same collective (the network between them "
             "stalled?); ending the job (-peer_timeout %g)", waited, w->timeout_s);
  return true;
}

static void *watch(void *arg) {
  cg_mpi_watchdog *w = arg;
  long long last_question = 0;
  report *reports = calloc((size_t)w->size, sizeof *reports);
  bool *answered = calloc((size_t)w->size, sizeof *answered);
  while (!atomic_load(&w->stop) && reports && answered) {
    answer_questions(w);
    report me = my_report(w);
    long long now = now_ns();
    /* overdue: ask again at most every ANSWER_WAIT_S, as a slow rank may be catching up */
    if (me.in_flight && me.idle_s > w->timeout_s && now - last_question > (long long)(ANSWER_WAIT_S * 1e9)) {
      last_question = now;
      memset(answered, 0, (size_t)w->size * sizeof *answered);
      ask_everyone(w, reports, answered);
      char why[2048];
      report again = my_report(w);
      if (again.in_flight && again.completed == me.completed && !atomic_load(&w->stop) &&
          job_is_stuck(w, reports, answered, again.idle_s, why, sizeof why)) {
        fprintf(stderr, "rank %d: %s\n", w->rank, why);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, 1);
      }
    }
    nap(250);
  }
  free(reports);
  free(answered);
  return NULL;
}

int cg_mpi_watchdog_start(MPI_Comm world, double timeout_s, cg_mpi_watchdog **out) {
  *out = NULL;
  int size = 1;
  MPI_Comm_size(world, &size);
  if (timeout_s <= 0 || size < 2) return CG_OK;
  cg_mpi_watchdog *w = calloc(1, sizeof *w);
  if (!w) return cg_error(CG_ERR_NOMEM, "out of memory");
  w->size = size, w->timeout_s = timeout_s;
  MPI_Comm_rank(world, &w->rank);
  if (MPI_Comm_dup(world, &w->side) != MPI_SUCCESS) {
    free(w);
    return cg_error(CG_ERR_COMM, "MPI could not duplicate the communicator for the peer-timeout watchdog");
  }
  atomic_store(&w->progress_ns, now_ns());
  if (pthread_create(&w->thread, NULL, watch, w) != 0) {
    free(w);
    return cg_error(CG_ERR_COMM, "cannot start the peer-timeout watchdog thread");
  }
  *out = w;
  return CG_OK;
}

void cg_mpi_watchdog_enter(cg_mpi_watchdog *w) {
  if (!w) return;
  atomic_fetch_add(&w->in_flight, 1);
  atomic_store(&w->progress_ns, now_ns());
}

void cg_mpi_watchdog_leave(cg_mpi_watchdog *w) {
  if (!w) return;
  atomic_fetch_add(&w->completed, 1);
  atomic_store(&w->progress_ns, now_ns());
  atomic_fetch_sub(&w->in_flight, 1);
}

void cg_mpi_watchdog_stop(cg_mpi_watchdog *w) {
  if (!w) return;
  atomic_store(&w->stop, true);
  pthread_join(w->thread, NULL);
  free(w); /* the duplicate goes with MPI_Finalize: freeing it is collective */
}
