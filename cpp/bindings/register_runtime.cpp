#include <pybind11/pybind11.h>

#include "common/parallel.h"
#include "isa/isa.h"

namespace py = pybind11;

namespace eo::bind {

void register_runtime(py::module_& m) {
  m.def("set_num_threads", [](int n) {
    if (n < 1) throw py::value_error("num_threads: expected an integer >= 1, got " + std::to_string(n));
    eo::set_num_threads(n);
  }, py::arg("n"));
  m.def("get_num_threads", &eo::get_num_threads);
  m.def("cpu_isa", [] { return std::string(isa_name(cpu_isa())); },
        "Best ISA path this CPU supports: 'scalar', 'avx2' or 'avx512'.");
  m.def("active_isa", [] { return std::string(isa_name(active_isa())); });
  m.def("set_isa", [](const std::string& name) {
    Isa isa;
    if (!parse_isa(name.c_str(), &isa))
      throw py::value_error("isa: expected one of 'scalar', 'avx2', 'avx512', got '" + name + "'");
    try {
      eo::set_isa(isa);
    } catch (const std::invalid_argument& e) {
      throw py::value_error(e.what());
    }
  }, py::arg("isa"), "Force an ISA path (at most cpu_isa()); used by tests to check every path.");
}

}  // namespace eo::bind
