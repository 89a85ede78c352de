// Per-thread scratch memory that grows and is reused across calls, so hot loops do not pay for
// large mallocs (and their page faults) every time. See the thread_local rule in parallel.h.
#pragma once
#include <cstddef>

namespace eo {

// Every user's slots, in one list: buffers that are live at the same time on one thread need
// distinct slots (a conv's padded image while the GEMM it calls packs A and B).
enum ScratchSlot : int {
  kScratchGemmA,     // f32-gemm blocked driver: packed A
  kScratchGemmB,     //   packed B
  kScratchConvCol,   // f32-conv2d (training): packed col / wide output
  kScratchConvPad,   //   zero-padded image
  kScratchConvHwc,   //   HWC copy of x (weight gradient)
  kScratchConvDyA,   //   dY packed as A
  kScratchConvDyB,   //   dY packed as B
  kScratchConvDcol,  //   data-gradient wide output
  kScratchDwSrc,     // f32-dwconv (training): source planes of x
  kScratchDwDy,      //   dy dilated / padded for the data gradient
  kScratchDwDySrc,   //   source planes of that
  kScratchDwPart,    //   weight-gradient lane sums over the batch; one dx plane (channel multiplier > 1)
  kScratchRtCol,     // runtime f32 conv drivers (f32-conv2d/layer.h; the direct one also runs
  kScratchRtA,       //   training convs): wide output / packed col, widened f16 / int8 weights,
  kScratchRtPad,     //   phase planes, private input windows, depthwise planes
  kScratchQs8Wide,   // qs8 GEMM: a 4-bit column block widened to int8 (ukernels.h)
  kScratchB1Planes,  // b1 direct conv: one part's binarized planes
  kScratchSlots
};

// A 64-byte aligned buffer of at least n floats in `slot`, private to this thread.
float* scratch_f32(size_t n, ScratchSlot slot);

}  // namespace eo
