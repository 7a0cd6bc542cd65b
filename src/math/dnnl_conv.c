/* Convolution through oneDNN's direct kernels (see dnnl_conv.h). Each operand is a
 * "port": the blob in Caffe's plain layout and, when the primitive prefers
 * another layout, a buffer in that layout plus the reorder between the two. */
#include "math/dnnl_conv.h"

#include <oneapi/dnnl/dnnl.h>
#include <stdlib.h>
#include <string.h>

#include "caffegrid/error.h"
#include "caffegrid/runtime.h"
#include "math/threads.h"

typedef struct port {
  dnnl_memory_t user;       /* plain layout over the caller's pointer */
  dnnl_memory_t inner;      /* the primitive's layout; NULL when that is the plain one */
  dnnl_primitive_t reorder; /* user -> inner for inputs, inner -> user for outputs */
} port;

struct cg_dnnl_conv {
  dnnl_engine_t engine;
  dnnl_stream_t stream;
  int threads;
  bool bias;
  size_t weight_count;
  int num_output;
  dnnl_primitive_t fwd, bwd_data, bwd_weights;
  port src, weights, bias_in, dst;                  /* forward */
  port bd_diff_dst, bd_weights, bd_diff_src;        /* backward data */
  port bw_src, bw_diff_dst, bw_diff_weights, bw_diff_bias; /* backward weights */
  bool bw_shares_diff_dst; /* backward weights reads backward data's reordered top diff */
  bool cropped;            /* oneDNN sees the bottom without rows/columns Caffe never reads */
  size_t bottom_count;
  float *weight_grad, *bias_grad; /* one pass's gradients, added into the blobs' diffs */
};

static int dnnl_failed(dnnl_status_t st, const char *what) {
  return cg_error(st == dnnl_out_of_memory ? CG_ERR_NOMEM : CG_ERR_UNSUPPORTED, "oneDNN %s failed (status %d)", what,
                  (int)st);
}
#define DNNL_TRY(call, what)                          \
  do {                                                \
    dnnl_status_t st_ = (call);                       \
    if (st_ != dnnl_success) return dnnl_failed(st_, what); \
  } while (0)

static int port_init(port *p, dnnl_engine_t eng, const dnnl_memory_desc_t *plain, const dnnl_memory_desc_t *want,
                     bool output) {
  DNNL_TRY(dnnl_memory_create(&p->user, plain, eng, DNNL_MEMORY_NONE), "memory");
  if (dnnl_memory_desc_equal(plain, want)) return CG_OK;
  DNNL_TRY(dnnl_memory_create(&p->inner, want, eng, DNNL_MEMORY_ALLOCATE), "memory");
  dnnl_primitive_desc_t rpd;
  DNNL_TRY(output ? dnnl_reorder_primitive_desc_create(&rpd, want, eng, plain, eng, NULL)
                  : dnnl_reorder_primitive_desc_create(&rpd, plain, eng, want, eng, NULL),
           "reorder");
  dnnl_status_t st = dnnl_primitive_create(&p->reorder, rpd);
  dnnl_primitive_desc_destroy(rpd);
  DNNL_TRY(st, "reorder");
  return CG_OK;
}

static void port_free(port *p) {
  if (p->reorder) dnnl_primitive_destroy(p->reorder);
  if (p->inner) dnnl_memory_destroy(p->inner);
  if (p->user) dnnl_memory_destroy(p->user);
}

static dnnl_memory_t port_mem(const port *p) { return p->inner ? p->inner : p->user; }

static int run_reorder(dnnl_primitive_t r, dnnl_stream_t stream, dnnl_memory_t from, dnnl_memory_t to) {
  dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
  DNNL_TRY(dnnl_primitive_execute(r, stream, 2, args), "reorder");
  return CG_OK;
}

/* Binds the caller's pointer; an input is brought into the primitive's layout. */
static int port_bind(port *p, dnnl_stream_t stream, const float *data, bool output) {
  DNNL_TRY(dnnl_memory_set_data_handle(p->user, (void *)data), "memory");
  if (!output && p->reorder) return run_reorder(p->reorder, stream, p->user, p->inner);
  return CG_OK;
}

