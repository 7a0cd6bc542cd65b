/* caffegrid plot METRICS.jsonl -o curve.svg: training loss and test accuracy
 * against iterations, from a run's metrics file, as an SVG picture with axes,
 * tick labels, axis titles and a legend. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "flags.h"

typedef struct series {
  const char *name, *colour;
  double *x, *y;
  int n, cap;
} series;

static void add(series *s, double x, double y) {
  if (!isfinite(x) || !isfinite(y)) return;
  if (s->n == s->cap) {
    s->cap = s->cap ? s->cap * 2 : 64;
    s->x = realloc(s->x, sizeof(double) * (size_t)s->cap);
    s->y = realloc(s->y, sizeof(double) * (size_t)s->cap);
  }
  s->x[s->n] = x, s->y[s->n++] = y;
}

/* The number after "key": in a JSON line, or NAN (our metrics lines are flat objects). */
static double field(const char *line, const char *key) {
  char pattern[96];
  snprintf(pattern, sizeof pattern, "\"%s\":", key);
  const char *p = strstr(line, pattern);
  if (!p) return NAN;
  char *end;
  double v = strtod(p + strlen(pattern), &end);
  return end == p + strlen(pattern) ? NAN : v;
}

static double nice_step(double range, int ticks) {
  double raw = range / ticks, mag = pow(10, floor(log10(raw))), r = raw / mag;
  return (r < 1.5 ? 1 : r < 3 ? 2 : r < 7 ? 5 : 10) * mag;
}

/* One panel: frame, ticks, labels, the series as polylines, a legend. */
static void panel(FILE *f, int x0, int y0, int w, int h, const char *title, const char *ylabel, series *s, int ns,
                  double xmax) {
  double ymin = INFINITY, ymax = -INFINITY;
  for (int i = 0; i < ns; i++)
    for (int k = 0; k < s[i].n; k++) ymin = fmin(ymin, s[i].y[k]), ymax = fmax(ymax, s[i].y[k]);
  if (!isfinite(ymin)) ymin = 0, ymax = 1;
  if (ymin > 0 && ymin < ymax * 0.5) ymin = 0;
  if (ymax - ymin < 1e-9) ymax = ymin + 1;
  double ystep = nice_step(ymax - ymin, 5), xstep = nice_step(xmax > 0 ? xmax : 1, 6);
  ymin = floor(ymin / ystep) * ystep, ymax = ceil(ymax / ystep) * ystep;
  if (xmax <= 0) xmax = 1;
#define PX(v) (x0 + (v) / xmax * w)
#define PY(v) (y0 + h - ((v) - ymin) / (ymax - ymin) * h)
  fprintf(f, "<text x='%d' y='%d' font-size='16' text-anchor='middle' font-weight='bold'>%s</text>\n", x0 + w / 2, y0 - 12, title);
  for (double v = ymin; v <= ymax + ystep / 2; v += ystep) {
    fprintf(f, "<line x1='%d' x2='%d' y1='%.1f' y2='%.1f' stroke='#ddd'/>\n", x0, x0 + w, PY(v), PY(v));
    fprintf(f, "<text x='%d' y='%.1f' font-size='12' text-anchor='end'>%g</text>\n", x0 - 6, PY(v) + 4, v);
  }
  for (double v = 0; v <= xmax + xstep / 2; v += xstep) {
    fprintf(f, "<line x1='%.1f' x2='%.1f' y1='%d' y2='%d' stroke='#ddd'/>\n", PX(v), PX(v), y0, y0 + h);
    fprintf(f, "<text x='%.1f' y='%d' font-size='12' text-anchor='middle'>%g</text>\n", PX(v), y0 + h + 16, v);
  }
  fprintf(f, "<rect x='%d' y='%d' width='%d' height='%d' fill='none' stroke='black'/>\n", x0, y0, w, h);
  fprintf(f, "<text x='%d' y='%d' font-size='13' text-anchor='middle'>iteration</text>\n", x0 + w / 2, y0 + h + 36);
  fprintf(f, "<text x='%d' y='%d' font-size='13' text-anchor='middle' transform='rotate(-90 %d %d)'>%s</text>\n",
          x0 - 48, y0 + h / 2, x0 - 48, y0 + h / 2, ylabel);
  for (int i = 0; i < ns; i++) {
    if (!s[i].n) continue;
    fprintf(f, "<polyline fill='none' stroke='%s' stroke-width='2' points='", s[i].colour);
    for (int k = 0; k < s[i].n; k++) fprintf(f, "%.1f,%.1f ", PX(s[i].x[k]), PY(s[i].y[k]));
    fprintf(f, "'/>\n");
    int ly = y0 + 14 + 18 * i;
    fprintf(f, "<line x1='%d' x2='%d' y1='%d' y2='%d' stroke='%s' stroke-width='3'/>\n", x0 + w - 150, x0 + w - 126, ly, ly,
            s[i].colour);
    fprintf(f, "<text x='%d' y='%d' font-size='12'>%s</text>\n", x0 + w - 120, ly + 4, s[i].name);
  }
#undef PX
#undef PY
}

