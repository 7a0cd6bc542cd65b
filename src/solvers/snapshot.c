/* Snapshots in Caffe's binary format (PREFIX_iter_N.caffemodel + .solverstate),
 * each written atomically, plus PREFIX_iter_N.cgstate holding what Caffe's format
 * cannot (each layer's RNG and data position) so that resume is exact. Restore
 * reads Caffe's own solverstates too. */
#include <dirent.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "caffegrid/atomic_file.h"
#include "caffegrid/error.h"
#include "caffegrid/log.h"
#include "core/paths.h"
#include "solvers/nonfinite.h"
#include "solvers/snapshot_check.h"
#include "proto/proto_io.h"
#include "solvers/solver_impl.h"

static char *snapshot_path(const cg_solver *s, const char *extension) {
  const char *prefix = s->param->snapshot_prefix;
  char *stem = NULL, *path = NULL;
  if (!prefix || !prefix[0]) {
    /* Caffe's default prefix: the solver file's name without its extension */
    stem = strdup(s->source_name);
    char *dot = strrchr(stem, '.');
    if (dot && !strchr(dot, '/')) *dot = '\0';
    prefix = stem;
  }
  if (asprintf(&path, "%s_iter_%d%s", prefix, s->iter, extension) < 0) path = NULL;
  free(stem);
  return path;
}

static Caffe__BlobProto *history_blob(const cg_blob *shape_of, const float *values) {
  Caffe__BlobProto *bp = malloc(sizeof *bp);
  caffe__blob_proto__init(bp);
  bp->shape = malloc(sizeof *bp->shape);
  caffe__blob_shape__init(bp->shape);
  bp->shape->n_dim = (size_t)shape_of->num_axes;
  bp->shape->dim = malloc(sizeof(int64_t) * (size_t)(shape_of->num_axes + 1));
  for (int i = 0; i < shape_of->num_axes; i++) bp->shape->dim[i] = shape_of->shape[i];
  bp->n_data = shape_of->count;
  bp->data = malloc(sizeof(float) * (shape_of->count + 1));
  memcpy(bp->data, values, sizeof(float) * shape_of->count);
  return bp;
}

/* Every rank's run state (data position, RNG), gathered to rank 0: ranks read different records. */
static uint64_t *gather_run_state(const cg_solver *s, size_t *words_per_rank) {
  size_t words = cg_net_state_words(s->net);
  int world = s->opt.world_size;
  uint64_t *mine = calloc(words + 1, sizeof(uint64_t)), *all = calloc(words * (size_t)world + 1, sizeof(uint64_t));
  cg_net_get_state(s->net, mine);
  int rc = s->opt.comm ? cg_comm_allgather(s->opt.comm, mine, all, words * sizeof(uint64_t)) : CG_OK;
  if (!s->opt.comm) memcpy(all, mine, words * sizeof(uint64_t));
  free(mine);
  if (rc) {
    free(all);
    return NULL;
  }
  *words_per_rank = words;
  return all;
}

/* Written last, with the length and CRC-32 of the two files it completes: a set whose
 * files do not match it (cut short, overwritten, copied from elsewhere) is not resumed. */
static int write_side_file(const cg_solver *s, const char *path, const uint64_t *state, size_t words, const char *model,
                           const char *state_path) {
  /* A BlobProto-free little text format: easy to inspect, written atomically. */
  cg_file_sum sums[2];
  int rc = cg_file_sum_of(model, &sums[0]);
  if (!rc) rc = cg_file_sum_of(state_path, &sums[1]);
  cg_atomic_file *out;
  if (!rc) rc = cg_atomic_file_open(path, &out);
  if (rc) return rc;
  FILE *f = cg_atomic_file_stream(out);
  fprintf(f, "caffegrid-run-state 3\niter %d\nranks %d\nwords %zu\n", s->iter, s->opt.world_size, words);
  cg_snapshot_sums_write(f, cg_net_fingerprint(s->net), &sums[0], &sums[1]);
  for (size_t i = 0; i < words * (size_t)s->opt.world_size; i++) fprintf(f, "%016" PRIx64 "\n", state[i]);
  return cg_atomic_file_commit(out);
}

