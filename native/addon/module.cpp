#include "module.h"

#include <cerrno>
#include <cstring>
#include <fstream>

#include "device.h"
#include "errors.h"
#include "instance.h"
#include "call_options.h"
#include "precision.h"
#include "stream.h"
#include "tensor.h"

namespace ds {

Napi::Function ModuleWrap::define(Napi::Env env) {
  return DefineClass(env, "Module",
                     {InstanceMethod<&ModuleWrap::call>("call"),
                      InstanceMethod<&ModuleWrap::schema>("schema"),
                     InstanceMethod<&ModuleWrap::optimize>("optimize"),
                      InstanceMethod<&ModuleWrap::dispose>("dispose"),
                      InstanceAccessor<&ModuleWrap::card>("card"),
                      InstanceAccessor<&ModuleWrap::methods>("methods"),
                      InstanceAccessor<&ModuleWrap::device>("device"),
                      InstanceAccessor<&ModuleWrap::path>("path")});
}

ModuleWrap::ModuleWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ModuleWrap>(info) {
  if (info.Length() != 1 || !info[0].IsExternal())
    throw jsError(info.Env(), code::kArgument, "modules are made by loadModule()");
  loaded_ = std::make_unique<Loaded>(*info[0].As<Napi::External<Loaded>>().Data());
}

const ModuleWrap::Loaded& ModuleWrap::get() const {
  if (!loaded_) throw Error(code::kDisposed, "module was disposed; load it again");
  return *loaded_;
}

namespace {

std::string firstLine(const std::string& s) {
  auto end = s.find('\n');
  return end == std::string::npos ? s : s.substr(0, end);
}

}  // namespace

Napi::Value ModuleWrap::load(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    if (!info[0].IsString()) throw Error(code::kArgument, "loadModule(path): path must be a string");
    std::string path = info[0].As<Napi::String>().Utf8Value();
    c10::Device device = deviceOption(info[1]);
    auto stream = StreamWrap::unwrap(info.Env(), info[2]);
    return stream->enqueue(info.Env(), [path, device]() -> Finish {
      {
        std::ifstream probe(path, std::ios::binary);
        if (!probe)
          throw Error(code::kModelLoad, "cannot read model file '" + path + "': " + std::strerror(errno));
      }
      auto loaded = std::make_shared<Loaded>();
      loaded->path = path;
      loaded->device = device;
      torch::jit::ExtraFilesMap extra{{"model.json", ""}};
      try {
        loaded->module = std::make_shared<torch::jit::Module>(torch::jit::load(path, device, extra));
      } catch (const c10::Error& e) {
        throw Error(code::kModelLoad, "'" + path + "' is not a loadable TorchScript archive: " +
                                          firstLine(e.what_without_backtrace()));
      }
      loaded->module->eval();
      loaded->card = extra["model.json"];
      loaded->hasCard = !loaded->card.empty();
      return [loaded](Napi::Env env) -> Napi::Value {
        Napi::External<Loaded> ext = Napi::External<Loaded>::New(env, loaded.get());
        return Instance::get(env)->moduleClass.New({ext});
      };
    });
  });
}