/* After the primitive ran: an output goes back to the plain layout. */
static int port_finish(port *p, dnnl_stream_t stream) {
  return p->reorder ? run_reorder(p->reorder, stream, p->inner, p->user) : CG_OK;
}

static const dnnl_memory_desc_t *query(dnnl_primitive_desc_t pd, dnnl_query_t what) {
  return dnnl_primitive_desc_query_md(pd, what, 0);
}

static int make_primitive(dnnl_primitive_desc_t pd, dnnl_primitive_t *out) {
  DNNL_TRY(dnnl_primitive_create(out, pd), "primitive creation");
  return CG_OK;
}

/* The descriptors of one shape; padding_r makes oneDNN's output size equal
 * Caffe's floor((in + 2 pad - extent) / stride) + 1. */
typedef struct geometry {
  dnnl_memory_desc_t src, weights, bias, dst;          /* plain layouts */
  dnnl_memory_desc_t src_any, weights_any, dst_any;    /* the primitive picks (weights always) */
  dnnl_dims_t strides, dilates, pad_l, pad_r;
} geometry;

/* oneDNN's blocked layouts pad channels to a multiple of 16. At 20 input channels
 * (LeNet's conv2) that wastes over a third of the work, and channels-last, which
 * pads nothing, measured 3.4 against 4.9 ms forward+backward. With few channels
 * (a first layer) blocked has kernels that read the plain input directly, which
 * channels-last lost to (CIFAR-10 quick conv1: 9.0 against 5.9 ms); at multiples
 * of 16 the two measured the same. */
static dnnl_format_tag_t activation_layout(const cg_dnnl_conv_shape *s) {
  int per_group = s->channels / s->group;
  return per_group >= 16 && per_group % 16 != 0 ? dnnl_nhwc : dnnl_format_tag_any;
}

static bool geometry_init(const cg_dnnl_conv_shape *s, geometry *g, bool *cropped) {
  int ext_h = s->dilation_h * (s->kernel_h - 1) + 1, ext_w = s->dilation_w * (s->kernel_w - 1) + 1;
  long pad_r_h = (long)(s->out_height - 1) * s->stride_h + ext_h - s->height - s->pad_h;
  long pad_r_w = (long)(s->out_width - 1) * s->stride_w + ext_w - s->width - s->pad_w;
  /* A negative right pad means Caffe's floor leaves the last rows/columns unread:
   * oneDNN wants it non-negative, so it sees the image without them (a view with
   * the full image's strides). Their gradient is zero. */
  long used_h = s->height + (pad_r_h < 0 ? pad_r_h : 0), used_w = s->width + (pad_r_w < 0 ? pad_r_w : 0);
  if (used_h <= 0 || used_w <= 0) return false;
  *cropped = used_h < s->height || used_w < s->width;
  dnnl_dims_t src = {s->num, s->channels, used_h, used_w};
  dnnl_dims_t src_strides = {(long)s->channels * s->height * s->width, (long)s->height * s->width, s->width, 1};
  dnnl_dims_t dst = {s->num, s->num_output, s->out_height, s->out_width};
  dnnl_dims_t bias = {s->num_output};
  dnnl_dims_t w1 = {s->num_output, s->channels, s->kernel_h, s->kernel_w};
  dnnl_dims_t wg = {s->group, s->num_output / s->group, s->channels / s->group, s->kernel_h, s->kernel_w};
  bool grouped = s->group > 1;
  if (dnnl_memory_desc_init_by_strides(&g->src, 4, src, dnnl_f32, src_strides) ||
      dnnl_memory_desc_init_by_tag(&g->dst, 4, dst, dnnl_f32, dnnl_nchw) ||
      dnnl_memory_desc_init_by_tag(&g->bias, 1, bias, dnnl_f32, dnnl_x) ||
      dnnl_memory_desc_init_by_tag(&g->weights, grouped ? 5 : 4, grouped ? wg : w1, dnnl_f32,
                                   grouped ? dnnl_goihw : dnnl_oihw) ||
      dnnl_memory_desc_init_by_tag(&g->src_any, 4, src, dnnl_f32, activation_layout(s)) ||
      dnnl_memory_desc_init_by_tag(&g->dst_any, 4, dst, dnnl_f32, activation_layout(s)) ||
      dnnl_memory_desc_init_by_tag(&g->weights_any, grouped ? 5 : 4, grouped ? wg : w1, dnnl_f32,
                                   dnnl_format_tag_any))
    return false;
  g->strides[0] = s->stride_h, g->strides[1] = s->stride_w;
  g->dilates[0] = s->dilation_h - 1, g->dilates[1] = s->dilation_w - 1;
  g->pad_l[0] = s->pad_h, g->pad_l[1] = s->pad_w;
  g->pad_r[0] = pad_r_h > 0 ? pad_r_h : 0, g->pad_r[1] = pad_r_w > 0 ? pad_r_w : 0;
  return true;
}

