"""An independent judge of Tiny Shakespeare samples: a larger autoregressive model that produced none of the samples it
scores, trained by the library's `train` on the training split and cached under runs/bench/judge/.

    python bench/judge.py                          # train (or reuse) the judge, write its reference figures
    python bench/judge.py score runs/x/samples.jsonl [--step N]   # score a run's samples against real text
    python bench/judge.py draw runs/shakespeare_block --n 16 [--sampler confidence --steps 64]   # draw, keep, score
    python bench/judge.py --quick                  # a tiny judge, seconds (tests)

The judge's figure for a text is its exact NLL in bits per character, each text scored on its own after BOS (so a
sample and a validation window of the same length are read alike). A sample is compared with real text of the same
shape: the judge's mean over many validation windows of the sample's length, and the character entropy of the
samples against the entropy of as many validation windows of the same length (the plug-in entropy of a small sample is
biased low, so the reference is drawn at the same count and length, with its spread over draws).
"""
from __future__ import annotations
import argparse, json, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch
import benchlib as bl
from diffusion_lm.trainer import TrainConfig, load_trained
from diffusion_lm.data import prepare_dataset, open_split
from diffusion_lm.runs import read_jsonl
from diffusion_lm.model import model_device

# 6 layers x 256 (4.8 M parameters, 6x the rows' models), context 256, 2,500 steps of 16 x 256 characters (10 M
# characters, about 10 passes over the training split), dropout against over-fitting, residual gates and a learning
# rate of the range the ablations found best with gates.
JUDGE = dict(method='ar', dataset='shakespeare-char', context_length=256, n_layer=6, n_head=8, n_embd=256,
             batch_size=16, max_steps=2500, lr=2e-3, min_lr=2e-4, warmup_steps=200, beta2=0.99, weight_decay=0.1,
             dropout=0.1, ema_decay=0.0, gates=True, init='torch', eval_interval=500, eval_batches=8,
             log_interval=50, checkpoint_interval=500, keep_last=1, n_samples=4, seed=1234)
QUICK_JUDGE = dict(JUDGE, context_length=64, n_layer=1, n_head=2, n_embd=32, batch_size=4, max_steps=20, warmup_steps=5,
                   eval_interval=10, eval_batches=2, checkpoint_interval=20, dropout=0.0)
REFERENCE_WINDOWS = 1024      # validation windows behind the judge's score of real text
ENTROPY_DRAWS = 200           # draws of n windows behind the entropy reference


def judge_dir(quick: bool = False) -> Path: return bl.RUNS / ('quick' if quick else '') / 'judge'


def load_judge(device='cpu', quick: bool = False, progress: bool = False) -> dict:
    "The judge {'model', 'method', 'tok', 'data_path', 'config'}: trained by `train` the first time, then reused."
    from diffusion_lm.trainer import train
    cfg = TrainConfig.from_dict({**(QUICK_JUDGE if quick else JUDGE), 'out_dir': str(judge_dir(quick))})
    res = train(cfg, progress=progress)
    if not res['finished']: raise SystemExit(f"the judge stopped at step {res['step']}; run again to resume")
    model, method, tok, tcfg = load_trained(res['out_dir'], which='model', device=device)
    return dict(model=model, method=method, tok=tok, data_path=prepare_dataset(tcfg.dataset), config=tcfg.to_dict())


@torch.no_grad()
def judge_bits(judge: dict, x: torch.Tensor, batch_size: int = 64) -> torch.Tensor:
    "The judge's exact NLL of each row of x [n, L] after BOS, bits per character [n] (float64)."
    model, method = judge['model'], judge['method']
    L = judge['config']['context_length']
    if x.shape[1] > L: raise ValueError(f'the judge reads at most {L} characters; got rows of {x.shape[1]}')
    out = [method.token_nll(model, x[i:i + batch_size].to(model_device(model))).double().mean(1).cpu()
           for i in range(0, len(x), batch_size)]
    return torch.cat(out) / bl.LN2


def encode(judge: dict, texts: list[str]) -> list[torch.Tensor]:
    "Character ids of each text; a character the tokenizer does not know is an error naming it."
    tok = judge['tok']
    bad = sorted({c for t in texts for c in t if c not in tok.stoi})
    if bad: raise ValueError(f'characters {bad} are not in the judge\'s alphabet')
    return [torch.tensor([tok.stoi[c] for c in t], dtype=torch.long) for t in texts]


def char_entropy(rows: list[torch.Tensor]) -> float:
    "Plug-in entropy (bits) of the characters of all rows together."
    x = torch.cat([r.flatten() for r in rows])
    p = torch.bincount(x).double() / len(x)
    p = p[p > 0]
    return float(-(p * p.log2()).sum())


def val_windows(judge: dict, n: int, L: int, seed: int) -> torch.Tensor:
    "n random validation windows of L characters, [n, L]."
    val = open_split(judge['data_path'], 'val')
    g = torch.Generator().manual_seed(seed)
    starts = torch.randint(len(val) - L, (n,), generator=g).tolist()
    return torch.stack([torch.from_numpy(val[s:s + L].astype('int64')) for s in starts])


