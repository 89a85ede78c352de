// Sparse kernels (f32-spmm, qs8-spmm): every ISA path this CPU has, every block shape, must agree
// with the plain dense reference -- fp32 to within 1e-5 of sum_k |w x| (summation order differs),
// int8 byte for byte -- on edge sizes around every tile, at 0 %, 50 %, 90 % and 100 % zeros, with
// empty rows, fused clamps, batches and 1 or 2 threads.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/parallel.h"
#include "f32-spmm/spmm.h"
#include "harness.h"
#include "isa/isa.h"
#include "qs8-spmm/spmm.h"

using namespace eo;

namespace {

const int kSizes[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 16, 17, 31, 32, 33, 63, 64, 65};
constexpr int kNumSizes = sizeof(kSizes) / sizeof(kSizes[0]);
const int kBlocks[][2] = {{1, 1}, {4, 1}, {8, 1}};
const double kSparsity[] = {0.0, 0.5, 0.9, 1.0};

std::vector<Isa> isa_levels() {
  std::vector<Isa> v;
  for (Isa i : {Isa::scalar, Isa::avx2, Isa::avx512})
    if (i <= cpu_isa()) v.push_back(i);
  return v;
}

struct IsaGuard {
  Isa saved = active_isa();
  ~IsaGuard() { set_isa(saved); }
};

// Dense (cout, cin) weights with about `sparsity` zeros, in blocks of br x bc, and every third row
// (from row 1) empty when `empty_rows`.
std::vector<float> sparse_weights(int cout, int cin, int br, int bc, double sparsity, bool empty_rows,
                                  std::mt19937& rng) {
  std::vector<float> w = test::random_vec(size_t(cout) * cin, rng);
  std::uniform_real_distribution<double> u(0, 1);
  for (int o0 = 0; o0 < cout; o0 += br)
    for (int k0 = 0; k0 < cin; k0 += bc)
      if (u(rng) < sparsity)
        for (int o = o0; o < std::min(cout, o0 + br); ++o)
          for (int k = k0; k < std::min(cin, k0 + bc); ++k) w[size_t(o) * cin + k] = 0.f;
  if (empty_rows)
    for (int o = 1; o < cout; o += 3) std::fill(w.begin() + size_t(o) * cin, w.begin() + size_t(o + 1) * cin, 0.f);
  return w;
}

void check_f32(int cout, int cin, int hw, int batch, int br, int bc, double sparsity, int variant,
               std::mt19937& rng) {
  const bool empty_rows = variant % 3 == 1;
  std::vector<float> w = sparse_weights(cout, cin, br, bc, sparsity, empty_rows, rng);
  std::vector<float> x = test::random_vec(size_t(batch) * cin * hw, rng);
  std::vector<float> bias = test::random_vec(cout, rng);
  const float* bias_p = variant % 4 == 0 ? nullptr : bias.data();
  const float lo = variant % 5 == 1 ? 0.f : -INFINITY, hi = variant % 5 == 1 ? 0.5f : INFINITY;
  F32SpmmPacked p = f32_spmm_pack_dense(cout, cin, w.data(), cin, br, bc);
  CHECK(f32_spmm_unpack(p) == w, "pack/unpack round trip");
  std::vector<float> y(size_t(batch) * cout * hw, NAN), ref(y.size()), mag(y.size());
  f32_spmm(p, batch, hw, x.data(), bias_p, lo, hi, y.data(), true);
  std::vector<float> wa(w), xa(x), ba(bias);
  for (auto& v : wa) v = std::fabs(v);
  for (auto& v : xa) v = std::fabs(v);
  for (auto& v : ba) v = std::fabs(v);
  for (int n = 0; n < batch; ++n) {
    const size_t xo = size_t(n) * cin * hw, yo = size_t(n) * cout * hw;
    reference::f32_spmm(cout, cin, hw, w.data(), x.data() + xo, bias_p, lo, hi, ref.data() + yo);
    reference::f32_spmm(cout, cin, hw, wa.data(), xa.data() + xo, bias_p ? ba.data() : nullptr,
                        -INFINITY, INFINITY, mag.data() + yo);
  }
  for (size_t e = 0; e < y.size(); ++e) {
    if (!(std::fabs(y[e] - ref[e]) <= 1e-5f * (mag[e] + 1e-30f))) {
      char buf[300];
      std::snprintf(buf, sizeof buf,
                    "f32_spmm %s block %dx%d cout=%d cin=%d hw=%d batch=%d sparsity=%.1f variant=%d: "
                    "y[%zu] = %.9g, reference %.9g",
                    isa_name(active_isa()), br, bc, cout, cin, hw, batch, sparsity, variant, e, y[e],
                    ref[e]);
      throw test::Failure{buf};
    }
  }
}

}  // namespace

