/* dim.h -- Deep InfoMax as graphs on the engine.
 * Tangled from the doc/ chapters: edit the book, not this file. */
#ifndef DIM_H
#define DIM_H
#include "../autograd/ag.h"
/* ---- Layers (doc/20-encoder.nw) ---- */
enum { DIM_MAX_CONV = 3 };  /* convolutions of an encoder */

typedef struct dim_conv {
    ag_tensor *weight;       /* [OC, IC, K, K] */
    ag_tensor *bias;         /* [OC], or NULL: no bias */
    int stride, padding;
} dim_conv;

typedef struct dim_linear {
    ag_tensor *weight;       /* [OUT, IN] */
    ag_tensor *bias;         /* [OUT], or NULL: no bias */
} dim_linear;

typedef struct dim_batchnorm {
    ag_tensor *gamma, *beta;                /* [C] parameters: scale and shift */
    ag_tensor *running_mean, *running_var;  /* [C] buffers, used in evaluation */
} dim_batchnorm;
/* Layers initialised as PyTorch's defaults: weight and bias uniform in +-1/sqrt(fan_in),
 * fan_in = in (linear) or in * kernel * kernel (conv), the weight drawn before the bias from
 * rng. The tensors are added to ps as "NAME.weight" and "NAME.bias". */
void dim_conv_init(dim_conv *l, ag_params *ps, const char *name, int in, int out, int kernel,
                   int stride, int padding, ag_rng *rng);
void dim_linear_init(dim_linear *l, ag_params *ps, const char *name, int in, int out,
                     ag_rng *rng);
/* Batch normalisation of `channels` channels: "NAME.weight" (gamma, 1), "NAME.bias" (beta,
 * 0) trainable; "NAME.running_mean" (0) and "NAME.running_var" (1) buffers. */
void dim_batchnorm_init(dim_batchnorm *l, ag_params *ps, const char *name, int channels);
/* One block W_u of a layer W [u; v] + b that reads a concatenation: weight [out, in] uniform
 * in +-1/sqrt(fan_in), where fan_in counts the whole concatenation (times kernel^2 for a
 * conv); a bias [out] in the same interval only when with_bias (else bias is NULL). */
void dim_linear_init_block(dim_linear *l, ag_params *ps, const char *name, int in, int out,
                           int fan_in, int with_bias, ag_rng *rng);
void dim_conv_init_block(dim_conv *l, ag_params *ps, const char *name, int in, int out,
                         int kernel, int stride, int padding, int fan_in, int with_bias,
                         ag_rng *rng);
/* x [N, IC, H, W] -> [N, OC, H', W'], H' = (H + 2 padding - K) / stride + 1. */
ag_tensor *dim_conv_forward(ag_tape *t, const dim_conv *l, ag_tensor *x);
/* x [N, IN] -> x W^T + b [N, OUT]. */
ag_tensor *dim_linear_forward(ag_tape *t, const dim_linear *l, ag_tensor *x);
/* x [N, C] or [N, C, H, W], same shape out; momentum 0.1, eps 1e-5 (PyTorch's defaults). */
ag_tensor *dim_batchnorm_forward(ag_tape *t, const dim_batchnorm *l, ag_tensor *x);
/* ---- The encoder (doc/20-encoder.nw) ---- */
typedef struct dim_config {
    int in_channels, in_height, in_width;   /* 1x28x28 or 3x32x32; square */
    int nconv;                              /* 2 (28x28) or 3 (32x32) */
    int conv_channels[DIM_MAX_CONV];        /* 64, 128 (, 256): kernel 4, stride 2, padding 1 */
    int conv_batchnorm[DIM_MAX_CONV];       /* 0, 1 (28x28); 1, 1, 1 (32x32) */
    int local_layer;                        /* the conv whose output is C(x): 1 in both */
    int fc_units;                           /* 1024, batch norm + ReLU */
    int y_units;                            /* 64 */
    int critic_units;                       /* 512: width of every critic */
    int global_nconv;                       /* 2: global critic convs on C(x), kernel 3,
                                               stride 1, padding 0 (0, 1 or 2) */
    int global_conv_channels[2];            /* 64, 32 */
    int prior_units[2];                     /* 1000, 200 */
} dim_config;

