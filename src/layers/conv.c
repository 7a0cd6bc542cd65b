/* Convolution (Caffe's ConvolutionLayer): through the first of the net's backend's
 * convolution kernels that takes the shape (on the CPU: the direct single-channel
 * kernels, then oneDNN), else im2col of a chunk of images side by side and one
 * gemm of the backend per group over the whole chunk. Also holds what
 * Deconvolution shares with it (conv_common.h): parameter parsing, shapes and the
 * per-image gemm kernels. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "layers/conv_common.h"
#include "layers/scratch.h"
#include "math/backend.h"
#include "math/math.h"

static const Caffe__ConvolutionParameter conv_defaults = CAFFE__CONVOLUTION_PARAMETER__INIT;

enum { CONV_MAX_DIM = 1 << 24 }; /* bigger kernel/pad/stride/dilation values are surely mistakes */
/* Convolution's batched path puts images side by side in the column buffer until it
 * holds this many floats (4 MiB): wide gemms on the small spatial sizes of deep
 * layers (LeNet's conv2 is 64 columns per image), while im2col's output is still
 * in L3 when the gemm reads it (measured: a 32 MiB buffer was slower than per-image). */
enum { CONV_BATCH_FLOATS = 1 << 20 };

/* Reads one of kernel_size/pad/stride/dilation: repeated (once, or once per spatial
 * axis) or the _h/_w pair. `def` < 0: the field is required. For 1-d convolution
 * the height gets `ident`, the value that makes it a no-op. */
static int read_dims(const char *name, size_t n, const uint32_t *v, bool has_h, uint32_t h, bool has_w, uint32_t w,
                     int num_spatial, int def, int ident, int *out_h, int *out_w) {
  uint32_t vals[2] = {0, 0};
  if (has_h || has_w) {
    if (num_spatial != 2)
      return cg_error(CG_ERR_INVALID, "%s_h and %s_w can only be used for 2-d convolution", name, name);
    if (n) return cg_error(CG_ERR_INVALID, "give either %s or %s_h/%s_w, not both", name, name, name);
    vals[0] = h;
    vals[1] = w;
  } else {
    if (!(n == 1 || n == (size_t)num_spatial || (n == 0 && def >= 0)))
      return cg_error(CG_ERR_INVALID,
                      "%s must be given once, or once per spatial dimension (given %zu times; %d spatial dims)",
                      name, n, num_spatial);
    for (int i = 0; i < num_spatial; i++) vals[i] = n == 0 ? (uint32_t)def : v[n == 1 ? 0 : i];
  }
  for (int i = 0; i < num_spatial; i++)
    if (vals[i] > CONV_MAX_DIM) return cg_error(CG_ERR_INVALID, "%s %u is too large", name, vals[i]);
  if (num_spatial == 2) {
    *out_h = (int)vals[0];
    *out_w = (int)vals[1];
  } else {
    *out_h = ident;
    *out_w = (int)vals[0];
  }
  return CG_OK;
}

