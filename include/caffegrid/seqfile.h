/* Hadoop SequenceFiles: a reader for versions 1-6 (uncompressed, record- and
 * block-compressed with DefaultCodec/zlib or GzipCodec, sync escapes) and a writer
 * of version-6 files with Text keys and BytesWritable values. Every length read
 * from a file is checked against what is left of it before it is used. */
#ifndef CAFFEGRID_SEQFILE_H
#define CAFFEGRID_SEQFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "caffegrid/api.h"

#ifdef __cplusplus
extern "C" {
#endif

CG_API_BEGIN

typedef enum {
  CG_SEQFILE_NONE,   /* records stored as they are */
  CG_SEQFILE_RECORD, /* each value compressed on its own; keys stored as they are */
  CG_SEQFILE_BLOCK,  /* records grouped in blocks; keys, values and their lengths compressed per block */
} cg_seqfile_compression;

/* What the header says. Strings are NUL-terminated and owned by the reader. */
typedef struct cg_seqfile_header {
  int version;                        /* 1..6 */
  const char *key_class, *value_class; /* "org.apache.hadoop.io.Text", ... */
  cg_seqfile_compression compression;
  const char *codec;                  /* codec class name; NULL when uncompressed */
  bool codec_supported;               /* DefaultCodec or GzipCodec: records can be decompressed */
  int num_metadata;
  const char *const *metadata;        /* 2 * num_metadata strings: key, value, key, value, ... */
  bool has_sync;                      /* false only for version 1 */
  uint8_t sync[16];
  uint64_t data_offset;               /* first byte after the header */
} cg_seqfile_header;

/* Where a record is: the file offset of its length word (record layouts) or of
 * its block's sync escape (block layout), and its index inside the block. */
typedef struct cg_seqfile_pos {
  uint64_t offset;
  uint32_t index;
} cg_seqfile_pos;

/* One record. Pointers are borrowed from the reader until its next call. */
typedef struct cg_seqfile_record {
  const uint8_t *key, *value; /* payloads: the bytes of a Text or BytesWritable; the raw */
  size_t key_len, value_len;  /* serialized form for any other class */
  const uint8_t *raw_key, *raw_value; /* the serialized Writables (values after decompression) */
  size_t raw_key_len, raw_value_len;
  cg_seqfile_pos pos;
} cg_seqfile_record;

typedef struct cg_seqfile cg_seqfile;

/* Opens and maps `path` and parses its header. Errors name the file and, for a bad
 * or truncated header, the byte offset. An unknown codec is not an error here: the
 * records can still be counted (cg_seqfile_skip), but reading one fails. */
int cg_seqfile_open(const char *path, cg_seqfile **out);
void cg_seqfile_close(cg_seqfile *f); /* NULL is a no-op */
const cg_seqfile_header *cg_seqfile_get_header(const cg_seqfile *f);
const char *cg_seqfile_path(const cg_seqfile *f);
uint64_t cg_seqfile_size(const cg_seqfile *f);

/* Sequential reading from the first record. Both return 1 with a record, 0 at the
 * end of the file (which must come exactly at a record or block boundary), or a
 * negative cg_status whose message names the file and byte offset. */
int cg_seqfile_next(cg_seqfile *f, cg_seqfile_record *rec);
/* Only the position of the next record; checks the framing but decompresses nothing. */
int cg_seqfile_skip(cg_seqfile *f, cg_seqfile_pos *pos);
void cg_seqfile_rewind(cg_seqfile *f);
/* Random access to a record found earlier by skip or next. Returns 0 or an error. */
int cg_seqfile_read_at(cg_seqfile *f, cg_seqfile_pos pos, cg_seqfile_record *rec);

/* Hadoop's variable-length integers (WritableUtils.writeVLong / readVLong). read
 * returns the bytes used, or 0 when `avail` bytes are not enough. write needs 9
 * bytes of room and returns the bytes written. */
size_t cg_seqfile_read_vlong(const uint8_t *p, size_t avail, int64_t *value);
size_t cg_seqfile_write_vlong(uint8_t *out, int64_t value);

typedef struct cg_seqfile_writer cg_seqfile_writer;

/* Creates `path` (which must not exist) as a version-6 SequenceFile of
 * org.apache.hadoop.io.Text keys and org.apache.hadoop.io.BytesWritable values;
 * compressed files use DefaultCodec (zlib). */
int cg_seqfile_writer_open(const char *path, cg_seqfile_compression compression, cg_seqfile_writer **out);
/* Appends one record: key = the Text's UTF-8 bytes, value = the BytesWritable's bytes. */
int cg_seqfile_writer_append(cg_seqfile_writer *w, const char *key, size_t key_len, const void *value,
                             size_t value_len);
/* Writes what is buffered and closes; on error the file is removed. */
int cg_seqfile_writer_close(cg_seqfile_writer *w);
/* Abandons the file and removes it. NULL is a no-op. */
void cg_seqfile_writer_abort(cg_seqfile_writer *w);

CG_API_END

#ifdef __cplusplus
}
#endif
#endif
