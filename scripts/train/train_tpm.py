"""Train the Time Prediction Module (TPDM, arXiv 2412.01243) for the fashion-flow denoiser and
export it as TorchScript with its card (models/fashion-tpm.pt).

  /usr/bin/python3 scripts/train/train_tpm.py --gamma 0.97 --minutes 12 --seed 0 --out models/fashion-tpm.pt

The denoiser is frozen; only the small MLP (scripts/train/tpm_net.py) is trained, in two phases:
 1. Warm start (behaviour cloning, --bc-iters): on states x_sigma = (1-sigma)x0 + sigma*eps made
    from real train images, fit the Beta's mode to the r of the --bc-target-steps schedule with time shift --bc-shift
    and its concentration alpha+beta-2 to --bc-kappa (exploration width). Loss printed: it falls.
 2. RLOO with PPO-style clipping (--iters / --minutes): each iteration draws --conditions
    conditions (class, initial noise) and rolls each out --k times with r ~ Beta(alpha, beta)
    (the k rollouts of a condition share class and noise, so they differ only in their steps).
    Reward of a rollout with n steps: R * (1/(n+1)) * sum_{i=0..n} gamma^(n-i), with R in [0,1] the
    verifier score of the final image: the classifier's p(class | x0) (models/fashion-classifier.pt),
    or with --reward ensemble the product of that and sigmoid(realism logit)
    (models/fashion-realism.pt). R must be positive: with a log-probability (negative) the step
    discount would reward MORE steps. Never the eval/ classifier.
    Advantage (RLOO) = reward - mean of the other k-1 rewards of its condition, divided by the
    batch std; loss = -mean over steps of min(rho*A, clip(rho, 1-eps, 1+eps)*A) on the Beta
    log-probabilities of the sampled r (--ppo-epochs passes over each batch of rollouts).
Every --eval-every iterations the greedy policy (Beta mode) is run on a fixed batch (2 per class,
fixed noise) and its mean steps and verifier score are printed: that is the curve to read.
Seeded (--seed): the same command gives the same module.
"""
import argparse
import copy
import json
import math
import os
import sys
import time

# OpenMP threads that spin while waiting slow libtorch several-fold when the cores are shared with
# other processes; passive waiting costs nothing when they are not.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmnist  # noqa: E402
from tpm_net import (  # noqa: E402
    R_MAX,
    R_MIN,
    SOLVERS,
    TimePredictionModule,
    adaptive_rollout,
    beta_dist,
    discount,
    schedule_target_r,
)


def load_flow(path):
    extra = {"model.json": ""}
    flow = torch.jit.load(path, _extra_files=extra)
    flow.eval()
    card = json.loads(extra["model.json"] or "{}")
    return flow, card


class Reward:
    """R(x0, cond) in [0, 1] from the search verifiers (never the eval/ classifier)."""

    def __init__(self, kind, classifier, realism):
        self.kind = kind
        self.cls = torch.jit.load(classifier).eval()
        self.real = torch.jit.load(realism).eval() if kind == "ensemble" else None
        self.files = [classifier] + ([realism] if self.real is not None else [])

    @torch.no_grad()
    def __call__(self, x0, cond):
        x = x0.clamp(-1, 1)
        p = torch.exp(self.cls(x, cond)).clamp(0, 1)
        if self.real is None:
            return p
        q = torch.sigmoid(self.real(x, cond))
        return p * q

    def describe(self):
        if self.real is None:
            return "R = p(class | x0) from models/fashion-classifier.pt (exp of its forward)"
        return (
            "R = p(class | x0) * sigmoid(realism logit): classifier models/fashion-classifier.pt "
            "and realism models/fashion-realism.pt (product ensemble)"
        )


