/* LMDB reader: MDB_RDONLY | MDB_NOLOCK so files we were given are never
 * modified, one long read transaction and a cursor. */
#include "data/lmdb_reader.h"

#include <lmdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "caffegrid/error.h"

struct cg_lmdb_reader {
  MDB_env *env;
  MDB_txn *txn;
  MDB_dbi dbi;
  MDB_cursor *cursor;
  size_t count;
  int started;
  char *path;
};

int cg_lmdb_open(const char *path, cg_lmdb_reader **out) {
  *out = NULL;
  struct stat st;
  if (stat(path, &st) != 0) return cg_error(CG_ERR_IO, "cannot open LMDB '%s': No such file or directory", path);
  unsigned flags = MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS;
  if (!S_ISDIR(st.st_mode)) flags |= MDB_NOSUBDIR;
  cg_lmdb_reader *r = calloc(1, sizeof *r);
  if (!r) return cg_error(CG_ERR_NOMEM, "out of memory");
  r->path = strdup(path);
  int rc = mdb_env_create(&r->env);
  if (!rc) rc = mdb_env_set_mapsize(r->env, (size_t)1 << 40);
  if (!rc) rc = mdb_env_open(r->env, path, flags, 0664);
  if (!rc) rc = mdb_txn_begin(r->env, NULL, MDB_RDONLY, &r->txn);
  if (!rc) rc = mdb_dbi_open(r->txn, NULL, 0, &r->dbi);
  if (!rc) rc = mdb_cursor_open(r->txn, r->dbi, &r->cursor);
  MDB_stat ms;
  if (!rc) rc = mdb_stat(r->txn, r->dbi, &ms);
  if (rc) {
    cg_lmdb_close(r);
    return cg_error(CG_ERR_IO, "cannot open LMDB '%s': %s", path, mdb_strerror(rc));
  }
  r->count = ms.ms_entries;
  if (r->count == 0) {
    cg_lmdb_close(r);
    return cg_error(CG_ERR_INVALID, "LMDB '%s' holds no records", path);
  }
  *out = r;
  return CG_OK;
}

void cg_lmdb_close(cg_lmdb_reader *r) {
  if (!r) return;
  if (r->cursor) mdb_cursor_close(r->cursor);
  if (r->txn) mdb_txn_abort(r->txn);
  if (r->env) mdb_env_close(r->env);
  free(r->path);
  free(r);
}

size_t cg_lmdb_count(const cg_lmdb_reader *r) { return r->count; }
const char *cg_lmdb_path(const cg_lmdb_reader *r) { return r->path; }

int cg_lmdb_rewind(cg_lmdb_reader *r) {
  r->started = 0;
  return CG_OK;
}

int cg_lmdb_next(cg_lmdb_reader *r, const char **key, size_t *key_len, const uint8_t **value, size_t *value_len) {
  MDB_val k, v;
  int rc = mdb_cursor_get(r->cursor, &k, &v, r->started ? MDB_NEXT : MDB_FIRST);
  if (rc == MDB_NOTFOUND) rc = mdb_cursor_get(r->cursor, &k, &v, MDB_FIRST);
  if (rc) return cg_error(CG_ERR_IO, "LMDB '%s': cannot read the next record: %s", r->path, mdb_strerror(rc));
  r->started = 1;
  *key = k.mv_data;
  *key_len = k.mv_size;
  *value = v.mv_data;
  *value_len = v.mv_size;
  return CG_OK;
}