/* The paper's configuration for images of channels x height x width: 1x28x28 or 3x32x32.
 * Returns 0, or -1 (c untouched) if the paper has none for that shape. */
int dim_config_for_input(dim_config *c, int channels, int height, int width);
/* A tiny configuration, for tests and drawings: 1x12x12 images, convs of 3 and 4 channels
 * (batch norm on the second), M = 3, fc 6, y 3, critics 5 wide with one global conv of 4
 * channels, prior 6 and 5. Returns 0. */
int dim_config_tiny(dim_config *c);
/* M, the side of the local feature map C(x); 0 if the convolutions do not fit the input. */
int dim_config_local_size(const dim_config *c);
typedef struct dim_encoder {
    dim_config config;
    dim_conv conv[DIM_MAX_CONV];          /* conv l: [conv_channels[l], in, 4, 4] */
    dim_batchnorm conv_bn[DIM_MAX_CONV];  /* used where conv_batchnorm[l]; zeroed elsewhere */
    dim_linear fc;                        /* [fc_units, C_last * H' * W'] */
    dim_batchnorm fc_bn;                  /* [fc_units] */
    dim_linear out;                       /* [y_units, fc_units] */
} dim_encoder;

typedef struct dim_features {
    ag_tensor *local;  /* [N, C_local, M, M]  C(x), the local feature map */
    ag_tensor *conv;   /* [N, C_last, H', W'] the last conv layer (after its ReLU) */
    ag_tensor *fc;     /* [N, fc_units]       after batch norm and ReLU */
    ag_tensor *y;      /* [N, y_units]        Y = E(x), no nonlinearity */
} dim_features;

/* Checks c (ag_fatal saying what is wrong) and adds the encoder's parameters to ps, named
 * "encoder.conv0", "encoder.bn1", "encoder.fc", "encoder.fc_bn", "encoder.out", drawn from
 * rng in that order. */
void dim_encoder_init(dim_encoder *e, ag_params *ps, const dim_config *c, ag_rng *rng);
/* Records E on t for images [N, C, H, W] (the configuration's C, H, W; ag_fatal otherwise). */
dim_features dim_encode(ag_tape *t, const dim_encoder *e, ag_tensor *images);
/* The feature the paper's tables call "conv", "fc" or "y"; NULL for any other name. */
ag_tensor *dim_feature_by_name(const dim_features *f, const char *name);
/* ---- The critics (doc/21-critics.nw) ---- */
typedef enum dim_local_kind { DIM_LOCAL_DOT, DIM_LOCAL_CONCAT } dim_local_kind;
typedef struct dim_critics dim_critics;  /* the three critics, defined below */
/* The global critic: convs on C(x) (conv[k].weight NULL when absent), then an MLP on
 * [features; y] whose first layer is split in two blocks, from_features (with the bias) and
 * from_y (without); width critic_units. */
typedef struct dim_global_critic {
    dim_conv conv[2];           /* [global_conv_channels[k], in, 3, 3] */
    dim_linear from_features;   /* [K, F], F = flattened size after the convs */
    dim_linear from_y;          /* [K, y_units], no bias */
    dim_linear hidden;          /* [K, K] */
    dim_linear out;             /* [1, K] */
} dim_global_critic;
/* scores [1, N, N]: scores[0, i, j] = T(x_j, y_i), from f->local [N, C, M, M] and f->y. */
ag_tensor *dim_global_scores(ag_tape *t, const dim_critics *c, const dim_features *f);
/* Encode-and-dot-product: L = l_out(ReLU(l_bn(l_hidden(C)))) + l_shortcut(C), 1x1 convs of
 * width K = critic_units on C(x); G the same with linear layers on Y; score <G_i, L_j[:, l]>. */
typedef struct dim_local_dot {
    dim_conv l_hidden, l_out, l_shortcut;   /* [K, C_local, 1, 1], [K, K, 1, 1], [K, C_local, 1, 1] */
    dim_batchnorm l_bn;                     /* [K] */
    dim_linear y_hidden, y_out, y_shortcut; /* [K, y_units], [K, K], [K, y_units] */
    dim_batchnorm y_bn;                     /* [K] */
} dim_local_dot;
/* Concat-and-convolve: the first 1x1 conv on [C(x); tiled y] split in from_features (1x1 conv
 * with the bias) and from_y (linear, no bias), then 1x1 convs K -> K -> 1 with ReLUs. */
