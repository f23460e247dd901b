"""Compute to match: learning curves of every method to 8x the nanoGPT CPU budget (16,000 steps of batch 12 x 64
characters), and the multiple of AR's training compute each method needs to reach AR's loss at the 1x budget.

    python bench/compute.py                     # every method, 16,000 steps each (hours on one CPU thread)
    python bench/compute.py --only ar masked    # some of them (two processes with other methods may run at once: each
                                                # keeps the other's finished curves in the result)
    python bench/compute.py --quick             # tiny, seconds

Each method trains once, with the recipe of `bench/quality.py` (its best ablation row) and a cosine schedule over the
whole 8x budget, evaluated every 500 steps on a fixed set of validation windows. A point in the middle of a long cosine
has not had its learning rate annealed, so it is worse than a run that stops there; the AR curve shows by how much: AR
reaches its own 1x loss only at some multiple m_AR > 1 of its budget. The table gives each method's raw multiple (where
its curve crosses AR's 1x loss, interpolated linearly in log-compute) and that multiple divided by m_AR (the same
annealing handicap removed). Compute is counted in training tokens (the same transformer for every method; FLOPs per
token differ only by SEDD's time conditioning, whose parameter count is in the table).
"""
from __future__ import annotations
import argparse, json, math, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl
import quality
import ablations
from ablations import NANOGPT_CPU, QUICK, VARIANTS
from diffusion_lm.trainer import TrainConfig

SCALE = 8                                    # the longest run, in multiples of the nanoGPT budget
CURVE = dict(eval_interval=500, eval_batches=40, checkpoint_interval=2000, keep_last=1)


def crossing(curve: list[dict], target: float) -> float | None:
    "The first training-token count at which `curve` ({'tokens', 'val_bits'} rows) reaches `target`, log-interpolated."
    prev = None
    for p in curve:
        if p['val_bits'] <= target:
            if prev is None: return float(p['tokens'])
            f = (prev['val_bits'] - target) / (prev['val_bits'] - p['val_bits'])
            return math.exp(math.log(prev['tokens']) + f * (math.log(p['tokens']) - math.log(prev['tokens'])))
        prev = p
    return None


def markdown(res: dict) -> str:
    base_tokens, ar = res['base_tokens'], res['methods'].get('ar')
    target = res['ar_1x_bits']
    m_ar = (ar or {}).get('multiple')
    rows = []
    for name, r in res['methods'].items():
        m = r['multiple']
        rows.append([name, r['variant'], f"{r['params'] / 1e6:.2f} M", bl.fmt(r['bits_1x']), bl.fmt(r['bits_8x']),
                     f'{m:.2f}x' if m else f'> {SCALE}x', f'{m / m_ar:.2f}x' if (m and m_ar) else 'n/a'])
    head = ['method', 'recipe (ablation row)', 'params', 'bits/char at 1x (on this curve)', f'bits/char at {SCALE}x',
            "compute to reach AR's 1x loss", 'same, annealing handicap removed (/ m_AR)']
    return (f'### Compute to match the autoregressive baseline\n\n' + bl.md_table(head, rows) +
            f"\n\nTarget: AR's validation NLL after the 1x budget with its own 1x schedule (seed 0, the seed of every curve), {target:.3f} bits/char "
            f"(`bench/quality.py`). 1x = {base_tokens:,} training characters. Every curve is one run with a cosine schedule "
            f"over {SCALE}x, evaluated every {res['curve']['eval_interval']} steps on {res['curve']['eval_batches']} "
            f"batches of validation windows (bounds for the diffusion methods). m_AR = "
            f"{bl.fmt(m_ar, 2) if m_ar else 'n/a'}: where AR's own long curve crosses its 1x loss. Curves: `{res['plot']}`.")


