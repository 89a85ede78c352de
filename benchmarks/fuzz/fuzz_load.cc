// libFuzzer harness for the .edgeopt loader (cpp/src/runtime): every input must either load (and
// then run) or throw FormatError. Anything else -- a sanitizer report, an uncaught exception, a
// crash, a leak -- is a bug. Build and run with benchmarks/fuzz/run.sh.
//
// Input = one mode byte + the file. Mode bit 0 set: the header, section-table and section CRC32s
// (and the size field) are recomputed first, so mutations reach the parsers behind the checksums
// instead of dying at the first CRC check.
#include <cstdint>
#include <cstring>
#include <vector>

#include "runtime/engine.h"
#include "runtime/format.h"

namespace {

void put32(std::vector<uint8_t>& b, size_t at, uint32_t v) { std::memcpy(b.data() + at, &v, 4); }
uint32_t get32(const std::vector<uint8_t>& b, size_t at) {
  uint32_t v;
  std::memcpy(&v, b.data() + at, 4);
  return v;
}
uint64_t get64(const std::vector<uint8_t>& b, size_t at) {
  uint64_t v;
  std::memcpy(&v, b.data() + at, 8);
  return v;
}

void fix_checksums(std::vector<uint8_t>& b) {
  using namespace eo::rt;
  if (b.size() < kHeaderBytes) return;
  const uint32_t n = get32(b, 12);
  if (n > kMaxSections || kHeaderBytes + size_t(n) * kSectionEntryBytes > b.size()) return;
  const uint64_t size = b.size();
  std::memcpy(b.data() + 16, &size, 8);
  for (uint32_t i = 0; i < n; ++i) {
    const size_t e = kHeaderBytes + i * kSectionEntryBytes;
    const uint64_t off = get64(b, e + 8), len = get64(b, e + 16);
    if (off <= b.size() && len <= b.size() - off) put32(b, e + 24, crc32(b.data() + off, len));
  }
  put32(b, 24, crc32(b.data() + kHeaderBytes, size_t(n) * kSectionEntryBytes));
  put32(b, 28, crc32(b.data(), 28));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::vector<uint8_t> file(data + 1, data + size);
  if (data[0] & 1) fix_checksums(file);
  try {
    eo::rt::Engine e(file.data(), file.size());
    int64_t macs = 0;
    for (const auto& s : e.summary()) macs += s.macs;
    // Run what loaded, unless it is big enough to make the fuzzer crawl (still bounded by limits).
    if (macs <= (int64_t(1) << 26) && e.peak_activation_bytes(2) <= (int64_t(1) << 26) &&
        e.input().elems() <= (1 << 20)) {
      const int64_t batch = 1 + (data[0] >> 1 & 1);
      std::vector<float> x(static_cast<size_t>(batch * e.input().elems()), 0.5f);
      std::vector<float> y(static_cast<size_t>(batch * e.output().elems()));
      e.run(x.data(), batch, y.data());
    }
  } catch (const eo::rt::FormatError&) {
  }
  return 0;
}
