// Every TF1-style layer, loss and metric in one include: batch_normalization, dense, conv2d,
// pooling, dropout, flatten, ad::losses and the metrics.
#pragma once

#include "gradtape/layers/batch_normalization.h"
#include "gradtape/layers/conv2d.h"
#include "gradtape/layers/dense.h"
#include "gradtape/layers/dropout.h"
#include "gradtape/layers/flatten.h"
#include "gradtape/layers/layer.h"
#include "gradtape/layers/losses.h"
#include "gradtape/layers/metrics.h"
#include "gradtape/layers/normalization.h"
#include "gradtape/layers/pooling.h"
