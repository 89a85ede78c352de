#include "runtime/format.h"

#include <algorithm>
#include <cmath>
#include <cstring>

namespace eo::rt {
namespace {

[[noreturn]] void bad(const std::string& what) { throw FormatError("edgeopt file: " + what); }

// A bounds-checked little-endian cursor over [p, p + n).
class Reader {
 public:
  Reader(const uint8_t* p, size_t n, const char* where) : p_(p), n_(n), where_(where) {}
  size_t pos() const { return pos_; }
  size_t left() const { return n_ - pos_; }
  const uint8_t* take(size_t k) {
    if (k > left())
      bad(std::string(where_) + ": truncated (needs " + std::to_string(k) + " more bytes at offset " +
          std::to_string(pos_) + ", " + std::to_string(left()) + " left)");
    const uint8_t* r = p_ + pos_;
    pos_ += k;
    return r;
  }
  template <class T>
  T get() {
    T v;
    std::memcpy(&v, take(sizeof(T)), sizeof(T));
    return v;
  }

 private:
  const uint8_t* p_;
  size_t n_, pos_ = 0;
  const char* where_;
};

struct Section {
  uint32_t type;
  uint64_t offset, size;
};

void parse_blobs(const uint8_t* file, const Section& s, ModelFile& m) {
  Reader r(file + s.offset, s.size, "blob section");
  const uint32_t count = r.get<uint32_t>();
  r.get<uint32_t>();
  if (count > kMaxBlobs) bad("blob section: " + std::to_string(count) + " blobs (limit " + std::to_string(kMaxBlobs) + ")");
  if (uint64_t(count) * kBlobEntryBytes > r.left()) bad("blob section: truncated blob table");
  m.blobs.resize(count);
  for (uint32_t i = 0; i < count; ++i) {
    const std::string what = "blob " + std::to_string(i);
    Blob& b = m.blobs[i];
    const uint8_t type = r.get<uint8_t>(), rank = r.get<uint8_t>();
    r.get<uint16_t>();
    r.get<uint32_t>();
    int64_t dims[4];
    for (int64_t& d : dims) d = r.get<int64_t>();
    const uint64_t off = r.get<uint64_t>(), nbytes = r.get<uint64_t>();
    r.get<uint64_t>();
    b.type = static_cast<BlobType>(type);
    if (std::string(blob_type_name(b.type)) == "?") bad(what + ": unknown type tag " + std::to_string(type));
    if (rank > 4) bad(what + ": rank " + std::to_string(rank) + " > 4");
    int64_t count_elems = 1;
    for (int k = 0; k < rank; ++k) {
      if (dims[k] < 1 || dims[k] > kMaxDim) bad(what + ": dim " + std::to_string(dims[k]) + " out of range");
      count_elems *= dims[k];
      if (count_elems > (int64_t(1) << 40)) bad(what + ": too many elements");
      b.dims.push_back(dims[k]);
    }
    if (off % 64 != 0) bad(what + ": offset not 64-byte aligned");
    if (off > s.size || nbytes > s.size - off) bad(what + ": data outside the blob section");
    if (blob_type_is_dense(b.type) &&
        nbytes != static_cast<uint64_t>(count_elems) * blob_elem_size(b.type))
      bad(what + ": " + std::to_string(nbytes) + " bytes for " + std::to_string(count_elems) + " " +
          blob_type_name(b.type) + " elements");
    if (b.type == BlobType::i4 || b.type == BlobType::i2 || b.type == BlobType::i1) {  // rows of bit-packed codes
      if (rank < 1) bad(what + ": a low-bit blob needs dims");
      const int64_t bits = b.type == BlobType::i4 ? 4 : b.type == BlobType::i2 ? 2 : 1, row = count_elems / dims[0];
      if (nbytes != static_cast<uint64_t>(dims[0] * ((row * bits + 7) / 8)))
        bad(what + ": " + std::to_string(nbytes) + " bytes for " + std::to_string(dims[0]) + " rows of " +
            std::to_string(row) + " " + blob_type_name(b.type) + " codes");
    }
    b.data = file + s.offset + off;
    b.bytes = static_cast<size_t>(nbytes);
  }
}

TensorDesc parse_tensor(Reader& r, uint32_t id) {
  const std::string what = "tensor " + std::to_string(id);
  TensorDesc t;
  const uint8_t dt = r.get<uint8_t>(), lay = r.get<uint8_t>(), rank = r.get<uint8_t>();
  r.get<uint8_t>();
  const int32_t c = r.get<int32_t>(), h = r.get<int32_t>(), w = r.get<int32_t>();
  const float scale = r.get<float>();
  const int32_t zp = r.get<int32_t>();
  r.get<uint64_t>();
  if (dt < 1 || dt > 4) bad(what + ": unknown dtype " + std::to_string(dt));
  if (lay < 1 || lay > 2) bad(what + ": unknown layout " + std::to_string(lay));
  t.dtype = static_cast<DType>(dt);
  t.layout = static_cast<Layout>(lay);
  if (rank != 2 && rank != 4) bad(what + ": rank must be 2 or 4, got " + std::to_string(rank));
  t.rank = rank;
  for (int32_t d : {c, h, w})
    if (d < 1 || d > kMaxDim) bad(what + ": dim " + std::to_string(d) + " out of range");
  if (rank == 2 && (h != 1 || w != 1)) bad(what + ": a rank-2 tensor must have h = w = 1");
  t.c = c;
  t.h = h;
  t.w = w;
  if (t.c * t.h > kMaxTensorBytes || t.elems() * int64_t(dtype_size(t.dtype)) > kMaxTensorBytes)
    bad(what + ": " + t.str() + " exceeds the per-image size limit");
  if (!std::isfinite(scale) || !(scale > 0.f)) bad(what + ": scale must be finite and > 0");
  t.scale = scale;
  t.zero_point = zp;
  if (t.dtype == DType::u8 && (zp < 0 || zp > 255)) bad(what + ": u8 zero point out of range");
  if (t.dtype == DType::i8 && (zp < -128 || zp > 127)) bad(what + ": i8 zero point out of range");
  if ((t.dtype == DType::f32 || t.dtype == DType::i32) && (zp != 0 || scale != 1.f))
    bad(what + ": f32/i32 tensors have scale 1 and zero point 0");
  return t;
}

std::string take_string(Reader& r, size_t len) {
  const uint8_t* p = r.take(len);
  return std::string(reinterpret_cast<const char*>(p), len);
}

// Names, keys and string attributes become Python str (summary(), error messages): they must be
// strict UTF-8 (what Python's decoder accepts: no overlong forms, surrogates or code points past
// U+10FFFF) without control characters, which would garble printed tables and messages.
bool is_clean_text(const std::string& s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  const size_t n = s.size();
  for (size_t i = 0; i < n;) {
    const uint8_t c = p[i];
    if (c < 0x80) {
      if (c < 0x20 || c == 0x7f) return false;
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp, min;
    if ((c & 0xe0) == 0xc0) len = 2, cp = c & 0x1f, min = 0x80;
    else if ((c & 0xf0) == 0xe0) len = 3, cp = c & 0x0f, min = 0x800;
    else if ((c & 0xf8) == 0xf0) len = 4, cp = c & 0x07, min = 0x10000;
    else return false;
    if (len > n - i) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return false;
      cp = cp << 6 | (p[i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp < 0xa0)) return false;
    i += len;
  }
  return true;
}

void parse_graph(const uint8_t* file, const Section& s, ModelFile& m) {
  Reader r(file + s.offset, s.size, "graph section");
  const uint32_t nt = r.get<uint32_t>(), nops = r.get<uint32_t>();
  const uint32_t in = r.get<uint32_t>(), out = r.get<uint32_t>();
  if (nt < 1 || nt > kMaxTensors) bad("graph: tensor count " + std::to_string(nt) + " out of range");
  if (nops > kMaxOps) bad("graph: op count " + std::to_string(nops) + " out of range");
  if (in != 0) bad("graph: the input must be tensor 0");
  if (out >= nt) bad("graph: output tensor " + std::to_string(out) + " not declared");
  if (uint64_t(nt) * kTensorEntryBytes > r.left()) bad("graph: truncated tensor table");
  m.tensors.reserve(nt);
  for (uint32_t i = 0; i < nt; ++i) m.tensors.push_back(parse_tensor(r, i));
  m.input = 0;
  m.output = static_cast<int32_t>(out);
  const TensorDesc& x = m.tensors[0];
  if (x.dtype != DType::f32 || x.layout != Layout::nchw || x.rank != 4)
    bad("graph: the input must be an f32 nchw rank-4 tensor, got " + x.str());

  std::vector<char> defined(nt, 0);
  defined[0] = 1;
  m.ops.reserve(std::min<uint32_t>(nops, static_cast<uint32_t>(r.left() / 16 + 1)));
  for (uint32_t k = 0; k < nops; ++k) {
    OpDef d;
    d.type = r.get<uint32_t>();
    const uint32_t nin = r.get<uint32_t>();
    const int32_t output = r.get<int32_t>();
    const uint16_t name_len = r.get<uint16_t>(), nattrs = r.get<uint16_t>();
    if (nin > kMaxOpInputs) bad("op " + std::to_string(k) + ": " + std::to_string(nin) + " inputs");
    if (name_len > kMaxNameLen) bad("op " + std::to_string(k) + ": name too long");
    if (nattrs > kMaxAttrs) bad("op " + std::to_string(k) + ": too many attributes");
    d.name = take_string(r, name_len);
    if (!is_clean_text(d.name))
      bad("op " + std::to_string(k) + ": name is not UTF-8 text without control characters");
    if (d.name.empty()) d.name = "#" + std::to_string(k);
    const std::string what = "op " + std::to_string(k) + " ('" + d.name + "')";
    for (uint32_t i = 0; i < nin; ++i) {
      const int32_t t = r.get<int32_t>();
      if (t < 0 || static_cast<uint32_t>(t) >= nt) bad(what + ": input tensor " + std::to_string(t) + " not declared");
      if (!defined[t]) bad(what + ": input tensor " + std::to_string(t) + " used before it is defined");
      d.inputs.push_back(t);
    }
    if (output < 0 || static_cast<uint32_t>(output) >= nt)
      bad(what + ": output tensor " + std::to_string(output) + " not declared");
    if (defined[output]) bad(what + ": output tensor " + std::to_string(output) + " defined twice");
    defined[output] = 1;
    d.output = output;
    d.attrs.set_owner(d.name);
    for (uint32_t a = 0; a < nattrs; ++a) {
      Attrs::Entry e;
      const uint16_t key_len = r.get<uint16_t>();
      const uint8_t kind = r.get<uint8_t>();
      r.get<uint8_t>();
      const uint32_t count = r.get<uint32_t>();
      if (key_len < 1 || key_len > kMaxKeyLen) bad(what + ": attribute key length " + std::to_string(key_len));
      e.key = take_string(r, key_len);
      if (!is_clean_text(e.key))
        bad(what + ": attribute " + std::to_string(a) + ": key is not UTF-8 text without control characters");
      if (d.attrs.has(e.key.c_str())) bad(what + ": attribute '" + e.key + "' given twice");
      const size_t unit = kind == 1 || kind == 2 ? 8 : kind == 3 ? 1 : kind == 4 ? 4 : 0;
      if (!unit) bad(what + ": attribute '" + e.key + "' has unknown kind " + std::to_string(kind));
      if (uint64_t(count) * unit > r.left()) bad(what + ": attribute '" + e.key + "' truncated");
      e.kind = static_cast<Attrs::Kind>(kind);
      for (uint32_t i = 0; i < count && kind != 3; ++i) {
        if (kind == 1) e.i.push_back(r.get<int64_t>());
        else if (kind == 2) e.f.push_back(r.get<double>());
        else e.i.push_back(r.get<uint32_t>());
      }
      if (kind == 3) {
        e.s = take_string(r, count);
        if (!is_clean_text(e.s))
          bad(what + ": attribute '" + e.key + "': string is not UTF-8 text without control characters");
      }
      d.attrs.add(std::move(e));
    }
    m.ops.push_back(std::move(d));
  }
  if (r.left() != 0) bad("graph: " + std::to_string(r.left()) + " trailing bytes");
  if (!defined[out]) bad("graph: the output tensor is never computed");
  if (m.tensors[out].dtype != DType::f32) bad("graph: the output must be an f32 tensor");
}

}  // namespace

uint32_t crc32(const uint8_t* data, size_t n, uint32_t crc) {
  static const auto table = [] {
    std::vector<uint32_t> t(256);
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ data[i]) & 0xff] ^ (crc >> 8);
  return ~crc;
}

ModelFile parse_model_file(const uint8_t* data, size_t size) {
  if (size < kHeaderBytes)
    bad("not an .edgeopt file (" + std::to_string(size) + " bytes, shorter than the header)");
  Reader h(data, size, "header");
  const uint8_t* magic = h.take(8);
  if (std::memcmp(magic, kMagic, 8) != 0) bad("not an .edgeopt file (bad magic)");
  const uint32_t version = h.get<uint32_t>(), nsec = h.get<uint32_t>();
  const uint64_t file_size = h.get<uint64_t>();
  const uint32_t table_crc = h.get<uint32_t>(), header_crc = h.get<uint32_t>();
  if (crc32(data, 28) != header_crc) bad("header checksum mismatch (corrupted file)");
  if (version != kFormatVersion)
    bad("format version " + std::to_string(version) + " (this build reads version " +
        std::to_string(kFormatVersion) + ")");
  if (file_size != size)
    bad("truncated or extended: header says " + std::to_string(file_size) + " bytes, got " +
        std::to_string(size));
  h.take(kHeaderBytes - h.pos());
  if (nsec < 1 || nsec > kMaxSections) bad("section count " + std::to_string(nsec) + " out of range");
  const uint8_t* table = h.take(size_t(nsec) * kSectionEntryBytes);
  if (crc32(table, size_t(nsec) * kSectionEntryBytes) != table_crc) bad("section table checksum mismatch");
  Reader t(table, size_t(nsec) * kSectionEntryBytes, "section table");
  const uint64_t data_start = kHeaderBytes + uint64_t(nsec) * kSectionEntryBytes;
  std::vector<Section> secs;
  const Section* found[4] = {nullptr, nullptr, nullptr, nullptr};
  secs.reserve(nsec);
  for (uint32_t i = 0; i < nsec; ++i) {
    Section s;
    s.type = t.get<uint32_t>();
    t.get<uint32_t>();
    s.offset = t.get<uint64_t>();
    s.size = t.get<uint64_t>();
    const uint32_t crc = t.get<uint32_t>();
    t.get<uint32_t>();
    const std::string what = "section " + std::to_string(i);
    if (s.offset % 64 != 0) bad(what + ": offset not 64-byte aligned");
    if (s.offset < data_start || s.offset > size || s.size > size - s.offset)
      bad(what + ": outside the file");
    if (crc32(data + s.offset, static_cast<size_t>(s.size)) != crc) bad(what + ": checksum mismatch (corrupted file)");
    secs.push_back(s);
  }
  std::vector<Section> sorted = secs;
  std::sort(sorted.begin(), sorted.end(), [](const Section& a, const Section& b) { return a.offset < b.offset; });
  for (size_t i = 1; i < sorted.size(); ++i)
    if (sorted[i].offset < sorted[i - 1].offset + sorted[i - 1].size) bad("sections overlap");
  for (const Section& s : secs) {
    if (s.type < 1 || s.type > 3) continue;  // unknown sections are skipped (forward compatibility)
    if (found[s.type]) bad("section type " + std::to_string(s.type) + " appears twice");
    found[s.type] = &s;
  }
  for (uint32_t ty = 1; ty <= 3; ++ty)
    if (!found[ty]) bad("missing section type " + std::to_string(ty));

  ModelFile m;
  const Section& meta = *found[uint32_t(SectionType::meta)];
  // The JSON itself is parsed (with a depth limit) and checked in Python (deploy/engine.py).
  if (meta.size > kMaxMetaBytes)
    bad("metadata section of " + std::to_string(meta.size) + " bytes (limit " + std::to_string(kMaxMetaBytes) + ")");
  m.metadata.assign(reinterpret_cast<const char*>(data + meta.offset), static_cast<size_t>(meta.size));
  parse_blobs(data, *found[uint32_t(SectionType::blobs)], m);
  parse_graph(data, *found[uint32_t(SectionType::graph)], m);
  return m;
}

}  // namespace eo::rt
