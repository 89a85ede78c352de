#include "f32-spmm/spmm.h"

#include <algorithm>

#include "common/parallel.h"
#include "common/spmm_parallel.h"
#include "isa/dispatch.h"

namespace eo {

bool f32_spmm_block_supported(int br, int bc) {
  return f32_spmm_ukernel(Isa::scalar, br, bc) != nullptr;
}

F32SpmmPacked f32_spmm_pack_dense(int64_t cout, int64_t cin, const float* w, int64_t ldw, int br,
                                  int bc) {
  F32SpmmPacked p;
  p.cout = cout;
  p.cin = cin;
  p.br = br;
  p.bc = bc;
  const int64_t nbr = p.nbr();
  p.row_ptr.assign(nbr + 1, 0);
  for (int64_t r = 0; r < nbr; ++r) {
    const int64_t rows = std::min<int64_t>(br, cout - r * br);
    for (int64_t k0 = 0; k0 < cin; k0 += bc) {
      bool any = false;
      for (int64_t i = 0; i < rows && !any; ++i)
        for (int c = 0; c < bc && !any; ++c) any = w[(r * br + i) * ldw + k0 + c] != 0.f;
      if (!any) continue;
      p.col.push_back(static_cast<int32_t>(k0));
      for (int c = 0; c < bc; ++c)
        for (int64_t i = 0; i < br; ++i) {
          const float v = i < rows ? w[(r * br + i) * ldw + k0 + c] : 0.f;
          p.values.push_back(v);
          p.nnz += v != 0.f;
        }
    }
    p.row_ptr[r + 1] = static_cast<int32_t>(p.col.size());
  }
  return p;
}

F32SpmmPacked f32_spmm_pack_csr(int64_t cout, int64_t cin, const int32_t* row_ptr,
                                const int32_t* col, const float* values) {
  F32SpmmPacked p;
  p.cout = cout;
  p.cin = cin;
  p.row_ptr.assign(row_ptr, row_ptr + cout + 1);
  p.col.assign(col, col + row_ptr[cout]);
  p.values.assign(values, values + row_ptr[cout]);
  for (float v : p.values) p.nnz += v != 0.f;
  return p;
}

F32SpmmPacked f32_spmm_pack_bitmask(int64_t cout, int64_t cin, const uint8_t* mask,
                                    const float* values) {
  F32SpmmPacked p;
  p.cout = cout;
  p.cin = cin;
  p.row_ptr.assign(cout + 1, 0);
  const int64_t row_bytes = (cin + 7) / 8;
  for (int64_t o = 0; o < cout; ++o) {
    for (int64_t k = 0; k < cin; ++k)
      if (mask[o * row_bytes + k / 8] >> (k % 8) & 1) p.col.push_back(static_cast<int32_t>(k));
    p.row_ptr[o + 1] = static_cast<int32_t>(p.col.size());
  }
  p.values.assign(values, values + p.col.size());
  for (float v : p.values) p.nnz += v != 0.f;
  return p;
}

std::vector<float> f32_spmm_unpack(const F32SpmmPacked& w) {
  std::vector<float> d(w.cout * w.cin, 0.f);
  for (int64_t r = 0; r < w.nbr(); ++r)
    for (int32_t b = w.row_ptr[r]; b < w.row_ptr[r + 1]; ++b)
      for (int c = 0; c < w.bc; ++c)
        for (int i = 0; i < w.br; ++i) {
          const int64_t o = r * w.br + i;
          if (o < w.cout) d[o * w.cin + w.col[b] + c] += w.values[(int64_t(b) * w.bc + c) * w.br + i];
        }
  return d;
}

void f32_spmm(const F32SpmmPacked& w, int64_t batch, int64_t hw, const float* x, const float* bias,
              float out_min, float out_max, float* y, bool parallel) {
  if (batch <= 0 || hw <= 0 || w.cout <= 0) return;
  const F32SpmmUkernel& uk = *f32_spmm_ukernel(active_isa(), w.br, w.bc);
  const int64_t nbr = w.nbr(), br = w.br, cout = w.cout, cin = w.cin;
  std::vector<float> bias_pad(nbr * br, 0.f);
  if (bias) std::copy(bias, bias + cout, bias_pad.begin());
  const f32_spmm_params params{out_min, out_max};
  // Block rows [r0, r1) x pixels [p0, p1) of image n.
  auto run = [&](int64_t n, int64_t r0, int64_t r1, int64_t p0, int64_t p1) {
    if (r0 >= r1 || p0 >= p1) return;
    uk.fn(size_t(p1 - p0), size_t(r1 - r0), size_t(cout - r0 * br), x + n * cin * hw + p0,
          size_t(hw), w.values.data(), w.col.data(), w.row_ptr.data() + r0, bias_pad.data() + r0 * br,
          y + (n * cout + r0 * br) * hw + p0, size_t(hw), &params);
  };
  const int64_t work = (w.nblocks() * br * w.bc + cout) * hw * batch;  // multiply-adds + stores
  spmm_parallel(batch, hw, uk.tile, nbr, w.row_ptr, work, parallel, [](int64_t) {}, run);
}

}  // namespace eo