int cg_solver_snapshot(cg_solver *s) {
  /* never a snapshot of diverged weights: resuming from it would train on NaN (every rank
   * holds the same weights, so every rank refuses alike) */
  if (!s->opt.continue_on_nonfinite && cg_net_nonfinite_params(s->net))
    return cg_nonfinite_error(s->net, s->source_name, s->iter, "the weights");
  size_t words = 0;
  uint64_t *state = gather_run_state(s, &words);
  if (!state) return cg_error_wrap(CG_ERR_COMM, "snapshot: ");
  if (s->opt.rank != 0) { /* rank 0 writes for the job */
    free(state);
    return CG_OK;
  }
  char *model = snapshot_path(s, ".caffemodel"), *state_path = snapshot_path(s, ".solverstate");
  char *side = snapshot_path(s, ".cgstate");
  int rc = model && state_path && side ? CG_OK : cg_error(CG_ERR_NOMEM, "out of memory");
  if (!rc) {
    CG_LOG_INFO("Snapshotting to binary proto file %s", model);
    rc = cg_net_save_weights(s->net, model);
  }
  if (!rc) {
    CG_LOG_INFO("Snapshotting solver state to binary proto file %s", state_path);
    Caffe__SolverState st = CAFFE__SOLVER_STATE__INIT;
    st.has_iter = st.has_current_step = 1;
    st.iter = s->iter;
    st.current_step = s->current_step;
    st.learned_net = model;
    int learnable = cg_net_num_learnable(s->net);
    size_t total = cg_net_param_count(s->net);
    st.n_history = (size_t)learnable * (size_t)s->history_slots;
    st.history = calloc(st.n_history + 1, sizeof *st.history);
    size_t k = 0;
    for (int slot = 0; slot < s->history_slots; slot++) {
      size_t offset = 0;
      for (int j = 0; j < learnable; j++) {
        cg_blob *b = cg_net_learnable(s->net, j, NULL, NULL);
        st.history[k++] = history_blob(b, s->history + slot * total + offset);
        offset += b->count;
      }
    }
    rc = cg_write_binary_atomic(&st.base, state_path);
    for (size_t i = 0; i < st.n_history; i++) protobuf_c_message_free_unpacked(&st.history[i]->base, NULL);
    free(st.history);
  }
  if (!rc) rc = write_side_file(s, side, state, words, model, state_path);
  if (rc && model && state_path && side) {
    /* Disk full or the like: drop this iteration's files (a set without all three is
     * no snapshot) and say which earlier snapshot a resume would use. */
    unlink(model), unlink(state_path), unlink(side);
    char *previous = cg_solver_latest_snapshot(s);
    if (previous)
      rc = cg_error_wrap(rc, "snapshot at iteration %d failed (the previous snapshot %s is intact): ", s->iter,
                         previous);
    else rc = cg_error_wrap(rc, "snapshot at iteration %d failed (no earlier snapshot exists): ", s->iter);
    free(previous);
  }
  free(state);
  free(model);
  free(state_path);
  free(side);
  return rc;
}

/* learned_net as written (relative to where Caffe ran), else beside the solverstate. */
static char *find_learned_net(const char *state_path, const char *learned) {
  if (cg_path_exists(learned)) return strdup(learned);
  const char *base = strrchr(learned, '/');
  char *beside = cg_path_beside(base ? base + 1 : learned, state_path);
  if (beside && cg_path_exists(beside)) return beside;
  free(beside);
  return NULL;
}

/* STEM.cgstate's run state into *run (left empty when the set has none: a Caffe
 * solverstate, whose data start from the beginning). */
static int read_side_file(cg_solver *s, const char *path, cg_run_state *run) {
  FILE *f = fopen(path, "r");
  if (!f) return CG_OK;
  int version = 0, iter = -1, ranks = 0;
  size_t words = 0;
  int rc = CG_OK;
  uint64_t fingerprint;
  cg_file_sum sums[2];
  if (fscanf(f, "caffegrid-run-state %d iter %d ranks %d words %zu", &version, &iter, &ranks, &words) != 4 ||
      (version != 2 && version != 3) || ranks < 1 || ranks > 65536 || words > ((size_t)1 << 24) / (size_t)ranks ||
      (version == 3 && fscanf(f, " net %" SCNx64 " caffemodel %" SCNu64 " %" SCNx32 " solverstate %" SCNu64
                              " %" SCNx32, &fingerprint, &sums[0].bytes, &sums[0].crc, &sums[1].bytes,
                              &sums[1].crc) != 5))
    rc = cg_error(CG_ERR_CORRUPT, "'%s' is not a caffegrid run-state file", path);
  else if (iter != s->iter)
    rc = cg_error(CG_ERR_INVALID, "'%s' is for iteration %d but the solverstate is at %d", path, iter, s->iter);
  uint64_t *state = rc ? NULL : calloc(words * (size_t)ranks + 1, sizeof(uint64_t));
  for (size_t i = 0; !rc && i < words * (size_t)ranks; i++)
    if (fscanf(f, "%" SCNx64, &state[i]) != 1) rc = cg_error(CG_ERR_CORRUPT, "'%s' is truncated", path);
  fclose(f);
  if (rc) {
    free(state);
    return rc;
  }
  *run = (cg_run_state){.words = state, .per_rank = words, .ranks = ranks};
  return CG_OK;
}

