// Everything in ad::optim in one include: the optimizers, learning-rate schedules and gradient
// clipping.
#pragma once

#include "gradtape/optim/adadelta.h"
#include "gradtape/optim/adagrad.h"
#include "gradtape/optim/adam.h"
#include "gradtape/optim/clip.h"
#include "gradtape/optim/ftrl.h"
#include "gradtape/optim/gradient_descent.h"
#include "gradtape/optim/momentum.h"
#include "gradtape/optim/moving_averages.h"
#include "gradtape/optim/optimizer.h"
#include "gradtape/optim/proximal.h"
#include "gradtape/optim/rmsprop.h"
#include "gradtape/optim/schedules.h"
