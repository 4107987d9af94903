// Values between JS and TorchScript: a method's arguments from JS by their declared types, its
// results back to JS, and the signature its errors name.
#pragma once
#include <ATen/core/function_schema.h>
#include <ATen/core/ivalue.h>
#include <napi.h>

#include <string>

namespace ds {

// JS argument -> IValue, following the method's declared argument type (`what` names it in errors).
c10::IValue toIValue(Napi::Env env, const Napi::Value& v, const c10::TypePtr& type, const std::string& what,
                     c10::Device device);

// A method's result -> JS: tensors, numbers, booleans, strings, null, and arrays of them (tuples, lists).
Napi::Value fromIValue(Napi::Env env, const c10::IValue& v);

// "forward(x, sigma)": the method and its argument names.
std::string signature(const c10::FunctionSchema& schema);

}  // namespace ds
