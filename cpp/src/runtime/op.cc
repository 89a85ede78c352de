#include "runtime/op.h"

#include <cmath>

namespace eo::rt {

const char* dtype_name(DType t) {
  switch (t) {
    case DType::f32: return "f32";
    case DType::u8: return "u8";
    case DType::i8: return "i8";
    case DType::i32: return "i32";
  }
  return "?";
}

size_t dtype_size(DType t) {
  switch (t) {
    case DType::f32: return 4;
    case DType::u8: return 1;
    case DType::i8: return 1;
    case DType::i32: return 4;
  }
  return 0;
}

std::string TensorDesc::str() const {
  std::string s = std::string(dtype_name(dtype)) + (layout == Layout::nchw ? " nchw (" : " nhwc (");
  s += std::to_string(c);
  if (rank == 4) s += ", " + std::to_string(h) + ", " + std::to_string(w);
  return s + ")";
}

const char* blob_type_name(BlobType t) {
  switch (t) {
    case BlobType::f32: return "f32";
    case BlobType::f16: return "f16";
    case BlobType::i8: return "i8";
    case BlobType::u8: return "u8";
    case BlobType::i32: return "i32";
    case BlobType::i4: return "i4";
    case BlobType::i2: return "i2";
    case BlobType::i1: return "i1";
    case BlobType::sparse_f32: return "sparse_f32";
    case BlobType::bitpacked_b1: return "bitpacked_b1";
    case BlobType::clustered: return "clustered";
    case BlobType::sparse_i8: return "sparse_i8";
    case BlobType::opaque: return "opaque";
  }
  return "?";
}

bool blob_type_is_dense(BlobType t) { return blob_elem_size(t) != 0; }

size_t blob_elem_size(BlobType t) {
  switch (t) {
    case BlobType::f32: return 4;
    case BlobType::f16: return 2;
    case BlobType::i8: return 1;
    case BlobType::u8: return 1;
    case BlobType::i32: return 4;
    default: return 0;
  }
}

int64_t Blob::count() const {
  int64_t n = 1;
  for (int64_t d : dims) n *= d;  // the loader caps every dim and the product
  return n;
}

const char* act_name(Act a) {
  switch (a) {
    case Act::none: return "none";
    case Act::relu: return "relu";
    case Act::relu6: return "relu6";
    case Act::hardswish: return "hardswish";
    case Act::hardsigmoid: return "hardsigmoid";
    case Act::sigmoid: return "sigmoid";
  }
  return "?";
}

// ------------------------------------------------------------------------------------ Attrs
const Attrs::Entry* Attrs::find(const char* key) const {
  for (const Entry& e : entries_)
    if (e.key == key) return &e;
  return nullptr;
}

void Attrs::fail(const char* key, const std::string& what) const {
  throw FormatError("op '" + owner_ + "': attribute '" + key + "': " + what);
}

const Attrs::Entry& Attrs::need(const char* key, Kind kind) const {
  const Entry* e = find(key);
  if (!e) fail(key, "missing");
  if (e->kind != kind) fail(key, "has the wrong kind");
  return *e;
}

std::vector<int64_t> Attrs::get_ints(const char* key, size_t count, int64_t lo, int64_t hi) const {
  const Entry& e = need(key, Kind::ints);
  if (e.i.size() != count)
    fail(key, "expected " + std::to_string(count) + " value(s), got " + std::to_string(e.i.size()));
  for (int64_t v : e.i)
    if (v < lo || v > hi)
      fail(key, "expected values in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " +
                    std::to_string(v));
  return e.i;
}

int64_t Attrs::get_int(const char* key, int64_t lo, int64_t hi) const {
  return get_ints(key, 1, lo, hi)[0];
}

int64_t Attrs::get_int(const char* key, int64_t lo, int64_t hi, int64_t fallback) const {
  return has(key) ? get_int(key, lo, hi) : fallback;
}

std::vector<double> Attrs::get_floats(const char* key, size_t count, double lo, double hi) const {
  const Entry& e = need(key, Kind::floats);
  if (e.f.size() != count)
    fail(key, "expected " + std::to_string(count) + " value(s), got " + std::to_string(e.f.size()));
  for (double v : e.f)
    if (!std::isfinite(v) || v < lo || v > hi)
      fail(key, "expected finite values in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                    "], got " + std::to_string(v));
  return e.f;
}

double Attrs::get_float(const char* key, double lo, double hi) const {
  return get_floats(key, 1, lo, hi)[0];
}

std::string Attrs::get_str(const char* key, size_t max_len) const {
  const Entry& e = need(key, Kind::str);
  if (e.s.size() > max_len) fail(key, "string too long");
  return e.s;
}

int64_t Attrs::get_blob_id(const char* key) const {
  const Entry& e = need(key, Kind::blobs);
  if (e.i.size() != 1) fail(key, "expected one blob id");
  return e.i[0];
}

// ------------------------------------------------------------------------------------ BuildContext
void BuildContext::fail(const std::string& what) const {
  throw FormatError("op '" + def.name + "': " + what);
}

void BuildContext::expect_inputs(size_t lo, size_t hi) const {
  if (def.inputs.size() < lo || def.inputs.size() > hi)
    fail("expected " + (lo == hi ? std::to_string(lo) : std::to_string(lo) + ".." + std::to_string(hi)) +
         " input(s), got " + std::to_string(def.inputs.size()));
}

void BuildContext::expect_f32_input(size_t i) const {
  const TensorDesc& t = input(i);
  if (t.dtype != DType::f32 || t.layout != Layout::nchw)
    fail("input " + std::to_string(i) + ": expected an f32 nchw tensor, got " + t.str());
}

bool BuildContext::f32_residual_input() const {
  if (num_inputs() < 2) return false;
  expect_f32_input(1);
  if (!input(1).same_shape(output()))
    fail("residual " + input(1).str() + " does not match the output " + output().str());
  return true;
}

void BuildContext::expect_output(const TensorDesc& computed) const {
  const TensorDesc& d = output();
  if (!d.same_shape(computed) || (computed.rank != 0 && computed.rank != d.rank))
    fail("declared output " + d.str() + " (rank " + std::to_string(d.rank) +
         ") does not match the computed " + computed.str() + " (rank " +
         std::to_string(computed.rank) + ")");
}

const Blob* BuildContext::optional_blob(const char* key, std::initializer_list<BlobType> types,
                                        std::initializer_list<int64_t> dims) const {
  if (!def.attrs.has(key)) return nullptr;
  const int64_t id = def.attrs.get_blob_id(key);
  if (id < 0 || id >= static_cast<int64_t>(blobs.size()))
    fail(std::string("blob '") + key + "': id " + std::to_string(id) + " out of range");
  const Blob& b = blobs[id];
  bool ok = false;
  std::string names;
  for (BlobType t : types) {
    ok |= t == b.type;
    names += (names.empty() ? "" : "|") + std::string(blob_type_name(t));
  }
  if (!ok)
    fail(std::string("blob '") + key + "': expected type " + names + ", got " + blob_type_name(b.type));
  if (dims.size() != 0) {
    bool same = dims.size() == b.dims.size();
    size_t k = 0;
    for (int64_t d : dims) {
      if (same && d >= 0 && b.dims[k] != d) same = false;
      ++k;
    }
    if (!same) {
      std::string want, got;
      for (int64_t d : dims) want += (want.empty() ? "" : ", ") + (d < 0 ? std::string("*") : std::to_string(d));
      for (int64_t d : b.dims) got += (got.empty() ? "" : ", ") + std::to_string(d);
      fail(std::string("blob '") + key + "': expected dims (" + want + "), got (" + got + ")");
    }
  }
  return &b;
}

const Blob& BuildContext::blob(const char* key, std::initializer_list<BlobType> types,
                               std::initializer_list<int64_t> dims) const {
  const Blob* b = optional_blob(key, types, dims);
  if (!b) fail(std::string("blob '") + key + "' missing");
  return *b;
}

}  // namespace eo::rt