int cg_conv_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top, bool deconv) {
  (void)top;
  const Caffe__ConvolutionParameter *p = l->param->convolution_param ? l->param->convolution_param : &conv_defaults;
  if (l->num_tops != l->num_bottoms)
    return cg_error(CG_ERR_INVALID, "needs as many tops as bottoms (%d bottoms, %d tops)", l->num_bottoms,
                    l->num_tops);
  const cg_blob *b = bottom[0];
  int axis = cg_blob_canonical_axis(b, p->axis);
  if (axis < 0) return cg_error(CG_ERR_INVALID, "axis %d is out of range for a %d-axis bottom", p->axis, b->num_axes);
  int ns = b->num_axes - axis - 1;
  if (ns < 1 || ns > 2)
    return cg_error(CG_ERR_UNSUPPORTED,
                    "bottom has %d spatial axes after channel axis %d; only 1-d and 2-d convolution are supported", ns,
                    axis);
  cg_conv_state st = {.deconv = deconv, .axis = axis, .num_spatial = ns, .backend = l->backend};
  int rc = read_dims("kernel", p->n_kernel_size, p->kernel_size, p->has_kernel_h, p->kernel_h, p->has_kernel_w,
                     p->kernel_w, ns, -1, 1, &st.kernel_h, &st.kernel_w);
  if (!rc) rc = read_dims("stride", p->n_stride, p->stride, p->has_stride_h, p->stride_h, p->has_stride_w, p->stride_w,
                          ns, 1, 1, &st.stride_h, &st.stride_w);
  if (!rc) rc = read_dims("pad", p->n_pad, p->pad, p->has_pad_h, p->pad_h, p->has_pad_w, p->pad_w, ns, 0, 0, &st.pad_h,
                          &st.pad_w);
  if (!rc) rc = read_dims("dilation", p->n_dilation, p->dilation, false, 0, false, 0, ns, 1, 1, &st.dilation_h,
                          &st.dilation_w);
  if (rc) return rc;
  if (st.kernel_h <= 0 || st.kernel_w <= 0)
    return cg_error(CG_ERR_INVALID, "kernel size must be positive (got %d x %d)", st.kernel_h, st.kernel_w);
  if (st.stride_h <= 0 || st.stride_w <= 0)
    return cg_error(CG_ERR_INVALID, "stride must be positive (got %d x %d)", st.stride_h, st.stride_w);
  if (st.dilation_h <= 0 || st.dilation_w <= 0)
    return cg_error(CG_ERR_INVALID, "dilation must be positive (got %d x %d)", st.dilation_h, st.dilation_w);
  st.is_1x1 = st.kernel_h == 1 && st.kernel_w == 1 && st.stride_h == 1 && st.stride_w == 1 && st.pad_h == 0 &&
              st.pad_w == 0;
  if (!p->has_num_output || p->num_output == 0)
    return cg_error(CG_ERR_INVALID, "num_output must be given and positive");
  if (p->num_output > CONV_MAX_DIM) return cg_error(CG_ERR_INVALID, "num_output %u is too large", p->num_output);
  if (p->group == 0 || p->group > CONV_MAX_DIM) return cg_error(CG_ERR_INVALID, "group must be positive");
  st.num_output = (int)p->num_output;
  st.group = (int)p->group;
  st.channels = b->shape[axis];
  st.bias_term = p->bias_term;
  if (st.channels <= 0) return cg_error(CG_ERR_SHAPE, "bottom has %d channels", st.channels);
  if (st.channels % st.group)
    return cg_error(CG_ERR_INVALID, "channels (%d) must be divisible by group (%d)", st.channels, st.group);
  if (st.num_output % st.group)
    return cg_error(CG_ERR_INVALID, "num_output (%d) must be a multiple of group (%d)", st.num_output, st.group);
  cg_filler weight_filler, bias_filler;
  rc = cg_filler_from_param(p->weight_filler, &weight_filler);
  if (!rc) rc = cg_filler_from_param(p->bias_filler, &bias_filler);
  if (rc) return rc;

  cg_conv_state *s = calloc(1, sizeof *s);
  if (!s) return cg_error(CG_ERR_NOMEM, "out of memory");
  *s = st;
  l->priv = s;
  /* Caffe's weight: [conv_out, conv_in / group, kernel...], conv_out being the
   * gemm output side: num_output for Convolution, channels for Deconvolution. */
  int conv_out = deconv ? st.channels : st.num_output, conv_in = deconv ? st.num_output : st.channels;
  int wshape[4] = {conv_out, conv_in / st.group, st.kernel_h, st.kernel_w};
  if (ns == 1) wshape[2] = st.kernel_w;
  if (!cg_layer_add_param(l, 2 + ns, wshape, weight_filler)) return CG_ERR_SHAPE;
  if (st.bias_term && !cg_layer_add_param(l, 1, &st.num_output, bias_filler)) return CG_ERR_SHAPE;
  return CG_OK;
}

/* (Re)builds the convolution kernel when the bottom's shape changed since it was
 * built: the first of the backend's kernels that takes the shape, or none. */
