"""The training recipe, found by measurement: every lever tried at the nanoGPT CPU budget (4 layers, 128 wide, context
64, batch 12, 2000 steps), each variant trained with the library's `train` and measured on every validation window,
with its ratio to the autoregressive baseline of the same seed (paired, same windows) and its standard error.

    python bench/ablations.py                          # every variant, seeds 0 and 1
    python bench/ablations.py --only masked-torch masked-gpt2 --seeds 0
    python bench/ablations.py --quick                  # tiny, seconds

A finished run is reused (its folder under runs/bench/ablations/), so an interrupted sweep continues where it stopped.
"""
from __future__ import annotations
import argparse, dataclasses, json, math, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl
from diffusion_lm.trainer import TrainConfig

NANOGPT_CPU = dict(dataset='shakespeare-char', context_length=64, n_layer=4, n_head=4, n_embd=128, batch_size=12, max_steps=2000,
                   lr=1e-3, min_lr=1e-4, warmup_steps=100, beta2=0.99, weight_decay=0.1, grad_clip=1.0, dropout=0.0, ema_decay=0.0,
                   eval_interval=250, eval_batches=22, log_interval=50, checkpoint_interval=2000, keep_last=1, cond_dim=128)
QUICK = dict(NANOGPT_CPU, n_layer=1, n_head=2, n_embd=32, context_length=16, batch_size=4, max_steps=20, warmup_steps=5,
             eval_interval=10, eval_batches=2, log_interval=5, checkpoint_interval=20, cond_dim=32)

# name: (overrides, what the lever is)
VARIANTS = {
    'ar-gpt2': (dict(method='ar', init='gpt2'), 'AR baseline, GPT-2 initialisation (the earlier default)'),
    'ar-torch': (dict(method='ar', init='torch'), 'AR baseline, PyTorch initialisation'),
    'masked-gpt2': (dict(method='masked', init='gpt2'), 'masked diffusion as before: GPT-2 init, time estimator'),
    'masked-torch': (dict(method='masked', init='torch'), 'PyTorch initialisation'),
    'masked-torch-count': (dict(method='masked', init='torch', estimator='count'), '+ count estimator'),
    'masked-torch-lr2e-3': (dict(method='masked', init='torch', lr=2e-3, min_lr=2e-4), '+ lr 2e-3'),
    'masked-torch-count-lr2e-3': (dict(method='masked', init='torch', estimator='count', lr=2e-3, min_lr=2e-4), 'count + lr 2e-3'),
    'masked-torch-count-lr3e-3': (dict(method='masked', init='torch', estimator='count', lr=3e-3, min_lr=3e-4), 'count + lr 3e-3'),
    'masked-torch-count-ema': (dict(method='masked', init='torch', estimator='count', ema_decay=0.995), 'count + EMA 0.995'),
    'masked-torch-count-b24': (dict(method='masked', init='torch', estimator='count', batch_size=24, max_steps=1000, warmup_steps=50),
                               'count, batch 24 for 1000 steps (same tokens)'),
    'sedd-abs-gpt2': (dict(method='sedd', graph='absorbing', init='gpt2'), 'SEDD absorbing as before (time-conditioned, GPT-2 init)'),
    'sedd-abs-torch': (dict(method='sedd', graph='absorbing', init='torch'), 'PyTorch initialisation'),
    'sedd-abs-radd': (dict(method='sedd', graph='absorbing', init='torch', cond_dim=0), 'no time input (RADD), PyTorch init'),
    'sedd-abs-radd-lr2e-3': (dict(method='sedd', graph='absorbing', init='torch', cond_dim=0, lr=2e-3, min_lr=2e-4), 'RADD + lr 2e-3'),
    'sedd-uni-gpt2': (dict(method='sedd', graph='uniform', init='gpt2'), 'SEDD uniform as before (GPT-2 init)'),
    'sedd-uni-torch': (dict(method='sedd', graph='uniform', init='torch'), 'PyTorch initialisation'),
    'sedd-uni-torch-geo': (dict(method='sedd', graph='uniform', noise='geometric', init='torch'), 'geometric noise'),
    'block1-count': (dict(method='block', block_size=1, init='torch', estimator='count'), 'block 1, count estimator (= AR loss)'),
    'block4-time': (dict(method='block', block_size=4, init='torch'), 'block 4, time estimator'),
    'block4-count': (dict(method='block', block_size=4, init='torch', estimator='count'), 'block 4, count estimator'),
    'block4-count-clip': (dict(method='block', block_size=4, init='torch', estimator='count', clip=[0.3, 0.8]), 'block 4, count, clipped rates [0.3, 0.8]'),
    'block4-time-clip': (dict(method='block', block_size=4, init='torch', clip=[0.3, 0.8]), 'block 4, time, clipped [0.3, 0.8]'),
    'block4-count-lr2e-3': (dict(method='block', block_size=4, init='torch', estimator='count', lr=2e-3, min_lr=2e-4), 'block 4, count, lr 2e-3'),
    'block2-count': (dict(method='block', block_size=2, init='torch', estimator='count'), 'block 2, count'),
    'block8-count': (dict(method='block', block_size=8, init='torch', estimator='count'), 'block 8, count'),
    'block16-count': (dict(method='block', block_size=16, init='torch', estimator='count'), 'block 16, count'),
}


