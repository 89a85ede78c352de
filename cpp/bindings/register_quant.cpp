// Quantization element loops (cpp/src/f32-quantize) for edgeopt.quant, its one caller:
//   lo, hi, bad = quant_row_range(x)                     x: float32 (rows, cols)
//   q, bad = quant_quantize_rows(x, scale, zp, qmin, qmax, dtype)   scale float64 (rows,), zp int32 (rows,) or None
//   x = quant_dequantize_rows(q, scale, zp)              q: int8 / uint8 / int32 (rows, cols)
//   bad = quant_histogram(x, lo, hi, counts)             counts: int64 (nbins,), accumulated
//   y, bad = quant_fake_quantize_rows(x, scale, zp, qmin, qmax)        scale float32 (rows,), zp int32 (rows,)
//   dx = quant_fake_quantize_backward_rows(x, dy, scale, zp, qmin, qmax)
//   packed = quant_pack_codes(q, bits)                  q int8 (rows, k) codes -> uint8 (rows, row bytes)
// `bad` is the flat index of the first NaN / Inf (-1: none); Python names the tensor in its error.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cmath>
#include <string>
#include <tuple>

#include "check.h"
#include "compute_scope.h"
#include "f32-quantize/quantize.h"
#include "lowbit/lowbit.h"

