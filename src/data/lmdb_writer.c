/* LMDB writer used by the convert commands. The database is built under a
 * temporary name beside the target (PATH.tmp.<pid>) and renamed into place when
 * complete, so a reader never sees a partial one. The map starts small and doubles
 * when full (the batch since the last commit is replayed), so writing works under
 * an address-space limit, as reading does. */
#include "caffegrid/lmdb_writer.h"

#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "caffegrid/error.h"

enum { RECORDS_PER_COMMIT = 1000 };
#define BYTES_PER_COMMIT ((size_t)64 << 20)
#define FIRST_MAP_SIZE ((size_t)1 << 20) /* small: every converter test makes it grow */

struct cg_lmdb_writer {
  MDB_env *env;
  MDB_txn *txn;
  MDB_dbi dbi;
  size_t map_size;
  char *path, *temp; /* the target, and the folder written until close */
  /* the records put since the last commit (replayed after the map grows) */
  unsigned char *batch;
  size_t batch_len, batch_cap, pending;
};

static void remove_db(const char *path) {
  char file[4096];
  snprintf(file, sizeof file, "%s/data.mdb", path);
  unlink(file);
  snprintf(file, sizeof file, "%s/lock.mdb", path);
  unlink(file);
  rmdir(path);
}

static int lmdb_failed(const cg_lmdb_writer *w, const char *what, int rc) {
  return cg_error(rc == ENOMEM ? CG_ERR_NOMEM : CG_ERR_IO, "LMDB '%s': %s: %s", w->path, what, mdb_strerror(rc));
}

int cg_lmdb_writer_open(const char *path, cg_lmdb_writer **out) {
  *out = NULL;
  struct stat st;
  if (stat(path, &st) == 0)
    return cg_error(CG_ERR_IO, "'%s' already exists; caffegrid does not overwrite a database (remove it first)", path);
  cg_lmdb_writer *w = calloc(1, sizeof *w);
  if (!w || !(w->path = strdup(path)) || asprintf(&w->temp, "%s.tmp.%ld", path, (long)getpid()) < 0) {
    if (w) free(w->path);
    free(w);
    return cg_error(CG_ERR_NOMEM, "out of memory");
  }
  remove_db(w->temp); /* a folder of this name is ours: left by a crashed run of this pid */
  if (mkdir(w->temp, 0755) != 0) {
    int code = cg_error(CG_ERR_IO, "cannot create '%s': %s", w->temp, strerror(errno));
    free(w->temp), free(w->path), free(w);
    return code;
  }
  w->map_size = FIRST_MAP_SIZE;
  int rc = mdb_env_create(&w->env);
  if (!rc) rc = mdb_env_set_mapsize(w->env, w->map_size);
  if (!rc) rc = mdb_env_open(w->env, w->temp, 0, 0664);
  if (!rc) rc = mdb_txn_begin(w->env, NULL, 0, &w->txn);
  if (!rc) rc = mdb_dbi_open(w->txn, NULL, 0, &w->dbi);
  if (rc) {
    int code = cg_error(CG_ERR_IO, "cannot create LMDB '%s': %s", path, mdb_strerror(rc));
    cg_lmdb_writer_abort(w);
    return code;
  }
  *out = w;
  return CG_OK;
}

/* Keeps a copy of a record of the open batch: key length, value length, key, value. */
static int remember(cg_lmdb_writer *w, const char *key, size_t key_len, const void *value, size_t value_len) {
  size_t need = 2 * sizeof(size_t) + key_len + value_len;
  if (w->batch_len + need > w->batch_cap) {
    size_t cap = w->batch_cap ? w->batch_cap : 1 << 20;
    while (cap < w->batch_len + need) cap *= 2;
    unsigned char *grown = realloc(w->batch, cap);
    if (!grown) return cg_error(CG_ERR_NOMEM, "out of memory buffering records for '%s'", w->path);
    w->batch = grown, w->batch_cap = cap;
  }
  unsigned char *p = w->batch + w->batch_len;
  memcpy(p, &key_len, sizeof key_len);
  memcpy(p + sizeof key_len, &value_len, sizeof value_len);
  memcpy(p + 2 * sizeof(size_t), key, key_len);
  memcpy(p + 2 * sizeof(size_t) + key_len, value, value_len);
  w->batch_len += need;
  return CG_OK;
}

