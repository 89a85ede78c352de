// A loaded inference network: the ops of a .edgeopt file run in order over one activation arena.
//
//   Engine e(bytes, size);        parse + validate (format.h), build every op, plan memory
//   e.run(x, batch, y);           x: (batch, C, H, W) f32, y: (batch, output elems) f32
//
// The Engine keeps its own 64-byte aligned copy of the file: weight blobs are read in place from
// it (zero copy), and save() writes exactly those bytes back. run() is const and safe to call from
// several threads at once: each call takes an arena from a small pool (or allocates one), sets the
// tensor addresses for its batch from the memory plan, and runs the ops, which parallelise inside
// (common/parallel.h). The input is read in place, never written; the output is written in place
// into y (its ops write y directly; nothing is copied out).
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "runtime/format.h"
#include "runtime/op.h"
#include "runtime/plan.h"

namespace eo::rt {

struct OpSummary {
  std::string name, type, output, info;
  int64_t macs = 0, weight_bytes = 0, output_bytes = 0, arena_offset = -1;
};

class Engine {
 public:
  Engine(const uint8_t* data, size_t size);  // throws FormatError
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  const TensorDesc& input() const { return model_.tensors[model_.input]; }
  const TensorDesc& output() const { return model_.tensors[model_.output]; }
  const std::string& metadata() const { return model_.metadata; }
  const uint8_t* file_data() const { return file_; }
  size_t file_size() const { return size_; }
  size_t num_ops() const { return ops_.size(); }

  // x: batch images of input(); y: batch * output().elems() floats, not overlapping x (the ops
  // write y while others still read x; an op that throws leaves y partly written). batch >= 1.
  // If op_seconds is given (num_ops() entries), each op's wall time is added to it (profiling).
  void run(const float* x, int64_t batch, float* y, double* op_seconds = nullptr) const;

  int64_t peak_activation_bytes(int64_t batch) const { return plan_.bytes_per_image * batch; }
  int64_t workspace_bytes(int64_t batch) const;
  int64_t weight_bytes() const;
  std::vector<OpSummary> summary() const;

 private:
  struct Arena {
    uint8_t* p = nullptr;
    size_t cap = 0;
  };
  Arena* acquire(size_t bytes) const;
  void release(Arena* a) const;

  uint8_t* file_ = nullptr;
  size_t size_ = 0;
  ModelFile model_;
  std::vector<std::unique_ptr<Op>> ops_;
  MemoryPlan plan_;
  std::vector<int32_t> out_tensors_;  // written straight into the caller's output
  mutable std::mutex pool_mu_;
  mutable std::vector<Arena*> pool_;
};

}  // namespace eo::rt
