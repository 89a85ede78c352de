#include "f32-dwconv/conv.h"

#include <algorithm>
#include <cstring>

#include "common/parallel.h"
#include "common/scratch.h"

namespace eo::rt {

F32DepthwiseConv f32_depthwise_conv_create(const F32ConvLayer& cl, const void* w) {
  F32DepthwiseConv dw;
  const int64_t KK = cl.s.KH * cl.s.KW, n = cl.s.Cout * KK;
  dw.plan = DwconvPlan::make(cl.s);
  dw.w.resize(static_cast<size_t>(n));
  const WeightConvertUkernels& cv = weight_convert_ukernels(Isa::scalar);
  switch (cl.wdt) {
    case WDtype::f32: std::memcpy(dw.w.data(), w, static_cast<size_t>(n) * 4); break;
    case WDtype::f16: cv.f16_to_f32(static_cast<const uint16_t*>(w), dw.w.data(), static_cast<size_t>(n)); break;
    case WDtype::s8: cv.s8_to_f32(static_cast<const int8_t*>(w), dw.w.data(), static_cast<size_t>(n)); break;
    case WDtype::s4:
    case WDtype::s2:
    case WDtype::s1:  // one row of KK codes per channel, each starting on a byte
      for (int64_t o = 0; o < cl.s.Cout; ++o)
        (cl.wdt == WDtype::s4 ? cv.s4_to_f32 : cl.wdt == WDtype::s2 ? cv.s2_to_f32 : cv.s1_to_f32)(
            static_cast<const uint8_t*>(w) + o * wdtype_row_bytes(cl.wdt, KK), 0, dw.w.data() + o * KK,
            static_cast<size_t>(KK));
      break;
  }
  if (cl.scale)
    for (int64_t i = 0; i < n; ++i) dw.w[i] *= cl.scale[i / KK];
  return dw;
}

void f32_depthwise_conv_run(const F32ConvLayer& cl, const F32DepthwiseConv& dw, const F32ConvCall& call) {
  float lo = 0.f, hi = 0.f;
  const bool clamp = act_is_clamp(cl.residual ? Act::none : cl.act, &lo, &hi);
  const f32_dwconv_params p = dw.plan.params(clamp ? F32_DWCONV_CLAMP : F32_DWCONV_HARDSWISH, lo, hi);
  const F32DwconvUkernels& uk = f32_dwconv_ukernels(active_isa());
  const int64_t Cout = cl.s.Cout, mult = Cout / cl.s.Cin, n = call.batch * Cout;
  const float* x = call.x;
  float* y = call.y;
  const float* res = call.residual;
  const int64_t work = n * cl.P * cl.s.KH * cl.s.KW;
  const int chunks = static_cast<int>(std::min<int64_t>(get_num_threads(), std::max<int64_t>(1, work / 32768)));
  parallel_chunks(n, chunks, [&](int, int64_t t0, int64_t t1) {
    float* scratch = dw.plan.direct ? nullptr : scratch_f32(static_cast<size_t>(dw.plan.scratch_floats()), kScratchRtPad);
    for (int64_t t = t0; t < t1;) {  // per image: [o0, o1) of image b
      const int64_t b = t / Cout, o0 = t % Cout, o1 = std::min(Cout, o0 + (t1 - t));
      f32_dwconv_forward(dw.plan, uk, p, mult, x + b * cl.s.Cin * cl.s.H * cl.s.W, dw.w.data(), cl.bias,
                         y + b * Cout * cl.P, o0, o1, scratch);
      if (res) {
        const Epilogue ep{nullptr, nullptr, cl.act, false};
        apply_epilogue(ep, y + b * Cout * cl.P, res + b * Cout * cl.P, cl.P, o0, o1, 0, cl.P);
      }
      t += o1 - o0;
    }
  });
}

}  // namespace eo::rt
