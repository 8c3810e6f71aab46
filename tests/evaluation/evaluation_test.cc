// Character error rate and dataset reading, against hand-computed values.
#include <cmath>

#include "evaluation/error_statistics.h"
#include "evaluation/labeled_dataset.h"
#include "evaluation/text_metrics.h"
#include "support/test_support.h"

namespace trocr::test {
namespace {

TEST(CharacterEditDistance, CountsCodePointsNotBytes) {
  EXPECT_EQ(character_edit_distance("", ""), 0u);
  EXPECT_EQ(character_edit_distance("", "中文"), 2u);
  EXPECT_EQ(character_edit_distance("中文", ""), 2u);
  EXPECT_EQ(character_edit_distance("中文", "中文"), 0u);
  EXPECT_EQ(character_edit_distance("中又", "中文"), 1u);      // one substitution, 3 bytes apart
  EXPECT_EQ(character_edit_distance("kitten", "sitting"), 3u);  // the textbook case
  EXPECT_EQ(character_edit_distance("abc", "cab"), 2u);
  EXPECT_EQ(character_edit_distance("识别文字", "文字识别"), 4u);
}

TEST(TextScore, SumsEditsOverReferenceCharacters) {
  TextScore score;
  EXPECT_EQ(score.add("中文", "中文"), 0u);
  EXPECT_EQ(score.add("中", "中文字"), 2u);
  EXPECT_EQ(score.add("abcd", "abc"), 1u);
  EXPECT_EQ(score.lines(), 3u);
  EXPECT_EQ(score.exact_lines(), 1u);
  EXPECT_EQ(score.reference_characters(), 8u);
  EXPECT_DOUBLE_EQ(score.character_error_rate(), 3.0 / 8.0);
  EXPECT_DOUBLE_EQ(score.line_accuracy(), 1.0 / 3.0);
}

TEST(LabeledDataset, ReadsTrocrChineseFolders) {
  ScratchDir scratch;
  write_file(scratch.path("b.jpg"), "x");
  write_file(scratch.path("b.txt"), "第二行\n");
  write_file(scratch.path("a.png"), "x");
  write_file(scratch.path("a.txt"), "  first line \r\n");
  write_file(scratch.path("notes.md"), "not an image");
  const auto dataset = read_labeled_dataset(scratch.root());
  ASSERT_EQ(dataset.size(), 2u);
  EXPECT_EQ(dataset[0].path, scratch.path("a.png"));
  EXPECT_EQ(dataset[0].label, "first line");
  EXPECT_EQ(dataset[1].label, "第二行");
}

TEST(LabeledDataset, ReadsTabSeparatedLists) {
  ScratchDir scratch;
  write_file(scratch.path("list.tsv"), "img/one.jpg\t一\r\n\n/abs/two.png\ttwo words\n");
  const auto dataset = read_labeled_dataset(scratch.path("list.tsv"));
  ASSERT_EQ(dataset.size(), 2u);
  EXPECT_EQ(dataset[0].path, scratch.path("img/one.jpg"));  // relative to the list's folder
  EXPECT_EQ(dataset[0].label, "一");
  EXPECT_EQ(dataset[1].path, "/abs/two.png");
  EXPECT_EQ(dataset[1].label, "two words");
}

TEST(LabeledDataset, NamesWhatIsWrong) {
  ScratchDir scratch;
  EXPECT_ERROR_CONTAINS(read_labeled_dataset(scratch.path("missing")), "missing", "no such");
  EXPECT_ERROR_CONTAINS(read_labeled_dataset(scratch.root()), "no .jpg");
  write_file(scratch.path("x.jpg"), "x");
  EXPECT_ERROR_CONTAINS(read_labeled_dataset(scratch.root()), "x.jpg", "x.txt");
  write_file(scratch.path("list.tsv"), "a.jpg\tok\nno-tab-here\n");
  EXPECT_ERROR_CONTAINS(read_labeled_dataset(scratch.path("list.tsv")), "list.tsv:2", "path<TAB>label");
  write_file(scratch.path("empty.tsv"), "\n\n");
  EXPECT_ERROR_CONTAINS(read_labeled_dataset(scratch.path("empty.tsv")), "empty.tsv", "no `path<TAB>label`");
  write_file(scratch.path("bad.tsv"), "a.jpg\t\xff\xfe\n");
  EXPECT_ERROR_CONTAINS(read_labeled_dataset(scratch.path("bad.tsv")), "bad.tsv:1", "UTF-8");
}

TEST(ErrorStatistics, MaxMeanMedianOfAbsoluteAndRelativeError) {
  ErrorAccumulator errors;
  // Reference RMS = sqrt((4 + 1 + 0 + 0.25) / 4); the floor is 1% of it.
  errors.add({2.5f, -1.0f, 0.0f, 1.0f}, {2.0f, -1.0f, 0.0f, 0.5f});
  errors.add({}, {});
  const ErrorStatistics stats = errors.statistics();
  EXPECT_EQ(stats.elements, 4u);
  EXPECT_EQ(stats.non_finite, 0u);
  EXPECT_DOUBLE_EQ(stats.max_abs, 0.5);
  EXPECT_DOUBLE_EQ(stats.mean_abs, 0.25);    // (0.5 + 0 + 0 + 0.5) / 4
  EXPECT_DOUBLE_EQ(stats.median_abs, 0.25);  // between 0 and 0.5
  EXPECT_NEAR(stats.reference_rms, std::sqrt(5.25 / 4), 1e-7);
  EXPECT_NEAR(stats.max_rel, 1.0, 1e-7);     // 0.5 / 0.5
  EXPECT_NEAR(stats.mean_rel, (0.25 + 1.0) / 4, 1e-7);
  EXPECT_NEAR(stats.median_rel, 0.125, 1e-7);
}

TEST(ErrorStatistics, CountsNonFiniteValuesAndRefusesShapeMismatches) {
  ErrorAccumulator errors;
  errors.add({NAN, 1.0f}, {1.0f, 1.0f});
  EXPECT_EQ(errors.statistics().non_finite, 1u);
  EXPECT_TRUE(std::isinf(errors.statistics().max_abs));
  EXPECT_ERROR_CONTAINS(errors.add({1.0f}, {1.0f, 2.0f}), "1 values", "reference of 2");
}

}  // namespace
}  // namespace trocr::test
