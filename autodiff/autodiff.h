// Everything needed to build and run models with the autodiff core, in one include.
#pragma once

#include "autodiff/array.h"
#include "autodiff/control.h"
#include "autodiff/error.h"
#include "autodiff/gradient_check.h"
#include "autodiff/gradients.h"
#include "autodiff/graph.h"
#include "autodiff/ops/array.h"
#include "autodiff/ops/basic.h"
#include "autodiff/ops/elementwise.h"
#include "autodiff/ops/matmul.h"
#include "autodiff/ops/nn.h"
#include "autodiff/ops/random.h"
#include "autodiff/ops/reduce.h"
#include "autodiff/session.h"
#include "autodiff/tensor.h"
#include "autodiff/variable.h"
