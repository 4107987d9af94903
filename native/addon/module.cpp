#include "module.h"

#include <cerrno>
#include <cstring>
#include <fstream>

#include "device.h"
#include "errors.h"
#include "instance.h"
#include "call_options.h"
#include "ivalues.h"
#include "module_run.h"
#include "precision.h"
#include "stream.h"
#include "tensor.h"

namespace ds {

Napi::Function ModuleWrap::define(Napi::Env env) {
  return DefineClass(env, "Module",
                     {InstanceMethod<&ModuleWrap::call>("call"),
                      InstanceMethod<&ModuleWrap::callJoined>("callJoined"),
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

// The schema of method `name` (from info[0]), with `count` inputs checked against its arguments.
const c10::FunctionSchema& ModuleWrap::target(const Napi::CallbackInfo& info, size_t count, std::string& name) const {
  const Loaded& l = get();
  if (!info[0].IsString()) throw Error(code::kArgument, "call(method, inputs): method must be a string");
  name = info[0].As<Napi::String>().Utf8Value();
  auto method = l.module->find_method(name);
  if (!method) throw Error(code::kArgument, "the module '" + l.path + "' has no method '" + name + "'");
  const c10::FunctionSchema& schema = method->function().getSchema();
  const auto& args = schema.arguments();  // args[0] is self
  size_t maxArgs = args.size() - 1, minArgs = 0;
  for (size_t i = 1; i < args.size(); ++i)
    if (!args[i].default_value()) minArgs = i;
  if (count < minArgs || count > maxArgs)
    throw Error(code::kArity, signature(schema) + " takes " +
                                  (minArgs == maxArgs ? std::to_string(maxArgs)
                                                      : std::to_string(minArgs) + " to " + std::to_string(maxArgs)) +
                                  " input(s), got " + std::to_string(count));
  return schema;
}

// The options of a call on this module (info[3]): bf16, a thread cap and row chunks on CPU only.
CallOptions ModuleWrap::options(const Napi::Value& v) const {
  CallOptions o = callOptions(v);
  if (o.precision == Precision::kBf16 && !get().device.is_cpu())
    throw Error(code::kArgument, "precision 'bf16' is for CPU modules; this one is on " + get().device.str());
  if (!get().device.is_cpu()) o.threads = o.chunkRows = 0;  // both are about CPU threads
  return o;
}

// call(method, inputs[], stream?, { precision, threads, chunkRows }?) -> Promise<Tensor | value | array>
Napi::Value ModuleWrap::call(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const Loaded& l = get();
    if (!info[1].IsArray()) throw Error(code::kArgument, "call(method, inputs): inputs must be an array");
    auto inputs = info[1].As<Napi::Array>();
    std::string name;
    const auto& args = target(info, inputs.Length(), name).arguments();
    std::vector<c10::IValue> stack;
    stack.reserve(inputs.Length());
    for (uint32_t i = 0; i < inputs.Length(); ++i)
      stack.push_back(toIValue(env, inputs.Get(i), args[i + 1].type(),
                               "argument '" + args[i + 1].name() + "' of " + name, l.device));
    CallOptions o = options(info[3]);
    auto stream = StreamWrap::unwrap(env, info[2]);
    auto module = l.module;
    return stream->enqueue(env, [module, name, stack, o]() mutable -> Finish {
      c10::IValue out = runMethod(module, name, std::move(stack), o);
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
