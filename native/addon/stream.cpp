#include "stream.h"

#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <string>
#include <thread>

#ifdef DS_TORCH_HAS_CUDA  // CMakeLists.txt defines it when the libtorch has CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include "allocator.h"
#include "errors.h"
#include "instance.h"
#include "kernels.h"

namespace ds {

namespace {
std::atomic<int> g_threads{0};  // 0: libtorch's default
std::atomic<int> g_sharing{0};  // jobs of thread-sharing streams running now
// When the whole process has been idle this long (no stream running a job), a worker gives the
// allocator's cached buffers back. Per stream would drain the shared cache under the feet of
// other streams' searches whenever one stream waits (the engine keeps several).
constexpr std::chrono::milliseconds kIdleRelease{1000};
std::atomic<int> g_running{0};
std::atomic<int64_t> g_lastDoneMs{0};
int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
bool processIdle() { return g_running.load() == 0 && nowMs() - g_lastDoneMs.load() >= kIdleRelease.count(); }
}

struct Stream::Job {
  Work work;
  Finish finish;
  bool failed = false;
  Failure failure;
  Napi::Promise::Deferred deferred;
  std::shared_ptr<Stream> stream;  // keeps the stream alive until the promise settles
  Job(Napi::Env env, Work w, std::shared_ptr<Stream> s)
      : work(std::move(w)), deferred(Napi::Promise::Deferred::New(env)), stream(std::move(s)) {}
};

struct Stream::Tsfn {
  static void call(Napi::Env env, Napi::Function, Stream*, Job* job) { Stream::complete(env, job); }
  Napi::TypedThreadSafeFunction<Stream, Job, &Tsfn::call> fn;
};

void Stream::setNumThreads(int n) {
  g_threads.store(n);
  kernels::set_num_threads(n);
}
int Stream::numThreads() {
  int n = g_threads.load();
  return n > 0 ? n : at::get_num_threads();
}

std::shared_ptr<Stream> Stream::create(Napi::Env env, c10::Device device, bool shareThreads) {
  std::shared_ptr<Stream> s(new Stream(device));
  s->shareThreads_ = shareThreads;
  s->tsfn_ = std::make_unique<Tsfn>();
  s->tsfn_->fn = Napi::TypedThreadSafeFunction<Stream, Job, &Tsfn::call>::New(
      env, "diffusion-search-stream", 0, 1, s.get());
  s->tsfn_->fn.Unref(env);  // an idle stream must not keep the process alive
  auto& streams = Instance::get(env)->streams;
  // Forget streams that are gone, so a long-lived service creating one per request stays flat.
  streams.erase(std::remove_if(streams.begin(), streams.end(), [](const std::weak_ptr<Stream>& w) { return w.expired(); }),
                streams.end());
  streams.push_back(s);
  // The worker owns a reference, so the stream outlives its JS handle until its queue drains.
  std::thread([self = s] { self->run(); }).detach();
  return s;
}

Stream::Stream(c10::Device device) : device_(device) {}
Stream::~Stream() = default;

Napi::Promise Stream::enqueue(Napi::Env env, Work work, int64_t elements) {
  if (runsNow(elements)) return runNow(env, std::move(work));
  auto* job = new Job(env, std::move(work), shared_from_this());
  Napi::Promise promise = job->deferred.Promise();
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (closing_) {
      delete job;
      throw Error(code::kStreamClosed, "the stream was closed; create a new one");
    }
    queue_.push_back(job);
  }
  if (pending_++ == 0) tsfn_->fn.Ref(env);
  cv_.notify_one();
  return promise;
}

// Small CPU work (fewer elements than this: below the kernels' and libtorch's parallel bounds, so
// no thread team forms on the JS thread) runs at once on the JS thread when nothing of its stream
// is queued or running, so in the same order: a trip through a worker (two thread wakes and a turn
// of the event loop) costs far more than such work. DS_INLINE_SMALL_WORK=0 queues it all.
constexpr int64_t kInlineMax = 1 << 15;

bool Stream::runsNow(int64_t elements) const {
  static const bool enabled = [] {
    const char* v = std::getenv("DS_INLINE_SMALL_WORK");
    return !(v && std::string(v) == "0");
  }();
  return enabled && elements > 0 && elements < kInlineMax && device_.is_cpu() && pending_ == 0;
}

Napi::Promise Stream::runNow(Napi::Env env, Work work) {
  if (closed()) throw Error(code::kStreamClosed, "the stream was closed; create a new one");
  Job job(env, std::move(work), shared_from_this());
  try {
    c10::InferenceMode inference;
    job.finish = job.work();
  } catch (...) {
    job.failed = true;
    job.failure = describe(std::current_exception());
  }
  job.work = nullptr;
  Napi::Promise promise = job.deferred.Promise();
  settle(env, job);
  return promise;
}

