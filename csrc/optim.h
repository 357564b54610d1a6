#pragma once
// Fused optimizer steps and gradient utilities over lists of tensors ("multi-tensor" kernels).
//
// One call updates every tensor of a list: the lists hold raw pointers to C-contiguous buffers,
// `sizes[i]` is the element count of tensor i, and every list of one call has the same sizes
// (params[i], grads[i], exp_avgs[i], ... describe the same parameter). The work is split over
// elements across all tensors (parallel_for), so ten 1M-element tensors and one 10M-element
// tensor use the threads alike. Updates are in place; T is float or double, and the arithmetic
// runs in T (like PyTorch's fused CPU kernels for float32/float64).
//
// The update formulas are PyTorch's torch.optim ones, operation by operation; the comments at
// each function give the textbook form they equal. Hyperparameters are doubles; per-tensor
// scalars (bias corrections, learning-rate decay) are computed in double and rounded to T once.
#include <cstdint>
#include <vector>

namespace pydl {

struct SgdOptions {
  double lr = 1e-3, momentum = 0, dampening = 0, weight_decay = 0;
  bool nesterov = false, maximize = false;
};

// SGD with momentum (PyTorch form): g <- (maximize ? -g : g) + weight_decay * p;
// buf <- g on a tensor's first momentum step (init_buffer[i] != 0), else
// buf <- momentum * buf + (1 - dampening) * g; d <- nesterov ? g + momentum * buf : buf
// (d <- g when momentum == 0); p <- p - lr * d.
// With dampening = 0 this is the velocity form v <- a v - lr g, p <- p + v for v = -lr buf.
// momentum_buffers is ignored (may be empty) when momentum == 0.
template <typename T>
void sgd_step_cpu(const std::vector<T*>& params, const std::vector<const T*>& grads,
                  const std::vector<T*>& momentum_buffers, const std::vector<uint8_t>& init_buffer,
                  const std::vector<int64_t>& sizes, const SgdOptions& opt);

struct AdagradOptions {
  double lr = 1e-2, lr_decay = 0, weight_decay = 0, eps = 1e-10;
  bool maximize = false;
};

// AdaGrad: g <- (maximize ? -g : g) + weight_decay * p; clr = lr / (1 + (step - 1) lr_decay);
// sum <- sum + g*g; p <- p - clr * g / (sqrt(sum) + eps). steps[i] is tensor i's step count
// after this step's increment (1 on the first step).
template <typename T>
void adagrad_step_cpu(const std::vector<T*>& params, const std::vector<const T*>& grads,
                      const std::vector<T*>& state_sums, const std::vector<double>& steps,
                      const std::vector<int64_t>& sizes, const AdagradOptions& opt);

struct RmspropOptions {
  double lr = 1e-2, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0;
  bool centered = false, maximize = false;
};

// RMSprop: g <- (maximize ? -g : g) + weight_decay * p; sq <- alpha sq + (1 - alpha) g*g;
// centered: ga <- lerp(ga, g, 1 - alpha), avg = sqrt(sq - ga*ga) + eps; else avg = sqrt(sq) + eps;
// momentum > 0: buf <- momentum buf + g / avg, p <- p - lr buf; else p <- p - lr g / avg.
// grad_avgs is used only when centered, momentum_buffers only when momentum > 0.
template <typename T>
void rmsprop_step_cpu(const std::vector<T*>& params, const std::vector<const T*>& grads,
                      const std::vector<T*>& square_avgs, const std::vector<T*>& grad_avgs,
                      const std::vector<T*>& momentum_buffers, const std::vector<int64_t>& sizes,
                      const RmspropOptions& opt);

struct AdamOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  bool amsgrad = false, maximize = false;
  bool decoupled_weight_decay = false;  // AdamW: p <- p (1 - lr weight_decay) before the step
};

// Adam / AdamW: g <- maximize ? -g : g; AdamW: p <- p (1 - lr wd), Adam: g <- g + wd p;
// m <- lerp(m, g, 1 - beta1); v <- beta2 v + (1 - beta2) g*g; amsgrad: vmax <- max(vmax, v);
// p <- p - (lr / (1 - beta1^t)) m / (sqrt(v or vmax) / sqrt(1 - beta2^t) + eps), t = steps[i]
// (after this step's increment). max_exp_avg_sqs is used only when amsgrad.
template <typename T>
void adam_step_cpu(const std::vector<T*>& params, const std::vector<const T*>& grads,
                   const std::vector<T*>& exp_avgs, const std::vector<T*>& exp_avg_sqs,
                   const std::vector<T*>& max_exp_avg_sqs, const std::vector<double>& steps,
                   const std::vector<int64_t>& sizes, const AdamOptions& opt);

struct AdadeltaOptions {
  double lr = 1.0, rho = 0.9, eps = 1e-6, weight_decay = 0;
  bool maximize = false;
};

