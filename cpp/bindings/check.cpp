#include "check.h"

#include <cmath>
#include <sstream>

namespace eo::bind {

std::string shape_str(const py::array& a) {
  std::ostringstream s;
  s << "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s << (i ? ", " : "") << a.shape(i);
  if (a.ndim() == 1) s << ",";
  s << ")";
  return s.str();
}

static py::array as_array(const py::handle& obj, const char* name) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string(name) + ": expected a numpy.ndarray of float32, got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))));
  return py::reinterpret_borrow<py::array>(obj);
}

py::array checked_array(const py::handle& obj, const char* name, int ndim, const py::dtype& want,
                        const char* dtype) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string(name) + ": expected a numpy.ndarray of " + dtype + ", got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))));
  py::array a = py::reinterpret_borrow<py::array>(obj);
  // equal(), not is(): arrays restored by pickle carry an equal but distinct dtype object
  if (!a.dtype().equal(want))
    throw py::type_error(std::string(name) + ": expected dtype " + dtype + ", got " +
                         std::string(py::str(a.dtype())));
  if (ndim >= 0 && a.ndim() != ndim)
    throw py::value_error(std::string(name) + ": expected a " + std::to_string(ndim) +
                          "-d array, got shape " + shape_str(a));
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) +
                          ": expected a C-contiguous array (use numpy.ascontiguousarray)");
  return a;
}

F32Array f32(const py::handle& obj, const char* name, int ndim) {
  return typed<float>(obj, name, ndim, "float32");
}

int64_t expect_range(int64_t v, int64_t lo, int64_t hi, const std::string& name) {
  if (v < lo || v > hi)
    throw py::value_error(name + ": expected an integer in [" + std::to_string(lo) + ", " +
                          std::to_string(hi) + "], got " + std::to_string(v));
  return v;
}

std::vector<float> per_channel_scale(const py::handle& obj, int64_t n, const char* name) {
  std::vector<float> v;
  const bool zero_d = py::isinstance<py::array>(obj) && py::reinterpret_borrow<py::array>(obj).ndim() == 0;
  if (py::isinstance<py::float_>(obj) || py::isinstance<py::int_>(obj) || zero_d ||
      (py::hasattr(obj, "dtype") && py::hasattr(obj, "__float__") && !py::isinstance<py::array>(obj))) {
    v.assign(size_t(n), obj.cast<float>());
  } else {
    auto a = typed<float>(obj, name, 1, "float32 (or a Python float)");
    expect_shape(a, name, {n});
    v.assign(a.data(), a.data() + n);
  }
  for (int64_t j = 0; j < n; ++j)
    if (!(v[size_t(j)] > 0.0f) || !std::isfinite(v[size_t(j)]))
      throw py::value_error(std::string(name) + "[" + std::to_string(j) +
                            "]: expected finite float32 values > 0, got " + std::to_string(v[size_t(j)]));
  return v;
}

std::vector<int32_t> per_channel(const py::handle& obj, int64_t n, int64_t lo, int64_t hi,
                                 const char* name) {
  if (py::isinstance<py::int_>(obj))
    return std::vector<int32_t>(size_t(n), int32_t(expect_range(obj.cast<int64_t>(), lo, hi, name)));
  auto a = typed<int32_t>(obj, name, 1, "int32 (or a Python int)");
  expect_shape(a, name, {n});
  for (int64_t j = 0; j < n; ++j) {
    const int64_t v = a.data()[j];
    if (v < lo || v > hi)
      throw py::value_error(std::string(name) + "[" + std::to_string(j) + "]: expected values in [" +
                            std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                            std::to_string(v) + " at index " + std::to_string(j));
  }
  return std::vector<int32_t>(a.data(), a.data() + n);
}

F32Array f32_out(const py::handle& obj, const char* name, int ndim) {
  F32Array a = f32(obj, name, ndim);
  if (!a.writeable()) throw py::value_error(std::string(name) + ": array is read-only");
  return a;
}

py::array_t<int64_t, py::array::c_style> labels(const py::handle& obj, const char* name) {
  py::array a = as_array(obj, name);
  if (a.dtype().kind() != 'i' && a.dtype().kind() != 'u')
    throw py::type_error(std::string(name) + ": expected an integer array of class labels, got dtype " +
                         std::string(py::str(a.dtype())));
  if (a.ndim() != 1)
    throw py::value_error(std::string(name) + ": expected a 1-d array, got shape " + shape_str(a));
  return py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
}

void expect_shape(const py::array& a, const char* name, std::initializer_list<int64_t> expected) {
  bool ok = static_cast<size_t>(a.ndim()) == expected.size();
  py::ssize_t i = 0;
  for (int64_t e : expected) {
    if (ok && e >= 0 && a.shape(i) != e) ok = false;
    ++i;
  }
  if (ok) return;
  std::ostringstream s;
  s << name << ": expected shape (";
  i = 0;
  for (int64_t e : expected) {
    s << (i++ ? ", " : "");
    if (e < 0) s << "*"; else s << e;
  }
  if (expected.size() == 1) s << ",";
  s << "), got " << shape_str(a);
  throw py::value_error(s.str());
}

namespace {
int64_t int_or(const py::handle& obj, int64_t dflt, const char* name) {
  if (obj.is_none()) return dflt;
  if (!py::isinstance<py::int_>(obj) || py::isinstance<py::bool_>(obj))
    throw py::type_error(std::string(name) + ": expected None or an int, got " + std::string(py::repr(obj)));
  return obj.cast<int64_t>();
}
}  // namespace

RequantArgs requant_args(int64_t n, const py::handle& bias, const py::handle& scale,
                         int64_t out_zp, const py::handle& qmin,
                         const py::handle& qmax, const py::handle& out_dtype) {
  RequantArgs r;
  if (!bias.is_none()) {
    auto b = typed<int32_t>(bias, "bias", 1, "int32");
    expect_shape(b, "bias", {n});
    r.bias = b.data();
    r.bias_keep = b;
  }
  r.scale = per_channel_scale(scale, n, "scale");
  try {
    r.dtype = py::dtype::from_args(py::reinterpret_borrow<py::object>(out_dtype));
  } catch (const py::error_already_set&) {
    throw py::type_error("out_dtype: expected 'uint8' or 'int8', got " + std::string(py::repr(out_dtype)));
  }
  int lo, hi;
  if (r.dtype.is(py::dtype::of<uint8_t>())) lo = 0, hi = 255;
  else if (r.dtype.is(py::dtype::of<int8_t>())) lo = -128, hi = 127;
  else throw py::type_error("out_dtype: expected 'uint8' or 'int8', got " + std::string(py::str(r.dtype)));
  r.out_zp = int32_t(expect_range(out_zp, lo, hi, "out_zero_point"));
  r.qmin = int32_t(expect_range(int_or(qmin, lo, "qmin"), lo, hi, "qmin"));
  r.qmax = int32_t(expect_range(int_or(qmax, hi, "qmax"), r.qmin, hi, "qmax"));
  return r;
}

void expect_positive(int64_t v, const char* name) {
  if (v <= 0) throw py::value_error(std::string(name) + ": expected a positive integer, got " + std::to_string(v));
}

void expect_nonnegative(int64_t v, const char* name) {
  if (v < 0) throw py::value_error(std::string(name) + ": expected a non-negative integer, got " + std::to_string(v));
}

}  // namespace eo::bind
