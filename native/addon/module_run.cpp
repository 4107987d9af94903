#include "module_run.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>
#include <omp.h>

#include <exception>

#include "precision.h"

namespace ds {
namespace {

// Rows shared by every input (all tensors with the same dim 0), else -1: such a call is not cut.
int64_t sharedRows(const std::vector<c10::IValue>& stack) {
  int64_t rows = -1;
  for (const auto& v : stack) {
    if (!v.isTensor() || v.toTensor().dim() == 0) return -1;
    int64_t n = v.toTensor().size(0);
    if (rows >= 0 && n != rows) return -1;
    rows = n;
  }
  return rows;
}

// The chunks' outputs joined along dim 0 (tuples element-wise); false when an output tensor does
// not have its chunk's rows, or is in a list, so the call runs whole instead.
bool join(const std::vector<c10::IValue>& parts, const std::vector<int64_t>& rows, c10::IValue& out) {
  const c10::IValue& first = parts[0];
  if (first.isTensor()) {
    std::vector<at::Tensor> ts;
    for (size_t i = 0; i < parts.size(); ++i) {
      if (!parts[i].isTensor()) return false;
      const at::Tensor& t = parts[i].toTensor();
      if (t.dim() == 0 || t.size(0) != rows[i]) return false;
      ts.push_back(t);
    }
    out = at::cat(ts, 0);
    return true;
  }
  if (first.isList()) return false;  // lists are not joined: such a call runs whole
  if (!first.isTuple()) {
    out = first;
    return true;
  }
  std::vector<c10::IValue> items;
  for (size_t k = 0; k < first.toTupleRef().elements().size(); ++k) {
    std::vector<c10::IValue> column;
    for (const auto& p : parts) column.push_back(p.toTupleRef().elements()[k]);
    c10::IValue joined;
    if (!join(column, rows, joined)) return false;
    items.push_back(std::move(joined));
  }
  out = c10::ivalue::Tuple::create(std::move(items));
  return true;
}

c10::IValue runWhole(torch::jit::Module& m, const std::string& name, std::vector<c10::IValue> stack,
                     Precision precision) {
  c10::InferenceMode inference;
  AutocastScope autocast(precision);
  return m.get_method(name)(std::move(stack));
}

// The rows cut into `chunks` pieces, each run on one OpenMP thread (libtorch and oneDNN run their
// ops serially inside a parallel region); false when an output could not be joined back.
bool runChunked(torch::jit::Module& m, const std::string& name, const std::vector<c10::IValue>& stack,
                const CallOptions& o, int64_t rows, int chunks, c10::IValue& out) {
  std::vector<int64_t> at(chunks + 1, 0), counts(chunks);
  for (int k = 0; k < chunks; ++k) at[k + 1] = rows * (k + 1) / chunks, counts[k] = at[k + 1] - at[k];
  std::vector<c10::IValue> parts(chunks);
  std::vector<std::exception_ptr> errors(chunks);
#pragma omp parallel for num_threads(chunks) schedule(static, 1)
  for (int k = 0; k < chunks; ++k) {
    try {
      std::vector<c10::IValue> piece;
      for (const auto& v : stack) piece.push_back(v.toTensor().narrow(0, at[k], counts[k]));
      parts[k] = runWhole(m, name, std::move(piece), o.precision);
    } catch (...) {
      errors[k] = std::current_exception();
    }
  }
  for (const auto& e : errors)
    if (e) std::rethrow_exception(e);
  return join(parts, counts, out);
}

}  // namespace

c10::IValue runMethod(const std::shared_ptr<torch::jit::Module>& module, const std::string& name,
                      std::vector<c10::IValue> stack, const CallOptions& o) {
  ThreadCap cap(o.threads);
  int64_t rows = o.chunkRows > 0 ? sharedRows(stack) : -1;
  int chunks = rows > 0 ? static_cast<int>(std::min<int64_t>(omp_get_max_threads(), rows / o.chunkRows)) : 1;
  c10::IValue out;
  if (chunks < 2 || !runChunked(*module, name, stack, o, rows, chunks, out))
    out = runWhole(*module, name, std::move(stack), o.precision);
  return o.precision != Precision::kFp32 ? toFloat32(out) : out;
}

}  // namespace ds
