/* optim.c -- SGD with momentum and Adam, as in PyTorch.
 * Tangled from doc/16-optim.nw: edit the book, not this file. */
#include "ag.h"

#include <math.h>
#include <stdlib.h>
#if defined(__AVX__) && !defined(AG_DOUBLE)
#include <immintrin.h> /* the four-lane Adam update below */
#endif

enum { OPTIM_PARALLEL_MIN = 1 << 14 }; /* smaller tensors are not worth waking threads for */

/* One zeroed array of items[i]->size reals for every trainable item of ps; NULL for buffers. */
static ag_real **state_new(const ag_params *ps, const char *who)
{
    ag_real **state = calloc((size_t)(ps->count > 0 ? ps->count : 1), sizeof *state);
    if (state == NULL) ag_fatal("%s: out of memory for the optimizer state", who);
    for (int i = 0; i < ps->count; i++) {
        if (!ps->items[i]->requires_grad) continue;
        state[i] = calloc((size_t)ps->items[i]->size, sizeof(ag_real));
        if (state[i] == NULL)
            ag_fatal("%s: out of memory for the state of \"%s\" (%ld values)", who,
                     ps->items[i]->name, ps->items[i]->size);
    }
    return state;
}

static void state_free(ag_real **state, int count)
{
    if (state == NULL) return;
    for (int i = 0; i < count; i++) free(state[i]);
    free(state);
}

static void check_params_unchanged(const ag_params *ps, int count, const char *who)
{
    if (ps->count != count)
        ag_fatal("%s: the parameter set had %d tensors when the optimizer was made and has %d "
                 "now; make every parameter before the optimizer", who, count, ps->count);
}
void ag_params_scale_grad(ag_params *ps, double c)
{
    for (int i = 0; i < ps->count; i++) {
        ag_tensor *p = ps->items[i];
        if (!p->requires_grad || p->grad == NULL) continue;
        #pragma omp parallel for schedule(static) if (p->size >= OPTIM_PARALLEL_MIN)
        for (long j = 0; j < p->size; j++) p->grad[j] = (ag_real)(p->grad[j] * c);
    }
}
ag_sgd *ag_sgd_new(ag_params *ps, double lr, double momentum)
{
    if (!(lr >= 0) || !(momentum >= 0 && momentum < 1))
        ag_fatal("ag_sgd_new: lr = %g and momentum = %g; expected lr >= 0 and momentum in "
                 "[0, 1)", lr, momentum);
    ag_sgd *opt = calloc(1, sizeof *opt);
    if (opt == NULL) ag_fatal("ag_sgd_new: out of memory");
    opt->params = ps;
    opt->count = ps->count;
    opt->lr = lr;
    opt->momentum = momentum;
    opt->velocity = momentum > 0 ? state_new(ps, "ag_sgd_new") : NULL;
    return opt;
}

void ag_sgd_step(ag_sgd *opt)
{
    check_params_unchanged(opt->params, opt->count, "ag_sgd_step");
    for (int i = 0; i < opt->count; i++) {
        ag_tensor *p = opt->params->items[i];
        if (!p->requires_grad) continue;
        ag_real *v = opt->velocity ? opt->velocity[i] : NULL;
        #pragma omp parallel for schedule(static) if (p->size >= OPTIM_PARALLEL_MIN)
        for (long j = 0; j < p->size; j++) {
            double g = p->grad[j];
            if (v != NULL) {
                v[j] = (ag_real)(opt->momentum * v[j] + g);
                g = v[j];
            }
            p->value[j] = (ag_real)(p->value[j] - opt->lr * g);
        }
    }
    opt->step++;
}

void ag_sgd_free(ag_sgd *opt)
{
    if (opt == NULL) return;
    state_free(opt->velocity, opt->count);
    free(opt);
}
ag_adam *ag_adam_new(ag_params *ps, double lr, double beta1, double beta2, double eps)
{
    if (!(lr >= 0) || !(beta1 >= 0 && beta1 < 1) || !(beta2 >= 0 && beta2 < 1) || !(eps >= 0))
        ag_fatal("ag_adam_new: lr = %g, beta1 = %g, beta2 = %g, eps = %g; expected lr >= 0, "
                 "betas in [0, 1) and eps >= 0", lr, beta1, beta2, eps);
    ag_adam *opt = calloc(1, sizeof *opt);
    if (opt == NULL) ag_fatal("ag_adam_new: out of memory");
    opt->params = ps;
    opt->count = ps->count;
    opt->lr = lr;
    opt->beta1 = beta1;
    opt->beta2 = beta2;
    opt->eps = eps;
    opt->m = state_new(ps, "ag_adam_new");
    opt->v = state_new(ps, "ag_adam_new");
    return opt;
}

enum { ADAM_RUN = 1 << 12 }; /* entries one thread updates at a time; a multiple of 4 */

typedef struct adam_constants {
    double beta1, beta2;
    double step_size;              /* lr / (1 - beta1^t) */
    double bias_correction2_sqrt;  /* sqrt(1 - beta2^t) */
    double eps;
} adam_constants;

