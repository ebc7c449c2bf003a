// TensorBoard summaries the TF1 way: ad::summary::scalar and histogram record summary ops (added
// to the SUMMARIES collection), merge_all collects them, and FileWriter appends Event records to
// an "events.out.tfevents.<time>.<host>" file that TensorBoard reads.
//
// gradtape has no string dtype, so a summary op does not itself produce the serialized Summary
// protobuf TF1's ops do. Its output is the value being summarized (a float32 scalar, or the
// float64 values of a histogram); a Merged holds the summary ops, their tags and kinds, and turns
// their fetched values into the serialized Summary:
//   TF1:      summ = sess.run(merged, feed);              writer.add_summary(summ, step)
//   gradtape: auto summ = merged.run(session, feeds);     writer.add_summary(summ, step)
// or, fetching them with a train op in one run:
//   auto out = session.run(concat({train_op}, merged.fetches()), feeds);
//   writer.add_summary(merged.serialize(std::span(out).subspan(1)), step);
#pragma once

#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gradtape/autodiff/array.h"
#include "gradtape/autodiff/graph.h"
#include "gradtape/autodiff/session.h"
#include "gradtape/autodiff/tensor.h"

namespace ad::summary {

// A scalar summary of `tensor` (a real scalar of any dtype, cast to float32). The op is named
// `name` in the current name scope, made unique; that name is the tag TensorBoard shows, as in
// TF1. Added to each of `collections`. ValueError when the tensor is not a scalar; a non-scalar fed
// value is an InvalidArgumentError at run time.
Tensor scalar(std::string_view name, const Tensor& tensor,
              const std::vector<std::string>& collections = {std::string(GraphKeys::SUMMARIES)});

// A histogram summary of the values of `values` (any shape, real dtype). The buckets are TF's
// default ones (limits +-1e-12 * 1.1^k up to 1e20, and 0), with runs of empty buckets collapsed as
// TF writes them. A NaN or infinite value is an InvalidArgumentError at run time, as in TF.
Tensor histogram(std::string_view name, const Tensor& values,
                 const std::vector<std::string>& collections = {std::string(GraphKeys::SUMMARIES)});

// Summary ops merged into one Summary message.
class Merged {
 public:
  Merged() = default;
  // ValueError when a tensor is not a summary op's output.
  explicit Merged(std::vector<Tensor> summaries);

  // The tensors to fetch, in order.
  [[nodiscard]] const std::vector<Tensor>& fetches() const { return summaries_; }
  [[nodiscard]] bool empty() const { return summaries_.empty(); }
  // The serialized Summary protobuf of the values fetched for fetches() (one Array each, in
  // order). InvalidArgumentError when the count or a value's kind does not fit.
  [[nodiscard]] std::string serialize(std::span<const Array> values) const;
  // Runs fetches() in `session` and serializes the values: TF1's sess.run(merged, feed).
  [[nodiscard]] std::string run(Session& session, const FeedDict& feeds = {}) const;

 private:
  std::vector<Tensor> summaries_;
};

// Every summary op of collection `key` (TF's merge_all); empty when there is none.
[[nodiscard]] Merged merge_all(const Graph& graph, std::string_view key = GraphKeys::SUMMARIES);
// The given summary ops (TF's merge).
[[nodiscard]] Merged merge(std::vector<Tensor> summaries);

// The Summary protobuf of one value, for programs that compute it outside a graph.
[[nodiscard]] std::string scalar_summary(std::string_view tag, float value);
[[nodiscard]] std::string histogram_summary(std::string_view tag, std::span<const double> values);

struct FileWriterOptions {
  std::string filename_suffix{};  // appended to the event file's name
};

// Writes TensorBoard event files: "<logdir>/events.out.tfevents.<seconds, 10 digits>.<host>",
// TFRecord-framed (length, masked CRC-32C of the length, data, masked CRC-32C of the data) Event
// protobufs, the first one carrying file_version "brain.Event:2". Each record is flushed to the
// file when written, so a killed program loses nothing it added. Creates `logdir` if needed.
class FileWriter {
 public:
  explicit FileWriter(const std::string& logdir, FileWriterOptions options = {});
  FileWriter(const FileWriter&) = delete;
  FileWriter& operator=(const FileWriter&) = delete;
  FileWriter(FileWriter&&) = delete;
  FileWriter& operator=(FileWriter&&) = delete;
  ~FileWriter();

  // Appends an Event holding the serialized Summary `summary` at `global_step`.
  void add_summary(std::string_view summary, std::int64_t global_step = 0);
  // Forces the written records to disk (fsync).
  void flush();
  // Flushes and closes; later add_summary calls are a FailedPreconditionError.
  void close();

  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  void write_event(std::string_view event);

  std::string path_;
  std::FILE* file_ = nullptr;
};

namespace detail {
// CRC-32C (Castagnoli) of `bytes`, and TFRecord's mask of it.
[[nodiscard]] std::uint32_t crc32c(std::string_view bytes);
[[nodiscard]] std::uint32_t masked_crc32c(std::string_view bytes);
// One TFRecord: length, masked CRC of the length, data, masked CRC of the data.
[[nodiscard]] std::string tfrecord(std::string_view data);
}  // namespace detail

}  // namespace ad::summary
