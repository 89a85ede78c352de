// The op table: one line per op type. (Self-registering statics would be dropped by the linker
// from the static kernel library, so the table is explicit.) The name is OpType's enumerator:
// Python derives its op ids from these pairs.
#include "runtime/op.h"
#include "runtime/ops_qs8.h"  // int8-full factories (ids 100..109)

namespace eo::rt {

// ops_f32_conv.cc
std::unique_ptr<Op> make_conv2d(const BuildContext& ctx);
std::unique_ptr<Op> make_linear(const BuildContext& ctx);
// ops_f32_basic.cc
std::unique_ptr<Op> make_maxpool2d(const BuildContext& ctx);
std::unique_ptr<Op> make_avgpool2d(const BuildContext& ctx);
std::unique_ptr<Op> make_global_avgpool2d(const BuildContext& ctx);
std::unique_ptr<Op> make_add(const BuildContext& ctx);
std::unique_ptr<Op> make_channel_scale(const BuildContext& ctx);
std::unique_ptr<Op> make_activation(const BuildContext& ctx);
std::unique_ptr<Op> make_flatten(const BuildContext& ctx);
std::unique_ptr<Op> make_channel_affine(const BuildContext& ctx);
// ops_sparse_f32.cc
std::unique_ptr<Op> make_sparse_conv1x1(const BuildContext& ctx);
std::unique_ptr<Op> make_sparse_linear(const BuildContext& ctx);
// ops_binary_b1.cc
std::unique_ptr<Op> make_b1_conv2d(const BuildContext& ctx);

const std::vector<OpTypeInfo>& op_types() {
  static const std::vector<OpTypeInfo> table = {
      {uint32_t(OpType::conv2d), "conv2d", make_conv2d},
      {uint32_t(OpType::linear), "linear", make_linear},
      {uint32_t(OpType::maxpool2d), "maxpool2d", make_maxpool2d},
      {uint32_t(OpType::avgpool2d), "avgpool2d", make_avgpool2d},
      {uint32_t(OpType::global_avgpool2d), "global_avgpool2d", make_global_avgpool2d},
      {uint32_t(OpType::add), "add", make_add},
      {uint32_t(OpType::channel_scale), "channel_scale", make_channel_scale},
      {uint32_t(OpType::activation), "activation", make_activation},
      {uint32_t(OpType::flatten), "flatten", make_flatten},
      {uint32_t(OpType::channel_affine), "channel_affine", make_channel_affine},
      // int8-full, sparse, binary: one line per enum value of op.h.
      {uint32_t(OpType::qs8_quantize), "qs8_quantize", make_qs8_quantize},
      {uint32_t(OpType::qs8_dequantize), "qs8_dequantize", make_qs8_dequantize},
      {uint32_t(OpType::qs8_conv2d), "qs8_conv2d", make_qs8_conv2d},
      {uint32_t(OpType::qs8_add), "qs8_add", make_qs8_add},
      {uint32_t(OpType::qs8_lut), "qs8_lut", make_qs8_lut},
      {uint32_t(OpType::qs8_channel_scale), "qs8_channel_scale", make_qs8_channel_scale},
      {uint32_t(OpType::qs8_maxpool2d), "qs8_maxpool2d", make_qs8_maxpool2d},
      {uint32_t(OpType::qs8_avgpool2d), "qs8_avgpool2d", make_qs8_avgpool2d},
      {uint32_t(OpType::qs8_global_avgpool2d), "qs8_global_avgpool2d", make_qs8_global_avgpool2d},
      {uint32_t(OpType::qs8_flatten), "qs8_flatten", make_qs8_flatten},
      {uint32_t(OpType::sparse_conv1x1), "sparse_conv1x1", make_sparse_conv1x1},
      {uint32_t(OpType::sparse_linear), "sparse_linear", make_sparse_linear},
      {uint32_t(OpType::b1_conv2d), "b1_conv2d", make_b1_conv2d},
  };
  return table;
}

const OpTypeInfo* find_op_type(uint32_t id) {
  for (const OpTypeInfo& t : op_types())
    if (t.id == id) return &t;
  return nullptr;
}

}  // namespace eo::rt
