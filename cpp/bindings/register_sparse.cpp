#include <pybind11/stl.h>

#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "check.h"
#include "compute_scope.h"
#include "b1-gemm/gemm.h"
#include "f32-spmm/spmm.h"
#include "lowbit/lowbit.h"
#include "qs8-spmm/spmm.h"

// Sparse and low-bit inference kernels (cpp/src/f32-spmm, qs8-spmm, b1-gemm, lowbit) for tests,
// benchmarks and the deploy runtime. Weights are packed once (a Python object owning the packed
// arrays); the run functions take activations in NCHW.
//   f32: spmm_pack(w, block=(1, 1)) / spmm_pack_csr / spmm_pack_bitmask -> SpmmPacked;
//        spmm(x, packed, bias=None, activation="none"); spmm_reference(x, w, ...); spmm_unpack
//   int8: qspmm_pack(w, block_rows=1) -> QSpmmPacked; qspmm(x, packed, a_zero_point, bias,
//         scale, out_zero_point, qmin=None, qmax=None, out_dtype="uint8"); qspmm_reference
//   binary: b1_conv2d_pack(w, alpha=None) / b1_conv2d(x, packed, bias, stride, padding, pad_value,
//           activation, residual=None, threshold=None) / b1_conv2d_reference; b1_linear_pack / b1_linear / b1_linear_reference
//   low-bit: lowbit_pack(q, bits) / lowbit_unpack(packed, k, bits, scale=None) /
//            lowbit_sgemm(packed, k, bits, scale, b) / lowbit_sgemm_reference
namespace eo::bind {
namespace {

template <typename T>
py::array_t<T> to_numpy(const std::vector<T>& v) {
  py::array_t<T> a(static_cast<py::ssize_t>(v.size()));
  std::copy(v.begin(), v.end(), a.mutable_data());
  return a;
}

// "none" / "relu" / "relu6" -> output clamp.
std::pair<float, float> activation_range(const std::string& act) {
  const float inf = std::numeric_limits<float>::infinity();
  if (act == "none") return {-inf, inf};
  if (act == "relu") return {0.f, inf};
  if (act == "relu6") return {0.f, 6.f};
  throw py::value_error("activation: expected 'none', 'relu' or 'relu6', got '" + act + "'");
}

// Weights of a 1x1 conv (Cout, Cin, 1, 1) or a linear layer (Cout, Cin), as (Cout, Cin).
F32Array weight_2d(const py::handle& obj, const char* name, int64_t* cout, int64_t* cin) {
  F32Array w = f32(obj, name);
  if (!(w.ndim() == 2 || (w.ndim() == 4 && w.shape(2) == 1 && w.shape(3) == 1)))
    throw py::value_error(std::string(name) + ": expected shape (Cout, Cin) or (Cout, Cin, 1, 1), got " +
                          shape_str(w));
  *cout = w.shape(0);
  *cin = w.shape(1);
  return w;
}

// Activations x as (batch, Cin, HW): 4-d NCHW (N, Cin, H, W), 3-d (N, Cin, L), or 2-d (N, Cin) for
// a linear layer, which runs as one image of N pixels: x^T (Cin, N).
struct Act {
  F32Array x;
  std::vector<float> xt;  // transposed copy for 2-d input
  int64_t batch = 0, hw = 0;
  std::vector<py::ssize_t> out_shape;
  bool linear = false;
  const float* data() const { return linear ? xt.data() : x.data(); }
};

Act activations(const py::handle& obj, int64_t cin, int64_t cout) {
  Act a{f32(obj, "x")};
  const F32Array& x = a.x;
  if (x.ndim() < 2 || x.ndim() > 4)
    throw py::value_error("x: expected (N, Cin, H, W), (N, Cin, L) or (N, Cin), got shape " + shape_str(x));
  if (x.shape(1) != cin)
    throw py::value_error("x: expected " + std::to_string(cin) + " input channels (dim 1) to match the "
                          "weights, got shape " + shape_str(x));
  a.out_shape.assign(x.shape(), x.shape() + x.ndim());
  a.out_shape[1] = cout;
  if (x.ndim() == 2) {
    a.linear = true;
    a.batch = 1;
    a.hw = x.shape(0);
    a.xt.resize(size_t(cin * a.hw));
    for (int64_t n = 0; n < a.hw; ++n)
      for (int64_t k = 0; k < cin; ++k) a.xt[k * a.hw + n] = x.data()[n * cin + k];
  } else {
    a.batch = x.shape(0);
    a.hw = x.ndim() == 4 ? x.shape(2) * x.shape(3) : x.shape(2);
  }
  return a;
}

// y (cout, N) for a linear layer -> (N, cout).
F32Array finish(const Act& a, std::vector<float>& y, int64_t cout) {
  F32Array out(a.out_shape);
  float* o = out.mutable_data();
  if (a.linear) {
    for (int64_t n = 0; n < a.hw; ++n)
      for (int64_t j = 0; j < cout; ++j) o[n * cout + j] = y[j * a.hw + n];
  } else {
    std::copy(y.begin(), y.end(), o);
  }
  return out;
}

const float* optional_bias(const py::handle& obj, int64_t cout, py::object* keep) {
  if (obj.is_none()) return nullptr;
  F32Array b = f32(obj, "bias", 1);
  expect_shape(b, "bias", {cout});
  *keep = b;
  return b.data();
}

// A binary conv's per-input-channel threshold: None or an f32 array (cin,).
const float* optional_threshold(const py::handle& obj, int64_t cin, py::object* keep) {
  if (obj.is_none()) return nullptr;
  F32Array t = f32(obj, "threshold", 1);
  expect_shape(t, "threshold", {cin});
  *keep = t;
  return t.data();
}

// A binary conv's residual: None or an f32 array shaped like its output.
const float* optional_residual(const py::handle& obj, std::initializer_list<int64_t> shape, py::object* keep) {
  if (obj.is_none()) return nullptr;
  F32Array r = f32(obj, "residual", 4);
  expect_shape(r, "residual", shape);
  *keep = r;
  return r.data();
}

std::pair<int, int> block_arg(const py::handle& obj) {
  std::pair<int, int> blk;
  try {
    blk = obj.cast<std::pair<int, int>>();
  } catch (const py::cast_error&) {
    throw py::type_error("block: expected a tuple (rows, cols), got " + std::string(py::repr(obj)));
  }
  if (!f32_spmm_block_supported(blk.first, blk.second))
    throw py::value_error("block: expected one of (1, 1), (4, 1), (8, 1), got (" +
                          std::to_string(blk.first) + ", " + std::to_string(blk.second) + ")");
  return blk;
}

void check_index_limit(int64_t n, const char* name) {
  if (n > std::numeric_limits<int32_t>::max())
    throw py::value_error(std::string(name) + ": too large for 32-bit block indices");
}


void expect_range(int64_t v, int64_t lo, int64_t hi, const char* name) {
  if (v < lo || v > hi)
    throw py::value_error(std::string(name) + ": expected an integer in [" + std::to_string(lo) +
                          ", " + std::to_string(hi) + "], got " + std::to_string(v));
}

// A Python int or an int32 array of n values, each in [lo, hi].
std::vector<int32_t> per_channel(const py::handle& obj, int64_t n, int64_t lo, int64_t hi,
                                 const char* name) {
  std::vector<int32_t> out(static_cast<size_t>(n));
  if (py::isinstance<py::int_>(obj)) {
    const int64_t v = obj.cast<int64_t>();
    expect_range(v, lo, hi, name);
    std::fill(out.begin(), out.end(), int32_t(v));
    return out;
  }
  auto a = typed<int32_t>(obj, name, 1, "int32 (or a Python int)");
  expect_shape(a, name, {n});
  for (int64_t j = 0; j < n; ++j) {
    if (a.data()[j] < lo || a.data()[j] > hi)
      throw py::value_error(std::string(name) + ": expected values in [" + std::to_string(lo) + ", " +
                            std::to_string(hi) + "], got " + std::to_string(a.data()[j]) +
                            " at index " + std::to_string(j));
    out[j] = a.data()[j];
  }
  return out;
}

// Everything qspmm and qspmm_reference share.
struct QArgs {
  py::array_t<uint8_t, py::array::c_style> x;
  int64_t batch = 0, hw = 0;
  std::vector<py::ssize_t> out_shape;
  int32_t a_zp = 0;
  RequantArgs rq;
};

QArgs qargs(const py::handle& x_obj, int64_t cin, int64_t cout, int64_t a_zp, const py::handle& bias,
            const py::handle& scale, int64_t out_zp,
            const py::handle& qmin, const py::handle& qmax, const py::handle& out_dtype) {
  QArgs r{typed<uint8_t>(x_obj, "x", -1, "uint8")};
  if (r.x.ndim() < 3 || r.x.ndim() > 4)
    throw py::value_error("x: expected (N, Cin, H, W) or (N, Cin, L), got shape " + shape_str(r.x));
  if (r.x.shape(1) != cin)
    throw py::value_error("x: expected " + std::to_string(cin) + " input channels (dim 1), got shape " +
                          shape_str(r.x));
  r.batch = r.x.shape(0);
  r.hw = r.x.ndim() == 4 ? r.x.shape(2) * r.x.shape(3) : r.x.shape(2);
  r.out_shape.assign(r.x.shape(), r.x.shape() + r.x.ndim());
  r.out_shape[1] = cout;
  expect_range(a_zp, 0, 255, "a_zero_point");
  r.a_zp = int32_t(a_zp);
  r.rq = requant_args(cout, bias, scale, out_zp, qmin, qmax, out_dtype);
  return r;
}

py::array_t<int8_t, py::array::c_style> int8_weight_2d(const py::handle& obj, int64_t* cout, int64_t* cin) {
  auto w = typed<int8_t>(obj, "w", -1, "int8");
  if (!(w.ndim() == 2 || (w.ndim() == 4 && w.shape(2) == 1 && w.shape(3) == 1)))
    throw py::value_error("w: expected shape (Cout, Cin) or (Cout, Cin, 1, 1), got " + shape_str(w));
  *cout = w.shape(0);
  *cin = w.shape(1);
  return w;
}

std::pair<int64_t, int64_t> pair_arg(const py::handle& obj, const char* name, int64_t min) {
  std::pair<int64_t, int64_t> v;
  try {
    v = py::isinstance<py::int_>(obj) ? std::pair<int64_t, int64_t>{obj.cast<int64_t>(), obj.cast<int64_t>()}
                                      : obj.cast<std::pair<int64_t, int64_t>>();
  } catch (const py::cast_error&) {
    throw py::type_error(std::string(name) + ": expected an int or a tuple (h, w), got " +
                         std::string(py::repr(obj)));
  }
  if (v.first < min || v.second < min)
    throw py::value_error(std::string(name) + ": expected values >= " + std::to_string(min) + ", got (" +
                          std::to_string(v.first) + ", " + std::to_string(v.second) + ")");
  return v;
}

// alpha: None -> mean |w| per output channel (XNOR-Net), else float32 (cout,).
std::vector<float> alpha_arg(const py::handle& obj, const float* w, int64_t cout, int64_t per) {
  if (obj.is_none()) return b1_channel_alpha(w, cout, per);
  std::vector<float> a(static_cast<size_t>(cout));
  F32Array arr = f32(obj, "alpha", 1);
  expect_shape(arr, "alpha", {cout});
  std::copy(arr.data(), arr.data() + cout, a.begin());
  return a;
}

}  // namespace

void register_sparse(py::module_& m, py::module_& testing) {
  using Packed = F32SpmmPacked;
  py::class_<Packed, std::shared_ptr<Packed>>(
      m, "SpmmPacked", "fp32 sparse weights (Cout, Cin) in blocks, from spmm_pack / spmm_pack_csr / "
                       "spmm_pack_bitmask")
      .def_property_readonly("shape", [](const Packed& p) { return py::make_tuple(p.cout, p.cin); })
      .def_property_readonly("block", [](const Packed& p) { return py::make_tuple(p.br, p.bc); })
      .def_property_readonly("nnz", [](const Packed& p) { return p.nnz; })
      .def_property_readonly("nblocks", [](const Packed& p) { return p.nblocks(); })
      .def_property_readonly("nbytes", [](const Packed& p) { return p.nbytes(); })
      .def_property_readonly("row_ptr", [](const Packed& p) { return to_numpy(p.row_ptr); })
      .def_property_readonly("col", [](const Packed& p) { return to_numpy(p.col); })
      .def_property_readonly("values", [](const Packed& p) { return to_numpy(p.values); })
      .def("__repr__", [](const Packed& p) {
        return "SpmmPacked(shape=(" + std::to_string(p.cout) + ", " + std::to_string(p.cin) +
               "), block=(" + std::to_string(p.br) + ", " + std::to_string(p.bc) +
               "), nnz=" + std::to_string(p.nnz) + ")";
      });

  m.def("spmm_pack", [](py::object w_obj, py::object block) {
    int64_t cout, cin;
    F32Array w = weight_2d(w_obj, "w", &cout, &cin);
    auto [br, bc] = block_arg(block);
    if (cin % bc != 0)
      throw py::value_error("block: " + std::to_string(bc) + " input channels per block need Cin % " +
                            std::to_string(bc) + " == 0, got Cin = " + std::to_string(cin));
    check_index_limit(cout * cin, "w");
    auto p = std::make_shared<Packed>();
    {
      const ComputeScope compute;
      *p = f32_spmm_pack_dense(cout, cin, w.data(), cin, br, bc);
    }
    return p;
  }, py::arg("w"), py::arg("block") = py::make_tuple(1, 1),
     "Pack dense weights w (Cout, Cin) or (Cout, Cin, 1, 1), keeping the blocks of block = (rows "
     "= output channels, cols = input channels) that hold a nonzero: (1, 1), (4, 1), (8, 1).");

  testing.def("spmm_pack_csr", [](py::object rp_obj, py::object col_obj, py::object val_obj,
                            std::pair<int64_t, int64_t> shape) {
    const auto [cout, cin] = shape;
    expect_nonnegative(cout, "shape[0]");
    expect_nonnegative(cin, "shape[1]");
    auto rp = typed<int32_t>(rp_obj, "row_ptr", 1, "int32");
    auto col = typed<int32_t>(col_obj, "col", 1, "int32");
    F32Array val = f32(val_obj, "values", 1);
    expect_shape(rp, "row_ptr", {cout + 1});
    const int32_t* r = rp.data();
    if (r[0] != 0) throw py::value_error("row_ptr: expected row_ptr[0] == 0, got " + std::to_string(r[0]));
    for (int64_t o = 0; o < cout; ++o)
      if (r[o + 1] < r[o])
        throw py::value_error("row_ptr: expected non-decreasing values, got row_ptr[" +
                              std::to_string(o + 1) + "] = " + std::to_string(r[o + 1]) + " < " +
                              std::to_string(r[o]));
    expect_shape(col, "col", {r[cout]});
    expect_shape(val, "values", {r[cout]});
    for (int64_t i = 0; i < r[cout]; ++i)
      if (col.data()[i] < 0 || col.data()[i] >= cin)
        throw py::value_error("col: expected column indices in [0, " + std::to_string(cin) + "), got " +
                              std::to_string(col.data()[i]) + " at index " + std::to_string(i));
    auto p = std::make_shared<Packed>();
    *p = f32_spmm_pack_csr(cout, cin, r, col.data(), val.data());
    return p;
  }, py::arg("row_ptr"), py::arg("col"), py::arg("values"), py::arg("shape"),
     "Unstructured sparse weights of shape (Cout, Cin) from CSR arrays (int32 row_ptr, int32 col, "
     "float32 values); repeated entries add up.");

  testing.def("spmm_pack_bitmask", [](py::object mask_obj, py::object val_obj,
                                std::pair<int64_t, int64_t> shape) {
    const auto [cout, cin] = shape;
    expect_nonnegative(cout, "shape[0]");
    expect_nonnegative(cin, "shape[1]");
    check_index_limit(cout * cin, "shape");
    auto mask = typed<uint8_t>(mask_obj, "mask", 2, "uint8");
    const int64_t row_bytes = (cin + 7) / 8;
    expect_shape(mask, "mask", {cout, row_bytes});
    int64_t bits = 0;
    for (int64_t o = 0; o < cout; ++o)
      for (int64_t j = 0; j < row_bytes; ++j) {
        const unsigned v = mask.data()[o * row_bytes + j];
        if (j == row_bytes - 1 && cin % 8 && (v >> (cin % 8)))
          throw py::value_error("mask: bits past Cin = " + std::to_string(cin) + " must be zero (row " +
                                std::to_string(o) + ")");
        bits += __builtin_popcount(v);
      }
    F32Array val = f32(val_obj, "values", 1);
    expect_shape(val, "values", {bits});
    auto p = std::make_shared<Packed>();
    *p = f32_spmm_pack_bitmask(cout, cin, mask.data(), val.data());
    return p;
  }, py::arg("mask"), py::arg("values"), py::arg("shape"),
     "Unstructured sparse weights of shape (Cout, Cin) from a bitmask (uint8 (Cout, ceil(Cin/8)), "
     "bit k%8 of byte k//8 set where W[o, k] is kept; numpy.packbits(..., bitorder='little')) and "
     "the kept values in row-major order.");

  testing.def("spmm_unpack", [](std::shared_ptr<Packed> p) {
    if (!p) throw py::type_error("packed: expected a SpmmPacked, got None");
    F32Array w({p->cout, p->cin});
    std::vector<float> d = f32_spmm_unpack(*p);
    std::copy(d.begin(), d.end(), w.mutable_data());
    return w;
  }, py::arg("packed"), "The dense (Cout, Cin) weights of a SpmmPacked.");

  testing.def("spmm", [](py::object x_obj, std::shared_ptr<Packed> p, py::object bias_obj,
                   const std::string& activation) {
    if (!p) throw py::type_error("packed: expected a SpmmPacked from spmm_pack, got None");
    const auto [lo, hi] = activation_range(activation);
    Act a = activations(x_obj, p->cin, p->cout);
    py::object keep;
    const float* bias = optional_bias(bias_obj, p->cout, &keep);
    if (!a.linear) {  // NCHW: the kernel writes the result array directly
      F32Array out(a.out_shape);
      float* yp = out.mutable_data();
      const ComputeScope compute;
      f32_spmm(*p, a.batch, a.hw, a.data(), bias, lo, hi, yp, true);
      return out;
    }
    std::vector<float> y(size_t(a.batch * p->cout * a.hw));
    {
      const ComputeScope compute;
      f32_spmm(*p, a.batch, a.hw, a.data(), bias, lo, hi, y.data(), true);
    }
    return finish(a, y, p->cout);
  }, py::arg("x"), py::arg("packed"), py::arg("bias") = py::none(), py::arg("activation") = "none",
     "y = act(W x + bias) for sparse W: a 1x1 conv on x (N, Cin, H, W) -> (N, Cout, H, W), or a "
     "linear layer on x (N, Cin) -> (N, Cout). activation: 'none', 'relu', 'relu6'.");

  testing.def("spmm_reference", [](py::object x_obj, py::object w_obj, py::object bias_obj,
                             const std::string& activation) {
    int64_t cout, cin;
    F32Array w = weight_2d(w_obj, "w", &cout, &cin);
    const auto [lo, hi] = activation_range(activation);
    Act a = activations(x_obj, cin, cout);
    py::object keep;
    const float* bias = optional_bias(bias_obj, cout, &keep);
    std::vector<float> y(size_t(a.batch * cout * a.hw));
    {
      const ComputeScope compute;
      for (int64_t n = 0; n < a.batch; ++n)
        reference::f32_spmm(cout, cin, a.hw, w.data(), a.data() + n * cin * a.hw, bias, lo, hi,
                            y.data() + n * cout * a.hw);
    }
    return finish(a, y, cout);
  }, py::arg("x"), py::arg("w"), py::arg("bias") = py::none(), py::arg("activation") = "none",
     "Plain-loop spmm over dense weights (double accumulation): the oracle for tests.");
  // ------------------------------------------------------------------------------------ int8
  using QPacked = Qs8SpmmPacked;
  py::class_<QPacked, std::shared_ptr<QPacked>>(testing, "QSpmmPacked",
                                                "int8 sparse weights (Cout, Cin), from qspmm_pack")
      .def_property_readonly("shape", [](const QPacked& p) { return py::make_tuple(p.cout, p.cin); })
      .def_property_readonly("block_rows", [](const QPacked& p) { return p.br; })
      .def_property_readonly("nnz", [](const QPacked& p) { return p.nnz; })
      .def_property_readonly("nbytes", [](const QPacked& p) { return p.nbytes(); })
      .def("__repr__", [](const QPacked& p) {
        return "QSpmmPacked(shape=(" + std::to_string(p.cout) + ", " + std::to_string(p.cin) +
               "), block_rows=" + std::to_string(p.br) + ", nnz=" + std::to_string(p.nnz) + ")";
      });

  testing.def("qspmm_pack", [](py::object w_obj, int block_rows) {
    int64_t cout, cin;
    auto w = int8_weight_2d(w_obj, &cout, &cin);
    if (!qs8_spmm_block_supported(block_rows))
      throw py::value_error("block_rows: expected 1 or 4, got " + std::to_string(block_rows));
    check_index_limit(cout * cin, "w");
    auto p = std::make_shared<QPacked>();
    {
      const ComputeScope compute;
      *p = qs8_spmm_pack(cout, cin, w.data(), cin, block_rows);
    }
    return p;
  }, py::arg("w"), py::arg("block_rows") = 1,
     "Pack int8 weights (Cout, Cin) or (Cout, Cin, 1, 1), keeping their nonzeros (block_rows=4: "
     "4x1 blocks of output channels).");

  testing.def("qspmm_unpack", [](std::shared_ptr<QPacked> p) {
    if (!p) throw py::type_error("packed: expected a QSpmmPacked, got None");
    py::array_t<int8_t> w({p->cout, p->cin});
    std::vector<int8_t> d = qs8_spmm_unpack(*p);
    std::copy(d.begin(), d.end(), w.mutable_data());
    return w;
  }, py::arg("packed"));

  testing.def("qspmm", [](py::object x, std::shared_ptr<QPacked> p, int64_t a_zp, py::object bias,
                    py::object scale, int64_t out_zp, py::object qmin,
                    py::object qmax, py::object out_dtype) {
    if (!p) throw py::type_error("packed: expected a QSpmmPacked from qspmm_pack, got None");
    QArgs r = qargs(x, p->cin, p->cout, a_zp, bias, scale, out_zp, qmin, qmax, out_dtype);
    if (!qs8_spmm_accumulator_fits(*p, r.rq.bias))
      throw py::value_error("bias: |bias[o]| + 255 * sum_k |w[o, k]| must be <= 2^31 - 1 so the int32 "
                            "accumulator is exact; this bias/weight combination exceeds it");
    py::array y(r.rq.dtype, r.out_shape);
    uint8_t* yp = static_cast<uint8_t*>(y.mutable_data());
    {
      const ComputeScope compute;
      qs8_spmm(*p, r.batch, r.hw, r.x.data(), r.a_zp,
               {r.rq.bias, r.rq.scale.data(), r.rq.out_zp, r.rq.qmin, r.rq.qmax}, yp, true);
    }
    return y;
  }, py::arg("x"), py::arg("packed"), py::arg("a_zero_point"), py::arg("bias"), py::arg("scale"),
     py::arg("out_zero_point"), py::arg("qmin") = py::none(),
     py::arg("qmax") = py::none(), py::arg("out_dtype") = "uint8",
     "int8 sparse 1x1 conv on uint8 x (N, Cin, H, W): y = clamp(requantize((x - a_zero_point) W^T + "
     "bias)), qgemm's requantization per output channel.");

  testing.def("qspmm_reference", [](py::object x, py::object w_obj, int64_t a_zp, py::object bias,
                              py::object scale, int64_t out_zp,
                              py::object qmin, py::object qmax, py::object out_dtype) {
    int64_t cout, cin;
    auto w = int8_weight_2d(w_obj, &cout, &cin);
    QArgs r = qargs(x, cin, cout, a_zp, bias, scale, out_zp, qmin, qmax, out_dtype);
    QPacked sums = qs8_spmm_pack(cout, cin, w.data(), cin, 1);
    if (!qs8_spmm_accumulator_fits(sums, r.rq.bias))
      throw py::value_error("bias: |bias[o]| + 255 * sum_k |w[o, k]| must be <= 2^31 - 1");
    py::array y(r.rq.dtype, r.out_shape);
    uint8_t* yp = static_cast<uint8_t*>(y.mutable_data());
    {
      const ComputeScope compute;
      for (int64_t n = 0; n < r.batch; ++n)
        reference::qs8_spmm(cout, cin, r.hw, w.data(), r.x.data() + n * cin * r.hw, r.a_zp, r.rq.bias,
                            r.rq.scale.data(), r.rq.out_zp, r.rq.qmin, r.rq.qmax,
                            yp + n * cout * r.hw);
    }
    return y;
  }, py::arg("x"), py::arg("w"), py::arg("a_zero_point"), py::arg("bias"), py::arg("scale"),
     py::arg("out_zero_point"), py::arg("qmin") = py::none(),
     py::arg("qmax") = py::none(), py::arg("out_dtype") = "uint8",
     "Plain-loop qspmm over dense int8 weights: the oracle for tests.");

  // ---------------------------------------------------------------------------------- binary
  py::class_<B1ConvWeights, std::shared_ptr<B1ConvWeights>>(testing, "B1ConvPacked",
                                                             "1-bit conv weights, from b1_conv2d_pack")
      .def_property_readonly("shape", [](const B1ConvWeights& p) { return py::make_tuple(p.cout, p.cin, p.kh, p.kw); })
      .def_property_readonly("alpha", [](const B1ConvWeights& p) { return to_numpy(p.alpha); })
      .def_property_readonly("nbytes", [](const B1ConvWeights& p) { return p.nbytes(); });
  py::class_<B1LinearWeights, std::shared_ptr<B1LinearWeights>>(testing, "B1LinearPacked",
                                                                 "1-bit linear weights, from b1_linear_pack")
      .def_property_readonly("shape", [](const B1LinearWeights& p) { return py::make_tuple(p.n, p.k); })
      .def_property_readonly("alpha", [](const B1LinearWeights& p) { return to_numpy(p.alpha); })
      .def_property_readonly("nbytes", [](const B1LinearWeights& p) { return p.nbytes(); });

  testing.def("b1_conv2d_pack", [](py::object w_obj, py::object alpha_obj) {
    F32Array w = f32(w_obj, "w", 4);
    const int64_t cout = w.shape(0), cin = w.shape(1), kh = w.shape(2), kw = w.shape(3);
    if (cout < 1 || cin < 1 || kh < 1 || kw < 1)
      throw py::value_error("w: expected a non-empty (Cout, Cin, KH, KW) array, got shape " + shape_str(w));
    std::vector<float> alpha = alpha_arg(alpha_obj, w.data(), cout, cin * kh * kw);
    auto p = std::make_shared<B1ConvWeights>();
    {
      const ComputeScope compute;
      *p = b1_pack_conv_weights(cout, cin, kh, kw, w.data(), alpha.data());
    }
    return p;
  }, py::arg("w"), py::arg("alpha") = py::none(),
     "Binarize conv weights (Cout, Cin, KH, KW) to sign bits (+1 for w >= 0) with per-output-channel "
     "scale alpha (default mean |w| of the channel).");

  testing.def("b1_conv2d", [](py::object x_obj, std::shared_ptr<B1ConvWeights> p, py::object bias_obj,
                        py::object stride_obj, py::object padding_obj, int pad_value,
                        const std::string& activation, py::object residual_obj, py::object threshold_obj) {
    if (!p) throw py::type_error("packed: expected a B1ConvPacked from b1_conv2d_pack, got None");
    F32Array x = f32(x_obj, "x", 4);
    if (x.shape(1) != p->cin)
      throw py::value_error("x: expected " + std::to_string(p->cin) + " input channels (dim 1), got shape " +
                            shape_str(x));
    const auto [sh, sw] = pair_arg(stride_obj, "stride", 1);
    const auto [ph, pw] = pair_arg(padding_obj, "padding", 0);
    if (pad_value < -1 || pad_value > 1)
      throw py::value_error("pad_value: expected -1, 0 or 1, got " + std::to_string(pad_value));
    const auto [lo, hi] = activation_range(activation);
    const int64_t h = x.shape(2), w = x.shape(3);
    if (h + 2 * ph < p->kh || w + 2 * pw < p->kw)
      throw py::value_error("x: padded input " + std::to_string(h + 2 * ph) + "x" + std::to_string(w + 2 * pw) +
                            " is smaller than the kernel " + std::to_string(p->kh) + "x" + std::to_string(p->kw));
    py::object keep, keep_res, keep_thr;
    const float* bias = optional_bias(bias_obj, p->cout, &keep);
    const float* thr = optional_threshold(threshold_obj, p->cin, &keep_thr);
    const int64_t oh = (h + 2 * ph - p->kh) / sh + 1, ow = (w + 2 * pw - p->kw) / sw + 1;
    const B1ConvEpilogue epi{bias, optional_residual(residual_obj, {int64_t(x.shape(0)), p->cout, oh, ow}, &keep_res),
                             lo, hi};
    F32Array y({int64_t(x.shape(0)), p->cout, oh, ow});
    float* yp = y.mutable_data();
    {
      const ComputeScope compute;
      b1_conv2d(*p, {sh, sw, ph, pw, pad_value, thr}, x.shape(0), h, w, x.data(), epi, yp, true);
    }
    return y;
  }, py::arg("x"), py::arg("packed"), py::arg("bias") = py::none(), py::arg("stride") = 1,
     py::arg("padding") = 0, py::arg("pad_value") = 0, py::arg("activation") = "none",
     py::arg("residual") = py::none(), py::arg("threshold") = py::none(),
     "Binary conv: y = act(alpha[o] * sum sign(x) sign(w) + bias[o] + residual) with XNOR-popcount; "
     "padded positions count as pad_value (-1, 0 or +1); sign(x[c]) is +1 where x >= threshold[c] "
     "(default 0).");

  testing.def("b1_conv2d_reference", [](py::object x_obj, py::object w_obj, py::object alpha_obj,
                                  py::object bias_obj, py::object stride_obj, py::object padding_obj,
                                  int pad_value, const std::string& activation, py::object residual_obj,
                                  py::object threshold_obj) {
    F32Array x = f32(x_obj, "x", 4), w = f32(w_obj, "w", 4);
    const int64_t cout = w.shape(0), cin = w.shape(1), kh = w.shape(2), kw = w.shape(3);
    if (x.shape(1) != cin) throw py::value_error("x: channels differ from w's, got shape " + shape_str(x));
    std::vector<float> alpha = alpha_arg(alpha_obj, w.data(), cout, cin * kh * kw);
    const auto [sh, sw] = pair_arg(stride_obj, "stride", 1);
    const auto [ph, pw] = pair_arg(padding_obj, "padding", 0);
    if (pad_value < -1 || pad_value > 1)
      throw py::value_error("pad_value: expected -1, 0 or 1, got " + std::to_string(pad_value));
    const auto [lo, hi] = activation_range(activation);
    const int64_t h = x.shape(2), wd = x.shape(3);
    if (h + 2 * ph < kh || wd + 2 * pw < kw) throw py::value_error("x: padded input smaller than the kernel");
    py::object keep, keep_res, keep_thr;
    const float* bias = optional_bias(bias_obj, cout, &keep);
    const float* thr = optional_threshold(threshold_obj, cin, &keep_thr);
    const int64_t oh = (h + 2 * ph - kh) / sh + 1, ow = (wd + 2 * pw - kw) / sw + 1;
    const float* res = optional_residual(residual_obj, {int64_t(x.shape(0)), cout, oh, ow}, &keep_res);
    F32Array y({int64_t(x.shape(0)), cout, oh, ow});
    float* yp = y.mutable_data();
    {
      const ComputeScope compute;
      for (int64_t n = 0; n < x.shape(0); ++n)
        reference::b1_conv2d(cout, cin, kh, kw, w.data(), alpha.data(), bias, res ? res + n * cout * oh * ow : nullptr,
                             sh, sw, ph, pw, pad_value, thr, h, wd, x.data() + n * cin * h * wd, lo, hi,
                             yp + n * cout * oh * ow);
    }
    return y;
  }, py::arg("x"), py::arg("w"), py::arg("alpha") = py::none(), py::arg("bias") = py::none(),
     py::arg("stride") = 1, py::arg("padding") = 0, py::arg("pad_value") = 0,
     py::arg("activation") = "none", py::arg("residual") = py::none(), py::arg("threshold") = py::none(),
     "Plain-loop binary conv over sign values: the oracle for tests.");

  testing.def("b1_linear_pack", [](py::object w_obj, py::object alpha_obj) {
    F32Array w = f32(w_obj, "w", 2);
    const int64_t n = w.shape(0), k = w.shape(1);
    std::vector<float> alpha = alpha_arg(alpha_obj, w.data(), n, k);
    auto p = std::make_shared<B1LinearWeights>();
    {
      const ComputeScope compute;
      *p = b1_pack_linear_weights(n, k, w.data(), alpha.data());
    }
    return p;
  }, py::arg("w"), py::arg("alpha") = py::none(),
     "Binarize linear weights (N, K) with per-output scale alpha (default mean |w| per row).");

  testing.def("b1_linear", [](py::object x_obj, std::shared_ptr<B1LinearWeights> p, py::object bias_obj,
                        const std::string& activation) {
    if (!p) throw py::type_error("packed: expected a B1LinearPacked from b1_linear_pack, got None");
    F32Array x = f32(x_obj, "x", 2);
    expect_shape(x, "x", {-1, p->k});
    const auto [lo, hi] = activation_range(activation);
    py::object keep;
    const float* bias = optional_bias(bias_obj, p->n, &keep);
    F32Array y({int64_t(x.shape(0)), p->n});
    float* yp = y.mutable_data();
    {
      const ComputeScope compute;
      b1_linear(*p, x.shape(0), x.data(), bias, lo, hi, yp, true);
    }
    return y;
  }, py::arg("x"), py::arg("packed"), py::arg("bias") = py::none(), py::arg("activation") = "none",
     "Binary linear: y = act(alpha[j] * sign(x) . sign(w_j) + bias[j]).");

  testing.def("b1_linear_reference", [](py::object x_obj, py::object w_obj, py::object alpha_obj,
                                  py::object bias_obj, const std::string& activation) {
    F32Array x = f32(x_obj, "x", 2), w = f32(w_obj, "w", 2);
    const int64_t n = w.shape(0), k = w.shape(1);
    expect_shape(x, "x", {-1, k});
    std::vector<float> alpha = alpha_arg(alpha_obj, w.data(), n, k);
    const auto [lo, hi] = activation_range(activation);
    py::object keep;
    const float* bias = optional_bias(bias_obj, n, &keep);
    F32Array y({int64_t(x.shape(0)), n});
    float* yp = y.mutable_data();
    {
      const ComputeScope compute;
      reference::b1_linear(n, k, w.data(), alpha.data(), bias, x.shape(0), x.data(), lo, hi, yp);
    }
    return y;
  }, py::arg("x"), py::arg("w"), py::arg("alpha") = py::none(), py::arg("bias") = py::none(),
     py::arg("activation") = "none");

  // ---------------------------------------------------------------------------------- low-bit
  testing.def("lowbit_pack", [](py::object q_obj, int bits) {
    if (!lowbit_bits_supported(bits))
      throw py::value_error("bits: expected 1, 2 or 4, got " + std::to_string(bits));
    auto q = typed<int8_t>(q_obj, "q", 2, "int8");
    const int64_t rows = q.shape(0), k = q.shape(1);
    const int lo = bits == 1 ? -1 : -(1 << (bits - 1)), hi = bits == 1 ? 1 : (1 << (bits - 1)) - 1;
    for (int64_t e = 0; e < rows * k; ++e) {
      const int v = q.data()[e];
      if (v < lo || v > hi || (bits == 1 && v == 0))
        throw py::value_error("q: " + std::to_string(bits) + "-bit codes must be " +
                              (bits == 1 ? std::string("-1 or +1") : "in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]") +
                              ", got " + std::to_string(v) + " at flat index " + std::to_string(e));
    }
    py::array_t<uint8_t> out({rows, lowbit_row_bytes(k, bits)});
    lowbit_pack(rows, k, bits, q.data(), out.mutable_data());
    return out;
  }, py::arg("q"), py::arg("bits"),
     "Pack int8 codes (rows, k) into `bits`-bit fields, LSB first, each row starting on a byte.");

  testing.def("lowbit_unpack", [](py::object packed_obj, int64_t k, int bits, py::object scale_obj) -> py::object {
    if (!lowbit_bits_supported(bits))
      throw py::value_error("bits: expected 1, 2 or 4, got " + std::to_string(bits));
    expect_nonnegative(k, "k");
    auto pk = typed<uint8_t>(packed_obj, "packed", 2, "uint8");
    expect_shape(pk, "packed", {-1, lowbit_row_bytes(k, bits)});
    const int64_t rows = pk.shape(0);
    if (scale_obj.is_none()) {
      py::array_t<int8_t> q({rows, k});
      lowbit_unpack_s8(rows, k, bits, pk.data(), q.mutable_data());
      return std::move(q);
    }
    F32Array scale = f32(scale_obj, "scale", 1);
    expect_shape(scale, "scale", {rows});
    F32Array out({rows, k});
    lowbit_unpack_f32(rows, k, bits, pk.data(), scale.data(), out.mutable_data());
    return std::move(out);
  }, py::arg("packed"), py::arg("k"), py::arg("bits"), py::arg("scale") = py::none(),
     "Codes back as int8 (rows, k), or as float32 scale[row] * code with scale given.");

  auto lowbit_gemm = [](py::object packed_obj, int64_t k, int bits, py::object scale_obj,
                        py::object b_obj, bool reference) {
    if (!lowbit_bits_supported(bits))
      throw py::value_error("bits: expected 1, 2 or 4, got " + std::to_string(bits));
    expect_nonnegative(k, "k");
    auto pk = typed<uint8_t>(packed_obj, "packed", 2, "uint8");
    expect_shape(pk, "packed", {-1, lowbit_row_bytes(k, bits)});
    const int64_t M = pk.shape(0);
    F32Array scale = f32(scale_obj, "scale", 1);
    expect_shape(scale, "scale", {M});
    F32Array b = f32(b_obj, "b", 2);
    expect_shape(b, "b", {k, -1});
    const int64_t N = b.shape(1);
    F32Array c({M, N});
    float* cp = c.mutable_data();
    {
      const ComputeScope compute;
      if (reference) reference::lowbit_sgemm(M, N, k, bits, pk.data(), scale.data(), b.data(), cp);
      else lowbit_sgemm(M, N, k, bits, pk.data(), scale.data(), row_major(b.data(), N), cp, N, true);
    }
    return c;
  };
  testing.def("lowbit_sgemm", [lowbit_gemm](py::object p, int64_t k, int bits, py::object s, py::object b) {
    return lowbit_gemm(p, k, bits, s, b, false);
  }, py::arg("packed"), py::arg("k"), py::arg("bits"), py::arg("scale"), py::arg("b"),
     "(scale * codes) (M, k) @ b (k, N), decoding the codes while packing sgemm's panels.");
  testing.def("lowbit_sgemm_reference", [lowbit_gemm](py::object p, int64_t k, int bits, py::object s, py::object b) {
    return lowbit_gemm(p, k, bits, s, b, true);
  }, py::arg("packed"), py::arg("k"), py::arg("bits"), py::arg("scale"), py::arg("b"));
}

}  // namespace eo::bind