/* Builds the three primitives and their ports. Returns 1 when oneDNN has no
 * implementation for the shape (the caller falls back), 0 when built. */
static int build(cg_dnnl_conv *c, const cg_dnnl_conv_shape *s, const geometry *g) {
  dnnl_convolution_desc_t fd, bd, wd;
  const dnnl_memory_desc_t *bias_md = s->bias ? &g->bias : NULL;
  if (dnnl_dilated_convolution_forward_desc_init(&fd, dnnl_forward_training, dnnl_convolution_direct, &g->src_any,
                                                 &g->weights_any, bias_md, &g->dst_any, g->strides, g->dilates,
                                                 g->pad_l, g->pad_r) ||
      dnnl_dilated_convolution_backward_data_desc_init(&bd, dnnl_convolution_direct, &g->src_any, &g->weights_any,
                                                       &g->dst_any, g->strides, g->dilates, g->pad_l, g->pad_r) ||
      dnnl_dilated_convolution_backward_weights_desc_init(&wd, dnnl_convolution_direct, &g->src_any,
                                                          &g->weights_any, bias_md, &g->dst_any, g->strides,
                                                          g->dilates, g->pad_l, g->pad_r))
    return 1;
  dnnl_primitive_desc_t fpd = NULL, bpd = NULL, wpd = NULL;
  int rc = 1;
  if (dnnl_primitive_desc_create(&fpd, &fd, NULL, c->engine, NULL) ||
      dnnl_primitive_desc_create(&bpd, &bd, NULL, c->engine, fpd) ||
      dnnl_primitive_desc_create(&wpd, &wd, NULL, c->engine, fpd))
    goto done;
  rc = make_primitive(fpd, &c->fwd);
  if (!rc) rc = make_primitive(bpd, &c->bwd_data);
  if (!rc) rc = make_primitive(wpd, &c->bwd_weights);
  if (!rc) rc = port_init(&c->src, c->engine, &g->src, query(fpd, dnnl_query_src_md), false);
  if (!rc) rc = port_init(&c->weights, c->engine, &g->weights, query(fpd, dnnl_query_weights_md), false);
  if (!rc && s->bias) rc = port_init(&c->bias_in, c->engine, &g->bias, &g->bias, false);
  if (!rc) rc = port_init(&c->dst, c->engine, &g->dst, query(fpd, dnnl_query_dst_md), true);
  if (!rc) rc = port_init(&c->bd_diff_dst, c->engine, &g->dst, query(bpd, dnnl_query_diff_dst_md), false);
  if (!rc) rc = port_init(&c->bd_weights, c->engine, &g->weights, query(bpd, dnnl_query_weights_md), false);
  if (!rc) rc = port_init(&c->bd_diff_src, c->engine, &g->src, query(bpd, dnnl_query_diff_src_md), true);
  if (!rc) rc = port_init(&c->bw_src, c->engine, &g->src, query(wpd, dnnl_query_src_md), false);
  if (!rc) {
    const dnnl_memory_desc_t *want = query(wpd, dnnl_query_diff_dst_md);
    c->bw_shares_diff_dst = dnnl_memory_desc_equal(want, query(bpd, dnnl_query_diff_dst_md));
    if (!c->bw_shares_diff_dst) rc = port_init(&c->bw_diff_dst, c->engine, &g->dst, want, false);
  }
  if (!rc) rc = port_init(&c->bw_diff_weights, c->engine, &g->weights, query(wpd, dnnl_query_diff_weights_md), true);
  if (!rc && s->bias) rc = port_init(&c->bw_diff_bias, c->engine, &g->bias, &g->bias, true);
done:
  if (fpd) dnnl_primitive_desc_destroy(fpd);
  if (bpd) dnnl_primitive_desc_destroy(bpd);
  if (wpd) dnnl_primitive_desc_destroy(wpd);
  return rc;
}