int cg_solver_apply_run_state(cg_solver *s, const cg_run_state *run, const char *origin) {
  if (!run->words) return CG_OK;
  int slice = s->opt.rank;
  if (run->ranks != s->opt.world_size) {
    CG_LOG_WARN("'%s' was saved by %d rank(s), this job has %d: data order will differ from an uninterrupted run",
                origin, run->ranks, s->opt.world_size);
    slice = s->opt.rank % run->ranks;
  }
  int rc = cg_net_set_state(s->net, run->words + run->per_rank * (size_t)slice, run->per_rank);
  return rc ? cg_error_wrap(rc, "%s: ", origin) : CG_OK;
}

/* STEM of STEM.solverstate (malloc'd), or NULL for another name. */
static char *stem_of(const char *state_path) {
  size_t len = strlen(state_path), ext_len = strlen(".solverstate");
  if (len <= ext_len || strcmp(state_path + len - ext_len, ".solverstate") != 0) return NULL;
  return strndup(state_path, len - ext_len);
}

/* A caffegrid set (STEM.cgstate of version 3 beside it) is checked before anything of it is
 * read, and its weights are its own STEM.caffemodel (learned_net names where the set was
 * first written, which a copied folder no longer is). Sets: *own_model malloc'd or NULL. */
static int check_set(const char *state_path, char **own_model) {
  *own_model = NULL;
  char *stem = stem_of(state_path), side[4096], why[1024];
  if (!stem) return CG_OK;
  snprintf(side, sizeof side, "%s.cgstate", stem);
  FILE *f = fopen(side, "r");
  int version = 0;
  if (f) {
    if (fscanf(f, "caffegrid-run-state %d", &version) != 1) version = 0;
    fclose(f);
  }
  int rc = CG_OK;
  if (version >= 3) {
    if (!cg_snapshot_set_verified(stem, false, 0, why, sizeof why))
      rc = cg_error(CG_ERR_CORRUPT, "%s: this snapshot cannot be resumed: %s", state_path, why);
    else if (asprintf(own_model, "%s.caffemodel", stem) < 0)
      *own_model = NULL;
  }
  free(stem);
  return rc;
}

