/* cg_open_regular_file (regular_file.h). */
#include "core/regular_file.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *kind_of(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISCHR(mode) || S_ISBLK(mode)) return "a device";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISDIR(mode)) return "a directory";
  return "not a regular file";
}

int cg_open_regular_file(const char *path, FILE **out, const char **kind) {
  *out = NULL;
  *kind = NULL;
  /* O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused just below */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return errno;
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return e;
  }
  if (!S_ISREG(st.st_mode)) {
    *kind = kind_of(st.st_mode);
    close(fd);
    return -1;
  }
  int flags = fcntl(fd, F_GETFL);
  if (flags >= 0) fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  *out = fdopen(fd, "rb");
  if (!*out) {
    int e = errno;
    close(fd);
    return e;
  }
  return 0;
}
