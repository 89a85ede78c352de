// Optimizer steps (cpp/src/optim): PyTorch's SGD and Adam/AdamW update rules on one parameter
// tensor. They return False without touching anything when the gradient holds NaN/Inf; the Python
// optimizer turns that into an error naming the parameter.
#include <cmath>
#include <limits>
#include <string>

#include "check.h"
#include "compute_scope.h"
#include "optim/optim.h"

namespace eo::bind {
namespace {

void expect_range(double v, const char* name, double lo, double hi, bool hi_open) {
  if (!(v >= lo && (hi_open ? v < hi : v <= hi)))
    throw py::value_error(std::string(name) + ": expected a value in [" + std::to_string(lo) + ", " +
                          (hi == std::numeric_limits<double>::max() ? std::string("inf")
                                                                    : std::to_string(hi)) +
                          (hi_open ? ")" : "]") + ", got " + std::to_string(v));
}
constexpr double kInf = std::numeric_limits<double>::max();

void same_shape(const py::array& a, const char* name, const py::array& ref) {
  bool ok = a.ndim() == ref.ndim();
  for (py::ssize_t i = 0; ok && i < a.ndim(); ++i) ok = a.shape(i) == ref.shape(i);
  if (!ok)
    throw py::value_error(std::string(name) + ": expected the shape of param " + shape_str(ref) +
                          ", got " + shape_str(a));
}

}  // namespace

void register_optim(py::module_& m) {
  m.def("sgd_step", [](py::object param_obj, py::object grad_obj, py::object buf_obj, double lr,
                       double momentum, double dampening, bool nesterov, double weight_decay,
                       bool first_step) {
    F32Array param = f32_out(param_obj, "param"), grad = f32(grad_obj, "grad"), buf;
    same_shape(grad, "grad", param);
    expect_range(lr, "lr", 0.0, kInf, false);
    expect_range(momentum, "momentum", 0.0, kInf, false);
    expect_range(dampening, "dampening", 0.0, kInf, false);
    expect_range(weight_decay, "weight_decay", 0.0, kInf, false);
    if (nesterov && (momentum <= 0.0 || dampening != 0.0))
      throw py::value_error("nesterov: requires momentum > 0 and dampening == 0, got momentum=" +
                            std::to_string(momentum) + ", dampening=" + std::to_string(dampening));
    float* b = nullptr;
    if (momentum != 0.0) {
      if (buf_obj.is_none()) throw py::value_error("momentum_buf: required when momentum != 0, got None");
      buf = f32_out(buf_obj, "momentum_buf");
      same_shape(buf, "momentum_buf", param);
      b = buf.mutable_data();
    }
    SgdOptions o{lr, momentum, dampening, weight_decay, nesterov, first_step};
    const ComputeScope compute;
    return sgd_step(param.mutable_data(), grad.data(), b, param.size(), o);
  }, py::arg("param"), py::arg("grad"), py::arg("momentum_buf"), py::arg("lr"),
     py::arg("momentum") = 0.0, py::arg("dampening") = 0.0, py::arg("nesterov") = false,
     py::arg("weight_decay") = 0.0, py::arg("first_step") = false,
     "torch.optim.SGD's update in place; False (nothing written) if grad holds NaN/Inf.");

  m.def("adam_step", [](py::object param_obj, py::object grad_obj, py::object m_obj,
                        py::object v_obj, int64_t step, double lr, double beta1, double beta2,
                        double eps, double weight_decay, bool decoupled) {
    F32Array param = f32_out(param_obj, "param"), grad = f32(grad_obj, "grad");
    F32Array m1 = f32_out(m_obj, "exp_avg"), m2 = f32_out(v_obj, "exp_avg_sq");
    same_shape(grad, "grad", param);
    same_shape(m1, "exp_avg", param);
    same_shape(m2, "exp_avg_sq", param);
    if (step < 1) throw py::value_error("step: expected the 1-based step count >= 1, got " + std::to_string(step));
    expect_range(lr, "lr", 0.0, kInf, false);
    expect_range(beta1, "beta1", 0.0, 1.0, true);
    expect_range(beta2, "beta2", 0.0, 1.0, true);
    expect_range(eps, "eps", 0.0, kInf, false);
    expect_range(weight_decay, "weight_decay", 0.0, kInf, false);
    AdamOptions o{lr, beta1, beta2, eps, weight_decay, step, decoupled};
    const ComputeScope compute;
    return adam_step(param.mutable_data(), grad.data(), m1.mutable_data(), m2.mutable_data(),
                     param.size(), o);
  }, py::arg("param"), py::arg("grad"), py::arg("exp_avg"), py::arg("exp_avg_sq"), py::arg("step"),
     py::arg("lr") = 1e-3, py::arg("beta1") = 0.9, py::arg("beta2") = 0.999, py::arg("eps") = 1e-8,
     py::arg("weight_decay") = 0.0, py::arg("decoupled") = false,
     "torch.optim.Adam's update (AdamW if decoupled) in place; step is 1 on the first call. "
     "False (nothing written) if grad holds NaN/Inf.");
}

}  // namespace eo::bind