@torch.no_grad()
def state_pool(flow, n, seed, bs=256):
    """Features of realistic states: real train images noised to random sigma (10% at sigma = 1)."""
    x_tr, y_tr = fmnist.load("train")
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, x_tr.shape[0], (n,), generator=g)
    sig = torch.rand(n, generator=g) * 0.995 + 0.005
    sig[torch.rand(n, generator=g) < 0.1] = 1.0
    feats = []
    for i in range(0, n, bs):
        x0 = x_tr[idx[i : i + bs]]
        s = sig[i : i + bs]
        eps = torch.randn(x0.shape, generator=g)
        xt = (1 - s.view(-1, 1, 1, 1)) * x0 + s.view(-1, 1, 1, 1) * eps
        feats.append(flow.forward_features(xt, s, y_tr[idx[i : i + bs]])[1])
    return torch.cat(feats), sig


def warm_start(tpm, feats, sig, args, log):
    tpm.feat_mean.copy_(feats.mean(0))
    tpm.feat_std.copy_(feats.std(0).clamp_min(1e-3))
    target = torch.logit(schedule_target_r(sig, args.bc_target_steps, args.bc_shift))
    opt = torch.optim.Adam(tpm.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(args.seed + 1)
    curve = []
    for it in range(1, args.bc_iters + 1):
        b = torch.randint(0, feats.shape[0], (512,), generator=g)
        ab = tpm.logits(feats[b], sig[b])
        loss = F.mse_loss(ab[:, 0] - ab[:, 1], target[b]) + F.mse_loss(
            torch.logsumexp(ab, 1), torch.full((b.numel(),), math.log(args.bc_kappa))
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        if it % max(1, args.bc_iters // 10) == 0 or it == 1:
            log(f"bc {it} loss {float(loss):.4f}")
            curve.append([it, round(float(loss), 5)])
    return curve


@torch.no_grad()
def greedy_eval(flow, tpm, reward, noise, cond, args):
    x0, steps, _ = adaptive_rollout(flow, tpm, noise, cond, args.sigma_min, args.max_steps, solver=args.solver)
    r = reward(x0, cond)
    return float(r.mean()), float(steps.float().mean()), float((r * discount(steps, args.gamma)).mean())


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--flow", default="models/fashion-flow.pt")
    ap.add_argument("--classifier", default="models/fashion-classifier.pt")
    ap.add_argument("--realism", default="models/fashion-realism.pt")
    ap.add_argument(
        "--reward",
        choices=["auto", "classifier", "ensemble"],
        default="auto",
        help="auto: the ensemble when the realism verifier exists, else the classifier",
    )
    ap.add_argument("--gamma", type=float, default=0.97)
    ap.add_argument("--k", type=int, default=4, help="rollouts per condition (RLOO group)")
    ap.add_argument("--conditions", type=int, default=10, help="conditions (class, noise) per iteration")
    ap.add_argument("--iters", type=int, default=100000)
    ap.add_argument("--minutes", type=float, default=10.0, help="wall-time budget of the RL phase")
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--ppo-epochs", type=int, default=4)
    ap.add_argument("--clip", type=float, default=0.2)
    ap.add_argument(
        "--kl", type=float, default=0.0, help="weight of KL(Beta_policy || Beta_warm-start) per step (0: none)"
    )
    ap.add_argument("--sigma-min", type=float, default=0.01)
    ap.add_argument("--max-steps", type=int, default=60, help="the most steps of a rollout (training and card default)")
    ap.add_argument(
        "--solver",
        choices=list(SOLVERS),
        default="euler",
        help="the step rule of the rollouts, recorded in the card (ab2: second-order Adams–Bashforth, one NFE per "
            "step)",
    )
    ap.add_argument("--bc-iters", type=int, default=400)
    ap.add_argument("--bc-target-steps", type=int, default=40)
    ap.add_argument(
        "--bc-shift",
        type=float,
        default=0.5,
        help="time shift of the warm-start schedule (1 = uniform, < 1 = more steps at low noise)",
    )
    ap.add_argument("--bc-kappa", type=float, default=100.0)
    ap.add_argument("--bc-pool", type=int, default=4096)
    ap.add_argument("--init", default="", help="start from this TPM checkpoint (.ckpt) instead of a warm start")
    ap.add_argument("--eval-every", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--ckpt", default="", help="save the TPM state here (resumable start for --init)")
    ap.add_argument("--out", default="models/fashion-tpm.pt")
    ap.add_argument("--snapshot-every", type=int, default=0, help="also export the module every N RL iterations")
    ap.add_argument("--snapshot-dir", default="checkpoints/tpm-snapshots")
    ap.add_argument("--curve-json", default="", help="write the training curve here as JSON")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    fmnist.seed_everything(args.seed)
    command = "/usr/bin/python3 scripts/train/train_tpm.py " + " ".join(argv if argv is not None else sys.argv[1:])
    t_start = time.time()

    def log(msg):
        print(f"[{time.time() - t_start:7.1f}s] {msg}", flush=True)

    flow, fcard = load_flow(args.flow)
    kind = args.reward
    if kind == "auto":
        kind = "ensemble" if os.path.exists(args.realism) else "classifier"
    reward = Reward(kind, args.classifier, args.realism)
    feature_dim = int(fcard.get("feature_dim", 128))
    tpm = TimePredictionModule(feature_dim)
    log(f"command: {command}")
    log(f"reward: {reward.describe()}; gamma {args.gamma}; k {args.k}; conditions {args.conditions}")

    bc_curve = []
    init_info = None
    if args.init:
        ck = torch.load(args.init)
        tpm.load_state_dict(ck["tpm"])
        init_info = {
            "from": args.init,
            "command": ck.get("command"),
            "warm_start": ck.get("training", {}).get("warm_start"),
            "rl_iterations_before": ck.get("training", {}).get("iterations"),
        }
        bc_curve = ck.get("bc_curve", [])
        log(f"initialised from {args.init}")
    else:
        feats, sig = state_pool(flow, args.bc_pool, args.seed)
        log(f"state pool: {feats.shape[0]} states")
        bc_curve = warm_start(tpm, feats, sig, args, log)

    ref = copy.deepcopy(tpm).eval().requires_grad_(False) if args.kl > 0 else None
    opt = torch.optim.Adam(tpm.parameters(), lr=args.lr)
    g_eval = torch.Generator().manual_seed(10_000 + args.seed)
    ev_cond = torch.arange(10).repeat(2)
    ev_noise = torch.randn(ev_cond.shape[0], 1, 28, 28, generator=g_eval)
    g_noise = torch.Generator().manual_seed(20_000 + args.seed)

    def make_training(it):
        minutes = (time.time() - t_start) / 60.0
        return {
            "command": command,
            "seed": args.seed,
            "gamma": args.gamma,
            "reward": reward.describe(),
            "reward_kind": kind,
            "reward_formula": "R * (1/(n+1)) * sum_{i=0..n} gamma^(n-i), n = steps taken",
            "algorithm": "RLOO (leave-one-out baseline over k rollouts sharing class and initial noise), advantages / "
            "batch std, "
            f"PPO-clipped surrogate (eps {args.clip}, {args.ppo_epochs} epochs per batch), Adam lr {args.lr}, grad "
            "clip 1.0"
            + (f", KL to the warm-start policy x {args.kl}" if args.kl > 0 else ""),
            "k": args.k,
            "conditions_per_iteration": args.conditions,
            "iterations": it,
            "rollouts": it * args.k * args.conditions,
            "warm_start": (
                init_info
                or {
                    "kind": f"behaviour cloning of the {args.bc_target_steps}-step schedule with time shift "
                    f"{args.bc_shift} (mode) with concentration "
                    f"{args.bc_kappa}, {args.bc_iters} Adam steps on {args.bc_pool} noised train images",
                    "bc_loss_curve": bc_curve,
                }
            ),
            "training_time_minutes": round(minutes, 1),
            "hardware": f"CPU, {args.threads} threads",
            "curve_columns": [
                "iteration",
                "seconds",
                "mean R (sampled r)",
                "mean steps (sampled r)",
                "mean discounted reward",
                "loss first PPO epoch",
                "loss last PPO epoch",
                "mean alpha+beta-2",
            ],
            "curve": curve[:: max(1, len(curve) // 40)] + ([curve[-1]] if curve else []),
            "greedy_eval_columns": ["iteration", "seconds", "mean R", "mean steps", "mean discounted reward"],
            "greedy_eval": evals,
            "greedy_eval_batch": "20 fixed samples (2 per class), Beta mode, seed 10000+seed",
            **fmnist.torch_info(),
        }

    curve, evals = [], []
    r0 = greedy_eval(flow, tpm, reward, ev_noise, ev_cond, args)
    evals.append([0, round(time.time() - t_start, 1), *[round(v, 5) for v in r0]])
    log(f"greedy it 0: R {r0[0]:.4f} steps {r0[1]:.2f} reward {r0[2]:.4f}")
    t_rl = time.time()
    it = 0
    while it < args.iters and (time.time() - t_rl) < args.minutes * 60:
        it += 1
        C, k = args.conditions, args.k
        cond_c = (torch.arange(C) + (it - 1) * C) % 10
        noise_c = torch.randn(C, 1, 28, 28, generator=g_noise)
        cond = cond_c.repeat_interleave(k)
        noise = noise_c.repeat_interleave(k, 0)
        tpm.eval()
        x0, steps, trace = adaptive_rollout(
            flow, tpm, noise, cond, args.sigma_min, args.max_steps, stochastic=True, record=True, solver=args.solver
        )
        R = reward(x0, cond)
        rew = R * discount(steps, args.gamma)
        grp = rew.view(C, k)
        loo = (grp.sum(1, keepdim=True) - grp) / (k - 1)
        adv = (grp - loo).view(-1)
        adv = adv / (adv.std() + 1e-6)
        rows = torch.cat([t[0] for t in trace])
        feats = torch.cat([t[1] for t in trace])
        sig = torch.cat([t[2] for t in trace])
        r = torch.cat([t[3] for t in trace]).clamp(R_MIN, R_MAX)
        a_step = adv[rows]
        with torch.no_grad():
            logp_old = beta_dist(tpm.logits(feats, sig)).log_prob(r)
            ref_dist = beta_dist(ref.logits(feats, sig)) if ref is not None else None
        tpm.train()
        losses = []
        for _ in range(args.ppo_epochs):
            lg = tpm.logits(feats, sig)
            logp = beta_dist(lg).log_prob(r)
            ratio = torch.exp(logp - logp_old)
            surr = torch.min(ratio * a_step, ratio.clamp(1 - args.clip, 1 + args.clip) * a_step)
            loss = -surr.mean()
            if ref_dist is not None:
                loss = loss + args.kl * torch.distributions.kl_divergence(beta_dist(lg), ref_dist).mean()
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(tpm.parameters(), 1.0)
            opt.step()
            losses.append(float(loss))
        with torch.no_grad():
            kappa = float((torch.exp(lg).sum(1)).mean())
        curve.append(
            [
                it,
                round(time.time() - t_start, 1),
                round(float(R.mean()), 5),
                round(float(steps.float().mean()), 3),
                round(float(rew.mean()), 5),
                round(losses[0], 5),
                round(losses[-1], 5),
                round(kappa, 2),
            ]
        )
        log(
            f"it {it} R {float(R.mean()):.4f} steps {float(steps.float().mean()):.2f} reward {float(rew.mean()):.4f} "
            f"loss {losses[0]:+.4f}->{losses[-1]:+.4f} kappa {kappa:.1f}"
        )
        if it % args.eval_every == 0:
            tpm.eval()
            rr = greedy_eval(flow, tpm, reward, ev_noise, ev_cond, args)
            evals.append([it, round(time.time() - t_start, 1), *[round(v, 5) for v in rr]])
            log(f"greedy it {it}: R {rr[0]:.4f} steps {rr[1]:.2f} reward {rr[2]:.4f}")
        if args.snapshot_every and it % args.snapshot_every == 0:
            os.makedirs(args.snapshot_dir, exist_ok=True)
            export(tpm, args, make_training(it), fcard, os.path.join(args.snapshot_dir, f"it{it}.pt"))
    tpm.eval()
    if not evals or evals[-1][0] != it:
        rr = greedy_eval(flow, tpm, reward, ev_noise, ev_cond, args)
        evals.append([it, round(time.time() - t_start, 1), *[round(v, 5) for v in rr]])
        log(f"greedy it {it}: R {rr[0]:.4f} steps {rr[1]:.2f} reward {rr[2]:.4f}")
    log(f"done: {it} RL iterations, {(time.time() - t_start) / 60.0:.1f} min")
    training = make_training(it)
    if args.curve_json:
        with open(args.curve_json, "w") as f:
            json.dump({"bc": bc_curve, "rl": curve, "greedy": evals, "args": vars(args)}, f)
    if args.ckpt:
        os.makedirs(os.path.dirname(args.ckpt) or ".", exist_ok=True)
        torch.save(
            {
                "tpm": tpm.state_dict(),
                "command": command,
                "bc_curve": bc_curve,
                "args": vars(args),
                "training": training,
            },
            args.ckpt,
        )
    if args.out:
        export(tpm, args, training, fcard, args.out)
    return {"bc": bc_curve, "rl": curve, "greedy": evals}


def export(tpm, args, training, fcard, out):
    sm = torch.jit.script(copy.deepcopy(tpm).eval())
    card = fmnist.base_card("fashion-tpm", "tpm")
    card.pop("prediction", None)
    card.update(
        {
            "description": "Time Prediction Module (TPDM, arXiv 2412.01243) for models/fashion-flow.pt: reads the "
            "denoiser's features at "
            "the current state and sigma and predicts Beta(alpha, beta) over r = sigma_next / sigma. "
            "forward(features[N,D], sigma[N]) -> [N,2] (alpha, beta) = exp(.) + 1; mode(features, sigma) -> r[N] = "
            "(alpha-1)/(alpha+beta-2) clamped to r_range.",
            "denoiser": {
                "name": fcard.get("name", "fashion-flow"),
                "file": "models/fashion-flow.pt",
                "features": "forward_features(x, sigma, cond)[1]",
                "feature_dim": tpm.feature_dim,
            },
            "feature_dim": tpm.feature_dim,
            "methods": {
                "forward": "forward(features[N,D] float32, sigma[N] float32) -> Tensor[N,2] (alpha, beta), both > 1",
                "mode": "mode(features[N,D], sigma[N]) -> r[N] in r_range",
            },
            "sampler": {
                "sigma_min": args.sigma_min,
                "max_steps": args.max_steps,
                "r_range": [R_MIN, R_MAX],
                "solver": args.solver,
                "rule": "sigma = 1; each step: (v, h) = denoiser.forward_features(x, sigma, cond); r = mode(h, sigma); "
                "sigma_next = r * sigma; if sigma_next < sigma_min or this is step max_steps: sigma_next = 0 (the "
                "final step); "
                "x += (sigma_next - sigma) * u with u = v (solver euler) or, for ab2, u = (1 + c) v - c v_prev, "
                "c = min((sigma_next - sigma) / (2 * previous step), 1), 0 on a sample's first step. "
                "One denoiser evaluation (NFE) per sample per step; samples finish independently.",
                "guidance": 1.0,
            },
            "training": training,
            "provenance": {
                "training_data": "none directly: rollouts of the frozen fashion-flow denoiser; warm start on "
                "Fashion-MNIST "
                "train images noised to random sigma",
                "command": training["command"],
                "seed": args.seed,
                "param_count": fmnist.count_params(tpm),
            },
        }
    )
    if os.path.exists(out):
        extra = {"model.json": ""}
        try:
            torch.jit.load(out, _extra_files=extra)
            old = json.loads(extra["model.json"] or "{}")
            if "metrics" in old and old.get("training", {}).get("command") == training["command"]:
                card["metrics"] = old["metrics"]
        except Exception:
            pass
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    torch.jit.save(sm, out, _extra_files={"model.json": json.dumps(card, indent=1)})
    print(f"exported {out} ({os.path.getsize(out) / 1e3:.0f} kB)", flush=True)


if __name__ == "__main__":
    main()
