/* Forward (and some backward) values of the neuron and structural layers on tiny
 * hand-computed cases: activations, Eltwise, Concat/Slice/Split, Flatten/Reshape,
 * Crop, Silence, Bias/Scale, BatchNorm (including its running statistics), ArgMax. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "caffegrid/blob.h"
#include "check.h"
#include "core/layer.h"
#include "proto/text_format.h"

enum { MAX_BLOBS = 4 };

/* One layer under test with its own bottoms and tops. */
typedef struct harness {
  Caffe__LayerParameter *param;
  cg_layer layer;
  cg_blob *bottom[MAX_BLOBS], *top[MAX_BLOBS];
  int nb, nt;
  bool built;
} harness;

static cg_blob *new_blob(const char *shape) {
  cg_blob *b = cg_blob_create(NULL);
  int dims[CG_BLOB_MAX_AXES], n = 0;
  const char *p = shape;
  char *end;
  for (long v = strtol(p, &end, 10); end != p; v = strtol(p, &end, 10)) {
    dims[n++] = (int)v;
    p = end;
  }
  cg_blob_reshape(b, n, dims);
  return b;
}

static void set_values(cg_blob *b, const float *v) { memcpy(b->data, v, b->count * sizeof(float)); }

/* Builds `text` over bottoms of the given shapes (NULL-terminated) with nt tops;
 * returns 0 or the error code (the message is in cg_error_message()). */
static int build(harness *h, const char *text, cg_phase phase, const char *const *shapes, int nt) {
  memset(h, 0, sizeof *h);
  ProtobufCMessage *msg = NULL;
  if (cg_text_parse(&caffe__layer_parameter__descriptor, text, strlen(text), "test", &msg)) {
    fprintf(stderr, "cannot parse '%s': %s\n", text, cg_error_message());
    return CG_ERR_PARSE;
  }
  h->param = (Caffe__LayerParameter *)msg;
  while (shapes[h->nb]) {
    h->bottom[h->nb] = new_blob(shapes[h->nb]);
    h->nb++;
  }
  h->nt = nt;
  for (int i = 0; i < nt; i++) h->top[i] = cg_blob_create(NULL);
  int rc = cg_layer_instantiate(&h->layer, h->param, phase, h->bottom, h->nb, h->top, h->nt, 7);
  h->built = rc == 0;
  return rc;
}

/* The same, but top 0 is bottom 0 (an in-place layer). */
static int build_in_place(harness *h, const char *text, cg_phase phase, const char *shape) {
  memset(h, 0, sizeof *h);
  ProtobufCMessage *msg = NULL;
  if (cg_text_parse(&caffe__layer_parameter__descriptor, text, strlen(text), "test", &msg)) return CG_ERR_PARSE;
  h->param = (Caffe__LayerParameter *)msg;
  h->bottom[0] = new_blob(shape);
  h->nb = 1;
  h->nt = 0; /* the top is not separately owned */
  cg_blob *top[1] = {h->bottom[0]};
  int rc = cg_layer_instantiate(&h->layer, h->param, phase, h->bottom, 1, top, 1, 7);
  h->built = rc == 0;
  return rc;
}

static int forward(harness *h) {
  cg_blob *const *top = h->nt ? h->top : h->bottom;
  int rc = h->layer.ops->forward(&h->layer, h->bottom, top);
  CHECK_MSG(rc == 0, "forward failed: %s", cg_error_message());
  return rc;
}

static void backward(harness *h) {
  bool down[MAX_BLOBS] = {true, true, true, true};
  cg_blob *const *top = h->nt ? h->top : h->bottom;
  h->layer.ops->backward(&h->layer, top, down, h->bottom);
}

static void release(harness *h) {
  if (h->layer.ops) cg_layer_destroy(&h->layer);
  for (int i = 0; i < h->nb; i++) cg_blob_free(h->bottom[i]);
  for (int i = 0; i < h->nt; i++) cg_blob_free(h->top[i]);
  if (h->param) protobuf_c_message_free_unpacked((ProtobufCMessage *)h->param, NULL);
  memset(h, 0, sizeof *h);
}

static void check_values(const float *got, const float *want, size_t n, double tol, const char *what) {
  for (size_t i = 0; i < n; i++)
    CHECK_MSG(fabs((double)got[i] - want[i]) <= tol, "%s[%zu]: got %.7g, want %.7g", what, i, (double)got[i],
              (double)want[i]);
}

static void check_shape(const cg_blob *b, const char *want) {
  char buf[128];
  cg_blob_shape_string(b, buf, sizeof buf);
  CHECK_MSG(strncmp(buf, want, strlen(want)) == 0 && buf[strlen(want)] == '(', "shape '%s', want '%s'", buf, want);
}

#define ONE_BOTTOM(shape) ((const char *const[]){shape, NULL})
#define TWO_BOTTOMS(a, b) ((const char *const[]){a, b, NULL})