int cmd_plot(int argc, char **argv) {
  cg_flag flags[] = {
      {"o", NULL, false, "output picture (.svg)"},
      {"help", NULL, true, "this help"},
      {NULL, NULL, false, NULL},
  };
  char *positional[64];
  int np = 0;
  if (argc > 64 || cg_flags_parse(argc, argv, flags, positional, &np, "plot")) return 1;
  const char *out = cg_flag_get(flags, "o");
  if (cg_flag_get(flags, "help") || np != 1 || !out) {
    cg_flags_usage(flags, "plot", "METRICS.jsonl -o curve.svg");
    return cg_flag_get(flags, "help") ? 0 : 1;
  }
  size_t len = strlen(out);
  if (len < 4 || strcmp(out + len - 4, ".svg") != 0) {
    fprintf(stderr, "caffegrid plot: -o '%s': the picture is written as SVG, name it *.svg "
                    "(for PNG: rsvg-convert curve.svg > curve.png)\n", out);
    return 1;
  }
  FILE *in = fopen(positional[0], "r");
  if (!in) {
    fprintf(stderr, "caffegrid plot: cannot open '%s': %s\n", positional[0], strerror(errno));
    return 1;
  }
  series loss[2] = {{.name = "train loss (smoothed)", .colour = "#1f77b4"}, {.name = "test loss", .colour = "#ff7f0e"}};
  series acc[1] = {{.name = "test accuracy", .colour = "#2ca02c"}};
  char line[8192];
  double xmax = 0;
  int lines = 0;
  while (fgets(line, sizeof line, in)) {
    double iter = field(line, "iter");
    if (!isfinite(iter)) continue;
    if (strstr(line, "\"type\":\"train\"")) add(&loss[0], iter, field(line, "smoothed_loss")), lines++;
    if (strstr(line, "\"type\":\"test\"")) {
      add(&loss[1], iter, field(line, "loss")), add(&acc[0], iter, field(line, "accuracy")), lines++;
    }
    xmax = fmax(xmax, iter);
  }
  fclose(in);
  if (!lines) {
    fprintf(stderr, "caffegrid plot: '%s' holds no training or test lines (is it a PREFIX_metrics.jsonl?)\n", positional[0]);
    return 1;
  }
  FILE *f = fopen(out, "w");
  if (!f) {
    fprintf(stderr, "caffegrid plot: cannot write '%s': %s\n", out, strerror(errno));
    return 1;
  }
  const int width = 900, height = 420;
  fprintf(f, "<svg xmlns='http://www.w3.org/2000/svg' width='%d' height='%d' viewBox='0 0 %d %d' "
             "font-family='DejaVu Sans, Arial, sans-serif'>\n<rect width='100%%' height='100%%' fill='white'/>\n",
          width, height, width, height);
  panel(f, 70, 40, 340, 310, "Loss", "loss", loss, 2, xmax);
  panel(f, 520, 40, 340, 310, "Test accuracy", "accuracy", acc, 1, xmax);
  fprintf(f, "</svg>\n");
  int bad = fclose(f) != 0;
  for (int i = 0; i < 2; i++) free(loss[i].x), free(loss[i].y);
  free(acc[0].x), free(acc[0].y);
  if (bad) {
    fprintf(stderr, "caffegrid plot: cannot write '%s'\n", out);
    return 1;
  }
  return 0;
}
