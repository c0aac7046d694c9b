// The optimizer's CPU loops (sae/adam_update.h): elements split into contiguous pieces among the
// loop threads, compiled for AVX2 and FMA besides the baseline (sae/cpu_loops.h).
#include "sae/adam_update.h"

#include <cmath>

#include <ATen/record_function.h>
#include <c10/util/Exception.h>

#include "sae/cpu_loops.h"

namespace sweep::sae {
namespace {

// The step's constants in float, as the loops use them.
struct Coefficients {
  float beta1, beta2, keep1, keep2, step_size, inv_sqrt_correction2, eps;
  explicit Coefficients(const AdamStep& s)
      : beta1(static_cast<float>(s.beta1)), beta2(static_cast<float>(s.beta2)),
        keep1(static_cast<float>(1 - s.beta1)), keep2(static_cast<float>(1 - s.beta2)),
        step_size(static_cast<float>(s.lr / (1 - std::pow(s.beta1, s.count)))),
        inv_sqrt_correction2(static_cast<float>(1 / std::sqrt(1 - std::pow(s.beta2, s.count)))),
        eps(static_cast<float>(s.eps)) {}
};

// Elements [begin, end) of one parameter.
__attribute__((always_inline)) inline void update_from(int64_t begin, int64_t end, float* __restrict p,
                                                       const float* __restrict g, float* __restrict m,
                                                       float* __restrict v, Coefficients c) {
  for (int64_t i = begin; i < end; ++i) {
    const float m_i = c.beta1 * m[i] + c.keep1 * g[i], v_i = c.beta2 * v[i] + c.keep2 * (g[i] * g[i]);
    m[i] = m_i;
    v[i] = v_i;
    p[i] -= c.step_size * m_i / (std::sqrt(v_i) * c.inv_sqrt_correction2 + c.eps);
  }
}

SWEEP_VECTOR_CLONES
void elements_from(int64_t begin, int64_t end, float* p, const float* g, float* m, float* v, const Coefficients& c) {
  update_from(begin, end, p, g, m, v, c);
}

SWEEP_VECTOR_CLONES
void unit_rows_from(int64_t first, int64_t last, int64_t d_in, float* W, float* G, float* M, float* V,
                    const Coefficients& c) {
  for (int64_t r = first; r < last; ++r) {
    float *w = W + r * d_in, *g = G + r * d_in;
    const float inv_norm = 1 / std::sqrt(dot(w, w, d_in));
    const float along = dot(g, w, d_in) * inv_norm * inv_norm;  // (g . u) / |w|, so that (g . u) u = along w
    for (int64_t j = 0; j < d_in; ++j) g[j] -= along * w[j];
    update_from(0, d_in, w, g, M + r * d_in, V + r * d_in, c);
    const float inv_new_norm = 1 / std::sqrt(dot(w, w, d_in));
    for (int64_t j = 0; j < d_in; ++j) w[j] *= inv_new_norm;
  }
}

void check_same_floats(const at::Tensor& param, const at::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == at::kFloat && t.is_contiguous() &&
                  t.sizes() == param.sizes(),
              name, ": a contiguous float32 CPU tensor of the parameter's shape");
}

void check_all(const at::Tensor& param, const at::Tensor& grad, const at::Tensor& exp_avg,
               const at::Tensor& exp_avg_sq) {
  check_same_floats(param, param, "param");
  check_same_floats(param, grad, "grad");
  check_same_floats(param, exp_avg, "exp_avg");
  check_same_floats(param, exp_avg_sq, "exp_avg_sq");
}

// Written through their data, as an in-place operation would write them: their version counters
// say so (caches keyed on a tensor's version, such as the penalty's unit rows, rely on it).
void mark_written(std::initializer_list<const at::Tensor*> tensors) {
  for (const auto* t : tensors) t->unsafeGetTensorImpl()->bump_version();
}

}  // namespace

void adam_update(const at::Tensor& param, const at::Tensor& grad, const at::Tensor& exp_avg,
                 const at::Tensor& exp_avg_sq, const AdamStep& step) {
  RECORD_FUNCTION("sweep::adam_update", std::vector<c10::IValue>());
  check_all(param, grad, exp_avg, exp_avg_sq);
  const Coefficients c(step);
  in_pieces(param.numel(), 4, [&](int64_t begin, int64_t end) {
    elements_from(begin, end, param.data_ptr<float>(), grad.data_ptr<float>(), exp_avg.data_ptr<float>(),
                exp_avg_sq.data_ptr<float>(), c);
  });
  mark_written({&param, &exp_avg, &exp_avg_sq});
}

void unit_rows_adam_update(const at::Tensor& W, const at::Tensor& grad, const at::Tensor& exp_avg,
                           const at::Tensor& exp_avg_sq, const AdamStep& step) {
  RECORD_FUNCTION("sweep::unit_rows_adam_update", std::vector<c10::IValue>());
  check_all(W, grad, exp_avg, exp_avg_sq);
  TORCH_CHECK(W.dim() == 2, "W: a matrix of rows");
  const Coefficients c(step);
  const int64_t d_in = W.size(1);
  in_pieces(W.size(0), 4 * d_in, [&](int64_t first, int64_t last) {
    unit_rows_from(first, last, d_in, W.data_ptr<float>(), grad.data_ptr<float>(), exp_avg.data_ptr<float>(),
                   exp_avg_sq.data_ptr<float>(), c);
  });
  mark_written({&W, &grad, &exp_avg, &exp_avg_sq});
}

}  // namespace sweep::sae