typedef struct dim_local_concat {
    dim_conv from_features;   /* [K, C_local, 1, 1] */
    dim_linear from_y;        /* [K, y_units], no bias */
    dim_conv hidden;          /* [K, K, 1, 1] */
    dim_conv out;             /* [1, K, 1, 1] */
} dim_local_concat;
struct dim_critics {
    dim_global_critic global;
    dim_local_dot dot;
    dim_local_concat concat;
};

/* Adds the three critics' parameters to ps, sized by cfg (ag_fatal if the global critic's
 * convolutions do not fit the local map). */
void dim_critics_init(dim_critics *c, ag_params *ps, const dim_config *cfg, ag_rng *rng);
/* scores [M*M, N, N]: scores[l, i, j] = T(C^(l)(x_j), y_i), l the row-major location. */
ag_tensor *dim_local_scores(ag_tape *t, const dim_critics *c, const dim_features *f,
                            dim_local_kind kind);
/* The bounds of mutual information (doc/22-bounds.nw). Each takes scores [B, N, N] with
 * scores[b, i, j] = T(x_j, y_i): row i the code y_i = E(x_i), column j the candidate x_j,
 * positives on the diagonal, negatives off it, N >= 2. */
typedef struct dim_bound_state {   /* options and running state of a bound */
    double smile_tau;   /* SMILE's clip (estimator lab), default 5 */
    double mine_rate;   /* MINE's moving-average rate (estimator lab), default 0.01 */
    double mine_ema;    /* MINE's running E_M[e^T]; negative before the first step */
} dim_bound_state;

/* Sets the defaults: smile_tau 5, mine_rate 0.01, and no moving average yet (mine_ema -1). */
void dim_bound_state_init(dim_bound_state *s);

typedef struct dim_bound {
    const char *name;      /* "dv", "jsd", "infonce" (later "nwj", "mine", "smile") */
    const char *equation;  /* "Eq. 2" etc. */
    const char *summary;   /* one line for the help text and the book */
    /* the bound, a scalar to MAXIMISE, averaged over the B problems of scores [B, N, N] */
    ag_tensor *(*estimate)(ag_tape *t, ag_tensor *scores, dim_bound_state *state);
} dim_bound;

/* Every bound, one row each, in the order of the chapters that add them; dim_nbounds rows. */
extern const dim_bound dim_bounds[];
extern const int dim_nbounds;

/* The row of dim_bounds with this name, or NULL if there is none (or name is NULL). */
const dim_bound *dim_bound_find(const char *name);
/* Donsker-Varadhan, Eq. 2: mean over b of  mean_i s_bii - log mean_{i != j} exp(s_bij). */
ag_tensor *dim_bound_dv(ag_tape *t, ag_tensor *scores, dim_bound_state *state);
/* Jensen-Shannon, Eq. 4: mean over b of  -mean_i sp(-s_bii) - mean_{i != j} sp(s_bij);
 * always < 0 for finite scores, -2 log 2 when every score is 0. */
ag_tensor *dim_bound_jsd(ag_tape *t, ag_tensor *scores, dim_bound_state *state);
/* infoNCE, Eq. 5 as an MI bound: mean over b, i of  s_bii - logsumexp_j s_bij, plus log N;
 * always < log N (the ceiling of the bound), 0 when all scores are equal. */
ag_tensor *dim_bound_infonce(ag_tape *t, ag_tensor *scores, dim_bound_state *state);
/* The prior discriminator of Eq. 7 (doc/23-prior.nw): y_units -> 1000 -> 200 -> 1, ReLU. */
typedef struct dim_prior {
    dim_linear l0;  /* [prior_units[0], y_units] */
    dim_linear l1;  /* [prior_units[1], prior_units[0]] */
    dim_linear l2;  /* [1, prior_units[1]]: the logit a, D = sigmoid(a) */
} dim_prior;

/* Make the discriminator's parameters "prior.l0.weight" ... "prior.l2.bias" in ps (the prior's
 * own set), initialised like PyTorch's linear layers from rng. */