// Adadelta (Zeiler): g <- (maximize ? -g : g) + weight_decay * p; sq <- rho sq + (1 - rho) g*g;
// delta = sqrt(acc + eps) / sqrt(sq + eps) * g; acc <- rho acc + (1 - rho) delta*delta;
// p <- p - lr delta.
template <typename T>
void adadelta_step_cpu(const std::vector<T*>& params, const std::vector<const T*>& grads,
                       const std::vector<T*>& square_avgs, const std::vector<T*>& acc_deltas,
                       const std::vector<int64_t>& sizes, const AdadeltaOptions& opt);

struct AdamaxOptions {
  double lr = 2e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  bool maximize = false;
};

// Adamax (Adam's infinity-norm variant): g <- (maximize ? -g : g) + weight_decay * p;
// m <- lerp(m, g, 1 - beta1); u <- max(beta2 u, |g| + eps);
// p <- p - (lr / (1 - beta1^t)) m / u, t = steps[i] (after this step's increment).
template <typename T>
void adamax_step_cpu(const std::vector<T*>& params, const std::vector<const T*>& grads,
                     const std::vector<T*>& exp_avgs, const std::vector<T*>& exp_infs,
                     const std::vector<double>& steps, const std::vector<int64_t>& sizes,
                     const AdamaxOptions& opt);

struct NadamOptions {
  double lr = 2e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0,
         momentum_decay = 4e-3;
  bool maximize = false, decoupled_weight_decay = false;
};

// NAdam (Dozat; PyTorch's form with the momentum schedule mu_t = beta1 (1 - 0.96^(t psi) / 2)):
// g <- maximize ? -g : g; decoupled: p <- p (1 - lr wd), else g <- g + wd p;
// m <- lerp(m, g, 1 - beta1); v <- beta2 v + (1 - beta2) g*g; d = sqrt(v / (1 - beta2^t)) + eps;
// p <- p - lr (1 - mu_t) / (1 - P_t) g / d;  p <- p - lr mu_{t+1} / (1 - P_t mu_{t+1}) m / d,
// with P_t = mu_products[i] = mu_1 ... mu_t (this step's product) and t = steps[i].
template <typename T>
void nadam_step_cpu(const std::vector<T*>& params, const std::vector<const T*>& grads,
                    const std::vector<T*>& exp_avgs, const std::vector<T*>& exp_avg_sqs,
                    const std::vector<double>& steps, const std::vector<double>& mu_products,
                    const std::vector<int64_t>& sizes, const NadamOptions& opt);

struct RadamOptions {
  double lr = 1e-3, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, weight_decay = 0;
  bool maximize = false, decoupled_weight_decay = false;
};

// RAdam (Liu et al.): g, weight decay as NAdam; m <- lerp(m, g, 1 - beta1);
// v <- beta2 v + (1 - beta2) g*g; rho_inf = 2 / (1 - beta2) - 1,
// rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t). rho_t > 5: p <- p - lr m / (1 - beta1^t) *
// sqrt(1 - beta2^t) / (sqrt(v) + eps) * r_t, r_t = sqrt((rho_t-4)(rho_t-2) rho_inf /
// ((rho_inf-4)(rho_inf-2) rho_t)); else p <- p - lr m / (1 - beta1^t) (SGD with momentum).
template <typename T>
void radam_step_cpu(const std::vector<T*>& params, const std::vector<const T*>& grads,
                    const std::vector<T*>& exp_avgs, const std::vector<T*>& exp_avg_sqs,
                    const std::vector<double>& steps, const std::vector<int64_t>& sizes,
                    const RadamOptions& opt);

// Per-tensor vector norms (accumulated in double): norm_type 2 and 1 as usual, +inf the largest
// |x|, -inf the smallest, 0 the count of non-zeros, any other p > 0 (sum |x|^p)^(1/p). NaN
// propagates. An empty tensor has norm 0 (inf-norm 0, -inf-norm +inf as in torch). Throws
// std::invalid_argument for a negative finite p.
template <typename T>
std::vector<double> tensor_norms_cpu(const std::vector<const T*>& tensors,
                                     const std::vector<int64_t>& sizes, double norm_type);

// x <- x * factor for every tensor (clip_grad_norm_'s second pass).
template <typename T>
void scale_cpu(const std::vector<T*>& tensors, const std::vector<int64_t>& sizes, double factor);

// x <- min(max(x, lo), hi) for every tensor, NaN kept (clip_grad_value_).
template <typename T>
void clamp_cpu(const std::vector<T*>& tensors, const std::vector<int64_t>& sizes, double lo,
               double hi);

// a <- lerp(a, b, weight) = a + weight (b - a) for every pair (EMA: a <- decay a + (1 - decay) b
// with weight = 1 - decay), computed as PyTorch's lerp does.
template <typename T>
void lerp_cpu(const std::vector<T*>& targets, const std::vector<const T*>& sources,
              const std::vector<int64_t>& sizes, double weight);

}  // namespace pydl