/* Runs a one-bottom, one-top neuron layer on `in` and compares the top with `want`. */
static void neuron_case(const char *text, cg_phase phase, size_t n, const float *in, const float *want, double tol) {
  harness h;
  char shape[32];
  snprintf(shape, sizeof shape, "%zu", n);
  if (build(&h, text, phase, ONE_BOTTOM(shape), 1)) {
    CHECK_MSG(false, "cannot build '%s': %s", text, cg_error_message());
  } else {
    set_values(h.bottom[0], in);
    if (!forward(&h)) check_values(h.top[0]->data, want, n, tol, text);
  }
  release(&h);
}

static void test_activations(void) {
  {
    harness h; /* as Caffe's std::max, ReLU passes a NaN on rather than hiding it */
    if (build(&h, "type: \"ReLU\"", CG_TRAIN, ONE_BOTTOM("1"), 1) == 0) {
      h.bottom[0]->data[0] = NAN;
      forward(&h);
      CHECK(isnan(h.top[0]->data[0]));
    }
    release(&h);
  }
  neuron_case("type: \"ReLU\"", CG_TRAIN, 3, (float[]){-1, 2, 0}, (float[]){0, 2, 0}, 0);
  neuron_case("type: \"ReLU\" relu_param { negative_slope: 0.1 }", CG_TRAIN, 2, (float[]){-1, 2}, (float[]){-0.1f, 2},
              1e-7);
  neuron_case("type: \"ELU\"", CG_TRAIN, 2, (float[]){-1, 2}, (float[]){(float)(exp(-1.0) - 1), 2}, 1e-6);
  neuron_case("type: \"ELU\" elu_param { alpha: 0.5 }", CG_TRAIN, 2, (float[]){-2, 3},
              (float[]){(float)(0.5 * (exp(-2.0) - 1)), 3}, 1e-6);
  neuron_case("type: \"Sigmoid\"", CG_TRAIN, 3, (float[]){0, 2, -2},
              (float[]){0.5f, (float)(1 / (1 + exp(-2.0))), (float)(1 / (1 + exp(2.0)))}, 1e-6);
  neuron_case("type: \"TanH\"", CG_TRAIN, 2, (float[]){1, -0.5f}, (float[]){(float)tanh(1.0), (float)tanh(-0.5)}, 1e-6);
  neuron_case("type: \"AbsVal\"", CG_TRAIN, 3, (float[]){-3, 2, 0}, (float[]){3, 2, 0}, 0);
  neuron_case("type: \"Power\" power_param { power: 2 scale: 2 shift: 1 }", CG_TRAIN, 2, (float[]){1, -1},
              (float[]){9, 1}, 1e-6);
  neuron_case("type: \"Power\" power_param { power: 0 scale: 2 shift: 3 }", CG_TRAIN, 2, (float[]){1, -1},
              (float[]){1, 1}, 0);
  neuron_case("type: \"Power\" power_param { power: 3 scale: 0 shift: 2 }", CG_TRAIN, 2, (float[]){1, -1},
              (float[]){8, 8}, 1e-6);
  neuron_case("type: \"Exp\"", CG_TRAIN, 2, (float[]){1, 0}, (float[]){(float)M_E, 1}, 1e-6);
  neuron_case("type: \"Exp\" exp_param { base: 2 scale: 1 shift: 1 }", CG_TRAIN, 2, (float[]){2, -1}, (float[]){8, 1},
              1e-5);
  neuron_case("type: \"Log\" log_param { base: 10 }", CG_TRAIN, 2, (float[]){100, 1}, (float[]){2, 0}, 1e-6);
  neuron_case("type: \"Log\" log_param { scale: 2 shift: 1 }", CG_TRAIN, 1, (float[]){1}, (float[]){(float)log(3.0)},
              1e-6);
  neuron_case("type: \"BNLL\"", CG_TRAIN, 4, (float[]){0, 100, -100, 1},
              (float[]){(float)log(2.0), 100, 0, (float)log1p(exp(1.0))}, 1e-6);
  neuron_case("type: \"Threshold\" threshold_param { threshold: 0.5 }", CG_TRAIN, 3, (float[]){0.2f, 0.5f, 0.7f},
              (float[]){0, 0, 1}, 0);
  neuron_case("type: \"Swish\"", CG_TRAIN, 2, (float[]){1, -2},
              (float[]){(float)(1 / (1 + exp(-1.0))), (float)(-2 / (1 + exp(2.0)))}, 1e-6);
  neuron_case("type: \"Swish\" swish_param { beta: 2 }", CG_TRAIN, 1, (float[]){1},
              (float[]){(float)(1 / (1 + exp(-2.0)))}, 1e-6);
}

/* In place, backward must see the input, not the output that replaced it. */
static void in_place_case(const char *text, size_t n, const float *in, const float *want_y, const float *want_dx) {
  harness h;
  char shape[32];
  snprintf(shape, sizeof shape, "1 1 %zu", n);
  if (build_in_place(&h, text, CG_TRAIN, shape)) {
    CHECK_MSG(false, "cannot build '%s' in place: %s", text, cg_error_message());
  } else {
    set_values(h.bottom[0], in);
    if (!forward(&h)) {
      check_values(h.bottom[0]->data, want_y, n, 1e-6, text);
      for (size_t i = 0; i < n; i++) h.bottom[0]->diff[i] = 1;
      backward(&h);
      check_values(h.bottom[0]->diff, want_dx, n, 1e-5, text);
    }
  }
  release(&h);
}

