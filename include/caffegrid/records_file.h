/* A task's local copy of the records it was handed (Spark rows, or any host
 * program's), written once and then read as the "records" data source by the
 * data layers: ids, labels and bytes exactly as they arrived (encoded images stay
 * encoded, so every epoch decodes, crops and mirrors anew, as Caffe's Data layer
 * does), in the order written. One file: the records, then an index of their
 * offsets and a footer; a file cut short or damaged is refused when opened, and
 * every length is checked against the file before it is used. Host byte order: a
 * copy is read on the machine that wrote it. */
#ifndef CAFFEGRID_RECORDS_FILE_H
#define CAFFEGRID_RECORDS_FILE_H

#include <stddef.h>

#include "caffegrid/api.h"
#include "caffegrid/source.h"

#ifdef __cplusplus
extern "C" {
#endif

CG_API_BEGIN

typedef struct cg_records_writer cg_records_writer;

/* Creates `path`, which must not exist. */
int cg_records_writer_open(const char *path, cg_records_writer **out);
/* Appends one record: its id (NULL: ""), kind, label, and bytes (DATUM, IMAGE,
 * PIXELS: num_bytes; PIXELS also channels x height x width of them) or floats
 * (FLOATS: num_floats = channels x height x width). The shape of PIXELS and
 * FLOATS records must match their size. */
int cg_records_writer_add(cg_records_writer *w, const cg_record *record);
/* Records added so far. */
size_t cg_records_writer_count(const cg_records_writer *w);
/* Writes the index and footer and closes; on error the file is removed. */
int cg_records_writer_close(cg_records_writer *w);
/* Abandons the file and removes it. NULL is a no-op. */
void cg_records_writer_abort(cg_records_writer *w);

CG_API_END

#ifdef __cplusplus
}
#endif
#endif
