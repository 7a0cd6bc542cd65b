/* Shared helpers of the libFuzzer targets in fuzz/: hand a fuzz input to code that
 * wants a path, through an in-memory file (memfd) named /proc/self/fd/N. */
#ifndef CG_FUZZ_COMMON_H
#define CG_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

/* Writes data into a new memfd and puts its path in `path`; returns the fd (close it
 * when done) or -1. */
static inline int fuzz_memfile(const uint8_t *data, size_t size, char *path, size_t path_size) {
  int fd = memfd_create("fuzz", 0);
  if (fd < 0) return -1;
  size_t done = 0;
  while (done < size) {
    ssize_t n = write(fd, data + done, size - done);
    if (n <= 0) {
      close(fd);
      return -1;
    }
    done += (size_t)n;
  }
  snprintf(path, path_size, "/proc/self/fd/%d", fd);
  return fd;
}

#endif
