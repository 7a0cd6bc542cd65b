/* Protobuf text-format parser, generic over protobuf-c descriptors. Messages are
 * built with malloc in exactly the layout protobuf-c's unpacker produces, so the
 * result -- or a half-built tree after an error -- is freed by
 * protobuf_c_message_free_unpacked. */
#include "proto/text_format.h"

#include <errno.h>
#include <float.h>
#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caffegrid/error.h"

typedef enum { TOK_END, TOK_IDENT, TOK_NUMBER, TOK_STRING, TOK_SYMBOL } tok_kind;

typedef struct {
  tok_kind kind;
  size_t start, len; /* byte range in the text */
  int line, col;
} token;

typedef struct {
  const char *text;
  size_t len, pos;
  int line, col; /* position of text[pos] */
  const char *source;
  token tok; /* the current token, not yet consumed */
  int depth;
} parser;

/* What the parser remembers about one field of the message being filled. */
typedef struct {
  int line, col; /* where the field was first set; line 0: not set yet */
  size_t cap;    /* allocated length of a repeated field's array */
} field_state;

/* ---- errors ---- */

static int fail_at(const parser *p, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_at(const parser *p, int line, int col, const char *fmt, ...) {
  char what[1536];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return cg_error(CG_ERR_PARSE, "%s:%d:%d: %s", p->source, line, col, what);
}

static int no_memory(void) { return cg_error(CG_ERR_NOMEM, "out of memory while parsing text"); }

/* A printable quote of text[start, end) for error messages, cut at ~40 bytes. */
static const char *excerpt(const parser *p, size_t start, size_t end, char *buf, size_t size) {
  if (start >= end) return "end of input";
  size_t o = 0;
  for (size_t i = start; i < end && o + 8 < size; i++) {
    if (o >= 40) {
      memcpy(buf + o, "...", 3);
      o += 3;
      break;
    }
    unsigned char c = (unsigned char)p->text[i];
    buf[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
  }
  buf[o] = '\0';
  return buf;
}

static const char *tok_excerpt(const parser *p, const token *t, char *buf, size_t size) {
  return excerpt(p, t->start, t->start + t->len, buf, size);
}

/* ---- lexer ---- */

static int is_digit(int c) { return c >= '0' && c <= '9'; }
static int is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static int is_hex(int c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
static int hex_value(int c) { return is_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10; }

static void advance(parser *p) {
  if (p->text[p->pos] == '\n') {
    p->line++;
    p->col = 1;
  } else {
    p->col++;
  }
  p->pos++;
}

static int peek(const parser *p, size_t ahead) {
  return p->pos + ahead < p->len ? (unsigned char)p->text[p->pos + ahead] : -1;
}

/* Reads the next token into p->tok. */
static int lex(parser *p) {
  for (;;) {
    int c = peek(p, 0);
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f') {
      advance(p);
    } else if (c == '#') {
      while (p->pos < p->len && p->text[p->pos] != '\n') advance(p);
    } else {
      break;
    }
  }
  token *t = &p->tok;
  t->start = p->pos;
  t->line = p->line;
  t->col = p->col;
  int c = peek(p, 0);
  if (c < 0) {
    t->kind = TOK_END;
  } else if (is_alpha(c)) {
    t->kind = TOK_IDENT;
    while (is_alpha(peek(p, 0)) || is_digit(peek(p, 0))) advance(p);
  } else if (is_digit(c) || (c == '.' && is_digit(peek(p, 1)))) {
    /* Numbers take every letter, digit and '.' after them (and a sign right
     * after an exponent), so "5x" or "1.2.3" is one bad number, not two tokens. */
    t->kind = TOK_NUMBER;
    int hex = c == '0' && (peek(p, 1) == 'x' || peek(p, 1) == 'X');
    for (;;) {
      int d = peek(p, 0);
      int prev = p->pos > t->start ? (unsigned char)p->text[p->pos - 1] : 0;
      if (is_alpha(d) || is_digit(d) || d == '.' ||
          ((d == '+' || d == '-') && !hex && (prev == 'e' || prev == 'E')))
        advance(p);
      else
        break;
    }
  } else if (c == '"' || c == '\'') {
    t->kind = TOK_STRING;
    advance(p);
    for (;;) {
      int d = peek(p, 0);
      if (d < 0 || d == '\n')
        return fail_at(p, t->line, t->col, "unterminated string (a string must end on the line it starts)");
      advance(p);
      if (d == c) break;
      if (d == '\\' && peek(p, 0) >= 0 && peek(p, 0) != '\n') advance(p);
    }
  } else if (strchr("{}<>[]:,;-", c) && c != '\0') {
    t->kind = TOK_SYMBOL;
    advance(p);
  } else if (c >= 0x20 && c < 0x7f) {
    return fail_at(p, t->line, t->col, "unexpected character '%c'", c);
  } else {
    return fail_at(p, t->line, t->col, "unexpected byte 0x%02x (is this a text file?)", c);
  }
  t->len = p->pos - t->start;
  return 0;
}

static int is_sym(const parser *p, char s) {
  return p->tok.kind == TOK_SYMBOL && p->text[p->tok.start] == s;
}

static int is_word(const parser *p, const token *t, const char *w) {
  size_t n = strlen(w);
  return t->kind == TOK_IDENT && t->len == n && memcmp(p->text + t->start, w, n) == 0;
}

/* ---- strings ---- */

static size_t put_utf8(char *dst, uint32_t cp) {
  if (cp < 0x80) {
    dst[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    dst[0] = (char)(0xc0 | (cp >> 6));
    dst[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    dst[0] = (char)(0xe0 | (cp >> 12));
    dst[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    dst[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  dst[0] = (char)(0xf0 | (cp >> 18));
  dst[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  dst[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
  dst[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

/* Decodes the string token t (quotes and C escapes) onto dst; every escape
 * decodes to no more bytes than it is written with, so dst needs t->len bytes. */
static int decode_string(const parser *p, const token *t, char *dst, size_t *n) {
  const char *raw = p->text + t->start + 1;
  size_t len = t->len - 2, o = *n;
  for (size_t i = 0; i < len; i++) {
    if (raw[i] != '\\') {
      dst[o++] = raw[i];
      continue;
    }
    int col = t->col + 1 + (int)i;
    char e = raw[++i]; /* the lexer guarantees a character after '\' */
    switch (e) {
      case 'n': dst[o++] = '\n'; break;
      case 't': dst[o++] = '\t'; break;
      case 'r': dst[o++] = '\r'; break;
      case 'a': dst[o++] = '\a'; break;
      case 'b': dst[o++] = '\b'; break;
      case 'f': dst[o++] = '\f'; break;
      case 'v': dst[o++] = '\v'; break;
      case '\\': case '\'': case '"': case '?': dst[o++] = e; break;
      case 'x': case 'X': {
        unsigned v = 0, k = 0;
        while (k < 2 && i + 1 < len && is_hex((unsigned char)raw[i + 1])) v = v * 16 + (unsigned)hex_value(raw[++i]), k++;
        if (k == 0) return fail_at(p, t->line, col, "escape '\\x' needs hex digits");
        dst[o++] = (char)v;
        break;
      }
      case 'u': case 'U': {
        unsigned want = e == 'u' ? 4 : 8, k = 0;
        uint32_t cp = 0;
        while (k < want && i + 1 < len && is_hex((unsigned char)raw[i + 1])) cp = cp * 16 + (uint32_t)hex_value(raw[++i]), k++;
        if (k < want) return fail_at(p, t->line, col, "escape '\\%c' needs %u hex digits", e, want);
        if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
          return fail_at(p, t->line, col, "escape '\\%c' names no Unicode character", e);
        o += put_utf8(dst + o, cp);
        break;
      }
      default:
        if (e >= '0' && e <= '7') {
          unsigned v = (unsigned)(e - '0'), k = 1;
          while (k < 3 && i + 1 < len && raw[i + 1] >= '0' && raw[i + 1] <= '7') v = v * 8 + (unsigned)(raw[++i] - '0'), k++;
          if (v > 0377) return fail_at(p, t->line, col, "octal escape is larger than \\377");
          dst[o++] = (char)v;
        } else if ((unsigned char)e >= 0x20 && (unsigned char)e < 0x7f) {
          return fail_at(p, t->line, col, "unknown escape '\\%c' in string", e);
        } else {
          return fail_at(p, t->line, col, "unknown escape in string");
        }
    }
  }
  *n = o;
  return 0;
}

/* Reads one string token and any adjacent ones ("a" "b" is "ab") into a malloc'd,
 * NUL-terminated buffer. */
static int parse_string(parser *p, char **out, size_t *out_len) {
  char *buf = NULL;
  size_t n = 0;
  if (p->tok.kind != TOK_STRING) return cg_error(CG_ERR_INVALID, "internal: parse_string without a string");
  while (p->tok.kind == TOK_STRING) {
    char *grown = realloc(buf, n + p->tok.len + 1);
    if (!grown) {
      free(buf);
      return no_memory();
    }
    buf = grown;
    int rc = decode_string(p, &p->tok, buf, &n);
    if (!rc) rc = lex(p);
    if (rc) {
      free(buf);
      return rc;
    }
  }
  buf[n] = '\0';
  *out = buf;
  *out_len = n;
  return 0;
}

/* ---- numbers ---- */

/* Parses a decimal, 0x-hex or 0-octal integer. Returns 0, or -1 when the text is
 * not an integer, or 1 when it exceeds UINT64_MAX. */
static int parse_magnitude(const char *s, size_t n, uint64_t *out) {
  unsigned base = 10;
  size_t i = 0;
  if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    base = 16;
    i = 2;
  } else if (n > 1 && s[0] == '0') {
    base = 8;
    i = 1;
  }
  if (i >= n) return -1;
  uint64_t v = 0;
  int overflow = 0;
  for (; i < n; i++) {
    int c = (unsigned char)s[i];
    unsigned d;
    if (base == 16 && is_hex(c))
      d = (unsigned)hex_value(c);
    else if (is_digit(c) && (unsigned)(c - '0') < base)
      d = (unsigned)(c - '0');
    else
      return -1;
    if (v > (UINT64_MAX - d) / base) overflow = 1;
    v = v * base + d;
  }
  *out = v;
  return overflow ? 1 : 0;
}

/* Parses a decimal floating-point literal (optional 'f' suffix) independent of
 * the C locale. Returns 0, -1 when not a number, 1 when beyond double range. */
static int parse_real(const char *s, size_t n, double *out) {
  uint64_t mag;
  int r = parse_magnitude(s, n, &mag);
  if (r == 0) {
    *out = (double)mag;
    return 0;
  }
  size_t i = 0, digits = 0;
  while (i < n && is_digit((unsigned char)s[i])) i++, digits++;
  if (i < n && s[i] == '.') {
    i++;
    while (i < n && is_digit((unsigned char)s[i])) i++, digits++;
  }
  if (digits == 0) return -1;
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    i++;
    if (i < n && (s[i] == '+' || s[i] == '-')) i++;
    size_t exp_digits = 0;
    while (i < n && is_digit((unsigned char)s[i])) i++, exp_digits++;
    if (exp_digits == 0) return -1;
  }
  size_t body = i;
  if (i < n && (s[i] == 'f' || s[i] == 'F')) i++;
  if (i != n) return -1;
  /* strtod reads the locale's decimal point, so rewrite '.' into it. */
  const char *point = localeconv()->decimal_point;
  size_t plen = point && *point ? strlen(point) : 1;
  char buf[160];
  if (body + plen > sizeof buf - 1) return -1;
  size_t o = 0;
  for (size_t k = 0; k < body; k++) {
    if (s[k] == '.' && point && *point) {
      memcpy(buf + o, point, plen);
      o += plen;
    } else {
      buf[o++] = s[k];
    }
  }
  buf[o] = '\0';
  errno = 0;
  char *end;
  double v = strtod(buf, &end);
  if (end != buf + o) return -1;
  if (errno == ERANGE && isinf(v)) return 1;
  *out = v;
  return 0;
}

static const char *type_words(const ProtobufCFieldDescriptor *f) {
  switch (f->type) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
      return "an integer";
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64:
      return "an unsigned integer";
    case PROTOBUF_C_TYPE_FLOAT: case PROTOBUF_C_TYPE_DOUBLE: return "a number";
    case PROTOBUF_C_TYPE_BOOL: return "a boolean (true or false)";
    case PROTOBUF_C_TYPE_ENUM: return "an enum value name";
    case PROTOBUF_C_TYPE_STRING: case PROTOBUF_C_TYPE_BYTES: return "a quoted string";
    case PROTOBUF_C_TYPE_MESSAGE: return "a message";
  }
  return "a value";
}

static const char *type_name(const ProtobufCFieldDescriptor *f) {
  static const char *const names[] = {"int32",  "sint32", "sfixed32", "int64", "sint64",
                                      "sfixed64", "uint32", "fixed32", "uint64", "fixed64",
                                      "float",  "double", "bool",     "enum",  "string",
                                      "bytes",  "message"};
  return (unsigned)f->type < sizeof names / sizeof names[0] ? names[f->type] : "value";
}

/* A numeric value as written: an optional '-' and the token after it. */
typedef struct {
  int negative;
  token body;
  size_t start, end; /* the whole text, sign included, for messages */
  int line, col;
} number_text;

/* Consumes an optional '-' and a number (or, where `words_ok`, a word such as inf). */
static int take_number(parser *p, const ProtobufCFieldDescriptor *f, int words_ok, number_text *nt) {
  char buf[64];
  nt->start = p->tok.start;
  nt->line = p->tok.line;
  nt->col = p->tok.col;
  nt->negative = 0;
  if (is_sym(p, '-')) {
    nt->negative = 1;
    int rc = lex(p);
    if (rc) return rc;
  }
  if (p->tok.kind != TOK_NUMBER && !(words_ok && p->tok.kind == TOK_IDENT))
    return fail_at(p, nt->line, nt->col, "field '%s' expects %s, got '%s'", f->name, type_words(f),
                   excerpt(p, nt->start, p->tok.start + p->tok.len, buf, sizeof buf));
  nt->body = p->tok;
  nt->end = p->tok.start + p->tok.len;
  return lex(p);
}

static int parse_integer_value(parser *p, const ProtobufCFieldDescriptor *f, void *slot) {
  number_text nt = {0};
  char buf[64];
  int rc = take_number(p, f, 0, &nt);
  if (rc) return rc;
  uint64_t mag = 0;
  int r = parse_magnitude(p->text + nt.body.start, nt.body.len, &mag);
  const char *got = excerpt(p, nt.start, nt.end, buf, sizeof buf);
  if (r < 0) return fail_at(p, nt.line, nt.col, "field '%s' expects %s, got '%s'", f->name, type_words(f), got);
  int is_unsigned = f->type == PROTOBUF_C_TYPE_UINT32 || f->type == PROTOBUF_C_TYPE_FIXED32 ||
                    f->type == PROTOBUF_C_TYPE_UINT64 || f->type == PROTOBUF_C_TYPE_FIXED64;
  int wide = f->type == PROTOBUF_C_TYPE_INT64 || f->type == PROTOBUF_C_TYPE_SINT64 ||
             f->type == PROTOBUF_C_TYPE_SFIXED64 || f->type == PROTOBUF_C_TYPE_UINT64 ||
             f->type == PROTOBUF_C_TYPE_FIXED64;
  if (is_unsigned && nt.negative && mag != 0)
    return fail_at(p, nt.line, nt.col, "field '%s' expects %s, got '%s'", f->name, type_words(f), got);
  uint64_t limit = is_unsigned ? (wide ? UINT64_MAX : UINT32_MAX)
                               : (wide ? (uint64_t)INT64_MAX : (uint64_t)INT32_MAX) + (nt.negative ? 1u : 0u);
  if (r > 0 || mag > limit)
    return fail_at(p, nt.line, nt.col, "value '%s' is out of range for %s field '%s'", got, type_name(f), f->name);
  if (is_unsigned) {
    if (wide)
      *(uint64_t *)slot = mag;
    else
      *(uint32_t *)slot = (uint32_t)mag;
  } else {
    /* -2^63 has no positive counterpart, so it cannot be negated. */
    int64_t v = !nt.negative ? (int64_t)mag : mag > (uint64_t)INT64_MAX ? INT64_MIN : -(int64_t)mag;
    if (wide)
      *(int64_t *)slot = v;
    else
      *(int32_t *)slot = (int32_t)v;
  }
  return 0;
}

static int word_is(const parser *p, const token *t, const char *w) {
  size_t n = strlen(w);
  if (t->len != n) return 0;
  for (size_t i = 0; i < n; i++)
    if ((p->text[t->start + i] | 0x20) != w[i]) return 0;
  return 1;
}

static int parse_real_value(parser *p, const ProtobufCFieldDescriptor *f, void *slot) {
  number_text nt = {0};
  char buf[64];
  int rc = take_number(p, f, 1, &nt);
  if (rc) return rc;
  const char *got = excerpt(p, nt.start, nt.end, buf, sizeof buf);
  double v;
  if (nt.body.kind == TOK_IDENT) {
    if (word_is(p, &nt.body, "inf") || word_is(p, &nt.body, "infinity"))
      v = INFINITY;
    else if (word_is(p, &nt.body, "nan"))
      v = NAN;
    else
      return fail_at(p, nt.line, nt.col, "field '%s' expects %s, got '%s'", f->name, type_words(f), got);
  } else {
    int r = parse_real(p->text + nt.body.start, nt.body.len, &v);
    if (r < 0) return fail_at(p, nt.line, nt.col, "field '%s' expects %s, got '%s'", f->name, type_words(f), got);
    if (r > 0 || (f->type == PROTOBUF_C_TYPE_FLOAT && isfinite(v) && fabs(v) > FLT_MAX))
      return fail_at(p, nt.line, nt.col, "value '%s' is out of range for %s field '%s'", got, type_name(f), f->name);
  }
  if (nt.negative) v = -v;
  if (f->type == PROTOBUF_C_TYPE_FLOAT)
    *(float *)slot = (float)v;
  else
    *(double *)slot = v;
  return 0;
}

static int parse_bool_value(parser *p, const ProtobufCFieldDescriptor *f, void *slot) {
  char buf[64];
  const token t = p->tok;
  int v = -1;
  if (is_word(p, &t, "true") || is_word(p, &t, "True") || is_word(p, &t, "t")) v = 1;
  if (is_word(p, &t, "false") || is_word(p, &t, "False") || is_word(p, &t, "f")) v = 0;
  if (t.kind == TOK_NUMBER && t.len == 1 && (p->text[t.start] == '0' || p->text[t.start] == '1'))
    v = p->text[t.start] == '1';
  if (v < 0)
    return fail_at(p, t.line, t.col, "field '%s' expects %s, got '%s'", f->name, type_words(f),
                   tok_excerpt(p, &t, buf, sizeof buf));
  *(protobuf_c_boolean *)slot = v;
  return lex(p);
}

static int unknown_enum(parser *p, const ProtobufCFieldDescriptor *f, const char *got, int line, int col) {
  const ProtobufCEnumDescriptor *ed = f->descriptor;
  char names[1024];
  size_t o = 0;
  names[0] = '\0';
  for (unsigned i = 0; i < ed->n_values && o < sizeof names - 1; i++) {
    int w = snprintf(names + o, sizeof names - o, "%s%s", i ? ", " : "", ed->values[i].name);
    if (w < 0) break;
    o += (size_t)w;
  }
  return fail_at(p, line, col, "field '%s' has no enum value '%s' (%s takes: %s)", f->name, got, ed->name, names);
}

static int parse_enum_value(parser *p, const ProtobufCFieldDescriptor *f, void *slot) {
  const ProtobufCEnumDescriptor *ed = f->descriptor;
  char buf[64];
  if (p->tok.kind == TOK_IDENT) {
    const token t = p->tok;
    char name[128];
    const ProtobufCEnumValue *ev = NULL;
    if (t.len < sizeof name) {
      memcpy(name, p->text + t.start, t.len);
      name[t.len] = '\0';
      ev = protobuf_c_enum_descriptor_get_value_by_name(ed, name);
    }
    if (!ev) return unknown_enum(p, f, tok_excerpt(p, &t, buf, sizeof buf), t.line, t.col);
    *(int *)slot = ev->value;
    return lex(p);
  }
  if (p->tok.kind != TOK_NUMBER && !is_sym(p, '-'))
    return fail_at(p, p->tok.line, p->tok.col, "field '%s' expects %s, got '%s'", f->name, type_words(f),
                   tok_excerpt(p, &p->tok, buf, sizeof buf));
  number_text nt = {0};
  int rc = take_number(p, f, 0, &nt);
  if (rc) return rc;
  const char *got = excerpt(p, nt.start, nt.end, buf, sizeof buf);
  uint64_t mag;
  const ProtobufCEnumValue *ev = NULL;
  if (parse_magnitude(p->text + nt.body.start, nt.body.len, &mag) == 0 && mag <= (uint64_t)INT32_MAX + 1u) {
    int64_t v = nt.negative ? -(int64_t)mag : (int64_t)mag;
    if (v >= INT32_MIN && v <= INT32_MAX) ev = protobuf_c_enum_descriptor_get_value(ed, (int)v);
  }
  if (!ev) return unknown_enum(p, f, got, nt.line, nt.col);
  *(int *)slot = ev->value;
  return 0;
}

/* ---- storing values ---- */

static size_t value_size(ProtobufCType type) {
  switch (type) {
    case PROTOBUF_C_TYPE_INT32: case PROTOBUF_C_TYPE_SINT32: case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_FIXED32: return sizeof(uint32_t);
    case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: return sizeof(uint64_t);
    case PROTOBUF_C_TYPE_FLOAT: return sizeof(float);
    case PROTOBUF_C_TYPE_DOUBLE: return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM: return sizeof(int);
    case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
  }
  return 0;
}

/* Where the next value of f goes: the member itself, or a fresh slot past the end
 * of its array (counted only once mark_set commits it, so a failed value leaves
 * the message consistent). */
static void *value_slot(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, field_state *st) {
  char *member = (char *)m + f->offset;
  if (f->label != PROTOBUF_C_LABEL_REPEATED) return member;
  size_t n = *(size_t *)((char *)m + f->quantifier_offset), size = value_size(f->type);
  void **array = (void **)member;
  if (n == st->cap) {
    size_t cap = st->cap ? st->cap * 2 : 4;
    if (cap > SIZE_MAX / size) return NULL;
    void *grown = realloc(*array, cap * size);
    if (!grown) return NULL;
    *array = grown;
    st->cap = cap;
  }
  return (char *)*array + n * size;
}

static void mark_set(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f) {
  char *q = (char *)m + f->quantifier_offset;
  if (f->label == PROTOBUF_C_LABEL_REPEATED)
    (*(size_t *)q)++;
  else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
    *(uint32_t *)q = f->id;
  else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
           f->type != PROTOBUF_C_TYPE_MESSAGE)
    *(protobuf_c_boolean *)q = 1;
}

static int parse_scalar(parser *p, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, field_state *st) {
  char buf[64];
  void *slot = value_slot(m, f, st);
  if (!slot) return no_memory();
  int rc;
  switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES: {
      if (p->tok.kind != TOK_STRING)
        return fail_at(p, p->tok.line, p->tok.col, "field '%s' expects %s, got '%s'", f->name, type_words(f),
                       tok_excerpt(p, &p->tok, buf, sizeof buf));
      token first = p->tok;
      char *s = NULL;
      size_t n = 0;
      rc = parse_string(p, &s, &n);
      if (rc) return rc;
      if (f->type == PROTOBUF_C_TYPE_STRING) {
        if (memchr(s, '\0', n)) {
          free(s);
          return fail_at(p, first.line, first.col, "string field '%s' cannot hold a NUL byte", f->name);
        }
        *(char **)slot = s;
      } else {
        ProtobufCBinaryData *b = slot;
        b->len = n;
        b->data = (uint8_t *)s;
      }
      break;
    }
    case PROTOBUF_C_TYPE_BOOL: rc = parse_bool_value(p, f, slot); break;
    case PROTOBUF_C_TYPE_ENUM: rc = parse_enum_value(p, f, slot); break;
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE: rc = parse_real_value(p, f, slot); break;
    case PROTOBUF_C_TYPE_MESSAGE: return cg_error(CG_ERR_INVALID, "internal: message field '%s' parsed as scalar", f->name);
    default: rc = parse_integer_value(p, f, slot); break;
  }
  if (rc) return rc;
  mark_set(m, f);
  return 0;
}

/* ---- messages ---- */

static int parse_body(parser *p, ProtobufCMessage *m, char close, const token *open, const char *name);

static int parse_submessage(parser *p, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, field_state *st) {
  const ProtobufCMessageDescriptor *sd = f->descriptor;
  const token open = p->tok;
  char close = is_sym(p, '{') ? '}' : '>';
  void *slot = value_slot(m, f, st);
  if (!slot) return no_memory();
  ProtobufCMessage *sub = malloc(sd->sizeof_message);
  if (!sub) return no_memory();
  protobuf_c_message_init(sd, sub);
  *(ProtobufCMessage **)slot = sub;
  mark_set(m, f);
  int rc = lex(p);
  return rc ? rc : parse_body(p, sub, close, &open, f->name);
}

static int parse_value(parser *p, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, field_state *st) {
  char buf[64];
  if (f->type != PROTOBUF_C_TYPE_MESSAGE) return parse_scalar(p, m, f, st);
  if (is_sym(p, '{') || is_sym(p, '<')) return parse_submessage(p, m, f, st);
  const ProtobufCMessageDescriptor *sd = f->descriptor;
  return fail_at(p, p->tok.line, p->tok.col, "field '%s' is a message (%s) and takes '{ ... }', got '%s'", f->name,
                 sd->name, tok_excerpt(p, &p->tok, buf, sizeof buf));
}

/* `field: [v1, v2, ...]`, the current token being '['. */
static int parse_list(parser *p, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, field_state *st) {
  char buf[64];
  const token open = p->tok;
  int rc = lex(p);
  if (rc) return rc;
  if (is_sym(p, ']')) return lex(p);
  for (;;) {
    rc = parse_value(p, m, f, st);
    if (rc) return rc;
    if (is_sym(p, ']')) return lex(p);
    if (!is_sym(p, ','))
      return fail_at(p, p->tok.line, p->tok.col, "expected ',' or ']' in the list for field '%s' opened at %d:%d, got '%s'",
                     f->name, open.line, open.col, tok_excerpt(p, &p->tok, buf, sizeof buf));
    rc = lex(p);
    if (rc) return rc;
  }
}

static int parse_field(parser *p, ProtobufCMessage *m, field_state *states) {
  const ProtobufCMessageDescriptor *desc = m->descriptor;
  char buf[64];
  if (p->tok.kind != TOK_IDENT) {
    if (is_sym(p, '['))
      return fail_at(p, p->tok.line, p->tok.col, "extension and Any fields ('[...]') are not supported");
    return fail_at(p, p->tok.line, p->tok.col, "expected a field name of message '%s', got '%s'", desc->name,
                   tok_excerpt(p, &p->tok, buf, sizeof buf));
  }
  const token name_tok = p->tok;
  char name[128];
  const ProtobufCFieldDescriptor *f = NULL;
  if (name_tok.len < sizeof name) {
    memcpy(name, p->text + name_tok.start, name_tok.len);
    name[name_tok.len] = '\0';
    f = protobuf_c_message_descriptor_get_field_by_name(desc, name);
  }
  if (!f)
    return fail_at(p, name_tok.line, name_tok.col, "message '%s' has no field '%s'", desc->name,
                   tok_excerpt(p, &name_tok, buf, sizeof buf));
  field_state *st = &states[f - desc->fields];
  if (f->label != PROTOBUF_C_LABEL_REPEATED && st->line)
    return fail_at(p, name_tok.line, name_tok.col, "field '%s' is not repeated but is given twice (first at %d:%d)",
                   f->name, st->line, st->col);
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
    /* Members of a oneof share storage, so a second member must not overwrite it. */
    uint32_t chosen = *(uint32_t *)((char *)m + f->quantifier_offset);
    const ProtobufCFieldDescriptor *other = chosen ? protobuf_c_message_descriptor_get_field(desc, (unsigned)chosen) : NULL;
    if (other && other != f)
      return fail_at(p, name_tok.line, name_tok.col, "fields '%s' and '%s' are in the same oneof; give only one",
                     other->name, f->name);
  }
  int rc = lex(p);
  if (rc) return rc;
  int colon = is_sym(p, ':');
  if (colon && (rc = lex(p))) return rc;
  if (!colon && f->type != PROTOBUF_C_TYPE_MESSAGE)
    return fail_at(p, p->tok.line, p->tok.col, "expected ':' after field '%s', got '%s'", f->name,
                   tok_excerpt(p, &p->tok, buf, sizeof buf));
  if (is_sym(p, '[')) {
    if (f->label != PROTOBUF_C_LABEL_REPEATED)
      return fail_at(p, p->tok.line, p->tok.col, "field '%s' is not repeated and cannot take a list", f->name);
    rc = parse_list(p, m, f, st);
  } else {
    rc = parse_value(p, m, f, st);
  }
  if (rc) return rc;
  if (!st->line) {
    st->line = name_tok.line;
    st->col = name_tok.col;
  }
  if (is_sym(p, ',') || is_sym(p, ';')) return lex(p);
  return 0;
}

static int check_required(const parser *p, const ProtobufCMessage *m, const field_state *st, int line, int col) {
  const ProtobufCMessageDescriptor *desc = m->descriptor;
  for (unsigned i = 0; i < desc->n_fields; i++)
    if (desc->fields[i].label == PROTOBUF_C_LABEL_REQUIRED && !st[i].line)
      return fail_at(p, line, col, "message '%s' is missing required field '%s'", desc->name, desc->fields[i].name);
  return 0;
}

/* The fields of m up to `close` ('}' or '>'), or to the end of input when close is
 * 0; consumes the closing symbol. */
static int parse_body(parser *p, ProtobufCMessage *m, char close, const token *open, const char *name) {
  char buf[64];
  if (p->depth >= CG_TEXT_MAX_DEPTH)
    return fail_at(p, open->line, open->col, "messages nested deeper than %d levels", CG_TEXT_MAX_DEPTH);
  field_state *st = calloc(m->descriptor->n_fields + 1, sizeof *st);
  if (!st) return no_memory();
  p->depth++;
  int rc;
  for (;;) {
    if (p->tok.kind == TOK_END) {
      if (close)
        rc = fail_at(p, p->tok.line, p->tok.col, "missing '%c' to close field '%s' opened at %d:%d", close, name,
                     open->line, open->col);
      else
        rc = check_required(p, m, st, p->tok.line, p->tok.col);
      break;
    }
    if (close && is_sym(p, close)) {
      rc = check_required(p, m, st, p->tok.line, p->tok.col);
      if (!rc) rc = lex(p);
      break;
    }
    if (is_sym(p, '}') || is_sym(p, '>')) {
      rc = fail_at(p, p->tok.line, p->tok.col, "unexpected '%s'%s", tok_excerpt(p, &p->tok, buf, sizeof buf),
                   close ? " (this message opened with the other bracket)" : " with no message open");
      break;
    }
    rc = parse_field(p, m, st);
    if (rc) break;
  }
  p->depth--;
  free(st);
  return rc;
}

int cg_text_parse(const ProtobufCMessageDescriptor *desc, const char *text, size_t len, const char *source_name,
                  ProtobufCMessage **out) {
  if (out) *out = NULL;
  if (!desc || !out || (!text && len)) return cg_error(CG_ERR_INVALID, "cg_text_parse: missing argument");
  parser p = {.text = text ? text : "", .len = len, .line = 1, .col = 1, .source = source_name ? source_name : "<text>"};
  /* Editors on some systems start UTF-8 files with a byte-order mark. */
  if (len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0) p.pos = 3;
  ProtobufCMessage *m = malloc(desc->sizeof_message);
  if (!m) return no_memory();
  protobuf_c_message_init(desc, m);
  int rc = lex(&p);
  if (!rc) rc = parse_body(&p, m, 0, &p.tok, desc->name);
  if (rc) {
    protobuf_c_message_free_unpacked(m, NULL);
    return rc;
  }
  *out = m;
  return 0;
}

int cg_text_parse_file(const ProtobufCMessageDescriptor *desc, const char *path, ProtobufCMessage **out) {
  if (out) *out = NULL;
  if (!path) return cg_error(CG_ERR_INVALID, "cg_text_parse_file: no path");
  FILE *fp = fopen(path, "rb");
  if (!fp) return cg_error(CG_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
  char *data = NULL;
  size_t n = 0, cap = 0;
  int rc = 0;
  for (;;) {
    if (n == cap) {
      size_t grown_cap = cap ? cap * 2 : 65536;
      char *grown = grown_cap > cap ? realloc(data, grown_cap) : NULL;
      if (!grown) {
        rc = no_memory();
        break;
      }
      data = grown;
      cap = grown_cap;
    }
    size_t got = fread(data + n, 1, cap - n, fp);
    n += got;
    if (got == 0) {
      if (ferror(fp)) rc = cg_error(CG_ERR_IO, "cannot read '%s': %s", path, strerror(errno));
      break;
    }
  }
  fclose(fp);
  if (!rc) rc = cg_text_parse(desc, data, n, path, out);
  free(data);
  return rc;
}
