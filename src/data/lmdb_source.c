/* LMDB as a cg_source of Datum records. Every key is read once at open, so
 * record i is a lookup of key i (random access). Opened MDB_RDONLY | MDB_NOLOCK:
 * the files we are given are never written and lock.mdb is never touched.
 * Clones share the environment and the keys; each has its own read transaction. */
#include <lmdb.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "caffegrid/error.h"
#include "caffegrid/source.h"

typedef struct lmdb_shared {
  atomic_int refs;
  MDB_env *env;
  MDB_dbi dbi;
  char *path;
  size_t count;
  char *keys;      /* every key, each followed by a NUL */
  size_t *offsets; /* count + 1 offsets into keys; key i has length offsets[i+1] - offsets[i] - 1 */
} lmdb_shared;

typedef struct lmdb_handle {
  lmdb_shared *shared;
  MDB_txn *txn;
} lmdb_handle;

static void shared_release(lmdb_shared *s) {
  if (!s || atomic_fetch_sub(&s->refs, 1) != 1) return;
  if (s->env) mdb_env_close(s->env);
  free(s->keys);
  free(s->offsets);
  free(s->path);
  free(s);
}

static void lmdb_close(void *state) {
  lmdb_handle *h = state;
  if (!h) return;
  if (h->txn) mdb_txn_abort(h->txn);
  shared_release(h->shared);
  free(h);
}

/* Reads every key in key order into s->keys / s->offsets. */
static int read_keys(lmdb_shared *s, MDB_txn *txn) {
  MDB_cursor *cursor;
  int rc = mdb_cursor_open(txn, s->dbi, &cursor);
  if (rc) return cg_error(CG_ERR_IO, "LMDB '%s': %s", s->path, mdb_strerror(rc));
  size_t cap = 1 << 16, used = 0;
  s->keys = malloc(cap);
  s->offsets = malloc((s->count + 1) * sizeof *s->offsets);
  if (!s->keys || !s->offsets) {
    mdb_cursor_close(cursor);
    return cg_error(CG_ERR_NOMEM, "LMDB '%s': out of memory for %zu keys", s->path, s->count);
  }
  MDB_val k, v;
  size_t n = 0;
  for (rc = mdb_cursor_get(cursor, &k, &v, MDB_FIRST); rc == 0 && n < s->count;
       rc = mdb_cursor_get(cursor, &k, &v, MDB_NEXT)) {
    if (used + k.mv_size + 1 > cap) {
      while (used + k.mv_size + 1 > cap) cap *= 2;
      char *grown = realloc(s->keys, cap);
      if (!grown) {
        mdb_cursor_close(cursor);
        return cg_error(CG_ERR_NOMEM, "LMDB '%s': out of memory for its keys", s->path);
      }
      s->keys = grown;
    }
    s->offsets[n++] = used;
    memcpy(s->keys + used, k.mv_data, k.mv_size);
    used += k.mv_size;
    s->keys[used++] = '\0';
  }
  mdb_cursor_close(cursor);
  if (rc != 0 && rc != MDB_NOTFOUND)
    return cg_error(CG_ERR_IO, "LMDB '%s': cannot list its keys: %s", s->path, mdb_strerror(rc));
  if (n != s->count)
    return cg_error(CG_ERR_CORRUPT, "LMDB '%s': its header counts %zu records but %zu keys were found", s->path,
                    s->count, n);
  s->offsets[n] = used;
  return CG_OK;
}

static int lmdb_open(const char *location, const void *options, void **state) {
  (void)options;
  *state = NULL;
  struct stat st;
  if (stat(location, &st) != 0)
    return cg_error(CG_ERR_IO, "cannot open LMDB '%s': No such file or directory", location);
  unsigned flags = MDB_RDONLY | MDB_NOLOCK | MDB_NOTLS;
  if (!S_ISDIR(st.st_mode)) flags |= MDB_NOSUBDIR;
  lmdb_handle *h = calloc(1, sizeof *h);
  lmdb_shared *s = calloc(1, sizeof *s);
  char *path = strdup(location);
  if (!h || !s || !path) {
    free(h), free(s), free(path);
    return cg_error(CG_ERR_NOMEM, "out of memory");
  }
  atomic_init(&s->refs, 1);
  s->path = path;
  h->shared = s;
  /* map the data file's size, not the mapsize its writer reserved (ours: 1 TiB), so
   * readers work under an address-space limit (ulimit -v, Slurm, YARN's vmem check);
   * LMDB raises it to what the committed pages need if the file were shorter */
  char data_file[4096];
  snprintf(data_file, sizeof data_file, "%s%s", location, S_ISDIR(st.st_mode) ? "/data.mdb" : "");
  struct stat data_st;
  int rc = mdb_env_create(&s->env);
  if (!rc && stat(data_file, &data_st) == 0 && data_st.st_size > 0)
    rc = mdb_env_set_mapsize(s->env, (size_t)data_st.st_size);
  if (!rc) rc = mdb_env_open(s->env, location, flags, 0664);
  if (!rc) rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &h->txn);
  if (!rc) rc = mdb_dbi_open(h->txn, NULL, 0, &s->dbi);
  MDB_stat ms;
  if (!rc) rc = mdb_stat(h->txn, s->dbi, &ms);
  if (rc) {
    int code = cg_error(CG_ERR_IO, "cannot open LMDB '%s': %s", location, mdb_strerror(rc));
    lmdb_close(h);
    return code;
  }
  s->count = ms.ms_entries;
  if (s->count == 0) {
    lmdb_close(h);
    return cg_error(CG_ERR_INVALID, "LMDB '%s' holds no records", location);
  }
  rc = read_keys(s, h->txn);
  if (rc) {
    lmdb_close(h);
    return rc;
  }
  *state = h;
  return CG_OK;
}

static int lmdb_clone(void *state, void **out) {
  lmdb_handle *src = state;
  *out = NULL;
  lmdb_handle *h = calloc(1, sizeof *h);
  if (!h) return cg_error(CG_ERR_NOMEM, "out of memory");
  int rc = mdb_txn_begin(src->shared->env, NULL, MDB_RDONLY, &h->txn);
  if (rc) {
    free(h);
    return cg_error(CG_ERR_IO, "LMDB '%s': cannot begin a read transaction: %s", src->shared->path, mdb_strerror(rc));
  }
  atomic_fetch_add(&src->shared->refs, 1);
  h->shared = src->shared;
  *out = h;
  return CG_OK;
}

static size_t lmdb_count(void *state) { return ((lmdb_handle *)state)->shared->count; }

static int lmdb_get(void *state, size_t index, cg_record *out) {
  lmdb_handle *h = state;
  lmdb_shared *s = h->shared;
  char *key = s->keys + s->offsets[index];
  MDB_val k = {s->offsets[index + 1] - s->offsets[index] - 1, key}, v;
  int rc = mdb_get(h->txn, s->dbi, &k, &v);
  if (rc) return cg_error(CG_ERR_IO, "record '%s' in LMDB '%s': %s", key, s->path, mdb_strerror(rc));
  out->kind = CG_RECORD_DATUM;
  out->id = key;
  out->bytes = v.mv_data;
  out->num_bytes = v.mv_size;
  return CG_OK;
}

const cg_source_ops cg_source_lmdb = {
    .name = "lmdb",
    .open = lmdb_open,
    .count = lmdb_count,
    .get = lmdb_get,
    .clone = lmdb_clone,
    .close = lmdb_close,
};