void dim_prior_init(dim_prior *d, ag_params *ps, const dim_config *c, ag_rng *rng);

/* D^ = E_V[log D(v)] + E_P[log(1 - D(sigmoid(y)))] (Eq. 7), a scalar, for the codes y
 * [N, y_units] and N samples v drawn uniform in [0,1]^y_units from rng (N * y_units draws in
 * row-major order). The discriminator ascends it, the encoder descends it. accuracy (may be
 * NULL) receives the fraction of the 2N samples the discriminator classifies right. */
ag_tensor *dim_prior_objective(ag_tape *t, const dim_prior *d, ag_tensor *y, ag_rng *rng,
                               double *accuracy);
/* The weights and choices of Eq. 8 (doc/24-objective.nw). */
typedef struct dim_objective {
    double alpha, beta, gamma;     /* Eq. 8 weights: global MI, local MI, prior matching */
    const dim_bound *bound;        /* the estimator for the global and local terms */
    dim_local_kind local_kind;     /* the local critic */
} dim_objective;

/* The paper's settings: "dim-g" (1, 0, 1), "dim-l" (0, 1, 0.1), "dim-lg" (1, 1, 0.1), with the
 * JSD bound and the dot-product local critic. Returns 0, or -1 (o untouched) if unknown. */
int dim_objective_preset(dim_objective *o, const char *preset);
/* Every parameter of DIM, in two sets with opposite objectives. */
typedef struct dim_model {
    dim_config config;
    ag_params params;        /* encoder + critics: the encoder's optimiser descends the loss */
    ag_params prior_params;  /* the discriminator: its own optimiser ascends D^ */
    dim_encoder encoder;
    dim_critics critics;
    dim_prior prior;
} dim_model;

/* Make the encoder, critics (into params) and discriminator (into prior_params) for c, all
 * drawn from one generator seeded with seed. */
void dim_model_init(dim_model *m, const dim_config *c, uint64_t seed);
/* Free both parameter sets; m may be made again. */
void dim_model_free(dim_model *m);
/* One evaluation of the objective on a batch. */
typedef struct dim_terms {
    ag_tensor *loss;          /* scalar the encoder and critics minimise:
                                 -(alpha * global + beta * local) + gamma * prior */
    ag_tensor *global_mi;     /* scalar bound, NULL when alpha == 0 */
    ag_tensor *local_mi;      /* scalar bound, the mean over the M*M locations; NULL when
                                 beta == 0 */
    ag_tensor *prior;         /* scalar D^ (Eq. 7), NULL when gamma == 0 */
    double prior_accuracy;    /* the discriminator's accuracy; NaN when gamma == 0 */
} dim_terms;

/* Record Eq. 8 on t for images [N, C, H, W] (N >= 2): the encoder, then each term whose weight
 * is not zero. rng gives the prior samples; the states belong to the global and local bounds
 * (they may be NULL when that term's weight is zero). */
dim_terms dim_objective_graph(ag_tape *t, dim_model *m, const dim_objective *o,
                              ag_tensor *images, ag_rng *rng, dim_bound_state *global_state,
                              dim_bound_state *local_state);
/* Training: two Adam optimisers playing the min-max of Eq. 7 and 8. */
typedef struct dim_trainer {
    dim_model *model;                    /* not owned */
    dim_objective objective;
    ag_adam *encoder_adam, *prior_adam;  /* Adam(lr, 0.9, 0.999, 1e-8) on params, prior_params */
    ag_tape *tape;                       /* a growing tape: holds the last step's graph */
    ag_rng rng;                          /* the prior samples; saved in checkpoints */
    dim_bound_state global_state, local_state;
    long step;                           /* steps taken */
} dim_trainer;

typedef struct dim_step_stats {   /* the terms of one step, before it moved anything; NaN: off */
    double loss, global_mi, local_mi, prior, prior_accuracy;
} dim_step_stats;

/* Make the optimisers (learning rate lr), a growing tape and the prior's generator (seeded
 * with seed) for training m with o. */
void dim_trainer_init(dim_trainer *tr, dim_model *m, const dim_objective *o, double lr,
                      uint64_t seed);
