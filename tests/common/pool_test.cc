// The pool that keeps workspaces and buffers between calls: a lease never shares its object
// with another live lease, and an object given back is the one the next lease gets.
#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "common/pool.h"

namespace trocr::test {
namespace {

struct Counted {
  explicit Counted(int id) : id(id) {}
  int id;
  std::atomic<int> holders{0};
};

TEST(Pool, LiveLeasesHoldDistinctObjectsAndReturnedOnesAreReused) {
  int made = 0;
  Pool<Counted> pool([&] { return std::make_unique<Counted>(made++); });
  int first_id;
  {
    Pool<Counted>::Lease a(pool), b(pool);
    EXPECT_NE(a->id, b->id);
    first_id = a->id;
  }
  EXPECT_EQ(made, 2);
  Pool<Counted>::Lease again(pool);
  EXPECT_EQ(made, 2) << "an idle object is reused, not a new one made";
  EXPECT_TRUE(again->id == first_id || again->id == 1 - first_id);
}

TEST(Pool, ConcurrentLeasesNeverShareAnObject) {
  std::atomic<int> made{0};
  Pool<Counted> pool([&] { return std::make_unique<Counted>(made++); });
  std::atomic<int> shared{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        Pool<Counted>::Lease lease(pool);
        if (lease->holders.fetch_add(1) != 0) ++shared;
        std::this_thread::yield();
        lease->holders.fetch_sub(1);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(shared, 0);
  EXPECT_LE(made, 8) << "never more objects than callers at once";
}

}  // namespace
}  // namespace trocr::test