/* The scalar update of n entries: the definition the vector path must reproduce. */
static void adam_update_scalar(const adam_constants *k, long n, ag_real *restrict p,
                               const ag_real *restrict g, ag_real *restrict m,
                               ag_real *restrict v)
{
    for (long j = 0; j < n; j++) {
        double gj = g[j];
        m[j] = (ag_real)(k->beta1 * m[j] + (1 - k->beta1) * gj);
        v[j] = (ag_real)(k->beta2 * v[j] + (1 - k->beta2) * gj * gj);
        double denom = sqrt((double)v[j]) / k->bias_correction2_sqrt + k->eps;
        p[j] = (ag_real)(p[j] - k->step_size * m[j] / denom);
    }
}

#if defined(__AVX__) && !defined(AG_DOUBLE)
static void adam_update(const adam_constants *k, long n, ag_real *restrict p,
                        const ag_real *restrict g, ag_real *restrict m, ag_real *restrict v)
{
    const __m256d beta1 = _mm256_set1_pd(k->beta1), rest1 = _mm256_set1_pd(1 - k->beta1);
    const __m256d beta2 = _mm256_set1_pd(k->beta2), rest2 = _mm256_set1_pd(1 - k->beta2);
    const __m256d step_size = _mm256_set1_pd(k->step_size), eps = _mm256_set1_pd(k->eps);
    const __m256d correction2 = _mm256_set1_pd(k->bias_correction2_sqrt);
    long j = 0;
    for (; j + 4 <= n; j += 4) {
        __m256d gj = _mm256_cvtps_pd(_mm_loadu_ps(g + j));
        __m256d mj = _mm256_cvtps_pd(_mm_loadu_ps(m + j));
        __m256d vj = _mm256_cvtps_pd(_mm_loadu_ps(v + j));
        __m128 m_new = _mm256_cvtpd_ps(_mm256_add_pd(_mm256_mul_pd(beta1, mj),
                                                     _mm256_mul_pd(rest1, gj)));
        __m128 v_new = _mm256_cvtpd_ps(_mm256_add_pd(_mm256_mul_pd(beta2, vj),
                                                     _mm256_mul_pd(_mm256_mul_pd(rest2, gj), gj)));
        _mm_storeu_ps(m + j, m_new);
        _mm_storeu_ps(v + j, v_new);
        __m256d denom = _mm256_add_pd(
            _mm256_div_pd(_mm256_sqrt_pd(_mm256_cvtps_pd(v_new)), correction2), eps);
        __m256d change = _mm256_div_pd(_mm256_mul_pd(step_size, _mm256_cvtps_pd(m_new)), denom);
        __m256d pj = _mm256_cvtps_pd(_mm_loadu_ps(p + j));
        _mm_storeu_ps(p + j, _mm256_cvtpd_ps(_mm256_sub_pd(pj, change)));
    }
    adam_update_scalar(k, n - j, p + j, g + j, m + j, v + j);
}
#else
static void adam_update(const adam_constants *k, long n, ag_real *restrict p,
                        const ag_real *restrict g, ag_real *restrict m, ag_real *restrict v)
{
    adam_update_scalar(k, n, p, g, m, v);
}
#endif
/* 1 when every byte of x [n] is zero: x is +0 throughout. */
static int all_bits_zero(const ag_real *x, long n)
{
    enum { CHUNK = 4096 }; /* bytes looked at before stopping to check */
    const unsigned char *bytes = (const unsigned char *)x;
    size_t size = (size_t)n * sizeof *x;
    for (size_t at = 0; at < size; at += CHUNK) {
        size_t end = size - at < CHUNK ? size : at + CHUNK;
        unsigned char any = 0;
        #pragma omp simd reduction(|:any)
        for (size_t i = at; i < end; i++) any |= bytes[i];
        if (any) return 0;
    }
    return 1;
}

/* 1 when p's gradient and moments m, v [p->size] are all +0: its Adam step would change
 * nothing. */
static int never_moved(const ag_tensor *p, const ag_real *m, const ag_real *v)
{
    return all_bits_zero(p->grad, p->size) && all_bits_zero(m, p->size) &&
           all_bits_zero(v, p->size);
}

void ag_adam_step(ag_adam *opt)
{
    check_params_unchanged(opt->params, opt->count, "ag_adam_step");
    opt->step++;
    adam_constants k = { opt->beta1, opt->beta2, 0, 0, opt->eps };
    k.step_size = opt->lr / (1 - pow(opt->beta1, (double)opt->step));
    k.bias_correction2_sqrt = sqrt(1 - pow(opt->beta2, (double)opt->step));
    unsigned char idle[opt->count > 0 ? opt->count : 1]; /* [count] 1: no step to take */
    for (int i = 0; i < opt->count; i++) {
        ag_tensor *p = opt->params->items[i];
        idle[i] = !p->requires_grad || never_moved(p, opt->m[i], opt->v[i]);
    }
    #pragma omp parallel
    for (int i = 0; i < opt->count; i++) {
        if (idle[i]) continue;
        ag_tensor *p = opt->params->items[i];
        long runs = (p->size + ADAM_RUN - 1) / ADAM_RUN;
        #pragma omp for schedule(static) nowait
        for (long r = 0; r < runs; r++) {
            long at = r * ADAM_RUN, n = p->size - at < ADAM_RUN ? p->size - at : ADAM_RUN;
            adam_update(&k, n, p->value + at, p->grad + at, opt->m[i] + at, opt->v[i] + at);
        }
    }
}

void ag_adam_free(ag_adam *opt)
{
    if (opt == NULL) return;
    state_free(opt->m, opt->count);
    state_free(opt->v, opt->count);
    free(opt);
}