/* Free what dim_trainer_init made; the model stays. */
void dim_trainer_free(dim_trainer *tr);
/* One step on the batch images [n, C, H, W] (the model's C, H, W): the encoder and critics
 * descend the loss, the discriminator ASCENDS D^ (its gradient's sign flipped before its own
 * Adam step) -- simultaneous gradient descent-ascent, Eq. 7 and 8. Deterministic: the same
 * model, seed and batches give bit-identical parameters. */
dim_step_stats dim_train_step(dim_trainer *tr, const ag_real *images, int n);
/* Datasets: 8-bit images and their labels, read from files or generated. */
typedef struct dim_dataset {
    char name[32];             /* "fashion-mnist", "mnist", "cifar10", "shapes" */
    int count;                 /* images */
    int channels, height, width;
    int nclasses;              /* 10 for every dataset here */
    unsigned char *pixels;     /* [count, channels, height, width], 0..255 */
    unsigned char *labels;     /* [count], 0..nclasses-1 */
} dim_dataset;

typedef enum dim_split { DIM_SPLIT_TRAIN, DIM_SPLIT_TEST } dim_split;

/* Load one split of the dataset a spec names: "fashion-mnist[:DIR]", "mnist:DIR",
 * "cifar10:DIR" or "shapes". Returns 0, or DIM_DATA_BAD_SPEC (a usage error) or
 * DIM_DATA_BAD_FILE (a data error) after writing one line naming the problem into error. */
enum { DIM_DATA_OK = 0, DIM_DATA_BAD_FILE = 1, DIM_DATA_BAD_SPEC = 2 };
int dim_dataset_load(dim_dataset *d, const char *spec, dim_split split, char *error,
                     size_t error_size);
void dim_dataset_free(dim_dataset *d);
/* Images [n, C, H, W] scaled to [-1, 1] and their labels, for the given indices. */
void dim_dataset_batch(const dim_dataset *d, const int *indices, int n,
                       ag_real *images, int *labels);
int dim_idx_parse(const unsigned char *bytes, size_t size, int ndim, long dims[3],
                  size_t *header, const char *path, char *error, size_t error_size);
int dim_cifar_parse(const unsigned char *bytes, size_t size, const char *path,
                    char *error, size_t error_size);
/* Checkpoints (doc/31-checkpoint.nw). What a run was, saved in every checkpoint. */
typedef struct dim_run_info {
    char data_spec[256];   /* the --data spec */
    char preset[16];       /* "dim-l", "dim-g", "dim-lg" or "custom" (weights given) */
    char bound[16];        /* the estimator's name in dim_bounds */
    int local_kind;        /* dim_local_kind */
    double alpha, beta, gamma, lr;
    int batch, epochs;     /* epochs asked for */
    int epoch;             /* epochs completed */
    uint64_t seed;
    int limit;             /* trained on the first `limit` images of the split; 0: all */
} dim_run_info;
/* Write the model, the trainer's optimisers, generator, steps and bound states, the data-order
 * generator (NULL: stored as zeros) and info to path atomically: a temporary file in the same
 * directory, fsync, rename, fsync of the directory. An interrupted or failed save leaves the
 * previous file at path as it was. Returns 0, or 1 (DIM_DATA_BAD_FILE) with one line in error
 * naming the file and the problem. */
int dim_checkpoint_save(const char *path, const dim_trainer *tr, const ag_rng *data_rng,
                        const dim_run_info *info, char *error, size_t error_size);
/* Read path: makes m (dim_model_init from the stored configuration, then the stored values).
 * With tr != NULL also makes the trainer (dim_trainer_init) and restores its state; with
 * data_rng or info != NULL restores those. Returns 0, or 1 (DIM_DATA_BAD_FILE) with a message
 * naming the file and the problem: missing, truncated, bad magic, another version, bad CRC,
 * corrupt, shapes of another model. On failure m and tr are left zeroed, nothing allocated. */
int dim_checkpoint_load(const char *path, dim_model *m, dim_trainer *tr, ag_rng *data_rng,
                        dim_run_info *info, char *error, size_t error_size);
/* The same from size bytes in memory; path only names them in messages. Validates everything
 * before it allocates anything that a size in the bytes decides. */
int dim_checkpoint_parse(const unsigned char *bytes, size_t size, const char *path,
                         dim_model *m, dim_trainer *tr, ag_rng *data_rng,
                         dim_run_info *info, char *error, size_t error_size);
