#include <pybind11/stl.h>

#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "check.h"
#include "compute_scope.h"
#include "isa/isa.h"
#include "qs8-conv2d/conv2d.h"
#include "qs8-elementwise/elementwise.h"
#include "qs8-pool/pool.h"
#include "reference/qs8_reference.h"

// int8-full operators (cpp/src/qs8-conv2d, qs8-elementwise, qs8-pool) for tests and benchmarks;
// the deploy runtime calls the same kernels through its ops. Activations are u8 NHWC.
//   qs8_conv2d(x, w, bias, scale, in_zero_point, out_zero_point, qmin, qmax, stride,
//              padding, groups, residual=None, add=None, lut=None, path=None, isa=None,
//              reference=False) -> y
//   qs8_quantize(x, scale, zero_point) -> u8 NHWC;  qs8_dequantize(q, scale, zero_point)
//   qs8_add(a, b, add, isa=None, reference=False);  qs8_lut(x, table)
//   qs8_channel_scale(x, s, s_zero_point, params, isa=None, reference=False)
//   qs8_maxpool2d(x, kernel, stride, padding); qs8_avgpool2d(x, kernel, stride, padding,
//              count_include_pad, in_zero_point, scale, out_zero_point, qmin, qmax)
//   qs8_global_avgpool2d(x, in_zero_point, scale, out_zero_point, qmin, qmax)
// `add` / `params` are dicts (keys below; scales and offset floats, the rest ints); `path` a qgemm path name, `isa` 'scalar' or
// 'avx512' for the depthwise/elementwise kernels.
namespace eo::bind {
namespace {

std::pair<int64_t, int64_t> pair2(const py::handle& obj, const char* name, int64_t lo) {
  std::pair<int64_t, int64_t> p;
  try {
    p = obj.cast<std::pair<int64_t, int64_t>>();
  } catch (const py::cast_error&) {
    throw py::type_error(std::string(name) + ": expected a pair of ints (h, w), got " +
                         std::string(py::repr(obj)));
  }
  expect_range(p.first, lo, 1 << 20, name);
  expect_range(p.second, lo, 1 << 20, name);
  return p;
}

int64_t get_key(const py::dict& d, const char* dname, const char* key, int64_t lo, int64_t hi) {
  if (!d.contains(key))
    throw py::value_error(std::string(dname) + ": missing key '" + key + "'");
  return expect_range(d[key].cast<int64_t>(), lo, hi, std::string(dname) + "['" + key + "']");
}

float get_float_key(const py::dict& d, const char* dname, const char* key) {
  if (!d.contains(key))
    throw py::value_error(std::string(dname) + ": missing key '" + key + "'");
  const float v = d[key].cast<float>();
  if (!std::isfinite(v))
    throw py::value_error(std::string(dname) + "['" + key + "']: expected a finite float");
  return v;
}

py::dict as_dict(const py::handle& obj, const char* name) {
  if (!py::isinstance<py::dict>(obj))
    throw py::type_error(std::string(name) + ": expected a dict of parameters, got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))));
  return py::reinterpret_borrow<py::dict>(obj);
}

qs8_add_params add_params(const py::handle& obj, const char* name) {
  const py::dict d = as_dict(obj, name);
  qs8_add_params p;
  p.a_scale = get_float_key(d, name, "a_scale");
  p.b_scale = get_float_key(d, name, "b_scale");
  p.offset = get_float_key(d, name, "offset");
  p.qmin = int32_t(get_key(d, name, "qmin", 0, 255));
  p.qmax = int32_t(get_key(d, name, "qmax", p.qmin, 255));
  if (!qs8_add_params_valid(&p)) throw py::value_error(std::string(name) + ": " QS8_ADD_PARAMS_RULE);
  return p;
}

qs8_channel_scale_params cs_params(const py::handle& obj, const char* name) {
  const py::dict d = as_dict(obj, name);
  qs8_channel_scale_params p;
  p.x_zp = int32_t(get_key(d, name, "x_zp", 0, 255));
  p.scale = get_float_key(d, name, "scale");
  if (!(p.scale > 0.0f)) throw py::value_error(std::string(name) + "['scale']: expected a float > 0");
  p.y_zp = int32_t(get_key(d, name, "y_zp", 0, 255));
  p.qmin = int32_t(get_key(d, name, "qmin", 0, 255));
  p.qmax = int32_t(get_key(d, name, "qmax", p.qmin, 255));
  return p;
}

const Qs8OpUkernels& op_kernels(const py::handle& isa) {
  if (isa.is_none()) return qs8_op_ukernels();
  const std::string name = py::str(isa);
  if (name == "scalar") return qs8_op_ukernels(Isa::scalar);
  if (name == "avx512") {
    if (cpu_isa() < Isa::avx512) throw py::value_error("isa: this CPU has no AVX-512");
    return qs8_op_ukernels(Isa::avx512);
  }
  throw py::value_error("isa: expected None, 'scalar' or 'avx512', got '" + name + "'");
}

int op_isa(const py::handle& isa) {
  if (isa.is_none()) return -1;
  return &op_kernels(isa) == &qs8_op_ukernels(Isa::scalar) ? int(Isa::scalar) : int(Isa::avx512);
}

int gemm_path(const py::handle& obj) {
  if (obj.is_none()) return -1;
  const std::string name = py::str(obj);
  for (int i = 0; i < kQs8PathCount; ++i)
    if (qs8_gemm_path_supported(Qs8Path(i)) && name == qs8_gemm_ukernel(Qs8Path(i)).name) return i;
  throw py::value_error("path: not a qgemm path this CPU supports: '" + name + "'");
}

py::array_t<uint8_t> u8_out(std::initializer_list<int64_t> shape) {
  return py::array_t<uint8_t>(std::vector<py::ssize_t>(shape.begin(), shape.end()));
}

}  // namespace

void register_qs8_ops(py::module_& m) {
  m.def("qs8_conv2d", [](py::object x_o, py::object w_o, py::object bias_o, py::object scale_o,
                         int64_t in_zp, int64_t out_zp, int64_t qmin,
                         int64_t qmax, py::object stride, py::object padding, int64_t groups,
                         py::object res_o, py::object add_o, py::object lut_o, py::object path_o,
                         py::object isa_o, bool reference) {
    auto x = typed<uint8_t>(x_o, "x", 4, "uint8");
    auto w = typed<int8_t>(w_o, "w", 4, "int8");
    Qs8ConvShape s;
    s.cin = x.shape(3);
    s.cout = w.shape(0);
    s.kh = w.shape(1);
    s.kw = w.shape(2);
    std::tie(s.sh, s.sw) = pair2(stride, "stride", 1);
    std::tie(s.ph, s.pw) = pair2(padding, "padding", 0);
    s.groups = expect_range(groups, 1, 1 << 20, "groups");
    if (s.cin % s.groups || s.cout % s.groups || w.shape(3) != s.cin / s.groups)
      throw py::value_error("w: expected shape (cout, kh, kw, cin/groups) with cin = " +
                            std::to_string(s.cin) + " and groups = " + std::to_string(groups) +
                            " dividing cin and cout, got " + shape_str(w));
    const int64_t N = x.shape(0), H = x.shape(1), W = x.shape(2);
    if (H + 2 * s.ph < s.kh || W + 2 * s.pw < s.kw || s.ph >= s.kh || s.pw >= s.kw)
      throw py::value_error("padding/kernel: the padded input must hold the kernel and padding "
                            "must be smaller than the kernel");
    const int64_t OH = s.out_h(H), OW = s.out_w(W);
    std::vector<int32_t> bias;
    if (!bias_o.is_none()) bias = per_channel(bias_o, s.cout, INT32_MIN, INT32_MAX, "bias");
    const auto scale = per_channel_scale(scale_o, s.cout, "scale");
    expect_range(in_zp, 0, 255, "in_zero_point");
    expect_range(out_zp, 0, 255, "out_zero_point");
    expect_range(qmin, 0, 255, "qmin");
    expect_range(qmax, qmin, 255, "qmax");
    Qs8ConvEpilogue epi;
    py::array_t<uint8_t, py::array::c_style> res;
    if (!res_o.is_none()) {
      res = typed<uint8_t>(res_o, "residual", 4, "uint8");
      expect_shape(res, "residual", {N, OH, OW, s.cout});
      if (add_o.is_none()) throw py::value_error("add: required with a residual");
      epi.residual = true;
      epi.add = add_params(add_o, "add");
    }
    if (!lut_o.is_none()) {
      auto t = typed<uint8_t>(lut_o, "lut", 1, "uint8");
      expect_shape(t, "lut", {256});
      epi.has_lut = true;
      std::copy(t.data(), t.data() + 256, epi.lut.begin());
    }
    Qs8Conv2d op;
    try {
      op = qs8_conv2d_create(s, w.data(), bias.empty() ? nullptr : bias.data(), scale.data(),
                             int32_t(in_zp), int32_t(out_zp), int32_t(qmin),
                             int32_t(qmax), epi);
    } catch (const std::invalid_argument& e) {
      throw py::value_error(e.what());
    }
    op.path_override = gemm_path(path_o);
    op.op_isa_override = op_isa(isa_o);
    auto y = u8_out({N, OH, OW, s.cout});
    uint8_t* yp = y.mutable_data();
    {
      const ComputeScope compute;
      if (reference) {
        reference::qs8_conv2d(s, N, H, W, x.data(), int32_t(in_zp), w.data(),
                              bias.empty() ? nullptr : bias.data(), scale.data(),
                              int32_t(out_zp), int32_t(qmin), int32_t(qmax), epi,
                              epi.residual ? res.data() : nullptr, yp);
      } else {
        std::vector<uint8_t> ws(qs8_conv2d_workspace_bytes(op, N, H, W));
        qs8_conv2d_run(op, N, H, W, x.data(), epi.residual ? res.data() : nullptr, yp, ws.data());
      }
    }
    return y;
  }, py::arg("x"), py::arg("w"), py::arg("bias"), py::arg("scale"), py::arg("in_zero_point"), py::arg("out_zero_point"), py::arg("qmin") = 0, py::arg("qmax") = 255,
     py::arg("stride") = std::make_pair(1, 1), py::arg("padding") = std::make_pair(0, 0),
     py::arg("groups") = 1, py::arg("residual") = py::none(), py::arg("add") = py::none(),
     py::arg("lut") = py::none(), py::arg("path") = py::none(), py::arg("isa") = py::none(),
     py::arg("reference") = false,
     "int8 conv: x u8 (N, H, W, cin), w s8 (cout, kh, kw, cin/groups); see qs8-conv2d/conv2d.h.");

  m.def("qs8_quantize", [](py::object x_o, float scale, int64_t zp) {
    auto x = f32(x_o, "x", 4);
    if (!(scale > 0.f) || !std::isfinite(scale))
      throw py::value_error("scale: expected a finite positive float, got " + std::to_string(scale));
    expect_range(zp, 0, 255, "zero_point");
    const int64_t N = x.shape(0), C = x.shape(1), H = x.shape(2), W = x.shape(3);
    auto y = u8_out({N, H, W, C});
    uint8_t* yp = y.mutable_data();
    const ComputeScope compute;
    qs8_quantize(N, C, H * W, x.data(), scale, int32_t(zp), yp);
    return y;
  }, py::arg("x"), py::arg("scale"), py::arg("zero_point"),
     "f32 NCHW -> u8 NHWC: clamp(rint(x / scale) + zero_point, 0, 255).");

  m.def("qs8_dequantize", [](py::object q_o, float scale, int64_t zp) {
    auto q = typed<uint8_t>(q_o, "q", 4, "uint8");
    expect_range(zp, 0, 255, "zero_point");
    const int64_t N = q.shape(0), H = q.shape(1), W = q.shape(2), C = q.shape(3);
    py::array_t<float> y({N, C, H, W});
    float* yp = y.mutable_data();
    const ComputeScope compute;
    qs8_dequantize(N, C, H * W, q.data(), scale, int32_t(zp), yp);
    return y;
  }, py::arg("q"), py::arg("scale"), py::arg("zero_point"),
     "u8 NHWC -> f32 NCHW: (q - zero_point) * scale.");

  m.def("qs8_add", [](py::object a_o, py::object b_o, py::object add_o, py::object isa_o, bool reference) {
    auto a = typed<uint8_t>(a_o, "a", -1, "uint8");
    auto b = typed<uint8_t>(b_o, "b", -1, "uint8");
    if (a.size() != b.size() || a.ndim() != b.ndim())
      throw py::value_error("b: expected the shape of a " + shape_str(a) + ", got " + shape_str(b));
    const qs8_add_params p = add_params(add_o, "add");
    const Qs8OpUkernels& uk = op_kernels(isa_o);
    py::array_t<uint8_t> y(std::vector<py::ssize_t>(a.shape(), a.shape() + a.ndim()));
    uint8_t* yp = y.mutable_data();
    const int64_t n = a.size();
    const ComputeScope compute;
    if (reference)
      for (int64_t i = 0; i < n; ++i) yp[i] = reference::qs8_add(a.data()[i], b.data()[i], p);
    else
      qs8_add(uk, n, a.data(), b.data(), p, yp);
    return y;
  }, py::arg("a"), py::arg("b"), py::arg("add"), py::arg("isa") = py::none(),
     py::arg("reference") = false, "int8 add of two u8 tensors (any scales): y = clamp(rint(fma(a, a_scale, fma(b, b_scale, offset)))).");

  m.def("qs8_lut", [](py::object x_o, py::object t_o) {
    auto x = typed<uint8_t>(x_o, "x", -1, "uint8");
    auto t = typed<uint8_t>(t_o, "table", 1, "uint8");
    expect_shape(t, "table", {256});
    py::array_t<uint8_t> y(std::vector<py::ssize_t>(x.shape(), x.shape() + x.ndim()));
    uint8_t* yp = y.mutable_data();
    const ComputeScope compute;
    qs8_lut(x.size(), x.data(), t.data(), yp);
    return y;
  }, py::arg("x"), py::arg("table"), "y = table[x] (256-entry u8 table).");

  m.def("qs8_channel_scale", [](py::object x_o, py::object s_o, int64_t s_zp, py::object p_o,
                                py::object isa_o, bool reference) {
    auto x = typed<uint8_t>(x_o, "x", 4, "uint8");
    auto s = typed<uint8_t>(s_o, "s", 2, "uint8");
    const int64_t N = x.shape(0), HW = x.shape(1) * x.shape(2), C = x.shape(3);
    expect_shape(s, "s", {N, C});
    expect_range(s_zp, 0, 255, "s_zero_point");
    const qs8_channel_scale_params p = cs_params(p_o, "params");
    const Qs8OpUkernels& uk = op_kernels(isa_o);
    py::array_t<uint8_t> y(std::vector<py::ssize_t>(x.shape(), x.shape() + 4));
    uint8_t* yp = y.mutable_data();
    const ComputeScope compute;
    if (reference)
      reference::qs8_channel_scale(N, HW, C, x.data(), s.data(), int32_t(s_zp), p, yp);
    else
      qs8_channel_scale(uk, N, HW, C, x.data(), s.data(), int32_t(s_zp), p, yp);
    return y;
  }, py::arg("x"), py::arg("s"), py::arg("s_zero_point"), py::arg("params"),
     py::arg("isa") = py::none(), py::arg("reference") = false,
     "Squeeze-excitation scale: x u8 (N, H, W, C) times s u8 (N, C), requantized.");

  auto pool_shape = [](const py::object& kernel, const py::object& stride, const py::object& padding,
                       int64_t H, int64_t W) {
    Qs8PoolShape s;
    std::tie(s.kh, s.kw) = pair2(kernel, "kernel", 1);
    std::tie(s.sh, s.sw) = pair2(stride, "stride", 1);
    std::tie(s.ph, s.pw) = pair2(padding, "padding", 0);
    if (2 * s.ph > s.kh || 2 * s.pw > s.kw)
      throw py::value_error("padding: expected at most half the kernel size");
    if (H + 2 * s.ph < s.kh || W + 2 * s.pw < s.kw)
      throw py::value_error("kernel: larger than the padded input");
    return s;
  };

  m.def("qs8_maxpool2d", [pool_shape](py::object x_o, py::object kernel, py::object stride,
                                      py::object padding, bool reference) {
    auto x = typed<uint8_t>(x_o, "x", 4, "uint8");
    const int64_t N = x.shape(0), H = x.shape(1), W = x.shape(2), C = x.shape(3);
    const Qs8PoolShape s = pool_shape(kernel, stride, padding, H, W);
    auto y = u8_out({N, s.out_h(H), s.out_w(W), C});
    uint8_t* yp = y.mutable_data();
    const ComputeScope compute;
    (reference ? reference::qs8_maxpool2d : qs8_maxpool2d)(s, N, H, W, C, x.data(), yp);
    return y;
  }, py::arg("x"), py::arg("kernel"), py::arg("stride"), py::arg("padding"),
     py::arg("reference") = false, "Max pool on u8 NHWC (same scale and zero point).");

  m.def("qs8_avgpool2d", [pool_shape](py::object x_o, py::object kernel, py::object stride,
                                      py::object padding, bool cip, int64_t in_zp, py::object scale_o,
                                      int64_t out_zp, int64_t qmin,
                                      int64_t qmax, bool reference) {
    auto x = typed<uint8_t>(x_o, "x", 4, "uint8");
    const int64_t N = x.shape(0), H = x.shape(1), W = x.shape(2), C = x.shape(3);
    const Qs8PoolShape s = pool_shape(kernel, stride, padding, H, W);
    const auto scale = per_channel_scale(scale_o, s.kh * s.kw, "scale");
    expect_range(in_zp, 0, 255, "in_zero_point");
    expect_range(out_zp, 0, 255, "out_zero_point");
    expect_range(qmin, 0, 255, "qmin");
    expect_range(qmax, qmin, 255, "qmax");
    auto y = u8_out({N, s.out_h(H), s.out_w(W), C});
    uint8_t* yp = y.mutable_data();
    const ComputeScope compute;
    (reference ? reference::qs8_avgpool2d : qs8_avgpool2d)(
        s, cip, N, H, W, C, x.data(), int32_t(in_zp), scale.data(), int32_t(out_zp),
        int32_t(qmin), int32_t(qmax), yp);
    return y;
  }, py::arg("x"), py::arg("kernel"), py::arg("stride"), py::arg("padding"),
     py::arg("count_include_pad"), py::arg("in_zero_point"), py::arg("scale"),
     py::arg("out_zero_point"), py::arg("qmin") = 0, py::arg("qmax") = 255,
     py::arg("reference") = false,
     "Average pool on u8 NHWC; scale has kh*kw float32 entries, indexed by divisor - 1.");

  m.def("qs8_global_avgpool2d", [](py::object x_o, int64_t in_zp, py::object scale_o,
                                   int64_t out_zp, int64_t qmin, int64_t qmax) {
    auto x = typed<uint8_t>(x_o, "x", 4, "uint8");
    const int64_t N = x.shape(0), HW = x.shape(1) * x.shape(2), C = x.shape(3);
    expect_range(in_zp, 0, 255, "in_zero_point");
    const float scale = per_channel_scale(scale_o, 1, "scale")[0];
    expect_range(out_zp, 0, 255, "out_zero_point");
    expect_range(qmin, 0, 255, "qmin");
    expect_range(qmax, qmin, 255, "qmax");
    auto y = u8_out({N, 1, 1, C});
    uint8_t* yp = y.mutable_data();
    const ComputeScope compute;
    qs8_global_avgpool2d(N, HW, C, x.data(), int32_t(in_zp), scale, int32_t(out_zp), int32_t(qmin), int32_t(qmax), yp);
    return y;
  }, py::arg("x"), py::arg("in_zero_point"), py::arg("scale"), py::arg("out_zero_point"), py::arg("qmin") = 0, py::arg("qmax") = 255,
     "Global average pool on u8 NHWC -> (N, 1, 1, C).");
}

}  // namespace eo::bind
