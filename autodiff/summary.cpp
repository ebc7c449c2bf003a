// Summary ops (scalar, histogram), merging and the Summary protobuf encoding, with TF's default
// histogram buckets (tensorflow/core/lib/histogram/histogram.cc).
#include "autodiff/summary.h"

#include <algorithm>
#include <cfloat>
#include <cmath>

#include "autodiff/error.h"
#include "autodiff/internal/summary_proto.h"
#include "autodiff/kernel.h"
#include "autodiff/ops/elementwise.h"

namespace ad::summary {

namespace {

using detail::put_bytes;
using detail::put_double;
using detail::put_float;

void scalar_kernel(KernelContext& ctx) {
  const Array& value = ctx.input(0);
  if (value.rank() != 0) {
    ctx.fail(str("a scalar summary needs a scalar, got a value of shape ", value.shape()));
  }
  ctx.set_output(0, value);
}

void histogram_kernel(KernelContext& ctx) {
  const Array& values = ctx.input(0);
  for (const double v : values.data<double>()) {
    if (!std::isfinite(v)) ctx.fail("Nan in summary histogram (a NaN or infinite value)");
  }
  ctx.set_output(0, values);
}

const OpDef kScalarSummaryOp{.name = "ScalarSummary", .kernel = scalar_kernel};
const OpDef kHistogramSummaryOp{.name = "HistogramSummary", .kernel = histogram_kernel};

void add_to(Graph& graph, const Tensor& summary, const std::vector<std::string>& collections) {
  for (const auto& key : collections) graph.add_to_collection(key, summary);
}

void check_real(const char* what, std::string_view name, const Tensor& t) {
  if (!t) throw ValueError(str(what, " '", name, "': the tensor is empty"));
  if (t.is_op())
    throw ValueError(str(what, " '", name, "': '", t.name(), "' is an op, not a value"));
  if (t.dtype() == DType::Bool) {
    throw ValueError(str(what, " '", name, "': '", t.name(), "' is bool; cast it to a number"));
  }
}

// TF's default bucket limits: -DBL_MAX, ..., -1e-12, 0, 1e-12, 1.1e-12, ..., DBL_MAX.
const std::vector<double>& default_bucket_limits() {
  static const std::vector<double> limits = [] {
    std::vector<double> positive;
    for (double v = 1.0e-12; v < 1.0e20; v *= 1.1) positive.push_back(v);
    positive.push_back(DBL_MAX);
    std::vector<double> out;
    for (auto it = positive.rbegin(); it != positive.rend(); ++it) out.push_back(-*it);
    out.push_back(0.0);
    out.insert(out.end(), positive.begin(), positive.end());
    return out;
  }();
  return limits;
}

std::string value_message(std::string_view tag, std::string_view field) {
  std::string value;
  put_bytes(value, 1, tag);
  value += field;
  return value;
}

// HistogramProto: min, max, num, sum, sum_squares, then the (limit, count) pairs of the non-empty
// buckets, each run of empty buckets collapsed into the last one of the run (TF's
// EncodeToProto with preserve_zero_buckets = false).
std::string histogram_proto(std::span<const double> values) {
  const auto& limits = default_bucket_limits();
  std::vector<double> counts(limits.size(), 0.0);
  double min = DBL_MAX;
  double max = -DBL_MAX;
  double sum = 0;
  double sum_squares = 0;
  for (const double v : values) {
    const auto bucket = std::upper_bound(limits.begin(), limits.end(), v) - limits.begin();
    counts[static_cast<std::size_t>(bucket)] += 1;
    min = std::min(min, v);
    max = std::max(max, v);
    sum += v;
    sum_squares += v * v;
  }
  std::vector<double> out_limits;
  std::vector<double> out_counts;
  for (std::size_t i = 0; i < counts.size();) {
    double end = limits[i];
    double count = counts[i];
    ++i;
    if (count <= 0.0) {
      while (i < counts.size() && counts[i] <= 0.0) {
        end = limits[i];
        count = counts[i];
        ++i;
      }
    }
    out_limits.push_back(end);
    out_counts.push_back(count);
  }
  std::string proto;
  put_double(proto, 1, min);
  put_double(proto, 2, max);
  put_double(proto, 3, static_cast<double>(values.size()));
  put_double(proto, 4, sum);
  put_double(proto, 5, sum_squares);
  const auto packed = [&](std::uint32_t field, const std::vector<double>& doubles) {
    std::string body;
    for (const double d : doubles) detail::put_fixed64(body, std::bit_cast<std::uint64_t>(d));
    put_bytes(proto, field, body);
  };
  packed(6, out_limits);
  packed(7, out_counts);
  return proto;
}

std::string scalar_value(std::string_view tag, float value) {
  std::string field;
  put_float(field, 2, value);
  return value_message(tag, field);
}

// TF refuses a NaN or infinite value ("Nan in summary histogram"); here it would also fall past
// the last bucket.
void check_finite(std::string_view who, std::string_view tag, std::span<const double> values) {
  for (const double v : values) {
    if (!std::isfinite(v)) {
      throw InvalidArgumentError(str(who, " '", tag, "': Nan in summary histogram (", v, ")"));
    }
  }
}

std::string histogram_value(std::string_view tag, std::span<const double> values) {
  std::string field;
  put_bytes(field, 5, histogram_proto(values));
  return value_message(tag, field);
}

std::string summary_of(const std::vector<std::string>& values) {
  std::string summary;
  for (const auto& v : values) put_bytes(summary, 1, v);
  return summary;
}

}  // namespace

Tensor scalar(std::string_view name, const Tensor& tensor,
              const std::vector<std::string>& collections) {
  check_real("summary::scalar", name, tensor);
  if (tensor.shape().rank() != 0) {
    throw ValueError(str("summary::scalar '", name, "': '", tensor.name(), "' has shape ",
                         tensor.shape(), "; a scalar is needed"));
  }
  Graph& graph = tensor.graph();
  const Tensor value = tensor.dtype() == DType::Float32 ? tensor : cast(tensor, DType::Float32);
  const Tensor inputs[] = {value};
  const Tensor summary =
      graph.record1(kScalarSummaryOp, inputs, {DType::Float32, Shape{}}, {}, name);
  add_to(graph, summary, collections);
  return summary;
}

Tensor histogram(std::string_view name, const Tensor& values,
                 const std::vector<std::string>& collections) {
  check_real("summary::histogram", name, values);
  Graph& graph = values.graph();
  const Tensor value = values.dtype() == DType::Float64 ? values : cast(values, DType::Float64);
  const Tensor inputs[] = {value};
  const Tensor summary =
      graph.record1(kHistogramSummaryOp, inputs, {DType::Float64, values.shape()}, {}, name);
  add_to(graph, summary, collections);
  return summary;
}

Merged::Merged(std::vector<Tensor> summaries) : summaries_(std::move(summaries)) {
  for (const auto& s : summaries_) {
    if (!s || s.is_op() || (s.op().op != &kScalarSummaryOp && s.op().op != &kHistogramSummaryOp)) {
      throw ValueError(str("summary::merge: '", s ? s.name() : std::string("<empty>"),
                           "' is not the output of summary::scalar or summary::histogram"));
    }
  }
}

std::string Merged::serialize(std::span<const Array> values) const {
  if (values.size() != summaries_.size()) {
    throw InvalidArgumentError(
        str("summary::Merged: ", values.size(), " values for ", summaries_.size(), " summaries"));
  }
  std::vector<std::string> messages;
  for (std::size_t i = 0; i < values.size(); ++i) {
    const Node& node = summaries_[i].op();
    const Array& value = values[i];
    if (node.op == &kScalarSummaryOp) {
      if (value.dtype() != DType::Float32 || value.size() != 1) {
        throw InvalidArgumentError(str("summary::Merged: '", node.name,
                                       "' needs a float32 scalar, ", "got ", value.dtype(),
                                       value.shape()));
      }
      messages.push_back(scalar_value(node.name, value.data<float>()[0]));
    } else {
      if (value.dtype() != DType::Float64) {
        throw InvalidArgumentError(str("summary::Merged: '", node.name, "' needs float64 values, ",
                                       "got ", value.dtype(), value.shape()));
      }
      check_finite("summary::Merged", node.name, value.data<double>());
      messages.push_back(histogram_value(node.name, value.data<double>()));
    }
  }
  return summary_of(messages);
}

std::string Merged::run(Session& session, const FeedDict& feeds) const {
  if (summaries_.empty()) return {};
  const std::vector<Array> values = session.run(summaries_, feeds);
  return serialize(values);
}

Merged merge_all(const Graph& graph, std::string_view key) {
  return Merged(graph.get_collection(key));
}

Merged merge(std::vector<Tensor> summaries) { return Merged(std::move(summaries)); }

std::string scalar_summary(std::string_view tag, float value) {
  return summary_of({scalar_value(tag, value)});
}

std::string histogram_summary(std::string_view tag, std::span<const double> values) {
  check_finite("histogram_summary", tag, values);
  return summary_of({histogram_value(tag, values)});
}

}  // namespace ad::summary
