/* LMDB writer used by the convert commands. */
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

struct cg_lmdb_writer {
  MDB_env *env;
  MDB_txn *txn;
  MDB_dbi dbi;
  size_t pending;
  char *path;
};

static void remove_db(const char *path) {
  char file[4096];
  snprintf(file, sizeof file, "%s/data.mdb", path);
  unlink(file);
  snprintf(file, sizeof file, "%s/lock.mdb", path);
  unlink(file);
  rmdir(path);
}

int cg_lmdb_writer_open(const char *path, cg_lmdb_writer **out) {
  *out = NULL;
  struct stat st;
  if (stat(path, &st) == 0)
    return cg_error(CG_ERR_IO, "'%s' already exists; caffegrid does not overwrite a database (remove it first)", path);
  if (mkdir(path, 0755) != 0) return cg_error(CG_ERR_IO, "cannot create '%s': %s", path, strerror(errno));
  cg_lmdb_writer *w = calloc(1, sizeof *w);
  w->path = strdup(path);
  int rc = mdb_env_create(&w->env);
  if (!rc) rc = mdb_env_set_mapsize(w->env, (size_t)1 << 40);
  if (!rc) rc = mdb_env_open(w->env, path, 0, 0664);
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

int cg_lmdb_writer_put(cg_lmdb_writer *w, const char *key, size_t key_len, const void *value, size_t value_len) {
  MDB_val k = {key_len, (void *)key}, v = {value_len, (void *)value};
  int rc = mdb_put(w->txn, w->dbi, &k, &v, 0);
  if (!rc && ++w->pending >= RECORDS_PER_COMMIT) {
    rc = mdb_txn_commit(w->txn);
    w->txn = NULL;
    if (!rc) rc = mdb_txn_begin(w->env, NULL, 0, &w->txn);
    w->pending = 0;
  }
  if (rc) return cg_error(CG_ERR_IO, "LMDB '%s': cannot write record '%.*s': %s", w->path, (int)key_len, key, mdb_strerror(rc));
  return CG_OK;
}

int cg_lmdb_writer_close(cg_lmdb_writer *w) {
  int rc = w->txn ? mdb_txn_commit(w->txn) : 0;
  w->txn = NULL;
  if (rc) {
    int code = cg_error(CG_ERR_IO, "LMDB '%s': final commit failed: %s", w->path, mdb_strerror(rc));
    cg_lmdb_writer_abort(w);
    return code;
  }
  mdb_env_close(w->env);
  free(w->path);
  free(w);
  return CG_OK;
}

void cg_lmdb_writer_abort(cg_lmdb_writer *w) {
  if (!w) return;
  if (w->txn) mdb_txn_abort(w->txn);
  if (w->env) mdb_env_close(w->env);
  remove_db(w->path);
  free(w->path);
  free(w);
}
