#include "device.h"
#include "errors.h"
#include "instance.h"
#include "stream.h"

namespace ds {

Napi::Function StreamWrap::define(Napi::Env env) {
  return DefineClass(env, "Stream",
                     {InstanceMethod<&StreamWrap::close>("close"),
                      InstanceAccessor<&StreamWrap::device>("device"),
                      InstanceAccessor<&StreamWrap::closed>("closed")});
}

// new Stream({ device, shareThreads }) — an ordered queue of its own.
StreamWrap::StreamWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<StreamWrap>(info) {
  guard(info.Env(), [&] {
    bool share = false;
    if (info[0].IsObject()) {
      Napi::Value v = info[0].As<Napi::Object>().Get("shareThreads");
      if (!v.IsUndefined() && !v.IsBoolean()) throw Error(code::kArgument, "createStream: shareThreads must be true or false");
      share = v.IsBoolean() && v.As<Napi::Boolean>().Value();
    }
    stream_ = Stream::create(info.Env(), deviceOption(info[0]), share);
    return 0;
  });
}

StreamWrap::~StreamWrap() {
  if (stream_) stream_->close();
}

std::shared_ptr<Stream> StreamWrap::unwrap(Napi::Env env, const Napi::Value& value) {
  Instance* inst = Instance::get(env);
  if (value.IsUndefined() || value.IsNull()) {
    if (!inst->defaultStream) inst->defaultStream = Stream::create(env, c10::Device(c10::kCPU));
    return inst->defaultStream;
  }
  if (!value.IsObject() || !value.As<Napi::Object>().InstanceOf(inst->streamClass.Value()))
    throw Error(code::kArgument, "expected a Stream (from createStream) or nothing");
  return Unwrap(value.As<Napi::Object>())->stream_;
}

// Resolves once everything queued before it has run; the stream then takes no more work.
Napi::Value StreamWrap::close(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    if (stream_->closed()) {
      auto d = Napi::Promise::Deferred::New(info.Env());
      d.Resolve(info.Env().Undefined());
      return d.Promise();
    }
    Napi::Promise done = stream_->enqueue(info.Env(), [] { return Finish(); });
    stream_->close();
    return done;
  });
}

Napi::Value StreamWrap::device(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), stream_->device().str());
}

Napi::Value StreamWrap::closed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), stream_->closed());
}

}  // namespace ds
