"""Sampling speed and quality: characters per second and network calls to write 256 characters, for the SEDD
samplers (Euler, analytic) and the masked-diffusion samplers (one token per step, low-confidence remasking with
fewer steps, confidence-threshold parallel decoding), each with a quality figure: the autoregressive baseline's
NLL of the samples, in bits per character.

    python bench/sampling.py            # trains 4 small models at context 256 once (runs/bench/sampling/), then samples
    python bench/sampling.py --quick    # tiny, seconds

The models (4 layers, 128 wide, context 256) are trained briefly and identically (same batches) by this script and
reused on the next run if their config matches; `--retrain` forces training. All samplers run at temperature 1
(SEDD has no temperature), on a batch of `--n-samples` sequences; chars/s = batch x 256 / wall time of the call.
Network calls are counted with a forward hook. Lower AR NLL is not always better: a degenerate sample (one
repeated character) is cheap for the AR model, so each row also gives the unigram entropy of its characters.
"""
from __future__ import annotations
import argparse, math, sys, time
from collections import Counter
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch
import benchlib as bl

TRAIN = dict(n_layer=4, n_head=4, n_embd=128, sequence_length=256, batch_size=8, max_steps=400, lr=2e-3, min_lr=2e-4,
             warmup_steps=50, beta2=0.99, weight_decay=0.1, grad_clip=1.0, dropout=0.0, cond_dim=128)
QUICK_TRAIN = dict(TRAIN, n_layer=1, n_head=2, n_embd=32, sequence_length=32, batch_size=4, max_steps=10, warmup_steps=2, cond_dim=32)


def sampler_grid(L: int, quick: bool) -> list[dict]:
    "The sampler configurations: method, sampler, steps and options; `L` characters each."
    steps = [4, 8] if quick else [32, 64, 128, 256]
    blk = L // 8
    g = [dict(method='ar', sampler='ancestral', steps=L)]
    g += [dict(method='masked', sampler='random', steps=L, note='one token per step, random order (exact ancestral)')]
    g += [dict(method='masked', sampler='low_confidence', steps=s) for s in sorted({L, *steps}, reverse=True)]
    g += [dict(method='masked', sampler='threshold', steps=None, confidence_threshold=c) for c in (0.9, 0.7)]
    g += [dict(method='masked', sampler='threshold', steps=None, confidence_threshold=0.9, block_length=blk)]
    for m in ('sedd-absorbing', 'sedd-uniform'):
        g += [dict(method=m, sampler=p, steps=s) for p in ('euler', 'analytic') for s in sorted({*steps, L}, reverse=True)]
    return g


class CallCounter:
    "Counts forward calls of a module (a forward pre-hook)."
    def __init__(self, model): self.n = 0; self.h = model.register_forward_pre_hook(self)
    def __call__(self, module, args): self.n += 1
    def remove(self): self.h.remove()


def get_models(cfg, tok, data_path, device, runs_dir: Path, retrain: bool, log_every: int):
    "The four models at context `cfg.sequence_length`: loaded from runs_dir when their config matches, else trained."
    models = {}
    for n in bl.METHODS:
        loaded = None if retrain else bl.load_model(runs_dir / n, tok, device)
        if loaded is not None and loaded[2]['train'] == cfg.to_dict():
            models[n] = dict(model=loaded[0], method=loaded[1], trained_now=False, train_seconds=loaded[2].get('train_seconds'),
                             params=bl.num_params(loaded[0]))
            print(f'{n}: reusing {runs_dir / n}', flush=True)
            continue
        model, method, info = bl.run_training(n, tok, data_path, cfg, device, log_every=log_every)
        bl.save_model(model, n, cfg, tok, runs_dir / n, extra={'train_seconds': info['train_seconds']})
        models[n] = dict(model=model, method=method, trained_now=True, train_seconds=info['train_seconds'], params=info['params'])
    return models


@torch.no_grad()
def ar_bits(ar_model, ar_method, x) -> torch.Tensor:
    "The AR baseline's NLL of each row of x [B, L], bits per character [B]."
    return ar_method.nll_bound(ar_model, x).double().cpu() / x.shape[1] / bl.LN2


def unigram_entropy(x: torch.Tensor) -> float:
    "Entropy (bits) of the characters' empirical distribution over all rows of x."
    c = Counter(x.flatten().tolist()); n = sum(c.values())
    return -sum(v / n * math.log2(v / n) for v in c.values())


def run_config(spec, models, L, n_samples, device, tok, seed):
    m = models[spec['method']]
    model, method = m['model'], m['method']
    kw = {}
    if spec['method'] == 'masked':
        kw = dict(sampler='low_confidence' if spec['sampler'] == 'threshold' else spec['sampler'], temperature=1.0,
                  block_length=spec.get('block_length'), confidence_threshold=spec.get('confidence_threshold'))
    elif spec['method'].startswith('sedd'): kw = dict(sampler=spec['sampler'])
    else: kw = dict(temperature=1.0)
    steps = spec['steps'] or L
    counter = CallCounter(model)
    g = torch.Generator(device=device).manual_seed(seed)
    bl.sync(device); t0 = time.perf_counter()
    x = method.sample(model, n_samples, L, steps, generator=g, device=device, **kw)
    bl.sync(device); dt = time.perf_counter() - t0
    counter.remove()
    x = x.cpu()
    if x.shape != (n_samples, L): raise RuntimeError(f'{spec}: sampler returned shape {tuple(x.shape)}')
    real = x < len(tok.chars)                                 # characters, not PAD/BOS/EOS/MASK
    if (x >= models['ar']['method'].vocab_size).any(): raise RuntimeError(f'{spec}: MASK left in the samples')
    bits = ar_bits(models['ar']['model'], models['ar']['method'], x.to(device))
    return {**spec, 'label': label(spec), 'nfe': counter.n, 'seconds': dt, 'chars': n_samples * L,
            'chars_per_s': n_samples * L / dt, 'ar_bits': bits.mean().item(),
            'ar_bits_se': (bits.std() / len(bits) ** 0.5).item() if len(bits) > 1 else None,
            'unigram_entropy_bits': unigram_entropy(x), 'special_token_fraction': 1 - real.double().mean().item(),
            'samples': tok.decode_batch(x[:2])}