namespace {

std::string typeName(const Napi::Value& v) {
  if (v.IsUndefined()) return "undefined";
  if (v.IsNull()) return "null";
  if (v.IsNumber()) return "number";
  if (v.IsBoolean()) return "boolean";
  if (v.IsString()) return "string";
  if (v.IsBigInt()) return "bigint";
  if (v.IsArray()) return "array";
  return "object";
}

// JS argument -> IValue, following the method's declared argument type.
c10::IValue toIValue(Napi::Env env, const Napi::Value& v, const c10::TypePtr& type, const std::string& what,
                     c10::Device device) {
  using K = c10::TypeKind;
  K kind = type->kind();
  if (kind == K::OptionalType) {
    if (v.IsUndefined() || v.IsNull()) return c10::IValue();
    return toIValue(env, v, type->expectRef<c10::OptionalType>().getElementType(), what, device);
  }
  auto mismatch = [&] {
    return Error(code::kArgument, what + " must be " + type->annotation_str() + ", got " + typeName(v));
  };
  switch (kind) {
    case K::TensorType: {
      if (!TensorWrap::isTensor(env, v)) throw mismatch();
      at::Tensor t = TensorWrap::unwrap(env, v, what);
      if (t.device() != device)
        throw Error(code::kDevice, what + " is on " + t.device().str() + " but the module is on " + device.str() +
                                       "; move it with tensor.to('" + device.str() + "')");
      return t;
    }
    case K::IntType:
      if (v.IsBigInt()) {
        bool lossless = true;
        return v.As<Napi::BigInt>().Int64Value(&lossless);
      }
      if (v.IsNumber()) {
        double x = v.As<Napi::Number>().DoubleValue();
        if (std::floor(x) != x) throw Error(code::kArgument, what + " must be an integer, got " + std::to_string(x));
        return static_cast<int64_t>(x);
      }
      throw mismatch();
    case K::FloatType:
      if (!v.IsNumber()) throw mismatch();
      return v.As<Napi::Number>().DoubleValue();
    case K::NumberType:
      if (!v.IsNumber()) throw mismatch();
      return v.As<Napi::Number>().DoubleValue();
    case K::BoolType:
      if (!v.IsBoolean()) throw mismatch();
      return v.As<Napi::Boolean>().Value();
    case K::StringType:
      if (!v.IsString()) throw mismatch();
      return v.As<Napi::String>().Utf8Value();
    case K::ListType: {
      if (!v.IsArray()) throw mismatch();
      auto elem = type->expectRef<c10::ListType>().getElementType();
      auto arr = v.As<Napi::Array>();
      c10::impl::GenericList list(elem);
      for (uint32_t i = 0; i < arr.Length(); ++i)
        list.push_back(toIValue(env, arr.Get(i), elem, what + "[" + std::to_string(i) + "]", device));
      return list;
    }
    default:
      throw Error(code::kArgument, what + ": arguments of type " + type->annotation_str() +
                                       " are not supported from JS");
  }
}

Napi::Value fromIValue(Napi::Env env, const c10::IValue& v) {
  if (v.isTensor()) return TensorWrap::wrap(env, v.toTensor());
  if (v.isTuple() || v.isList()) {
    std::vector<c10::IValue> items;
    if (v.isTuple()) {
      for (const auto& e : v.toTupleRef().elements()) items.push_back(e);
    } else {
      for (const auto& e : v.toListRef()) items.push_back(e);
    }
    auto arr = Napi::Array::New(env, items.size());
    for (size_t i = 0; i < items.size(); ++i) arr.Set(i, fromIValue(env, items[i]));
    return arr;
  }
  if (v.isDouble()) return Napi::Number::New(env, v.toDouble());
  if (v.isInt()) return Napi::Number::New(env, static_cast<double>(v.toInt()));
  if (v.isBool()) return Napi::Boolean::New(env, v.toBool());
  if (v.isString()) return Napi::String::New(env, v.toStringRef());
  if (v.isNone()) return env.Null();
  throw Error(code::kArgument, "the method returned a " + v.tagKind() + ", which JS cannot receive");
}

std::string signature(const c10::FunctionSchema& schema) {
  std::string s;
  const auto& args = schema.arguments();
  for (size_t i = 1; i < args.size(); ++i) s += (i > 1 ? ", " : "") + args[i].name();
  return schema.name() + "(" + s + ")";
}

}  // namespace

// call(method, inputs[], stream?, { precision, threads }?) -> Promise<Tensor | value | array>
Napi::Value ModuleWrap::call(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const Loaded& l = get();
    if (!info[0].IsString()) throw Error(code::kArgument, "call(method, inputs): method must be a string");
    std::string name = info[0].As<Napi::String>().Utf8Value();
    auto method = l.module->find_method(name);
    if (!method)
      throw Error(code::kArgument, "the module '" + l.path + "' has no method '" + name + "'");
    if (!info[1].IsArray()) throw Error(code::kArgument, "call(method, inputs): inputs must be an array");
    auto inputs = info[1].As<Napi::Array>();
    const c10::FunctionSchema& schema = method->function().getSchema();
    const auto& args = schema.arguments();  // args[0] is self
    size_t maxArgs = args.size() - 1, minArgs = 0;
    for (size_t i = 1; i < args.size(); ++i)
      if (!args[i].default_value()) minArgs = i;
    if (inputs.Length() < minArgs || inputs.Length() > maxArgs)
      throw Error(code::kArity, signature(schema) + " takes " +
                                    (minArgs == maxArgs ? std::to_string(maxArgs)
                                                        : std::to_string(minArgs) + " to " + std::to_string(maxArgs)) +
                                    " input(s), got " + std::to_string(inputs.Length()));
    std::vector<c10::IValue> stack;
    stack.reserve(inputs.Length());
    for (uint32_t i = 0; i < inputs.Length(); ++i)
      stack.push_back(toIValue(env, inputs.Get(i), args[i + 1].type(),
                               "argument '" + args[i + 1].name() + "' of " + name, l.device));
    CallOptions opts = callOptions(info[3]);
    Precision precision = opts.precision;
    int threads = l.device.is_cpu() ? opts.threads : 0;
    if (precision == Precision::kBf16 && !l.device.is_cpu())
      throw Error(code::kArgument, "precision 'bf16' is for CPU modules; this one is on " + l.device.str());
    auto stream = StreamWrap::unwrap(env, info[2]);
    auto module = l.module;
    return stream->enqueue(env, [module, name, stack, precision, threads]() mutable -> Finish {
      c10::IValue out;
      {
        ThreadCap cap(threads);
        AutocastScope autocast(precision);
        out = module->get_method(name)(std::move(stack));
      }
      if (precision != Precision::kFp32) out = toFloat32(out);
      return [out](Napi::Env env) { return fromIValue(env, out); };
    });
  });
}

