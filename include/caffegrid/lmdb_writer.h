/* Writing a new LMDB of records (for converters): refuses to touch an existing
 * database, commits in batches, and removes a half-written one on failure. */
#ifndef CAFFEGRID_LMDB_WRITER_H
#define CAFFEGRID_LMDB_WRITER_H

#include <stddef.h>
#include <stdint.h>
#include "caffegrid/api.h"

#ifdef __cplusplus
extern "C" {
#endif

CG_API_BEGIN

typedef struct cg_lmdb_writer cg_lmdb_writer;

/* Creates directory `path` (which must not exist) holding data.mdb. */
int cg_lmdb_writer_open(const char *path, cg_lmdb_writer **out);
int cg_lmdb_writer_put(cg_lmdb_writer *w, const char *key, size_t key_len, const void *value, size_t value_len);
/* Commits and closes; on error the directory is removed. */
int cg_lmdb_writer_close(cg_lmdb_writer *w);
/* Abandons the database and removes it (after an error elsewhere). */
void cg_lmdb_writer_abort(cg_lmdb_writer *w);

CG_API_END

#ifdef __cplusplus
}
#endif
#endif
