// edgeopt._core: the compiled core. One register_<area>.cpp per area; bindings stay thin
// (validate, release the GIL, call the kernel).
#include <pybind11/pybind11.h>

#include <string>

namespace py = pybind11;

namespace eo::bind {
void register_runtime(py::module_& m);
void register_gemm(py::module_& m);
void register_conv(py::module_& m, py::module_& testing);
void register_linear(py::module_& m);
void register_layers(py::module_& m);
void register_data(py::module_& m, py::module_& testing);
void register_optim(py::module_& m);
void register_qgemm(py::module_& m);
void register_qs8_ops(py::module_& m);
void register_runtime_engine(py::module_& m, py::module_& testing);
void register_sparse(py::module_& m, py::module_& testing);
void register_quant(py::module_& m);
}  // namespace eo::bind

PYBIND11_MODULE(_core, m) {
  m.doc() = "edgeopt compiled core (kernels, runtime). Use the public API in edgeopt.*";
  // The signatures pybind11 writes into __doc__ (which _core.pyi is generated from) vary with its
  // version: tests/test_core_stubs.py compares the full stub only when built with the same one.
  m.attr("_pybind11_version") = std::to_string(PYBIND11_VERSION_MAJOR) + "." +
                                std::to_string(PYBIND11_VERSION_MINOR) + "." +
                                std::to_string(PYBIND11_VERSION_PATCH);
  // One submodule per register_<area>.cpp; entry points only tests and benchmarks call (reference
  // kernels, kernels no compile path reaches yet) in _core.testing.
  auto sub = [&m](const char* name, const char* doc) { return m.def_submodule(name, doc); };
  py::module_ testing = m.def_submodule("testing", "Test-only entry points: reference kernels and kernels "
                                                   "no public path reaches yet. Not a public API.");
  py::module_ runtime = sub("runtime", "Threads and the ISA path.");
  eo::bind::register_runtime(runtime);
  py::module_ conv = sub("conv", "fp32 conv2d forward / backward.");
  eo::bind::register_conv(conv, testing);
  py::module_ linear = sub("linear", "fp32 linear forward / backward.");
  eo::bind::register_linear(linear);
  py::module_ layers = sub("layers", "BatchNorm, activations, pooling, elementwise, losses.");
  eo::bind::register_layers(layers);
  py::module_ data = sub("data", "Batch assembly, dataset statistics and validation.");
  eo::bind::register_data(data, testing);
  py::module_ optim = sub("optim", "Optimizer steps.");
  eo::bind::register_optim(optim);
  py::module_ runtime_engine = sub("runtime_engine", "The deploy runtime's Engine.");
  eo::bind::register_runtime_engine(runtime_engine, testing);
  py::module_ sparse = sub("sparse", "Sparse weight packing for the deploy lowering.");
  eo::bind::register_sparse(sparse, testing);
  py::module_ quant = sub("quant", "Quantization element loops.");
  eo::bind::register_quant(quant);
  eo::bind::register_gemm(testing);
  eo::bind::register_qgemm(testing);
  eo::bind::register_qs8_ops(testing);
}