static void test_in_place(void) {
  in_place_case("type: \"ReLU\"", 2, (float[]){-1, 2}, (float[]){0, 2}, (float[]){0, 1});
  in_place_case("type: \"ReLU\" relu_param { negative_slope: 0.1 }", 2, (float[]){-1, 2}, (float[]){-0.1f, 2},
                (float[]){0.1f, 1});
  in_place_case("type: \"ReLU\" relu_param { negative_slope: -0.5 }", 2, (float[]){-1, 2}, (float[]){0.5f, 2},
                (float[]){-0.5f, 1});
  in_place_case("type: \"AbsVal\"", 2, (float[]){-3, 2}, (float[]){3, 2}, (float[]){-1, 1});
  /* y = (2x + 1)^2, dy/dx = 4 (2x + 1) */
  in_place_case("type: \"Power\" power_param { power: 2 scale: 2 shift: 1 }", 2, (float[]){1, -1}, (float[]){9, 1},
                (float[]){12, -4});
  /* y = (0.5 x + 1)^3, dy/dx = 1.5 (0.5 x + 1)^2 */
  in_place_case("type: \"Power\" power_param { power: 3 scale: 0.5 shift: 1 }", 2, (float[]){2, 0}, (float[]){8, 1},
                (float[]){6, 1.5f});
  in_place_case("type: \"Log\"", 2, (float[]){2, 4}, (float[]){(float)log(2.0), (float)log(4.0)},
                (float[]){0.5f, 0.25f});
  in_place_case("type: \"BNLL\"", 1, (float[]){0}, (float[]){(float)log(2.0)}, (float[]){0.5f});
  in_place_case("type: \"ELU\"", 2, (float[]){-1, 2}, (float[]){(float)(exp(-1.0) - 1), 2},
                (float[]){(float)exp(-1.0), 1});
  in_place_case("type: \"Sigmoid\"", 1, (float[]){0}, (float[]){0.5f}, (float[]){0.25f});
  in_place_case("type: \"Exp\"", 1, (float[]){1}, (float[]){(float)M_E}, (float[]){(float)M_E});
  in_place_case("type: \"Swish\"", 1, (float[]){0}, (float[]){0}, (float[]){0.5f});
  /* PReLU: the default slope 0.25 on the one channel */
  in_place_case("type: \"PReLU\"", 2, (float[]){-4, 2}, (float[]){-1, 2}, (float[]){0.25f, 1});
}

static void test_prelu(void) {
  harness h;
  if (build(&h, "type: \"PReLU\"", CG_TRAIN, ONE_BOTTOM("1 2 1 2"), 1) == 0) {
    CHECK_EQ_INT(h.layer.num_params, 1);
    check_shape(h.layer.params[0], "2 ");
    set_values(h.bottom[0], (float[]){-1, 2, -3, 4});
    forward(&h);
    check_values(h.top[0]->data, (float[]){-0.25f, 2, -0.75f, 4}, 4, 1e-7, "prelu y");
    for (int i = 0; i < 4; i++) h.top[0]->diff[i] = 1;
    backward(&h);
    check_values(h.layer.params[0]->diff, (float[]){-1, -3}, 2, 1e-7, "prelu slope grad");
    backward(&h); /* parameter gradients accumulate */
    check_values(h.layer.params[0]->diff, (float[]){-2, -6}, 2, 1e-7, "prelu slope grad, twice");
    check_values(h.bottom[0]->diff, (float[]){0.25f, 1, 0.25f, 1}, 4, 1e-7, "prelu dx");
  } else {
    CHECK_MSG(false, "PReLU: %s", cg_error_message());
  }
  release(&h);
  if (build(&h, "type: \"PReLU\" prelu_param { channel_shared: true }", CG_TRAIN, ONE_BOTTOM("1 2 1 2"), 1) == 0) {
    CHECK_EQ_INT(h.layer.params[0]->num_axes, 0); /* Caffe's shared slope is a scalar blob */
    CHECK_EQ_INT(h.layer.params[0]->count, 1);
    set_values(h.bottom[0], (float[]){-1, 2, -3, 4});
    forward(&h);
    for (int i = 0; i < 4; i++) h.top[0]->diff[i] = 1;
    backward(&h);
    check_values(h.layer.params[0]->diff, (float[]){-4}, 1, 1e-7, "shared slope grad");
  }
  release(&h);
}