static int conv_kernel_prepare(cg_conv_state *s) {
  if (s->kernel && s->built_num == s->num && s->built_h == s->im_h && s->built_w == s->im_w) return CG_OK;
  if (s->kernel) s->kernel->free(s->kernel_state);
  s->kernel = NULL, s->kernel_state = NULL;
  cg_conv_shape shape = {
      .num = s->num, .channels = s->channels, .height = s->im_h, .width = s->im_w,
      .num_output = s->num_output, .out_height = s->col_h, .out_width = s->col_w,
      .group = s->group, .kernel_h = s->kernel_h, .kernel_w = s->kernel_w, .stride_h = s->stride_h,
      .stride_w = s->stride_w, .pad_h = s->pad_h, .pad_w = s->pad_w, .dilation_h = s->dilation_h,
      .dilation_w = s->dilation_w, .bias = s->bias_term};
  for (const cg_conv_kernel_ops *const *k = s->backend->conv; *k; k++) {
    int rc = (*k)->create(s->backend, &shape, &s->kernel_state);
    if (rc) return rc;
    if (s->kernel_state) {
      s->kernel = *k;
      break;
    }
  }
  s->built_num = s->num, s->built_h = s->im_h, s->built_w = s->im_w;
  return CG_OK;
}

int cg_conv_reshape(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  cg_conv_state *s = l->priv;
  const cg_blob *b = bottom[0];
  int axis = s->axis, ns = s->num_spatial;
  if (b->num_axes != axis + 1 + ns)
    return cg_error(CG_ERR_SHAPE, "bottom must keep its %d axes (now %d)", axis + 1 + ns, b->num_axes);
  if (b->shape[axis] != s->channels)
    return cg_error(CG_ERR_SHAPE, "bottom has %d channels; the layer was set up for %d", b->shape[axis], s->channels);
  for (int i = 1; i < l->num_bottoms; i++)
    if (!cg_blob_same_shape(bottom[i], b)) return cg_error(CG_ERR_SHAPE, "all bottoms must have the same shape");
  int in_h = ns == 2 ? b->shape[axis + 1] : 1, in_w = b->shape[axis + ns];
  if (in_h <= 0 || in_w <= 0) return cg_error(CG_ERR_SHAPE, "bottom has an empty spatial axis");
  int ext_h = s->dilation_h * (s->kernel_h - 1) + 1, ext_w = s->dilation_w * (s->kernel_w - 1) + 1;
  long long out_h, out_w;
  if (!s->deconv) {
    long long padded_h = (long long)in_h + 2LL * s->pad_h, padded_w = (long long)in_w + 2LL * s->pad_w;
    if (padded_h < ext_h || padded_w < ext_w)
      return cg_error(CG_ERR_SHAPE,
                      "kernel (extent %d x %d with dilation) is larger than the padded input (%lld x %lld)", ext_h,
                      ext_w, padded_h, padded_w);
    out_h = (padded_h - ext_h) / s->stride_h + 1;
    out_w = (padded_w - ext_w) / s->stride_w + 1;
  } else {
    out_h = (long long)s->stride_h * (in_h - 1) + ext_h - 2LL * s->pad_h;
    out_w = (long long)s->stride_w * (in_w - 1) + ext_w - 2LL * s->pad_w;
    if (out_h <= 0 || out_w <= 0)
      return cg_error(CG_ERR_SHAPE, "output size %lld x %lld is not positive (pad too large for the input)", out_h,
                      out_w);
  }
  if (out_h > (1LL << 30) || out_w > (1LL << 30)) return cg_error(CG_ERR_SHAPE, "output size is too large");
  int shape[CG_BLOB_MAX_AXES];
  for (int i = 0; i < axis; i++) shape[i] = b->shape[i];
  shape[axis] = s->num_output;
  if (ns == 2) shape[axis + 1] = (int)out_h;
  shape[axis + ns] = (int)out_w;
  for (int i = 0; i < l->num_tops; i++) {
    int rc = cg_blob_reshape(top[i], axis + 1 + ns, shape);
    if (rc) return rc;
  }
  s->num = (int)cg_blob_count_range(b, 0, axis);
  if (!s->deconv) {
    s->im_channels = s->channels, s->im_h = in_h, s->im_w = in_w;
    s->col_channels = s->num_output, s->col_h = (int)out_h, s->col_w = (int)out_w;
  } else {
    s->im_channels = s->num_output, s->im_h = (int)out_h, s->im_w = (int)out_w;
    s->col_channels = s->channels, s->col_h = in_h, s->col_w = in_w;
  }
  /* gemm dimensions are ints; the column buffer must stay allocatable */
  long long kernel_dim = (long long)(s->im_channels / s->group) * s->kernel_h * s->kernel_w;
  long long col_spatial = (long long)s->col_h * s->col_w, im_spatial = (long long)s->im_h * s->im_w;
  if (kernel_dim > INT_MAX || col_spatial > INT_MAX || im_spatial > INT_MAX ||
      (!s->is_1x1 && kernel_dim * s->group * col_spatial > (1LL << 36)))
    return cg_error(CG_ERR_SHAPE, "convolution is too large (kernel %d x %d over %lld positions)", s->kernel_h,
                    s->kernel_w, col_spatial);
  s->kernel_dim = (int)kernel_dim;
  size_t per_image = (size_t)s->kernel_dim * s->group * (size_t)col_spatial;
  s->batch = 1;
  if (!s->deconv) {
    size_t fit = per_image ? CONV_BATCH_FLOATS / per_image : 1;
    if (fit > (size_t)s->num) fit = (size_t)s->num;
    /* ints index the chunk's columns */
    while (fit > 1 && (long long)fit * col_spatial > INT_MAX) fit--;
    s->batch = fit > 1 ? (int)fit : 1;
  }
  if (!s->deconv) {
    int rc = conv_kernel_prepare(s);
    if (rc) return rc;
    if (s->kernel) return CG_OK; /* no column buffers needed */
  }
  if (s->batch > 1) {
    int rc = cg_scratch_floats(&s->btop, &s->btop_capacity, (size_t)s->col_channels * s->batch * col_spatial);
    if (rc) return rc;
  } else if (s->is_1x1) {
    return CG_OK;
  }
  return cg_scratch_floats(&s->col, &s->col_capacity, per_image * s->batch);
}

