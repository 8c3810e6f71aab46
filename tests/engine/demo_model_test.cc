// The committed demo model on the committed evaluation set: the CPU engine reads every line
// exactly as HF fp32 does (texts and ids), and its CER meets the 2% target.
#include "support/demo_eval.h"
#include "support/test_support.h"

namespace trocr::test {
namespace {

size_t line_limit(size_t wanted) { return kSanitizedBuild ? kSanitizedDemoLines : wanted; }

TEST(DemoModel, BeamSearchReadsTheEvaluationSetAsHfDoes) {
  const DemoComparison result = compare_demo_with_hf(EngineOptions{}, "default", line_limit(0));
  for (const auto& difference : result.differences) ADD_FAILURE() << difference;
  EXPECT_EQ(result.identical_ids, result.lines);
  EXPECT_DOUBLE_EQ(result.cer, result.hf_cer);
  if (!kSanitizedBuild) {
    EXPECT_EQ(result.lines, 400u);
    EXPECT_LE(result.cer, 0.02);
  }
  std::printf("demo model, beam 4, CPU fp32: %zu/%zu lines identical to HF, CER %.4f\n",
              result.identical_text, result.lines, result.cer);
}

TEST(DemoModel, GreedySearchMatchesHf) {
  const DemoComparison result = compare_demo_with_hf(EngineOptions{}, "greedy", line_limit(100));
  for (const auto& difference : result.differences) ADD_FAILURE() << difference;
  EXPECT_EQ(result.identical_ids, result.lines);
}

// Lines of every length joining and leaving 8 lines in flight, as `trocr serve --batching
// in-flight` runs them: HF's ids on every line.
TEST(DemoModel, GreedyLinesInFlightMatchHf) {
  EngineOptions options;
  options.batch_size = 8;
  const DemoComparison result = compare_demo_with_hf(options, "greedy in flight", line_limit(100));
  for (const auto& difference : result.differences) ADD_FAILURE() << difference;
  EXPECT_EQ(result.identical_ids, result.lines);
}

}  // namespace
}  // namespace trocr::test