def reference(judge: dict, n: int, L: int, seed: int = 0) -> dict:
    ("Real text of the samples' shape: the judge's bits/char over REFERENCE_WINDOWS windows of length L, and the "
     "entropy of n windows of length L over ENTROPY_DRAWS draws (mean and standard deviation).")
    bits = judge_bits(judge, val_windows(judge, REFERENCE_WINDOWS, L, seed))
    ents = torch.tensor([char_entropy(list(val_windows(judge, n, L, seed + 1 + i))) for i in range(ENTROPY_DRAWS)])
    return {'length': L, 'n': n, 'judge_bits': bits.mean().item(), 'judge_bits_se': (bits.std() / len(bits) ** 0.5).item(),
            'windows': len(bits), 'entropy_bits': ents.mean().item(), 'entropy_sd': ents.std().item(),
            'entropy_draws': len(ents)}


def score_texts(judge: dict, texts: list[str], seed: int = 0) -> dict:
    ("The judge's bits/char of each text (mean and s.e. over texts), their character entropy, and the same figures for "
     "real text of the same count and length; gaps are samples minus real text. Characters outside the judge's "
     "alphabet are dropped and counted, empty texts are counted and left out.")
    known = judge['tok'].stoi
    kept = [''.join(c for c in t if c in known) for t in texts]
    dropped, empty = sum(len(t) - len(k) for t, k in zip(texts, kept)), sum(not k for k in kept)
    kept = [k for k in kept if k]
    if not kept: raise ValueError(f'no samples to score ({len(texts)} given, all empty)')
    rows = encode(judge, kept)
    bits = torch.cat([judge_bits(judge, r[None]) for r in rows])          # texts may differ in length: one at a time
    length = max(set(map(len, rows)), key=[len(r) for r in rows].count)  # the most common length
    ref = reference(judge, len(rows), length, seed)
    s = {'n': len(rows), 'length': length, 'dropped_chars': dropped, 'empty': empty, 'judge_bits': bits.mean().item(),
         'judge_bits_se': (bits.std() / len(bits) ** 0.5).item() if len(bits) > 1 else None,
         'per_sample_bits': [round(b, 5) for b in bits.tolist()], 'entropy_bits': char_entropy(rows)}
    return {**s, 'reference': ref, 'judge_gap': s['judge_bits'] - ref['judge_bits'],
            'entropy_gap': s['entropy_bits'] - ref['entropy_bits']}


def samples_of_run(path: Path, step: int | None = None) -> list[str]:
    "The samples a run drew at `step` (default: its last record) from its samples.jsonl (or a file of that layout)."
    path = Path(path)
    recs = read_jsonl(path / 'samples.jsonl' if path.is_dir() else path)
    recs = [r for r in recs if step is None or r.get('step') == step]
    if not recs: raise SystemExit(f'{path}: no samples' + (f' at step {step}' if step is not None else ''))
    return recs[-1]['samples']


@torch.no_grad()
def draw_from_run(path: Path, n: int, device, sampler: str | None = None, steps: int | None = None,
                  temperature: float | None = None, seed: int = 0, batch: int = 8, options: dict | None = None) -> dict:
    ("`n` samples of the run's context length from the trained run at `path` (EMA weights when it has them), with "
     "its own sampler settings unless others are given: {'texts', 'calls', 'settings'}.")
    model, method, tok, cfg = load_trained(path, which='ema' if cfg_ema(path) else 'model', device=device)
    settings = dict(sampler=sampler or cfg.sampler or method.default_sampler, steps=steps or cfg.sample_steps,
                    temperature=cfg.temperature if temperature is None else temperature,
                    options=(cfg.sample_options or {}) if options is None else options)
    g = torch.Generator(device=device).manual_seed(seed)
    texts, calls = [], []
    for i in range(0, n, batch):
        x, st = method.sample(model, min(batch, n - i), cfg.context_length, steps=settings['steps'],
                              sampler=settings['sampler'], temperature=settings['temperature'], generator=g,
                              device=device, return_stats=True, **settings['options'])
        texts += tok.decode_batch(x.cpu()); calls.append(st['nfe'])
    return {'texts': texts, 'calls': sum(calls) / len(calls), 'settings': settings, 'length': cfg.context_length,
            'run': str(path), 'method': method.name, 'config': cfg.to_dict()}


def cfg_ema(path: Path) -> bool:
    "Whether the run at `path` kept EMA weights."
    from diffusion_lm.checkpoint import load_config
    return bool((load_config(path) or {}).get('ema_decay'))


def judge_summary(judge: dict, device) -> dict:
    "The judge's own validation NLL on every validation window of its context (exact), and its size."
    from diffusion_lm.model import num_params
    w = bl.window_bits(judge['model'], judge['method'], judge['data_path'], judge['config']['context_length'], device, 1)
    return {'val_bits_all_windows': w.mean().item(), 'windows': w.shape[1], 'params': num_params(judge['model']),
            'config': judge['config']}