void cg_conv_destroy(cg_layer *l) {
  cg_conv_state *s = l->priv;
  if (!s) return;
  free(s->col);
  free(s->btop);
  if (s->kernel) s->kernel->free(s->kernel_state);
  free(s);
  l->priv = NULL;
}

/* im2col of one image into rows ldcol floats apart */
static void im2col(const cg_conv_state *s, const float *im, float *col, size_t ldcol) {
  cg_im2col_ld(im, s->im_channels, s->im_h, s->im_w, s->kernel_h, s->kernel_w, s->pad_h, s->pad_w, s->stride_h,
               s->stride_w, s->dilation_h, s->dilation_w, col, ldcol);
}

/* adds col (rows ldcol floats apart) into one image */
static void col2im(const cg_conv_state *s, const float *col, size_t ldcol, float *im) {
  cg_col2im_ld(col, ldcol, s->im_channels, s->im_h, s->im_w, s->kernel_h, s->kernel_w, s->pad_h, s->pad_w,
               s->stride_h, s->stride_w, s->dilation_h, s->dilation_w, im);
}

void cg_conv_im_to_col_side(cg_conv_state *s, const float *im, const float *weight, float *col_out) {
  const float *col = im;
  if (!s->is_1x1) {
    im2col(s, im, s->col, (size_t)s->col_h * s->col_w);
    col = s->col;
  }
  int m = s->col_channels / s->group, k = s->kernel_dim, n = s->col_h * s->col_w;
  for (int g = 0; g < s->group; g++)
    cg_backend_gemm(s->backend, false, false, m, n, k, 1.0f, weight + (size_t)g * m * k, col + (size_t)g * k * n, 0.0f,
            col_out + (size_t)g * m * n);
}

void cg_conv_col_side_to_im(cg_conv_state *s, const float *col_in, const float *weight, float *im) {
  float *col = s->is_1x1 ? im : s->col;
  int m = s->col_channels / s->group, k = s->kernel_dim, n = s->col_h * s->col_w;
  for (int g = 0; g < s->group; g++)
    cg_backend_gemm(s->backend, true, false, k, n, m, 1.0f, weight + (size_t)g * m * k, col_in + (size_t)g * m * n, 0.0f,
            col + (size_t)g * k * n);
  if (s->is_1x1) return;
  memset(im, 0, (size_t)s->im_channels * s->im_h * s->im_w * sizeof(float));
  col2im(s, col, (size_t)n, im);
}

