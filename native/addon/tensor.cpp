#include "tensor.h"

#include <cmath>
#include <cstdio>
#include <cstring>

#include "device.h"
#include "errors.h"
#include "instance.h"
#include "stream.h"

namespace ds {

const char* dtypeName(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return "float32";
    case at::kDouble: return "float64";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    case at::kInt: return "int32";
    case at::kLong: return "int64";
    case at::kByte: return "uint8";
    case at::kBool: return "bool";
    default: return "other";
  }
}

Napi::Function TensorWrap::define(Napi::Env env) {
  return DefineClass(env, "Tensor",
                     {InstanceAccessor<&TensorWrap::shape>("shape"),
                      InstanceAccessor<&TensorWrap::dtype>("dtype"),
                      InstanceAccessor<&TensorWrap::device>("device"),
                      InstanceAccessor<&TensorWrap::numel>("numel"),
                      InstanceAccessor<&TensorWrap::disposed>("disposed"),
                      InstanceMethod<&TensorWrap::dispose>("dispose"),
                      InstanceMethod<&TensorWrap::toArray>("toArray"),
                      InstanceMethod<&TensorWrap::to>("to")});
}

// Only the addon constructs handles: it passes the tensor as an External.
TensorWrap::TensorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorWrap>(info) {
  if (info.Length() != 1 || !info[0].IsExternal())
    throw jsError(info.Env(), code::kArgument, "Tensor handles are made by fromArray() or by native ops");
  tensor_ = *info[0].As<Napi::External<at::Tensor>>().Data();
  if (tensor_.device().is_cpu()) {
    externalBytes_ = static_cast<int64_t>(tensor_.numel() * tensor_.element_size());
    Napi::MemoryManagement::AdjustExternalMemory(info.Env(), externalBytes_);
  }
}

TensorWrap::~TensorWrap() {
  // The finalizer may run during teardown when V8 no longer accepts adjustments; just drop.
  tensor_.reset();
}

void TensorWrap::release(Napi::Env env) {
  if (disposed_) return;
  disposed_ = true;
  tensor_.reset();
  if (externalBytes_) Napi::MemoryManagement::AdjustExternalMemory(env, -externalBytes_);
  externalBytes_ = 0;
}

Napi::Object TensorWrap::wrap(Napi::Env env, at::Tensor tensor) {
  Napi::External<at::Tensor> ext = Napi::External<at::Tensor>::New(env, &tensor);
  return Instance::get(env)->tensorClass.New({ext});
}

bool TensorWrap::isTensor(Napi::Env env, const Napi::Value& value) {
  return value.IsObject() && value.As<Napi::Object>().InstanceOf(Instance::get(env)->tensorClass.Value());
}

at::Tensor TensorWrap::unwrap(Napi::Env env, const Napi::Value& value, const std::string& what) {
  if (!isTensor(env, value)) throw Error(code::kArgument, what + " must be a Tensor");
  return Unwrap(value.As<Napi::Object>())->get();
}

const at::Tensor& TensorWrap::get() const {
  if (disposed_) throw Error(code::kDisposed, "tensor was disposed; it can no longer be used");
  return tensor_;
}

namespace {

struct ArrayInfo {
  at::ScalarType type;
  const void* data;
  size_t length;
};

ArrayInfo arrayInfo(const Napi::Value& v) {
  if (!v.IsTypedArray())
    throw Error(code::kArgument,
                "data must be a Float32Array, Float64Array, Int32Array, BigInt64Array or Uint8Array");
  auto ta = v.As<Napi::TypedArray>();
  at::ScalarType type;
  switch (ta.TypedArrayType()) {
    case napi_float32_array: type = at::kFloat; break;
    case napi_float64_array: type = at::kDouble; break;
    case napi_int32_array: type = at::kInt; break;
    case napi_bigint64_array: type = at::kLong; break;
    case napi_uint8_array: type = at::kByte; break;
    default:
      throw Error(code::kArgument,
                  "unsupported typed array: use Float32Array, Float64Array, Int32Array, BigInt64Array or "
                  "Uint8Array");
  }
  const uint8_t* base = static_cast<const uint8_t*>(ta.ArrayBuffer().Data());
  return {type, base ? base + ta.ByteOffset() : nullptr, ta.ElementLength()};
}

std::vector<int64_t> shapeOf(const Napi::Value& v) {
  if (!v.IsArray()) throw Error(code::kShape, "shape must be an array of non-negative integers");
  auto arr = v.As<Napi::Array>();
  std::vector<int64_t> shape;
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    Napi::Value d = arr.Get(i);
    double x = d.IsNumber() ? d.As<Napi::Number>().DoubleValue() : -1;
    if (!(x >= 0) || std::floor(x) != x || x > 9.0e15)
      throw Error(code::kShape, "shape[" + std::to_string(i) + "] must be a non-negative integer");
    shape.push_back(static_cast<int64_t>(x));
  }
  return shape;
}

}  // namespace

