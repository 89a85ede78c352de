#include <pybind11/pybind11.h>

#include "array_pool.h"
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
  m.def("cpu_has_avx512icl", &cpu_has_avx512icl,
        "Whether the CPU has Ice Lake's AVX-512 set (VPOPCNTDQ, BITALG, VNNI, VBMI, GFNI), which the "
        "binary convs' direct path needs.");
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
  m.def("buffer_pool_info", [] {
    const ArrayPoolInfo i = array_pool_info();
    py::dict d;
    d["idle_bytes"] = i.idle_bytes;
    d["limit_bytes"] = i.limit_bytes;
    d["live_buffers"] = i.live_buffers;
    d["hits"] = i.hits;
    d["misses"] = i.misses;
    return d;
  }, "The pool that training kernels' output arrays come from (cpp/bindings/array_pool.h): idle and "
     "limit bytes, buffers held by live arrays, and how many requests reused a buffer (hits).");
  m.def("buffer_pool_set_limit", [](int64_t bytes) {
    if (bytes < 0) throw py::value_error("bytes: expected >= 0, got " + std::to_string(bytes));
    array_pool_set_limit(static_cast<size_t>(bytes));
  }, py::arg("bytes"), "Cap the idle bytes kept for reuse (0 keeps none); frees idle buffers past it.");
  m.def("buffer_pool_clear", &array_pool_clear, "Return every idle buffer to the system.");
}

}  // namespace eo::bind