int cg_dnnl_conv_create(const cg_dnnl_conv_shape *s, cg_dnnl_conv **out) {
  *out = NULL;
  geometry g;
  bool cropped;
  if (!geometry_init(s, &g, &cropped)) return CG_OK;
  cg_dnnl_conv *c = calloc(1, sizeof *c);
  if (!c) return cg_error(CG_ERR_NOMEM, "out of memory");
  c->cropped = cropped;
  c->bottom_count = (size_t)s->num * s->channels * s->height * s->width;
  c->threads = cg_math_threads();
  c->bias = s->bias;
  c->num_output = s->num_output;
  c->weight_count = (size_t)s->num_output * (s->channels / s->group) * s->kernel_h * s->kernel_w;
  int saved = cg_math_threads_enter(c->threads);
  int rc = CG_OK;
  if (dnnl_engine_create(&c->engine, dnnl_cpu, 0) != dnnl_success ||
      dnnl_stream_create(&c->stream, c->engine, dnnl_stream_default_flags) != dnnl_success) {
    rc = 1; /* no usable CPU engine: fall back */
  } else {
    rc = build(c, s, &g);
  }
  if (rc == CG_OK) {
    c->weight_grad = malloc(c->weight_count * sizeof(float));
    c->bias_grad = malloc((size_t)s->num_output * sizeof(float));
    if (!c->weight_grad || !c->bias_grad) rc = cg_error(CG_ERR_NOMEM, "out of memory");
  }
  cg_math_threads_leave(saved);
  if (rc == CG_OK) {
    *out = c;
    return CG_OK;
  }
  cg_dnnl_conv_free(c);
  return rc == 1 ? CG_OK : rc;
}

void cg_dnnl_conv_free(cg_dnnl_conv *c) {
  if (!c) return;
  port *ports[] = {&c->src, &c->weights, &c->bias_in, &c->dst, &c->bd_diff_dst, &c->bd_weights, &c->bd_diff_src,
                   &c->bw_src, &c->bw_diff_dst, &c->bw_diff_weights, &c->bw_diff_bias};
  for (size_t i = 0; i < sizeof ports / sizeof ports[0]; i++) port_free(ports[i]);
  if (c->fwd) dnnl_primitive_destroy(c->fwd);
  if (c->bwd_data) dnnl_primitive_destroy(c->bwd_data);
  if (c->bwd_weights) dnnl_primitive_destroy(c->bwd_weights);
  if (c->stream) dnnl_stream_destroy(c->stream);
  if (c->engine) dnnl_engine_destroy(c->engine);
  free(c->weight_grad);
  free(c->bias_grad);
  free(c);
}

static int forward(cg_dnnl_conv *c, const float *bottom, const float *weight, const float *bias, float *top) {
  int rc = port_bind(&c->src, c->stream, bottom, false);
  if (!rc) rc = port_bind(&c->weights, c->stream, weight, false);
  if (!rc && c->bias) rc = port_bind(&c->bias_in, c->stream, bias, false);
  if (!rc) rc = port_bind(&c->dst, c->stream, top, true);
  if (rc) return rc;
  dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, port_mem(&c->src)},
                             {DNNL_ARG_WEIGHTS, port_mem(&c->weights)},
                             {DNNL_ARG_DST, port_mem(&c->dst)},
                             {DNNL_ARG_BIAS, port_mem(&c->bias_in)}};
  DNNL_TRY(dnnl_primitive_execute(c->fwd, c->stream, c->bias ? 4 : 3, args), "convolution forward");
  return port_finish(&c->dst, c->stream);
}