// freeze keeps only the attributes a method assigns: a copy with any would count, cache or
// advance on its own, apart from the module it stands in for.
static void refuseMutableState(const torch::jit::Module& frozen, const std::string& path) {
  for (const auto& a : frozen.named_attributes(/*recurse=*/true)) {
    const std::string& n = a.name;
    bool training = n == "training" || (n.size() > 9 && n.compare(n.size() - 9, 9, ".training") == 0);
    if (a.value.isModule() || training) continue;
    throw Error(code::kModelLoad, "'" + path + "' changes its own state in a method (" + n +
                                      "): a frozen copy would keep that state apart from the module");
  }
}

// optimize({ inference }?, stream?) -> Promise<Module>: a frozen copy (torch::jit::freeze, every
// method kept), with optimize_for_inference's graph passes too when inference is true. The
// module itself is left as it was.
Napi::Value ModuleWrap::optimize(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    const Loaded& l = get();
    bool inference = false;
    if (info[0].IsObject()) {
      Napi::Value v = info[0].As<Napi::Object>().Get("inference");
      if (!v.IsUndefined() && !v.IsBoolean()) throw Error(code::kArgument, "optimize(): inference must be a boolean");
      inference = v.IsBoolean() && v.As<Napi::Boolean>().Value();
    } else if (!info[0].IsUndefined()) {
      throw Error(code::kArgument, "optimize(options): options must be an object");
    }
    auto stream = StreamWrap::unwrap(info.Env(), info[1]);
    auto source = std::make_shared<Loaded>(l);
    return stream->enqueue(info.Env(), [source, inference]() -> Finish {
      std::vector<std::string> others;
      for (const auto& m : source->module->get_methods())
        if (m.name() != "forward") others.push_back(m.name());
      auto out = std::make_shared<Loaded>(*source);
      try {
        torch::jit::Module frozen = torch::jit::freeze(*source->module, others);
        if (inference) frozen = torch::jit::optimize_for_inference(frozen, others);
        refuseMutableState(frozen, source->path);
        out->module = std::make_shared<torch::jit::Module>(std::move(frozen));
      } catch (const c10::Error& e) {
        throw Error(code::kModelLoad, "'" + source->path + "' cannot be frozen: " +
                                          firstLine(e.what_without_backtrace()));
      }
      return [out](Napi::Env env) -> Napi::Value {
        Napi::External<Loaded> ext = Napi::External<Loaded>::New(env, out.get());
        return Instance::get(env)->moduleClass.New({ext});
      };
    });
  });
}

Napi::Value ModuleWrap::card(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    const Loaded& l = get();
    return l.hasCard ? Napi::String::New(info.Env(), l.card) : info.Env().Null();
  });
}

Napi::Value ModuleWrap::methods(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    auto methods = get().module->get_methods();
    auto arr = Napi::Array::New(info.Env(), methods.size());
    uint32_t i = 0;
    for (const auto& m : methods) arr.Set(i++, Napi::String::New(info.Env(), m.name()));
    return arr;
  });
}

Napi::Value ModuleWrap::schema(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    if (!info[0].IsString()) throw Error(code::kArgument, "schema(method): method must be a string");
    std::string name = info[0].As<Napi::String>().Utf8Value();
    auto method = get().module->find_method(name);
    if (!method) throw Error(code::kArgument, "no method '" + name + "'");
    std::ostringstream out;
    out << method->function().getSchema();
    return Napi::String::New(info.Env(), out.str());
  });
}

Napi::Value ModuleWrap::device(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value { return Napi::String::New(info.Env(), get().device.str()); });
}

Napi::Value ModuleWrap::path(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value { return Napi::String::New(info.Env(), get().path); });
}

// Queued calls keep their own reference to the module; this drops the handle's.
Napi::Value ModuleWrap::dispose(const Napi::CallbackInfo& info) {
  loaded_.reset();
  return info.Env().Undefined();
}

}  // namespace ds
