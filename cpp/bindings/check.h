// Argument checks at the Python boundary. Kernels trust their inputs; every binding validates
// dtype, rank, shape and contiguity here first and raises a Python exception that names the
// argument, what was expected and what was received.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

namespace eo::bind {
namespace py = pybind11;

using F32Array = py::array_t<float, py::array::c_style>;

// `obj` must be a C-contiguous float32 numpy array of rank `ndim` (any rank if ndim < 0).
// Raises TypeError (not an array / wrong dtype) or ValueError (rank, contiguity).
F32Array f32(const py::handle& obj, const char* name, int ndim = -1);
// Same, and the array must also be writable (outputs and accumulators).
F32Array f32_out(const py::handle& obj, const char* name, int ndim = -1);
// Any integer dtype array of labels, returned as int64 C-contiguous (a copy if needed).
py::array_t<int64_t, py::array::c_style> labels(const py::handle& obj, const char* name);

// Any-dtype version of f32: `obj` must be a C-contiguous numpy array of dtype T and rank `ndim`
// (any if < 0); `dtype` describes what is expected in the error message (e.g. "int32").
py::array checked_array(const py::handle& obj, const char* name, int ndim, const py::dtype& want,
                        const char* dtype);
template <typename T>
py::array_t<T, py::array::c_style> typed(const py::handle& obj, const char* name, int ndim,
                                         const char* dtype) {
  return py::reinterpret_borrow<py::array_t<T, py::array::c_style>>(
      checked_array(obj, name, ndim, py::dtype::of<T>(), dtype));
}

// An integer setting in [lo, hi]; returns it. Raises ValueError naming it.
int64_t expect_range(int64_t v, int64_t lo, int64_t hi, const std::string& name);
// n float32 requantization factors (finite, > 0): a Python or numpy float (or a 0-d array) for
// all, or a float32 array (n,).
std::vector<float> per_channel_scale(const py::handle& obj, int64_t n, const char* name);
// A per-tensor Python int or a per-channel int32 array of n values, each in [lo, hi].
std::vector<int32_t> per_channel(const py::handle& obj, int64_t n, int64_t lo, int64_t hi,
                                 const char* name);

// The output requantization arguments of the int8 products (qgemm, qspmm): an optional int32 bias
// of n values, per-channel (or per-tensor) float32 scale, the output dtype ('uint8' or
// 'int8'), its zero point, and the clamp [qmin, qmax] (None: the dtype's range). Checked once here.
struct RequantArgs {
  py::object bias_keep;  // keeps the bias array alive while `bias` points into it
  const int32_t* bias = nullptr;
  std::vector<float> scale;
  py::dtype dtype;
  int32_t out_zp = 0, qmin = 0, qmax = 0;
};
RequantArgs requant_args(int64_t n, const py::handle& bias, const py::handle& scale,
                         int64_t out_zp, const py::handle& qmin,
                         const py::handle& qmax, const py::handle& out_dtype);

// Shape check; -1 in `expected` matches any size. Raises ValueError.
void expect_shape(const py::array& a, const char* name, std::initializer_list<int64_t> expected);
std::string shape_str(const py::array& a);

// A positive (or non-negative) integer setting; raises ValueError naming it.
void expect_positive(int64_t v, const char* name);
void expect_nonnegative(int64_t v, const char* name);

}  // namespace eo::bind
