/* Read-only access to an LMDB database as Caffe writes them (a directory with
 * data.mdb), opened without touching its lock file, iterated in key order. */
#ifndef CG_LMDB_READER_H
#define CG_LMDB_READER_H

#include <stddef.h>
#include <stdint.h>

typedef struct cg_lmdb_reader cg_lmdb_reader;

/* Errors name the path ("cannot open LMDB 'x': No such file or directory"). */
int cg_lmdb_open(const char *path, cg_lmdb_reader **out);
void cg_lmdb_close(cg_lmdb_reader *r);
size_t cg_lmdb_count(const cg_lmdb_reader *r);
/* The next record in key order, wrapping to the first after the last. Key and
 * value are borrowed until the next call. */
int cg_lmdb_next(cg_lmdb_reader *r, const char **key, size_t *key_len, const uint8_t **value, size_t *value_len);
/* Moves to the first record. */
int cg_lmdb_rewind(cg_lmdb_reader *r);
const char *cg_lmdb_path(const cg_lmdb_reader *r);

#endif
