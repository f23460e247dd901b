"""Quality per compute on Tiny Shakespeare: the autoregressive baseline's validation NLL against the validation
bounds of masked diffusion and SEDD (absorbing, uniform), in bits per character, at the same model size and the
same training tokens (nanoGPT's CPU setting), with learning curves.

    python bench/quality.py            # 4 methods x 2000 steps of 4 layers, 128 wide, context 64, batch 12
    python bench/quality.py --quick    # tiny, seconds

Every method trains the same transformer (causal for AR; SEDD adds its adaLN time conditioning) on exactly the
same batches (same loader seed), with nanoGPT's optimisation: AdamW lr 1e-3 -> 1e-4 cosine, 100 warm-up steps,
beta2 0.99, weight decay 0.1, clip 1.0, no dropout, no EMA. Validation windows are consecutive 64-character windows
of the last 10% of the text; each window's first character is scored with no context, by every method alike.
Checkpoints go to runs/bench/quality/<method>/.
"""
from __future__ import annotations
import argparse, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl

NANOGPT_CPU = dict(n_layer=4, n_head=4, n_embd=128, sequence_length=64, batch_size=12, max_steps=2000, lr=1e-3, min_lr=1e-4,
                   warmup_steps=100, beta2=0.99, weight_decay=0.1, grad_clip=1.0, dropout=0.0, cond_dim=128)
QUICK = dict(NANOGPT_CPU, n_layer=1, n_head=2, n_embd=32, sequence_length=16, batch_size=4, max_steps=20, warmup_steps=5, cond_dim=32)


def markdown(res) -> str:
    rows = []
    for n in bl.METHODS:
        r = res['methods'][n]
        f = r['final']
        kind = 'NLL (exact)' if n == 'ar' else 'NLL bound'
        rows.append([n, kind, f"{f['bits']:.3f} ± {f['se']:.3f}", 'exact' if n == 'ar' else f"{f['mc_se']:.4f}",
                     '—' if n == 'ar' else f"{f['gap_bits']:+.3f} ± {f['gap_se']:.3f}", f"{f['bits'] * bl.LN2:.3f}",
                     f"{r['params'] / 1e6:.2f} M", f"{r['tokens']:,}", f"{r['train_seconds']:.0f}"])
    c = res['config']
    head = ['method', 'figure', 'val bits/char ± s.e.', 'Monte-Carlo s.e.', 'gap to AR (paired)', 'nats/char', 'params',
            'train tokens', 'train s']
    return ('### Quality per compute (Tiny Shakespeare, characters)\n\n' + bl.md_table(head, rows) +
            f"\n\nSame transformer ({c['n_layer']} layers, {c['n_embd']} wide, {c['n_head']} heads, context {c['sequence_length']}), "
            f"batch {c['batch_size']}, {c['max_steps']} steps = {res['train_tokens']:,} training characters for every method, "
            f"identical batches. Validation: all {res['methods']['ar']['final']['windows']} consecutive windows of the "
            f"validation split, {res['draws']} Monte-Carlo draws (t, mask/noise) per window for the diffusion bounds. "
            "'± s.e.' treats windows as the sampling unit; the Monte-Carlo s.e. is the bound estimate's own noise. "
            "nanoGPT reports ~1.88 nats/char for this setting (its first predicted character has one character of context; "
            f"here the first of each window has none). Learning curves: `{res['plot']}`.")


def plot(res, path: Path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for n in bl.METHODS:
        h = [r for r in res['methods'][n]['history'] if r['step'] > 0]
        ax.plot([r['tokens'] for r in h], [r['val_bits'] for r in h], marker='.', label=n + (' (NLL)' if n == 'ar' else ' (bound)'))
    ax.set_xlabel('training characters'); ax.set_ylabel('validation bits / character')
    ax.set_title(f"Tiny Shakespeare, {res['config']['n_layer']}x{res['config']['n_embd']}, context {res['config']['sequence_length']}")
    ax.grid(alpha=.3); ax.legend()
    top = max(r['val_bits'] for n in bl.METHODS for r in res['methods'][n]['history'][len(res['methods'][n]['history']) // 4:])
    ax.set_ylim(top=min(top * 1.15, 8))
    fig.tight_layout(); fig.savefig(path, dpi=110); plt.close(fig)


def main(argv=None):
    ap = bl.common_args(argparse.ArgumentParser(description=__doc__.split('\n')[0]))
    ap.add_argument('--steps', type=int, default=None, help='override the number of training steps')
    ap.add_argument('--eval-every', type=int, default=None)
    ap.add_argument('--curve-windows', type=int, default=None, help='validation windows per learning-curve point')
    ap.add_argument('--draws', type=int, default=None, help='Monte-Carlo draws per window for the final bound')
    ap.add_argument('--final-windows', type=int, default=None, help='validation windows for the final figure (default all)')
    ap.add_argument('--methods', nargs='*', default=list(bl.METHODS))
    ap.add_argument('--runs-dir', default=None, help='where the trained weights go')
    args = ap.parse_args(argv)
    args.runs_dir = args.runs_dir or str(bl.RUNS / ('quick' if args.quick else '') / 'quality')   # quick runs never touch the real models
    if args.methods[0] != 'ar': raise SystemExit("--methods must start with 'ar' (the baseline of the gaps)")
    device = bl.setup(args)
    c = dict(QUICK if args.quick else NANOGPT_CPU)
    if args.steps: c['max_steps'] = args.steps
    cfg = bl.train_config(**c, precision='auto')
    eval_every = args.eval_every or (10 if args.quick else 100)
    curve_windows = args.curve_windows or (16 if args.quick else 512)
    draws = args.draws or (2 if args.quick else 8)
    final_windows = args.final_windows or (64 if args.quick else None)
    data_path, tok = bl.shakespeare()
    val = bl.open_split(data_path, 'val')
    L = cfg.sequence_length

    def curve_eval(model, method):
        bits = bl.per_sequence_bits(model, method, val, L, 256, device, draws=1, seed=1234, max_windows=curve_windows)
        return {'val_bits': bits.mean().item(), 'val_windows': bits.shape[1]}

    res = bl.new_result('quality', args, device)
    res.update(config=c, train_tokens=cfg.max_steps * cfg.batch_size * L, draws=draws, eval_every=eval_every,
               curve_windows=curve_windows, methods={})
    ref = None
    for n in args.methods:
        model, method, info = bl.run_training(n, tok, data_path, cfg, device, eval_every=eval_every, eval_fn=curve_eval,
                                              log_every=0 if args.quick else 200)
        bits = bl.per_sequence_bits(model, method, val, L, 256, device, draws=1 if n == 'ar' else draws, seed=777,
                                    max_windows=final_windows)
        final = bl.summarise_bits(bits, ref=None if n == 'ar' else ref, exact=n == 'ar')
        if n == 'ar': ref = bits.mean(0)
        res['methods'][n] = {**info, 'final': final, 'checkpoint': str(Path(args.runs_dir) / n)}
        bl.save_model(model, n, cfg, tok, Path(args.runs_dir) / n, extra={'final': final})
        print(f"{n}: {final['bits']:.4f} ± {final['se']:.4f} bits/char ({info['train_seconds']:.0f} s training)", flush=True)
    d = bl.out_dir(args)
    png = d / f"quality__{res['machine']['kind_slug']}.png"
    res['plot'] = png.name
    if set(res['methods']) == set(bl.METHODS): plot(res, png)
    bl.save_result(res, markdown(res), d)
    return res


if __name__ == '__main__': main()
