#include "qs8-spmm/spmm.h"

#include <algorithm>
#include <cstdlib>

#include "common/parallel.h"
#include "common/spmm_parallel.h"
#include "isa/dispatch.h"

namespace eo {

bool qs8_spmm_block_supported(int br) { return qs8_spmm_ukernel(Isa::scalar, br) != nullptr; }

Qs8SpmmPacked qs8_spmm_pack(int64_t cout, int64_t cin, const int8_t* w, int64_t ldw, int br) {
  Qs8SpmmPacked p;
  p.cout = cout;
  p.cin = cin;
  p.br = br;
  const int64_t nbr = p.nbr();
  p.row_ptr.assign(nbr + 1, 0);
  p.rowsum.assign(cout, 0);
  p.abssum.assign(cout, 0);
  for (int64_t o = 0; o < cout; ++o)
    for (int64_t k = 0; k < cin; ++k) {
      const int v = w[o * ldw + k];
      p.rowsum[o] += v;
      p.abssum[o] += std::abs(v);
      p.nnz += v != 0;
    }
  std::vector<int64_t> cols;
  for (int64_t r = 0; r < nbr; ++r) {
    const int64_t rows = std::min<int64_t>(br, cout - r * br);
    cols.clear();
    for (int64_t k = 0; k < cin; ++k)
      for (int64_t i = 0; i < rows; ++i)
        if (w[(r * br + i) * ldw + k] != 0) {
          cols.push_back(k);
          break;
        }
    for (size_t t = 0; t < cols.size(); t += 2) {
      const int64_t ka = cols[t];
      const bool single = t + 1 == cols.size();
      const int64_t kb = single ? ka : cols[t + 1];
      p.kidx.push_back(static_cast<int32_t>(ka));
      p.kidx.push_back(static_cast<int32_t>(kb));
      for (int64_t i = 0; i < br; ++i) {
        const int32_t wa = i < rows ? w[(r * br + i) * ldw + ka] : 0;
        const int32_t wb = i < rows && !single ? w[(r * br + i) * ldw + kb] : 0;
        p.w.push_back(int32_t(uint32_t(wa) & 0xFFFFu) | int32_t(uint32_t(wb) << 16));
      }
    }
    p.row_ptr[r + 1] = static_cast<int32_t>(p.kidx.size() / 2);
  }
  return p;
}

std::vector<int8_t> qs8_spmm_unpack(const Qs8SpmmPacked& p) {
  std::vector<int8_t> d(p.cout * p.cin, 0);
  for (int64_t r = 0; r < p.nbr(); ++r)
    for (int32_t t = p.row_ptr[r]; t < p.row_ptr[r + 1]; ++t)
      for (int64_t i = 0; i < p.br && r * p.br + i < p.cout; ++i) {
        const int32_t wp = p.w[t * p.br + i];
        int8_t* row = d.data() + (r * p.br + i) * p.cin;
        row[p.kidx[2 * t]] = int8_t(int16_t(wp & 0xFFFF));
        if (p.kidx[2 * t + 1] != p.kidx[2 * t]) row[p.kidx[2 * t + 1]] = int8_t(wp >> 16);
      }
  return d;
}

bool qs8_spmm_accumulator_fits(const Qs8SpmmPacked& w, const int32_t* bias) {
  for (int64_t o = 0; o < w.cout; ++o) {
    const int64_t b = bias ? std::abs(int64_t(bias[o])) : 0;
    if (b + 255 * w.abssum[o] > INT32_MAX) return false;
  }
  return true;
}

void qs8_spmm(const Qs8SpmmPacked& w, int64_t batch, int64_t hw, const uint8_t* x, int32_t a_zp,
              const Qs8Requant& rq, uint8_t* y, bool parallel) {
  if (batch <= 0 || hw <= 0 || w.cout <= 0) return;
  const Qs8SpmmUkernel& uk = *qs8_spmm_ukernel(active_isa(), w.br);
  const int64_t nbr = w.nbr(), br = w.br, cout = w.cout, cin = w.cin;
  // Per-channel constants padded to whole block rows; adj = bias - a_zp * rowsum modulo 2^32.
  std::vector<int32_t> adj(nbr * br, 0);
  std::vector<float> scale(nbr * br, 0.0f);
  for (int64_t o = 0; o < cout; ++o) {
    const uint32_t b = rq.bias ? uint32_t(rq.bias[o]) : 0u;
    adj[o] = int32_t(b - uint32_t(a_zp) * uint32_t(w.rowsum[o]));
    scale[o] = rq.scale[o];
  }
  const qs8_spmm_params params{adj.data(), scale.data(), rq.out_zp, rq.qmin, rq.qmax};
  // Activations widened to int16, rows padded with zeros to whole 32-pixel groups.
  const int64_t hwpad = (hw + 31) / 32 * 32;
  std::vector<int16_t> xw(size_t(batch * cin * hwpad));
  auto widen = [&](int64_t n) {
    for (int64_t k = 0; k < cin; ++k) {
      const uint8_t* s = x + (n * cin + k) * hw;
      int16_t* d = xw.data() + (n * cin + k) * hwpad;
      for (int64_t p = 0; p < hw; ++p) d[p] = s[p];
      for (int64_t p = hw; p < hwpad; ++p) d[p] = 0;
    }
  };
  auto run = [&](int64_t n, int64_t r0, int64_t r1, int64_t p0, int64_t p1) {
    if (r0 >= r1 || p0 >= p1) return;
    const qs8_spmm_params pr{params.adj + r0 * br, params.scale + r0 * br, params.out_zp,
                             params.qmin, params.qmax};
    uk.fn(size_t(p1 - p0), size_t(r1 - r0), size_t(cout - r0 * br), xw.data() + n * cin * hwpad + p0,
          size_t(hwpad), w.w.data(), w.kidx.data(), w.row_ptr.data() + r0, &pr,
          y + (n * cout + r0 * br) * hw + p0, size_t(hw));
  };
  const int64_t work = (w.npairs() * 2 * br + cout) * hw * batch;
  spmm_parallel(batch, hw, uk.tile, nbr, w.row_ptr, work, parallel, widen, run);
}

}  // namespace eo
