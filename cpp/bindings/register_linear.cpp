#include <string>

#include "array_pool.h"
#include "check.h"
#include "compute_scope.h"
#include "f32-linear/linear.h"

namespace eo::bind {

// linear_forward(x, w, b) -> y          x (N, in), w (out, in), b (out,) or None; y = x w^T + b
// linear_backward(dy, x, w, dw, db, need_dx=True) -> dx or None   (dw, db accumulate: +=)
void register_linear(py::module_& m) {
  m.def("linear_forward", [](py::object x_obj, py::object w_obj, py::object b_obj) {
    F32Array x = f32(x_obj, "x", 2), w = f32(w_obj, "w", 2);
    const int64_t N = x.shape(0), in = x.shape(1), out = w.shape(0);
    expect_shape(w, "w", {-1, in});
    const float* b = nullptr;
    F32Array b_arr;
    if (!b_obj.is_none()) {
      b_arr = f32(b_obj, "b", 1);
      expect_shape(b_arr, "b", {out});
      b = b_arr.data();
    }
    F32Array y = new_f32({N, out});
    const float *xp = x.data(), *wp = w.data();
    float* yp = y.mutable_data();
    {
      const ComputeScope compute;
      eo::linear_forward(N, in, out, xp, wp, b, yp);
    }
    return y;
  }, py::arg("x"), py::arg("w"), py::arg("b"));

  m.def("linear_backward", [](py::object dy_obj, py::object x_obj, py::object w_obj,
                              py::object dw_obj, py::object db_obj, bool need_dx) -> py::object {
    F32Array x = f32(x_obj, "x", 2), w = f32(w_obj, "w", 2);
    const int64_t N = x.shape(0), in = x.shape(1), out = w.shape(0);
    expect_shape(w, "w", {-1, in});
    F32Array dy = f32(dy_obj, "dy", 2);
    expect_shape(dy, "dy", {N, out});
    F32Array dw = f32_out(dw_obj, "dw", 2);
    expect_shape(dw, "dw", {out, in});
    float* db = nullptr;
    F32Array db_arr;
    if (!db_obj.is_none()) {
      db_arr = f32_out(db_obj, "db", 1);
      expect_shape(db_arr, "db", {out});
      db = db_arr.mutable_data();
    }
    py::object result = py::none();
    float* dx = nullptr;
    if (need_dx) {
      F32Array dx_arr = new_f32({N, in});
      dx = dx_arr.mutable_data();
      result = dx_arr;
    }
    const float *dyp = dy.data(), *xp = x.data(), *wp = w.data();
    float* dwp = dw.mutable_data();
    {
      const ComputeScope compute;
      eo::linear_backward(N, in, out, dyp, xp, wp, dwp, db, dx);
    }
    return result;
  }, py::arg("dy"), py::arg("x"), py::arg("w"), py::arg("dw"), py::arg("db"),
     py::arg("need_dx") = true);
}

}  // namespace eo::bind
