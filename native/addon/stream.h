// An ordered native queue: one worker thread (plus its own CUDA stream on a GPU) that runs
// jobs in submission order; small CPU work on an idle queue runs at once on the JS thread instead.
// Each job's result comes back to JS as a settled Promise.
#pragma once
#include <napi.h>
#include <c10/core/Device.h>

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>

namespace ds {

// Runs on the JS thread after the work; builds the resolved value from C++ data only.
using Finish = std::function<Napi::Value(Napi::Env)>;
// Runs on the worker thread; must capture no JS values (tensors and plain data only).
using Work = std::function<Finish()>;

class Stream : public std::enable_shared_from_this<Stream> {
 public:
  // shareThreads: this stream's jobs share the intra-op threads with the other sharing streams'
  // jobs running at the same moment (threads ÷ jobs running, at least 1), instead of each using all.
  static std::shared_ptr<Stream> create(Napi::Env env, c10::Device device, bool shareThreads = false);
  ~Stream();

  // `elements`: the size of small CPU work that may run at once on the JS thread (see kInlineMax in
  // stream.cpp); 0: always queued.
  Napi::Promise enqueue(Napi::Env env, Work work, int64_t elements = 0);
  void close();         // queued jobs still run; later enqueues fail with STREAM_CLOSED
  void closeAndWait();  // close and wait until the worker has finished (environment teardown)
  bool closed() const;
  bool exited() const;
  c10::Device device() const { return device_; }

  // Intra-op threads for torch and the kernels, applied by every worker before its next job.
  static void setNumThreads(int n);
  static int numThreads();

 private:
  struct Job;
  struct Tsfn;
  explicit Stream(c10::Device device);
  static void complete(Napi::Env env, Job* job);
  static void settle(Napi::Env env, Job& job);
  bool runsNow(int64_t elements) const;
  Napi::Promise runNow(Napi::Env env, Work work);
  void run();

  c10::Device device_;
  bool shareThreads_ = false;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job*> queue_;
  bool closing_ = false;
  bool exited_ = false;
  std::unique_ptr<Tsfn> tsfn_;
  size_t pending_ = 0;  // JS thread only: jobs whose promise has not settled
};

class StreamWrap : public Napi::ObjectWrap<StreamWrap> {
 public:
  static Napi::Function define(Napi::Env env);
  explicit StreamWrap(const Napi::CallbackInfo& info);
  ~StreamWrap();
  // undefined/null gives the default stream of this environment.
  static std::shared_ptr<Stream> unwrap(Napi::Env env, const Napi::Value& value);

 private:
  Napi::Value close(const Napi::CallbackInfo& info);
  Napi::Value device(const Napi::CallbackInfo& info);
  Napi::Value closed(const Napi::CallbackInfo& info);
  Napi::Value view(const Napi::CallbackInfo& info);
  std::shared_ptr<Stream> stream_;
  bool view_ = false;  // a handle on another handle's queue: it never closes that queue
};

}  // namespace ds
