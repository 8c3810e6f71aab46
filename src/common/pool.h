#pragma once
// Objects kept from one call to the next (workspaces, buffers) for callers on any thread: a call
// leases an idle one, or a new one when every other is in use, and the lease gives it back.
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace trocr {

template <typename T>
class Pool {
 public:
  explicit Pool(std::function<std::unique_ptr<T>()> make) : make_(std::move(make)) {}

  class Lease {
   public:
    explicit Lease(Pool& pool) : pool_(pool) {
      {
        std::lock_guard<std::mutex> lock(pool.mutex_);
        if (!pool.idle_.empty()) {
          object_ = std::move(pool.idle_.back());
          pool.idle_.pop_back();
        }
      }
      if (!object_) object_ = pool.make_();
    }
    ~Lease() {
      std::lock_guard<std::mutex> lock(pool_.mutex_);
      pool_.idle_.push_back(std::move(object_));
    }
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    T* operator->() const { return object_.get(); }
    T& operator*() const { return *object_; }

   private:
    Pool& pool_;
    std::unique_ptr<T> object_;
  };

 private:
  std::function<std::unique_ptr<T>()> make_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<T>> idle_;
};

}  // namespace trocr
