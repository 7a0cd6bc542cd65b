/* The "seqfile" data source: the records of a Hadoop SequenceFile, or of every
 * part file in a directory (names starting with '.' or '_' skipped, the rest in
 * name order), indexed when the source is opened.
 *
 * What a record becomes:
 *  - id: the key. A Text key is used as it is; any other key (e.g. BytesWritable)
 *    when it is printable, otherwise as hex (the first 32 bytes).
 *  - value: the bytes of a BytesWritable or Text value (the serialized bytes for
 *    other classes), recognised in this order:
 *      an image file (JPEG, PNG, GIF, BMP magic)          -> CG_RECORD_IMAGE
 *      BigDL's layout: int32 width, int32 height (big-endian), then width*height*3
 *        bytes of BGR pixels, interleaved               -> CG_RECORD_PIXELS (made channel-first)
 *      a serialized caffe.Datum with a sensible shape    -> CG_RECORD_DATUM
 *    anything else is an error naming the record.
 *  - label, by our key convention: "ID<TAB>LABEL" or "ID LABEL" (the number after
 *    the last tab, or failing that the last space) gives label LABEL and id ID; a key
 *    that is only a number is the label itself (as BigDL writes them) and stays the
 *    id. A Datum's own label wins over the key's. `caffegrid convert seqfile` writes
 *    keys "PATH<TAB>LABEL".
 *
 * CaffeOnSpark's own SequenceFiles use Java-serialized tuples as keys; none is
 * public to test against, so those keys are not decoded: they become hex ids
 * without labels (a Datum value still gives its label). */
#ifndef CG_SEQFILE_SOURCE_H
#define CG_SEQFILE_SOURCE_H

#include <stdbool.h>
#include <stddef.h>

#include "caffegrid/source.h"

/* name "seqfile"; open() takes no options (NULL). */
extern const cg_source_ops cg_source_seqfile;

/* The key convention above: splits key[0..len) into an id of *id_len bytes and a
 * label; returns false (and *id_len = len) when the key carries no label. */
bool cg_seqfile_key_label(const char *key, size_t len, size_t *id_len, float *label);

#endif
