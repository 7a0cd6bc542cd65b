/* Ranks of one job must run the same net and solver: otherwise the same parameter
 * count trains silently on mismatched gradients, and a different count dies in MPI
 * with MPI_ERR_TRUNCATE. Every rank describes its parsed net and solver, one line
 * per layer or setting; rank 0's description travels to all, and the first line
 * that differs on any rank stops the job, on every rank, with that line named. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caffegrid/error.h"
#include "solvers/solver_impl.h"

typedef struct text {
  char *data;
  size_t len, cap;
} text;

static void add(text *t, const char *fmt, ...) {
  va_list ap;
  for (;;) {
    va_start(ap, fmt);
    size_t room = t->cap - t->len;
    int n = t->data ? vsnprintf(t->data + t->len, room, fmt, ap) : -1;
    va_end(ap);
    if (t->data && n >= 0 && (size_t)n < room) {
      t->len += (size_t)n;
      return;
    }
    size_t cap = t->cap ? 2 * t->cap : 4096;
    char *grown = realloc(t->data, cap);
    if (!grown) return; /* the description stays shorter; the comparison still holds */
    t->data = grown, t->cap = cap;
  }
}

static void describe_blob(text *t, const cg_blob *b) {
  for (int i = 0; i < b->num_axes; i++) add(t, "%s%d", i ? "x" : " ", b->shape[i]);
  if (b->num_axes == 0) add(t, " scalar");
}

static void describe_net(text *t, const cg_net *net) {
  for (int i = 0; i < cg_net_num_layers(net); i++) {
    add(t, "layer %d '%s' (%s):", i, cg_net_layer_name(net, i), cg_net_layer_type(net, i));
    for (int j = 0; j < cg_net_layer_num_tops(net, i); j++) describe_blob(t, cg_net_blob_at(net, cg_net_layer_top_index(net, i, j)));
    if (cg_net_layer_num_params(net, i)) add(t, "; parameters");
    for (int j = 0; j < cg_net_layer_num_params(net, i); j++) describe_blob(t, cg_net_layer_param(net, i, j));
    add(t, "\n");
  }
}

/* The settings that change the numbers or the order of collectives (display and
 * snapshot intervals and tests call them); not the seed (rank 0's is used), paths or
 * the snapshot prefix (node-local folders are fine). */
static void describe_solver(text *t, const Caffe__SolverParameter *p) {
  add(t, "solver type %s\n", p->type ? p->type : "SGD");
  add(t, "base_lr %.9g\nlr_policy %s\ngamma %.9g\npower %.9g\nstepsize %d\n", p->base_lr, p->lr_policy ? p->lr_policy : "",
      p->gamma, p->power, p->stepsize);
  for (size_t i = 0; i < p->n_stepvalue; i++) add(t, "stepvalue %d\n", p->stepvalue[i]);
  add(t, "momentum %.9g\nmomentum2 %.9g\ndelta %.9g\nrms_decay %.9g\n", p->momentum, p->momentum2, p->delta, p->rms_decay);
  add(t, "weight_decay %.9g\nregularization_type %s\nclip_gradients %.9g\n", p->weight_decay,
      p->regularization_type ? p->regularization_type : "", p->clip_gradients);
  add(t, "max_iter %d\niter_size %d\ndisplay %d\naverage_loss %d\nsnapshot %d\ntest_interval %d\n", p->max_iter,
      p->iter_size, p->display, p->average_loss, p->snapshot, p->test_interval);
  for (size_t i = 0; i < p->n_test_iter; i++) add(t, "test_iter %d\n", p->test_iter[i]);
}

/* The first line where `mine` differs from `theirs`: 0 when equal, else its number (from 1). */
static int first_difference(const char *mine, const char *theirs, const char **a, const char **b) {
  int line = 1;
  for (;;) {
    const char *ea = strchr(mine, '\n'), *eb = strchr(theirs, '\n');
    size_t la = ea ? (size_t)(ea - mine) : strlen(mine), lb = eb ? (size_t)(eb - theirs) : strlen(theirs);
    if (la != lb || memcmp(mine, theirs, la) != 0 || !ea != !eb) {
      *a = mine, *b = theirs;
      return line;
    }
    if (!ea) return 0;
    mine = ea + 1, theirs = eb + 1, line++;
  }
}

static size_t line_len(const char *s) {
  const char *e = strchr(s, '\n');
  return e ? (size_t)(e - s) : strlen(s);
}

int cg_solver_check_same_job(cg_solver *s) {
  cg_comm *comm = s->opt.comm;
  text t = {0};
  describe_solver(&t, s->param);
  describe_net(&t, s->net);
  if (!t.data) return cg_error(CG_ERR_NOMEM, "out of memory");
  uint64_t len = t.len;
  int rc = cg_comm_broadcast(comm, &len, sizeof len, 0);
  char *theirs = rc ? NULL : malloc(len + 1);
  if (!rc && !theirs) rc = cg_error(CG_ERR_NOMEM, "out of memory");
  if (!rc && s->opt.rank == 0) memcpy(theirs, t.data, len);
  if (!rc) rc = cg_comm_broadcast(comm, theirs, len, 0);
  if (rc) {
    free(t.data), free(theirs);
    return rc;
  }
  theirs[len] = '\0';
  const char *a = NULL, *b = NULL;
  int line = first_difference(t.data, theirs, &a, &b);
  /* the lowest differing rank tells; its words reach every rank, so whichever rank ends
   * the job says the same */
  double teller = line ? -(double)s->opt.rank : -1e9;
  rc = cg_comm_allreduce_max(comm, &teller, 1);
  char why[2048] = "";
  int who = teller < -1e8 ? -1 : (int)-teller;
  if (!rc && who >= 0) {
    if (who == s->opt.rank) {
      bool net = strncmp(a, "layer ", 6) == 0 || strncmp(b, "layer ", 6) == 0;
      snprintf(why, sizeof why,
               "rank %d's %s differs from rank 0's (every rank must run the same net and solver): rank 0 has "
               "'%.*s', rank %d has '%.*s'",
               who, net ? "net" : "solver", (int)line_len(b), b, who, (int)line_len(a), a);
    }
    rc = cg_comm_broadcast(comm, why, sizeof why, who);
    if (!rc) rc = cg_error(CG_ERR_INVALID, "%s", why);
  }
  free(t.data);
  free(theirs);
  return rc;
}
