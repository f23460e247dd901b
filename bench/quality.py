"""Quality per compute on Tiny Shakespeare: the autoregressive baseline's exact validation NLL against the bounds of
masked diffusion, SEDD (absorbing, uniform) and block diffusion, in bits per character, at the same model size and
training tokens (nanoGPT's CPU setting: 4 layers, 128 wide, 4 heads, context 64, batch 12, 2000 steps), each method
with its recipe (its best row of `bench/ablations.py` at seed 0), over several seeds.

    python bench/quality.py                     # every method, seeds 0 1 2 (--jobs 2: two runs at a time)
    python bench/quality.py --table             # rebuild the table from the stored runs
    python bench/quality.py --quick             # tiny, seconds

The runs are the ablation sweep's: a (recipe, seed) already stored in `results/ablations/` is not trained again, and
every figure here is recomputed from those files (each window's bits for every draw).
"""
from __future__ import annotations
import argparse, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl
import ablations
from ablations import NANOGPT_CPU, QUICK

# method -> its recipe: the best row of the ablation table for it at seed 0 (the shakespeare presets, at their own
# budget, do not yet adopt the clipped block schedule; see the README)
RECIPES = {'ar': 'ar-gates-lr3e-3', 'masked': 'masked-gates-lr2e-3', 'sedd-absorbing': 'sedd-abs-torch',
           'sedd-uniform': 'sedd-uni-torch', 'block-4': 'block4-gates-clip-lr2e-3'}
TARGET_BITS = {'ar': 2.52, 'masked': 3.30, 'sedd-absorbing': 3.30, 'sedd-uniform': 3.55, 'block-4': 2.95}
TARGET_RATIO = {'block-4': 1.15}
ANY_BLOCK_RATIO = 1.10       # some block size within this ratio of the best AR (ablation rows, seed 0)


def method_rows(recs: dict, seeds: list[int]) -> list[dict]:
    "Per method: bits, ratio and paired gap to the AR recipe of the same seed, each as mean ± s.e. over the seeds."
    out = []
    for name, variant in RECIPES.items():
        ss = [s for s in seeds if (variant, s) in recs and (RECIPES['ar'], s) in recs]
        if not ss: continue
        rs, refs = [recs[variant, s] for s in ss], [recs[RECIPES['ar'], s] for s in ss]
        gaps = [ablations.paired_gap(r, ref) for r, ref in zip(rs, refs)]
        bits = ablations._mean_se([r['final']['bits'] for r in rs])
        ratio = ablations._mean_se([r['final']['bits'] / ref['final']['bits'] for r, ref in zip(rs, refs)])
        met = [bits[0] <= TARGET_BITS[name]] + ([ratio[0] <= TARGET_RATIO[name]] if name in TARGET_RATIO else [])
        out.append({'method': name, 'variant': variant, 'seeds': ss, 'bits': bits, 'ratio': ratio,
                    'se_windows': sum(r['final']['se'] for r in rs) / len(rs),
                    'gap': ablations._mean_se([g for g, _ in gaps]), 'params': rs[0]['params'],
                    'exact': rs[0]['group'] == 'ar', 'met': all(met)})
    return out


def block_sizes(recs: dict, seed: int = 0) -> list[dict]:
    "Per block size, its best gated row of the ablation table at `seed` (any learning rate or schedule) against AR."
    ref = recs.get((RECIPES['ar'], seed))
    best = {}
    for (name, s), r in recs.items():
        over = ablations.VARIANTS[name][0]
        if s != seed or over.get('method') != 'block' or not over.get('gates') or over.get('probe') or not ref: continue
        b = over['block_size']
        if b not in best or r['final']['bits'] < best[b]['bits']:
            best[b] = {'block_size': b, 'variant': name, 'bits': r['final']['bits'], 'ratio': r['final']['bits'] / ref['final']['bits']}
    return [best[b] for b in sorted(best)]


