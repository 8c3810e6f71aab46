#pragma once
// The CUDA engine's own kernels. T is float, __half or __nv_bfloat16; LayerNorm, softmax and
// every accumulation run in fp32. All launch on the given stream and never allocate.
#include <cuda_fp8.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <optional>
#include <vector>

#include "trocr/config.h"

namespace trocr::cuda {

// sum = residual + delta (delta may be null); normed = LayerNorm(sum) * gamma + beta.
// With store_sum the sum is written back to residual. normed may alias residual.
template <typename T>
void residual_layer_norm(T* residual, const T* delta, T* normed, const float* gamma,
                         const float* beta, int rows, int width, float eps, bool store_sum,
                         cudaStream_t stream);

// In place: gelu (erf), gelu (tanh) or relu.
template <typename T>
void apply_activation(T* values, int64_t count, Activation activation, cudaStream_t stream);

// The "fp8" dtype's product inputs: each row of x [rows, width] (after the activation, if one is
// given) as E4M3 values and an fp32 scale, row ~= values * scale, the scale mapping the row's
// largest magnitude to E4M3's largest (448). width: a multiple of 8, up to kMaxQuantizedWidth.
constexpr int kMaxQuantizedWidth = 8192;
template <typename T>
void quantize_rows(const T* x, int64_t rows, int width, std::optional<Activation> activation,
                   __nv_fp8_e4m3* values, float* scales, cudaStream_t stream);

// Where a decode step's rows stand (tokens before them in their caches), read from device memory
// so that a captured step replays as is: one position for every row (per_row null: a whole-batch
// search, all rows in step), or row r's own, values[per_row[r]] (greedy lines, which may have
// joined at different steps; per_row maps a row to its sequence).
struct StepPositions {
  int* values = nullptr;
  const int* per_row = nullptr;
#ifdef __CUDACC__
  __device__ int of(int row) const { return per_row != nullptr ? values[per_row[row]] : *values; }
#endif
};

// Decoder input for one token per row: embed[token] * scale + position row, then the optional
// layernorm_embedding. Learned positions: row position + 2; sinusoidal: pad + 1 + position, or
// the pad row for a pad token.
struct EmbeddingParams {
  const int* tokens;
  StepPositions position;
  int rows;
  int width;
  float scale;
  bool learned_positions;
  int pad;
  const float* gamma;  // null without layernorm_embedding
  const float* beta;
  float eps;
};
template <typename T>
void decoder_embedding(const EmbeddingParams& params, const T* embed_tokens, const T* positions,
                       T* out, cudaStream_t stream);

// One query per row against a key/value table, multi-head. Row r attends keys of table
// source(r): keys + source * source_stride + j * row_stride (values likewise), j < key_count.
// With `position`, the table is a KV cache: row r reads key_count = position.of(r) + 1 keys, after
// its new key and value (new_keys/new_values, row stride new_stride) are written at position.of(r).
struct DecodeAttentionParams {
  float* scratch;  // attention_scratch_size() floats: per-chunk partial results
  int max_keys;    // the most keys any launch of this shape reads (sizes the grid)
  int rows;
  int heads;
  int head_dim;
  float scale;
  int64_t q_stride;
  const int* sources;  // row -> table index (cache slot or image)
  int64_t source_stride;
  int64_t row_stride;
  int key_count;           // when position.values is null
  StepPositions position;  // KV cache mode
  int64_t new_stride;
};
// Keys are processed in chunks by separate blocks (flash-decoding), then combined.
constexpr int kAttentionChunk = 32;
inline size_t attention_scratch_size(int rows, int heads, int head_dim, int max_keys) {
  const size_t chunks = (max_keys + kAttentionChunk - 1) / kAttentionChunk;
  return size_t(rows) * heads * chunks * (head_dim + 2);
}
template <typename T>
void decode_attention(const DecodeAttentionParams& params, const T* queries, T* keys, T* values,
                      const T* new_keys, const T* new_values, T* out, cudaStream_t stream);

// Merges per-chunk partial results [rows, heads, chunks, head_dim + 2] (unnormalised values, the
// chunk's max score in natural-log units, its sum of exponentials; chunks with a zero sum are
// empty) into out [rows, heads * head_dim].
template <typename T>
void combine_attention_chunks(const float* scratch, int rows, int heads, int head_dim, int chunks, T* out,
                              cudaStream_t stream);

// Cross-attention of a decode step on tensor cores. Rows come in groups of at most
// kMaxCrossGroupRows consecutive rows that read the same image (group g: rows
// [group_starts[g], group_starts[g + 1])): a group's keys and values are read once for all
// its rows. Keys of image i: keys + i * image_stride + j * row_stride (values likewise), j < keys.
// fp16/bf16 with head_dim 64 only: returns false (launching nothing) otherwise.
constexpr int kMaxCrossGroupRows = 16;
struct CrossAttentionParams {
  float* scratch;  // attention_scratch_size(rows, heads, head_dim, keys) floats
  int rows;
  int groups;
  const int* group_starts;  // groups + 1 entries
  const int* row_images;
  int heads;
  int head_dim;
  int keys;
  float scale;
  int64_t q_stride;
  int64_t image_stride;
  int64_t row_stride;
};
template <typename T>
bool cross_attention(const CrossAttentionParams& params, const T* queries, const T* keys, const T* values, T* out,
                     cudaStream_t stream);
// Consecutive rows with the same image, at most kMaxCrossGroupRows each: the group_starts
// (with the final end) for cross_attention.
std::vector<int> cross_attention_groups(const std::vector<int>& row_images);

// Cross-attention over the encoder states (greedy's folded form), fp16/bf16: for each decoder
// row i (`images` of them, one per image) its `rows` (at most 16) folded queries [images, rows,
// width] attend over its image's states e = states + image_slots[i] * keys * width (image i
// when image_slots is null: lines in flight keep their images' states in their slots):
// mix[i, m] = sum_t softmax_t(scale * q'[i, m] . e[t]) e[t], in one pass over the states (scores
// and softmax in fp32). Widths 256, 384, 512, 768 and 1024; returns false (launching nothing)
// otherwise. scratch: folded_attention_scratch_size floats.
constexpr int kMaxFoldedSplits = 8;
struct FoldedAttentionParams {
  float* scratch;
  int images;
  int rows;
  int keys;
  int width;
  float scale;
  const int* image_slots = nullptr;
};
constexpr int kMaxFoldedHeads = 16;
inline bool folded_attention_width_supported(int width) {
  return width == 256 || width == 384 || width == 512 || width == 768 || width == 1024;
}
// How many blocks share an image's keys (enough blocks to fill the GPU).
int folded_attention_splits(int images, int keys);
inline size_t folded_attention_scratch_size(int images, int rows, int width) {
  return size_t(images) * rows * kMaxFoldedSplits * (width + 2);
}
template <typename T>
bool folded_attention(const FoldedAttentionParams& params, const T* queries, const T* states, T* mix,
                      cudaStream_t stream);

// Encoder layout: pixels [B, 3, H, W] fp32 -> patches [B * P, 3 * p * p] in T.
template <typename T>
void extract_patches(const float* pixels, int batch, int height, int width, int patch, T* patches,
                     cudaStream_t stream);
// tokens[b] = [cls, (distillation), patch rows of image b] + positions.
template <typename T>
void assemble_tokens(const T* patch_embeddings, const T* cls, const T* distillation,
                     const T* positions, int batch, int patches, int hidden, T* tokens,
                     cudaStream_t stream);
// qkv [B * S, 3 * heads * dim] -> q, k, v each [B * heads, S, dim].
template <typename T>
void split_heads(const T* qkv, int batch, int sequence, int heads, int dim, T* q, T* k, T* v,
                 cudaStream_t stream);
// context [B * heads, S, dim] -> [B * S, heads * dim].
template <typename T>
void merge_heads(const T* context, int batch, int sequence, int heads, int dim, T* out,
                 cudaStream_t stream);
// Fused encoder attention: qkv [B * S, 3 * heads * dim] (Q, K, V of each token side by side,
// heads within each) -> out [B * S, heads * dim], softmax(scale * Q K^T) V per (image, head),
// flash-style (no score matrix in memory, fp32 softmax and accumulation). Handles fp16/bf16
// with dim 64; returns false (launching nothing) otherwise. row_tiles: 16-query tiles per warp,
// 2 where the blocks still fill the GPU, else 1 (0); the tests force each.
constexpr int kEncoderAttentionHeadDim = 64;
template <typename T>
bool encoder_attention(const T* qkv, int batch, int sequence, int heads, int dim, float scale, T* out,
                       cudaStream_t stream, int row_tiles = 0);
// Row softmax (fp32 inside) of scores into probabilities; rows are `stride` elements apart.
// Scores are in the engine's dtype, as HF's eager attention keeps them.
template <typename T>
void softmax_rows(const T* scores, int64_t rows, int columns, int64_t stride, T* probabilities,
                  cudaStream_t stream);

// Greedy selection for each row: HF's min-length and no-repeat-ngram processors on the fp32
// logits, argmax (first maximum), the chosen token's probability; finished rows take `pad`.
// Row r decodes sequence images[r] (the batch shrinks as sequences finish): history is
// [sequences, max_length], and the token goes to history[images[r], position.of(r) + 1]; finished
// and the sums are per sequence too.
struct GreedyParams {
  int rows;
  const int* images;
  int vocab;
  int max_length;
  int min_length;
  int eos;
  int pad;
  int no_repeat_ngram_size;
  StepPositions position;
  int* history;
  int* finished;
  float* sum_log_probability;
  float* sum_probability;
  float* min_probability;
};
void greedy_select(const GreedyParams& params, const float* logits, cudaStream_t stream);
// Beam search's per-row step: the k best of log_softmax(logits) + running score, banned tokens
// at -inf, best first (ties: lower token). Row r's running score and sequence belong to slot
// row_slots[r]. Banned tokens come from HF's min_length and no_repeat_ngram processors over the
// slot's sequence (history [slots, max_length], position.of(r) + 1 tokens long).
constexpr int kMaxBeamTopK = 32;
constexpr int kMaxBeams = kMaxBeamTopK / 2;  // beam search keeps 2 * num_beams candidates
struct BeamTopKParams {
  int rows;
  int vocab;
  int k;
  const float* running;
  float* values;
  int* tokens;
  const int* row_slots = nullptr;
  const int* history = nullptr;
  StepPositions position{};
  int max_length = 0;
  int min_length = 0;
  int eos = 0;
  int no_repeat_ngram_size = 0;
};
void beam_top_k(const BeamTopKParams& params, const float* logits, cudaStream_t stream);

// The rows' positions += 1 (the last launch of a captured decode step): the one shared position,
// or each sequence's own, where rows come in runs of rows_per_sequence (a beam search's beams
// share their image's position).
void advance_position(const StepPositions& position, int rows, cudaStream_t stream, int rows_per_sequence = 1);
// tokens[r] = history[images[r], position.of(r)] (the next step's input).
void gather_last_tokens(const int* history, const int* images, int rows, int max_length,
                        const StepPositions& position, int* tokens, cudaStream_t stream);
// Greedy lines joining a running batch (in-flight batching): for each of `count` sequences
// lines[i], history = [start, pad, ...], not finished, sums at their start, position 0.
struct StartLinesParams {
  const int* lines;
  int count;
  int max_length;
  int start;
  int pad;
  int* history;
  int* finished;
  float* sum_log_probability;
  float* sum_probability;
  float* min_probability;
  int* positions;
};
void start_greedy_lines(const StartLinesParams& params, cudaStream_t stream);

// y[m, n] = activation(x[m, k] . w[n, k]^T + bias) for m <= kMaxSmallRows, streaming w once
// (bias may be null; no activation when it is empty).
// Returns false (launching nothing) when the shape or alignment does not suit it.
constexpr int kMaxSmallRows = 8;
template <typename T, typename TOut>
bool small_linear(const T* x, const T* w, const TOut* bias, TOut* y, int m, int n, int k,
                  std::optional<Activation> activation, cudaStream_t stream);
// small_linear of x = LayerNorm(residual + delta) (a post-LN residual stream) for k <= kMaxNormedWidth:
// the normalization runs in the kernel, which also writes x to `normed` (not aliasing residual).
template <typename T>
struct NormedInput {
  const T* residual = nullptr;
  const T* delta = nullptr;
  const float* gamma = nullptr;
  const float* beta = nullptr;
  float eps = 0.0f;
  T* normed = nullptr;
};
constexpr int kMaxNormedWidth = 1024;
template <typename T, typename TOut>
bool small_linear_normed(const NormedInput<T>& input, const T* w, const TOut* bias, TOut* y, int m, int n, int k,
                         std::optional<Activation> activation, cudaStream_t stream);

// Beam reordering of KV caches, all of them in one launch. Slots are image-major, `beams` per
// image; slot j of an image takes the cache its slot parents[j] (an index within the image)
// had, for positions [0, position.of(i * beams) + 1) (or [0, positions) when position.values is
// null). Each cache is [slots, ...] with slot_bytes per slot and position_bytes per position;
// caches[c] points at cache c. Blocks cover `images` images: images[i * beams] names the i-th
// (image i when null). Nothing moves once *stop is set (stop may be null). At most
// kMaxPermutedBeams beams.
constexpr int kMaxPermutedBeams = 64;
struct PermuteCachesParams {
  int beams;
  const int* parents;
  const int* images = nullptr;
  StepPositions position;
  int positions = 0;
  int64_t slot_bytes = 0;
  int64_t position_bytes = 0;
  const int* stop = nullptr;
};
void permute_beam_caches(const PermuteCachesParams& params, void* const* caches, int cache_count, int images,
                         int max_positions, cudaStream_t stream);

// Beam search's bookkeeping after beam_top_k, on the device: advance_beams
// (src/decoding/beam_state.h) for every active image, a warp per image. For each active image
// that is not frozen it picks the step's 2 * beams candidates, extends the running sequences
// (history, running scores, the caches' parents), offers the ones that ended to the finished
// set, and applies HF's per-image early-stop heuristic. A whole batch then evaluates HF's
// whole-batch stopping rule into flags[0]; once it is set, further steps change nothing. Lines in
// flight (whole_batch false) have no batch: each image stops on its own, frozen also when every
// candidate stopped, which is that rule for the image alone (HF's generate() of one image).
// Per-slot arrays are [images * beams]; per-image ones [images].
struct BeamMergeParams {
  int active_images;       // rows / beams; the rows of active image a are a * beams ...
  const int* row_images;   // row -> image
  int images;              // all images of the batch
  int beams;
  const float* values;     // beam_top_k's output, [rows, 2 * beams]
  const int* tokens;
  StepPositions position;  // row-indexed: active image a's sequences hold position.of(a * beams) + 1 tokens
  int max_length;
  int eos;
  bool early_stopping;        // HF's early_stopping=True
  bool never_stop_early;      // HF's early_stopping="never"
  double length_penalty;
  const float* length_denominators;  // [max_length + 1]: float(pow(length, length_penalty))
  int* history;            // running sequences [slots, max_length]
  int* history_scratch;
  float* running;          // running scores [slots]
  int* parents;            // [slots], for permute_beam_caches
  int* finished_ids;       // finished set: [slots, max_length] ...
  int* finished_ids_scratch;
  int* finished_lengths;   // ... 0 for a placeholder without a sequence
  float* finished_scores;  // length-penalised
  float* finished_sums;    // sum of log-probabilities
  int* finished_done;
  int* improvement_possible;  // [images], HF's is_early_stop_heuristic_unsatisfied
  int* flags;              // [1 + images]: the stop flag, then each image's frozen flag
  bool whole_batch = true;
};
void beam_merge(const BeamMergeParams& params, cudaStream_t stream);
// Beam lines joining a running batch (in-flight batching): each of `count` images lines[i] gets
// HF's initial state (every beam holds the start token, only the first may expand), an empty
// finished set, improvement possible, position 0, and frozen = `frozen` (a line batch's scratch
// image starts frozen: its padding rows run through the decoder and change nothing).
struct StartBeamLinesParams {
  const int* lines;
  int count;
  int beams;
  int max_length;
  int start;
  int pad;
  bool frozen;
  int* history;  // BeamMergeParams' arrays
  float* running;
  int* finished_lengths;
  int* finished_done;
  float* finished_scores;
  float* finished_sums;
  int* improvement_possible;
  int* flags;
  int* positions;
};
void start_beam_lines(const StartBeamLinesParams& params, cudaStream_t stream);

}  // namespace trocr::cuda