/* Writing a file atomically: write to f.file, then commit (or abandon). */
typedef struct dim_atomic_file {
    FILE *file;             /* the temporary file, open for writing */
    char path[4096];        /* the file it becomes on commit */
    char temporary[4096];   /* "path.tmp-XXXXXX", beside it */
} dim_atomic_file;
/* Open a new temporary file beside path. 0, or 1 with a message. */
int dim_atomic_open(dim_atomic_file *f, const char *path, char *error, size_t error_size);
/* Flush, fsync and close the temporary file and rename it to path: path then holds the new
 * contents or, on any failure (1 with a message), is untouched and the temporary is gone. */
int dim_atomic_commit(dim_atomic_file *f, char *error, size_t error_size);
/* Close and delete the temporary file; path is untouched. */
void dim_atomic_abandon(dim_atomic_file *f);
/* ---- Evaluation (doc/33-eval.nw) ---- */
/* Features of a dataset: one row per image, in the dataset's order. */
typedef struct dim_feature_matrix {
    char layer[16];    /* "conv", "fc", "y" or "pixels" */
    int rows, cols;    /* N images, D features each */
    ag_real *values;   /* [rows, cols] row-major, owned; NULL when empty */
} dim_feature_matrix;

/* A zeroed rows x cols matrix named layer. 0, or 1 with a message if memory runs out. */
int dim_feature_matrix_alloc(dim_feature_matrix *m, const char *layer, int rows, int cols,
                             char *error, size_t error_size);
void dim_feature_matrix_free(dim_feature_matrix *m);  /* m may be freed twice */

/* The frozen encoder e in evaluation mode (batch norm on its running statistics) on every
 * image of d, in batches of `batch` on one growing tape reset per batch: out[k] (made here)
 * gets feature layers[k] ("conv", "fc" or "y", flattened row-major), row i for image i.
 * The parameters and running statistics are not changed. 0, or 1 with a message if memory
 * runs out (out is then freed). d's images must have e's shape (ag_fatal otherwise). */
int dim_extract_features(const dim_encoder *e, const dim_dataset *d, int nlayers,
                         const char *const *layers, int batch, dim_feature_matrix *out,
                         char *error, size_t error_size);
/* The images themselves, scaled to [-1, 1] as the encoder sees them: layer "pixels". */
int dim_pixel_features(const dim_dataset *d, dim_feature_matrix *out, char *error,
                       size_t error_size);
/* z = (v - mean) / scale with the statistics of the training split, per feature. */
typedef struct dim_standardiser {
    int cols;
    double *mean;   /* [cols] the mean of each feature over the training rows */
    double *scale;  /* [cols] its standard deviation (population), or 1 where that is 0 */
} dim_standardiser;

/* The statistics of train's columns. 0, or 1 with a message if memory runs out. */
int dim_standardiser_fit(dim_standardiser *s, const dim_feature_matrix *train, char *error,
                         size_t error_size);
/* Standardise m in place (the training split, then the test split, with the same s). */
void dim_standardiser_apply(const dim_standardiser *s, dim_feature_matrix *m);
void dim_standardiser_free(dim_standardiser *s);
/* Classifiers on frozen features: the linear probe (logistic regression) and the paper's
 * non-linear one (hidden layer, batch norm, ReLU, dropout). */
typedef enum dim_probe_kind { DIM_PROBE_LINEAR, DIM_PROBE_MLP } dim_probe_kind;
enum { DIM_PROBE_MAX_LR_CANDIDATES = 4 };

typedef struct dim_probe_config {
    dim_probe_kind kind;
    int hidden;          /* MLP: hidden units (200) */
    double dropout;      /* MLP: dropout probability after the hidden layer (0.1) */
    int epochs;          /* passes over the training rows */
    int batch;           /* rows per Adam step */
    int lr_candidates;   /* 1: train with lr[0]; 2 or more: choose by held-out accuracy */
    double lr[DIM_PROBE_MAX_LR_CANDIDATES];  /* [lr_candidates] Adam's initial learning rates,
                                               * each decayed to 0 along a half cosine */
    double holdout;      /* fraction of the training rows held out to choose a rate (0.1) */
    double weight_decay; /* lambda of the penalty lambda/2 |W|^2 on the weight matrices */
    uint64_t seed;       /* initial weights, order of the rows, dropout masks */
} dim_probe_config;

