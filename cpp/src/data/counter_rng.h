// Counter-based randomness for the data pipeline.
//
// Every random decision (the shuffle of an epoch, the crop offsets and flip bit of one image) is a
// pure function of (seed, epoch, index) instead of a draw from a shared generator state. That makes
// the results independent of the thread count and of the order in which images are processed, and
// lets a test ask for the decision of any image directly. The mixer is the SplitMix64 finalizer
// (Steele, Lea, Flood 2014): a bijection on 64-bit words with full avalanche, cheap enough to call
// once per image.
#pragma once
#include <cstdint>

namespace eo::data {

inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Distinct streams for distinct purposes, so the shuffle and the augmentation never correlate.
enum class Stream : uint64_t { kShuffle = 0x5348554646ull, kAugment = 0x4155474dull };

// A 64-bit key for (stream, seed, epoch, index). Each input goes through the mixer before the next
// is folded in, so neighbouring seeds/epochs/indices give unrelated keys.
inline uint64_t counter_key(Stream s, uint64_t seed, uint64_t epoch, uint64_t index) {
  const uint64_t golden = 0x9e3779b97f4a7c15ull;
  uint64_t k = mix64(static_cast<uint64_t>(s) + golden);
  k = mix64(k ^ (seed + golden));
  k = mix64(k ^ (epoch + 2 * golden));
  return mix64(k ^ (index + 3 * golden));
}

// Uniform integer in [0, range) from a 64-bit random word (Lemire's multiply-shift; the bias is
// below range / 2^64, far under anything a data pipeline could notice).
inline uint64_t bounded(uint64_t word, uint64_t range) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(word) * range) >> 64);
}

}  // namespace eo::data