static void test_dropout(void) {
  harness h;
  enum { N = 20000 };
  char shape[32];
  snprintf(shape, sizeof shape, "%d", N);
  if (build(&h, "type: \"Dropout\" dropout_param { dropout_ratio: 0.3 }", CG_TEST, ONE_BOTTOM(shape), 1) == 0) {
    for (int i = 0; i < N; i++) h.bottom[0]->data[i] = (float)i;
    forward(&h);
    CHECK(memcmp(h.top[0]->data, h.bottom[0]->data, N * sizeof(float)) == 0);
  }
  release(&h);
  if (build(&h, "type: \"Dropout\" dropout_param { dropout_ratio: 0.3 }", CG_TRAIN, ONE_BOTTOM(shape), 1) == 0) {
    for (int i = 0; i < N; i++) h.bottom[0]->data[i] = 1;
    forward(&h);
    int zeros = 0, scaled = 0;
    for (int i = 0; i < N; i++) {
      zeros += h.top[0]->data[i] == 0;
      scaled += fabsf(h.top[0]->data[i] - 1 / 0.7f) < 1e-6f;
    }
    CHECK_EQ_INT(zeros + scaled, N);
    CHECK_NEAR((double)zeros / N, 0.3, 0.02);
    for (int i = 0; i < N; i++) h.top[0]->diff[i] = 2;
    backward(&h);
    int same = 0;
    for (int i = 0; i < N; i++) same += h.bottom[0]->diff[i] == 2 * h.top[0]->data[i];
    CHECK_EQ_INT(same, N); /* the mask backward uses is the one forward drew */
  }
  release(&h);
}

static void test_eltwise(void) {
  harness h;
  if (build(&h, "type: \"Eltwise\" eltwise_param { operation: SUM coeff: 1 coeff: -1 }", CG_TRAIN,
            TWO_BOTTOMS("2", "2"), 1) == 0) {
    set_values(h.bottom[0], (float[]){1, 2});
    set_values(h.bottom[1], (float[]){3, 5});
    forward(&h);
    check_values(h.top[0]->data, (float[]){-2, -3}, 2, 0, "sum");
    h.top[0]->diff[0] = 1, h.top[0]->diff[1] = 2;
    backward(&h);
    check_values(h.bottom[1]->diff, (float[]){-1, -2}, 2, 0, "sum dx1");
  }
  release(&h);
  if (build(&h, "type: \"Eltwise\" eltwise_param { operation: PROD }", CG_TRAIN,
            ((const char *const[]){"2", "2", "2", NULL}), 1) == 0) {
    set_values(h.bottom[0], (float[]){1, 2});
    set_values(h.bottom[1], (float[]){3, 5});
    set_values(h.bottom[2], (float[]){-1, 0.5f});
    forward(&h);
    check_values(h.top[0]->data, (float[]){-3, 5}, 2, 0, "prod");
    h.top[0]->diff[0] = 1, h.top[0]->diff[1] = 1;
    backward(&h);
    check_values(h.bottom[0]->diff, (float[]){-3, 2.5f}, 2, 0, "prod dx0");
  }
  release(&h);
  if (build(&h, "type: \"Eltwise\" eltwise_param { operation: MAX }", CG_TRAIN, TWO_BOTTOMS("3", "3"), 1) == 0) {
    set_values(h.bottom[0], (float[]){1, 5, 2});
    set_values(h.bottom[1], (float[]){3, 2, 2});
    forward(&h);
    check_values(h.top[0]->data, (float[]){3, 5, 2}, 3, 0, "max");
    for (int i = 0; i < 3; i++) h.top[0]->diff[i] = 1;
    backward(&h);
    /* a tie between the first two bottoms goes to bottom 1, as in Caffe */
    check_values(h.bottom[0]->diff, (float[]){0, 1, 0}, 3, 0, "max dx0");
    check_values(h.bottom[1]->diff, (float[]){1, 0, 1}, 3, 0, "max dx1");
  }
  release(&h);
  CHECK(build(&h, "type: \"Eltwise\" eltwise_param { operation: PROD coeff: 1 coeff: 2 }", CG_TRAIN,
              TWO_BOTTOMS("2", "2"), 1) != 0);
  CHECK_STR_CONTAINS(cg_error_message(), "SUM");
  release(&h);
  CHECK(build(&h, "type: \"Eltwise\"", CG_TRAIN, TWO_BOTTOMS("2", "3"), 1) != 0);
  release(&h);
}

