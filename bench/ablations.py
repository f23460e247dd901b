"""The training recipe, found by measurement: every lever tried at the nanoGPT CPU budget (4 layers, 128 wide, context
64, batch 12, 2000 steps), each variant trained with the library's `train` and measured on every validation window,
with its ratio to the best autoregressive recipe of the same seed (paired, same windows) and its standard error.

    python bench/ablations.py                          # every variant, seed 0 (--jobs 2: two at a time, 1 thread each)
    python bench/ablations.py --only masked-gates ar-gates --seeds 0 1 2
    python bench/ablations.py --table                  # rebuild the table from the stored runs, train nothing
    python bench/ablations.py --quick                  # tiny, seconds

Each finished (variant, seed) is stored on its own in `results/ablations/<variant>-s<seed>.json.gz`: its config,
learning curve, speed and the bits/char of every validation window for every Monte-Carlo draw, so the table (and any
other figure) can be recomputed from the files. A stored run is not trained again; a run interrupted while training
resumes from its checkpoint under runs/bench/ablations/.
"""
from __future__ import annotations
import argparse, gzip, json, os, subprocess, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl
import probes

# The bare recipe: PyTorch initialisation, no gates, no EMA. Every variant names the levers it changes.
NANOGPT_CPU = dict(dataset='shakespeare-char', context_length=64, n_layer=4, n_head=4, n_embd=128, batch_size=12,
                   max_steps=2000, lr=1e-3, min_lr=1e-4, warmup_steps=100, beta2=0.99, weight_decay=0.1, grad_clip=1.0,
                   dropout=0.0, ema_decay=0.0, eval_interval=250, eval_batches=22, log_interval=50,
                   checkpoint_interval=2000, keep_last=1, cond_dim=128, init='torch', gates=False)
QUICK = dict(NANOGPT_CPU, n_layer=1, n_head=2, n_embd=32, context_length=16, batch_size=4, max_steps=20, warmup_steps=5,
             eval_interval=10, eval_batches=2, log_interval=5, checkpoint_interval=20, cond_dim=32)

AR, MASKED, SEDD_ABS, SEDD_UNI = dict(method='ar'), dict(method='masked'), dict(method='sedd', graph='absorbing'), \
    dict(method='sedd', graph='uniform')
G, COUNT, RADD, IS = dict(gates=True), dict(estimator='count'), dict(cond_dim=0), dict(importance_sampling=True)
LR = lambda lr: dict(lr=lr, min_lr=lr / 10)                                          # noqa: E731
BLOCK = lambda b, **o: dict(method='block', block_size=b, **o)                        # noqa: E731

