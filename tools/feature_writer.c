/* Feature rows as JSON lines, CSV or libsvm (see feature_writer.h). */
#include "feature_writer.h"

#include <math.h>
#include <string.h>

bool cg_features_format_parse(const char *name, cg_features_format *out) {
  if (strcmp(name, "json") == 0) *out = CG_FEATURES_JSON;
  else if (strcmp(name, "csv") == 0) *out = CG_FEATURES_CSV;
  else if (strcmp(name, "libsvm") == 0) *out = CG_FEATURES_LIBSVM;
  else return false;
  return true;
}

/* JSON has no NaN or infinity: those become null. */
static void json_number(FILE *f, float v) {
  if (isfinite(v)) fprintf(f, "%.9g", v);
  else fputs("null", f);
}

static void json_string(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"' || c == '\\') fprintf(f, "\\%c", c);
    else if (c < 0x20) fprintf(f, "\\u%04x", c);
    else fputc(c, f);
  }
  fputc('"', f);
}

/* CSV fields with commas, quotes or line breaks are quoted (RFC 4180). */
static void csv_string(FILE *f, const char *s) {
  if (!strpbrk(s, ",\"\r\n")) {
    fputs(s, f);
    return;
  }
  fputc('"', f);
  for (; *s; s++) {
    if (*s == '"') fputc('"', f);
    fputc(*s, f);
  }
  fputc('"', f);
}

static void label_value(FILE *f, float label) {
  if (label == floorf(label) && fabsf(label) < 1e9f) fprintf(f, "%d", (int)label);
  else fprintf(f, "%.9g", label);
}

void cg_features_write_header(FILE *f, cg_features_format format, const cg_feature_column *cols, int ncols,
                              bool has_label) {
  if (format != CG_FEATURES_CSV) return;
  fputs("SampleID", f);
  for (int c = 0; c < ncols; c++)
    for (size_t k = 0; k < cols[c].width; k++) fprintf(f, ",%s_%zu", cols[c].name, k);
  if (has_label) fputs(",label", f);
  fputc('\n', f);
}

void cg_features_write_row(FILE *f, cg_features_format format, const char *id, const cg_feature_column *cols,
                           const float *const *values, int ncols, bool has_label, float label) {
  switch (format) {
    case CG_FEATURES_JSON:
      fputs("{\"SampleID\":", f);
      json_string(f, id);
      for (int c = 0; c < ncols; c++) {
        fputc(',', f);
        json_string(f, cols[c].name);
        fputs(":[", f);
        for (size_t k = 0; k < cols[c].width; k++) {
          if (k) fputc(',', f);
          json_number(f, values[c][k]);
        }
        fputc(']', f);
      }
      if (has_label) {
        fputs(",\"label\":", f);
        if (isfinite(label)) label_value(f, label);
        else fputs("null", f);
      }
      fputs("}\n", f);
      break;
    case CG_FEATURES_CSV:
      csv_string(f, id);
      for (int c = 0; c < ncols; c++)
        for (size_t k = 0; k < cols[c].width; k++) fprintf(f, ",%.9g", values[c][k]);
      if (has_label) {
        fputc(',', f);
        label_value(f, label);
      }
      fputc('\n', f);
      break;
    case CG_FEATURES_LIBSVM: {
      label_value(f, has_label ? label : 0);
      size_t index = 1;
      for (int c = 0; c < ncols; c++)
        for (size_t k = 0; k < cols[c].width; k++, index++)
          if (values[c][k] != 0) fprintf(f, " %zu:%.9g", index, values[c][k]); /* sparse: zeros left out */
      fputc('\n', f);
      break;
    }
  }
}