static void test_concat_slice_split(void) {
  harness h;
  if (build(&h, "type: \"Concat\" concat_param { axis: 0 }", CG_TRAIN, TWO_BOTTOMS("1 2", "1 2"), 1) == 0) {
    set_values(h.bottom[0], (float[]){1, 2});
    set_values(h.bottom[1], (float[]){3, 4});
    forward(&h);
    check_shape(h.top[0], "2 2 ");
    check_values(h.top[0]->data, (float[]){1, 2, 3, 4}, 4, 0, "concat axis 0");
  }
  release(&h);
  if (build(&h, "type: \"Concat\"", CG_TRAIN, TWO_BOTTOMS("2 1", "2 2"), 1) == 0) {
    set_values(h.bottom[0], (float[]){1, 2});
    set_values(h.bottom[1], (float[]){3, 4, 5, 6});
    forward(&h);
    check_shape(h.top[0], "2 3 ");
    check_values(h.top[0]->data, (float[]){1, 3, 4, 2, 5, 6}, 6, 0, "concat axis 1");
    for (int i = 0; i < 6; i++) h.top[0]->diff[i] = (float)(10 + i);
    backward(&h);
    check_values(h.bottom[0]->diff, (float[]){10, 13}, 2, 0, "concat dx0");
    check_values(h.bottom[1]->diff, (float[]){11, 12, 14, 15}, 4, 0, "concat dx1");
  }
  release(&h);
  CHECK(build(&h, "type: \"Concat\" concat_param { axis: 1 concat_dim: 1 }", CG_TRAIN, TWO_BOTTOMS("2 1", "2 2"), 1) !=
        0);
  release(&h);
  CHECK(build(&h, "type: \"Concat\"", CG_TRAIN, TWO_BOTTOMS("2 1", "3 2"), 1) != 0);
  release(&h);

  if (build(&h, "type: \"Slice\" slice_param { slice_point: 1 slice_point: 3 }", CG_TRAIN, ONE_BOTTOM("1 5"), 3) == 0) {
    set_values(h.bottom[0], (float[]){0, 1, 2, 3, 4});
    forward(&h);
    check_shape(h.top[0], "1 1 ");
    check_shape(h.top[1], "1 2 ");
    check_shape(h.top[2], "1 2 ");
    check_values(h.top[0]->data, (float[]){0}, 1, 0, "slice 0");
    check_values(h.top[1]->data, (float[]){1, 2}, 2, 0, "slice 1");
    check_values(h.top[2]->data, (float[]){3, 4}, 2, 0, "slice 2");
    h.top[0]->diff[0] = 5, h.top[1]->diff[0] = 6, h.top[1]->diff[1] = 7, h.top[2]->diff[0] = 8, h.top[2]->diff[1] = 9;
    backward(&h);
    check_values(h.bottom[0]->diff, (float[]){5, 6, 7, 8, 9}, 5, 0, "slice dx");
  }
  release(&h);
  if (build(&h, "type: \"Slice\" slice_param { axis: 0 }", CG_TRAIN, ONE_BOTTOM("4 1"), 2) == 0) {
    set_values(h.bottom[0], (float[]){0, 1, 2, 3});
    forward(&h);
    check_shape(h.top[1], "2 1 ");
    check_values(h.top[1]->data, (float[]){2, 3}, 2, 0, "equal slice");
  }
  release(&h);
  CHECK(build(&h, "type: \"Slice\"", CG_TRAIN, ONE_BOTTOM("1 5"), 2) != 0); /* 5 does not split in 2 */
  release(&h);
  CHECK(build(&h, "type: \"Slice\" slice_param { slice_point: 3 slice_point: 2 }", CG_TRAIN, ONE_BOTTOM("1 5"), 3) !=
        0);
  release(&h);

  if (build(&h, "type: \"Split\"", CG_TRAIN, ONE_BOTTOM("2"), 3) == 0) {
    set_values(h.bottom[0], (float[]){1, 2});
    forward(&h);
    for (int t = 0; t < 3; t++) check_values(h.top[t]->data, (float[]){1, 2}, 2, 0, "split");
    for (int t = 0; t < 3; t++) h.top[t]->diff[0] = (float)(t + 1), h.top[t]->diff[1] = 10;
    backward(&h);
    check_values(h.bottom[0]->diff, (float[]){6, 30}, 2, 0, "split dx");
  }
  release(&h);
}

