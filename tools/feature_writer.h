/* Rows of extracted features in the formats a pipeline reads next: JSON lines,
 * CSV with a header, or libsvm (label index:value ..., 1-based indices). */
#ifndef CG_TOOLS_FEATURE_WRITER_H
#define CG_TOOLS_FEATURE_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef enum { CG_FEATURES_JSON, CG_FEATURES_CSV, CG_FEATURES_LIBSVM } cg_features_format;

/* "json", "csv" or "libsvm"; false when unknown. */
bool cg_features_format_parse(const char *name, cg_features_format *out);

typedef struct cg_feature_column {
  const char *name;
  size_t width; /* values per row */
} cg_feature_column;

/* CSV's header line (nothing for the other formats). */
void cg_features_write_header(FILE *f, cg_features_format format, const cg_feature_column *cols, int ncols,
                              bool has_label);
/* One row: values[c] points at column c's `width` floats. */
void cg_features_write_row(FILE *f, cg_features_format format, const char *id, const cg_feature_column *cols,
                           const float *const *values, int ncols, bool has_label, float label);

#endif
