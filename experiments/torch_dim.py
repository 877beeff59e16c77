#!/usr/bin/env python3
"""torch_dim.py -- the PyTorch twin of dim: the same Deep InfoMax model in PyTorch.

The model is the one the book builds (doc/20-encoder.nw to doc/24-objective.nw): the paper's
encoder, the global critic and both local critics, the DV, JSD and infoNCE bounds, and the prior
matching game of Eq. 7, with the same parameter names and layouts as the C code (a state_dict of
this model and the C model's parameter set name the same tensors with the same shapes) and the
same score convention: scores[b, i, j] = T(x_j, y_i), row i the code y_i = E(x_i), column j the
candidate x_j, positives on the diagonal, negatives exactly the off-diagonal.

Modes:
  time        one training step of DIM(L) or DIM(G), in ms and images/s, at 1 and 2 threads
  serve       the same, driven line by line from stdin (the protocol `make bench` speaks)
  crosscheck  read the file experiments/crosscheck.c writes (the same weights, batch and prior
              samples, and the C engine's bound values, gradients and running statistics) and
              compare every one with PyTorch's
  train-step  show how a user trains with the twin: a few steps on random images

Users who outgrow a CPU can import this file and train DimModel with PyTorch's own devices and
distributed training: train_step() computes the same objective as dim_train_step().
Needs python3-torch and python3-numpy (Debian); run it with /usr/bin/python3.
"""

import argparse
import math
import struct
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:  # the bench and make crosscheck recognise this exit status
    sys.stderr.write("torch_dim.py: PyTorch is not installed (apt-get install python3-torch)\n")
    sys.exit(3)

# ------------------------------------------------------------------------------------------
# The configuration: dim_config_for_input (doc/20-encoder.nw)
# ------------------------------------------------------------------------------------------

CONFIG_FIELDS = ("in_channels", "in_height", "in_width", "nconv", "conv_channels",
                 "conv_batchnorm", "local_layer", "fc_units", "y_units", "critic_units",
                 "global_nconv", "global_conv_channels", "prior_units")


def config_for_input(channels, height, width):
    """The paper's configuration for 1x28x28 or 3x32x32 images, as dim_config_for_input."""
    c = dict(in_channels=channels, in_height=height, in_width=width, local_layer=1,
             fc_units=1024, y_units=64, critic_units=512, global_nconv=2,
             global_conv_channels=[64, 32], prior_units=[1000, 200])
    if (channels, height, width) == (1, 28, 28):
        c.update(nconv=2, conv_channels=[64, 128, 0], conv_batchnorm=[0, 1, 0])
    elif (channels, height, width) == (3, 32, 32):
        c.update(nconv=3, conv_channels=[64, 128, 256], conv_batchnorm=[1, 1, 1])
    else:
        raise ValueError("no paper configuration for %dx%dx%d images" % (channels, height, width))
    return c


def config_from_ints(v):
    """The int32 record "config" of a crosscheck file, in crosscheck.c's order."""
    v = [int(x) for x in v]
    return dict(in_channels=v[0], in_height=v[1], in_width=v[2], nconv=v[3],
                conv_channels=v[4:7], conv_batchnorm=v[7:10], local_layer=v[10],
                fc_units=v[11], y_units=v[12], critic_units=v[13], global_nconv=v[14],
                global_conv_channels=v[15:17], prior_units=v[17:19])


def conv_side(c, layer):
    """The side of encoder conv `layer`'s output (kernel 4, stride 2, padding 1)."""
    side = c["in_height"]
    for _ in range(layer + 1):
        side = (side + 2 - 4) // 2 + 1
    return side


# ------------------------------------------------------------------------------------------
# Layers, initialised like the C code (and PyTorch): uniform in +-1/sqrt(fan_in)
# ------------------------------------------------------------------------------------------

def _uniform(t, fan_in):
    bound = 1.0 / math.sqrt(fan_in)
    with torch.no_grad():
        t.uniform_(-bound, bound)


