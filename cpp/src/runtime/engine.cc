#include "runtime/engine.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <new>

#include "common/parallel.h"

namespace eo::rt {
namespace {

constexpr size_t kPoolKeep = 8;  // idle arenas kept for reuse

uint8_t* aligned_bytes(size_t n) {
  void* p = std::aligned_alloc(64, (std::max<size_t>(n, 1) + 63) / 64 * 64);
  if (!p) throw std::bad_alloc();
  return static_cast<uint8_t*>(p);
}

}  // namespace

Engine::Engine(const uint8_t* data, size_t size) {
  file_ = aligned_bytes(size);
  size_ = size;
  if (size) std::memcpy(file_, data, size);
  try {
    model_ = parse_model_file(file_, size_);
    const size_t nt = model_.tensors.size();
    std::vector<PlanTensor> pt(nt);
    for (size_t i = 0; i < model_.ops.size(); ++i) {
      const OpDef& d = model_.ops[i];
      const OpTypeInfo* info = find_op_type(d.type);
      if (!info) {
        std::string known;
        for (const OpTypeInfo& t : op_types()) known += (known.empty() ? "" : ", ") + std::string(t.name);
        throw FormatError("op '" + d.name + "': unknown op type id " + std::to_string(d.type) +
                          " (this build runs: " + known + ")");
      }
      BuildContext ctx{d, model_.tensors, model_.blobs};
      std::unique_ptr<Op> op = info->make(ctx);
      const int32_t idx = static_cast<int32_t>(i);
      PlanTensor& o = pt[d.output];
      o.first = o.last = idx;
      if (op->is_alias()) {
        o.alias = d.inputs.at(0);
      } else {
        o.bytes = model_.tensors[d.output].bytes();
      }
      for (int32_t t : d.inputs) pt[t].last = std::max(pt[t].last, idx);
      ops_.push_back(std::move(op));
    }
    // Tensors with one reader (counted once per input slot) that is not the model's output: their
    // writer and reader may agree on another form of them (Op::hand_off_to).
    std::vector<int32_t> readers(nt, 0), reader(nt, -1);
    for (size_t i = 0; i < model_.ops.size(); ++i)
      for (int32_t t : model_.ops[i].inputs) ++readers[size_t(t)], reader[size_t(t)] = int32_t(i);
    for (size_t i = 0; i < model_.ops.size(); ++i) {
      const int32_t t = model_.ops[i].output, j = reader[size_t(t)];
      if (t != model_.output && readers[size_t(t)] == 1 && model_.ops[size_t(j)].inputs[0] == t)
        ops_[i]->hand_off_to(*ops_[size_t(j)], model_.tensors[size_t(t)].bytes());
    }
    const auto root = [&](int32_t t) {  // the tensor whose buffer t is
      while (pt[t].alias >= 0) t = pt[t].alias;
      return t;
    };
    // The input is the caller's x and the output's buffer (with every alias of it) the caller's
    // y, both outside the arena. So run() copies nothing out, and y's rows are written by the
    // threads that computed them: a one-op Engine whose caller copied the output moved a worker's
    // half of it between cores on every call, and the worker's next writes then waited on the
    // caller's copy of those lines. An output that is the input's buffer is copied.
    const int32_t out_root = root(model_.output);
    pt[model_.input].bytes = 0;
    pt[out_root].bytes = 0;
    plan_ = plan_memory(pt);
    for (size_t t = 0; t < nt; ++t) {
      const int32_t r = root(int32_t(t));
      if (r == model_.input) plan_.offset[t] = -1;
      if (r == out_root && out_root != model_.input) out_tensors_.push_back(int32_t(t));
    }
    if (plan_.bytes_per_image > kMaxArenaBytesPerImage)
      throw FormatError("edgeopt file: planned activations of " + std::to_string(plan_.bytes_per_image) +
                        " bytes per image exceed the limit of " + std::to_string(kMaxArenaBytesPerImage));
  } catch (...) {
    std::free(file_);
    file_ = nullptr;
    throw;
  }
}

Engine::~Engine() {
  for (Arena* a : pool_) {
    std::free(a->p);
    delete a;
  }
  std::free(file_);
}

int64_t Engine::workspace_bytes(int64_t batch) const {
  size_t ws = 0;
  for (const auto& op : ops_) ws = std::max(ws, op->workspace_bytes(batch));
  return static_cast<int64_t>((ws + 63) / 64 * 64);
}

int64_t Engine::weight_bytes() const {
  int64_t w = 0;
  for (const auto& op : ops_) w += op->weight_bytes();
  return w;
}

Engine::Arena* Engine::acquire(size_t bytes) const {
  Arena* a = nullptr;
  {
    std::lock_guard<std::mutex> lock(pool_mu_);
    if (!pool_.empty()) {
      // Best fit: the smallest arena that is large enough, else the largest one (to grow).
      size_t best = pool_.size();
      for (size_t i = 0; i < pool_.size(); ++i)
        if (pool_[i]->cap >= bytes && (best == pool_.size() || pool_[i]->cap < pool_[best]->cap)) best = i;
      if (best == pool_.size())
        best = std::max_element(pool_.begin(), pool_.end(), [](Arena* x, Arena* y) { return x->cap < y->cap; }) -
               pool_.begin();
      a = pool_[best];
      pool_.erase(pool_.begin() + best);
    }
  }
  if (!a) a = new Arena;
  if (a->cap < bytes) {
    std::free(a->p);
    a->p = nullptr;
    a->cap = 0;
    try {
      a->p = aligned_bytes(bytes);
    } catch (...) {
      delete a;
      throw;
    }
    a->cap = bytes;
  }
  return a;
}

void Engine::release(Arena* a) const {
  std::lock_guard<std::mutex> lock(pool_mu_);
  if (pool_.size() < kPoolKeep) {
    pool_.push_back(a);
    return;
  }
  std::free(a->p);
  delete a;
}

void Engine::run(const float* x, int64_t batch, float* y, double* op_seconds) const {
  // Pins the thread count before the workspace is sized from it, and runs every op's parallel
  // loops on the same spinning workers.
  const TeamScope team;
  const int64_t act = plan_.bytes_per_image * batch, ws = workspace_bytes(batch);
  Arena* arena = acquire(static_cast<size_t>(act + ws));
  struct Release {
    const Engine* e;
    Arena* a;
    ~Release() { e->release(a); }
  } guard{this, arena};

  std::vector<void*> ptr(model_.tensors.size(), nullptr);
  for (size_t t = 0; t < ptr.size(); ++t)
    ptr[t] = plan_.offset[t] >= 0 ? static_cast<void*>(arena->p + plan_.offset[t] * batch)
                                  : static_cast<void*>(const_cast<float*>(x));
  for (int32_t t : out_tensors_) ptr[size_t(t)] = y;
  RunContext ctx;
  ctx.batch = batch;
  ctx.tensors = ptr.data();
  ctx.workspace = arena->p + act;
  for (size_t i = 0; i < ops_.size(); ++i) {
    if (ops_[i]->is_alias()) continue;
    if (!op_seconds) {
      ops_[i]->run(ctx);
      continue;
    }
    const auto t0 = std::chrono::steady_clock::now();
    ops_[i]->run(ctx);
    op_seconds[i] += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  if (out_tensors_.empty()) std::memcpy(y, ptr[model_.output], static_cast<size_t>(output().bytes() * batch));
}

std::vector<OpSummary> Engine::summary() const {
  std::vector<OpSummary> rows;
  for (const auto& op : ops_) {
    OpSummary s;
    s.name = op->name();
    s.type = op->type_name();
    s.output = model_.tensors[op->output()].str();
    s.info = op->info();
    s.macs = op->macs_per_image();
    s.weight_bytes = op->weight_bytes();
    s.output_bytes = op->is_alias() ? 0 : model_.tensors[op->output()].bytes();
    s.arena_offset = plan_.offset[op->output()];
    rows.push_back(std::move(s));
  }
  return rows;
}

}  // namespace eo::rt
