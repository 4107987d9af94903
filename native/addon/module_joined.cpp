// One forward for several callers' rows, in one stream job: each piece's rows [start, end) of its
// inputs joined along dim 0, the method run once, and every tensor of the output cut back into the
// pieces' rows. The engine's batcher used to spend a job (and a trip through the JS thread) per
// cut, join and split around each merged forward.
#include <ATen/ATen.h>

#include <cmath>

#include "errors.h"
#include "ivalues.h"
#include "module.h"
#include "module_run.h"
#include "precision.h"
#include "stream.h"
#include "tensor.h"

namespace ds {
namespace {

struct Piece {
  std::vector<at::Tensor> inputs;
  int64_t start = 0, end = 0;
};

int64_t bound(const Napi::Value& v, const std::string& what) {
  double x = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(x >= 0 && std::floor(x) == x && x < 9e15)) throw Error(code::kArgument, what + " must be a row index");
  return static_cast<int64_t>(x);
}

// Every tensor of `out` cut into the pieces' rows (copies); other values repeated for each piece.
std::vector<c10::IValue> cut(const c10::IValue& out, const std::vector<int64_t>& at, int64_t total) {
  size_t n = at.size() - 1;
  std::vector<c10::IValue> parts(n);
  if (out.isTensor()) {
    const at::Tensor& t = out.toTensor();
    if (t.dim() == 0 || t.size(0) != total)
      throw Error(code::kShape, "an output does not have the " + std::to_string(total) +
                                    " rows of its inputs; it cannot be batched");
    for (size_t i = 0; i < n; ++i) parts[i] = t.narrow(0, at[i], at[i + 1] - at[i]).clone();
  } else if (out.isTuple() || out.isList()) {
    std::vector<std::vector<c10::IValue>> items(n);
    auto each = [&](const c10::IValue& e) {
      auto c = cut(e, at, total);
      for (size_t i = 0; i < n; ++i) items[i].push_back(std::move(c[i]));
    };
    if (out.isTuple())
      for (const auto& e : out.toTupleRef().elements()) each(e);
    else
      for (const auto& e : out.toListRef()) each(e);
    for (size_t i = 0; i < n; ++i) parts[i] = c10::ivalue::Tuple::create(std::move(items[i]));
  } else {
    for (auto& p : parts) p = out;
  }
  return parts;
}

// Input k of every piece, cut to its rows and joined (the piece's own tensor when it is all of it).
at::Tensor joined(const std::vector<Piece>& pieces, size_t k) {
  std::vector<at::Tensor> rows;
  for (const auto& p : pieces) {
    const at::Tensor& t = p.inputs[k];
    rows.push_back(p.start == 0 && p.end == t.size(0) ? t : t.narrow(0, p.start, p.end - p.start));
  }
  return rows.size() == 1 ? rows[0] : at::cat(rows, 0);
}

}  // namespace

Napi::Value ModuleWrap::callJoined(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const Loaded& l = get();
    if (!info[1].IsArray() || info[1].As<Napi::Array>().Length() == 0)
      throw Error(code::kArgument, "callJoined(method, pieces): pieces must be a non-empty array");
    auto list = info[1].As<Napi::Array>();
    std::vector<Piece> pieces(list.Length());
    std::string name;
    const std::vector<c10::Argument>* args = nullptr;
    for (uint32_t i = 0; i < list.Length(); ++i) {
      std::string what = "piece " + std::to_string(i);
      Napi::Value v = list.Get(i);
      if (!v.IsArray() || v.As<Napi::Array>().Length() != 3 || !v.As<Napi::Array>().Get(0u).IsArray())
        throw Error(code::kArgument, what + " must be [inputs, start, end]");
      auto entry = v.As<Napi::Array>();
      auto inputs = entry.Get(0u).As<Napi::Array>();
      if (inputs.Length() == 0) throw Error(code::kArgument, what + ": callJoined takes tensors with rows only");
      // The method's schema once; again only for a piece whose input count differs (its error).
      if (i == 0 || inputs.Length() != pieces[0].inputs.size()) args = &target(info, inputs.Length(), name).arguments();
      if (i > 0 && inputs.Length() != pieces[0].inputs.size())
        throw Error(code::kArgument, what + " has " + std::to_string(inputs.Length()) + " inputs, piece 0 " +
                                         std::to_string(pieces[0].inputs.size()));
      for (uint32_t k = 0; k < inputs.Length(); ++k) {
        std::string arg = "argument '" + (*args)[k + 1].name() + "' of " + name + " (" + what + ")";
        c10::IValue x = toIValue(env, inputs.Get(k), (*args)[k + 1].type(), arg, l.device);
        if (!x.isTensor() || x.toTensor().dim() == 0)
          throw Error(code::kArgument, arg + ": callJoined takes tensors with rows only");
        pieces[i].inputs.push_back(x.toTensor());
      }
      pieces[i].start = bound(entry.Get(1u), what + " start");
      pieces[i].end = bound(entry.Get(2u), what + " end");
      for (const auto& t : pieces[i].inputs)
        if (pieces[i].end <= pieces[i].start || pieces[i].end > t.size(0))
          throw Error(code::kArgument, what + ": rows [" + std::to_string(pieces[i].start) + ", " +
                                           std::to_string(pieces[i].end) + ") are not within its inputs' " +
                                           std::to_string(t.size(0)) + " rows");
    }
    CallOptions o = options(info[3]);
    auto stream = StreamWrap::unwrap(env, info[2]);
    auto module = l.module;
    return stream->enqueue(env, [module, name, pieces, o]() -> Finish {
      std::vector<int64_t> at{0};
      for (const auto& p : pieces) at.push_back(at.back() + p.end - p.start);
      std::vector<c10::IValue> stack;
      for (size_t k = 0; k < pieces[0].inputs.size(); ++k) stack.push_back(joined(pieces, k));
      c10::IValue out = runMethod(module, name, std::move(stack), o);
      auto parts = std::make_shared<std::vector<c10::IValue>>(cut(out, at, at.back()));
      return [parts](Napi::Env env) -> Napi::Value {
        Napi::Array arr = Napi::Array::New(env, parts->size());
        for (size_t i = 0; i < parts->size(); ++i) arr.Set(i, fromIValue(env, (*parts)[i]));
        return arr;
      };
    });
  });
}

}  // namespace ds