def linear(inp, out, fan_in=None, bias=True):
    layer = nn.Linear(inp, out, bias=bias)
    fan_in = fan_in or inp
    _uniform(layer.weight, fan_in)
    if bias:
        _uniform(layer.bias, fan_in)
    return layer


def conv(inp, out, kernel, stride, padding, fan_in=None, bias=True):
    layer = nn.Conv2d(inp, out, kernel, stride, padding, bias=bias)
    fan_in = (fan_in or inp) * kernel * kernel
    _uniform(layer.weight, fan_in)
    if bias:
        _uniform(layer.bias, fan_in)
    return layer


# BatchNorm: PyTorch's defaults are the book's (momentum 0.1, eps 1e-5, biased variance to
# normalise, unbiased variance into the running estimate).

# ------------------------------------------------------------------------------------------
# The encoder (doc/20-encoder.nw): parameters encoder.conv0, encoder.bn1, encoder.fc, ...
# ------------------------------------------------------------------------------------------

class Encoder(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        channels = c["in_channels"]
        for l in range(c["nconv"]):
            setattr(self, "conv%d" % l, conv(channels, c["conv_channels"][l], 4, 2, 1))
            if c["conv_batchnorm"][l]:
                setattr(self, "bn%d" % l, nn.BatchNorm2d(c["conv_channels"][l]))
            channels = c["conv_channels"][l]
        side = conv_side(c, c["nconv"] - 1)
        self.fc = linear(channels * side * side, c["fc_units"])
        self.fc_bn = nn.BatchNorm1d(c["fc_units"])
        self.out = linear(c["fc_units"], c["y_units"])

    def forward(self, x):                                  # x [N, C, H, W]
        c, f = self.c, {}
        h = x
        for l in range(c["nconv"]):
            h = getattr(self, "conv%d" % l)(h)
            if c["conv_batchnorm"][l]:
                h = getattr(self, "bn%d" % l)(h)
            h = F.relu(h)
            if l == c["local_layer"]:
                f["local"] = h                             # [N, C_local, M, M]
        f["conv"] = h
        f["fc"] = F.relu(self.fc_bn(self.fc(h.reshape(h.shape[0], -1))))  # [N, fc_units]
        f["y"] = self.out(f["fc"])                         # [N, y_units]
        return f


# ------------------------------------------------------------------------------------------
# The critics (doc/21-critics.nw): critic.global.*, critic.local.dot.*, critic.local.concat.*
# ------------------------------------------------------------------------------------------

class GlobalCritic(nn.Module):
    def __init__(self, c):
        super().__init__()
        side = conv_side(c, c["local_layer"])
        channels = c["conv_channels"][c["local_layer"]]
        self.nconv = c["global_nconv"]
        for k in range(self.nconv):
            setattr(self, "conv%d" % k, conv(channels, c["global_conv_channels"][k], 3, 1, 0))
            channels = c["global_conv_channels"][k]
            side -= 2
        features, units = channels * side * side, c["critic_units"]
        fan_in = features + c["y_units"]
        self.from_features = linear(features, units, fan_in)
        self.from_y = linear(c["y_units"], units, fan_in, bias=False)
        self.hidden = linear(units, units)
        self.out = linear(units, 1)

    def forward(self, f):                                  # -> scores [1, N, N]
        h = f["local"]
        for k in range(self.nconv):
            h = F.relu(getattr(self, "conv%d" % k)(h))
        n = h.shape[0]
        per_x = self.from_features(h.reshape(n, -1))      # [N_j, K]
        per_y = self.from_y(f["y"])                        # [N_i, K]
        h = F.relu(per_y[:, None, :] + per_x[None, :, :])  # [N_i, N_j, K]
        h = F.relu(self.hidden(h.reshape(n * n, -1)))
        return self.out(h).reshape(1, n, n)


class LocalDot(nn.Module):
    """Encode and dot product: score[l, i, j] = <G(y_i), L(C(x_j))[:, l]>."""

    def __init__(self, c):
        super().__init__()
        units, channels = c["critic_units"], c["conv_channels"][c["local_layer"]]
        self.l_hidden = conv(channels, units, 1, 1, 0)
        self.l_bn = nn.BatchNorm2d(units)
        self.l_out = conv(units, units, 1, 1, 0)
        self.l_shortcut = conv(channels, units, 1, 1, 0)
        self.y_hidden = linear(c["y_units"], units)
        self.y_bn = nn.BatchNorm1d(units)
        self.y_out = linear(units, units)
        self.y_shortcut = linear(c["y_units"], units)
        self.reassociated = False  # True: the C engine's order (doc/21-critics.nw), for timing

    def forward(self, f):                                  # -> scores [M^2, N, N]
        cx, y = f["local"], f["y"]
        n, m2 = cx.shape[0], cx.shape[2] * cx.shape[3]
        if self.reassociated:
            return self.reassociated_scores(cx, y, n, m2)
        l = self.l_out(F.relu(self.l_bn(self.l_hidden(cx)))) + self.l_shortcut(cx)  # [N,K,M,M]
        g = self.y_out(F.relu(self.y_bn(self.y_hidden(y)))) + self.y_shortcut(y)    # [N, K]
        units = g.shape[1]
        lk = l.reshape(n, units, m2).permute(1, 0, 2).reshape(units, n * m2)  # [K, N M^2]
        s = (g @ lk).reshape(n, n, m2)                     # [N_i, N_j, M^2]
        return s.permute(2, 0, 1)                          # [M^2, N_i, N_j]

    def reassociated_scores(self, cx, y, n, m2):
        """The same scores with L's last, linear layer and shortcut taken onto G's side:
        S = (G W_out) H^T + (G W_short) X^T + G (b_out + b_short), L never formed."""
        g = self.y_out(F.relu(self.y_bn(self.y_hidden(y)))) + self.y_shortcut(y)    # [N, K]
        h = F.relu(self.l_bn(self.l_hidden(cx)))                                    # [N,K,M,M]
        units, channels = h.shape[1], cx.shape[1]
        hk = h.reshape(n, units, m2).permute(1, 0, 2).reshape(units, n * m2)       # [K, N M^2]
        xk = cx.reshape(n, channels, m2).permute(1, 0, 2).reshape(channels, n * m2)
        s = (g @ self.l_out.weight.reshape(units, units)) @ hk \
            + (g @ self.l_shortcut.weight.reshape(units, channels)) @ xk \
            + (g @ (self.l_out.bias + self.l_shortcut.bias))[:, None]              # [N, N M^2]
        return s.reshape(n, n, m2).permute(2, 0, 1)        # [M^2, N_i, N_j]


class LocalConcat(nn.Module):
    """Concat and convolve: 1x1 convs on [C(x_j); y_i] at every location, 512 -> 512 -> 1."""

    def __init__(self, c):
        super().__init__()
        units, channels = c["critic_units"], c["conv_channels"][c["local_layer"]]
        fan_in = channels + c["y_units"]
        self.from_features = conv(channels, units, 1, 1, 0, fan_in)
        self.from_y = linear(c["y_units"], units, fan_in, bias=False)
        self.hidden = conv(units, units, 1, 1, 0)
        self.out = conv(units, 1, 1, 1, 0)

    def forward(self, f):                                  # -> scores [M^2, N, N]
        cx, y = f["local"], f["y"]
        n, m2 = cx.shape[0], cx.shape[2] * cx.shape[3]
        per_x = self.from_features(cx)                     # [N_j, K, M, M]
        units = per_x.shape[1]
        per_x = per_x.reshape(n, units, m2).permute(2, 1, 0).reshape(m2, units, 1, n)
        per_y = self.from_y(y).t().reshape(1, units, n, 1)
        h = F.relu(per_x + per_y)                          # [M^2, K, N_i, N_j]
        h = F.relu(self.hidden(h))
        return self.out(h).reshape(m2, n, n)


class Critics(nn.Module):
    def __init__(self, c):
        super().__init__()
        setattr(self, "global", GlobalCritic(c))  # "global" is a Python keyword
        self.local = nn.Module()
        self.local.dot = LocalDot(c)
        self.local.concat = LocalConcat(c)

    def global_scores(self, f):
        return getattr(self, "global")(f)

    def local_scores(self, f, kind):
        return (self.local.dot if kind == "dot" else self.local.concat)(f)


# ------------------------------------------------------------------------------------------
# The bounds (doc/22-bounds.nw): scalars to maximise, averaged over the B problems
# ------------------------------------------------------------------------------------------

def diag(s):                                               # [B, N, N] -> [B, N]
    return torch.diagonal(s, dim1=1, dim2=2)


def offdiag(s):                                            # [B, N, N] -> [B, N(N-1)]
    n = s.shape[-1]
    return s[:, ~torch.eye(n, dtype=torch.bool, device=s.device)]


def bound_dv(s):
    """Eq. 2: mean_i s_ii - log mean_{i != j} exp(s_ij), averaged over b."""
    n = s.shape[-1]
    log_mean_exp = torch.logsumexp(offdiag(s), -1).mean() - math.log(n * (n - 1))
    return diag(s).mean() - log_mean_exp


def bound_jsd(s):
    """Eq. 4: -mean_i sp(-s_ii) - mean_{i != j} sp(s_ij)."""
    return -F.softplus(-diag(s)).mean() - F.softplus(offdiag(s)).mean()


def bound_infonce(s):
    """Eq. 5 plus log N: mean_i (s_ii - logsumexp_j s_ij) + log N."""
    return diag(F.log_softmax(s, -1)).mean() + math.log(s.shape[-1])


BOUNDS = {"dv": bound_dv, "jsd": bound_jsd, "infonce": bound_infonce}

# ------------------------------------------------------------------------------------------
# The prior (doc/23-prior.nw) and the model (doc/24-objective.nw)
# ------------------------------------------------------------------------------------------


class Prior(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.l0 = linear(c["y_units"], c["prior_units"][0])
        self.l1 = linear(c["prior_units"][0], c["prior_units"][1])
        self.l2 = linear(c["prior_units"][1], 1)

    def forward(self, z):                                  # logits a, D = sigmoid(a)
        return self.l2(F.relu(self.l1(F.relu(self.l0(z)))))


def prior_objective(prior, y, v):
    """Eq. 7: D^ = E_V[log D(v)] + E_P[log(1 - D(sigmoid(y)))], by softplus."""
    a_prior, a_codes = prior(v), prior(torch.sigmoid(y))
    return -F.softplus(-a_prior).mean() - F.softplus(a_codes).mean()


class DimModel(nn.Module):
    """encoder + critic (the encoder's optimiser) and prior (the discriminator's)."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        self.encoder = Encoder(c)
        self.critic = Critics(c)
        self.prior = Prior(c)

    def encoder_parameters(self):
        return list(self.encoder.parameters()) + list(self.critic.parameters())


PRESETS = {"dim-g": (1.0, 0.0, 1.0), "dim-l": (0.0, 1.0, 0.1), "dim-lg": (1.0, 1.0, 0.1)}


def objective(model, images, alpha, beta, gamma, bound, local_kind, v):
    """Eq. 8 as in dim_objective_graph: terms whose weight is 0 are not computed.
    v: [N, y_units] prior samples, uniform in [0, 1]."""
    f = model.encoder(images)
    terms, loss = {}, None
    if alpha != 0:
        terms["global_mi"] = BOUNDS[bound](model.critic.global_scores(f))
        loss = -alpha * terms["global_mi"]
    if beta != 0:
        terms["local_mi"] = BOUNDS[bound](model.critic.local_scores(f, local_kind))
        term = -beta * terms["local_mi"]
        loss = term if loss is None else loss + term
    if gamma != 0:
        terms["prior"] = prior_objective(model.prior, f["y"], v)
        term = gamma * terms["prior"]
        loss = term if loss is None else loss + term
    terms["loss"] = loss
    return terms


class Trainer:
    """dim_trainer: two Adams, one backward pass, the discriminator's gradient flipped."""

    def __init__(self, model, preset="dim-l", bound="infonce", local_kind="dot", lr=1e-4):
        self.model = model
        self.alpha, self.beta, self.gamma = PRESETS[preset]
        self.bound, self.local_kind = bound, local_kind
        self.encoder_adam = torch.optim.Adam(model.encoder_parameters(), lr, (0.9, 0.999), 1e-8)
        self.prior_adam = torch.optim.Adam(model.prior.parameters(), lr, (0.9, 0.999), 1e-8)

    def step(self, images):
        m = self.model
        m.train()
        v = None
        if self.gamma != 0:
            v = torch.rand(images.shape[0], m.c["y_units"], device=images.device)
        terms = objective(m, images, self.alpha, self.beta, self.gamma, self.bound,
                          self.local_kind, v)
        self.encoder_adam.zero_grad()
        self.prior_adam.zero_grad()
        terms["loss"].backward()
        self.encoder_adam.step()
        if self.gamma != 0:
            for p in m.prior.parameters():
                if p.grad is not None:
                    p.grad.neg_()         # the discriminator ascends D^
            self.prior_adam.step()
        return {k: float(t) for k, t in terms.items()}


def train_step(trainer, images):
    return trainer.step(images)


# ------------------------------------------------------------------------------------------
# Timing: one training step at batch 64
# ------------------------------------------------------------------------------------------

class StepTimer:
    def __init__(self, preset, bound, batch, shape, device="cpu", seed=1, reassociated=False):
        torch.manual_seed(seed)
        self.device = torch.device(device)
        self.model = DimModel(config_for_input(*shape)).to(self.device)
        self.model.critic.local.dot.reassociated = reassociated
        self.trainer = Trainer(self.model, preset, bound)
        self.images = torch.rand(batch, *shape, device=self.device)
        self.warm = False

    def steps(self, threads, count):
        torch.set_num_threads(threads)
        if not self.warm:
            self.trainer.step(self.images)
            self.warm = True
        times = []
        for _ in range(count):
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            self.trainer.step(self.images)
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            times.append((time.perf_counter() - t0) * 1e3)
        return times


def parse_shape(text):
    c, h, w = (int(x) for x in text.lower().split("x"))
    return c, h, w


def cmd_time(args):
    shape = parse_shape(args.input)
    print("torch %s, %s, batch %d, %s, bound %s" % (torch.__version__, args.device, args.batch,
                                                     args.preset, args.bound))
    timer = StepTimer(args.preset, args.bound, args.batch, shape, args.device,
                      reassociated=args.reassociated)
    for threads in (int(t) for t in args.threads.split(",")):
        times = sorted(timer.steps(threads, args.steps))
        best, median = times[0], times[len(times) // 2]
        print("threads %d: best %.1f ms, median %.1f ms (of %d steps), %.1f images/s" %
              (threads, best, median, len(times), args.batch * 1e3 / best))
    return 0


def cmd_serve(args):
    """Lines on stdin: "step PRESET BOUND THREADS COUNT [reassociated]" -> "ok MS MS ...";
    "rss" -> "ok KIB" (peak resident memory of this process); "quit"."""
    import resource
    timers = {}
    print("ready torch %s" % torch.__version__, flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        try:
            if words[0] == "quit":
                break
            if words[0] == "step":
                preset, bound, threads, count = words[1], words[2], int(words[3]), int(words[4])
                reassociated = len(words) > 5 and words[5] == "reassociated"
                key = (preset, bound, reassociated)
                if key not in timers:
                    timers[key] = StepTimer(preset, bound, args.batch, parse_shape(args.input),
                                            reassociated=reassociated)
                times = timers[key].steps(threads, count)
                print("ok " + " ".join("%.3f" % t for t in times), flush=True)
            elif words[0] == "rss":
                print("ok %d" % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, flush=True)
            else:
                print("error unknown command %s" % words[0], flush=True)
        except Exception as e:  # report, keep serving
            print("error %s" % str(e).replace("\n", " "), flush=True)
    return 0


def cmd_train_step(args):
    shape = parse_shape(args.input)
    torch.manual_seed(1)
    model = DimModel(config_for_input(*shape)).to(args.device)
    trainer = Trainer(model, args.preset, args.bound)
    for step in range(args.steps):
        images = torch.rand(args.batch, *shape, device=args.device)
        print("step %d: %s" % (step, ", ".join("%s %.4f" % kv for kv in
                                              trainer.step(images).items())))
    return 0


# ------------------------------------------------------------------------------------------
# The crosscheck: read crosscheck.c's file, recompute, compare
# ------------------------------------------------------------------------------------------

def read_records(path):
    """The file: "DIMXC001", u32 count, then count records of u32 name length, name,
    u8 type ('f' float32, 'd' float64, 'i' int32, 's' text), u32 ndim, i32 shape[ndim],
    then the values (for text, shape[0] bytes). Little-endian."""
    import numpy as np
    records = {}
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"DIMXC001":
        raise ValueError("%s is not a crosscheck file (no DIMXC001 header)" % path)
    (count,), pos = struct.unpack_from("<I", data, 8), 12
    for _ in range(count):
        (name_len,) = struct.unpack_from("<I", data, pos)
        pos += 4
        name = data[pos:pos + name_len].decode()
        pos += name_len
        kind = chr(data[pos])
        (ndim,) = struct.unpack_from("<I", data, pos + 1)
        pos += 5
        shape = struct.unpack_from("<%di" % ndim, data, pos)
        pos += 4 * ndim
        size = 1
        for d in shape:
            size *= d
        if kind == "s":
            records[name] = data[pos:pos + size].decode()
            pos += size
        else:
            dtype = {"f": np.float32, "d": np.float64, "i": np.int32}[kind]
            records[name] = np.frombuffer(data, dtype, size, pos).reshape(shape).copy()
            pos += np.dtype(dtype).itemsize * size
    return records


# The criterion. Ours (a) is compared with PyTorch computing in float64 from the very numbers
# in the file (b, the reference):
#   a value (a bound, the prior term, the loss):  |a - b| <= TOL * max(|b|, 1 nat);
#   a tensor T (a gradient, a running statistic):  max_i |a_i - b_i| <= TOL * max_i |b_i|,
#     i.e. |a_i - b_i| <= TOL * max(|b_i|, s_T) for every i, s_T the largest |b_i| of T;
#   with two refinements, both needed by any float32 implementation (PyTorch's own float32
#   result is put through the same test, as a calibration):
#   - kinks: a ReLU whose input lies within rounding distance of 0 makes the gradient jump, and
#     float32 rounding decides the side. So the allowance of T is at least 2 K_T, K_T the most the
#     float64 gradient moves when every weight, pixel and prior sample is perturbed by a
#     relative 2^-18 (random signs, PERTURBATIONS draws): about the rounding error that a
#     float32 sum of a few thousand terms accumulates, so it flips the kinks float32 can flip
#     (twice K_T: the rounding may flip two kinks that move the same entry);
#   - zeros: a gradient that is 0 in exact arithmetic (s_T below 1e-9 of the case's largest
#     gradient S: the bias of a layer followed by batch normalisation, the last bias of a critic
#     under a bound that ignores a constant shift) is rounding noise on both sides; it passes
#     when |a_i| <= TOL * S.
# In the double build (precision "double") there are no perturbations: plain TOL, no K_T.
PERTURBATIONS = 6
PERTURBATION = 2.0 ** -18


def crosscheck_run(model, state, r, case, dtype, perturb_seed=None):
    """PyTorch's terms and gradients for one case, in dtype, from the file's numbers."""
    model.to(dtype)  # first: loading into float32 tensors would round a double file's numbers
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=False)
    model.train()
    prefix = "case/%s/" % case
    alpha, beta, gamma = (float(x) for x in r[prefix + "weights"].split())
    images = torch.from_numpy(r[prefix + "images"]).to(dtype)
    v = r.get(prefix + "prior_samples")
    v = torch.from_numpy(v).to(dtype) if v is not None else None
    if perturb_seed is not None:
        g = torch.Generator().manual_seed(perturb_seed)

        def jitter(t):
            signs = torch.randint(0, 2, t.shape, generator=g).to(dtype) * 2 - 1
            return t * (1 + PERTURBATION * signs)
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(jitter(p))
        images = jitter(images)
        v = jitter(v) if v is not None else None
    model.zero_grad(set_to_none=True)
    terms = objective(model, images, alpha, beta, gamma, r[prefix + "bound"],
                      r[prefix + "local"], v)
    terms["loss"].backward()
    values = {k: float(t) for k, t in terms.items()}
    grads = {n: p.grad.detach().double().numpy().copy()
             for n, p in model.named_parameters() if p.grad is not None}
    buffers = {n: b.detach().double().numpy().copy() for n, b in model.named_buffers()
               if not n.endswith("num_batches_tracked")}
    return values, grads, buffers


class Tally:
    def __init__(self):
        self.passed, self.failed = 0, 0

    def count(self, ok):
        if ok:
            self.passed += 1
        else:
            self.failed += 1


def cmd_crosscheck(args):
    import numpy as np
    tol = args.tolerance
    torch.set_num_threads(args.threads)
    r = read_records(args.file)
    precision = r.get("precision", "float")
    c = config_from_ints(r["config"])
    model = DimModel(c)
    state = {k[len("init/"):]: v for k, v in r.items() if k.startswith("init/")}
    names = {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
    print("crosscheck: %s (the C engine, %s build) against torch %s in float64, %d threads" %
          (args.file, precision, torch.__version__, args.threads))
    print("criterion: value |ours - ref| <= %g max(|ref|, 1); tensor max_i |ours_i - ref_i| <= "
          "%g max_i |ref_i|%s; a gradient that is 0 in exact arithmetic: |ours_i| <= %g x the "
          "case's largest gradient" %
          (tol, tol, ", or twice the kink allowance K (see torch_dim.py)" if precision == "float"
           else "", tol))
    if set(state) != names:
        print("FAIL the parameter sets differ: only in C: %s; only in PyTorch: %s" %
              (sorted(set(state) - names), sorted(names - set(state))))
        print("0 passed, 1 failed")
        return 1
    tally, calibration = Tally(), Tally()
    for case in r["cases"].split():
        prefix = "case/%s/" % case
        alpha, beta, gamma = (float(x) for x in r[prefix + "weights"].split())
        print("-- case %s: %s bound, %s local critic, alpha %g beta %g gamma %g, batch %d" %
              (case, r[prefix + "bound"], r[prefix + "local"], alpha, beta, gamma,
               r[prefix + "images"].shape[0]))
        ref_values, ref_grads, ref_buffers = crosscheck_run(model, state, r, case,
                                                            torch.float64)
        kink = {}
        f32 = None
        if precision == "float":
            for seed in range(1, PERTURBATIONS + 1):
                _, g, b = crosscheck_run(model, state, r, case, torch.float64, seed)
                for n, x in list(g.items()) + list(b.items()):
                    ref = ref_grads.get(n, ref_buffers.get(n))
                    kink[n] = max(kink.get(n, 0.0), float(np.abs(x - ref).max()))
            f32 = crosscheck_run(model, state, r, case, torch.float32)
        for term in ("global_mi", "local_mi", "prior", "loss"):
            key = prefix + "value/" + term
            if key not in r and term not in ref_values:
                continue
            if key not in r or term not in ref_values:
                print("FAIL %s %s: computed by one side only" % (case, term))
                tally.count(False)
                continue
            a, b = float(r[key]), ref_values[term]
            ok = abs(a - b) <= tol * max(abs(b), 1.0)
            tally.count(ok)
            if f32 is not None:
                calibration.count(abs(f32[0][term] - b) <= tol * max(abs(b), 1.0))
                if abs(f32[0][term] - b) > tol * max(abs(b), 1.0):
                    print("     (PyTorch float32 %s %s: outside)" % (case, term))
            print("%-4s %-11s %-4s %-42s ours %+.7f, ref %+.7f, |diff| %.1e" %
                  ("ok" if ok else "FAIL", case, "val", term, a, b, abs(a - b)))
        largest = max(float(np.abs(g).max()) for g in ref_grads.values())
        unreached = []
        tensors = [("grad", n, ref_grads.get(n)) for n, _ in model.named_parameters()]
        tensors += [("statistic", n, ref_buffers[n]) for n in sorted(ref_buffers)]
        for kind, n, ref in tensors:
            key = prefix + ("grad/" if kind == "grad" else "buffer/") + n
            ours = r.get(key)
            if ref is None and ours is None:
                unreached.append(n)
                continue
            if ref is None or ours is None:
                print("FAIL %-11s %s %s: reached by the %s backward pass only" %
                      (case, kind, n, "C" if ref is None else "PyTorch"))
                tally.count(False)
                continue
            ours = ours.astype(np.float64)
            scale = float(np.abs(ref).max())
            zero = kind == "grad" and scale <= 1e-9 * largest
            theirs = None
            if f32 is not None:
                theirs = (f32[1] if kind == "grad" else f32[2]).get(n)
            if zero:  # compare |x| with the largest gradient of the case
                scale = largest
                error = float(np.abs(ours).max())
                e32 = float(np.abs(theirs).max()) if theirs is not None else None
                allowed = tol * scale
                note = "0 exactly; max|ours| %.1e vs largest grad %.1e" % (error, scale)
            else:
                error = float(np.abs(ours - ref).max())
                e32 = float(np.abs(theirs - ref).max()) if theirs is not None else None
                allowed = max(tol * scale, 2 * kink.get(n, 0.0))
                note = "max|ref| %.1e, |ours-ref| %.1e" % (scale, error)
            ok = error <= allowed
            tally.count(ok)
            if e32 is not None:
                calibration.count(e32 <= allowed)
                note += ", |torch32-ref| %.1e%s" % (e32, "" if e32 <= allowed else " (outside)")
            if 2 * kink.get(n, 0.0) > tol * scale and not zero:
                note += ", kink K %.1e" % kink[n]
            note += "  (%.2f of allowed)" % (error / allowed if allowed > 0 else 0.0)
            print("%-4s %-11s %-4s %-42s %s" % ("ok" if ok else "FAIL", case,
                                                 "grad" if kind == "grad" else "stat", n, note))
        if unreached:
            print("     %-11s not in this graph on either side (no gradient): %d tensors, %s" %
                  (case, len(unreached), ", ".join(sorted({u.rsplit(".", 1)[0]
                                                           for u in unreached}))))
    if precision == "float":
        print("calibration: PyTorch's own float32 results against the same reference and "
              "criterion: %d passed, %d failed" % (calibration.passed, calibration.failed))
    print("%d passed, %d failed" % (tally.passed, tally.failed))
    return 0 if tally.failed == 0 else 1


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="mode", required=True)
    for mode in ("time", "serve", "train-step"):
        s = sub.add_parser(mode)
        s.add_argument("--preset", default="dim-l", choices=sorted(PRESETS))
        s.add_argument("--bound", default="infonce", choices=sorted(BOUNDS))
        s.add_argument("--batch", type=int, default=64)
        s.add_argument("--input", default="1x28x28", help="CxHxW: 1x28x28 or 3x32x32")
        s.add_argument("--threads", default="1,2", help="time: thread counts, comma-separated")
        s.add_argument("--steps", type=int, default=5)
        s.add_argument("--device", default="cpu")
        s.add_argument("--reassociated", action="store_true",
                       help="time: the dot critic in the C engine's order (doc/21-critics.nw)")
    s = sub.add_parser("crosscheck")
    s.add_argument("file")
    s.add_argument("--tolerance", type=float, default=1e-4)
    s.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    return {"time": cmd_time, "serve": cmd_serve, "train-step": cmd_train_step,
            "crosscheck": cmd_crosscheck}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
