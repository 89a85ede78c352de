#include "check.h"
#include "compute_scope.h"
#include "f32-gemm/gemm.h"
#include "reference/reference.h"

namespace eo::bind {

// sgemm(a, b, trans_a=False, trans_b=False, reference=False) -> op(a) @ op(b)
// Exposed for tests and benchmarks; layers call the kernels directly in C++.
void register_gemm(py::module_& m) {
  m.def("sgemm", [](py::object a_obj, py::object b_obj, bool ta, bool tb, bool reference) {
    F32Array a = f32(a_obj, "a", 2), b = f32(b_obj, "b", 2);
    const int64_t M = ta ? a.shape(1) : a.shape(0), K = ta ? a.shape(0) : a.shape(1);
    const int64_t Kb = tb ? b.shape(1) : b.shape(0), N = tb ? b.shape(0) : b.shape(1);
    if (K != Kb)
      throw py::value_error("b: inner dimensions differ: op(a) is " + std::to_string(M) + "x" +
                            std::to_string(K) + ", op(b) is " + std::to_string(Kb) + "x" + std::to_string(N));
    F32Array c({M, N});
    MatRef A = ta ? transposed(a.data(), a.shape(1)) : row_major(a.data(), a.shape(1));
    MatRef B = tb ? transposed(b.data(), b.shape(1)) : row_major(b.data(), b.shape(1));
    float* C = c.mutable_data();
    {
      const ComputeScope compute;
      if (reference) eo::reference::sgemm(M, N, K, A, B, C, N, false);
      else eo::sgemm(M, N, K, A, B, C, N, false, true);
    }
    return c;
  }, py::arg("a"), py::arg("b"), py::arg("trans_a") = false, py::arg("trans_b") = false,
     py::arg("reference") = false);
}

}  // namespace eo::bind