# name: (overrides of NANOGPT_CPU, what the lever is). Time-conditioned SEDD has adaLN-Zero gates (gates=True) unless
# a row says otherwise, as the official code does; '-gates' rows add the zero-initialised gates to models without time.
# A 'probe' (bench/probes.py) patches the library for that run: an alternative measured, not adopted.
VARIANTS = {
    'ar-gpt2': (dict(AR, init='gpt2'), 'AR, GPT-2 initialisation'),
    'ar-torch': (AR, 'AR, PyTorch initialisation (the earlier baseline)'),
    'ar-gates': (dict(AR, **G), 'AR + residual gates'),
    'ar-gates-lr5e-4': (dict(AR, **G, **LR(5e-4)), 'AR + gates, lr 5e-4'),
    'ar-gates-lr2e-3': (dict(AR, **G, **LR(2e-3)), 'AR + gates, lr 2e-3'),
    'ar-gates-lr3e-3': (dict(AR, **G, **LR(3e-3)), 'AR + gates, lr 3e-3'),
    'ar-gates-lr5e-3': (dict(AR, **G, **LR(5e-3)), 'AR + gates, lr 5e-3'),
    'ar-gates-const': (dict(AR, **G, probe='const-condition'), 'AR + gates as adaLN-Zero with a constant condition (probe)'),

    'masked-gpt2': (dict(MASKED, init='gpt2'), 'GPT-2 init, time estimator (the earlier recipe)'),
    'masked-torch': (MASKED, 'PyTorch initialisation, time estimator'),
    'masked-torch-count': (dict(MASKED, **COUNT), '+ count estimator'),
    'masked-torch-lr2e-3': (dict(MASKED, **LR(2e-3)), '+ lr 2e-3'),
    'masked-torch-count-lr2e-3': (dict(MASKED, **COUNT, **LR(2e-3)), 'count + lr 2e-3'),
    'masked-torch-count-lr3e-3': (dict(MASKED, **COUNT, **LR(3e-3)), 'count + lr 3e-3'),
    'masked-torch-count-ema': (dict(MASKED, **COUNT, ema_decay=0.995), 'count + EMA 0.995'),
    'masked-torch-count-b24': (dict(MASKED, **COUNT, batch_size=24, max_steps=1000, warmup_steps=50),
                               'count, batch 24 for 1000 steps (same tokens)'),
    'masked-gates': (dict(MASKED, **G), '+ residual gates'),
    'masked-gpt2-gates': (dict(MASKED, **G, init='gpt2'), 'GPT-2 init + gates'),
    'masked-gates-count': (dict(MASKED, **G, **COUNT), 'gates + count estimator'),
    'masked-gates-lr5e-4': (dict(MASKED, **G, **LR(5e-4)), 'gates, lr 5e-4'),
    'masked-gates-lr2e-3': (dict(MASKED, **G, **LR(2e-3)), 'gates, lr 2e-3'),
    'masked-gates-lr3e-3': (dict(MASKED, **G, **LR(3e-3)), 'gates, lr 3e-3'),
    'masked-gates-ema': (dict(MASKED, **G, ema_decay=0.995), 'gates + EMA 0.995'),
    'masked-gates-count-lr2e-3': (dict(MASKED, **G, **COUNT, **LR(2e-3)), 'gates + count, lr 2e-3'),
    'masked-gates-is-lr2e-3': (dict(MASKED, **G, **IS, **LR(2e-3)), 'gates, lr 2e-3 + importance sampling of t'),
    'masked-gates-const': (dict(MASKED, **G, probe='const-condition'), 'gates as adaLN-Zero, constant condition (probe)'),
    'masked-gates-lr2e-3-nodecay': (dict(MASKED, **G, **LR(2e-3), probe='gate-no-decay'),
                                    'gates without weight decay, lr 2e-3 (probe)'),
    'masked-gates-lr2e-3-gatelr10': (dict(MASKED, **G, **LR(2e-3), probe='gate-lr-10'),
                                     'gates without weight decay at 10x lr, lr 2e-3 (probe)'),

    'sedd-abs-gpt2': (dict(SEDD_ABS, **G, init='gpt2'), 'time-conditioned (adaLN-Zero), GPT-2 init'),
    'sedd-abs-torch': (dict(SEDD_ABS, **G), 'time-conditioned (adaLN-Zero), PyTorch init: the official model'),
    'sedd-abs-nogates': (dict(SEDD_ABS), 'time-conditioned adaLN without its gates'),
    'sedd-abs-torch-lr2e-3': (dict(SEDD_ABS, **G, **LR(2e-3)), 'adaLN-Zero, lr 2e-3'),
    'sedd-abs-torch-lr5e-4': (dict(SEDD_ABS, **G, **LR(5e-4)), 'adaLN-Zero, lr 5e-4'),
    'sedd-abs-torch-bias': (dict(SEDD_ABS, **G, probe='bias'), 'adaLN-Zero + biases in every layer (probe)'),
    'sedd-abs-torch-iid': (dict(SEDD_ABS, **G, probe='iid-times'), 'adaLN-Zero, iid training times as the official code (probe)'),
    'sedd-abs-radd': (dict(SEDD_ABS, **RADD), 'no time input (RADD)'),
    'sedd-abs-radd-lr2e-3': (dict(SEDD_ABS, **RADD, **LR(2e-3)), 'RADD + lr 2e-3'),
    'sedd-abs-radd-gates': (dict(SEDD_ABS, **RADD, **G), 'RADD + residual gates'),

    'sedd-uni-gpt2': (dict(SEDD_UNI, **G, init='gpt2'), 'time-conditioned (adaLN-Zero), GPT-2 init'),
    'sedd-uni-torch': (dict(SEDD_UNI, **G), 'time-conditioned (adaLN-Zero), PyTorch init: the official model'),
    'sedd-uni-nogates': (dict(SEDD_UNI), 'time-conditioned adaLN without its gates'),
    'sedd-uni-torch-geo': (dict(SEDD_UNI, **G, noise='geometric'), 'adaLN-Zero, geometric noise'),
    'sedd-uni-torch-lr2e-3': (dict(SEDD_UNI, **G, **LR(2e-3)), 'adaLN-Zero, lr 2e-3'),

    'block1-count': (BLOCK(1, **COUNT), 'block 1, count estimator (= the AR loss)'),
    'block2-count': (BLOCK(2, **COUNT), 'block 2, count'),
    'block4-time': (BLOCK(4), 'block 4, time estimator'),
    'block4-count': (BLOCK(4, **COUNT), 'block 4, count estimator'),
    'block4-count-clip': (BLOCK(4, **COUNT, clip=[0.3, 0.8]), 'block 4, count, clipped rates [0.3, 0.8]'),
    'block4-time-clip': (BLOCK(4, clip=[0.3, 0.8]), 'block 4, time, clipped [0.3, 0.8]'),
    'block4-count-lr2e-3': (BLOCK(4, **COUNT, **LR(2e-3)), 'block 4, count, lr 2e-3'),
    'block8-count': (BLOCK(8, **COUNT), 'block 8, count'),
    'block16-count': (BLOCK(16, **COUNT), 'block 16, count'),
    'block1-gates': (BLOCK(1, **COUNT, **G), 'block 1, count + gates'),
    'block2-gates': (BLOCK(2, **COUNT, **G), 'block 2, count + gates'),
    'block4-gates': (BLOCK(4, **COUNT, **G), 'block 4, count + gates'),
    'block8-gates': (BLOCK(8, **COUNT, **G), 'block 8, count + gates'),
    'block16-gates': (BLOCK(16, **COUNT, **G), 'block 16, count + gates'),
    'block4-gates-time': (BLOCK(4, **G), 'block 4, time estimator + gates'),
    'block4-gates-clip': (BLOCK(4, **COUNT, **G, clip=[0.3, 0.8]), 'block 4, count + gates, clipped [0.3, 0.8]'),
    'block4-gates-lr5e-4': (BLOCK(4, **COUNT, **G, **LR(5e-4)), 'block 4, count + gates, lr 5e-4'),
    'block4-gates-lr2e-3': (BLOCK(4, **COUNT, **G, **LR(2e-3)), 'block 4, count + gates, lr 2e-3'),
    'block4-gates-clip-lr2e-3': (BLOCK(4, **COUNT, **G, **LR(2e-3), clip=[0.3, 0.8]), 'block 4, count + gates, clipped, lr 2e-3'),
    'block4-gates-is-lr2e-3': (BLOCK(4, **COUNT, **G, **IS, **LR(2e-3)), 'block 4, count + gates + importance, lr 2e-3'),
    'block4-gates-const': (BLOCK(4, **COUNT, **G, probe='const-condition'),
                           'block 4, count, gates as adaLN-Zero, constant condition (probe)'),
    'block2-gates-const': (BLOCK(2, **COUNT, **G, probe='const-condition'),
                           'block 2, count, gates as adaLN-Zero, constant condition (probe)'),
    'block4-gates-lr3e-3': (BLOCK(4, **COUNT, **G, **LR(3e-3)), 'block 4, count + gates, lr 3e-3'),
}
GROUPS = ('ar', 'masked', 'sedd-absorbing', 'sedd-uniform', 'block')


