/* Vector helpers and im2col/col2im over float arrays (cpu.c); the gemms and
 * convolutions are the net's backend's (math/backend.h). */
#ifndef CG_MATH_H
#define CG_MATH_H

#include <stdbool.h>
#include <stddef.h>

void cg_axpy(size_t n, float alpha, const float *x, float *y);        /* y += alpha x */
void cg_axpby(size_t n, float alpha, const float *x, float beta, float *y); /* y = alpha x + beta y */
void cg_scal(size_t n, float alpha, float *x);
void cg_set(size_t n, float value, float *y);
void cg_copy(size_t n, const float *x, float *y);
float cg_dot(size_t n, const float *x, const float *y);
float cg_asum(size_t n, const float *x);

/* im2col for one image: col[(c*kh*kw) rows, (oh*ow) cols]. The naive reference
 * kernel; cg_im2col_ld is the fast one and is tested against it. */
void cg_im2col(const float *im, int channels, int height, int width, int kernel_h, int kernel_w, int pad_h,
               int pad_w, int stride_h, int stride_w, int dilation_h, int dilation_w, float *col);
/* Adds col back into im (im must be zeroed by the caller when it should not accumulate). */
void cg_col2im(const float *col, int channels, int height, int width, int kernel_h, int kernel_w, int pad_h,
               int pad_w, int stride_h, int stride_w, int dilation_h, int dilation_w, float *im);

/* Fast im2col: the same rows, each starting ldcol floats after the previous one
 * (ldcol >= oh*ow), so several images can sit side by side in one column buffer.
 * Copies whole in-image row segments and zero-fills only the padding. */
void cg_im2col_ld(const float *im, int channels, int height, int width, int kernel_h, int kernel_w, int pad_h,
                  int pad_w, int stride_h, int stride_w, int dilation_h, int dilation_w, float *col, size_t ldcol);
/* Fast col2im over rows ldcol floats apart; adds into im like cg_col2im, in the
 * same order per element (so results are identical to cg_col2im). */
void cg_col2im_ld(const float *col, size_t ldcol, int channels, int height, int width, int kernel_h, int kernel_w,
                  int pad_h, int pad_w, int stride_h, int stride_w, int dilation_h, int dilation_w, float *im);

#endif
