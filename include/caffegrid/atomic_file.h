/* Writing a file so that, whatever happens (a crash, a full disk, another process
 * of the same job writing beside it), the path holds its old content or all of the
 * new: the bytes go to a temporary file beside it (PATH.tmp.<pid>.<n>, unique per
 * process and call), which is flushed, fsynced and renamed over PATH, and the
 * directory is synced so the new name itself is durable. Every writer of the
 * library and the CLI (weights, solver states, run state, results, features)
 * goes through it. */
#ifndef CAFFEGRID_ATOMIC_FILE_H
#define CAFFEGRID_ATOMIC_FILE_H

#include <stdio.h>

#include "caffegrid/api.h"

#ifdef __cplusplus
extern "C" {
#endif

CG_API_BEGIN

typedef struct cg_atomic_file cg_atomic_file;

/* Creates the temporary file for `path` (binary mode). Errors name `path`. */
int cg_atomic_file_open(const char *path, cg_atomic_file **out);
/* The stream to write to; owned by the cg_atomic_file. */
FILE *cg_atomic_file_stream(cg_atomic_file *f);
/* Flushes, syncs and closes the temporary file and renames it over the path; on any
 * failure (a write error seen by the stream included) removes it and returns an error
 * naming the path. Frees `f` either way. */
int cg_atomic_file_commit(cg_atomic_file *f);
/* Removes the temporary file and frees `f`; the path is untouched. NULL is a no-op. */
void cg_atomic_file_abort(cg_atomic_file *f);
/* The whole of `size` bytes at `data` written to `path` atomically. */
int cg_write_file_atomic(const char *path, const void *data, size_t size);

/* The crash-safety test's hook: once set, the process dies as kill -9 would when a
 * file whose path contains `path_part` is written and synced but not yet renamed
 * into place (the CLI sets it from CAFFEGRID_FAULT_BEFORE_RENAME). NULL or "" turns
 * it off. Not for production use. */
void cg_atomic_file_fault_before_rename(const char *path_part);

CG_API_END

#ifdef __cplusplus
}
#endif
#endif
