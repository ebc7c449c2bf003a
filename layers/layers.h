// Every TF1-style layer, loss and metric in one include: batch_normalization, dense, conv2d,
// pooling, dropout, flatten, ad::losses and the metrics.
#pragma once

#include "layers/batch_normalization.h"
#include "layers/conv2d.h"
#include "layers/dense.h"
#include "layers/dropout.h"
#include "layers/flatten.h"
#include "layers/losses.h"
#include "layers/metrics.h"
#include "layers/normalization.h"
#include "layers/pooling.h"