def main(argv=None):
    ap = bl.common_args(argparse.ArgumentParser(description=__doc__.split('\n')[0]))
    ap.add_argument('command', nargs='?', default='train', choices=['train', 'score', 'draw'])
    ap.add_argument('path', nargs='?', help='score: a run folder or a samples.jsonl file; draw: a run folder')
    ap.add_argument('--step', type=int, default=None, help='score: the samples of this step (default the last)')
    ap.add_argument('--n', type=int, default=16, help='draw: samples to draw')
    ap.add_argument('--sampler', default=None, help="draw: the sampler (default the run's)")
    ap.add_argument('--steps', type=int, default=None, help="draw: sampling steps (default the run's sample_steps)")
    ap.add_argument('--temperature', type=float, default=None, help="draw: temperature (default the run's)")
    ap.add_argument('--options', type=json.loads, default=None,
                    help='draw: sampler options as JSON, e.g. \'{"threshold": 0.9}\' (default the run\'s)')
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--batch', type=int, default=8,
                    help='draw: rows per sampler call (1 counts each sample\'s own network calls, e.g. for threshold)')
    ap.add_argument('--name', default=None, help='draw: the result name (default draw__<run folder name>)')
    args = ap.parse_args(argv)
    device = bl.setup(args)
    judge = load_judge(device, args.quick, progress=not args.quick)
    if args.command in ('score', 'draw'):
        if not args.path: raise SystemExit(f'{args.command} needs a run folder' + (' or a samples.jsonl file'
                                                                                  if args.command == 'score' else ''))
        if args.command == 'draw':
            d = draw_from_run(Path(args.path), args.n, device, args.sampler, args.steps, args.temperature, args.seed,
                              batch=args.batch, options=args.options)
            r = {**score_texts(judge, d['texts']), **{k: v for k, v in d.items() if k != 'texts'}, 'texts': d['texts']}
            s = d['settings']
            name = args.name or f"draw__{Path(args.path).name}"
            res = {**bl.new_result('judge_draw', args, device), **r}
            md = (f"### Samples of `{args.path}`\n\n{r['n']} samples of {r['length']} characters, {s['sampler']}, "
                  f"{s['steps']} steps ({r['calls']:.1f} network calls a batch of {args.batch}), temperature {s['temperature']}, options "
                  f"{s['options'] or 'none'}: judge {r['judge_bits']:.3f} ± {r['judge_bits_se']:.3f} bits/char against "
                  f"{r['reference']['judge_bits']:.3f} for real text (gap {r['judge_gap']:+.3f}); character entropy "
                  f"{r['entropy_bits']:.2f} bits against {r['reference']['entropy_bits']:.2f} ± "
                  f"{r['reference']['entropy_sd']:.2f} (gap {r['entropy_gap']:+.2f}).\n\n" +
                  '\n'.join(f'    {t!r}' for t in d['texts'][:4]))
            bl.save_result(res, md, bl.out_dir(args), f'{name}__{bl.slug(bl.machine_kind(device))}')
        else: r = score_texts(judge, samples_of_run(Path(args.path), args.step))
        ref = r['reference']
        print(f"{r['n']} samples of {r['length']} characters: judge {r['judge_bits']:.3f} ± {r['judge_bits_se'] or 0:.3f} "
              f"bits/char (real text {ref['judge_bits']:.3f}, gap {r['judge_gap']:+.3f}); character entropy "
              f"{r['entropy_bits']:.2f} bits (real text {ref['entropy_bits']:.2f} ± {ref['entropy_sd']:.2f}, gap "
              f"{r['entropy_gap']:+.2f})")
        return r
    res = bl.new_result('judge', args, device)
    ctx = judge['config']['context_length']
    res.update(judge=judge_summary(judge, device), references=[reference(judge, 16, L) for L in sorted({min(128, ctx), ctx})])
    j = res['judge']
    rows = [[f"{r['n']} x {r['length']}", f"{r['judge_bits']:.3f} ± {r['judge_bits_se']:.3f}",
             f"{r['entropy_bits']:.3f} ± {r['entropy_sd']:.3f}"] for r in res['references']]
    md = (f"### The judge\n\nAR, {j['config']['n_layer']} layers x {j['config']['n_embd']}, context "
          f"{j['config']['context_length']}, {j['params'] / 1e6:.2f} M parameters, {j['config']['max_steps']} steps of "
          f"{j['config']['batch_size']} x {j['config']['context_length']} characters: "
          f"{j['val_bits_all_windows']:.3f} bits/char on all {j['windows']} validation windows of its context.\n\n"
          + bl.md_table(['real text (samples x length)', 'judge bits/char', 'character entropy (mean ± sd over draws)'],
                        rows))
    bl.save_result(res, md, bl.out_dir(args))
    return res


if __name__ == '__main__': main()
