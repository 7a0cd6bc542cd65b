/* Atomic file writes (see caffegrid/atomic_file.h). */
#include "caffegrid/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caffegrid/error.h"
#include "caffegrid/atomic_file.h"

struct cg_atomic_file {
  FILE *fp;
  char *path, *tmp;
};

static char fault_before_rename[256]; /* cg_atomic_file_fault_before_rename */

void cg_atomic_file_fault_before_rename(const char *path_part) {
  snprintf(fault_before_rename, sizeof fault_before_rename, "%s", path_part ? path_part : "");
}

/* After the rename, sync the directory too so the new name itself is durable. */
static void sync_parent_dir(const char *path) {
  const char *slash = strrchr(path, '/');
  char dir[4096];
  if (!slash) {
    snprintf(dir, sizeof dir, ".");
  } else if (slash == path) {
    snprintf(dir, sizeof dir, "/");
  } else if ((size_t)(slash - path) < sizeof dir) {
    memcpy(dir, path, (size_t)(slash - path));
    dir[slash - path] = '\0';
  } else {
    return;
  }
  int fd = open(dir, O_RDONLY);
  if (fd >= 0) {
    (void)fsync(fd);
    close(fd);
  }
}

static void release(cg_atomic_file *f) {
  free(f->path);
  free(f->tmp);
  free(f);
}

int cg_atomic_file_open(const char *path, cg_atomic_file **out) {
  *out = NULL;
  if (!path || !path[0]) return cg_error(CG_ERR_INVALID, "no file name to write");
  static unsigned long calls; /* with the pid: a name no other writer of this process or another uses */
  unsigned long n = __atomic_fetch_add(&calls, 1, __ATOMIC_RELAXED);
  cg_atomic_file *f = calloc(1, sizeof *f);
  size_t len = strlen(path) + 64;
  if (f) f->path = strdup(path), f->tmp = malloc(len);
  if (!f || !f->path || !f->tmp) {
    if (f) release(f);
    return cg_error(CG_ERR_NOMEM, "out of memory writing '%s'", path);
  }
  char suffix[64];
  int suffix_len = snprintf(suffix, sizeof suffix, ".tmp.%ld.%lu", (long)getpid(), n);
  /* a legal name near NAME_MAX (255) must not fail on its suffix: the temporary keeps
   * as much of the name as fits */
  const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path;
  size_t keep = strlen(base), room = (size_t)(255 - suffix_len);
  if (keep > room) keep = room;
  snprintf(f->tmp, len, "%.*s%.*s%s", (int)(base - path), path, (int)keep, base, suffix);
  f->fp = fopen(f->tmp, "wb");
  if (!f->fp) {
    int rc = cg_error(CG_ERR_IO, "cannot create '%s': %s", f->tmp, strerror(errno));
    release(f);
    return rc;
  }
  *out = f;
  return CG_OK;
}

FILE *cg_atomic_file_stream(cg_atomic_file *f) { return f->fp; }

void cg_atomic_file_abort(cg_atomic_file *f) {
  if (!f) return;
  if (f->fp) fclose(f->fp);
  unlink(f->tmp);
  release(f);
}

int cg_atomic_file_commit(cg_atomic_file *f) {
  errno = 0;
  int failed = ferror(f->fp) || fflush(f->fp) != 0 || fsync(fileno(f->fp)) != 0;
  int err = errno;
  if (fclose(f->fp) != 0 && !failed) failed = 1, err = errno;
  f->fp = NULL;
  if (failed) {
    int rc = cg_error(CG_ERR_IO, "cannot write '%s': %s", f->path, strerror(err ? err : EIO));
    cg_atomic_file_abort(f);
    return rc;
  }
  /* Fault injection for the crash-safety test: die as a kill -9 would, after the
   * new file is written and before it replaces the old one. */
  if (fault_before_rename[0] && strstr(f->path, fault_before_rename)) _exit(137);
  if (rename(f->tmp, f->path) != 0) {
    int rc = cg_error(CG_ERR_IO, "cannot replace '%s': %s", f->path, strerror(errno));
    cg_atomic_file_abort(f);
    return rc;
  }
  sync_parent_dir(f->path);
  release(f);
  return CG_OK;
}

int cg_write_file_atomic(const char *path, const void *data, size_t size) {
  cg_atomic_file *f;
  int rc = cg_atomic_file_open(path, &f);
  if (rc) return rc;
  if (size && fwrite(data, 1, size, f->fp) != size) {
    rc = cg_error(CG_ERR_IO, "cannot write '%s': %s", path, strerror(errno ? errno : EIO));
    cg_atomic_file_abort(f);
    return rc;
  }
  return cg_atomic_file_commit(f);
}