void cg_conv_weight_grad(cg_conv_state *s, const float *im, const float *col_in, float *weight_diff) {
  const float *col = im;
  if (!s->is_1x1) {
    im2col(s, im, s->col, (size_t)s->col_h * s->col_w);
    col = s->col;
  }
  int m = s->col_channels / s->group, k = s->kernel_dim, n = s->col_h * s->col_w;
  for (int g = 0; g < s->group; g++)
    cg_backend_gemm(s->backend, false, true, m, k, n, 1.0f, col_in + (size_t)g * m * n, col + (size_t)g * k * n, 1.0f,
            weight_diff + (size_t)g * m * k);
}

void cg_conv_add_bias(int channels, int spatial, const float *bias, float *out) {
  for (int c = 0; c < channels; c++) {
    float v = bias[c];
    float *row = out + (size_t)c * spatial;
    for (int i = 0; i < spatial; i++) row[i] += v;
  }
}

void cg_conv_bias_grad(int channels, int spatial, const float *top_diff, float *bias_diff) {
  for (int c = 0; c < channels; c++) {
    const float *row = top_diff + (size_t)c * spatial;
    double sum = 0;
    for (int i = 0; i < spatial; i++) sum += row[i];
    bias_diff[c] += (float)sum;
  }
}

/* The chunk's column buffer: im2col of nb images side by side (rows nb * spatial
 * long), or the bottom itself for a lone 1x1 image. */
static const float *chunk_columns(cg_conv_state *s, const float *bottom, int nb) {
  if (nb == 1 && s->is_1x1) return bottom;
  size_t n = (size_t)s->col_h * s->col_w, bottom_dim = (size_t)s->im_channels * s->im_h * s->im_w;
  for (int b = 0; b < nb; b++) im2col(s, bottom + b * bottom_dim, s->col + b * n, nb * n);
  return s->col;
}

void cg_conv_forward_batch(cg_conv_state *s, const float *bottom, const float *weight, const float *bias, float *top,
                           int nb) {
  int m = s->col_channels / s->group, k = s->kernel_dim, n = s->col_h * s->col_w, cols = nb * n;
  const float *col = chunk_columns(s, bottom, nb);
  float *out = nb == 1 ? top : s->btop;
  for (int g = 0; g < s->group; g++)
    cg_backend_gemm_ld(s->backend, false, false, m, cols, k, 1.0f, weight + (size_t)g * m * k, k, col + (size_t)g * k * cols, cols, 0.0f,
               out + (size_t)g * m * cols, cols);
  if (nb == 1) {
    if (bias) cg_conv_add_bias(s->col_channels, n, bias, top);
    return;
  }
  /* scatter [channels, nb * n] back to nb images of [channels, n], adding the bias */
  size_t top_dim = (size_t)s->col_channels * n;
  for (int b = 0; b < nb; b++)
    for (int c = 0; c < s->col_channels; c++) {
      const float *restrict src = s->btop + (size_t)c * cols + (size_t)b * n;
      float *restrict dst = top + b * top_dim + (size_t)c * n;
      float v = bias ? bias[c] : 0.0f;
      for (int i = 0; i < n; i++) dst[i] = src[i] + v;
    }
}

