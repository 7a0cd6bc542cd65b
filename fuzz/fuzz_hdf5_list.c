/* Fuzz target: the HDF5Data layer's list files (cg_hdf5_read_list: whitespace-
 * separated paths, resolved from the working directory or beside the list) and the
 * HDF5 signature check, on a file held in memory. */
#include <stdint.h>
#include <unistd.h>

#include "data/hdf5_source.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[64];
  int fd = fuzz_memfile(data, size, path, sizeof path);
  if (fd < 0) return 0;
  char **paths = NULL;
  int n = 0;
  if (cg_hdf5_read_list(path, &paths, &n) == 0) {
    for (int i = 0; i < n; i++)
      if (!paths[i]) __builtin_trap();
    cg_hdf5_free_list(paths, n);
  }
  (void)cg_hdf5_is_file(path);
  close(fd);
  return 0;
}