typedef struct dim_probe_result {
    double train_accuracy;  /* fraction of the training rows classified right, after training */
    double test_accuracy;   /* the same on the test rows: the number the tables report */
    double final_loss;      /* mean cross-entropy over the last epoch's steps */
    double lr;              /* the learning rate of the final training: chosen, or c->lr[0] */
    double holdout_accuracy[DIM_PROBE_MAX_LR_CANDIDATES];  /* [lr_candidates] per rate tried */
} dim_probe_result;

/* "linear" or "mlp". */
const char *dim_probe_name(dim_probe_kind kind);
/* The kind named name; 0, or -1 if there is none. */
int dim_probe_find(const char *name, dim_probe_kind *kind);
/* The defaults of this chapter for a probe of the given kind, seed 0. */
void dim_probe_defaults(dim_probe_config *c, dim_probe_kind kind);
/* Train a probe on (train, train_labels) and score it on (test, test_labels), labels in
 * 0 .. classes-1; the features should be standardised (dim_standardiser). With 2 or more
 * lr_candidates the learning rate is first chosen on training rows held out from a training
 * on the rest; the test rows are never used for it. Deterministic: the same config and data
 * give the same result for any number of threads. */
dim_probe_result dim_probe_run(const dim_probe_config *c, const dim_feature_matrix *train,
                               const int *train_labels, const dim_feature_matrix *test,
                               const int *test_labels, int classes);
/* I(X; Y) by a separately trained separable critic T(x, y) = <h(y), g(x)> and the DV bound
 * (Eq. 2), evaluated on held-out pairs (doc/33-eval.nw). */
typedef struct dim_mi_config {
    int hidden;      /* width of the hidden layers of g and h (256) */
    int embed;       /* width of g(x) and h(y) (64) */
    int steps;       /* Adam steps on the training pairs */
    int batch;       /* N: pairs per step and per test batch (128) */
    double lr;       /* Adam's learning rate */
    uint64_t seed;   /* initial weights, the batches */
} dim_mi_config;

typedef struct dim_mi_result {
    double estimate;        /* the mean DV bound over the test batches, nats */
    double standard_error;  /* of that mean, over the batches */
    int batches;            /* test batches of N pairs (an incomplete last one is left out) */
    double train_bound;     /* the mean DV bound over the last tenth of the training steps */
} dim_mi_result;

void dim_mi_defaults(dim_mi_config *c);
/* Train the critic on the pairs (row i of x_train, row i of y_train) and evaluate the bound on
 * the test pairs. Deterministic for a given config. */
dim_mi_result dim_mi_estimate(const dim_mi_config *c, const dim_feature_matrix *x_train,
                              const dim_feature_matrix *y_train,
                              const dim_feature_matrix *x_test,
                              const dim_feature_matrix *y_test);
/* NumPy .npy files, format version 1.0 (doc/33-eval.nw). */
enum { DIM_NPY_ALIGN = 64, DIM_NPY_HEADER_MAX = 256 };
/* The prefix and header of an array of the given descr ("<f4", "|u1") and shape (ndim 1 or
 * 2, C order) into buf; returns its length, a multiple of DIM_NPY_ALIGN. */
size_t dim_npy_header(char buf[DIM_NPY_HEADER_MAX], const char *descr, int ndim,
                      const long *shape);
/* m as a float32 [rows, cols] array, or labels as a uint8 [count] array, written atomically
 * (a temporary file beside path, fsync, rename). 0, or 1 with a message naming the file. */
int dim_npy_write_features(const char *path, const dim_feature_matrix *m, char *error,
                           size_t error_size);
int dim_npy_write_labels(const char *path, const unsigned char *labels, long count,
                         char *error, size_t error_size);

