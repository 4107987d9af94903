"""Evaluate adaptive schedules (Time Prediction Modules) against fixed Euler schedules with the
independent eval/ classifier, and write the table, the plot and the TPM card's metrics.

  /usr/bin/python3 scripts/train/tpm_eval.py --tpm g0.97=models/fashion-tpm.pt --tpm g0.99=checkpoints/tpm/g0.99.pt \
      --fixed 5,10,15,20,30,40,50 --per-class 100 --write-card models/fashion-tpm.pt

Every setting starts from the SAME initial noise (seeded) for the same classes (--per-class of each),
so the comparisons are paired. Guidance 1.0. Metrics (scripts/train/evaluate_flow.measure): eval-classifier
accuracy (overall and per class), Frechet distance on eval features against the real TEST split
statistics stored in eval/fashion-eval.pt (overall and per class), Inception-style score; for adaptive
schedules also mean steps (overall and per class) and the step histogram. The eval classifier is
only a judge here: no TPM was trained on it.

Writes <out-dir>/results.json, <out-dir>/table.md and <out-dir>/accuracy_vs_steps.svg (accuracy and
Frechet distance against mean steps: fixed Euler as lines, each adaptive module as a point).
"""
import argparse
import json
import os
import sys
import time

# OpenMP threads that spin while waiting slow libtorch several-fold when the cores are shared with
# other processes; passive waiting costs nothing when they are not.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import fmnist  # noqa: E402
from evaluate_flow import measure  # noqa: E402
from tpm_net import SOLVERS, adaptive_rollout, fixed_rollout  # noqa: E402


def load_tpm(path):
    extra = {"model.json": ""}
    m = torch.jit.load(path, _extra_files=extra)
    m.eval()
    return m, json.loads(extra["model.json"] or "{}")