int cg_solver_restore_here(cg_solver *s, const char *state_path, cg_run_state *run) {
  *run = (cg_run_state){0};
  char *own_model = NULL;
  int rc = check_set(state_path, &own_model);
  if (rc) return rc;
  ProtobufCMessage *msg = NULL;
  rc = cg_read_binary(&caffe__solver_state__descriptor, state_path, &msg);
  if (rc) {
    free(own_model);
    return rc;
  }
  Caffe__SolverState *st = (Caffe__SolverState *)msg;
  int learnable = cg_net_num_learnable(s->net);
  size_t expected = (size_t)learnable * (size_t)s->history_slots, total = cg_net_param_count(s->net);
  if (st->n_history != expected) {
    rc = cg_error(CG_ERR_SHAPE,
                  "%s: field 'history' holds %zu blobs but this net and solver type need %zu (a solverstate from a "
                  "different net or solver type?)",
                  state_path, st->n_history, expected);
    goto done;
  }
  for (size_t k = 0; k < expected; k++) {
    cg_blob *b = cg_net_learnable(s->net, (int)(k % (size_t)learnable), NULL, NULL);
    const Caffe__BlobProto *bp = st->history[k];
    if (bp->n_data != b->count) {
      char shape[128];
      rc = cg_error(CG_ERR_SHAPE, "%s: field 'history' blob %zu holds %zu values but the net's parameter is %s", state_path,
                    k, bp->n_data, cg_blob_shape_string(b, shape, sizeof shape));
      goto done;
    }
  }
  if (own_model || (st->learned_net && st->learned_net[0])) {
    char *model = own_model ? own_model : find_learned_net(state_path, st->learned_net);
    own_model = NULL;
    if (!model) {
      rc = cg_error(CG_ERR_IO, "%s: field 'learned_net' names '%s', which exists neither as given nor beside the solverstate",
                    state_path, st->learned_net);
      goto done;
    }
    CG_LOG_INFO("Restoring weights from %s", model);
    rc = cg_net_load_weights(s->net, model);
    if (!rc && !s->opt.continue_on_nonfinite && cg_net_nonfinite_params(s->net))
      rc = cg_error(CG_ERR_NONFINITE, "%s: %zu weight values are NaN or infinite: this snapshot cannot be resumed", model,
                    cg_net_nonfinite_params(s->net));
    free(model);
    if (rc) goto done;
  }
  for (size_t k = 0, offset = 0; k < expected; k++) {
    size_t slot = k / (size_t)learnable;
    if (k % (size_t)learnable == 0) offset = 0;
    memcpy(s->history + slot * total + offset, st->history[k]->data, st->history[k]->n_data * sizeof(float));
    offset += st->history[k]->n_data;
  }
  s->iter = st->iter;
  s->current_step = st->current_step;
  char *stem = stem_of(state_path), *side = NULL;
  if (stem && asprintf(&side, "%s.cgstate", stem) >= 0) {
    rc = read_side_file(s, side, run);
    free(side);
  }
  free(stem);
  if (!rc) CG_LOG_INFO("Restored solver state from %s at iteration %d", state_path, s->iter);
done:
  free(own_model);
  protobuf_c_message_free_unpacked(msg, NULL);
  return rc;
}

static bool snapshot_complete(const char *stem) {
  const char *ext[] = {".caffemodel", ".solverstate", ".cgstate"};
  for (int i = 0; i < 3; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s%s", stem, ext[i]);
    if (!cg_path_exists(path)) return false;
  }
  return true;
}

static int newest_first(const void *a, const void *b) {
  long x = *(const long *)a, y = *(const long *)b;
  return (x < y) - (x > y);
}

/* The newest complete set that passes its checks; the ones passed over are named, with why. */
char *cg_solver_latest_snapshot(const cg_solver *s) {
  const char *prefix = s->param->snapshot_prefix;
  if (!prefix) return NULL;
  const char *slash = strrchr(prefix, '/');
  char *dir = slash ? strndup(prefix, (size_t)(slash - prefix)) : strdup(".");
  const char *base = slash ? slash + 1 : prefix;
  size_t base_len = strlen(base), n = 0, cap = 0;
  long *iters = NULL;
  DIR *d = opendir(dir[0] ? dir : "/");
  for (struct dirent *e; d && (e = readdir(d));) {
    const char *name = e->d_name;
    if (strncmp(name, base, base_len) != 0 || strncmp(name + base_len, "_iter_", 6) != 0) continue;
    char *end;
    long iter = strtol(name + base_len + 6, &end, 10);
    if (end == name + base_len + 6 || strcmp(end, ".solverstate") != 0) continue;
    if (n == cap) {
      long *grown = realloc(iters, (cap = cap ? 2 * cap : 16) * sizeof *iters);
      if (!grown) break;
      iters = grown;
    }
    iters[n++] = iter;
  }
  if (d) closedir(d);
  if (n) qsort(iters, n, sizeof *iters, newest_first);
  uint64_t fingerprint = cg_net_fingerprint(s->net);
  char *path = NULL;
  for (size_t i = 0; i < n && !path; i++) {
    char stem[4096], why[1024];
    snprintf(stem, sizeof stem, "%s/%.*s_iter_%ld", dir, (int)base_len, base, iters[i]);
    if (!snapshot_complete(stem)) continue; /* a set being written, or one the disk filled up on */
    if (!cg_snapshot_set_verified(stem, true, fingerprint, why, sizeof why)) {
      CG_LOG_WARN("Skipping the snapshot of iteration %ld: %s", iters[i], why);
      continue;
    }
    if (asprintf(&path, "%s_iter_%ld.solverstate", prefix, iters[i]) < 0) path = NULL;
  }
  if (!path && n) CG_LOG_WARN("None of the %zu snapshot(s) under '%s' can be resumed", n, prefix);
  free(iters);
  free(dir);
  return path;
}
