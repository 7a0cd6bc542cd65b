/* Fuzz target: the SequenceFile reader (src/data/seqfile.h) on a file held in
 * memory: header, every record read sequentially, then skipped, then read back by
 * position. */
#include <stdint.h>
#include <unistd.h>

#include "caffegrid/seqfile.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[64];
  int fd = fuzz_memfile(data, size, path, sizeof path);
  if (fd < 0) return 0;
  cg_seqfile *f = NULL;
  if (cg_seqfile_open(path, &f) == 0) {
    (void)cg_seqfile_get_header(f);
    cg_seqfile_record rec;
    cg_seqfile_pos pos[64];
    int n = 0;
    for (int i = 0; i < 10000 && cg_seqfile_next(f, &rec) == 1; i++)
      if (rec.key_len > size || rec.value_len > size + ((size_t)1 << 24)) __builtin_trap();
    cg_seqfile_rewind(f);
    cg_seqfile_pos p;
    for (int i = 0; i < 10000 && cg_seqfile_skip(f, &p) == 1; i++)
      if (n < 64) pos[n++] = p;
    for (int i = n - 1; i >= 0; i--) (void)cg_seqfile_read_at(f, pos[i], &rec);
    cg_seqfile_close(f);
  }
  close(fd);
  return 0;
}