/* The map was full: a twice larger one, and the open batch written again. */
static int grow_and_replay(cg_lmdb_writer *w) {
  mdb_txn_abort(w->txn);
  w->txn = NULL;
  w->map_size *= 2;
  int rc = mdb_env_set_mapsize(w->env, w->map_size);
  if (!rc) rc = mdb_txn_begin(w->env, NULL, 0, &w->txn);
  for (size_t at = 0; !rc && at < w->batch_len;) {
    size_t key_len, value_len;
    memcpy(&key_len, w->batch + at, sizeof key_len);
    memcpy(&value_len, w->batch + at + sizeof key_len, sizeof value_len);
    MDB_val k = {key_len, w->batch + at + 2 * sizeof(size_t)}, v = {value_len, (char *)k.mv_data + key_len};
    rc = mdb_put(w->txn, w->dbi, &k, &v, 0);
    at += 2 * sizeof(size_t) + key_len + value_len;
  }
  return rc;
}

static int commit(cg_lmdb_writer *w) {
  int rc;
  while ((rc = mdb_txn_commit(w->txn)) == MDB_MAP_FULL) {
    w->txn = NULL;
    if ((rc = grow_and_replay(w))) break;
  }
  if (rc == 0) w->txn = NULL;
  w->pending = w->batch_len = 0;
  return rc;
}

int cg_lmdb_writer_put(cg_lmdb_writer *w, const char *key, size_t key_len, const void *value, size_t value_len) {
  int rc = remember(w, key, key_len, value, value_len);
  if (rc) return rc;
  MDB_val k = {key_len, (void *)key}, v = {value_len, (void *)value};
  while ((rc = mdb_put(w->txn, w->dbi, &k, &v, 0)) == MDB_MAP_FULL)
    if ((rc = grow_and_replay(w))) break; /* the replay ends with this record: put it once more */
  if (!rc && (++w->pending >= RECORDS_PER_COMMIT || w->batch_len >= BYTES_PER_COMMIT)) {
    rc = commit(w);
    if (!rc) rc = mdb_txn_begin(w->env, NULL, 0, &w->txn);
  }
  if (rc) return cg_error(rc == ENOMEM ? CG_ERR_NOMEM : CG_ERR_IO, "LMDB '%s': cannot write record '%.*s': %s",
                          w->path, (int)key_len, key, mdb_strerror(rc));
  return CG_OK;
}

int cg_lmdb_writer_close(cg_lmdb_writer *w) {
  int rc = w->txn ? commit(w) : 0;
  if (rc) {
    int code = lmdb_failed(w, "final commit failed", rc);
    cg_lmdb_writer_abort(w);
    return code;
  }
  mdb_env_close(w->env);
  w->env = NULL;
  char lock[4096];
  snprintf(lock, sizeof lock, "%s/lock.mdb", w->temp);
  unlink(lock); /* readers open MDB_NOLOCK; the published folder holds data.mdb alone */
  int code = CG_OK;
  struct stat st;
  if (stat(w->path, &st) == 0) /* appeared while we wrote: refuse, as at open */
    code = cg_error(CG_ERR_IO, "'%s' appeared while it was being written; caffegrid does not overwrite a database",
                    w->path);
  else if (rename(w->temp, w->path) != 0)
    code = cg_error(CG_ERR_IO, "cannot rename '%s' to '%s': %s", w->temp, w->path, strerror(errno));
  if (code) {
    remove_db(w->temp);
  }
  free(w->batch);
  free(w->temp);
  free(w->path);
  free(w);
  return code;
}

void cg_lmdb_writer_abort(cg_lmdb_writer *w) {
  if (!w) return;
  if (w->txn) mdb_txn_abort(w->txn);
  if (w->env) mdb_env_close(w->env);
  remove_db(w->temp);
  free(w->batch);
  free(w->temp);
  free(w->path);
  free(w);
}
