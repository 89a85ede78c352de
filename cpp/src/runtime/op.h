// The deploy runtime's operator interface: what an inference op sees when it is built from a
// .edgeopt file and when it runs.
//
// An Engine (engine.h) is a list of Ops run in order over tensors identified by small integers.
// Tensor 0 is the network input; every op reads tensors defined earlier and defines exactly one
// new tensor (SSA). Shapes are per image: the batch is a run-time argument, so one loaded Engine
// serves any batch and several callers at once.
//
// Ops are immutable after construction. `run` is const and keeps all per-call state in the
// RunContext (tensor addresses, workspace), which is what makes concurrent Engine::run calls safe:
// weights are shared read-only, every call has its own activation arena. An op that wants derived
// weight data built lazily (e.g. per ISA) must build it under std::call_once.
//
// Adding an op: see runtime/README.md. In short: pick an id in the OpType table below, write a
// factory `std::unique_ptr<Op> make_<name>(const BuildContext&)` in an ops_<dtype>_<name>.cc file
// that validates *everything* it reads from the file (attrs, blob types and shapes, input tensor
// descriptions, the declared output description) and throws FormatError otherwise, then add one
// line to the table in op_table.cc.
#pragma once
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace eo::rt {

// A malformed or hostile file (or a graph this build cannot run). Becomes ValueError in Python.
struct FormatError : std::runtime_error {
  explicit FormatError(const std::string& what) : std::runtime_error(what) {}
};

// ------------------------------------------------------------------------------------ tensors
enum class DType : uint8_t { f32 = 1, u8 = 2, i8 = 3, i32 = 4 };
enum class Layout : uint8_t { nchw = 1, nhwc = 2 };
const char* dtype_name(DType t);
size_t dtype_size(DType t);

// One image of a tensor. rank is 4 (N, C, H, W) or 2 (N, C; then h = w = 1). Quantized tensors
// (u8, i8) carry real = scale * (q - zero_point); f32 tensors have scale 1, zero_point 0.
struct TensorDesc {
  DType dtype = DType::f32;
  Layout layout = Layout::nchw;
  uint8_t rank = 4;
  int64_t c = 1, h = 1, w = 1;
  float scale = 1.f;
  int32_t zero_point = 0;

  int64_t elems() const { return c * h * w; }                // per image
  int64_t bytes() const { return elems() * static_cast<int64_t>(dtype_size(dtype)); }
  bool same_shape(const TensorDesc& o) const {
    return dtype == o.dtype && layout == o.layout && c == o.c && h == o.h && w == o.w;
  }
  std::string str() const;  // e.g. "f32 nchw (16, 32, 32)"
};

// ------------------------------------------------------------------------------------ weights
// Blob type tags of the file's weight blobs. Plain element types hold a dense row-major array of
// prod(dims) elements. The compressed encodings are reserved tags whose byte layout is defined by
// the ops that read them (sparse / binary / clustering helpers); the loader only checks that their
// bytes lie inside the file and leaves the rest to those ops.
enum class BlobType : uint8_t {
  f32 = 1,
  f16 = 2,   // IEEE binary16
  i8 = 3,    // symmetric int8 (scales in a separate f32 blob)
  u8 = 4,
  i32 = 5,   // e.g. int8 biases
  i4 = 6,    // 4-bit two's complement codes, bit-packed per row (dims[0] rows of prod(dims[1:]) codes,
  i2 = 7,    // ceil(codes * bits / 8) bytes each, lowbit/lowbit.h layout); scales in an f32 blob
  i1 = 8,    // the same with 1-bit {-1, +1} codes (bit 1 = +1): binary weights
  // reserved encodings (layout defined by their ops):
  sparse_f32 = 16,    // sparse-packed f32 weights (e.g. CSR / block-sparse)
  bitpacked_b1 = 17,  // 1-bit weights, bit-packed, with scales
  clustered = 18,     // cluster indices + codebook
  sparse_i8 = 19,     // sparse-packed int8 weights
  opaque = 31,        // any other op-defined bytes
};
const char* blob_type_name(BlobType t);
bool blob_type_is_dense(BlobType t);  // f32, f16, i8, u8, i32
size_t blob_elem_size(BlobType t);    // dense types only

// A weight blob as loaded: `data` points into the engine's copy of the file (64-byte aligned),
// read-only and valid for the engine's lifetime. For dense types bytes == count() * elem size.
struct Blob {
  BlobType type = BlobType::f32;
  std::vector<int64_t> dims;
  const uint8_t* data = nullptr;
  size_t bytes = 0;
  int64_t count() const;
  template <class T>
  const T* as() const { return reinterpret_cast<const T*>(data); }
};

// ------------------------------------------------------------------------------------ graph
// Activation codes for fused epilogues and the standalone activation op.
enum class Act : int { none = 0, relu = 1, relu6 = 2, hardswish = 3, hardsigmoid = 4, sigmoid = 5 };
const char* act_name(Act a);

// Op type ids as stored in the file: the one list of them. Python reads them from the op table
// (_core.runtime_op_types(), deploy/format.py OpType). Ranges are reserved per family so ids
// never collide.
enum class OpType : uint32_t {
  // fp32 core (runtime/ops_f32_*.cc); conv2d and linear also take f16 and int8 weights.
  conv2d = 1,
  linear = 2,
  maxpool2d = 3,
  avgpool2d = 4,
  global_avgpool2d = 5,
  add = 6,
  channel_scale = 7,
  activation = 8,
  flatten = 9,
  channel_affine = 10,  // y = x * scale[c] + shift[c] (a BatchNorm that could not be folded)
  // 100..199: int8-full (runtime/ops_qs8_*.cc)
  qs8_quantize = 100,
  qs8_dequantize = 101,
  qs8_conv2d = 102,
  qs8_add = 103,
  qs8_lut = 104,
  qs8_channel_scale = 105,
  qs8_maxpool2d = 106,
  qs8_avgpool2d = 107,
  qs8_global_avgpool2d = 108,
  qs8_flatten = 109,
  // 200..299: sparse (runtime/ops_sparse_*.cc)
  sparse_conv1x1 = 200,
  sparse_linear = 201,
  // 300..399: binary / multi-bit (runtime/ops_binary_*.cc)
  b1_conv2d = 300,
  // 400..499: clustered weights
};

// Typed attributes of one op, as read from the file. Getters validate and throw FormatError naming
// the op and the key: a missing key, a wrong kind, a count or a value out of range.
class Attrs {
 public:
  enum class Kind : uint8_t { ints = 1, floats = 2, str = 3, blobs = 4 };
  struct Entry {
    std::string key;
    Kind kind;
    std::vector<int64_t> i;  // ints, or blob ids
    std::vector<double> f;
    std::string s;
  };

  void set_owner(const std::string& op_name) { owner_ = op_name; }
  void add(Entry e) { entries_.push_back(std::move(e)); }
  const std::vector<Entry>& entries() const { return entries_; }
  bool has(const char* key) const { return find(key) != nullptr; }

  int64_t get_int(const char* key, int64_t lo, int64_t hi) const;
  int64_t get_int(const char* key, int64_t lo, int64_t hi, int64_t fallback) const;  // if absent
  std::vector<int64_t> get_ints(const char* key, size_t count, int64_t lo, int64_t hi) const;
  double get_float(const char* key, double lo, double hi) const;  // finite, in [lo, hi]
  std::vector<double> get_floats(const char* key, size_t count, double lo, double hi) const;
  std::string get_str(const char* key, size_t max_len) const;
  int64_t get_blob_id(const char* key) const;  // one blob id (range-checked by BuildContext)

 private:
  const Entry* find(const char* key) const;
  const Entry& need(const char* key, Kind kind) const;
  [[noreturn]] void fail(const char* key, const std::string& what) const;
  std::vector<Entry> entries_;
  std::string owner_;
};

struct OpDef {
  uint32_t type = 0;
  std::string name;               // the layer path, for messages and summary()
  std::vector<int32_t> inputs;    // tensor ids, each defined before this op
  int32_t output = -1;            // a tensor id not defined before
  Attrs attrs;
};

// What an op factory sees at load time. Helpers throw FormatError naming the op.
struct BuildContext {
  const OpDef& def;
  const std::vector<TensorDesc>& tensors;  // declared descriptions, by tensor id
  const std::vector<Blob>& blobs;

  size_t num_inputs() const { return def.inputs.size(); }
  const TensorDesc& input(size_t i) const { return tensors[def.inputs[i]]; }
  const TensorDesc& output() const { return tensors[def.output]; }
  // Throws unless the op has between lo and hi inputs.
  void expect_inputs(size_t lo, size_t hi) const;
  // Throws unless input i is f32 NCHW (the fp32 ops' contract).
  void expect_f32_input(size_t i) const;
  // Throws unless the declared output equals `computed` (dtype, layout, c, h, w, and rank unless
  // rank == 0). Ops compute their output description from inputs + attrs and check it here, so a
  // file cannot make an op write past its output buffer.
  void expect_output(const TensorDesc& computed) const;
  // Whether input 1 is there: a fused skip connection, which must be f32 NCHW shaped like the
  // (checked) output.
  bool f32_residual_input() const;
  // The blob named by attr `key`: type must be one of `types`; dims must equal `dims` (-1 = any)
  // unless dims is empty. Optional variant returns nullptr if the attr is absent.
  const Blob& blob(const char* key, std::initializer_list<BlobType> types,
                   std::initializer_list<int64_t> dims) const;
  const Blob* optional_blob(const char* key, std::initializer_list<BlobType> types,
                            std::initializer_list<int64_t> dims) const;
  [[noreturn]] void fail(const std::string& what) const;
};

// Per call: addresses of every tensor (batch images each, contiguous) and a scratch workspace of at
// least workspace_bytes(batch) bytes (64-byte aligned) that only this op uses during its run.
struct RunContext {
  int64_t batch = 0;
  void* const* tensors = nullptr;  // tensors[id]
  uint8_t* workspace = nullptr;
};

class Op {
 public:
  explicit Op(const OpDef& def) : name_(def.name), inputs_(def.inputs), output_(def.output) {}
  virtual ~Op() = default;

  virtual const char* type_name() const = 0;
  virtual void run(const RunContext& ctx) const = 0;
  // Bytes of private workspace for a call of `batch` images (independent of the thread count).
  virtual size_t workspace_bytes(int64_t batch) const { return 0; }
  // true: the output is the input 0 buffer reinterpreted (flatten); the planner aliases them and
  // run() is not called.
  virtual bool is_alias() const { return false; }
  // For summary(): multiply-accumulates per image, bytes of weights held, a short attr string.
  virtual int64_t macs_per_image() const { return 0; }
  virtual int64_t weight_bytes() const { return 0; }
  virtual std::string info() const { return ""; }
  // At load, before any run, for an op whose output only `reader` reads (as its input 0) and that
  // is not the model's output: the two may agree on another form of that tensor within its
  // tensor_bytes per image (the binary convs' bit planes). Returns whether they did.
  virtual bool hand_off_to(Op& reader, int64_t tensor_bytes) { return false; }

  const std::string& name() const { return name_; }
  const std::vector<int32_t>& inputs() const { return inputs_; }
  int32_t output() const { return output_; }

 protected:
  template <class T = float>
  const T* in(const RunContext& ctx, size_t i) const {
    return static_cast<const T*>(ctx.tensors[inputs_[i]]);
  }
  template <class T = float>
  T* out(const RunContext& ctx) const {
    return static_cast<T*>(ctx.tensors[output_]);
  }

  std::string name_;
  std::vector<int32_t> inputs_;
  int32_t output_;
};

using OpFactory = std::unique_ptr<Op> (*)(const BuildContext&);
struct OpTypeInfo {
  uint32_t id;
  const char* name;
  OpFactory make;
};
// Whether loading Engines lets binary convs hand off bit planes (ops_binary_b1.cc; on by default).
// The setter returns the previous value: tests compare Engines with and without.
bool plane_links_enabled();
bool set_plane_links_enabled(bool on);

// The op table (op_table.cc); nullptr for an id this build does not know.
const OpTypeInfo* find_op_type(uint32_t id);
const std::vector<OpTypeInfo>& op_types();

}  // namespace eo::rt
