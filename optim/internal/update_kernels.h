// Internal: the optimizers' elementwise update loops, compiled once per instruction set
// (optim/isa/updates.cpp, see autodiff/ops/internal/isa_dispatch.h) for float and double. Each
// optimizer's kernel (its file) reads the hyperparameters and calls its loop through
// GRADTAPE_ISA_KERNEL; the update formulas are documented there.
#pragma once

#include <cstdint>

#include "autodiff/ops/internal/isa_dispatch.h"

GRADTAPE_ISA_DECLARE(
    // w -= g * lr
    template <class T> void gradient_descent_update(std::int64_t n, T* w, const T* g, T lr);
    // a = a * mu + g; w -= a * lr, or with nesterov w -= g * lr + a * mu * lr
    template <class T>
    void momentum_update(std::int64_t n, T* w, T* a, const T* g, T lr, T mu, bool nesterov);
    // m += (g - m)(1 - beta1); v += (g^2 - v)(1 - beta2); w -= m alpha / (sqrt(v) + epsilon)
    template <class T> void adam_update(std::int64_t n, T* w, T* m, T* v, const T* g, T alpha,
                                        T one_minus_beta1, T one_minus_beta2, T epsilon);)
