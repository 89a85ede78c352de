#include <immintrin.h>
#include <stddef.h>

#include "f32-epilogue/ukernels.h"

namespace eo {

void f32_epilogue_minmax__avx512(size_t rows, size_t n, const float* acc, size_t lda,
                                 const float* scale, const float* bias, const float* res, float* y,
                                 size_t ldy, float lo, float hi) {
  const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
  const __mmask16 tail = (__mmask16)((1u << (n % 16)) - 1);
  for (size_t r = 0; r < rows; ++r, acc += lda, y += ldy) {
    const __m512 s = _mm512_set1_ps(scale ? scale[r] : 1.f), b = _mm512_set1_ps(bias ? bias[r] : 0.f);
    const float* rr = res ? res + r * ldy : NULL;
    size_t j = 0;
    for (; j + 16 <= n; j += 16) {
      __m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_loadu_ps(acc + j), s), b);
      if (rr) v = _mm512_add_ps(v, _mm512_loadu_ps(rr + j));
      _mm512_storeu_ps(y + j, _mm512_min_ps(vhi, _mm512_max_ps(vlo, v)));
    }
    if (j < n) {
      __m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(tail, acc + j), s), b);
      if (rr) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(tail, rr + j));
      _mm512_mask_storeu_ps(y + j, tail, _mm512_min_ps(vhi, _mm512_max_ps(vlo, v)));
    }
  }
}

}  // namespace eo
