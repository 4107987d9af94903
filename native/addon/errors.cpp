#include "errors.h"

#include <c10/util/Exception.h>

#include <algorithm>
#include <cctype>
#include <new>

#include "instance.h"

namespace ds {
namespace {

bool contains(const std::string& haystack, const char* needle) {
  return haystack.find(needle) != std::string::npos;
}

// libtorch reports shape and device problems as generic c10::Errors; sort them by their text.
std::string classifyTorchMessage(const std::string& message) {
  std::string m = message;
  std::transform(m.begin(), m.end(), m.begin(), [](unsigned char c) { return std::tolower(c); });
  if (contains(m, "same device") || contains(m, "cuda error") || contains(m, "no cuda gpus") ||
      contains(m, "not compiled with cuda") || contains(m, "expected device"))
    return code::kDevice;
  if (contains(m, "out of memory")) return code::kOutOfMemory;
  if (contains(m, "shape") || contains(m, "size of tensor") || contains(m, "sizes of tensors") ||
      contains(m, "dimension") || contains(m, "mat1 and mat2") || contains(m, "must match the size") ||
      contains(m, "size mismatch") || contains(m, "invalid for input of size"))
    return code::kShape;
  return code::kNative;
}

}  // namespace

Failure describe(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const Error& e) {
    return {e.code, e.what()};
  } catch (const c10::Error& e) {
    std::string message = e.what_without_backtrace();
    return {classifyTorchMessage(message), message};
  } catch (const std::bad_alloc&) {
    return {code::kOutOfMemory, "out of host memory"};
  } catch (const std::invalid_argument& e) {
    return {code::kArgument, e.what()};
  } catch (const std::exception& e) {
    // TorchScript interpreter failures arrive as std::runtime_error (JITException).
    return {classifyTorchMessage(e.what()), e.what()};
  } catch (...) {
    return {code::kNative, "unknown native exception"};
  }
}

Napi::Error jsError(Napi::Env env, const std::string& code, const std::string& message) {
  Napi::HandleScope scope(env);
  Instance* inst = Instance::get(env);
  if (inst && !inst->errorClass.IsEmpty()) {
    Napi::Object err =
        inst->errorClass.New({Napi::String::New(env, message), Napi::String::New(env, code)});
    return Napi::Error(env, err);
  }
  Napi::Error err = Napi::Error::New(env, message);
  err.Set("code", Napi::String::New(env, code));
  return err;
}

}  // namespace ds