TEST(f32_spmm_matches_reference_on_edge_sizes_every_path_and_block) {
  IsaGuard guard;
  std::mt19937 rng(11);
  int variant = 0;
  for (Isa isa : isa_levels()) {
    set_isa(isa);
    for (auto& blk : kBlocks)
      for (int i = 0; i < kNumSizes; ++i)
        for (int j = 0; j < kNumSizes; ++j) {
          const int cout = kSizes[i], hw = kSizes[j];
          int cin = kSizes[(i * 7 + j * 3 + variant) % kNumSizes];
          if (blk[1] > 1) cin = (cin + blk[1] - 1) / blk[1] * blk[1];
          check_f32(cout, cin, hw, 1, blk[0], blk[1], kSparsity[variant % 4], variant, rng);
          ++variant;
        }
  }
}

TEST(f32_spmm_matches_reference_on_layer_shapes_batches_and_threads) {
  IsaGuard guard;
  std::mt19937 rng(12);
  struct Shape { int cout, cin, hw, batch; };
  const Shape shapes[] = {{64, 64, 64, 1}, {96, 24, 196, 2}, {24, 144, 49, 1},
                          {130, 68, 257, 1}, {33, 40, 1, 5},  {256, 256, 64, 1}};
  int variant = 0;
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (Isa isa : isa_levels()) {
      set_isa(isa);
      for (auto& blk : kBlocks)
        for (const Shape& s : shapes)
          for (double sp : {0.5, 0.9}) check_f32(s.cout, s.cin, s.hw, s.batch, blk[0], blk[1], sp, variant++, rng);
    }
  }
}

TEST(f32_spmm_csr_and_bitmask_packs_equal_the_dense_pack) {
  std::mt19937 rng(13);
  for (int cout : {1, 7, 33})
    for (int cin : {1, 8, 9, 65}) {
      std::vector<float> w = sparse_weights(cout, cin, 1, 1, 0.7, true, rng);
      std::vector<int32_t> rp{0}, col;
      std::vector<float> val;
      std::vector<uint8_t> mask(size_t(cout) * ((cin + 7) / 8), 0);
      for (int o = 0; o < cout; ++o) {
        for (int k = 0; k < cin; ++k)
          if (w[size_t(o) * cin + k] != 0.f) {
            col.push_back(k);
            val.push_back(w[size_t(o) * cin + k]);
            mask[size_t(o) * ((cin + 7) / 8) + k / 8] |= uint8_t(1u << (k % 8));
          }
        rp.push_back(int32_t(col.size()));
      }
      F32SpmmPacked d = f32_spmm_pack_dense(cout, cin, w.data(), cin, 1, 1);
      F32SpmmPacked c = f32_spmm_pack_csr(cout, cin, rp.data(), col.data(), val.data());
      F32SpmmPacked m = f32_spmm_pack_bitmask(cout, cin, mask.data(), val.data());
      for (const F32SpmmPacked* p : {&c, &m}) {
        CHECK(p->row_ptr == d.row_ptr && p->col == d.col && p->values == d.values, "same packed arrays");
        CHECK(p->nnz == d.nnz, "same nnz");
      }
    }
}

TEST(f32_spmm_results_do_not_depend_on_thread_count) {
  std::mt19937 rng(14);
  for (auto& blk : kBlocks) {
    const int cout = 72, cin = 64, hw = 300;
    std::vector<float> w = sparse_weights(cout, cin, blk[0], blk[1], 0.8, false, rng);
    std::vector<float> x = test::random_vec(size_t(cin) * hw, rng), y1(size_t(cout) * hw), y2(y1.size());
    F32SpmmPacked p = f32_spmm_pack_dense(cout, cin, w.data(), cin, blk[0], blk[1]);
    set_num_threads(1);
    f32_spmm(p, 1, hw, x.data(), nullptr, -INFINITY, INFINITY, y1.data(), true);
    set_num_threads(2);
    f32_spmm(p, 1, hw, x.data(), nullptr, -INFINITY, INFINITY, y2.data(), true);
    CHECK(std::memcmp(y1.data(), y2.data(), y1.size() * 4) == 0, "bitwise equal with 1 and 2 threads");
  }
}

