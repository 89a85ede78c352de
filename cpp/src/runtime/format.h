// The .edgeopt file: parsing and validation. The file is untrusted input: every offset, size and
// count is bounds-checked (overflow-safe), every section's CRC32 verified, every allocation capped
// by the file size or a fixed limit, and the graph checked for SSA order before any op is built.
// Anything wrong throws FormatError (ValueError in Python). Byte layout: runtime/README.md.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/op.h"

namespace eo::rt {

constexpr char kMagic[8] = {'E', 'D', 'G', 'E', 'O', 'P', 'T', '\0'};
constexpr uint32_t kFormatVersion = 1;
constexpr size_t kHeaderBytes = 64, kSectionEntryBytes = 32, kBlobEntryBytes = 64;
constexpr size_t kTensorEntryBytes = 32;
enum class SectionType : uint32_t { meta = 1, graph = 2, blobs = 3 };

// Limits a file must respect (generous for CNNs, small enough that a hostile file cannot make the
// loader allocate or loop without bound).
constexpr uint32_t kMaxSections = 64;
constexpr uint32_t kMaxTensors = 1 << 14, kMaxOps = 1 << 14, kMaxBlobs = 1 << 16;
constexpr uint32_t kMaxOpInputs = 16, kMaxAttrs = 64, kMaxNameLen = 512, kMaxKeyLen = 64;
constexpr int64_t kMaxDim = 1 << 24;                 // any c, h, w or blob dim
constexpr int64_t kMaxTensorBytes = int64_t(1) << 28;  // one image of one tensor
constexpr int64_t kMaxArenaBytesPerImage = int64_t(1) << 30;  // planned activations of one image
constexpr uint64_t kMaxMetaBytes = uint64_t(16) << 20;        // metadata JSON (= edgeopt._io.MAX_JSON_BYTES)

uint32_t crc32(const uint8_t* data, size_t n, uint32_t crc = 0);

struct ModelFile {
  std::vector<TensorDesc> tensors;
  int32_t input = 0, output = 0;
  std::vector<OpDef> ops;
  std::vector<Blob> blobs;   // data points into the parsed buffer
  std::string metadata;      // JSON text, opaque to C++
};

// data must be 64-byte aligned and outlive the result (blobs point into it).
ModelFile parse_model_file(const uint8_t* data, size_t size);

}  // namespace eo::rt
