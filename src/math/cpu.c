/* Vector helpers and im2col/col2im on the CPU (the gemms are the backend's:
 * backend_cpu.c). */
#include <stdlib.h>
#include <string.h>

#include "math/math.h"

void cg_axpy(size_t n, float alpha, const float *x, float *y) {
  for (size_t i = 0; i < n; i++) y[i] += alpha * x[i];
}

void cg_axpby(size_t n, float alpha, const float *x, float beta, float *y) {
  for (size_t i = 0; i < n; i++) y[i] = alpha * x[i] + beta * y[i];
}

void cg_scal(size_t n, float alpha, float *x) {
  for (size_t i = 0; i < n; i++) x[i] *= alpha;
}

void cg_set(size_t n, float value, float *y) {
  if (value == 0.0f) {
    memset(y, 0, n * sizeof(float));
    return;
  }
  for (size_t i = 0; i < n; i++) y[i] = value;
}

void cg_copy(size_t n, const float *x, float *y) {
  if (x != y) memcpy(y, x, n * sizeof(float));
}

/* Sums in double, in a fixed order: deterministic whatever the thread count. */
float cg_dot(size_t n, const float *x, const float *y) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += (double)x[i] * y[i];
  return (float)s;
}

float cg_asum(size_t n, const float *x) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += x[i] < 0 ? -x[i] : x[i];
  return (float)s;
}

void cg_im2col(const float *im, int channels, int height, int width, int kernel_h, int kernel_w, int pad_h,
               int pad_w, int stride_h, int stride_w, int dilation_h, int dilation_w, float *col) {
  int out_h = (height + 2 * pad_h - (dilation_h * (kernel_h - 1) + 1)) / stride_h + 1;
  int out_w = (width + 2 * pad_w - (dilation_w * (kernel_w - 1) + 1)) / stride_w + 1;
  for (int c = 0; c < channels; c++) {
    const float *plane = im + (size_t)c * height * width;
    for (int ki = 0; ki < kernel_h; ki++) {
      for (int kj = 0; kj < kernel_w; kj++) {
        for (int oy = 0; oy < out_h; oy++) {
          int y = oy * stride_h - pad_h + ki * dilation_h;
          if (y < 0 || y >= height) {
            memset(col, 0, (size_t)out_w * sizeof(float));
            col += out_w;
            continue;
          }
          const float *row = plane + (size_t)y * width;
          int x = kj * dilation_w - pad_w;
          for (int ox = 0; ox < out_w; ox++, x += stride_w) *col++ = (x >= 0 && x < width) ? row[x] : 0.0f;
        }
      }
    }
  }
}

void cg_col2im(const float *col, int channels, int height, int width, int kernel_h, int kernel_w, int pad_h,
               int pad_w, int stride_h, int stride_w, int dilation_h, int dilation_w, float *im) {
  int out_h = (height + 2 * pad_h - (dilation_h * (kernel_h - 1) + 1)) / stride_h + 1;
  int out_w = (width + 2 * pad_w - (dilation_w * (kernel_w - 1) + 1)) / stride_w + 1;
  for (int c = 0; c < channels; c++) {
    float *plane = im + (size_t)c * height * width;
    for (int ki = 0; ki < kernel_h; ki++) {
      for (int kj = 0; kj < kernel_w; kj++) {
        for (int oy = 0; oy < out_h; oy++) {
          int y = oy * stride_h - pad_h + ki * dilation_h;
          if (y < 0 || y >= height) {
            col += out_w;
            continue;
          }
          float *row = plane + (size_t)y * width;
          int x = kj * dilation_w - pad_w;
          for (int ox = 0; ox < out_w; ox++, x += stride_w, col++)
            if (x >= 0 && x < width) row[x] += *col;
        }
      }
    }
  }
}

/* The output columns [*lo, *hi) whose input column x0 + ox * stride lies inside [0, width). */
static void inside_range(int x0, int stride, int width, int out_w, int *lo, int *hi) {
  int a = x0 >= 0 ? 0 : (-x0 + stride - 1) / stride;
  int b = x0 > width - 1 ? 0 : (width - 1 - x0) / stride + 1;
  if (b > out_w) b = out_w;
  if (a > b) a = b;
  *lo = a;
  *hi = b;
}

void cg_im2col_ld(const float *im, int channels, int height, int width, int kernel_h, int kernel_w, int pad_h,
                  int pad_w, int stride_h, int stride_w, int dilation_h, int dilation_w, float *col, size_t ldcol) {
  int out_h = (height + 2 * pad_h - (dilation_h * (kernel_h - 1) + 1)) / stride_h + 1;
  int out_w = (width + 2 * pad_w - (dilation_w * (kernel_w - 1) + 1)) / stride_w + 1;
  for (int c = 0; c < channels; c++) {
    const float *plane = im + (size_t)c * height * width;
    for (int ki = 0; ki < kernel_h; ki++)
      for (int kj = 0; kj < kernel_w; kj++) {
        float *restrict dst = col + ((size_t)(c * kernel_h + ki) * kernel_w + kj) * ldcol;
        int x0 = kj * dilation_w - pad_w, lo, hi;
        inside_range(x0, stride_w, width, out_w, &lo, &hi);
        for (int oy = 0; oy < out_h; oy++, dst += out_w) {
          int y = oy * stride_h - pad_h + ki * dilation_h;
          if (y < 0 || y >= height) {
            memset(dst, 0, (size_t)out_w * sizeof(float));
            continue;
          }
          const float *restrict row = plane + (size_t)y * width;
          for (int ox = 0; ox < lo; ox++) dst[ox] = 0.0f;
          if (stride_w == 1)
            memcpy(dst + lo, row + (x0 + lo), (size_t)(hi - lo) * sizeof(float));
          else
            for (int ox = lo; ox < hi; ox++) dst[ox] = row[x0 + ox * stride_w];
          for (int ox = hi; ox < out_w; ox++) dst[ox] = 0.0f;
        }
      }
  }
}

void cg_col2im_ld(const float *col, size_t ldcol, int channels, int height, int width, int kernel_h, int kernel_w,
                  int pad_h, int pad_w, int stride_h, int stride_w, int dilation_h, int dilation_w, float *im) {
  int out_h = (height + 2 * pad_h - (dilation_h * (kernel_h - 1) + 1)) / stride_h + 1;
  int out_w = (width + 2 * pad_w - (dilation_w * (kernel_w - 1) + 1)) / stride_w + 1;
  for (int c = 0; c < channels; c++) {
    float *plane = im + (size_t)c * height * width;
    for (int ki = 0; ki < kernel_h; ki++)
      for (int kj = 0; kj < kernel_w; kj++) {
        const float *restrict src = col + ((size_t)(c * kernel_h + ki) * kernel_w + kj) * ldcol;
        int x0 = kj * dilation_w - pad_w, lo, hi;
        inside_range(x0, stride_w, width, out_w, &lo, &hi);
        for (int oy = 0; oy < out_h; oy++, src += out_w) {
          int y = oy * stride_h - pad_h + ki * dilation_h;
          if (y < 0 || y >= height) continue;
          float *restrict row = plane + (size_t)y * width;
          if (stride_w == 1)
            for (int ox = lo; ox < hi; ox++) row[x0 + ox] += src[ox];
          else
            for (int ox = lo; ox < hi; ox++) row[x0 + ox * stride_w] += src[ox];
        }
      }
  }
}
