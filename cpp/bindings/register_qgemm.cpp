#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <vector>

#include "check.h"
#include "compute_scope.h"
#include "qs8-gemm/gemm.h"
#include "reference/reference.h"

// int8 inference GEMM (cpp/src/qs8-gemm) for tests, benchmarks and the deploy runtime:
//   packed = qgemm_pack(b)            b: int8 (K, N), or (N, K) with transposed=True (OI weights)
//   c = qgemm(a, packed, a_zero_point, bias, scale, out_zero_point, qmin, qmax,
//             out_dtype="uint8", path=None)
//   c = qgemm_reference(a, b, ...)    plain loops, same arguments with b unpacked (K, N)
//   qgemm_paths() -> paths this CPU supports; qgemm_default_path()
namespace eo::bind {
namespace {

// Everything qgemm and qgemm_reference share: checked once, here.
struct Args {
  py::array_t<uint8_t, py::array::c_style> a;
  int64_t M = 0, K = 0, N = 0;
  int32_t a_zp = 0;
  RequantArgs rq;
};

Args check_args(const py::handle& a_obj, int64_t K, int64_t N, int64_t a_zp, const py::handle& bias,
                const py::handle& scale, int64_t out_zp,
                const py::handle& qmin, const py::handle& qmax, const py::handle& out_dtype) {
  Args r{typed<uint8_t>(a_obj, "a", 2, "uint8")};
  expect_shape(r.a, "a", {-1, K});
  r.M = r.a.shape(0);
  r.K = K;
  r.N = N;
  expect_range(a_zp, 0, 255, "a_zero_point");
  r.a_zp = int32_t(a_zp);
  r.rq = requant_args(N, bias, scale, out_zp, qmin, qmax, out_dtype);
  return r;
}

void check_fits(const Qs8PackedB& b, const int32_t* bias) {
  if (!qs8_accumulator_fits(b, bias))
    throw py::value_error("bias: |bias[j]| + 255 * sum_k |b[k, j]| must be <= 2^31 - 1 so the int32 "
                          "accumulator is exact; this bias/weight combination exceeds it");
}

Qs8Path parse_path(const py::handle& obj, int64_t K) {
  if (obj.is_none()) return qs8_gemm_default_path(K);
  if (!py::isinstance<py::str>(obj))
    throw py::type_error("path: expected None or a str, got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))));
  const std::string name = obj.cast<std::string>();
  std::string avail;
  for (int i = 0; i < kQs8PathCount; ++i) {
    const Qs8Path p = static_cast<Qs8Path>(i);
    if (!qs8_gemm_path_supported(p)) continue;
    if (name == qs8_gemm_ukernel(p).name) return p;
    avail += (avail.empty() ? "'" : ", '") + std::string(qs8_gemm_ukernel(p).name) + "'";
  }
  throw py::value_error("path: expected one of " + avail + " (the paths this CPU supports), got '" +
                        name + "'");
}

}  // namespace

void register_qgemm(py::module_& m) {
  py::class_<Qs8PackedB, std::shared_ptr<Qs8PackedB>>(
      m, "QGemmPacked", "int8 weights packed for qgemm (c4 panels + column sums); from qgemm_pack")
      .def_property_readonly("K", [](const Qs8PackedB& p) { return p.K; })
      .def_property_readonly("N", [](const Qs8PackedB& p) { return p.N; })
      .def_property_readonly("nbytes", [](const Qs8PackedB& p) {
        return int64_t(p.data.size() + 4 * p.colsum.size() + 8 * p.abssum.size());
      })
      .def("__repr__", [](const Qs8PackedB& p) {
        return "QGemmPacked(K=" + std::to_string(p.K) + ", N=" + std::to_string(p.N) + ")";
      });

  m.def("qgemm_pack", [](py::object b_obj, bool transposed) {
    auto b = typed<int8_t>(b_obj, "b", 2, "int8");
    const int64_t K = transposed ? b.shape(1) : b.shape(0), N = transposed ? b.shape(0) : b.shape(1);
    auto p = std::make_shared<Qs8PackedB>();
    {
      const ComputeScope compute;
      *p = transposed ? qs8_pack_b(K, N, b.data(), 1, K) : qs8_pack_b(K, N, b.data(), N, 1);
    }
    return p;
  }, py::arg("b"), py::arg("transposed") = false,
     "Pack int8 weights b (K, N) -- or (N, K) output-channel-major with transposed=True -- once.");

  m.def("qgemm", [](py::object a, std::shared_ptr<Qs8PackedB> packed, int64_t a_zp, py::object bias,
                    py::object scale, int64_t out_zp, py::object qmin,
                    py::object qmax, py::object out_dtype, py::object path_obj) {
    if (!packed) throw py::type_error("packed: expected a QGemmPacked from qgemm_pack, got None");
    Args r = check_args(a, packed->K, packed->N, a_zp, bias, scale, out_zp, qmin, qmax, out_dtype);
    check_fits(*packed, r.rq.bias);
    const Qs8Path path = parse_path(path_obj, packed->K);
    py::array c(r.rq.dtype, {r.M, r.N});
    uint8_t* cp = static_cast<uint8_t*>(c.mutable_data());
    {
      const ComputeScope compute;
      qs8_gemm(r.M, r.a.data(), r.K, r.a_zp, *packed,
               {r.rq.bias, r.rq.scale.data(), r.rq.out_zp, r.rq.qmin, r.rq.qmax}, cp, r.N, path, true);
    }
    return c;
  }, py::arg("a"), py::arg("packed"), py::arg("a_zero_point"), py::arg("bias"),
     py::arg("scale"), py::arg("out_zero_point"), py::arg("qmin") = py::none(),
     py::arg("qmax") = py::none(), py::arg("out_dtype") = "uint8", py::arg("path") = py::none(),
     "c = clamp(rint(float32(acc) * scale) + out_zero_point) as uint8 (or int8), acc = (a - "
     "a_zero_point) @ B + bias. scale (float32, finite, > 0) is a float or a per-output-channel "
     "array; qmin/qmax default to the output type's range.");

  m.def("qgemm_reference", [](py::object a, py::object b_obj, int64_t a_zp, py::object bias,
                              py::object scale, int64_t out_zp,
                              py::object qmin, py::object qmax, py::object out_dtype) {
    auto b = typed<int8_t>(b_obj, "b", 2, "int8");
    const int64_t K = b.shape(0), N = b.shape(1);
    Args r = check_args(a, K, N, a_zp, bias, scale, out_zp, qmin, qmax, out_dtype);
    Qs8PackedB sums;  // only for the range check
    {
      const ComputeScope compute;
      sums = qs8_pack_b(K, N, b.data(), N, 1);
    }
    check_fits(sums, r.rq.bias);
    py::array c(r.rq.dtype, {r.M, r.N});
    uint8_t* cp = static_cast<uint8_t*>(c.mutable_data());
    {
      const ComputeScope compute;
      reference::qs8_gemm(r.M, N, K, r.a.data(), K, r.a_zp, b.data(), N, r.rq.bias, r.rq.scale.data(),
                          r.rq.out_zp, r.rq.qmin, r.rq.qmax, cp, N);
    }
    return c;
  }, py::arg("a"), py::arg("b"), py::arg("a_zero_point"), py::arg("bias"), py::arg("scale"),
     py::arg("out_zero_point"), py::arg("qmin") = py::none(),
     py::arg("qmax") = py::none(), py::arg("out_dtype") = "uint8",
     "Plain-loop qgemm (int64 accumulation) with b unpacked (K, N): the oracle for tests.");

  m.def("qgemm_paths", [] {
    std::vector<std::string> names;
    for (int i = 0; i < kQs8PathCount; ++i)
      if (qs8_gemm_path_supported(static_cast<Qs8Path>(i)))
        names.push_back(qs8_gemm_ukernel(static_cast<Qs8Path>(i)).name);
    return names;
  }, "int8 GEMM paths this CPU supports, slowest first.");
  m.def("qgemm_default_path", [](int64_t K) {
    return std::string(qs8_gemm_ukernel(qs8_gemm_default_path(K)).name);
  }, py::arg("K") = 1024,
     "The path qgemm uses for depth K when path=None (the best one allowed by the active ISA).");
}

}  // namespace eo::bind
