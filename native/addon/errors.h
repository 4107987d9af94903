// Errors crossing the native boundary: every C++ failure becomes a JS DiffusionSearchError
// with a stable code, so no exception ever escapes into Node (which would abort the process).
#pragma once
#include <napi.h>

#include <exception>
#include <stdexcept>
#include <string>

namespace ds {

// Codes JS code can switch on; keep in sync with src/errors.ts.
namespace code {
inline constexpr const char* kArgument = "ARGUMENT";
inline constexpr const char* kArity = "ARITY";
inline constexpr const char* kShape = "SHAPE";
inline constexpr const char* kDevice = "DEVICE";
inline constexpr const char* kDisposed = "DISPOSED";
inline constexpr const char* kModelLoad = "MODEL_LOAD";
inline constexpr const char* kStreamClosed = "STREAM_CLOSED";
inline constexpr const char* kOutOfMemory = "OUT_OF_MEMORY";
inline constexpr const char* kNative = "NATIVE";
}  // namespace code

struct Error : std::runtime_error {
  std::string code;
  Error(std::string c, const std::string& message) : std::runtime_error(message), code(std::move(c)) {}
};

struct Failure {
  std::string code;
  std::string message;
};

// Classifies whatever was thrown (ds::Error, c10::Error, std::exception, anything else).
Failure describe(std::exception_ptr error);

// A JS DiffusionSearchError (the class registered by init(), else a plain Error with .code).
Napi::Error jsError(Napi::Env env, const std::string& code, const std::string& message);

// Runs a binding body; anything thrown leaves as a typed JS error.
template <typename F>
auto guard(Napi::Env env, F&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    Failure f = describe(std::current_exception());
    throw jsError(env, f.code, f.message);
  }
}

}  // namespace ds
