#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <vector>

#include "array_pool.h"
#include "check.h"
#include "compute_scope.h"
#include "runtime/engine.h"

// The deploy runtime (cpp/src/runtime): a network loaded from .edgeopt bytes.
//   e = RuntimeEngine(data: bytes)          parse, validate, build (ValueError on a bad file)
//   y = e.run(x)                            x float32 (N, C, H, W) C-contiguous, any N >= 1
//   e.to_bytes(), e.size_bytes, e.metadata (bytes of JSON), e.input_shape, e.output_shape,
//   e.peak_activation_bytes(batch), e.workspace_bytes(batch), e.weight_bytes, e.summary()
//   runtime_op_types() -> [(id, name)]
//   testing.set_plane_links(on) -> bool    whether Engines loaded from now on let binary convs hand
//                                          off bit planes (default True); returns the old value
// The public wrapper is edgeopt.deploy.Engine (python/edgeopt/deploy/engine.py).
namespace eo::bind {
namespace {

using rt::Engine;

py::tuple output_shape(const Engine& e) {
  const rt::TensorDesc& o = e.output();
  if (o.rank == 2) return py::make_tuple(o.c);
  return py::make_tuple(o.c, o.h, o.w);
}

}  // namespace

void register_runtime_engine(py::module_& m, py::module_& testing) {
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const rt::FormatError& e) {
      PyErr_SetString(PyExc_ValueError, e.what());
    }
  });

  py::class_<Engine, std::shared_ptr<Engine>>(m, "RuntimeEngine",
                                              "A compiled network loaded from .edgeopt bytes")
      .def(py::init([](py::bytes data) {
             std::string buf = data;  // a copy: the Engine copies again into aligned memory
             const ComputeScope compute;
             return std::make_shared<Engine>(reinterpret_cast<const uint8_t*>(buf.data()), buf.size());
           }),
           py::arg("data"))
      .def("run", [](const Engine& e, py::object x_obj) {
        F32Array x = f32(x_obj, "x", 4);
        const rt::TensorDesc& in = e.input();
        if (x.shape(0) < 1 || x.shape(1) != in.c || x.shape(2) != in.h || x.shape(3) != in.w)
          throw py::value_error("x: expected shape (N, " + std::to_string(in.c) + ", " +
                                std::to_string(in.h) + ", " + std::to_string(in.w) +
                                ") with N >= 1, got " + shape_str(x));
        const int64_t n = x.shape(0);
        std::vector<py::ssize_t> shape{n};
        const rt::TensorDesc& o = e.output();
        shape.push_back(o.c);
        if (o.rank == 4) {
          shape.push_back(o.h);
          shape.push_back(o.w);
        }
        F32Array y = new_f32_aligned(shape);
        float* yp = y.mutable_data();
        const float* xp = x.data();
        {
          const ComputeScope compute;
          e.run(xp, n, yp);
        }
        return y;
      }, py::arg("x"))
      .def("profile", [](const Engine& e, py::object x_obj, int64_t runs) {
        F32Array x = f32(x_obj, "x", 4);
        const rt::TensorDesc& in = e.input();
        if (x.shape(0) < 1 || x.shape(1) != in.c || x.shape(2) != in.h || x.shape(3) != in.w)
          throw py::value_error("x: expected shape (N, " + std::to_string(in.c) + ", " +
                                std::to_string(in.h) + ", " + std::to_string(in.w) + "), got " + shape_str(x));
        expect_positive(runs, "runs");
        std::vector<double> t(e.num_ops(), 0.0);
        F32Array y = new_f32_aligned({py::ssize_t(x.shape(0) * e.output().elems())});
        float* yp = y.mutable_data();
        {
          const ComputeScope compute;
          for (int64_t r = 0; r < runs; ++r) e.run(x.data(), x.shape(0), yp, t.data());
        }
        for (double& v : t) v /= static_cast<double>(runs);
        return t;
      }, py::arg("x"), py::arg("runs") = 10, "Mean seconds per op over `runs` calls.")
      .def("to_bytes", [](const Engine& e) {
        return py::bytes(reinterpret_cast<const char*>(e.file_data()), e.file_size());
      })
      .def_property_readonly("size_bytes", [](const Engine& e) { return int64_t(e.file_size()); })
      .def_property_readonly("metadata", [](const Engine& e) { return py::bytes(e.metadata()); })
      .def_property_readonly("input_shape", [](const Engine& e) {
        return py::make_tuple(e.input().c, e.input().h, e.input().w);
      })
      .def_property_readonly("output_shape", &output_shape)
      .def_property_readonly("weight_bytes", &Engine::weight_bytes)
      .def_property_readonly("num_ops", &Engine::num_ops)
      .def("peak_activation_bytes", [](const Engine& e, int64_t batch) {
        expect_positive(batch, "batch");
        return e.peak_activation_bytes(batch);
      }, py::arg("batch") = 1)
      .def("workspace_bytes", [](const Engine& e, int64_t batch) {
        expect_positive(batch, "batch");
        return e.workspace_bytes(batch);
      }, py::arg("batch") = 1)
      .def("summary", [](const Engine& e) {
        py::list rows;
        for (const rt::OpSummary& s : e.summary()) {
          py::dict d;
          d["name"] = s.name;
          d["op"] = s.type;
          d["output"] = s.output;
          d["info"] = s.info;
          d["macs"] = s.macs;
          d["weight_bytes"] = s.weight_bytes;
          d["output_bytes"] = s.output_bytes;
          d["arena_offset"] = s.arena_offset;
          rows.append(d);
        }
        return rows;
      });

  testing.def("set_plane_links", &rt::set_plane_links_enabled, py::arg("on"),
              "Whether Engines loaded from now on let a binary conv hand its only reader (another binary "
              "conv) bit planes instead of f32 values (default True). Returns the previous setting.");

  m.def("runtime_op_types", [] {
    std::vector<std::pair<uint32_t, std::string>> r;
    for (const rt::OpTypeInfo& t : rt::op_types()) r.emplace_back(t.id, t.name);
    return r;
  }, "Op type ids and names this build's runtime can run.");
}

}  // namespace eo::bind
