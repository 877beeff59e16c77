/* model.c -- the objective's settings, the model's parameters, and Eq. 8 as one graph.
 * Tangled from doc/24-objective.nw: edit the book, not this file. */
#include "dim.h"

#include <math.h>
#include <string.h>

int dim_objective_preset(dim_objective *o, const char *preset)
{
    static const struct {
        const char *name;
        double alpha, beta, gamma;
    } presets[] = {
        {"dim-g", 1, 0, 1},     /* DIM(G) */
        {"dim-l", 0, 1, 0.1},   /* DIM(L) */
        {"dim-lg", 1, 1, 0.1},  /* global and local together */
    };
    for (size_t i = 0; i < sizeof presets / sizeof presets[0]; i++)
        if (strcmp(preset, presets[i].name) == 0) {
            o->alpha = presets[i].alpha;
            o->beta = presets[i].beta;
            o->gamma = presets[i].gamma;
            o->bound = dim_bound_find("jsd");
            o->local_kind = DIM_LOCAL_DOT;
            return 0;
        }
    return -1;
}
void dim_model_init(dim_model *m, const dim_config *c, uint64_t seed)
{
    memset(m, 0, sizeof *m);
    m->config = *c;
    ag_rng rng;
    ag_rng_seed(&rng, seed);
    dim_encoder_init(&m->encoder, &m->params, c, &rng);
    dim_critics_init(&m->critics, &m->params, c, &rng);
    dim_prior_init(&m->prior, &m->prior_params, c, &rng);
}

void dim_model_free(dim_model *m)
{
    ag_params_free(&m->params);
    ag_params_free(&m->prior_params);
}
static void check_objective(const dim_objective *o, const dim_bound_state *global_state,
                            const dim_bound_state *local_state)
{
    if (!(o->alpha >= 0 && o->beta >= 0 && o->gamma >= 0) || !isfinite(o->alpha)
        || !isfinite(o->beta) || !isfinite(o->gamma))
        ag_fatal("dim_objective_graph: weights alpha = %g, beta = %g, gamma = %g; each must "
                 "be finite and at least 0", o->alpha, o->beta, o->gamma);
    if (o->alpha == 0 && o->beta == 0 && o->gamma == 0)
        ag_fatal("dim_objective_graph: alpha, beta and gamma are all 0; there is nothing to "
                 "optimise");
    if ((o->alpha != 0 || o->beta != 0) && o->bound == NULL)
        ag_fatal("dim_objective_graph: the objective has a mutual-information term but no "
                 "bound (set dim_objective.bound, e.g. with dim_bound_find)");
    if ((o->alpha != 0 && global_state == NULL) || (o->beta != 0 && local_state == NULL))
        ag_fatal("dim_objective_graph: a bound state is NULL for a term that is on");
}
dim_terms dim_objective_graph(ag_tape *t, dim_model *m, const dim_objective *o,
                              ag_tensor *images, ag_rng *rng, dim_bound_state *global_state,
                              dim_bound_state *local_state)
{
    check_objective(o, global_state, local_state);
    dim_terms terms = {NULL, NULL, NULL, NULL, NAN};
    dim_features f = dim_encode(t, &m->encoder, images);
    ag_tensor *loss = NULL;  /* scalar: the weighted terms added up as they come */
    if (o->alpha != 0) {
        ag_tensor *scores = dim_global_scores(t, &m->critics, &f);  /* [1, N, N] */
        terms.global_mi = o->bound->estimate(t, scores, global_state);
        loss = ag_scale(t, terms.global_mi, -o->alpha);
    }
    if (o->beta != 0) {
        ag_tensor *scores = dim_local_scores(t, &m->critics, &f, o->local_kind); /* [M*M, N, N] */
        terms.local_mi = o->bound->estimate(t, scores, local_state);
        ag_tensor *term = ag_scale(t, terms.local_mi, -o->beta);
        loss = loss ? ag_add(t, loss, term) : term;
    }
    if (o->gamma != 0) {
        terms.prior = dim_prior_objective(t, &m->prior, f.y, rng, &terms.prior_accuracy);
        ag_tensor *term = ag_scale(t, terms.prior, o->gamma);
        loss = loss ? ag_add(t, loss, term) : term;
    }
    terms.loss = loss;
    return terms;
}