def group(over: dict) -> str:
    "The method a variant belongs to, as the table groups them."
    m = over.get('method')
    return f"sedd-{over['graph']}" if m == 'sedd' else m


def run_path(results: Path, name: str, seed: int) -> Path: return results / f'{name}-s{seed}.json.gz'


def load_run(path: Path) -> dict:
    with gzip.open(path, 'rt', encoding='utf-8') as f: return json.load(f)


def save_run(path: Path, rec: dict):
    "Write a run's record atomically (a temporary file, then rename): a killed sweep never leaves half a file."
    tmp = path.with_name(path.name + f'.{os.getpid()}.tmp')
    with gzip.open(tmp, 'wt', encoding='utf-8') as f: json.dump(rec, f, default=bl._jsonable)
    os.replace(tmp, path)


def run_one(name: str, seed: int, base: dict, runs: Path, results: Path, device, draws: int, windows, machine: dict) -> dict:
    "Train (or resume) one variant for one seed, measure it on every validation window and store the record."
    from diffusion_lm.trainer import TrainConfig
    over, what = VARIANTS[name]
    cfg = TrainConfig.from_dict({**base, **{k: v for k, v in over.items() if k != 'probe'}, 'seed': seed,
                                 'out_dir': str(runs / f'{name}-s{seed}')})
    with probes.applied(over.get('probe'), base['cond_dim']):
        m = bl.train_and_measure(name, cfg, device, draws, windows)
    rec = {'name': name, 'what': what, 'overrides': over, 'seed': seed, 'group': group(over), 'config': m['config'],
           'params': m['params'], 'final': m['final'], 'curve': m['curve'], 'tokens_per_s_median': m['tokens_per_s_median'],
           'wall_seconds': m['wall_seconds'], 'machine': machine,
           'draw_bits': [[round(float(v), 5) for v in row] for row in m['draw_bits']]}
    save_run(run_path(results, name, seed), rec)
    print(f"{name} seed {seed}: {m['final']['bits']:.4f} bits/char", flush=True)
    return rec