namespace eo::bind {
namespace {

using F64Array = py::array_t<double, py::array::c_style>;
using I32Array = py::array_t<int32_t, py::array::c_style>;

// `rows` per-row scales of type T, each finite and > 0.
template <class T>
py::array_t<T, py::array::c_style> checked_scales(const py::handle& scale, int64_t rows, const char* dtype) {
  auto s = typed<T>(scale, "scale", 1, dtype);
  expect_shape(s, "scale", {rows});
  for (int64_t r = 0; r < rows; ++r)
    if (!(std::isfinite(s.data()[r]) && s.data()[r] > 0))
      throw py::value_error("scale[" + std::to_string(r) + "]: expected a finite value > 0, got " +
                            std::to_string(s.data()[r]));
  return s;
}

// Per-row scales (finite, > 0) and zero points (None: 0) for `rows` rows.
std::pair<F64Array, py::object> row_params(const py::handle& scale, const py::handle& zp, int64_t rows) {
  F64Array s = checked_scales<double>(scale, rows, "float64");
  if (zp.is_none()) return {s, py::none()};
  I32Array z = typed<int32_t>(zp, "zero_point", 1, "int32");
  expect_shape(z, "zero_point", {rows});
  return {s, z};
}

const int32_t* zp_ptr(const py::object& z) {
  return z.is_none() ? nullptr : py::reinterpret_borrow<I32Array>(z).data();
}

}  // namespace

void register_quant(py::module_& m) {
  m.def("quant_row_range", [](py::object x_obj) {
    F32Array x = f32(x_obj, "x", 2);
    const int64_t rows = x.shape(0), cols = x.shape(1);
    py::array_t<float> lo(rows), hi(rows);
    int64_t bad;
    {
      const ComputeScope compute;
      bad = quant::row_range(x.data(), rows, cols, lo.mutable_data(), hi.mutable_data());
    }
    return py::make_tuple(lo, hi, bad);
  }, py::arg("x"), "Per-row min and max of a float32 (rows, cols) array, and the first non-finite index.");

  m.def("quant_quantize_rows", [](py::object x_obj, py::object scale, py::object zp, int64_t qmin, int64_t qmax,
                                  const std::string& dtype) {
    F32Array x = f32(x_obj, "x", 2);
    const int64_t rows = x.shape(0), cols = x.shape(1);
    auto [s, z] = row_params(scale, zp, rows);
    int64_t lo, hi;
    if (dtype == "int8") lo = -128, hi = 127;
    else if (dtype == "uint8") lo = 0, hi = 255;
    else if (dtype == "int32") lo = INT32_MIN, hi = INT32_MAX;
    else throw py::value_error("dtype: expected 'int8', 'uint8' or 'int32', got '" + dtype + "'");
    expect_range(qmin, lo, hi, "qmin");
    expect_range(qmax, qmin, hi, "qmax");
    const int32_t* zpp = zp_ptr(z);
    int64_t bad;
    py::array q;
    if (dtype == "int8") {
      py::array_t<int8_t> a({rows, cols});
      int8_t* out = a.mutable_data();
      q = a;
      const ComputeScope compute;
      bad = quant::quantize_rows_s8(x.data(), rows, cols, s.data(), zpp, int32_t(qmin), int32_t(qmax), out);
    } else if (dtype == "uint8") {
      py::array_t<uint8_t> a({rows, cols});
      uint8_t* out = a.mutable_data();
      q = a;
      const ComputeScope compute;
      bad = quant::quantize_rows_u8(x.data(), rows, cols, s.data(), zpp, int32_t(qmin), int32_t(qmax), out);
    } else {
      py::array_t<int32_t> a({rows, cols});
      int32_t* out = a.mutable_data();
      q = a;
      const ComputeScope compute;
      bad = quant::quantize_rows_s32(x.data(), rows, cols, s.data(), zpp, int32_t(qmin), int32_t(qmax), out);
    }
    return py::make_tuple(q, bad);
  }, py::arg("x"), py::arg("scale"), py::arg("zero_point"), py::arg("qmin"), py::arg("qmax"), py::arg("dtype"),
     "q = clamp(round_half_even(x / scale[r]) + zero_point[r], qmin, qmax) per row, and the first non-finite index.");

  m.def("quant_dequantize_rows", [](py::object q_obj, py::object scale, py::object zp) {
    if (!py::isinstance<py::array>(q_obj))
      throw py::type_error("q: expected a numpy.ndarray of int8, uint8 or int32, got " +
                           std::string(py::str(py::type::of(q_obj).attr("__name__"))));
    const py::array qa = py::reinterpret_borrow<py::array>(q_obj);
    if (qa.ndim() != 2) throw py::value_error("q: expected a 2-d array, got shape " + shape_str(qa));
    const int64_t rows = qa.shape(0), cols = qa.shape(1);
    auto [s, z] = row_params(scale, zp, rows);
    const int32_t* zpp = zp_ptr(z);
    py::array_t<float> x({rows, cols});
    if (qa.dtype().is(py::dtype::of<int8_t>())) {
      auto q = typed<int8_t>(qa, "q", 2, "int8");
      const ComputeScope compute;
      quant::dequantize_rows_s8(q.data(), rows, cols, s.data(), zpp, x.mutable_data());
    } else if (qa.dtype().is(py::dtype::of<uint8_t>())) {
      auto q = typed<uint8_t>(qa, "q", 2, "uint8");
      const ComputeScope compute;
      quant::dequantize_rows_u8(q.data(), rows, cols, s.data(), zpp, x.mutable_data());
    } else if (qa.dtype().is(py::dtype::of<int32_t>())) {
      auto q = typed<int32_t>(qa, "q", 2, "int32");
      const ComputeScope compute;
      quant::dequantize_rows_s32(q.data(), rows, cols, s.data(), zpp, x.mutable_data());
    } else {
      throw py::type_error("q: expected dtype int8, uint8 or int32, got " + std::string(py::str(qa.dtype())));
    }
    return x;
  }, py::arg("q"), py::arg("scale"), py::arg("zero_point"),
     "x = float32(scale[r] * (q - zero_point[r])) per row.");

  // Per-row float32 scales (finite, > 0) and int32 zero points of a fake quantization.
  auto fq_params = [](const py::handle& scale, const py::handle& zp, int64_t rows) {
    auto s = checked_scales<float>(scale, rows, "float32");
    I32Array z = typed<int32_t>(zp, "zero_point", 1, "int32");
    expect_shape(z, "zero_point", {rows});
    return std::make_pair(s, z);
  };

  m.def("quant_fake_quantize_rows", [fq_params](py::object x_obj, py::object scale, py::object zp, int64_t qmin,
                                                int64_t qmax) {
    F32Array x = f32(x_obj, "x", 2);
    const int64_t rows = x.shape(0), cols = x.shape(1);
    auto [s, z] = fq_params(scale, zp, rows);
    expect_range(qmin, -(int64_t(1) << 20), int64_t(1) << 20, "qmin");
    expect_range(qmax, qmin, int64_t(1) << 20, "qmax");
    F32Array y({rows, cols});
    int64_t bad;
    {
      const ComputeScope compute;
      bad = quant::fake_quantize_rows(x.data(), rows, cols, s.data(), z.data(), int32_t(qmin), int32_t(qmax),
                                      y.mutable_data());
    }
    return py::make_tuple(y, bad);
  }, py::arg("x"), py::arg("scale"), py::arg("zero_point"), py::arg("qmin"), py::arg("qmax"),
     "y = scale * (clamp(rint(x * (1/scale)) + zp, qmin, qmax) - zp) per row, in float32; the first non-finite index.");

  m.def("quant_fake_quantize_backward_rows", [fq_params](py::object x_obj, py::object dy_obj, py::object scale,
                                                         py::object zp, int64_t qmin, int64_t qmax) {
    F32Array x = f32(x_obj, "x", 2), dy = f32(dy_obj, "dy", 2);
    const int64_t rows = x.shape(0), cols = x.shape(1);
    expect_shape(dy, "dy", {rows, cols});
    auto [s, z] = fq_params(scale, zp, rows);
    expect_range(qmin, -(int64_t(1) << 20), int64_t(1) << 20, "qmin");
    expect_range(qmax, qmin, int64_t(1) << 20, "qmax");
    F32Array dx({rows, cols});
    {
      const ComputeScope compute;
      quant::fake_quantize_backward_rows(x.data(), dy.data(), rows, cols, s.data(), z.data(), int32_t(qmin),
                                         int32_t(qmax), dx.mutable_data());
    }
    return dx;
  }, py::arg("x"), py::arg("dy"), py::arg("scale"), py::arg("zero_point"), py::arg("qmin"), py::arg("qmax"),
     "dx = dy where x * (1/scale) + zp rounds into [qmin, qmax], else 0 (straight-through with clipping).");

  m.def("quant_pack_codes", [](py::object q_obj, int bits) {
    auto q = typed<int8_t>(q_obj, "q", 2, "int8");
    if (bits != 1 && bits != 2 && bits != 4) throw py::value_error("bits: expected 1, 2 or 4, got " + std::to_string(bits));
    // 1 bit: the binary codes -1 and +1; 2 and 4 bits: two's complement
    const int64_t rows = q.shape(0), k = q.shape(1), lo = bits == 1 ? -1 : -(1 << (bits - 1)),
                  hi = bits == 1 ? 1 : (1 << (bits - 1)) - 1;
    for (int64_t i = 0; i < rows * k; ++i)
      if (q.data()[i] < lo || q.data()[i] > hi || (bits == 1 && q.data()[i] == 0))
        throw py::value_error("q: code " + std::to_string(int(q.data()[i])) + " at flat index " + std::to_string(i) +
                              " is outside the " + std::to_string(bits) + "-bit codes [" + std::to_string(lo) + ", " +
                              std::to_string(hi) + "]" + (bits == 1 ? " without 0" : ""));
    py::array_t<uint8_t> out({rows, lowbit_row_bytes(k, bits)});
    lowbit_pack(rows, k, bits, q.data(), out.mutable_data());
    return out;
  }, py::arg("q"), py::arg("bits"),
     "Rows of b-bit codes (two's complement; 1 bit: -1 / +1) bit-packed LSB first, each row from a new byte (lowbit.h).");

  m.def("quant_histogram", [](py::object x_obj, double lo, double hi, py::object counts_obj) {
    F32Array x = f32(x_obj, "x");
    auto counts = typed<int64_t>(counts_obj, "counts", 1, "int64");
    if (!counts.writeable()) throw py::value_error("counts: array is read-only");
    if (counts.size() < 1) throw py::value_error("counts: expected at least one bin");
    if (!(std::isfinite(lo) && std::isfinite(hi) && lo < hi))
      throw py::value_error("lo, hi: expected finite lo < hi, got " + std::to_string(lo) + ", " + std::to_string(hi));
    const ComputeScope compute;
    return quant::histogram(x.data(), x.size(), lo, hi, counts.size(), counts.mutable_data());
  }, py::arg("x"), py::arg("lo"), py::arg("hi"), py::arg("counts"),
     "Adds the counts of x over nbins equal bins of [lo, hi] to counts; the first non-finite index.");
}

}  // namespace eo::bind