static void test_flatten_reshape(void) {
  harness h;
  if (build(&h, "type: \"Flatten\"", CG_TRAIN, ONE_BOTTOM("2 3 4"), 1) == 0) check_shape(h.top[0], "2 12 ");
  release(&h);
  if (build(&h, "type: \"Flatten\" flatten_param { axis: 0 end_axis: 1 }", CG_TRAIN, ONE_BOTTOM("2 3 4"), 1) == 0)
    check_shape(h.top[0], "6 4 ");
  release(&h);
  if (build(&h, "type: \"Reshape\" reshape_param { shape { dim: 0 dim: 2 dim: -1 } }", CG_TRAIN, ONE_BOTTOM("2 3 4"),
            1) == 0) {
    check_shape(h.top[0], "2 2 6 ");
    for (int i = 0; i < 24; i++) h.bottom[0]->data[i] = (float)i;
    forward(&h);
    CHECK(memcmp(h.top[0]->data, h.bottom[0]->data, 24 * sizeof(float)) == 0);
    for (int i = 0; i < 24; i++) h.top[0]->diff[i] = (float)-i;
    backward(&h);
    CHECK(memcmp(h.top[0]->diff, h.bottom[0]->diff, 24 * sizeof(float)) == 0);
  }
  release(&h);
  if (build(&h, "type: \"Reshape\" reshape_param { axis: 1 num_axes: 1 shape { dim: 3 dim: 1 } }", CG_TRAIN,
            ONE_BOTTOM("2 3 4"), 1) == 0)
    check_shape(h.top[0], "2 3 1 4 ");
  release(&h);
  /* axis -1 with all remaining (no) axes replaced appends singleton axes */
  if (build(&h, "type: \"Reshape\" reshape_param { axis: -1 shape { dim: 1 dim: 1 } }", CG_TRAIN, ONE_BOTTOM("3 4"),
            1) == 0)
    check_shape(h.top[0], "3 4 1 1 ");
  else
    CHECK_MSG(false, "axis -1 reshape: %s", cg_error_message());
  release(&h);
  if (build(&h, "type: \"Reshape\" reshape_param { shape { dim: -1 } }", CG_TRAIN, ONE_BOTTOM("2 3 4"), 1) == 0)
    check_shape(h.top[0], "24 ");
  release(&h);
  CHECK(build(&h, "type: \"Reshape\" reshape_param { shape { dim: -1 dim: -1 } }", CG_TRAIN, ONE_BOTTOM("2 3"), 1) !=
        0);
  release(&h);
  CHECK(build(&h, "type: \"Reshape\" reshape_param { shape { dim: 5 dim: -1 } }", CG_TRAIN, ONE_BOTTOM("2 3"), 1) != 0);
  release(&h);
  CHECK(build(&h, "type: \"Reshape\" reshape_param { shape { dim: 4 dim: 2 } }", CG_TRAIN, ONE_BOTTOM("2 3"), 1) != 0);
  release(&h);
}

static void test_crop(void) {
  harness h;
  if (build(&h, "type: \"Crop\" crop_param { axis: 2 offset: 1 offset: 2 }", CG_TRAIN,
            TWO_BOTTOMS("1 1 3 4", "1 1 2 2"), 1) == 0) {
    for (int i = 0; i < 12; i++) h.bottom[0]->data[i] = (float)i;
    forward(&h);
    check_shape(h.top[0], "1 1 2 2 ");
    check_values(h.top[0]->data, (float[]){6, 7, 10, 11}, 4, 0, "crop");
    for (int i = 0; i < 12; i++) h.bottom[0]->diff[i] = 99;
    for (int i = 0; i < 4; i++) h.top[0]->diff[i] = (float)(i + 1);
    backward(&h);
    check_values(h.bottom[0]->diff, (float[]){0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 3, 4}, 12, 0, "crop dx");
  }
  release(&h);
  /* one offset for all axes from axis 1 on */
  if (build(&h, "type: \"Crop\" crop_param { axis: 1 offset: 1 }", CG_TRAIN, TWO_BOTTOMS("2 3 3", "9 2 1"), 1) == 0) {
    for (int i = 0; i < 18; i++) h.bottom[0]->data[i] = (float)i;
    forward(&h);
    check_shape(h.top[0], "2 2 1 ");
    check_values(h.top[0]->data, (float[]){4, 7, 13, 16}, 4, 0, "crop axis 1");
  }
  release(&h);
  CHECK(build(&h, "type: \"Crop\" crop_param { offset: 3 }", CG_TRAIN, TWO_BOTTOMS("1 1 3 4", "1 1 2 2"), 1) != 0);
  release(&h);
}

static void test_silence(void) {
  harness h;
  if (build(&h, "type: \"Silence\"", CG_TRAIN, TWO_BOTTOMS("2", "3"), 0) == 0) {
    forward(&h);
    for (int i = 0; i < 2; i++) h.bottom[0]->diff[i] = 5;
    for (int i = 0; i < 3; i++) h.bottom[1]->diff[i] = 5;
    h.layer.ops->backward(&h.layer, NULL, (bool[]){true, true}, h.bottom);
    check_values(h.bottom[0]->diff, (float[]){0, 0}, 2, 0, "silence dx0");
    check_values(h.bottom[1]->diff, (float[]){0, 0, 0}, 3, 0, "silence dx1");
  } else {
    CHECK_MSG(false, "Silence: %s", cg_error_message());
  }
  release(&h);
}