/* The estimator lab (doc/40-estimator-lab.nw): X ~ N(0, I_d), Y = rho X + sqrt(1 - rho^2) e. */
double dim_gaussian_mi(int d, double rho);   /* the true I(X;Y) = -(d/2) log(1 - rho^2), nats */
double dim_gaussian_rho(int d, double mi);   /* its inverse: the rho in [0, 1) that gives mi >= 0 */
/* n pairs drawn from rng: x and y are [n, d], row k of y correlated with row k of x. */
void dim_gaussian_sample(ag_rng *rng, int n, int d, double rho, ag_real *x, ag_real *y);
/* New bounds (doc/40-estimator-lab.nw); the same contract as dim_bound_dv. */
ag_tensor *dim_bound_nwj(ag_tape *t, ag_tensor *scores, dim_bound_state *state);   /* NWJ */
ag_tensor *dim_bound_mine(ag_tape *t, ag_tensor *scores, dim_bound_state *state);  /* MINE */
ag_tensor *dim_bound_smile(ag_tape *t, ag_tensor *scores, dim_bound_state *state); /* SMILE */
/* Bound values computed in double from scores [B, N, N] without touching the tape, each the
 * mean over the B problems: DV with the negatives' scores clipped to [-tau, tau] (tau =
 * INFINITY: plain DV, Eq. 2), and NWJ of the critic T + shift, E_P[T + shift] - E_M[e^(T + shift - 1)]. */
double dim_dv_value(const ag_tensor *scores, double tau);
double dim_nwj_value(const ag_tensor *scores, double shift);
typedef enum dim_mibench_critic { DIM_CRITIC_SEPARABLE, DIM_CRITIC_CONCAT } dim_mibench_critic;
enum { DIM_MIBENCH_MAX_LEVELS = 16, DIM_MIBENCH_MAX_ESTIMATORS = 16 };

typedef struct dim_mibench_config {
    int dim;                    /* d: X, Y in R^d (20) */
    int batch;                  /* N samples per step; the critic scores all N^2 pairs (64) */
    int hidden;                 /* width of the critics' hidden layers (256) */
    int embed;                  /* separable critic: the width of g(x) and h(y) (32) */
    int nlevels;
    double levels[DIM_MIBENCH_MAX_LEVELS]; /* the true MI of each level, nats (2, 4, ..., 10) */
    int steps_per_level;        /* 4000 */
    double lr;                  /* Adam's learning rate (5e-4) */
    dim_mibench_critic critic;  /* separable or concat */
    uint64_t seed;              /* the samples and the critics' initial weights (0) */
    int nestimators;
    const char *estimators[DIM_MIBENCH_MAX_ESTIMATORS]; /* names in dim_bounds; not owned */
    double smile_tau;           /* SMILE's clip (5) */
    double mine_rate;           /* MINE's moving-average rate (0.01) */
    int threads;                /* estimators trained at once; 0: OpenMP's default */
    FILE *progress;             /* where the progress line goes; NULL: nowhere */
} dim_mibench_config;

void dim_mibench_defaults(dim_mibench_config *c); /* the protocol above, all six estimators */
void dim_mibench_short(dim_mibench_config *c);    /* the short mode: changes the schedule only */
typedef struct dim_mibench_result {
    long nsteps;        /* nlevels * steps_per_level */
    double *true_mi;    /* [nsteps] the true MI at each step */
    double *estimate;   /* [nestimators, nsteps] what each estimator reported at each step */
    double seconds;     /* wall-clock time of the run */
} dim_mibench_result;

/* Train every estimator of c through the schedule. Stops with a message (ag_fatal) when an
 * estimator is not in dim_bounds or the configuration is out of range. Free with
 * dim_mibench_free. */
void dim_mibench_run(const dim_mibench_config *c, dim_mibench_result *r);
void dim_mibench_free(dim_mibench_result *r);
/* The per-step TSV: step, true_mi, one column per estimator. */
void dim_mibench_write_steps(FILE *out, const dim_mibench_config *c, const dim_mibench_result *r);
/* Steps averaged at the end of each level: min(1000, steps_per_level / 4), at least 1. */
int dim_mibench_window(const dim_mibench_config *c);
/* The mean and standard deviation of estimator e's estimates over the window of a level. */
void dim_mibench_level_stats(const dim_mibench_config *c, const dim_mibench_result *r, int e,
                             int level, double *mean, double *std);
/* The summary TSV: estimator, true_mi, mean, std; one row per estimator and level. */
void dim_mibench_write_summary(FILE *out, const dim_mibench_config *c,
                               const dim_mibench_result *r);
#endif
