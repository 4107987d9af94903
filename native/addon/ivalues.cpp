#include "ivalues.h"

#include <cmath>

#include "errors.h"
#include "tensor.h"

namespace ds {

static std::string typeName(const Napi::Value& v) {
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


}  // namespace ds