# ---------------------------------------------------------------- the table, from the stored runs only
def window_means(rec: dict) -> list[float]:
    "Bits/char of each validation window, the mean over the record's draws."
    d = rec['draw_bits']
    return [sum(col) / len(col) for col in zip(*d)]


def best_ar(recs: dict, seed: int) -> dict | None:
    "The best AR recipe of `seed` among the stored runs (lowest exact NLL): the reference of every ratio."
    ars = [r for (n, s), r in recs.items() if s == seed and r['group'] == 'ar']
    return min(ars, key=lambda r: r['final']['bits']) if ars else None


def paired_gap(rec: dict, ref: dict) -> tuple[float, float]:
    "Mean and standard error over windows of the per-window difference to the reference (same windows)."
    a, b = window_means(rec), window_means(ref)
    if len(a) != len(b): raise ValueError(f"{rec['name']} and {ref['name']} were measured on different windows")
    d = [x - y for x, y in zip(a, b)]
    mean = sum(d) / len(d)
    return mean, (sum((x - mean) ** 2 for x in d) / (len(d) - 1) / len(d)) ** 0.5


def _mean_se(xs: list[float]) -> tuple[float, float | None]:
    m = sum(xs) / len(xs)
    return m, ((sum((x - m) ** 2 for x in xs) / (len(xs) - 1)) ** 0.5 / len(xs) ** 0.5 if len(xs) > 1 else None)