static void test_bias_scale(void) {
  harness h;
  if (build(&h, "type: \"Bias\"", CG_TRAIN, TWO_BOTTOMS("1 2 2", "2"), 1) == 0) {
    set_values(h.bottom[0], (float[]){1, 2, 3, 4});
    set_values(h.bottom[1], (float[]){10, -10});
    forward(&h);
    check_values(h.top[0]->data, (float[]){11, 12, -7, -6}, 4, 0, "bias");
    for (int i = 0; i < 4; i++) h.top[0]->diff[i] = (float)(i + 1);
    backward(&h);
    check_values(h.bottom[1]->diff, (float[]){3, 7}, 2, 0, "bias db");
    check_values(h.bottom[0]->diff, (float[]){1, 2, 3, 4}, 4, 0, "bias dx");
  }
  release(&h);
  if (build(&h, "type: \"Bias\" bias_param { filler { type: \"constant\" value: 0.5 } }", CG_TRAIN, ONE_BOTTOM("1 2 2"),
            1) == 0) {
    check_shape(h.layer.params[0], "2 ");
    set_values(h.bottom[0], (float[]){1, 2, 3, 4});
    forward(&h);
    check_values(h.top[0]->data, (float[]){1.5f, 2.5f, 3.5f, 4.5f}, 4, 0, "learned bias");
  }
  release(&h);
  if (build(&h, "type: \"Scale\"", CG_TRAIN, TWO_BOTTOMS("1 2 2", "2"), 1) == 0) {
    set_values(h.bottom[0], (float[]){1, 2, 3, 4});
    set_values(h.bottom[1], (float[]){2, -1});
    forward(&h);
    check_values(h.top[0]->data, (float[]){2, 4, -3, -4}, 4, 0, "scale");
    for (int i = 0; i < 4; i++) h.top[0]->diff[i] = 1;
    backward(&h);
    check_values(h.bottom[1]->diff, (float[]){3, 7}, 2, 0, "scale ds");
    check_values(h.bottom[0]->diff, (float[]){2, 2, -1, -1}, 4, 0, "scale dx");
  }
  release(&h);
  if (build(&h, "type: \"Scale\" scale_param { bias_term: true bias_filler { type: \"constant\" value: 1 } }", CG_TRAIN,
            ONE_BOTTOM("1 2 2"), 1) == 0) {
    CHECK_EQ_INT(h.layer.num_params, 2);
    check_values(h.layer.params[0]->data, (float[]){1, 1}, 2, 0, "scale default filler");
    h.layer.params[0]->data[0] = 3;
    set_values(h.bottom[0], (float[]){1, 2, 3, 4});
    forward(&h);
    check_values(h.top[0]->data, (float[]){4, 7, 4, 5}, 4, 0, "scale + bias");
    for (int i = 0; i < 4; i++) h.top[0]->diff[i] = 1;
    backward(&h);
    check_values(h.layer.params[0]->diff, (float[]){3, 7}, 2, 0, "scale param grad");
    check_values(h.layer.params[1]->diff, (float[]){2, 2}, 2, 0, "bias param grad");
  }
  release(&h);
  /* in place: the gradient of the scale needs the input the top replaced */
  if (build_in_place(&h, "type: \"Scale\" scale_param { filler { type: \"constant\" value: 2 } }", CG_TRAIN, "1 2 1") ==
      0) {
    set_values(h.bottom[0], (float[]){3, 4});
    forward(&h);
    check_values(h.bottom[0]->data, (float[]){6, 8}, 2, 0, "in-place scale");
    h.bottom[0]->diff[0] = 1, h.bottom[0]->diff[1] = 1;
    backward(&h);
    check_values(h.layer.params[0]->diff, (float[]){3, 4}, 2, 0, "in-place scale grad");
    check_values(h.bottom[0]->diff, (float[]){2, 2}, 2, 0, "in-place scale dx");
  }
  release(&h);
}

