#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "check.h"
#include "compute_scope.h"
#include "data/data.h"
#include "data/validate.h"
#include "reference/reference.h"

namespace eo::bind {
namespace {

using I64Array = py::array_t<int64_t, py::array::c_style>;

// Dataset storage: a C-contiguous uint8 or float32 array of rank `ndim` (the loader keeps any other
// dtype converted once, up front, so each batch reads the storage directly).
py::array storage(const py::handle& obj, const char* name, int ndim) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string(name) + ": expected a numpy.ndarray of uint8 or float32, got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))));
  py::array a = py::reinterpret_borrow<py::array>(obj);
  if (!a.dtype().is(py::dtype::of<uint8_t>()) && !a.dtype().is(py::dtype::of<float>()))
    throw py::type_error(std::string(name) + ": expected dtype uint8 or float32, got " +
                         std::string(py::str(a.dtype())));
  if (ndim >= 0 && a.ndim() != ndim)
    throw py::value_error(std::string(name) + ": expected a " + std::to_string(ndim) +
                          "-d array, got shape " + shape_str(a));
  if (ndim < 0 && a.ndim() < 2)
    throw py::value_error(std::string(name) + ": expected an (N, C, ...) array, got shape " + shape_str(a));
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + ": expected a C-contiguous array (use numpy.ascontiguousarray)");
  return a;
}

// 1-d integer indices into [0, n), as int64 (a copy only if the dtype differs).
I64Array indices(const py::handle& obj, const char* name, int64_t n) {
  if (!py::isinstance<py::array>(obj))
    throw py::type_error(std::string(name) + ": expected a numpy.ndarray of integer indices, got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))));
  py::array a = py::reinterpret_borrow<py::array>(obj);
  if (a.dtype().kind() != 'i' && a.dtype().kind() != 'u')
    throw py::type_error(std::string(name) + ": expected an integer array, got dtype " +
                         std::string(py::str(a.dtype())));
  if (a.ndim() != 1)
    throw py::value_error(std::string(name) + ": expected a 1-d array, got shape " + shape_str(a));
  I64Array r = I64Array::ensure(a);
  if (!r) throw py::error_already_set();
  const int64_t* p = r.data();
  for (py::ssize_t i = 0; i < r.size(); ++i)
    if (p[i] < 0 || (n >= 0 && p[i] >= n))
      throw py::value_error(std::string(name) + ": index " + std::to_string(p[i]) + " at position " +
                            std::to_string(i) + " is out of range [0, " + std::to_string(n) + ")");
  return r;
}

int64_t checked_pad(int64_t pad) {
  if (pad < 0 || pad > (int64_t{1} << 20))
    throw py::value_error("pad: expected an integer in [0, 1048576], got " + std::to_string(pad));
  return pad;
}

}  // namespace