Napi::Value TensorWrap::fromArray(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    ArrayInfo a = arrayInfo(info[0]);
    std::vector<int64_t> shape = info.Length() > 1 && !info[1].IsUndefined()
                                     ? shapeOf(info[1])
                                     : std::vector<int64_t>{static_cast<int64_t>(a.length)};
    long double count = 1;
    for (int64_t d : shape) count *= d;
    if (count != static_cast<long double>(a.length)) {
      char countText[32];
      std::snprintf(countText, sizeof countText, "%.0Lf", count);
      std::string s;
      for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
      throw Error(code::kShape, "shape [" + s + "] holds " + countText +
                                    " elements but the array has " + std::to_string(a.length));
    }
    c10::Device device = deviceOption(info[2]);
    at::Tensor t = at::empty(shape, at::TensorOptions().dtype(a.type));
    if (a.length) std::memcpy(t.data_ptr(), a.data, a.length * t.element_size());
    if (!device.is_cpu()) t = t.to(device);
    return wrap(info.Env(), t);
  });
}

Finish resolveTensor(at::Tensor t) {
  return [t](Napi::Env env) -> Napi::Value { return TensorWrap::wrap(env, t); };
}

Napi::Value typedArrayOf(Napi::Env env, const at::Tensor& t) {
  size_t n = static_cast<size_t>(t.numel());
  size_t bytes = n * t.element_size();
  auto copyInto = [&](auto array) {
    if (bytes) std::memcpy(array.Data(), t.data_ptr(), bytes);
    return array;
  };
  switch (t.scalar_type()) {
    case at::kFloat: return copyInto(Napi::Float32Array::New(env, n));
    case at::kDouble: return copyInto(Napi::Float64Array::New(env, n));
    case at::kInt: return copyInto(Napi::Int32Array::New(env, n));
    case at::kLong: return copyInto(Napi::BigInt64Array::New(env, n));
    case at::kByte: return copyInto(Napi::Uint8Array::New(env, n));
    default:
      throw Error(code::kArgument, std::string("cannot read a ") + dtypeName(t.scalar_type()) +
                                       " tensor into a typed array; convert it first");
  }
}

Napi::Value TensorWrap::shape(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    auto sizes = get().sizes();
    auto arr = Napi::Array::New(info.Env(), sizes.size());
    for (size_t i = 0; i < sizes.size(); ++i) arr.Set(i, Napi::Number::New(info.Env(), static_cast<double>(sizes[i])));
    return arr;
  });
}

Napi::Value TensorWrap::dtype(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value { return Napi::String::New(info.Env(), dtypeName(get().scalar_type())); });
}

Napi::Value TensorWrap::device(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value { return Napi::String::New(info.Env(), get().device().str()); });
}

Napi::Value TensorWrap::numel(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value { return Napi::Number::New(info.Env(), static_cast<double>(get().numel())); });
}

Napi::Value TensorWrap::disposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), disposed_);
}

// Safe to call twice; queued work that already holds the tensor keeps its own reference.
Napi::Value TensorWrap::dispose(const Napi::CallbackInfo& info) {
  release(info.Env());
  return info.Env().Undefined();
}

// toArray(stream?) -> Promise<TypedArray>, after all earlier work on that stream.
Napi::Value TensorWrap::toArray(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    at::Tensor t = get();
    auto stream = StreamWrap::unwrap(info.Env(), info[0]);
    auto work = [t]() -> Finish {
      at::Tensor host = t.to(at::kCPU).contiguous();
      return [host](Napi::Env env) { return typedArrayOf(env, host); };
    };
    return stream->enqueue(info.Env(), work, cpuElements(t));
  });
}

// to(device, stream?) -> Promise<Tensor>: a copy on another device.
Napi::Value TensorWrap::to(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    at::Tensor t = get();
    if (!info[0].IsString()) throw Error(code::kDevice, "to(device): device must be a string such as 'cpu' or 'cuda:0'");
    c10::Device device = parseDevice(info[0].As<Napi::String>().Utf8Value());
    auto stream = StreamWrap::unwrap(info.Env(), info[1]);
    return stream->enqueue(info.Env(), [t, device]() -> Finish {
      return resolveTensor(t.to(device, /*non_blocking=*/false, /*copy=*/true));
    });
  });
}

}  // namespace ds
