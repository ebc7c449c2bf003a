// Everything in ad::optim in one include: the optimizers, learning-rate schedules and gradient
// clipping.
#pragma once

#include "optim/adadelta.h"
#include "optim/adagrad.h"
#include "optim/adam.h"
#include "optim/clip.h"
#include "optim/ftrl.h"
#include "optim/gradient_descent.h"
#include "optim/momentum.h"
#include "optim/moving_averages.h"
#include "optim/optimizer.h"
#include "optim/proximal.h"
#include "optim/rmsprop.h"
#include "optim/schedules.h"