namespace {

// int8: random s8 weights with `sparsity` zeros (in br x 1 blocks), u8 activations, per-channel
// requantization settings spread like qs8-gemm's tests (extreme values on some variants).
void check_qs8(int cout, int cin, int hw, int batch, int br, double sparsity, int variant,
               std::mt19937& rng) {
  std::uniform_int_distribution<int> u8(0, 255), s8(-128, 127);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<int8_t> w(size_t(cout) * cin);
  const int extreme = variant % 7;  // 0: x all 255, w all -128; 1: x all 0, w all 127
  for (auto& v : w) v = extreme == 0 ? -128 : extreme == 1 ? 127 : int8_t(s8(rng));
  for (int o0 = 0; o0 < cout; o0 += br)
    for (int k = 0; k < cin; ++k)
      if (u(rng) < sparsity)
        for (int o = o0; o < std::min(cout, o0 + br); ++o) w[size_t(o) * cin + k] = 0;
  if (variant % 3 == 1)
    for (int o = 1; o < cout; o += 3) std::fill(w.begin() + size_t(o) * cin, w.begin() + size_t(o + 1) * cin, 0);
  std::vector<uint8_t> x(size_t(batch) * cin * hw);
  for (auto& v : x) v = extreme == 0 ? 255 : extreme == 1 ? 0 : uint8_t(u8(rng));
  const int32_t a_zp = variant % 4 == 0 ? 0 : variant % 4 == 1 ? 255 : u8(rng);
  std::vector<int32_t> bias(cout);
  std::vector<float> scale(cout);
  std::uniform_int_distribution<int32_t> bias_d(-(1 << 20), 1 << 20);
  std::uniform_real_distribution<float> mant_d(0.5f, 1.0f);
  int log2k = 0;
  while ((1 << log2k) < cin) ++log2k;
  std::uniform_int_distribution<int> exp_d(log2k + 1, log2k + 9);
  for (int o = 0; o < cout; ++o) {
    bias[o] = bias_d(rng);
    scale[o] = std::ldexp(mant_d(rng), -exp_d(rng));
  }
  if (variant % 11 == 3) {  // factors >= 1, tiny, and exact ties
    scale[0] = 3.0f;
    if (cout > 1) scale[1] = 1e-30f;
    if (cout > 2) scale[2] = 0.5f;
  }
  const int32_t* bias_p = variant % 5 == 0 ? nullptr : bias.data();
  int32_t out_zp, qmin, qmax;
  if (variant % 2) {  // s8 output, ReLU6-like clamp on every third case
    out_zp = -128 + u8(rng);
    qmin = variant % 3 == 0 ? out_zp : -128;
    qmax = variant % 3 == 0 ? std::min(127, out_zp + 60) : 127;
  } else {
    out_zp = u8(rng);
    qmin = variant % 3 == 0 ? out_zp : 0;
    qmax = 255;
  }
  Qs8SpmmPacked p = qs8_spmm_pack(cout, cin, w.data(), cin, br);
  CHECK(qs8_spmm_unpack(p) == w, "pack/unpack round trip");
  CHECK(qs8_spmm_accumulator_fits(p, bias_p), "test data keeps the accumulator in int32");
  std::vector<uint8_t> y(size_t(batch) * cout * hw, 0xA5), ref(y.size(), 0x5A);
  qs8_spmm(p, batch, hw, x.data(), a_zp, {bias_p, scale.data(), out_zp, qmin, qmax},
           y.data(), true);
  for (int n = 0; n < batch; ++n)
    reference::qs8_spmm(cout, cin, hw, w.data(), x.data() + size_t(n) * cin * hw, a_zp, bias_p,
                        scale.data(), out_zp, qmin, qmax, ref.data() + size_t(n) * cout * hw);
  for (size_t e = 0; e < y.size(); ++e)
    if (y[e] != ref[e]) {
      char buf[300];
      std::snprintf(buf, sizeof buf,
                    "qs8_spmm %s br=%d cout=%d cin=%d hw=%d batch=%d sparsity=%.1f variant=%d: "
                    "y[%zu] = %d, reference %d",
                    isa_name(active_isa()), br, cout, cin, hw, batch, sparsity, variant, e, y[e], ref[e]);
      throw test::Failure{buf};
    }
}

}  // namespace

TEST(qs8_spmm_matches_reference_bit_for_bit_on_edge_sizes_every_path) {
  IsaGuard guard;
  std::mt19937 rng(21);
  int variant = 0;
  for (Isa isa : isa_levels()) {
    set_isa(isa);
    for (int br : {1, 4})
      for (int i = 0; i < kNumSizes; ++i)
        for (int j = 0; j < kNumSizes; ++j) {
          const int cin = kSizes[(i * 7 + j * 3 + variant) % kNumSizes];
          check_qs8(kSizes[i], cin, kSizes[j], 1, br, kSparsity[variant % 4], variant, rng);
          ++variant;
        }
  }
}

TEST(qs8_spmm_matches_reference_on_layer_shapes_batches_and_threads) {
  IsaGuard guard;
  std::mt19937 rng(22);
  struct Shape { int cout, cin, hw, batch; };
  const Shape shapes[] = {{64, 64, 64, 1}, {96, 24, 196, 2}, {24, 144, 49, 1},
                          {130, 67, 257, 1}, {33, 40, 1, 5},  {256, 256, 64, 1}};
  int variant = 0;
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (Isa isa : isa_levels()) {
      set_isa(isa);
      for (int br : {1, 4})
        for (const Shape& s : shapes)
          for (double sp : {0.5, 0.9}) check_qs8(s.cout, s.cin, s.hw, s.batch, br, sp, variant++, rng);
    }
  }
}
