// edgeopt._core: the compiled core. One register_<area>.cpp per area; bindings stay thin
// (validate, release the GIL, call the kernel).
#include <pybind11/pybind11.h>

#include <string>

namespace py = pybind11;

namespace eo::bind {
void register_runtime(py::module_& m);
void register_gemm(py::module_& m);
void register_conv(py::module_& m);
void register_linear(py::module_& m);
void register_layers(py::module_& m);
void register_data(py::module_& m);
void register_optim(py::module_& m);
void register_qgemm(py::module_& m);
void register_qs8_ops(py::module_& m);
void register_runtime_engine(py::module_& m);
void register_sparse(py::module_& m);
void register_quant(py::module_& m);
}  // namespace eo::bind

PYBIND11_MODULE(_core, m) {
  m.doc() = "edgeopt compiled core (kernels, runtime). Use the public API in edgeopt.*";
  // The signatures pybind11 writes into __doc__ (which _core.pyi is generated from) vary with its
  // version: tests/test_core_stubs.py compares the full stub only when built with the same one.
  m.attr("_pybind11_version") = std::to_string(PYBIND11_VERSION_MAJOR) + "." +
                                std::to_string(PYBIND11_VERSION_MINOR) + "." +
                                std::to_string(PYBIND11_VERSION_PATCH);
  eo::bind::register_runtime(m);
  eo::bind::register_gemm(m);
  eo::bind::register_conv(m);
  eo::bind::register_linear(m);
  eo::bind::register_layers(m);
  eo::bind::register_data(m);
  eo::bind::register_optim(m);
  eo::bind::register_qgemm(m);
  eo::bind::register_qs8_ops(m);
  eo::bind::register_runtime_engine(m);
  eo::bind::register_sparse(m);
  eo::bind::register_quant(m);
}