def ar_reference(seed: int, base: dict, runs: Path, device, draws: int, windows) -> dict:
    "The AR baseline of this seed (PyTorch init), the reference every ratio and paired gap divides by."
    cfg = TrainConfig.from_dict({**base, 'method': 'ar', 'init': 'torch', 'seed': seed, 'out_dir': str(runs / f'ar-torch-s{seed}')})
    return bl.train_and_measure('ar-torch', cfg, device, draws, windows)


def markdown(res: dict) -> str:
    rows = []
    for name, r in res['variants'].items():
        per_seed = [s['final'] for s in r['seeds']]
        bits = [f['bits'] for f in per_seed]
        ratios = [s['final']['bits'] / s['ar_bits'] for s in r['seeds']]
        mean = sum(bits) / len(bits)
        se_seeds = (sum((b - mean) ** 2 for b in bits) / (len(bits) - 1)) ** 0.5 / len(bits) ** 0.5 if len(bits) > 1 else None
        se_win = (sum(f['se'] ** 2 for f in per_seed) ** 0.5) / len(per_seed)
        gap = [f.get('gap_bits') for f in per_seed]
        rows.append([name, r['what'], f'{mean:.3f}', bl.fmt(se_win), bl.fmt(se_seeds), f'{sum(ratios) / len(ratios):.3f}',
                     '—' if gap[0] is None else f"{sum(gap) / len(gap):+.3f}", len(bits),
                     bl.fmt(r['seeds'][0]['tokens_per_s_median'] / r['seeds'][0]['ar_tokens_per_s'], 2)])
    head = ['variant', 'lever', 'val bits/char', 's.e. (windows)', 's.e. (seeds)', 'ratio to AR', 'gap to AR (paired)',
            'seeds', 'train speed vs AR']
    c = res['base']
    return ('### Ablations at the nanoGPT CPU budget\n\n' + bl.md_table(head, rows) +
            f"\n\n{c['n_layer']} layers x {c['n_embd']}, context {c['context_length']}, batch {c['batch_size']}, {c['max_steps']} "
            f"steps for every variant unless it says otherwise (same tokens), lr {c['lr']} -> {c['min_lr']} cosine unless it "
            f"says otherwise, no EMA unless it says so. Each row: the mean over seeds of the bound (exact NLL for AR) on all "
            f"validation windows, {res['draws']} Monte-Carlo draws per window for the diffusion bounds; s.e. over windows and "
            f"over seeds; the ratio and the paired gap are to the AR baseline (PyTorch init) of the same seed. Train speed: "
            f"median tokens/s of the variant over that of AR, in the same sweep (noisy on shared cores).")


def main(argv=None):
    ap = bl.common_args(argparse.ArgumentParser(description=__doc__.split('\n')[0]))
    ap.add_argument('--only', nargs='*', default=None, help='variant names (default: all)')
    ap.add_argument('--seeds', nargs='*', type=int, default=[0, 1])
    ap.add_argument('--draws', type=int, default=None)
    ap.add_argument('--windows', type=int, default=None, help='validation windows for the final figure (default all)')
    args = ap.parse_args(argv)
    device = bl.setup(args)
    base = QUICK if args.quick else NANOGPT_CPU
    draws = args.draws or (2 if args.quick else 8)
    windows = args.windows or (64 if args.quick else None)
    runs = bl.RUNS / ('quick' if args.quick else '') / 'ablations'
    names = args.only or list(VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown: raise SystemExit(f'unknown variants {unknown}; choose from {list(VARIANTS)}')
    d = bl.out_dir(args)
    stem = f"ablations__{bl.slug(bl.machine_kind(device))}"
    old = json.loads((d / f'{stem}.json').read_text()) if (d / f'{stem}.json').exists() and not args.quick else None
    res = bl.new_result('ablations', args, device)
    res.update(base=base, draws=draws, variants=(old or {}).get('variants', {}) if old else {})
    refs = {s: ar_reference(s, base, runs, device, draws, windows) for s in args.seeds}
    for name in names:
        over, what = VARIANTS[name]
        seeds = []
        for s in args.seeds:
            cfg = TrainConfig.from_dict({**base, **over, 'seed': s, 'out_dir': str(runs / f'{name}-s{s}')})
            m = bl.train_and_measure(name, cfg, device, draws, windows, ref=None if over.get('method') == 'ar' else refs[s]['window_bits'])
            if over.get('method') == 'ar':
                m['final'].update(gap_bits=m['final']['bits'] - refs[s]['final']['bits'], gap_se=None)
            m.update(ar_bits=refs[s]['final']['bits'], ar_tokens_per_s=refs[s]['tokens_per_s_median'], seed=s)
            m.pop('window_bits')
            seeds.append(m)
            print(f"{name} seed {s}: {m['final']['bits']:.4f} bits/char (AR {refs[s]['final']['bits']:.4f}, ratio "
                  f"{m['final']['bits'] / refs[s]['final']['bits']:.3f})", flush=True)
        res['variants'][name] = {'what': what, 'overrides': over, 'seeds': seeds}
        bl.save_result(res, markdown(res), d, stem)
    return res


if __name__ == '__main__': main()