void Stream::close() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    closing_ = true;
  }
  cv_.notify_all();
}

void Stream::closeAndWait() {
  close();
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return exited_; });
}

bool Stream::closed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return closing_;
}

void Stream::run() {
#ifdef DS_TORCH_HAS_CUDA  // CMakeLists.txt defines it when the libtorch has CUDA
  std::unique_ptr<c10::cuda::CUDAStreamGuard> streamGuard;
  if (device_.is_cuda()) {
    c10::cuda::CUDAGuard deviceGuard(device_);
    streamGuard = std::make_unique<c10::cuda::CUDAStreamGuard>(
        c10::cuda::getStreamFromPool(false, device_.index()));
  }
#endif
  // libtorch sets a thread's OpenMP count on its first parallel op (its lazy per-thread init, which
  // get_num_threads runs): done now, so the counts set below hold from the first job on.
  (void)at::get_num_threads();
  // Its OpenMP team too (libgomp keeps one per thread that starts a parallel region): made now, so
  // a stream's threads are all there when it is, and none appear later under load.
#pragma omp parallel num_threads(numThreads())
  { (void)omp_get_thread_num(); }
  int appliedThreads = -1;
  bool released = true;  // nothing cached before the first job
  for (;;) {
    Job* job = nullptr;
    {
      std::unique_lock<std::mutex> lock(mu_);
      auto ready = [this] { return closing_ || !queue_.empty(); };
      if (!released && !cv_.wait_for(lock, kIdleRelease, ready)) {
        if (!processIdle()) continue;  // another stream is working: keep the cache, look again later
        lock.unlock();
        releaseCachedMemory();
        released = true;
        continue;
      }
      cv_.wait(lock, ready);
      if (queue_.empty()) break;  // closing and drained
      job = queue_.front();
      queue_.pop_front();
    }
    released = false;
    g_running.fetch_add(1);
    // OpenMP thread counts are per thread: each worker applies the requested count itself.
    int want = g_threads.load();
    if (shareThreads_) {
      // A forward alone uses every thread; k at once use threads ÷ k each (on a CPU, forwards side
      // by side beat one forward with all cores, and a lone one still gets them all).
      int running = g_sharing.fetch_add(1) + 1;
      want = std::max(1, numThreads() / running);
      // Only this thread's OpenMP count, and before every job (libtorch's lazy per-thread init may
      // have reset it): at::set_num_threads would change the process-wide value and clear oneDNN's
      // primitive cache on every change.
      omp_set_num_threads(want);
    } else if (want > 0 && want != appliedThreads) {
      at::set_num_threads(want);
      omp_set_num_threads(want);
      appliedThreads = want;
    }
    try {
      c10::InferenceMode inference;
      job->finish = job->work();
#ifdef DS_TORCH_HAS_CUDA  // CMakeLists.txt defines it when the libtorch has CUDA
      if (device_.is_cuda()) c10::cuda::getCurrentCUDAStream(device_.index()).synchronize();
#endif
    } catch (...) {
      job->failed = true;
      job->failure = describe(std::current_exception());
    }
    job->work = nullptr;  // release captured tensors now, not on the JS thread
    if (shareThreads_) g_sharing.fetch_sub(1);
    g_lastDoneMs.store(nowMs());
    g_running.fetch_sub(1);
    if (tsfn_->fn.NonBlockingCall(job) != napi_ok) delete job;  // environment is going away
  }
  tsfn_->fn.Release();
  {
    std::lock_guard<std::mutex> lock(mu_);
    exited_ = true;
  }
  cv_.notify_all();
}

void Stream::complete(Napi::Env env, Job* job) {
  std::unique_ptr<Job> owned(job);
  if (env == nullptr) return;  // teardown: nobody is waiting any more
  Napi::HandleScope scope(env);
  settle(env, *job);  // first, so the JS side sees results in submission order
  Stream& stream = *job->stream;
  if (--stream.pending_ == 0 && !stream.exited()) stream.tsfn_->fn.Unref(env);
}

// Resolves a job's promise with its Finish's value, or rejects it with its failure.
void Stream::settle(Napi::Env env, Job& job) {
  if (job.failed) {
    job.deferred.Reject(jsError(env, job.failure.code, job.failure.message).Value());
    return;
  }
  try {
    job.deferred.Resolve(job.finish ? job.finish(env) : env.Undefined());
  } catch (const Napi::Error& e) {
    job.deferred.Reject(e.Value());
  } catch (...) {
    Failure f = describe(std::current_exception());
    job.deferred.Reject(jsError(env, f.code, f.message).Value());
  }
}

bool Stream::exited() const {
  std::lock_guard<std::mutex> lock(mu_);
  return exited_;
}

}  // namespace ds
