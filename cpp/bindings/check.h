// Argument checks at the Python boundary. Kernels trust their inputs; every binding validates
// dtype, rank, shape and contiguity here first and raises a Python exception that names the
// argument, what was expected and what was received.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <initializer_list>
#include <string>

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

// Shape check; -1 in `expected` matches any size. Raises ValueError.
void expect_shape(const py::array& a, const char* name, std::initializer_list<int64_t> expected);
std::string shape_str(const py::array& a);

// A positive (or non-negative) integer setting; raises ValueError naming it.
void expect_positive(int64_t v, const char* name);
void expect_nonnegative(int64_t v, const char* name);

}  // namespace eo::bind