void register_data(py::module_& m, py::module_& testing) {
  // data_assemble_batch(x, indices, mean, std, pad=0, flip=False, seed=0, epoch=0) -> (B, C, H, W)
  m.def("data_assemble_batch", [](py::object x_obj, py::object idx_obj, py::object mean_obj,
                                  py::object std_obj, int64_t pad, bool flip, uint64_t seed,
                                  uint64_t epoch) {
    py::array x = storage(x_obj, "x", 4);
    const int64_t N = x.shape(0), C = x.shape(1), H = x.shape(2), W = x.shape(3);
    I64Array idx = indices(idx_obj, "indices", N);
    F32Array mean = f32(mean_obj, "mean", 1), sd = f32(std_obj, "std", 1);
    expect_shape(mean, "mean", {C});
    expect_shape(sd, "std", {C});
    for (int64_t c = 0; c < C; ++c) {
      if (!std::isfinite(mean.data()[c]))
        throw py::value_error("mean: expected finite values, got " + std::to_string(mean.data()[c]) +
                              " for channel " + std::to_string(c));
      if (!(std::isfinite(sd.data()[c]) && sd.data()[c] > 0.0f))
        throw py::value_error("std: expected finite positive values, got " + std::to_string(sd.data()[c]) +
                              " for channel " + std::to_string(c));
    }
    const eo::data::BatchGeometry g{C, H, W, checked_pad(pad), flip, seed, epoch};
    const int64_t B = idx.shape(0);
    F32Array out({B, C, H, W});
    float* o = out.mutable_data();
    const bool u8 = x.dtype().is(py::dtype::of<uint8_t>());
    {
      const ComputeScope compute;
      if (u8)
        eo::data::assemble_batch_u8(static_cast<const uint8_t*>(x.data()), idx.data(), B, g,
                                    mean.data(), sd.data(), o);
      else
        eo::data::assemble_batch_f32(static_cast<const float*>(x.data()), idx.data(), B, g,
                                     mean.data(), sd.data(), o);
    }
    return out;
  }, py::arg("x"), py::arg("indices"), py::arg("mean"), py::arg("std"), py::arg("pad") = 0,
     py::arg("flip") = false, py::arg("seed") = 0, py::arg("epoch") = 0,
     "Gather x[indices] into a float32 batch: scale (uint8: /255), normalize per channel, random "
     "crop with zero padding `pad` and horizontal flip decided by (seed, epoch, dataset index).");

  // data_crop_flip(indices, pad, flip, seed, epoch) -> (oy, ox, flipped): the decisions
  // data_assemble_batch applies, for tests and for anyone who wants to reproduce a batch.
  testing.def("data_crop_flip", [](py::object idx_obj, int64_t pad, bool flip, uint64_t seed, uint64_t epoch) {
    I64Array idx = indices(idx_obj, "indices", -1);
    const eo::data::BatchGeometry g{0, 0, 0, checked_pad(pad), flip, seed, epoch};
    const int64_t B = idx.shape(0);
    I64Array oy(B), ox(B);
    py::array_t<bool> fl(B);
    for (int64_t b = 0; b < B; ++b) {
      const eo::data::CropFlip cf = eo::data::crop_flip(g, static_cast<uint64_t>(idx.data()[b]));
      oy.mutable_data()[b] = cf.oy;
      ox.mutable_data()[b] = cf.ox;
      fl.mutable_data()[b] = cf.flip;
    }
    return py::make_tuple(oy, ox, fl);
  }, py::arg("indices"), py::arg("pad"), py::arg("flip"), py::arg("seed"), py::arg("epoch"));

  // data_permutation(n, seed, epoch) -> int64 (n,)
  m.def("data_permutation", [](int64_t n, uint64_t seed, uint64_t epoch) {
    expect_nonnegative(n, "n");
    I64Array out(n);
    int64_t* o = out.mutable_data();
    {
      const ComputeScope compute;
      eo::data::permutation(n, seed, epoch, o);
    }
    return out;
  }, py::arg("n"), py::arg("seed"), py::arg("epoch"));

  // data_channel_stats(x) -> (mean, std), float64 (C,), of x: (N, C, ...) in storage units.
  m.def("data_channel_stats", [](py::object x_obj) {
    py::array x = storage(x_obj, "x", -1);
    const int64_t N = x.shape(0), C = x.shape(1), S = x.size() / std::max<int64_t>(1, N * C);
    py::array_t<double> mean(C), sd(C);
    double* pm = mean.mutable_data();
    double* ps = sd.mutable_data();
    const bool u8 = x.dtype().is(py::dtype::of<uint8_t>());
    {
      const ComputeScope compute;
      if (u8) eo::data::channel_stats_u8(static_cast<const uint8_t*>(x.data()), N, C, S, pm, ps);
      else eo::data::channel_stats_f32(static_cast<const float*>(x.data()), N, C, S, pm, ps);
    }
    return py::make_tuple(mean, sd);
  }, py::arg("x"));

  // data_first_nonfinite(arrays, reference=False) -> (position, flat index) of the first NaN/Inf
  // over a sequence of float32 C-contiguous arrays, in order; None when all are finite. One call
  // for a whole list (fit checks every gradient of a model after each step).
  m.def("data_first_nonfinite", [](py::sequence arrays, bool reference) -> py::object {
    std::vector<std::pair<const float*, int64_t>> spans;
    std::vector<F32Array> keep;  // holds the arrays while the GIL is released
    spans.reserve(py::len(arrays));
    keep.reserve(py::len(arrays));
    for (py::ssize_t i = 0; i < static_cast<py::ssize_t>(py::len(arrays)); ++i) {
      const std::string name = "arrays[" + std::to_string(i) + "]";
      keep.push_back(f32(arrays[i], name.c_str()));
      spans.emplace_back(keep.back().data(), static_cast<int64_t>(keep.back().size()));
    }
    int64_t pos = -1, index = -1;
    {
      const ComputeScope compute;
      for (size_t i = 0; i < spans.size() && pos < 0; ++i) {
        const int64_t j = reference ? eo::reference::first_nonfinite(spans[i].first, spans[i].second)
                                    : eo::data::first_nonfinite(spans[i].first, spans[i].second);
        if (j >= 0) pos = static_cast<int64_t>(i), index = j;
      }
    }
    if (pos < 0) return py::none();
    return py::make_tuple(pos, index);
  }, py::arg("arrays"), py::arg("reference") = false);

  // data_first_bad_label(y, num_classes, reference=False) -> index of the first label outside
  // [0, num_classes), or -1. y: any integer dtype, 1-d.
  m.def("data_first_bad_label", [](py::object y_obj, int64_t num_classes, bool reference) {
    auto y = labels(y_obj, "y");
    expect_nonnegative(num_classes, "num_classes");
    const int64_t n = y.shape(0);
    const int64_t* yp = y.data();
    const ComputeScope compute;
    return reference ? eo::reference::first_label_outside(yp, n, num_classes)
                     : eo::data::first_label_outside(yp, n, num_classes);
  }, py::arg("y"), py::arg("num_classes"), py::arg("reference") = false);
}

}  // namespace eo::bind
