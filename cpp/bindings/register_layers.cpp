// Layer kernels: batch norm, activations, pooling, dropout, add, channel scale, cross-entropy.
// Validate, release the GIL, call the kernel (cpp/src/f32-*). Parameter gradients (dgamma, dbeta)
// accumulate; input gradients come back as new arrays.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "array_pool.h"
#include "check.h"
#include "compute_scope.h"
#include "f32-activation/activation.h"
#include "f32-batchnorm/batchnorm.h"
#include "f32-elementwise/elementwise.h"
#include "f32-loss/cross_entropy.h"
#include "f32-pool/pool.h"
#include "f32-squeeze-excite/squeeze_excite.h"

namespace eo::bind {
namespace {

using Shape = std::vector<py::ssize_t>;

Shape shape_of(const py::array& a) { return Shape(a.shape(), a.shape() + a.ndim()); }

// A float32 array that may be None (returns a null pointer then).
const float* opt_in(const py::object& obj, const char* name, int64_t C, F32Array* keep) {
  if (obj.is_none()) return nullptr;
  *keep = f32(obj, name, 1);
  expect_shape(*keep, name, {C});
  return keep->data();
}
float* opt_out(const py::object& obj, const char* name, int64_t C, F32Array* keep) {
  if (obj.is_none()) return nullptr;
  *keep = f32_out(obj, name, 1);
  expect_shape(*keep, name, {C});
  return keep->mutable_data();
}

// A C-contiguous array of exactly dtype T (uint8 masks, int32 argmax).
template <class T>
py::array_t<T, py::array::c_style> exact(const py::handle& obj, const char* name) {
  const std::string want = py::str(py::dtype::of<T>());
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string(name) + ": expected a numpy.ndarray of " + want + ", got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))));
  auto a = py::reinterpret_borrow<py::array>(obj);
  if (!a.dtype().is(py::dtype::of<T>()))
    throw py::type_error(std::string(name) + ": expected dtype " + want + ", got " +
                         std::string(py::str(a.dtype())));
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + ": expected a C-contiguous array (use numpy.ascontiguousarray)");
  return py::reinterpret_borrow<py::array_t<T, py::array::c_style>>(a);
}

void same_shape(const py::array& a, const char* name, const py::array& ref, const char* ref_name) {
  if (shape_of(a) != shape_of(ref))
    throw py::value_error(std::string(name) + ": expected the shape of " + ref_name + " " +
                          shape_str(ref) + ", got " + shape_str(a));
}

void expect_finite_range(double v, const char* name, double lo, double hi, bool hi_open) {
  if (!(v >= lo && (hi_open ? v < hi : v <= hi)))
    throw py::value_error(std::string(name) + ": expected a value in [" + std::to_string(lo) + ", " +
                          std::to_string(hi) + (hi_open ? ")" : "]") + ", got " + std::to_string(v));
}

// Python ints and numpy integers (anything with __index__), but not bools.
bool is_int(const py::handle& v) {
  return PyIndex_Check(v.ptr()) && !py::isinstance<py::bool_>(v) && !py::isinstance<py::array>(v);
}

// An int or a pair of ints -> (h, w). None gives `dflt` (e.g. stride defaults to the kernel).
std::pair<int64_t, int64_t> pair_arg(const py::handle& obj, const char* name,
                                     const std::pair<int64_t, int64_t>* dflt = nullptr) {
  if (obj.is_none() && dflt) return *dflt;
  auto as_int = [&](const py::handle& v) -> int64_t {
    if (!is_int(v))
      throw py::type_error(std::string(name) + ": expected an int or a (h, w) pair of ints, got " +
                           std::string(py::str(py::repr(obj))));
    return py::int_(py::reinterpret_borrow<py::object>(v)).cast<int64_t>();
  };
  if (is_int(obj)) {
    const int64_t v = as_int(obj);
    return {v, v};
  }
  if (py::isinstance<py::sequence>(obj) && !py::isinstance<py::str>(obj)) {
    auto seq = py::reinterpret_borrow<py::sequence>(obj);
    if (seq.size() == 2) return {as_int(seq[0]), as_int(seq[1])};
    throw py::value_error(std::string(name) + ": expected a (h, w) pair, got " +
                          std::string(py::str(py::repr(obj))));
  }
  throw py::type_error(std::string(name) + ": expected an int or a (h, w) pair of ints, got " +
                       std::string(py::str(py::repr(obj))));
}

// x_shape for the pooling backward passes: 4 non-negative ints.
Shape shape4_arg(const py::handle& obj, const char* name) {
  if (!py::isinstance<py::sequence>(obj) || py::isinstance<py::str>(obj))
    throw py::type_error(std::string(name) + ": expected a tuple (N, C, H, W), got " +
                         std::string(py::str(py::repr(obj))));
  auto seq = py::reinterpret_borrow<py::sequence>(obj);
  if (seq.size() != 4)
    throw py::value_error(std::string(name) + ": expected a tuple (N, C, H, W), got " +
                          std::string(py::str(py::repr(obj))));
  Shape s;
  for (auto v : seq) {
    if (!is_int(v))
      throw py::type_error(std::string(name) + ": expected ints (N, C, H, W), got " +
                           std::string(py::str(py::repr(obj))));
    const int64_t d = py::int_(py::reinterpret_borrow<py::object>(v)).cast<int64_t>();
    if (d < 0)
      throw py::value_error(std::string(name) + ": expected non-negative sizes, got " +
                            std::string(py::str(py::repr(obj))));
    s.push_back(d);
  }
  return s;
}

// Kernel / stride / padding checks shared by max and average pooling (PyTorch's rules).
Pool2d pool_geometry(const Shape& x, const py::handle& kernel, const py::handle& stride,
                     const py::handle& padding) {
  const auto k = pair_arg(kernel, "kernel");
  const auto s = pair_arg(stride, "stride", &k);
  const auto p = pair_arg(padding, "padding");
  if (k.first <= 0 || k.second <= 0)
    throw py::value_error("kernel: expected positive sizes, got (" + std::to_string(k.first) + ", " +
                          std::to_string(k.second) + ")");
  if (s.first <= 0 || s.second <= 0)
    throw py::value_error("stride: expected positive sizes, got (" + std::to_string(s.first) + ", " +
                          std::to_string(s.second) + ")");
  if (p.first < 0 || p.second < 0 || p.first > k.first / 2 || p.second > k.second / 2)
    throw py::value_error("padding: expected at most half the kernel (" + std::to_string(k.first / 2) +
                          ", " + std::to_string(k.second / 2) + ") and non-negative, got (" +
                          std::to_string(p.first) + ", " + std::to_string(p.second) + ")");
  constexpr int64_t kMax = std::numeric_limits<int32_t>::max();  // keeps H + 2*pad - k exact
  if (k.first > kMax || k.second > kMax || s.first > kMax || s.second > kMax)
    throw py::value_error("kernel, stride: expected sizes below 2^31, got kernel (" +
                          std::to_string(k.first) + ", " + std::to_string(k.second) + "), stride (" +
                          std::to_string(s.first) + ", " + std::to_string(s.second) + ")");
  Pool2d g{x[0], x[1], x[2], x[3], k.first, k.second, s.first, s.second, p.first, p.second};
  if (x[2] + 2 * p.first < k.first || x[3] + 2 * p.second < k.second)
    throw py::value_error("kernel: (" + std::to_string(k.first) + ", " + std::to_string(k.second) +
                          ") is larger than the padded input (" + std::to_string(x[2] + 2 * p.first) +
                          ", " + std::to_string(x[3] + 2 * p.second) + "): the output would be empty");
  return g;
}

template <void (*Kernel)(const float*, float*, int64_t)>
F32Array unary(const py::object& x_obj) {
  F32Array x = f32(x_obj, "x");
  F32Array y = new_f32(shape_of(x));
  {
    const ComputeScope compute;
    Kernel(x.data(), y.mutable_data(), x.size());
  }
  return y;
}

// backward(dy, saved) where `saved` is the forward input or output, named for the message.
template <void (*Kernel)(const float*, const float*, float*, int64_t)>
F32Array unary_backward(const py::object& dy_obj, const py::object& s_obj, const char* s_name) {
  F32Array dy = f32(dy_obj, "dy"), s = f32(s_obj, s_name);
  same_shape(dy, "dy", s, s_name);
  F32Array dx = new_f32(shape_of(dy));
  {
    const ComputeScope compute;
    Kernel(dy.data(), s.data(), dx.mutable_data(), dy.size());
  }
  return dx;
}

// The activation fused into batch norm; with a residual only those whose derivative is a test on
// the output (the backward then reads the output).
int bn_act(const std::string& act, bool residual) {
  int a;
  if (act == "none") a = kBnActNone;
  else if (act == "relu") a = kBnActRelu;
  else if (act == "relu6") a = kBnActRelu6;
  else if (act == "hardswish") a = kBnActHardswish;
  else throw py::value_error("act: expected 'none', 'relu', 'relu6' or 'hardswish', got '" + act + "'");
  if (residual && a == kBnActHardswish)
    throw py::value_error("act: 'hardswish' cannot follow a residual add (its derivative needs the "
                          "sum, which is not kept); use 'none', 'relu' or 'relu6'");
  return a;
}

void register_batchnorm(py::module_& m) {
  m.def("batchnorm2d_forward_train", [](py::object x_obj, py::object gamma_obj, py::object beta_obj,
                                        py::object rm_obj, py::object rv_obj, double momentum,
                                        double eps, const std::string& act, py::object res_obj) {
    F32Array x = f32(x_obj, "x", 4), gamma, beta, rm, rv, res;
    const int64_t N = x.shape(0), C = x.shape(1), HW = x.shape(2) * x.shape(3);
    const float* g = opt_in(gamma_obj, "gamma", C, &gamma);
    const float* b = opt_in(beta_obj, "beta", C, &beta);
    float* rmp = opt_out(rm_obj, "running_mean", C, &rm);
    float* rvp = opt_out(rv_obj, "running_var", C, &rv);
    if (!rmp != !rvp)
      throw py::value_error("running_mean, running_var: pass both arrays or both None");
    expect_finite_range(momentum, "momentum", 0.0, 1.0, false);
    expect_finite_range(eps, "eps", 0.0, std::numeric_limits<double>::max(), false);
    const int a = bn_act(act, !res_obj.is_none());
    if (!res_obj.is_none()) {
      res = f32(res_obj, "residual", 4);
      same_shape(res, "residual", x, "x");
    }
    if (N * HW <= 1)
      throw py::value_error("x: Expected more than 1 value per channel when training, got input size " +
                            shape_str(x));
    F32Array y = new_f32(shape_of(x)), mean(Shape{C}), invstd(Shape{C});
    {
      const ComputeScope compute;
      batchnorm2d_forward_train(x.data(), g, b, rmp, rvp, y.mutable_data(), mean.mutable_data(),
                                invstd.mutable_data(), N, C, HW, static_cast<float>(momentum),
                                static_cast<float>(eps), a, res_obj.is_none() ? nullptr : res.data());
    }
    return py::make_tuple(y, mean, invstd);
  }, py::arg("x"), py::arg("gamma"), py::arg("beta"), py::arg("running_mean"),
     py::arg("running_var"), py::arg("momentum") = 0.1, py::arg("eps") = 1e-5,
     py::arg("act") = "none", py::arg("residual") = py::none(),
     "Training batch norm, y = act(bn(x) (+ residual)): returns (y, save_mean, save_invstd); "
     "updates the running stats in place.");

  m.def("batchnorm2d_forward_eval", [](py::object x_obj, py::object gamma_obj, py::object beta_obj,
                                       py::object rm_obj, py::object rv_obj, double eps) {
    F32Array x = f32(x_obj, "x", 4), gamma, beta;
    const int64_t N = x.shape(0), C = x.shape(1), HW = x.shape(2) * x.shape(3);
    const float* g = opt_in(gamma_obj, "gamma", C, &gamma);
    const float* b = opt_in(beta_obj, "beta", C, &beta);
    F32Array rm = f32(rm_obj, "running_mean", 1), rv = f32(rv_obj, "running_var", 1);
    expect_shape(rm, "running_mean", {C});
    expect_shape(rv, "running_var", {C});
    expect_finite_range(eps, "eps", 0.0, std::numeric_limits<double>::max(), false);
    F32Array y = new_f32(shape_of(x));
    {
      const ComputeScope compute;
      batchnorm2d_forward_eval(x.data(), g, b, rm.data(), rv.data(), y.mutable_data(), N, C, HW,
                               static_cast<float>(eps));
    }
    return y;
  }, py::arg("x"), py::arg("gamma"), py::arg("beta"), py::arg("running_mean"),
     py::arg("running_var"), py::arg("eps") = 1e-5);

  m.def("batchnorm2d_backward", [](py::object dy_obj, py::object x_obj, py::object gamma_obj,
                                   py::object mean_obj, py::object invstd_obj, py::object dg_obj,
                                   py::object db_obj, py::object beta_obj, const std::string& act,
                                   py::object y_obj, bool need_dres) {
    F32Array dy = f32(dy_obj, "dy", 4), x = f32(x_obj, "x", 4), gamma, beta, dgamma, dbeta, y;
    same_shape(dy, "dy", x, "x");
    const int64_t N = x.shape(0), C = x.shape(1), HW = x.shape(2) * x.shape(3);
    const float* g = opt_in(gamma_obj, "gamma", C, &gamma);
    const float* b = opt_in(beta_obj, "beta", C, &beta);
    F32Array mean = f32(mean_obj, "save_mean", 1), invstd = f32(invstd_obj, "save_invstd", 1);
    expect_shape(mean, "save_mean", {C});
    expect_shape(invstd, "save_invstd", {C});
    float* dg = opt_out(dg_obj, "dgamma", C, &dgamma);
    float* db = opt_out(db_obj, "dbeta", C, &dbeta);
    const int a = bn_act(act, !y_obj.is_none());
    if (!y_obj.is_none()) {
      y = f32(y_obj, "y", 4);
      same_shape(y, "y", x, "x");
    }
    F32Array dx = new_f32(shape_of(x)), dres;
    if (need_dres) dres = new_f32(shape_of(x));
    {
      const ComputeScope compute;
      batchnorm2d_backward(dy.data(), x.data(), y_obj.is_none() ? nullptr : y.data(), g, b,
                           mean.data(), invstd.data(), dx.mutable_data(), dg, db,
                           need_dres ? dres.mutable_data() : nullptr, N, C, HW, a);
    }
    if (need_dres) return py::object(py::make_tuple(dx, dres));
    return py::object(dx);
  }, py::arg("dy"), py::arg("x"), py::arg("gamma"), py::arg("save_mean"), py::arg("save_invstd"),
     py::arg("dgamma"), py::arg("dbeta"), py::arg("beta") = py::none(), py::arg("act") = "none",
     py::arg("y") = py::none(), py::arg("need_dres") = false,
     "Backward of batchnorm2d_forward_train with the same act (and beta, which the activation's "
     "derivative needs). y: the forward's output, required when it had a residual. Returns dx, or "
     "(dx, dresidual) with need_dres.");

  m.def("batchnorm2d_backward_eval", [](py::object dy_obj, py::object x_obj, py::object gamma_obj,
                                        py::object rv_obj, double eps, py::object dg_obj,
                                        py::object db_obj, py::object rm_obj) {
    F32Array dy = f32(dy_obj, "dy", 4), x = f32(x_obj, "x", 4), gamma, dgamma, dbeta, rm;
    same_shape(dy, "dy", x, "x");
    const int64_t N = x.shape(0), C = x.shape(1), HW = x.shape(2) * x.shape(3);
    const float* g = opt_in(gamma_obj, "gamma", C, &gamma);
    F32Array rv = f32(rv_obj, "running_var", 1);
    expect_shape(rv, "running_var", {C});
    expect_finite_range(eps, "eps", 0.0, std::numeric_limits<double>::max(), false);
    float* dg = opt_out(dg_obj, "dgamma", C, &dgamma);
    float* db = opt_out(db_obj, "dbeta", C, &dbeta);
    const float* rmp = opt_in(rm_obj, "running_mean", C, &rm);
    if (dg && !rmp) throw py::value_error("running_mean: required to accumulate dgamma, got None");
    F32Array dx = new_f32(shape_of(x));
    {
      const ComputeScope compute;
      batchnorm2d_backward_eval(dy.data(), x.data(), g, rmp, rv.data(), dx.mutable_data(), dg, db,
                                N, C, HW, static_cast<float>(eps));
    }
    return dx;
  }, py::arg("dy"), py::arg("x"), py::arg("gamma"), py::arg("running_var"), py::arg("eps"),
     py::arg("dgamma"), py::arg("dbeta"), py::arg("running_mean") = py::none());
}

void register_activations(py::module_& m) {
  m.def("relu_forward", &unary<relu_forward>, py::arg("x"));
  m.def("relu_backward", [](py::object dy, py::object y) {
    return unary_backward<relu_backward>(dy, y, "y");
  }, py::arg("dy"), py::arg("y"), "Gradient from the forward *output* y: dy * (y > 0).");
  m.def("relu6_forward", &unary<relu6_forward>, py::arg("x"));
  m.def("relu6_backward", [](py::object dy, py::object x) {
    return unary_backward<relu6_backward>(dy, x, "x");
  }, py::arg("dy"), py::arg("x"));
  m.def("hardswish_forward", &unary<hardswish_forward>, py::arg("x"));
  m.def("hardswish_backward", [](py::object dy, py::object x) {
    return unary_backward<hardswish_backward>(dy, x, "x");
  }, py::arg("dy"), py::arg("x"));
  m.def("hardsigmoid_forward", &unary<hardsigmoid_forward>, py::arg("x"));
  m.def("hardsigmoid_backward", [](py::object dy, py::object x) {
    return unary_backward<hardsigmoid_backward>(dy, x, "x");
  }, py::arg("dy"), py::arg("x"));
  m.def("sigmoid_forward", &unary<sigmoid_forward>, py::arg("x"));
  m.def("sigmoid_backward", [](py::object dy, py::object y) {
    return unary_backward<sigmoid_backward>(dy, y, "y");
  }, py::arg("dy"), py::arg("y"), "Gradient from the forward *output* y: dy * (1 - y) * y.");
}

void register_pooling(py::module_& m) {
  m.def("maxpool2d_forward", [](py::object x_obj, py::object kernel, py::object stride,
                                py::object padding) {
    F32Array x = f32(x_obj, "x", 4);
    const Pool2d p = pool_geometry(shape_of(x), kernel, stride, padding);
    if (p.H * p.W > std::numeric_limits<int32_t>::max())
      throw py::value_error("x: an input plane of " + std::to_string(p.H * p.W) +
                            " values does not fit int32 argmax indices");
    const Shape ys{p.N, p.C, p.OH(), p.OW()};
    F32Array y = new_f32(ys);
    auto argmax = new_i32(ys);
    {
      const ComputeScope compute;
      maxpool2d_forward(x.data(), y.mutable_data(), argmax.mutable_data(), p);
    }
    return py::make_tuple(y, argmax);
  }, py::arg("x"), py::arg("kernel"), py::arg("stride") = py::none(), py::arg("padding") = 0,
     "Returns (y, argmax int32): argmax is the flat index ih*W + iw within the input plane.");

  m.def("maxpool2d_backward", [](py::object dy_obj, py::object argmax_obj, py::object x_shape) {
    F32Array dy = f32(dy_obj, "dy", 4);
    auto argmax = exact<int32_t>(argmax_obj, "argmax");
    same_shape(argmax, "argmax", dy, "dy");
    const Shape xs = shape4_arg(x_shape, "x_shape");
    expect_shape(dy, "dy", {xs[0], xs[1], -1, -1});
    const int64_t HW = xs[2] * xs[3], OHW = dy.shape(2) * dy.shape(3);
    F32Array dx = new_f32(xs);
    bool ok;
    {
      const ComputeScope compute;
      ok = maxpool2d_backward(dy.data(), argmax.data(), dx.mutable_data(), xs[0] * xs[1], OHW, HW);
    }
    if (!ok)
      throw py::value_error("argmax: expected indices in [0, H*W) = [0, " + std::to_string(HW) +
                            ") of x_shape, found one outside");
    return dx;
  }, py::arg("dy"), py::arg("argmax"), py::arg("x_shape"));

  m.def("avgpool2d_forward", [](py::object x_obj, py::object kernel, py::object stride,
                                py::object padding, bool count_include_pad) {
    F32Array x = f32(x_obj, "x", 4);
    const Pool2d p = pool_geometry(shape_of(x), kernel, stride, padding);
    F32Array y = new_f32(Shape{p.N, p.C, p.OH(), p.OW()});
    {
      const ComputeScope compute;
      avgpool2d_forward(x.data(), y.mutable_data(), p, count_include_pad);
    }
    return y;
  }, py::arg("x"), py::arg("kernel"), py::arg("stride") = py::none(), py::arg("padding") = 0,
     py::arg("count_include_pad") = true);

  m.def("avgpool2d_backward", [](py::object dy_obj, py::object x_shape, py::object kernel,
                                 py::object stride, py::object padding, bool count_include_pad) {
    F32Array dy = f32(dy_obj, "dy", 4);
    const Shape xs = shape4_arg(x_shape, "x_shape");
    const Pool2d p = pool_geometry(xs, kernel, stride, padding);
    expect_shape(dy, "dy", {p.N, p.C, p.OH(), p.OW()});
    F32Array dx = new_f32(xs);
    {
      const ComputeScope compute;
      avgpool2d_backward(dy.data(), dx.mutable_data(), p, count_include_pad);
    }
    return dx;
  }, py::arg("dy"), py::arg("x_shape"), py::arg("kernel"), py::arg("stride") = py::none(),
     py::arg("padding") = 0, py::arg("count_include_pad") = true);

  m.def("global_avgpool2d_forward", [](py::object x_obj) {
    F32Array x = f32(x_obj, "x", 4);
    const int64_t N = x.shape(0), C = x.shape(1), HW = x.shape(2) * x.shape(3);
    if (HW == 0) throw py::value_error("x: expected non-empty planes, got shape " + shape_str(x));
    F32Array y = new_f32(Shape{N, C, 1, 1});
    {
      const ComputeScope compute;
      global_avgpool2d_forward(x.data(), y.mutable_data(), N, C, HW);
    }
    return y;
  }, py::arg("x"), "Mean over H and W: (N, C, H, W) -> (N, C, 1, 1).");

  m.def("global_avgpool2d_backward", [](py::object dy_obj, py::object x_shape) {
    F32Array dy = f32(dy_obj, "dy");
    const Shape xs = shape4_arg(x_shape, "x_shape");
    if (!(dy.ndim() == 4 && dy.shape(2) == 1 && dy.shape(3) == 1) && dy.ndim() != 2)
      throw py::value_error("dy: expected shape (N, C, 1, 1) or (N, C), got " + shape_str(dy));
    if (dy.shape(0) != xs[0] || dy.shape(1) != xs[1])
      throw py::value_error("dy: expected N, C = " + std::to_string(xs[0]) + ", " +
                            std::to_string(xs[1]) + " from x_shape, got shape " + shape_str(dy));
    const int64_t HW = xs[2] * xs[3];
    if (HW == 0) throw py::value_error("x_shape: expected non-empty planes");
    F32Array dx = new_f32(xs);
    {
      const ComputeScope compute;
      global_avgpool2d_backward(dy.data(), dx.mutable_data(), xs[0], xs[1], HW);
    }
    return dx;
  }, py::arg("dy"), py::arg("x_shape"));
}

void register_elementwise(py::module_& m) {
  m.def("dropout_forward", [](py::object x_obj, double p, py::int_ seed_obj) {
    // any Python int; negative or huge seeds are taken modulo 2^64
    const uint64_t seed = PyLong_AsUnsignedLongLongMask(seed_obj.ptr());
    if (PyErr_Occurred()) throw py::error_already_set();
    F32Array x = f32(x_obj, "x");
    expect_finite_range(p, "p", 0.0, 1.0, true);
    F32Array y = new_f32(shape_of(x));
    auto mask = new_u8(shape_of(x));
    {
      const ComputeScope compute;
      dropout_forward(x.data(), y.mutable_data(), mask.mutable_data(), x.size(),
                      static_cast<float>(p), seed);
    }
    return py::make_tuple(y, mask);
  }, py::arg("x"), py::arg("p"), py::arg("seed"),
     "Returns (y, mask uint8); the mask depends only on (seed, element index).");

  m.def("dropout_backward", [](py::object dy_obj, py::object mask_obj, double p) {
    F32Array dy = f32(dy_obj, "dy");
    auto mask = exact<uint8_t>(mask_obj, "mask");
    same_shape(mask, "mask", dy, "dy");
    expect_finite_range(p, "p", 0.0, 1.0, true);
    F32Array dx = new_f32(shape_of(dy));
    {
      const ComputeScope compute;
      dropout_backward(dy.data(), mask.data(), dx.mutable_data(), dy.size(), static_cast<float>(p));
    }
    return dx;
  }, py::arg("dy"), py::arg("mask"), py::arg("p"));

  m.def("add_forward", [](py::object a_obj, py::object b_obj) {
    F32Array a = f32(a_obj, "a"), b = f32(b_obj, "b");
    same_shape(b, "b", a, "a");
    F32Array y = new_f32(shape_of(a));
    {
      const ComputeScope compute;
      add_forward(a.data(), b.data(), y.mutable_data(), a.size());
    }
    return y;
  }, py::arg("a"), py::arg("b"));

  // s is (N, C) or (N, C, 1, 1); ds comes back in the shape of s.
  auto scale_arg = [](const py::object& s_obj, const F32Array& x) {
    F32Array s = f32(s_obj, "s");
    const bool ok = (s.ndim() == 2 || (s.ndim() == 4 && s.shape(2) == 1 && s.shape(3) == 1)) &&
                    s.shape(0) == x.shape(0) && s.shape(1) == x.shape(1);
    if (!ok)
      throw py::value_error("s: expected shape (" + std::to_string(x.shape(0)) + ", " +
                            std::to_string(x.shape(1)) + ") or (" + std::to_string(x.shape(0)) +
                            ", " + std::to_string(x.shape(1)) + ", 1, 1), got " + shape_str(s));
    return s;
  };
  m.def("channel_scale_forward", [scale_arg](py::object x_obj, py::object s_obj) {
    F32Array x = f32(x_obj, "x", 4);
    F32Array s = scale_arg(s_obj, x);
    F32Array y = new_f32(shape_of(x));
    {
      const ComputeScope compute;
      channel_scale_forward(x.data(), s.data(), y.mutable_data(), x.shape(0), x.shape(1),
                            x.shape(2) * x.shape(3));
    }
    return y;
  }, py::arg("x"), py::arg("s"), "x * s[:, :, None, None] (squeeze-and-excitation).");

  m.def("channel_scale_backward", [scale_arg](py::object dy_obj, py::object x_obj, py::object s_obj) {
    F32Array dy = f32(dy_obj, "dy", 4), x = f32(x_obj, "x", 4);
    same_shape(dy, "dy", x, "x");
    F32Array s = scale_arg(s_obj, x);
    F32Array dx = new_f32(shape_of(x)), ds(shape_of(s));
    {
      const ComputeScope compute;
      channel_scale_backward(dy.data(), x.data(), s.data(), dx.mutable_data(), ds.mutable_data(),
                             x.shape(0), x.shape(1), x.shape(2) * x.shape(3));
    }
    return py::make_tuple(dx, ds);
  }, py::arg("dy"), py::arg("x"), py::arg("s"), "Returns (dx, ds).");
}

// Squeeze-and-excitation's FC weights: w1 (S, C), w2 (C, S) (1x1 conv weights reshaped), biases
// (S,) / (C,) or None.
struct SeWeights {
  F32Array w1, w2, b1, b2;
  int64_t S;
  const float* b1p = nullptr;
  const float* b2p = nullptr;
};
SeWeights se_weights(const py::object& w1_obj, const py::object& b1_obj, const py::object& w2_obj,
                     const py::object& b2_obj, int64_t C) {
  SeWeights w{f32(w1_obj, "w1", 2), f32(w2_obj, "w2", 2), {}, {}, 0};
  w.S = w.w1.shape(0);
  if (w.w1.shape(1) != C)
    throw py::value_error("w1: expected shape (squeeze, " + std::to_string(C) + ") for x with " +
                          std::to_string(C) + " channels, got " + shape_str(w.w1));
  if (w.S == 0) throw py::value_error("w1: expected at least one squeeze channel, got shape " + shape_str(w.w1));
  expect_shape(w.w2, "w2", {C, w.S});
  w.b1p = opt_in(b1_obj, "b1", w.S, &w.b1);
  w.b2p = opt_in(b2_obj, "b2", C, &w.b2);
  return w;
}

void register_squeeze_excite(py::module_& m) {
  m.def("squeeze_excite_forward", [](py::object x_obj, py::object w1_obj, py::object b1_obj,
                                     py::object w2_obj, py::object b2_obj) {
    F32Array x = f32(x_obj, "x", 4);
    const int64_t N = x.shape(0), C = x.shape(1), HW = x.shape(2) * x.shape(3);
    if (N * C * HW == 0) throw py::value_error("x: expected a non-empty input, got shape " + shape_str(x));
    const SeWeights w = se_weights(w1_obj, b1_obj, w2_obj, b2_obj, C);
    F32Array y = new_f32(shape_of(x)), pooled(Shape{N, C}), a1(Shape{N, w.S}), a2(Shape{N, C}), s(Shape{N, C});
    {
      const ComputeScope compute;
      squeeze_excite_forward(x.data(), w.w1.data(), w.b1p, w.w2.data(), w.b2p, y.mutable_data(),
                             pooled.mutable_data(), a1.mutable_data(), a2.mutable_data(), s.mutable_data(),
                             N, C, w.S, HW);
    }
    return py::make_tuple(y, py::make_tuple(pooled, a1, a2, s));
  }, py::arg("x"), py::arg("w1"), py::arg("b1"), py::arg("w2"), py::arg("b2"),
     "y = x * hardsigmoid(w2 relu(w1 mean_hw(x) + b1) + b2): returns (y, saved) for "
     "squeeze_excite_backward.");

  m.def("squeeze_excite_backward", [](py::object dy_obj, py::object x_obj, py::object w1_obj,
                                      py::object w2_obj, py::tuple saved, py::object dw1_obj,
                                      py::object db1_obj, py::object dw2_obj, py::object db2_obj) {
    F32Array dy = f32(dy_obj, "dy", 4), x = f32(x_obj, "x", 4);
    same_shape(dy, "dy", x, "x");
    const int64_t N = x.shape(0), C = x.shape(1), HW = x.shape(2) * x.shape(3);
    const SeWeights w = se_weights(w1_obj, py::none(), w2_obj, py::none(), C);
    if (saved.size() != 4) throw py::value_error("saved: expected the 4 arrays squeeze_excite_forward returned");
    F32Array pooled = f32(saved[0], "saved[0]", 2), a1 = f32(saved[1], "saved[1]", 2);
    F32Array a2 = f32(saved[2], "saved[2]", 2), s = f32(saved[3], "saved[3]", 2);
    expect_shape(pooled, "saved[0]", {N, C});
    expect_shape(a1, "saved[1]", {N, w.S});
    expect_shape(a2, "saved[2]", {N, C});
    expect_shape(s, "saved[3]", {N, C});
    F32Array dw1 = f32_out(dw1_obj, "dw1", 2), dw2 = f32_out(dw2_obj, "dw2", 2), db1, db2;
    expect_shape(dw1, "dw1", {w.S, C});
    expect_shape(dw2, "dw2", {C, w.S});
    float* db1p = opt_out(db1_obj, "db1", w.S, &db1);
    float* db2p = opt_out(db2_obj, "db2", C, &db2);
    F32Array dx = new_f32(shape_of(x));
    {
      const ComputeScope compute;
      squeeze_excite_backward(dy.data(), x.data(), w.w1.data(), w.w2.data(), pooled.data(), a1.data(),
                              a2.data(), s.data(), dx.mutable_data(), dw1.mutable_data(), db1p,
                              dw2.mutable_data(), db2p, N, C, w.S, HW);
    }
    return dx;
  }, py::arg("dy"), py::arg("x"), py::arg("w1"), py::arg("w2"), py::arg("saved"), py::arg("dw1"),
     py::arg("db1"), py::arg("dw2"), py::arg("db2"),
     "Backward of squeeze_excite_forward: accumulates dw1, db1, dw2, db2 (db may be None); returns dx.");
}

void register_loss(py::module_& m) {
  m.def("cross_entropy", [](py::object logits_obj, py::object labels_obj, double label_smoothing) {
    F32Array z = f32(logits_obj, "logits", 2);
    auto y = labels(labels_obj, "labels");
    const int64_t N = z.shape(0), C = z.shape(1);
    if (N == 0) throw py::value_error("logits: expected a non-empty batch, got shape " + shape_str(z));
    if (C == 0) throw py::value_error("logits: expected at least one class, got shape " + shape_str(z));
    expect_shape(y, "labels", {N});
    expect_finite_range(label_smoothing, "label_smoothing", 0.0, 1.0, false);
    const int64_t* yp = y.data();
    for (int64_t i = 0; i < N; ++i)
      if (yp[i] < 0 || yp[i] >= C)
        throw py::value_error("labels: expected class indices in [0, " + std::to_string(C) +
                              "), got " + std::to_string(yp[i]) + " at index " + std::to_string(i));
    F32Array dz = new_f32(Shape{N, C});
    CrossEntropyResult r;
    {
      const ComputeScope compute;
      r = cross_entropy(z.data(), yp, dz.mutable_data(), N, C, static_cast<float>(label_smoothing));
    }
    if (r.bad_row >= 0)
      throw py::value_error("logits: expected finite values, got NaN or Inf in row " +
                            std::to_string(r.bad_row));
    return py::make_tuple(r.loss, dz);
  }, py::arg("logits"), py::arg("labels"), py::arg("label_smoothing") = 0.0,
     "Mean softmax cross-entropy with label smoothing: returns (loss, dlogits).");
}

}  // namespace

void register_layers(py::module_& m) {
  register_batchnorm(m);
  register_activations(m);
  register_pooling(m);
  register_elementwise(m);
  register_squeeze_excite(m);
  register_loss(m);
}

}  // namespace eo::bind
