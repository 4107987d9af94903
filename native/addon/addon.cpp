// Entry point: registers the classes and functions of the addon. Bindings stay thin; the
// work lives in the stream, tensor, module and kernel files.
#include <napi.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <cstdlib>
#include <thread>

#include "allocator.h"
#include "bench.h"
#include "call_options.h"
#include "errors.h"
#include "instance.h"
#include "module.h"
#include "ops.h"
#include "precision.h"
#include "stream.h"
#include "tensor.h"
#include "tensor_ops.h"

namespace ds {
namespace {

// init({ errorClass }): JS registers the error class native failures are created as.
Napi::Value init(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    if (!info[0].IsObject()) throw Error(code::kArgument, "init(options) needs an object");
    Napi::Value cls = info[0].As<Napi::Object>().Get("errorClass");
    if (!cls.IsFunction()) throw Error(code::kArgument, "init: errorClass must be a constructor");
    Instance::get(info.Env())->errorClass = Napi::Persistent(cls.As<Napi::Function>());
    return info.Env().Undefined();
  });
}

Napi::Value info(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return guard(env, [&]() -> Napi::Value {
    Napi::Object out = Napi::Object::New(env);
    Napi::Object torch = Napi::Object::New(env);
    torch.Set("version", TORCH_VERSION);
#ifdef DS_TORCH_HAS_CUDA
    torch.Set("cuda", true);
#else
    torch.Set("cuda", false);
#endif
    // The C++ ABI of std::string this binary (and so its libtorch) uses: prebuilds are tagged by it.
    torch.Set("cxx11abi", static_cast<double>(_GLIBCXX_USE_CXX11_ABI));
    out.Set("torch", torch);
    // How this binary was built, and why its CUDA kernels are off ("" when they are linked).
    Napi::Object build = Napi::Object::New(env);
#ifdef DS_BUILT_WITH
    build.Set("tool", DS_BUILT_WITH);
#else
    build.Set("tool", "unknown");
#endif
    build.Set("napi", static_cast<double>(NAPI_VERSION));
#ifdef DS_CUDA_OFF_REASON
    build.Set("cudaOff", DS_CUDA_OFF_REASON);
#else
    build.Set("cudaOff", "");
#endif
    out.Set("build", build);
    Napi::Object cuda = Napi::Object::New(env);
#ifdef DS_CUDA_KERNELS_BUILT
    cuda.Set("kernelsCompiled", true);
#else
    cuda.Set("kernelsCompiled", false);
#endif
#ifdef DS_WITH_CUDA
    cuda.Set("kernelsLinked", true);
#else
    cuda.Set("kernelsLinked", false);
#endif
    bool available = torch::cuda::is_available();
    cuda.Set("available", available);
    cuda.Set("deviceCount", available ? static_cast<double>(torch::cuda::device_count()) : 0.0);
    out.Set("cuda", cuda);
    Napi::Object threads = Napi::Object::New(env);
    threads.Set("intraOp", Stream::numThreads());
    threads.Set("interOp", at::get_num_interop_threads());
    threads.Set("hardware", static_cast<double>(std::thread::hardware_concurrency()));
    out.Set("threads", threads);
    out.Set("parallel", at::get_parallel_info());
    CpuFeatures f = cpuFeatures();
    Napi::Object cpu = Napi::Object::New(env);
    cpu.Set("avx512", f.avx512);
    cpu.Set("avx512bf16", f.avx512bf16);
    cpu.Set("amxbf16", f.amxbf16);
    out.Set("cpu", cpu);
    return out;
  });
}

// setNumThreads(n): intra-op threads of libtorch and of the CPU kernels, for every stream.
Napi::Value setNumThreads(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    double n = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : 0;
    if (!(n >= 1 && n <= 1024) || std::floor(n) != n)
      throw Error(code::kArgument, "setNumThreads(n): n must be an integer from 1 to 1024");
    at::set_num_threads(static_cast<int>(n));
    Stream::setNumThreads(static_cast<int>(n));
    return info.Env().Undefined();
  });
}

void teardown(Instance* inst) {
  for (auto& weak : inst->streams)
    if (auto s = weak.lock()) s->closeAndWait();
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // Without OMP_NUM_THREADS, use every core (Debian's libtorch would otherwise start with one).
  if (!std::getenv("OMP_NUM_THREADS")) {
    int cores = static_cast<int>(std::thread::hardware_concurrency());
    if (cores > 0) Stream::setNumThreads(cores);
  }
  // Large tensor buffers on cached mappings instead of glibc's heap (why: allocator.cpp).
  installCpuAllocator();
  auto* inst = new Instance();
  env.SetInstanceData<Instance>(inst);
  env.AddCleanupHook(teardown, inst);
  Napi::Function tensor = TensorWrap::define(env);
  Napi::Function module = ModuleWrap::define(env);
  Napi::Function stream = StreamWrap::define(env);
  inst->tensorClass = Napi::Persistent(tensor);
  inst->moduleClass = Napi::Persistent(module);
  inst->streamClass = Napi::Persistent(stream);
  exports.Set("Tensor", tensor);
  exports.Set("Module", module);
  exports.Set("Stream", stream);
  exports.Set("init", Napi::Function::New(env, init, "init"));
  exports.Set("info", Napi::Function::New(env, info, "info"));
  exports.Set("setNumThreads", Napi::Function::New(env, setNumThreads, "setNumThreads"));
  exports.Set("fromArray", Napi::Function::New(env, TensorWrap::fromArray, "fromArray"));
  exports.Set("loadModule", Napi::Function::New(env, ModuleWrap::load, "loadModule"));
  exports.Set("benchKernels", Napi::Function::New(env, benchKernels, "benchKernels"));
  exports.Set("callThreads", Napi::Function::New(env, callThreads, "callThreads"));
  registerOps(env, exports);
  registerTensorOps(env, exports);
  return exports;
}

}  // namespace ds

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return ds::Init(env, exports); }
NODE_API_MODULE(ds_native, InitAddon)
