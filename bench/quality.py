"""Quality per compute on Tiny Shakespeare: the autoregressive baseline's exact validation NLL against the bounds of
masked diffusion, SEDD (absorbing, uniform) and block diffusion, in bits per character, at the same model size and
training tokens (nanoGPT's CPU setting: 4 layers, 128 wide, 4 heads, context 64, batch 12, 2000 steps), each method
with its recipe (the best row of `bench/ablations.py` for it), over several seeds.

    python bench/quality.py                     # every method, seeds 0 1 2
    python bench/quality.py --quick             # tiny, seconds

Runs live in the ablation sweep's run store (runs/bench/ablations/<variant>-s<seed>), so a configuration the sweep
already trained is measured, not trained again; the sweep and this table share their AR baselines.
"""
from __future__ import annotations
import argparse, json, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl
from ablations import NANOGPT_CPU, QUICK, VARIANTS
from diffusion_lm.trainer import TrainConfig

# method -> its recipe, a row of the ablation table (the presets adopt the same settings)
RECIPES = {'ar': 'ar-torch', 'masked': 'masked-gpt2', 'sedd-absorbing': 'sedd-abs-radd', 'sedd-uniform': 'sedd-uni-torch',
           'block-4': 'block4-count'}
TARGETS = {'masked': 1.20, 'sedd-absorbing': 1.20, 'sedd-uniform': 1.30, 'block-4': 1.10}
BEFORE = {'ar': 2.587, 'masked': 3.581, 'sedd-absorbing': 3.500, 'sedd-uniform': 3.689}   # the same table at 2dc0a01


def _runs(args) -> Path: return bl.RUNS / ('quick' if args.quick else '') / 'ablations'


def measure(variant: str, seed: int, args, device, base: dict, ref=None) -> dict:
    "Train (or reuse) ablation row `variant` for `seed` and measure it on the validation windows."
    cfg = TrainConfig.from_dict({**base, **VARIANTS[variant][0], 'seed': seed, 'out_dir': str(_runs(args) / f'{variant}-s{seed}')})
    return bl.train_and_measure(variant, cfg, device, draws=2 if args.quick else 8, max_windows=64 if args.quick else None, ref=ref)


def reference_ar(args, device, base: dict, seed: int = 0) -> dict:
    "AR with its recipe at the 1x budget: the reference of every ratio."
    return measure(RECIPES['ar'], seed, args, device, base)


def _mean_se(xs):
    m = sum(xs) / len(xs)
    return m, ((sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) ** 0.5 / len(xs) ** 0.5 if len(xs) > 1 else None)


def markdown(res: dict) -> str:
    rows = []
    for name, r in res['methods'].items():
        bits, ratio = _mean_se([s['bits'] for s in r['seeds']]), _mean_se([s['ratio'] for s in r['seeds']])
        gaps = [s['gap_bits'] for s in r['seeds'] if s.get('gap_bits') is not None]
        target = TARGETS.get(name)
        rows.append([name, r['variant'], 'exact NLL' if name == 'ar' else 'bound', f'{bits[0]:.3f}', bl.fmt(bits[1]),
                     bl.fmt(sum(s['se'] for s in r['seeds']) / len(r['seeds'])), f'{ratio[0]:.3f}', bl.fmt(ratio[1]),
                     '—' if not gaps else f'{sum(gaps) / len(gaps):+.3f}', '—' if target is None else f'<= {target:.2f}',
                     '—' if target is None else ('met' if ratio[0] <= target else 'not met'), bl.fmt(BEFORE.get(name)),
                     f"{r['params'] / 1e6:.2f} M"])
    head = ['method', 'recipe (ablation row)', 'figure', 'val bits/char', 's.e. (seeds)', 's.e. (windows)', 'ratio to AR',
            's.e.', 'paired gap to AR', 'target ratio', '', 'before (2dc0a01)', 'params']
    c = res['base']
    return ('### Quality per compute (Tiny Shakespeare, characters)\n\n' + bl.md_table(head, rows) +
            f"\n\nSame transformer ({c['n_layer']} layers, {c['n_embd']} wide, {c['n_head']} heads, context "
            f"{c['context_length']}; causal for AR), batch {c['batch_size']}, {c['max_steps']} steps for every method, seeds "
            f"{res['seeds']} (each seed: same batches for every method). Validation: every consecutive window of the validation "
            f"split, {res['draws']} Monte-Carlo draws per window for the bounds. The ratio is to the AR run of the same seed.")


def main(argv=None):
    ap = bl.common_args(argparse.ArgumentParser(description=__doc__.split('\n')[0]), default_threads=1)
    ap.add_argument('--seeds', nargs='*', type=int, default=[0, 1, 2])
    ap.add_argument('--only', nargs='*', default=None, help=f'methods (default: all of {list(RECIPES)})')
    args = ap.parse_args(argv)
    device = bl.setup(args)
    base = QUICK if args.quick else NANOGPT_CPU
    res = bl.new_result('quality', args, device)
    res.update(base=base, seeds=args.seeds, draws=2 if args.quick else 8, methods={})
    d = bl.out_dir(args)
    for name in args.only or list(RECIPES):
        variant, seeds, params = RECIPES[name], [], None
        for s in args.seeds:
            ref = reference_ar(args, device, base, s)
            m = ref if name == 'ar' else measure(variant, s, args, device, base, ref=ref['window_bits'])
            f, params = m['final'], m['params']
            seeds.append({'seed': s, 'bits': f['bits'], 'se': f['se'], 'ratio': f['bits'] / ref['final']['bits'],
                          'gap_bits': f.get('gap_bits'), 'gap_se': f.get('gap_se'), 'curve': m['curve']})
            print(f"{name} seed {s}: {f['bits']:.4f} bits/char, ratio {seeds[-1]['ratio']:.3f}", flush=True)
        res['methods'][name] = {'variant': variant, 'params': params, 'seeds': seeds}
        bl.save_result(res, markdown(res), d)
    return res


if __name__ == '__main__': main()
