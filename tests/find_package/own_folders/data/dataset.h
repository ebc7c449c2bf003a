// This project's own data/dataset.h (gradtape has one too): points of a line.
#pragma once

#include <vector>

namespace app::data {

struct Points {
  std::vector<double> x;
  std::vector<double> y;
};

}  // namespace app::data