def markdown(rows: list[dict], blocks: list[dict], base: dict, seeds: list[int], draws: int) -> str:
    body = []
    for r in rows:
        t = f"<= {TARGET_BITS[r['method']]:.2f}" + (f", ratio <= {TARGET_RATIO[r['method']]:.2f}" if r['method'] in TARGET_RATIO else '')
        body.append([r['method'], f"`{r['variant']}`", 'exact NLL' if r['exact'] else 'bound', f"{r['bits'][0]:.3f}",
                     bl.fmt(r['bits'][1]), bl.fmt(r['se_windows']), f"{r['ratio'][0]:.3f}", bl.fmt(r['ratio'][1]),
                     '—' if r['method'] == 'ar' else f"{r['gap'][0]:+.3f} ± {bl.fmt(r['gap'][1])}", t,
                     'met' if r['met'] else 'not met', ' '.join(map(str, r['seeds'])), f"{r['params'] / 1e6:.2f} M"])
    head = ['method', 'recipe (ablation row)', 'figure', 'val bits/char', 's.e. (seeds)', 's.e. (windows)', 'ratio to AR',
            's.e.', 'paired gap to AR (over seeds)', 'target (bits/char)', '', 'seeds', 'params']
    real = [b for b in blocks if b['block_size'] > 1]          # block size 1 is the autoregressive model itself
    best = min(real, key=lambda b: b['ratio']) if real else None
    blk = '' if not best else (
        f" The best gated row of each block size at seed 0 (ratio to the AR recipe): "
        + ', '.join(f"{b['block_size']}: {b['ratio']:.3f} (`{b['variant']}`)" for b in blocks)
        + f"; the target of some block size within {ANY_BLOCK_RATIO:.2f}x is "
        + ('met' if best['ratio'] <= ANY_BLOCK_RATIO else 'not met') + f" by blocks of 2 or more (best: blocks of "
        f"{best['block_size']}; block size 1 is the autoregressive model itself, trained through the block loss).")
    c = base
    return ('### Quality per compute (Tiny Shakespeare, characters)\n\n' + bl.md_table(head, body) +
            f"\n\nSame transformer ({c['n_layer']} layers, {c['n_embd']} wide, {c['n_head']} heads, context "
            f"{c['context_length']}; causal for AR), batch {c['batch_size']}, {c['max_steps']} steps for every method, "
            f"each with its recipe (the best ablation row at seed 0), seeds {' '.join(map(str, seeds))} (each seed: the "
            f"same batches for every method). Validation: every consecutive window of the validation split, {draws} "
            f"Monte-Carlo draws per window for the bounds. The ratio and the paired gap are to the AR recipe of the same "
            f"seed; s.e. over seeds." + blk)


def main(argv=None):
    ap = bl.common_args(argparse.ArgumentParser(description=__doc__.split('\n')[0]), default_threads=1)
    ap.add_argument('--seeds', nargs='*', type=int, default=[0, 1, 2])
    ap.add_argument('--jobs', type=int, default=1, help='runs at a time (each its own process)')
    ap.add_argument('--table', action='store_true', help='only rebuild the table from the stored runs')
    args = ap.parse_args(argv)
    device = bl.setup(args)
    base = QUICK if args.quick else NANOGPT_CPU
    draws = 2 if args.quick else 8
    common = [*(['--quick'] if args.quick else []), '--threads', str(args.threads), '--device', args.device,
              '--note', args.note, *(['--out-dir', args.out_dir] if args.out_dir else [])]
    if not args.table:
        ablations.main([*common, '--only', *RECIPES.values(), '--seeds', *map(str, args.seeds), '--jobs', str(args.jobs),
                        '--no-table'])
    recs = ablations.read_runs(bl.out_dir(args) / 'ablations')
    rows, blocks = method_rows(recs, args.seeds), block_sizes(recs)
    res = bl.new_result('quality', args, device)
    res.update(base=base, seeds=args.seeds, draws=draws, recipes=RECIPES, rows=rows, block_sizes=blocks)
    bl.save_result(res, markdown(rows, blocks, base, args.seeds, draws), bl.out_dir(args))
    return res


if __name__ == '__main__': main()
