#include "parallel.h"

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace qk {
namespace {

struct Job {
  const std::function<void(int64_t)>* fn;
  int64_t n;
  int helpers;  // pool threads that take part
  std::atomic<int64_t> next{0};
  int finished_helpers = 0;
};

class Pool {
 public:
  static Pool& instance() {
    static Pool* pool = new Pool();  // never destroyed: workers may outlive static destruction order
    return *pool;
  }

  void run(int threads, int64_t n, const std::function<void(int64_t)>& fn) {
    if (threads <= 1 || n <= 1) {
      for (int64_t i = 0; i < n; ++i) fn(i);
      return;
    }
    std::lock_guard<std::mutex> one_job(job_mutex_);
    Job job;
    job.fn = &fn;
    job.n = n;
    job.helpers = static_cast<int>(std::min<int64_t>(threads - 1, n - 1));
    {
      std::unique_lock<std::mutex> lock(mutex_);
      while (static_cast<int>(workers_.size()) < job.helpers) {
        const int index = static_cast<int>(workers_.size());
        workers_.emplace_back([this, index] { worker(index); });
        workers_.back().detach();
      }
      job_ = &job;
      generation_++;
    }
    wake_.notify_all();
    work(job);
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return job.finished_helpers == job.helpers; });
    job_ = nullptr;
  }

 private:
  static void work(Job& job) {
    for (int64_t i = job.next.fetch_add(1); i < job.n; i = job.next.fetch_add(1)) (*job.fn)(i);
  }

  void worker(int index) {
    uint64_t seen = 0;
    for (;;) {
      Job* job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_ != seen && job_ != nullptr; });
        seen = generation_;
        job = job_;
        if (index >= job->helpers) continue;
      }
      work(*job);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        job->finished_helpers++;
      }
      done_.notify_all();
    }
  }

  std::mutex job_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  Job* job_ = nullptr;
  uint64_t generation_ = 0;
};

}  // namespace

void parallel_for(int threads, int64_t n, const std::function<void(int64_t)>& fn) { Pool::instance().run(threads, n, fn); }

int64_t rows_per_chunk(int64_t cols) {
  const int64_t r = (int64_t{1} << 16) / (cols > 0 ? cols : 1);
  return r > 0 ? r : 1;
}

}  // namespace qk
