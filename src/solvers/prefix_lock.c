/* The snapshot prefix's lock and the removal of stale temporary files (prefix_lock.h). */
#include "solvers/prefix_lock.h"

#include <dirent.h>
#include <stdbool.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <pthread.h>
#include <sys/stat.h>

#include "caffegrid/error.h"
#include "caffegrid/log.h"
#include "caffegrid/solver.h"

/* The locks this process holds, shared by its solvers: several solvers of one program
 * on one prefix (pycaffe scripts comparing runs) are one run, and a flock taken twice
 * by one process through two descriptors would refuse itself. */
enum { MAX_HELD = 64 };
static struct {
  dev_t dev;
  ino_t ino;
  int fd, refs;
} held[MAX_HELD];
static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;

/* The held entry for this file (its descriptor `f`), or -1. */
static int find_held(int f) {
  struct stat st;
  if (fstat(f, &st) != 0) return -1;
  for (int i = 0; i < MAX_HELD; i++)
    if (held[i].refs && held[i].dev == st.st_dev && held[i].ino == st.st_ino) return i;
  return -1;
}

/* PREFIX*.tmp.* files in the prefix's folder: the atomic writer's, orphaned by a crash
 * (a live writer of this prefix would hold the lock we now hold). */
static void remove_stale_temporaries(const char *prefix) {
  char *dir_copy = strdup(prefix), *base_copy = strdup(prefix);
  if (!dir_copy || !base_copy) {
    free(dir_copy), free(base_copy);
    return;
  }
  const char *dir = dirname(dir_copy), *stem = basename(base_copy);
  size_t stem_len = strlen(stem);
  DIR *d = opendir(dir);
  for (struct dirent *e; d && (e = readdir(d));) {
    if (strncmp(e->d_name, stem, stem_len) != 0 || !strstr(e->d_name + stem_len, ".tmp.")) continue;
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) continue;
    if (unlink(path) == 0) CG_LOG_INFO("Removed %s, a temporary file an interrupted run left", path);
  }
  if (d) closedir(d);
  free(dir_copy), free(base_copy);
}

int cg_prefix_lock(const char *prefix, const char *solver_name, int *fd) {
  *fd = -1;
  char path[4096];
  if (snprintf(path, sizeof path, "%s.lock", prefix) >= (int)sizeof path)
    return cg_error(CG_ERR_INVALID, "%s: snapshot_prefix '%s' is too long", solver_name, prefix);
  int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (f < 0) {
    if (errno == ENOENT) return CG_OK; /* no folder yet: no snapshots there to protect */
    return cg_error(CG_ERR_IO, "%s: cannot open the snapshot prefix's lock file '%s': %s", solver_name, path,
                    strerror(errno));
  }
  pthread_mutex_lock(&held_lock);
  int mine = find_held(f);
  if (mine >= 0) { /* this process's run already holds it */
    held[mine].refs++;
    pthread_mutex_unlock(&held_lock);
    close(f);
    *fd = held[mine].fd;
    return CG_OK;
  }
  if (flock(f, LOCK_EX | LOCK_NB) != 0) {
    pthread_mutex_unlock(&held_lock);
    int e = errno;
    char holder[32] = "";
    ssize_t n = pread(f, holder, sizeof holder - 1, 0);
    holder[n > 0 ? n : 0] = 0;
    holder[strcspn(holder, "\n")] = 0;
    close(f);
    if (e != EWOULDBLOCK)
      return cg_error(CG_ERR_IO, "%s: cannot lock '%s': %s", solver_name, path, strerror(e));
    return cg_error(CG_ERR_INVALID,
                    "%s: snapshot_prefix '%s' is in use by another training run (pid %s holds '%s'); wait for it to "
                    "end, or give this run another snapshot_prefix",
                    solver_name, prefix, holder[0] ? holder : "?", path);
  }
  char pid[32];
  int len = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  if (ftruncate(f, 0) != 0 || pwrite(f, pid, (size_t)len, 0) != len)
    CG_LOG_WARN("could not write this pid into '%s': %s", path, strerror(errno));
  struct stat st;
  int slot = -1;
  for (int i = 0; i < MAX_HELD && slot < 0; i++)
    if (!held[i].refs) slot = i;
  if (slot >= 0 && fstat(f, &st) == 0) held[slot].dev = st.st_dev, held[slot].ino = st.st_ino, held[slot].fd = f,
                                       held[slot].refs = 1;
  pthread_mutex_unlock(&held_lock);
  remove_stale_temporaries(prefix);
  *fd = f;
  return CG_OK;
}

void cg_prefix_unlock(int fd) {
  if (fd < 0) return;
  pthread_mutex_lock(&held_lock);
  bool last = true;
  for (int i = 0; i < MAX_HELD; i++)
    if (held[i].refs && held[i].fd == fd) last = --held[i].refs == 0;
  pthread_mutex_unlock(&held_lock);
  if (last) close(fd); /* closing the only descriptor releases the flock */
}

int cg_solver_prefix_lock(const char *prefix, const char *solver_name, int *fd) {
  return cg_prefix_lock(prefix, solver_name, fd);
}

void cg_solver_prefix_unlock(int fd) { cg_prefix_unlock(fd); }