def plot(res: dict, path: Path):
    """Every method's learning curve, drawn by seaborn, with a band of ±2 s.e. of each evaluation (its `val_bits_se`
    over the validation windows: only these aggregates are stored, so the band is drawn from them)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns
    names = list(res['methods'])
    df = pd.DataFrame([{'method': name, 'compute': p['tokens'] / res['base_tokens'], 'val_bits': p['val_bits'],
                        'se': p.get('val_bits_se') if p.get('val_bits_se') is not None else float('nan')}
                       for name, r in res['methods'].items() for p in r['curve'] if p['step'] > 0])
    palette = dict(zip(names, sns.color_palette(n_colors=len(names))))
    with sns.axes_style('whitegrid'):
        fig, ax = plt.subplots(figsize=(7, 4.2))
    sns.lineplot(data=df, x='compute', y='val_bits', hue='method', hue_order=names, palette=palette, marker='.',
                 markeredgewidth=0, errorbar=None, sort=True, ax=ax)
    for name, g in df.groupby('method', sort=False):
        ax.fill_between(g['compute'], g['val_bits'] - 2 * g['se'], g['val_bits'] + 2 * g['se'], color=palette[name], alpha=.2, lw=0)
    ax.axhline(res['ar_1x_bits'], color='k', ls='--', lw=1, label="AR's 1x loss")
    ax.set_xscale('log', base=2)
    ax.set_xlabel('training compute (multiples of the nanoGPT CPU budget)')
    ax.set_ylabel('validation bits / character (band: ±2 s.e.)')
    ax.grid(alpha=.3)
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles, labels)
    ax.set_ylim(top=min(max(p['val_bits'] for r in res['methods'].values() for p in r['curve'][2:]) + 0.1, 6))
    fig.tight_layout(); fig.savefig(path, dpi=110); plt.close(fig)


def main(argv=None):
    ap = bl.common_args(argparse.ArgumentParser(description=__doc__.split('\n')[0]), default_threads=1)
    ap.add_argument('--only', nargs='*', default=None, help=f'methods (default: all of {list(quality.RECIPES)})')
    ap.add_argument('--seed', type=int, default=0)
    args = ap.parse_args(argv)
    device = bl.setup(args)
    base = QUICK if args.quick else NANOGPT_CPU
    curve = dict(CURVE, eval_interval=10, eval_batches=2, checkpoint_interval=40) if args.quick else CURVE
    runs = bl.RUNS / ('quick' if args.quick else '') / 'compute'
    names = args.only or list(quality.RECIPES)
    unknown = [n for n in names if n not in quality.RECIPES]
    if unknown: raise SystemExit(f'unknown methods {unknown}; choose from {list(quality.RECIPES)}')
    d = bl.out_dir(args)
    common = [*(['--quick'] if args.quick else []), '--threads', str(args.threads), '--device', args.device,
              *(['--out-dir', args.out_dir] if args.out_dir else [])]
    ablations.main([*common, '--only', quality.RECIPES['ar'], '--seeds', str(args.seed), '--no-table'])   # AR at 1x
    ref = ablations.load_run(ablations.run_path(d / 'ablations', quality.RECIPES['ar'], args.seed))
    res = bl.new_result('compute', args, device)
    base_tokens = base['max_steps'] * base['batch_size'] * base['context_length']
    res.update(base=base, curve=curve, scale=SCALE, base_tokens=base_tokens, ar_1x_bits=ref['final']['bits'], methods={},
               plot=str((d / 'compute_curves.png').relative_to(bl.ROOT)) if d.is_relative_to(bl.ROOT) else str(d / 'compute_curves.png'))
    for name in names:
        variant = quality.RECIPES[name]
        over = VARIANTS[variant][0]
        steps = base['max_steps'] * SCALE
        cfg = TrainConfig.from_dict({**base, **over, **curve, 'max_steps': steps, 'seed': args.seed,
                                     'out_dir': str(runs / f'{name}-{SCALE}x-s{args.seed}')})
        m = bl.train_and_measure(name, cfg, device, draws=1, max_windows=256)
        c = m['curve']
        near = lambda k: min(c, key=lambda p: abs(p['step'] - k * base['max_steps']))['val_bits']
        hit = crossing(c, ref['final']['bits'])
        res['methods'][name] = {'variant': variant, 'params': m['params'], 'curve': c, 'bits_1x': near(1), 'bits_8x': c[-1]['val_bits'],
                                'multiple': None if hit is None else hit / base_tokens, 'tokens_per_s_median': m['tokens_per_s_median']}
        print(f"{name}: {c[-1]['val_bits']:.3f} bits/char at {SCALE}x; reaches AR's 1x loss at "
              f"{'never' if hit is None else f'{hit / base_tokens:.2f}x'}", flush=True)
        old = d / f"compute__{res['machine']['kind_slug']}.json"      # another process may run other methods
        if old.exists() and not args.quick:
            prev = json.loads(old.read_text())
            if prev.get('ar_1x_bits') == res['ar_1x_bits'] and prev.get('base') == res['base']:
                res['methods'] = {**{k: v for k, v in prev['methods'].items() if k not in names}, **res['methods']}
        plot(res, d / 'compute_curves.png')
        bl.save_result(res, markdown(res), d)
    return res


if __name__ == '__main__': main()