int cg_dnnl_conv_forward(cg_dnnl_conv *c, const float *bottom, const float *weight, const float *bias, float *top) {
  int saved = cg_math_threads_enter(c->threads);
  int rc = forward(c, bottom, weight, bias, top);
  if (!rc) {
    dnnl_status_t st = dnnl_stream_wait(c->stream);
    if (st != dnnl_success) rc = dnnl_failed(st, "stream wait");
  }
  cg_math_threads_leave(saved);
  return rc;
}

static int backward_data(cg_dnnl_conv *c, const float *weight, float *bottom_diff) {
  if (c->cropped) memset(bottom_diff, 0, c->bottom_count * sizeof(float));
  int rc = port_bind(&c->bd_weights, c->stream, weight, false);
  if (!rc) rc = port_bind(&c->bd_diff_src, c->stream, bottom_diff, true);
  if (rc) return rc;
  dnnl_exec_arg_t args[3] = {{DNNL_ARG_DIFF_DST, port_mem(&c->bd_diff_dst)},
                             {DNNL_ARG_WEIGHTS, port_mem(&c->bd_weights)},
                             {DNNL_ARG_DIFF_SRC, port_mem(&c->bd_diff_src)}};
  DNNL_TRY(dnnl_primitive_execute(c->bwd_data, c->stream, 3, args), "convolution backward data");
  return port_finish(&c->bd_diff_src, c->stream);
}

static int backward_weights(cg_dnnl_conv *c, const float *bottom, const float *top_diff) {
  const port *diff_dst = &c->bd_diff_dst;
  int rc = port_bind(&c->bw_src, c->stream, bottom, false);
  if (!rc && !c->bw_shares_diff_dst) {
    rc = port_bind(&c->bw_diff_dst, c->stream, top_diff, false);
    diff_dst = &c->bw_diff_dst;
  }
  if (!rc) rc = port_bind(&c->bw_diff_weights, c->stream, c->weight_grad, true);
  if (!rc && c->bias) rc = port_bind(&c->bw_diff_bias, c->stream, c->bias_grad, true);
  if (rc) return rc;
  dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, port_mem(&c->bw_src)},
                             {DNNL_ARG_DIFF_DST, port_mem(diff_dst)},
                             {DNNL_ARG_DIFF_WEIGHTS, port_mem(&c->bw_diff_weights)},
                             {DNNL_ARG_DIFF_BIAS, port_mem(&c->bw_diff_bias)}};
  DNNL_TRY(dnnl_primitive_execute(c->bwd_weights, c->stream, c->bias ? 4 : 3, args), "convolution backward weights");
  return port_finish(&c->bw_diff_weights, c->stream);
}

int cg_dnnl_conv_backward(cg_dnnl_conv *c, const float *bottom, const float *top_diff, const float *weight,
                          float *weight_diff, float *bias_diff, float *bottom_diff) {
  int saved = cg_math_threads_enter(c->threads);
  /* the top diff in backward data's layout; backward weights reads it too when it wants the same */
  int rc = port_bind(&c->bd_diff_dst, c->stream, top_diff, false);
  if (!rc) rc = backward_weights(c, bottom, top_diff);
  if (!rc && bottom_diff) rc = backward_data(c, weight, bottom_diff);
  if (!rc) {
    dnnl_status_t st = dnnl_stream_wait(c->stream);
    if (st != dnnl_success) rc = dnnl_failed(st, "stream wait");
  }
  cg_math_threads_leave(saved);
  if (rc) return rc;
  /* Caffe's parameter gradients accumulate across passes (iter_size, several bottoms) */
  for (size_t i = 0; i < c->weight_count; i++) weight_diff[i] += c->weight_grad[i];
  if (bias_diff)
    for (int i = 0; i < c->num_output; i++) bias_diff[i] += c->bias_grad[i];
  return CG_OK;
}