def label(s) -> str:
    if s['method'] == 'ar': return 'AR ancestral (no KV cache)'
    if s['sampler'] == 'threshold':
        return f"masked, confidence > {s['confidence_threshold']}" + (f", blocks of {s['block_length']}" if s.get('block_length') else '')
    if s['method'] == 'masked': return f"masked, {s['sampler'].replace('_', '-')}, {s['steps']} steps"
    return f"{s['method']}, {s['sampler']}, {s['steps']} steps"


def markdown(res) -> str:
    seen, rows = set(), []
    for r in res['rows']:
        rows.append([r['label'] + (' (again, another seed)' if r['label'] in seen else ''), r['nfe'], f"{r['chars_per_s']:,.0f}",
                     f"{r['ar_bits']:.3f} ± {r['ar_bits_se']:.3f}", f"{r['unigram_entropy_bits']:.2f}"])
        seen.add(r['label'])
    ref = res['reference']
    rows.append(['*validation text (reference)*', '—', '—', f"{ref['val_ar_bits']:.3f} ± {ref['val_ar_bits_se']:.3f}",
                 f"{ref['val_unigram_entropy_bits']:.2f}"])
    c = res['train_config']
    return ('### Sampling: speed, network calls and quality\n\n' +
            bl.md_table([f"sampler ({res['length']} characters)", 'network calls', 'chars/s', 'AR NLL of samples (bits/char)',
                         'char entropy (bits)'], rows) +
            f"\n\nBatch of {res['n_samples']} sequences of {res['length']} characters per call, temperature 1. Models: "
            f"{c['n_layer']} layers, {c['n_embd']} wide, context {c['sequence_length']}, each trained {c['max_steps']} steps of "
            f"{c['batch_size']} x {c['sequence_length']} characters on the same batches (their own validation bits/char on "
            f"the reference windows: " + ', '.join(f"{n} {m['val_bits']:.2f}" for n, m in res['models'].items() if 'val_bits' in m) +
            ", exact for AR, bounds for the others); the AR NLL is the causal model's "
            "exact NLL of the samples (mean ± s.e. over samples). SEDD's count includes the final denoising call; the "
            "AR calls read a growing prefix (no KV cache), the diffusion calls the whole sequence.")


def main(argv=None):
    ap = bl.common_args(argparse.ArgumentParser(description=__doc__.split('\n')[0]))
    ap.add_argument('--n-samples', type=int, default=None)
    ap.add_argument('--train-steps', type=int, default=None)
    ap.add_argument('--retrain', action='store_true', help='train the models even if runs-dir has matching ones')
    ap.add_argument('--runs-dir', default=None)
    ap.add_argument('--seed', type=int, default=0)
    args = ap.parse_args(argv)
    args.runs_dir = args.runs_dir or str(bl.RUNS / ('quick' if args.quick else '') / 'sampling')   # quick runs never touch the real models
    device = bl.setup(args)
    c = dict(QUICK_TRAIN if args.quick else TRAIN)
    if args.train_steps: c['max_steps'] = args.train_steps
    cfg = bl.train_config(**c, precision='auto')
    L, n_samples = cfg.sequence_length, args.n_samples or (2 if args.quick else 8)
    data_path, tok = bl.shakespeare()
    models = get_models(cfg, tok, data_path, device, Path(args.runs_dir), args.retrain, 0 if args.quick else 200)
    for m in models.values():                                   # warm-up call of each network
        m['model'](torch.zeros(1, L, dtype=torch.long, device=device), *(() if not m['model'].cfg.cond_dim else (torch.ones(1, device=device),)))
    res = bl.new_result('sampling', args, device)
    res.update(length=L, n_samples=n_samples, train_config=c, models={n: {k: v for k, v in m.items() if k not in ('model', 'method')}
                                                                      for n, m in models.items()}, rows=[])
    val = bl.open_split(data_path, 'val')
    vx = next(bl.eval_batches(val, 64, L))
    vb = ar_bits(models['ar']['model'], models['ar']['method'], vx.to(device))
    res['reference'] = {'val_ar_bits': vb.mean().item(), 'val_ar_bits_se': (vb.std() / len(vb) ** 0.5).item(),
                        'val_windows': len(vb), 'val_unigram_entropy_bits': unigram_entropy(vx)}
    for n, m in models.items():                                 # how well trained each model is (its own val figure)
        bits = bl.per_sequence_bits(m['model'], m['method'], val, L, 16, device, draws=1 if n == 'ar' else 4, seed=99,
                                    max_windows=len(vb))
        res['models'][n]['val_bits'] = bits.mean().item()
    for i, spec in enumerate(sampler_grid(L, args.quick)):
        r = run_config(spec, models, L, n_samples, device, tok, args.seed + i)
        res['rows'].append(r)
        print(f"{r['label']}: {r['nfe']} calls, {r['chars_per_s']:,.0f} chars/s, AR NLL {r['ar_bits']:.3f} bits/char", flush=True)
    bl.save_result(res, markdown(res), bl.out_dir(args))
    return res


if __name__ == '__main__': main()
