/* The one list of layer types: each entry names the cg_layer_ops table a layer
 * file defines. The table's .type string is the name Caffe uses in prototxt.
 * Registering a layer here also puts it under the gradient-check suite. */
#ifndef CG_LAYER_LIST_H
#define CG_LAYER_LIST_H

#define CG_LAYER_LIST(X) \
  X(cg_layer_input)      \
  X(cg_layer_dummy_data) \
  X(cg_layer_data)       \
  X(cg_layer_image_data) \
  X(cg_layer_memory_data)                \
  X(cg_layer_hdf5_data)                  \
  X(cg_layer_hdf5_output)                \
  X(cg_layer_convolution)                \
  X(cg_layer_deconvolution)              \
  X(cg_layer_pooling)                    \
  X(cg_layer_inner_product)              \
  X(cg_layer_lrn)                        \
  X(cg_layer_softmax)                    \
  X(cg_layer_softmax_with_loss)          \
  X(cg_layer_euclidean_loss)             \
  X(cg_layer_sigmoid_cross_entropy_loss) \
  X(cg_layer_hinge_loss)                 \
  X(cg_layer_multinomial_logistic_loss)  \
  X(cg_layer_accuracy)                   \
  X(cg_layer_relu)                       \
  X(cg_layer_prelu)                      \
  X(cg_layer_elu)                        \
  X(cg_layer_sigmoid)                    \
  X(cg_layer_tanh)                       \
  X(cg_layer_absval)                     \
  X(cg_layer_power)                      \
  X(cg_layer_exp)                        \
  X(cg_layer_log)                        \
  X(cg_layer_bnll)                       \
  X(cg_layer_threshold)                  \
  X(cg_layer_dropout)                    \
  X(cg_layer_swish)                      \
  X(cg_layer_eltwise)                    \
  X(cg_layer_concat)                     \
  X(cg_layer_slice)                      \
  X(cg_layer_split)                      \
  X(cg_layer_flatten)                    \
  X(cg_layer_reshape)                    \
  X(cg_layer_crop)                       \
  X(cg_layer_silence)                    \
  X(cg_layer_bias)                       \
  X(cg_layer_scale)                      \
  X(cg_layer_batch_norm)                 \
  X(cg_layer_argmax)

#endif