void cg_conv_backward_batch(cg_conv_state *s, const float *bottom, const float *top_diff, const float *weight,
                            float *weight_diff, float *bottom_diff, int nb) {
  int m = s->col_channels / s->group, k = s->kernel_dim, n = s->col_h * s->col_w, cols = nb * n;
  size_t top_dim = (size_t)s->col_channels * n, bottom_dim = (size_t)s->im_channels * s->im_h * s->im_w;
  const float *td = top_diff;
  if (nb > 1) {
    for (int b = 0; b < nb; b++)
      for (int c = 0; c < s->col_channels; c++)
        memcpy(s->btop + (size_t)c * cols + (size_t)b * n, top_diff + b * top_dim + (size_t)c * n,
               (size_t)n * sizeof(float));
    td = s->btop;
  }
  const float *col = chunk_columns(s, bottom, nb);
  for (int g = 0; g < s->group; g++)
    cg_backend_gemm_ld(s->backend, false, true, m, k, cols, 1.0f, td + (size_t)g * m * cols, cols, col + (size_t)g * k * cols, cols, 1.0f,
               weight_diff + (size_t)g * m * k, k);
  if (!bottom_diff) return;
  bool direct = nb == 1 && s->is_1x1;
  float *dcol = direct ? bottom_diff : s->col;
  for (int g = 0; g < s->group; g++)
    cg_backend_gemm_ld(s->backend, true, false, k, cols, m, 1.0f, weight + (size_t)g * m * k, k, td + (size_t)g * m * cols, cols, 0.0f,
               dcol + (size_t)g * k * cols, cols);
  if (direct) return;
  memset(bottom_diff, 0, nb * bottom_dim * sizeof(float));
  for (int b = 0; b < nb; b++) col2im(s, s->col + (size_t)b * n, (size_t)cols, bottom_diff + b * bottom_dim);
}

static int conv_setup(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  return cg_conv_setup(l, bottom, top, false);
}

static int conv_forward(cg_layer *l, cg_blob *const *bottom, cg_blob *const *top) {
  cg_conv_state *s = l->priv;
  const float *weight = l->params[0]->data, *bias = s->bias_term ? l->params[1]->data : NULL;
  size_t bottom_dim = (size_t)s->im_channels * s->im_h * s->im_w;
  size_t top_dim = (size_t)s->col_channels * s->col_h * s->col_w;
  if (s->kernel) {
    for (int i = 0; i < l->num_bottoms; i++) {
      int rc = s->kernel->forward(s->kernel_state, bottom[i]->data, weight, bias, top[i]->data);
      if (rc) return rc;
    }
    return CG_OK;
  }
  for (int i = 0; i < l->num_bottoms; i++)
    for (int n = 0; n < s->num; n += s->batch) {
      int nb = s->num - n < s->batch ? s->num - n : s->batch;
      cg_conv_forward_batch(s, bottom[i]->data + n * bottom_dim, weight, bias, top[i]->data + n * top_dim, nb);
    }
  return CG_OK;
}

static void conv_backward(cg_layer *l, cg_blob *const *top, const bool *propagate_down, cg_blob *const *bottom) {
  cg_conv_state *s = l->priv;
  const float *weight = l->params[0]->data;
  float *weight_diff = l->params[0]->diff, *bias_diff = s->bias_term ? l->params[1]->diff : NULL;
  size_t bottom_dim = (size_t)s->im_channels * s->im_h * s->im_w;
  size_t top_dim = (size_t)s->col_channels * s->col_h * s->col_w;
  int spatial = s->col_h * s->col_w;
  if (s->kernel) {
    /* backward cannot return an error; the kernels allocated everything when they
     * were built, so a failure here is a bug, not bad input */
    for (int i = 0; i < l->num_tops; i++) {
      int rc = s->kernel->backward(s->kernel_state, bottom[i]->data, top[i]->diff, weight, weight_diff, bias_diff,
                                   propagate_down[i] ? bottom[i]->diff : NULL);
      if (rc) cg_assert_fail(__FILE__, __LINE__, cg_error_message());
    }
    return;
  }
  for (int i = 0; i < l->num_tops; i++) {
    if (bias_diff)
      for (int n = 0; n < s->num; n++) cg_conv_bias_grad(s->num_output, spatial, top[i]->diff + n * top_dim, bias_diff);
    for (int n = 0; n < s->num; n += s->batch) {
      int nb = s->num - n < s->batch ? s->num - n : s->batch;
      cg_conv_backward_batch(s, bottom[i]->data + n * bottom_dim, top[i]->diff + n * top_dim, weight, weight_diff,
                             propagate_down[i] ? bottom[i]->diff + n * bottom_dim : NULL, nb);
    }
  }
}

const cg_layer_ops cg_layer_convolution = {
    .type = "Convolution",
    .min_bottoms = 1,
    .max_bottoms = -1,
    .min_tops = 1,
    .max_tops = -1,
    .setup = conv_setup,
    .reshape = cg_conv_reshape,
    .forward = conv_forward,
    .backward = conv_backward,
    .destroy = cg_conv_destroy,
};