static void test_batch_norm(void) {
  harness h;
  const double eps = 1e-5;
  /* N = 2, C = 2: channel 0 holds 1 and 3 (mean 2, variance 1), channel 1 holds 2 and 6 (mean 4, variance 4) */
  if (build(&h, "type: \"BatchNorm\"", CG_TRAIN, ONE_BOTTOM("2 2"), 1) == 0) {
    CHECK_EQ_INT(h.layer.num_params, 3);
    set_values(h.bottom[0], (float[]){1, 2, 3, 6});
    forward(&h);
    float a = (float)(1 / sqrt(1 + eps)), b = (float)(2 / sqrt(4 + eps));
    check_values(h.top[0]->data, (float[]){-a, -b, a, b}, 4, 1e-6, "bn train");
    /* running sums: mean, variance with the m / (m - 1) = 2 correction, factor 1 */
    check_values(h.layer.params[0]->data, (float[]){2, 4}, 2, 1e-6, "bn mean sum");
    check_values(h.layer.params[1]->data, (float[]){2, 8}, 2, 1e-6, "bn variance sum");
    check_values(h.layer.params[2]->data, (float[]){1}, 1, 0, "bn factor");
    forward(&h);
    check_values(h.layer.params[0]->data, (float[]){2 + 0.999f * 2, 4 + 0.999f * 4}, 2, 1e-5, "bn mean sum, twice");
    check_values(h.layer.params[2]->data, (float[]){1.999f}, 1, 1e-6, "bn factor, twice");
    /* backward through batch statistics: a constant top diff gives no gradient */
    for (int i = 0; i < 4; i++) h.top[0]->diff[i] = 1;
    backward(&h);
    check_values(h.bottom[0]->diff, (float[]){0, 0, 0, 0}, 4, 1e-6, "bn dx");
  }
  release(&h);
  /* TEST phase: stored statistics, divided by the factor */
  if (build(&h, "type: \"BatchNorm\"", CG_TEST, ONE_BOTTOM("1 2 1 2"), 1) == 0) {
    set_values(h.layer.params[0], (float[]){4, 8});
    set_values(h.layer.params[1], (float[]){2, 8});
    set_values(h.layer.params[2], (float[]){2});
    set_values(h.bottom[0], (float[]){2, 4, 4, 6});
    forward(&h);
    float a = (float)(1 / sqrt(4 + eps));
    check_values(h.top[0]->data, (float[]){0, (float)(2 / sqrt(1 + eps)), 0, 2 * a}, 4, 1e-6, "bn global");
    check_values(h.layer.params[0]->data, (float[]){4, 8}, 2, 0, "bn global leaves the sums alone");
    for (int i = 0; i < 4; i++) h.top[0]->diff[i] = 1;
    backward(&h);
    check_values(h.bottom[0]->diff, (float[]){(float)(1 / sqrt(1 + eps)), (float)(1 / sqrt(1 + eps)), a, a}, 4, 1e-6,
                 "bn global dx");
  }
  release(&h);
  /* a zero factor (never trained) means zero statistics */
  if (build(&h, "type: \"BatchNorm\" batch_norm_param { use_global_stats: true eps: 1 }", CG_TRAIN, ONE_BOTTOM("1 1"),
            1) == 0) {
    set_values(h.bottom[0], (float[]){3});
    forward(&h);
    check_values(h.top[0]->data, (float[]){3}, 1, 1e-6, "bn zero factor");
  }
  release(&h);
  /* in place, training: backward from the saved normalised values */
  if (build_in_place(&h, "type: \"BatchNorm\"", CG_TRAIN, "4 1") == 0) {
    set_values(h.bottom[0], (float[]){1, 2, 3, 4});
    forward(&h);
    float y[4];
    memcpy(y, h.bottom[0]->data, sizeof y);
    set_values(h.bottom[0], (float[]){0, 0, 0, 0});
    for (int i = 0; i < 4; i++) h.bottom[0]->diff[i] = y[i]; /* dE/dy = y: dx = (y - mean(y^2) y) / std */
    backward(&h);
    double mean_y2 = 0;
    for (int i = 0; i < 4; i++) mean_y2 += (double)y[i] * y[i] / 4;
    double std = sqrt(1.25 + eps);
    float want[4];
    for (int i = 0; i < 4; i++) want[i] = (float)((y[i] - mean_y2 * y[i]) / std);
    check_values(h.bottom[0]->diff, want, 4, 1e-6, "bn in-place dx");
  }
  release(&h);
}

static void test_argmax(void) {
  harness h;
  if (build(&h, "type: \"ArgMax\"", CG_TEST, ONE_BOTTOM("2 4"), 1) == 0) {
    set_values(h.bottom[0], (float[]){1, 5, 2, 5, -1, -3, -2, -0.5f});
    forward(&h);
    check_shape(h.top[0], "2 1 1 ");
    check_values(h.top[0]->data, (float[]){3, 3}, 2, 0, "argmax (ties: the higher index)");
  }
  release(&h);
  if (build(&h, "type: \"ArgMax\" argmax_param { out_max_val: true top_k: 2 }", CG_TEST, ONE_BOTTOM("1 4"), 1) == 0) {
    set_values(h.bottom[0], (float[]){0.1f, 0.7f, 0.2f, 0.4f});
    forward(&h);
    check_shape(h.top[0], "1 2 2 ");
    check_values(h.top[0]->data, (float[]){1, 3, 0.7f, 0.4f}, 4, 0, "argmax top 2 with values");
  }
  release(&h);
  if (build(&h, "type: \"ArgMax\" argmax_param { axis: 1 }", CG_TEST, ONE_BOTTOM("1 3 2"), 1) == 0) {
    set_values(h.bottom[0], (float[]){1, 9, 5, 2, 3, 4});
    forward(&h);
    check_shape(h.top[0], "1 1 2 ");
    check_values(h.top[0]->data, (float[]){1, 0}, 2, 0, "argmax along axis 1");
  }
  release(&h);
  if (build(&h, "type: \"ArgMax\" argmax_param { axis: 1 top_k: 2 out_max_val: true }", CG_TEST, ONE_BOTTOM("1 3 2"),
            1) == 0) {
    set_values(h.bottom[0], (float[]){1, 9, 5, 2, 3, 4});
    forward(&h);
    check_shape(h.top[0], "1 2 2 ");
    check_values(h.top[0]->data, (float[]){5, 9, 3, 4}, 4, 0, "argmax values along axis 1");
  }
  release(&h);
  CHECK(build(&h, "type: \"ArgMax\" argmax_param { top_k: 5 }", CG_TEST, ONE_BOTTOM("2 4"), 1) != 0);
  release(&h);
}

int main(void) {
  test_activations();
  test_in_place();
  test_prelu();
  test_dropout();
  test_eltwise();
  test_concat_slice_split();
  test_flatten_reshape();
  test_crop();
  test_silence();
  test_bias_scale();
  test_batch_norm();
  test_argmax();
  return CHECK_REPORT();
}
