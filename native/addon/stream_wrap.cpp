#include "device.h"
#include "errors.h"
#include "instance.h"
#include "stream.h"

namespace ds {

Napi::Function StreamWrap::define(Napi::Env env) {
  return DefineClass(env, "Stream",
                     {InstanceMethod<&StreamWrap::close>("close"),
                      InstanceMethod<&StreamWrap::view>("view"),
                      InstanceAccessor<&StreamWrap::device>("device"),
                      InstanceAccessor<&StreamWrap::closed>("closed")});
}

// new Stream({ device, shareThreads }) — an ordered queue of its own.
StreamWrap::StreamWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<StreamWrap>(info) {
  guard(info.Env(), [&] {
    if (info[0].IsExternal()) {  // from view(): the same queue under another handle
      stream_ = *info[0].As<Napi::External<std::shared_ptr<Stream>>>().Data();
      view_ = true;
      return 0;
    }
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
  if (stream_ && !view_) stream_->close();
}

// view() -> Stream: another handle on this queue (the engine gives each search its own, to tell
// their calls apart); closing or dropping a view leaves the queue open.
Napi::Value StreamWrap::view(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    if (stream_->closed()) throw Error(code::kStreamClosed, "the stream was closed; create a new one");
    auto ext = Napi::External<std::shared_ptr<Stream>>::New(info.Env(), &stream_);
    return Instance::get(info.Env())->streamClass.Value().New({ext});
  });
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

// Resolves once everything queued before it has run; the stream then takes no more work (a view's
// queue goes on: only the view's close resolves).
Napi::Value StreamWrap::close(const Napi::CallbackInfo& info) {
  return guard(info.Env(), [&]() -> Napi::Value {
    if (stream_->closed()) {
      auto d = Napi::Promise::Deferred::New(info.Env());
      d.Resolve(info.Env().Undefined());
      return d.Promise();
    }
    Napi::Promise done = stream_->enqueue(info.Env(), [] { return Finish(); });
    if (!view_) stream_->close();
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
