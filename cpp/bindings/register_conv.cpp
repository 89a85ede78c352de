#include <string>
#include <utility>

#include "array_pool.h"
#include "check.h"
#include "compute_scope.h"
#include "f32-conv2d/conv2d.h"
#include "reference/reference.h"

namespace eo::bind {
namespace {

// An (h, w) pair given as a 2-tuple/list of ints or a single int for both.
std::pair<int64_t, int64_t> pair_arg(const py::handle& obj, const char* name) {
  auto as_int = [&](const py::handle& v) -> int64_t {
    if (!py::isinstance<py::int_>(v) || py::isinstance<py::bool_>(v))
      throw py::type_error(std::string(name) + ": expected an int or a pair of ints (h, w), got " +
                           std::string(py::str(py::type::of(v).attr("__name__"))));
    return v.cast<int64_t>();
  };
  if (py::isinstance<py::tuple>(obj) || py::isinstance<py::list>(obj)) {
    py::sequence seq = py::reinterpret_borrow<py::sequence>(obj);
    if (seq.size() != 2)
      throw py::value_error(std::string(name) + ": expected a pair (h, w), got " +
                            std::to_string(seq.size()) + " values");
    return {as_int(seq[0]), as_int(seq[1])};
  }
  const int64_t v = as_int(obj);
  return {v, v};
}

struct ConvArgs {
  Conv2dShape s;
  F32Array x, w;
  py::object b;  // None or F32Array
};

ConvArgs conv_args(const py::object& x_obj, const py::object& w_obj, const py::object& b_obj,
                   const py::object& stride, const py::object& padding, int64_t groups) {
  ConvArgs a{Conv2dShape{}, f32(x_obj, "x", 4), f32(w_obj, "w", 4), py::none()};
  const auto [sh, sw] = pair_arg(stride, "stride");
  const auto [ph, pw] = pair_arg(padding, "padding");
  expect_positive(sh, "stride");
  expect_positive(sw, "stride");
  expect_nonnegative(ph, "padding");
  expect_nonnegative(pw, "padding");
  expect_positive(groups, "groups");
  Conv2dShape& s = a.s;
  s.N = a.x.shape(0);
  s.Cin = a.x.shape(1);
  s.H = a.x.shape(2);
  s.W = a.x.shape(3);
  s.Cout = a.w.shape(0);
  s.KH = a.w.shape(2);
  s.KW = a.w.shape(3);
  s.sh = sh;
  s.sw = sw;
  s.ph = ph;
  s.pw = pw;
  s.groups = groups;
  if (s.Cin <= 0 || s.H <= 0 || s.W <= 0)
    throw py::value_error("x: expected at least one channel, row and column, got shape " +
                          shape_str(a.x));
  if (s.Cout <= 0 || s.KH <= 0 || s.KW <= 0)
    throw py::value_error("w: expected at least one output channel and a non-empty kernel, got shape " +
                          shape_str(a.w));
  if (s.Cin % groups != 0)
    throw py::value_error("groups: in_channels " + std::to_string(s.Cin) + " (x.shape[1]) is not divisible by groups=" +
                          std::to_string(groups));
  if (s.Cout % groups != 0)
    throw py::value_error("groups: out_channels " + std::to_string(s.Cout) + " (w.shape[0]) is not divisible by groups=" +
                          std::to_string(groups));
  if (a.w.shape(1) * groups != s.Cin)
    throw py::value_error("w: expected shape (" + std::to_string(s.Cout) + ", " + std::to_string(s.Cin / groups) +
                          ", kh, kw) for in_channels=" + std::to_string(s.Cin) + " and groups=" +
                          std::to_string(groups) + ", got " + shape_str(a.w));
  if (s.H + 2 * ph < s.KH || s.W + 2 * pw < s.KW)
    throw py::value_error("w: kernel " + std::to_string(s.KH) + "x" + std::to_string(s.KW) +
                          " is larger than the padded input " + std::to_string(s.H + 2 * ph) + "x" +
                          std::to_string(s.W + 2 * pw));
  if (!b_obj.is_none()) {
    F32Array b = f32(b_obj, "b", 1);
    expect_shape(b, "b", {s.Cout});
    a.b = b;
  }
  return a;
}

template <class Kernel>
F32Array forward(const py::object& x_obj, const py::object& w_obj, const py::object& b_obj,
                 const py::object& stride, const py::object& padding, int64_t groups, Kernel kernel) {
  ConvArgs a = conv_args(x_obj, w_obj, b_obj, stride, padding, groups);
  const Conv2dShape s = a.s;
  F32Array y = new_f32({s.N, s.Cout, s.OH(), s.OW()});
  const float* b = a.b.is_none() ? nullptr : a.b.cast<F32Array>().data();
  const float *x = a.x.data(), *w = a.w.data();
  float* yp = y.mutable_data();
  {
    const ComputeScope compute;
    kernel(s, x, w, b, yp);
  }
  return y;
}

template <class Kernel>
py::object backward(const py::object& dy_obj, const py::object& x_obj, const py::object& w_obj,
                    const py::object& dw_obj, const py::object& db_obj, const py::object& stride,
                    const py::object& padding, int64_t groups, bool need_dx, Kernel kernel) {
  ConvArgs a = conv_args(x_obj, w_obj, py::none(), stride, padding, groups);
  const Conv2dShape s = a.s;
  F32Array dy = f32(dy_obj, "dy", 4);
  expect_shape(dy, "dy", {s.N, s.Cout, s.OH(), s.OW()});
  F32Array dw = f32_out(dw_obj, "dw", 4);
  expect_shape(dw, "dw", {a.w.shape(0), a.w.shape(1), a.w.shape(2), a.w.shape(3)});
  float* db = nullptr;
  F32Array db_arr;
  if (!db_obj.is_none()) {
    db_arr = f32_out(db_obj, "db", 1);
    expect_shape(db_arr, "db", {s.Cout});
    db = db_arr.mutable_data();
  }
  py::object result = py::none();
  float* dx = nullptr;
  if (need_dx) {
    F32Array dx_arr = new_f32({s.N, s.Cin, s.H, s.W});
    dx = dx_arr.mutable_data();
    result = dx_arr;
  }
  const float *dyp = dy.data(), *x = a.x.data(), *w = a.w.data();
  float* dwp = dw.mutable_data();
  {
    const ComputeScope compute;
    kernel(s, dyp, x, w, dwp, db, dx);
  }
  return result;
}

}  // namespace

// conv2d_forward(x, w, b, stride, padding, groups) -> y
// conv2d_backward(dy, x, w, dw, db, stride, padding, groups, need_dx=True) -> dx or None
//   x (N, Cin, H, W), w (Cout, Cin/groups, KH, KW), b (Cout,) or None; dw, db accumulate (+=).
//   N == 0 is allowed: y / dx are empty and dw, db are left unchanged.
// conv2d_reference_forward / conv2d_reference_backward: the same through the plain loops (tests).
void register_conv(py::module_& m, py::module_& testing) {
  m.def("conv2d_forward",
        [](py::object x, py::object w, py::object b, py::object stride, py::object padding,
           int64_t groups) { return forward(x, w, b, stride, padding, groups, eo::conv2d_forward); },
        py::arg("x"), py::arg("w"), py::arg("b"), py::arg("stride") = py::make_tuple(1, 1),
        py::arg("padding") = py::make_tuple(0, 0), py::arg("groups") = 1);
  m.def("conv2d_backward",
        [](py::object dy, py::object x, py::object w, py::object dw, py::object db,
           py::object stride, py::object padding, int64_t groups, bool need_dx) {
          return backward(dy, x, w, dw, db, stride, padding, groups, need_dx, eo::conv2d_backward);
        },
        py::arg("dy"), py::arg("x"), py::arg("w"), py::arg("dw"), py::arg("db"),
        py::arg("stride") = py::make_tuple(1, 1), py::arg("padding") = py::make_tuple(0, 0),
        py::arg("groups") = 1, py::arg("need_dx") = true);
  testing.def("conv2d_reference_forward",
        [](py::object x, py::object w, py::object b, py::object stride, py::object padding,
           int64_t groups) {
          return forward(x, w, b, stride, padding, groups, eo::reference::conv2d_forward);
        },
        py::arg("x"), py::arg("w"), py::arg("b"), py::arg("stride") = py::make_tuple(1, 1),
        py::arg("padding") = py::make_tuple(0, 0), py::arg("groups") = 1);
  testing.def("conv2d_reference_backward",
        [](py::object dy, py::object x, py::object w, py::object dw, py::object db,
           py::object stride, py::object padding, int64_t groups, bool need_dx) {
          return backward(dy, x, w, dw, db, stride, padding, groups, need_dx,
                          eo::reference::conv2d_backward);
        },
        py::arg("dy"), py::arg("x"), py::arg("w"), py::arg("dw"), py::arg("db"),
        py::arg("stride") = py::make_tuple(1, 1), py::arg("padding") = py::make_tuple(0, 0),
        py::arg("groups") = 1, py::arg("need_dx") = true);
}

}  // namespace eo::bind