def table_rows(recs: dict) -> list[dict]:
    "One row per variant: the mean over its seeds of the bits, of the ratio and of the paired gap to the best AR."
    rows = []
    for name, (over, what) in VARIANTS.items():
        seeds = sorted(s for (n, s) in recs if n == name)
        if not seeds: continue
        rs = [recs[name, s] for s in seeds]
        refs = [best_ar(recs, s) for s in seeds]
        bits = [r['final']['bits'] for r in rs]
        gaps = [paired_gap(r, ref) for r, ref in zip(rs, refs)]
        speed = [r['tokens_per_s_median'] / ref['tokens_per_s_median'] for r, ref in zip(rs, refs)
                 if r['tokens_per_s_median'] and ref['tokens_per_s_median']]
        rows.append({'variant': name, 'group': group(over), 'what': what, 'seeds': seeds, 'bits': _mean_se(bits),
                     'se_windows': sum(r['final']['se'] ** 2 for r in rs) ** 0.5 / len(rs),
                     'ratio': _mean_se([b / ref['final']['bits'] for b, ref in zip(bits, refs)]),
                     'gap': (sum(g for g, _ in gaps) / len(gaps), sum(e ** 2 for _, e in gaps) ** 0.5 / len(gaps)),
                     'reference': sorted({ref['name'] for ref in refs}),
                     'speed': sum(speed) / len(speed) if speed else None, 'params': rs[0]['params']})
    order = {g: i for i, g in enumerate(GROUPS)}
    return sorted(rows, key=lambda r: (order.get(r['group'], 99), r['bits'][0]))


def markdown(rows: list[dict], base: dict, draws: int) -> str:
    head = ['method', 'variant', 'lever', 'val bits/char', 's.e. (windows)', 's.e. (seeds)', 'ratio to best AR',
            'paired gap to best AR', 'seeds', 'train speed vs AR', 'params']
    body = []
    for r in rows:
        gap = '—' if r['group'] == 'ar' and r['gap'][0] == 0 else f"{r['gap'][0]:+.3f} ± {r['gap'][1]:.3f}"
        body.append([r['group'], f"`{r['variant']}`", r['what'], f"{r['bits'][0]:.3f}", bl.fmt(r['se_windows']),
                     bl.fmt(r['bits'][1]), f"{r['ratio'][0]:.3f}", gap, ' '.join(map(str, r['seeds'])),
                     bl.fmt(r['speed'], 2), f"{r['params'] / 1e6:.2f} M"])
    refs = sorted({n for r in rows for n in r['reference']})
    c = base
    return ('### Ablations at the nanoGPT CPU budget\n\n' + bl.md_table(head, body) +
            f"\n\n{c['n_layer']} layers x {c['n_embd']}, context {c['context_length']}, batch {c['batch_size']}, "
            f"{c['max_steps']} steps for every variant unless it says otherwise (same tokens), lr {c['lr']} -> "
            f"{c['min_lr']} cosine unless it says otherwise, no EMA unless it says so, no residual gates unless it says "
            f"so (time-conditioned SEDD has its adaLN-Zero gates unless it says otherwise). Sorted by method, best first. "
            f"Each row: the mean over its seeds of the bound (exact NLL for AR) on all validation windows, {draws} "
            f"Monte-Carlo draws per window for the diffusion bounds; s.e. over windows and over seeds. The ratio and the "
            f"paired gap (per-window differences, mean ± s.e.) are to the best AR recipe of the same seed among the "
            f"stored runs ({', '.join(f'`{n}`' for n in refs)}). Train speed: median tokens/s over that of the "
            f"reference AR run, measured in different processes (noisy on shared cores). Every figure is recomputed "
            f"from `results/ablations/<variant>-s<seed>.json.gz` (`python bench/ablations.py --table`).")


def read_runs(results: Path) -> dict:
    return {(r['name'], r['seed']): r for r in map(load_run, sorted(results.glob('*-s*.json.gz'))) if r['name'] in VARIANTS}


