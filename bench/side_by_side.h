// Helpers shared by the side-by-side programs (bench/*_vs_torch.cpp): interleaved timing that
// reports the median wall and CPU time per iteration, the machine's copy bandwidth measured in the
// same run, and the process's peak resident memory.
#pragma once

#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

namespace bench {

// CPU time of the whole process (all threads), in seconds.
inline double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

inline double wall_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Median wall and CPU time of one iteration, in seconds.
struct Timing {
  double wall = 0;
  double cpu = 0;
  int samples = 0;
  int iterations_per_sample = 0;
};

inline double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 == 1 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

// Times several workloads against each other: each round runs one sample of every workload in turn,
// so a burst of load from other processes on a shared machine hits all of them alike. A sample is
// enough back-to-back iterations to last about `sample_seconds` (calibrated by a first call), and
// each workload's result is the median over the rounds of its per-iteration times.
inline std::vector<Timing> time_interleaved(const std::vector<std::function<void()>>& workloads,
                                            int rounds, double sample_seconds) {
  std::vector<int> per_sample(workloads.size(), 1);
  for (std::size_t w = 0; w < workloads.size(); ++w) {
    workloads[w]();  // warm-up: plans, pools, first-touch page faults
    const double t0 = wall_seconds();
    workloads[w]();
    const double one = std::max(wall_seconds() - t0, 1e-7);
    per_sample[w] = std::clamp(static_cast<int>(sample_seconds / one), 1, 1 << 20);
  }
  std::vector<std::vector<double>> wall(workloads.size()), cpu(workloads.size());
  for (int r = 0; r < rounds; ++r) {
    for (std::size_t w = 0; w < workloads.size(); ++w) {
      const double c0 = process_cpu_seconds();
      const double t0 = wall_seconds();
      for (int i = 0; i < per_sample[w]; ++i) workloads[w]();
      const double t1 = wall_seconds();
      const double c1 = process_cpu_seconds();
      wall[w].push_back((t1 - t0) / per_sample[w]);
      cpu[w].push_back((c1 - c0) / per_sample[w]);
    }
  }
  std::vector<Timing> out;
  for (std::size_t w = 0; w < workloads.size(); ++w) {
    out.push_back({median(wall[w]), median(cpu[w]), rounds, per_sample[w]});
  }
  return out;
}

// Copy bandwidth of one thread, in bytes moved per second (bytes read + bytes written, the unit the
// effective bandwidth of a kernel uses), over buffers well beyond the last-level cache. Two ways:
// glibc's memcpy (non-temporal stores for copies this large) and a plain vectorized loop (ordinary
// stores, so the destination is read into the cache first). Each as median wall and CPU rates.
struct CopyBandwidth {
  double memcpy_wall = 0;
  double memcpy_cpu = 0;
  double loop_wall = 0;
  double loop_cpu = 0;
  // The reference a kernel's effective bandwidth is compared with: the faster of the two copies.
  [[nodiscard]] double best_wall() const { return std::max(memcpy_wall, loop_wall); }
  [[nodiscard]] double best_cpu() const { return std::max(memcpy_cpu, loop_cpu); }
};

inline CopyBandwidth measure_copy_bandwidth(std::size_t bytes = std::size_t{128} << 20,
                                            int rounds = 9) {
  const std::size_t n = bytes / sizeof(float);
  std::vector<float> src(n), dst(n);
  for (std::size_t i = 0; i < n; ++i) src[i] = static_cast<float>(i % 1000);
  float* d = dst.data();
  const float* s = src.data();
  const auto timings = time_interleaved({[&] { std::memcpy(d, s, n * sizeof(float)); },
                                         [&] {
#pragma omp simd
                                           for (std::size_t i = 0; i < n; ++i) d[i] = s[i];
                                           asm volatile("" : : "r"(d) : "memory");  // keep the copy
                                         }},
                                        rounds, 0.05);
  const double moved = 2.0 * static_cast<double>(n * sizeof(float));
  return {moved / timings[0].wall, moved / timings[0].cpu, moved / timings[1].wall,
          moved / timings[1].cpu};
}

// A field of /proc/self/status in KiB ("VmHWM": peak resident set, "VmRSS": current); 0 if absent.
inline std::int64_t proc_status_kib(const std::string& field) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoll(line.substr(field.size() + 1));
  }
  return 0;
}

// Today's date as YYYY-MM-DD, for the table's header.
inline std::string today() {
  const std::time_t now = std::time(nullptr);
  char buffer[16];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%d", std::localtime(&now));
  return buffer;
}

// The 1-, 5- and 15-minute load averages: the table says how busy the machine was.
inline std::string load_average() {
  std::ifstream in("/proc/loadavg");
  double a = 0, b = 0, c = 0;
  in >> a >> b >> c;
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.2f %.2f %.2f", a, b, c);
  return buffer;
}

}  // namespace bench
