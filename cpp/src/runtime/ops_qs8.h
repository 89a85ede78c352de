// The int8-full ops of the runtime (ids 100..109 of op.h's int8 range), their factories for
// op_table.cc and the checks they share. Ids (the Python side: edgeopt.deploy.quantize.QS8_OPS):
//   100 quantize  101 dequantize  102 conv2d  103 add  104 lut  105 channel_scale
//   106 maxpool2d  107 avgpool2d  108 global_avgpool2d  109 flatten
#pragma once
#include <memory>
#include <vector>

#include "qs8-elementwise/ukernels.h"
#include "runtime/op.h"

namespace eo::rt {

std::unique_ptr<Op> make_qs8_quantize(const BuildContext& ctx);
std::unique_ptr<Op> make_qs8_dequantize(const BuildContext& ctx);
std::unique_ptr<Op> make_qs8_conv2d(const BuildContext& ctx);
std::unique_ptr<Op> make_qs8_add(const BuildContext& ctx);
std::unique_ptr<Op> make_qs8_lut(const BuildContext& ctx);
std::unique_ptr<Op> make_qs8_channel_scale(const BuildContext& ctx);
std::unique_ptr<Op> make_qs8_maxpool2d(const BuildContext& ctx);
std::unique_ptr<Op> make_qs8_avgpool2d(const BuildContext& ctx);
std::unique_ptr<Op> make_qs8_global_avgpool2d(const BuildContext& ctx);
std::unique_ptr<Op> make_qs8_flatten(const BuildContext& ctx);

// Input i must be u8 NHWC with a zero point in [0, 255]; returns its description.
const TensorDesc& qs8_expect_u8_input(const BuildContext& ctx, size_t i);
// The add / add_clamp attributes of an add (standalone or fused into a conv), checked.
qs8_add_params qs8_add_params_from(const BuildContext& ctx);
// A float attribute that must be a finite float32 > 0 (a requantization factor).
float qs8_scale_attr(const BuildContext& ctx, double v);
// Fails with a "compile it again" hint if the op has any of the attributes an int8-full file
// written before float32 requantization had (Q31 multipliers and shifts).
void qs8_reject_fixed_point(const BuildContext& ctx, std::initializer_list<const char*> old_keys);

}  // namespace eo::rt