def batched(fn, x, y, bs):
    outs = []
    for i in range(0, x.shape[0], bs):
        outs.append(fn(x[i : i + bs], y[i : i + bs]))
    return outs


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--flow", default="models/fashion-flow.pt")
    ap.add_argument("--eval", default="eval/fashion-eval.pt")
    ap.add_argument(
        "--tpm",
        action="append",
        default=[],
        help="label=path of a TPM TorchScript file (repeatable); label=path@ab2 runs it with another solver than its "
            "card's",
    )
    ap.add_argument("--fixed", default="5,10,15,20,30,40,50", help="uniform Euler step counts")
    ap.add_argument(
        "--fixed-shift", default="", help="extra fixed schedules STEPS:SHIFT,... (e.g. the warm-start one, 30:0.5)"
    )
    ap.add_argument("--per-class", type=int, default=100)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bs", type=int, default=250)
    ap.add_argument("--max-steps", type=int, default=0, help="override the card's max_steps (0: the card's)")
    ap.add_argument(
        "--fixed-ab2", default="", help="uniform schedules run with the AB2 solver: step counts (e.g. 10,20,30)"
    )
    ap.add_argument("--out-dir", default="docs/tpm")
    ap.add_argument(
        "--write-card", default="", help="write the metrics into this TPM file's card (it must be one of --tpm)"
    )
    ap.add_argument(
        "--reuse",
        default="",
        help="results.json files of earlier runs (comma-separated): settings found there "
        "(by name) are not re-run, their rows are copied; the same --per-class and --seed must have made them",
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    command = "/usr/bin/python3 scripts/train/tpm_eval.py " + " ".join(argv if argv is not None else sys.argv[1:])

    flow = torch.jit.load(args.flow).eval()
    ev = torch.jit.load(args.eval).eval()
    labels = torch.arange(10).repeat_interleave(args.per_class)
    g = torch.Generator().manual_seed(args.seed)
    noise = torch.randn(labels.shape[0], 1, 28, 28, generator=g)
    old = {}
    for f in [f for f in args.reuse.split(",") if f]:
        old.update({r["name"]: r for r in json.load(open(f))["results"]})

    results = []

    def record(name, kind, x, steps, extra):
        t_res = measure(ev, x.clamp(-1, 1), labels)
        st = steps.float()
        res = {"name": name, "kind": kind, "mean_steps": round(float(st.mean()), 3), **extra, **t_res}
        res["mean_steps_per_class"] = {fmnist.CLASSES[c]: round(float(st[labels == c].mean()), 2) for c in range(10)}
        if kind == "adaptive":
            res["steps_min_max"] = [int(steps.min()), int(steps.max())]
            hist = torch.bincount(steps, minlength=int(steps.max()) + 1)
            res["steps_histogram"] = {str(i): int(hist[i]) for i in range(hist.shape[0]) if hist[i] > 0}
        results.append(res)
        print(
            f"{name:>14}: steps {res['mean_steps']:6.2f}  acc {res['accuracy']:.4f}  FD {res['frechet_distance']:.3f}  "
            f"IS {res['inception_score']:.3f}  ({extra.get('seconds', 0):.0f}s)",
            flush=True,
        )

    with torch.no_grad():
        fixed = (
            [(int(s), 1.0, "euler") for s in args.fixed.split(",") if s]
            + [(int(a), float(b), "euler") for a, b in (t.split(":") for t in args.fixed_shift.split(",") if t)]
            + [(int(s), 1.0, "ab2") for s in args.fixed_ab2.split(",") if s]
        )
        for n_steps, shift, solver in fixed:
            name = (f"euler{n_steps}" if solver == "euler" else f"{solver}-{n_steps}") + (
                "" if shift == 1.0 else f"_shift{shift:g}"
            )
            if name in old:
                results.append(old[name])
                print(f"{name:>14}: reused")
                continue
            t0 = time.time()
            x = torch.cat(
                batched(lambda xb, yb: fixed_rollout(flow, xb, yb, n_steps, shift, solver), noise, labels, args.bs)
            )
            record(
                name,
                "fixed",
                x,
                torch.full((labels.shape[0],), n_steps, dtype=torch.long),
                {
                    "schedule": f"{'Euler' if solver == 'euler' else 'AB2'}, {n_steps} steps, uniform"
                    + ("" if shift == 1.0 else f" with time shift {shift:g}"),
                    "solver": solver,
                    "seconds": round(time.time() - t0, 1),
                },
            )
        for spec in args.tpm:
            label, path = spec.split("=", 1)
            # label=path@solver evaluates the module with another solver than its card's
            path, _, solver_override = path.partition("@")
            if solver_override and solver_override not in SOLVERS:
                raise SystemExit(f"--tpm {spec}: unknown solver '{solver_override}' (one of {SOLVERS})")
            if label in old:
                results.append(old[label])
                print(f"{label:>14}: reused")
                continue
            tpm, card = load_tpm(path)
            smp = card.get("sampler", {})
            sigma_min = float(smp.get("sigma_min", 0.01))
            max_steps = args.max_steps or int(smp.get("max_steps", 60))
            solver = solver_override or smp.get("solver", "euler")
            t0 = time.time()
            outs = batched(
                lambda xb, yb: adaptive_rollout(flow, tpm, xb, yb, sigma_min, max_steps, solver=solver)[:2],
                noise,
                labels,
                args.bs,
            )
            x = torch.cat([o[0] for o in outs])
            steps = torch.cat([o[1] for o in outs])
            tr = card.get("training", {})
            record(
                label,
                "adaptive",
                x,
                steps,
                {
                    "file": path,
                    "gamma": tr.get("gamma") if tr.get("iterations") else None,
                    "reward": tr.get("reward_kind"),
                    "rl_iterations": tr.get("iterations"),
                    "sigma_min": sigma_min,
                    "max_steps": max_steps,
                    "solver": solver,
                    "seconds": round(time.time() - t0, 1),
                },
            )

    base = next((r for r in results if r["name"] == "euler50"), None)
    for r in results:
        if base is not None and r["kind"] == "adaptive":
            r["vs_euler50"] = {
                "step_reduction": round(1.0 - r["mean_steps"] / 50.0, 4),
                "accuracy_delta": round(r["accuracy"] - base["accuracy"], 4),
                "frechet_delta": round(r["frechet_distance"] - base["frechet_distance"], 3),
                "goal_met": bool(
                    r["mean_steps"] <= 30.0
                    and r["accuracy"] >= base["accuracy"]
                    and r["frechet_distance"] <= base["frechet_distance"]
                ),
            }
    os.makedirs(args.out_dir, exist_ok=True)
    meta = {
        "command": command,
        "samples": int(labels.shape[0]),
        "per_class": args.per_class,
        "seed": args.seed,
        "guidance": 1.0,
        "judge": f"{args.eval} (never a training reward)",
        "flow": args.flow,
        "noise": "the same seeded initial noise for every setting (paired comparison)",
    }
    with open(os.path.join(args.out_dir, "results.json"), "w") as f:
        json.dump({"meta": meta, "results": results}, f, indent=1)
    with open(os.path.join(args.out_dir, "table.md"), "w") as f:
        f.write(table(results, meta))
    with open(os.path.join(args.out_dir, "accuracy_vs_steps.svg"), "w") as f:
        f.write(svg(results))
    print(f"wrote {args.out_dir}/results.json, table.md, accuracy_vs_steps.svg")
    if args.write_card:
        write_card(args.write_card, results, meta, base)


def write_card(path, results, meta, base):
    extra = {"model.json": ""}
    m = torch.jit.load(path, _extra_files=extra)
    card = json.loads(extra["model.json"])
    mine = [r for r in results if r["kind"] == "adaptive" and os.path.abspath(r["file"]) == os.path.abspath(path)]
    metrics = {
        "measured_by": meta["judge"],
        "protocol": meta,
        "adaptive": mine[0] if mine else None,
        "euler50": base,
        "fixed": [
            {k: r[k] for k in ("name", "mean_steps", "accuracy", "frechet_distance", "inception_score")}
            for r in results
            if r["kind"] == "fixed"
        ],
        "other_adaptive": [
            {k: r.get(k) for k in ("name", "gamma", "mean_steps", "accuracy", "frechet_distance")}
            for r in results
            if r["kind"] == "adaptive" and r not in mine
        ],
    }
    card["metrics"] = metrics
    torch.jit.save(m, path, _extra_files={"model.json": json.dumps(card, indent=1)})
    print(f"wrote metrics into {path} card")


def table(results, meta):
    lines = [
        f"Samples: {meta['samples']} ({meta['per_class']} per class), guidance 1.0, seed {meta['seed']}, same initial "
        "noise for "
        f"every row. Judge: {meta['judge']}. FD = Frechet distance on eval features vs the real test split.",
        "",
        "| schedule | mean steps | eval accuracy | FD (overall) | mean FD per class | IS | vs Euler-50 |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        fdc = sum(r["frechet_distance_per_class"].values()) / 10.0
        vs = ""
        if "vs_euler50" in r:
            v = r["vs_euler50"]
            vs = (
                f"{100 * v['step_reduction']:.1f}% fewer steps, acc {v['accuracy_delta']:+.4f}, FD "
                f"{v['frechet_delta']:+.3f}"
                f"{' — goal met' if v['goal_met'] else ''}"
            )
        name = r["name"] + (
            f" (γ={r['gamma']})"
            if r["kind"] == "adaptive" and r.get("gamma") is not None and "γ" not in r["name"]
            else ""
        )
        lines.append(
            f"| {name} | {r['mean_steps']:.2f} | {r['accuracy']:.4f} | {r['frechet_distance']:.3f} | {fdc:.3f} | "
            f"{r['inception_score']:.3f} | {vs} |"
        )
    ad = [r for r in results if r["kind"] == "adaptive"]
    if ad:
        lines += [
            "",
            "Mean steps per class (adaptive):",
            "",
            "| module | " + " | ".join(fmnist.CLASSES) + " |",
            "|---|" + "---:|" * 10,
        ]
        for r in ad:
            lines.append(
                f"| {r['name']} | " + " | ".join(f"{r['mean_steps_per_class'][c]:.1f}" for c in fmnist.CLASSES) + " |"
            )
        lines += [
            "",
            "Eval accuracy per class:",
            "",
            "| schedule | " + " | ".join(fmnist.CLASSES) + " |",
            "|---|" + "---:|" * 10,
        ]
        for r in results:
            lines.append(
                f"| {r['name']} | " + " | ".join(f"{r['accuracy_per_class'][c]:.2f}" for c in fmnist.CLASSES) + " |"
            )
        lines += ["", "FD per class:", "", "| schedule | " + " | ".join(fmnist.CLASSES) + " |", "|---|" + "---:|" * 10]
        for r in results:
            lines.append(
                f"| {r['name']} | "
                + " | ".join(f"{r['frechet_distance_per_class'][c]:.2f}" for c in fmnist.CLASSES)
                + " |"
            )
    return "\n".join(lines) + "\n"


def svg(results):
    """Two panels (eval accuracy, FD) against mean steps; fixed uniform Euler and AB2 as lines, others as points."""
    colors = [
        "#d62728",
        "#2ca02c",
        "#ff7f0e",
        "#9467bd",
        "#8c564b",
        "#e377c2",
        "#17becf",
        "#bcbd22",
        "#393b79",
        "#637939",
        "#8c6d31",
        "#843c39",
        "#7b4173",
        "#3182bd",
        "#e6550d",
        "#31a354",
    ]

    def marker(r, cx, cy, c):
        # squares: AB2 runs; triangles: fixed shifted schedules; diamonds: the rest (Euler runs)
        if r.get("solver") == "ab2":
            return f'<rect x="{cx - 5:.1f}" y="{cy - 5:.1f}" width="10" height="10" fill="{c}"/>'
        if r["kind"] == "fixed":
            return f'<path d="M{cx:.1f},{cy - 6:.1f} l6,11 l-12,0 z" fill="{c}"/>'
        return f'<path d="M{cx - 5:.1f},{cy:.1f} l5,-6 l5,6 l-5,6 z" fill="{c}"/>'

    fixed = sorted(
        [r for r in results if r["kind"] == "fixed" and r["name"].startswith("euler") and "_shift" not in r["name"]],
        key=lambda r: r["mean_steps"],
    )
    fixed_ab2 = sorted(
        [r for r in results if r["kind"] == "fixed" and r["name"].startswith("ab2")], key=lambda r: r["mean_steps"]
    )
    others = [r for r in results if r not in fixed and r not in fixed_ab2]
    W, PW, PH, L, T = 980, 390, 300, 70, 50
    H = T + PH + 92 + 18 * ((len(others) + 3) // 4)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
        f'<rect width="{W}" height="{H}" fill="white"/>',
        f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15">Adaptive schedules (TPM) vs fixed schedules: '
        f"eval/ classifier, same noise</text>",
    ]
    xs_all = [r["mean_steps"] for r in results]
    x0, x1 = 0.0, max(52.0, max(xs_all) + 2)
    for pi, (key, title) in enumerate(
        [("accuracy", "eval accuracy (higher is better)"), ("frechet_distance", "Fréchet distance (lower is better)")]
    ):
        ox = L + pi * (PW + 110)
        ys = [r[key] for r in results]
        # FD: the interesting range is near the Euler-50 level; points above the cap sit on the top edge
        cap = 2.0 if key == "frechet_distance" else float("inf")
        y0, y1 = min(ys), min(max(ys), cap)
        pad = (y1 - y0) * 0.1 or 0.01
        y0, y1 = y0 - pad, y1 + pad
        X = lambda v: ox + (v - x0) / (x1 - x0) * PW  # noqa: E731
        Y = lambda v: T + PH - (v - y0) / (y1 - y0) * PH  # noqa: E731
        out.append(f'<rect x="{ox}" y="{T}" width="{PW}" height="{PH}" fill="none" stroke="#333"/>')
        out.append(f'<text x="{ox + PW / 2}" y="{T - 8}" text-anchor="middle">{title}</text>')
        out.append(
            f'<text x="{ox + PW / 2}" y="{T + PH + 36}" text-anchor="middle">mean denoising steps (NFE per '
            'sample)</text>'
        )
        for t in range(0, int(x1) + 1, 10):
            out.append(
                f'<line x1="{X(t)}" y1="{T + PH}" x2="{X(t)}" y2="{T + PH + 5}" stroke="#333"/>'
                f'<text x="{X(t)}" y="{T + PH + 18}" text-anchor="middle">{t}</text>'
            )
        for i in range(6):
            v = y0 + (y1 - y0) * i / 5
            out.append(
                f'<line x1="{ox - 5}" y1="{Y(v)}" x2="{ox}" y2="{Y(v)}" stroke="#333"/>'
                f'<text x="{ox - 8}" y="{Y(v) + 4}" text-anchor="end">{v:.3f}</text>'
                f'<line x1="{ox}" y1="{Y(v)}" x2="{ox + PW}" y2="{Y(v)}" stroke="#eee"/>'
            )
        for line, colour in ((fixed, "#1f77b4"), (fixed_ab2, "#555555")):
            if not line:
                continue
            pts = " ".join(f"{X(r['mean_steps']):.1f},{Y(min(r[key], y1)):.1f}" for r in line)
            out.append(f'<polyline points="{pts}" fill="none" stroke="{colour}" stroke-width="2"/>')
            for r in line:
                out.append(
                    f'<circle cx="{X(r["mean_steps"]):.1f}" cy="{Y(min(r[key], y1)):.1f}" r="3" fill="{colour}"/>'
                )
                if r[key] > y1:
                    out.append(
                        f'<text x="{X(r["mean_steps"]) + 6:.1f}" y="{T + 12:.1f}" font-size="10" '
                        f'fill="{colour}">{r[key]:.2f} ↑</text>'
                    )
        if fixed:
            b = next((r for r in fixed if r["name"] == "euler50"), None)
            if b is not None:
                out.append(
                    f'<line x1="{ox}" y1="{Y(b[key]):.1f}" x2="{ox + PW}" y2="{Y(b[key]):.1f}" stroke="#1f77b4" '
                    'stroke-dasharray="4,3"/>'
                )
                out.append(
                    f'<line x1="{X(30):.1f}" y1="{T}" x2="{X(30):.1f}" y2="{T + PH}" stroke="#999" '
                    'stroke-dasharray="2,3"/>'
                )
        for i, r in enumerate(others):
            c = colors[i % len(colors)]
            v = min(r[key], y1)
            out.append(marker(r, X(r["mean_steps"]), Y(v), c))
            if r[key] > y1:
                out.append(
                    f'<text x="{X(r["mean_steps"]) + 8:.1f}" y="{Y(v) + 4:.1f}" font-size="10">{r[key]:.2f} ↑</text>'
                )
    ly = T + PH + 62
    out.append(
        f'<line x1="{L}" y1="{ly - 4}" x2="{L + 24}" y2="{ly - 4}" stroke="#1f77b4" stroke-width="2"/>'
        f'<text x="{L + 30}" y="{ly}">fixed uniform Euler, 5…50 steps (dashed: the Euler-50 level; dotted: 30 steps = '
        '40 % fewer than 50)</text>'
    )
    if fixed_ab2:
        ly += 18
        out.append(
            f'<line x1="{L}" y1="{ly - 4}" x2="{L + 24}" y2="{ly - 4}" stroke="#555555" stroke-width="2"/>'
            f'<text x="{L + 30}" y="{ly}">fixed uniform AB2 (second-order, 1 NFE per step)</text>'
        )
    for i, r in enumerate(others):
        c = colors[i % len(colors)]
        name = r["name"] + (f" (γ={r['gamma']})" if r.get("gamma") is not None and "γ" not in r["name"] else "")
        cx, cy = L + (i % 4) * 220, ly + 20 + (i // 4) * 18
        out.append(marker(r, cx + 5, cy - 4, c) + f'<text x="{cx + 16}" y="{cy}">{name}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    main()