def plot(recs: dict, rows: list[dict], path: Path, seed: int = 0):
    ("Every variant's per-window gap to the best AR recipe of `seed` (bits/char, same windows), mean and 2 s.e. drawn "
     "by seaborn from the stored per-window values, grouped by method.")
    import matplotlib; matplotlib.use('Agg')
    import matplotlib.pyplot as plt, seaborn as sns
    ref = best_ar(recs, seed)
    data = {'variant': [], 'method': [], 'gap': []}
    order = [r['variant'] for r in rows if (r['variant'], seed) in recs]
    for name in order:
        rec = recs[name, seed]
        for a, b in zip(window_means(rec), window_means(ref)):
            data['variant'].append(name); data['method'].append(rec['group']); data['gap'].append(a - b)
    sns.set_theme(style='whitegrid', font_scale=0.8)
    fig, ax = plt.subplots(figsize=(8, 0.19 * len(order) + 1.2))
    sns.pointplot(data=data, x='gap', y='variant', hue='method', order=order, errorbar=('se', 2), linestyle='none',
                  markersize=3, err_kws={'linewidth': 1}, ax=ax)
    ax.axvline(0, color='k', lw=0.8)
    ax.set_xlabel(f'bits/char above the best AR ({ref["name"]}), seed {seed}, per window: mean ± 2 s.e.')
    ax.set_ylabel('')
    fig.tight_layout(); fig.savefig(path, dpi=110); plt.close(fig)
    return path


def write_table(args, device, base, draws, results: Path):
    recs = read_runs(results)
    res = bl.new_result('ablations', args, device)
    rows = table_rows(recs)
    name = f"ablations__{bl.slug(bl.machine_kind(device))}"
    res.update(base=base, draws=draws, rows=rows, runs=sorted(f'{n}-s{s}' for n, s in recs))
    if best_ar(recs, 0) is not None: res['plot'] = plot(recs, rows, bl.out_dir(args) / f'{name}.png').name
    return bl.save_result(res, markdown(rows, base, draws), bl.out_dir(args), name)


def main(argv=None):
    ap = bl.common_args(argparse.ArgumentParser(description=__doc__.split('\n')[0]))
    ap.add_argument('--only', nargs='*', default=None, help='variant names (default: all)')
    ap.add_argument('--seeds', nargs='*', type=int, default=[0])
    ap.add_argument('--draws', type=int, default=None)
    ap.add_argument('--windows', type=int, default=None, help='validation windows for the final figure (default all)')
    ap.add_argument('--jobs', type=int, default=1, help='runs at a time, each in its own process with --threads threads')
    ap.add_argument('--table', action='store_true', help='only rebuild the table from the stored runs')
    ap.add_argument('--no-table', action='store_true', help=argparse.SUPPRESS)     # a worker of --jobs
    args = ap.parse_args(argv)
    device = bl.setup(args)
    base = QUICK if args.quick else NANOGPT_CPU
    draws = args.draws or (2 if args.quick else 8)
    windows = args.windows or (64 if args.quick else None)
    runs = bl.RUNS / ('quick' if args.quick else '') / 'ablations'
    results = bl.out_dir(args) / 'ablations'
    results.mkdir(parents=True, exist_ok=True)
    names = args.only or list(VARIANTS)
    unknown = [n for n in names if n not in VARIANTS]
    if unknown: raise SystemExit(f'unknown variants {unknown}; choose from {list(VARIANTS)}')
    todo = [(n, s) for s in args.seeds for n in names if not run_path(results, n, s).exists()]
    if not args.table and todo:
        if args.jobs > 1:
            pool, cmd = [], [sys.executable, __file__, *(['--quick'] if args.quick else []), '--threads', str(args.threads),
                             '--device', args.device, '--draws', str(draws), '--note', args.note,
                             *(['--out-dir', args.out_dir] if args.out_dir else []),
                             *(['--windows', str(args.windows)] if args.windows else [])]
            procs = []
            for n, s in todo:
                while sum(p.poll() is None for p in procs) >= args.jobs: time.sleep(1)
                procs.append(subprocess.Popen(cmd + ['--only', n, '--seeds', str(s), '--no-table']))
            failed = [' '.join(p.args[-4:-1]) for p in procs if p.wait() != 0]
            if failed: print(f'failed: {failed}', file=sys.stderr)
        else:
            machine = bl.machine_info(device)
            for n, s in todo: run_one(n, s, base, runs, results, device, draws, windows, machine)
    if not args.no_table: return write_table(args, device, base, draws, results)


if __name__ == '__main__': main()
