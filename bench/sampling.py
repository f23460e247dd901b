"""Sampling: quality against network calls for every method and sampler, on the same trained models for every row.

    python bench/sampling.py                    # trains (or reuses) 4 models, then 78 rows: ~1.5 h on one free core
    python bench/sampling.py --quick            # tiny models and lengths, about a minute
    python bench/sampling.py --models ar block  # only some methods (AR always: it is the baseline row)
    python bench/sampling.py --resume           # keep the rows of the last run whose models are these

One model per method (AR, masked, block diffusion with blocks of 4, SEDD absorbing), each with its recipe (the best
ablation row, `quality.RECIPES`), is trained with the library's `train` at the nanoGPT CPU setting of `ablations.py`
with context 256 and 1500 steps (runs/bench/sampling/<method>/, reused when finished). Every row then writes 256
characters with one sampler configuration through the one sampling contract, `method.sample(..., return_stats=True)`,
and records:

- network calls (the method's own count, `stats['nfe']`), characters/s at batch 1 and at batch 8 (best of the runs);
- the judge: the exact NLL of the samples under an independent AR model (`bench/judge.py`: larger, trained longer on
  the training split, sampling none of the rows), bits/char (mean and s.e. over samples);
- the samples' character entropy against that of validation windows of the same count and length, distinct 2- and
  3-grams, and the share of their words found in the training text.

A row collapses when its character entropy is more than 0.3 bits from the validation text's; the best sampler at a
budget of calls is the non-collapsed row with the lowest judge NLL among those using at most that many calls.
Outputs: `sampling__<machine>.json/.md`, `sampling__<machine>.samples.jsonl.gz` (every sample and its judge score),
`sampling__<machine>.png` (quality against calls; speed) and `sampling_defaults.json` (the best sampler and options per
method and budget, in TrainConfig's terms).
"""
from __future__ import annotations
import argparse, gzip, json, math, re, sys, time
from collections import Counter
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch
import benchlib as bl
from ablations import NANOGPT_CPU, QUICK, VARIANTS
from quality import RECIPES
import judge as J
from diffusion_lm.trainer import TrainConfig, load_trained
from diffusion_lm.data import prepare_dataset, open_split, load_tokenizer
from diffusion_lm.model import model_device

FULL_TRAIN = dict(NANOGPT_CPU, context_length=256, max_steps=1500, checkpoint_interval=500)
QUICK_TRAIN = dict(QUICK)
MODELS = {   # name: the recipe (the ablation row) each model is trained with: every method's best at seed 0
    'ar': VARIANTS[RECIPES['ar']][0],
    'masked': VARIANTS[RECIPES['masked']][0],
    'block': VARIANTS[RECIPES['block-4']][0],
    'sedd': VARIANTS[RECIPES['sedd-absorbing']][0],
}
LOW_CALLS_PER_CHAR = 0.5     # the diffusion target: at most 64 calls per 128 characters ...
JUDGE_GAP_BITS = 0.8         # ... within this many bits/char of the judge's score of real text
COLLAPSE_BITS = 0.3          # |entropy - validation entropy| above this: collapsed
BUDGET_GAP_BITS = 0.15       # the best sampler at the low budget vs the best at the full budget
EQUAL_NLL_BITS = 0.1         # "equal judge NLL" for the block-vs-AR speed target
SPEEDUP = 2.0
ORDER_TEMPERATURE = 0.1
REMASK_RATE = 0.1


# ---------------------------------------------------------------- the grid of sampler configurations
def _row(model, family, sampler, steps, calls, **options):
    return dict(model=model, family=family, sampler=sampler, steps=steps, calls=calls, options=options,
                adaptive=any(k in options for k in ('threshold', 'factor')))


def sampler_grid(L: int, calls: list[int], block_size: int) -> list[dict]:
    """Every row: (model, family, sampler, steps, options); `calls` the nominal network calls (None: adaptive).
    Masked semi-autoregressive blocks are L/8 long; block diffusion needs calls that are multiples of L/block_size."""
    sb, nb = L // 8, L // block_size
    g = [_row('ar', 'AR, KV cache', 'ancestral', None, L, cache=True), _row('ar', 'AR, no cache', 'ancestral', None, L, cache=False)]
    for c in calls:
        g += [_row('masked', s, s, c, c) for s in ('confidence', 'margin', 'entropy', 'random')]
        g += [_row('masked', f'confidence, order T {ORDER_TEMPERATURE}', 'confidence', c, c, order_temperature=ORDER_TEMPERATURE),
              _row('masked', f'confidence, ReMDM remask {REMASK_RATE}', 'confidence', c, c, remask='conf', remask_rate=REMASK_RATE)]
        if c % (L // sb) == 0:
            g += [_row('masked', f'confidence, blocks of {sb}' + (f', {k} cache' if k else ''), 'confidence', c, c, block_length=sb,
                       **({'cache': k} if k else {})) for k in (None, 'prefix', 'dual')]
        g += [_row('sedd', s, s, c - 1, c) for s in ('analytic', 'euler')]             # SEDD: steps + the final denoising call
        if c % nb == 0:
            g += [_row('block', s, s, c, c) for s in ('confidence', 'margin', 'entropy', 'random')]
    g += [_row('masked', f'threshold {t}', 'confidence', None, None, threshold=t) for t in (0.9, 0.7)]
    g += [_row('masked', 'factor 1.0', 'confidence', None, None, factor=1.0),
          _row('masked', f'threshold 0.9, blocks of {sb}', 'confidence', L, None, block_length=sb, threshold=0.9),
          _row('masked', f'threshold 0.9, blocks of {sb}, dual cache', 'confidence', L, None, block_length=sb, threshold=0.9, cache='dual')]
    g += [_row('block', f'threshold {t}', 'confidence', L, None, threshold=t) for t in (0.9, 0.7)]
    g += [_row('block', 'factor 1.0', 'confidence', L, None, factor=1.0),
          _row('block', 'confidence, no cache', 'confidence', nb, nb, cache=False)]
    return g


RENAMED_OPTIONS = {'masked': {'block_size': 'block_length'}}   # option names of earlier results, per model


def row_key(r: dict) -> str:
    "A row's identity; an earlier result's old option names count as today's, so `--resume` reuses its rows."
    names = RENAMED_OPTIONS.get(r['model'], {})
    options = {names.get(k, k): v for k, v in r['options'].items()}
    return json.dumps([r['model'], r['family'], r['sampler'], r['steps'], options], sort_keys=True)


def label(r: dict) -> str:
    name = {'ar': 'AR', 'masked': 'masked', 'block': 'block 4', 'sedd': 'SEDD'}[r['model']]
    if r['model'] == 'ar': return f"AR, {'KV cache' if r['options']['cache'] else 'no cache'}"
    if r['adaptive']: return f"{name}, {r['family']}"
    return f"{name}, {r['family']}, {r['calls']} calls"


# ---------------------------------------------------------------- what a sample is worth
def char_entropy(x: torch.Tensor) -> float:
    "Entropy (bits) of the empirical distribution of the tokens (characters) of all rows of x."
    c = Counter(x.flatten().tolist()); n = sum(c.values())
    return -sum(v / n * math.log2(v / n) for v in c.values())


def distinct_n(x: torch.Tensor, n: int) -> float:
    "Distinct character n-grams over all n-grams (within rows), pooled over the rows of x."
    grams = [tuple(r[i:i + n]) for r in x.tolist() for i in range(len(r) - n + 1)]
    return len(set(grams)) / max(1, len(grams))


WORD = re.compile(r"[A-Za-z]+")


def words_of(texts: list[str]) -> list[str]:
    "Lower-case words of each text, without its first and last word (either may be cut by the window)."
    return [w.lower() for t in texts for w in WORD.findall(t)[1:-1]]


def word_share(texts: list[str], vocab: set) -> float | None:
    "Share of the words (occurrences) found in `vocab`; None when there are no words."
    ws = words_of(texts)
    return sum(w in vocab for w in ws) / len(ws) if ws else None


@torch.no_grad()
def judge_bits(judge, x: torch.Tensor) -> torch.Tensor:
    "The AR model's exact NLL of each row of x [n, L], bits per character [n]."
    model, method = judge
    return method.token_nll(model, x.to(model_device(model))).double().mean(1).cpu() / bl.LN2


def quality(x: torch.Tensor, tok, judge, vocab: set) -> dict:
    "The quality figures of samples x [n, L] (real tokens only); every sample's text and judge score are kept."
    bits = judge_bits(judge, x)
    texts = tok.decode_batch(x)
    return {'ar_bits': bits.mean().item(), 'ar_bits_se': (bits.std() / len(bits) ** 0.5).item() if len(bits) > 1 else None,
            'entropy_bits': char_entropy(x), 'distinct_2': distinct_n(x, 2), 'distinct_3': distinct_n(x, 3),
            'word_share': word_share(texts, vocab), 'words': len(words_of(texts)), 'samples': texts[:2], 'texts': texts,
            'sample_bits': [round(b, 5) for b in bits.tolist()]}


def reference(data_path, tok, judge: dict, vocab, n: int, L: int, seed: int = 1234) -> dict:
    ("The same figures for n random validation windows of L characters (the text the samples should resemble); the "
     "judge's score and the entropy from many windows and draws of the same count and length (`judge.reference`).")
    val = open_split(data_path, 'val')
    g = torch.Generator().manual_seed(seed)
    starts = torch.randint(len(val) - L, (n,), generator=g)
    x = torch.stack([torch.from_numpy(val[s:s + L].astype('int64')) for s in starts.tolist()])
    q = {k: v for k, v in quality(x, tok, (judge['model'], judge['method']), vocab).items() if k != 'texts'}
    many = J.reference(judge, n, L, seed)
    return {**q, 'windows': n, 'ar_bits': many['judge_bits'], 'ar_bits_se': many['judge_bits_se'],
            'judge_bits': many['judge_bits'], 'judge_bits_se': many['judge_bits_se'], 'judge_windows': many['windows'],
            'entropy_bits': many['entropy_bits'], 'entropy_sd': many['entropy_sd'], 'entropy_draws': many['entropy_draws'],
            'full_val_entropy_bits': char_entropy(torch.from_numpy(val[:].astype('int64')))}


# ---------------------------------------------------------------- running a row
def sample_timed(m: dict, spec: dict, n: int, L: int, temperature: float, seed: int, device, clock=time.perf_counter):
    "One `method.sample` call of n sequences: (tokens [n, L], stats, seconds on `clock`)."
    g = torch.Generator(device=device).manual_seed(seed)
    bl.sync(device); t0 = clock()
    x, st = m['method'].sample(m['model'], n, L, steps=spec['steps'], sampler=spec['sampler'], temperature=temperature,
                               generator=g, device=device, return_stats=True, **spec['options'])
    bl.sync(device)
    return x.cpu(), st, clock() - t0


def run_row(spec, models, judge, tok, vocab, L, n_samples, batch, temperature, seed, device, clock=time.perf_counter) -> dict:
    "Samples at batch `batch` (n_samples in all: the quality figures) and one at batch 1 (speed), timed on `clock`."
    m = models[spec['model']]
    xs, b8 = [], []
    for i in range(max(1, n_samples // batch)):
        x, st, dt = sample_timed(m, spec, batch, L, temperature, seed + 1 + i, device, clock)
        xs.append(x); b8.append({**st, 'seconds': dt})
    x1, st1, dt1 = sample_timed(m, spec, 1, L, temperature, seed, device, clock)
    x = torch.cat(xs)
    out = {**spec, 'label': label(spec), 'key': row_key(spec), 'n_samples': len(x), 'batch': batch,
           'nfe': sum(r['nfe'] for r in b8) / len(b8), 'nfe_runs': [r['nfe'] for r in b8], 'nfe_batch1': st1['nfe'],
           'tokens_read': sum(r['tokens'] for r in b8) / len(b8), 'seconds_runs': [r['seconds'] for r in b8], 'seconds_batch1': dt1,
           'chars_per_s': batch * L / min(r['seconds'] for r in b8), 'chars_per_s_batch1': L / dt1}
    bad = int((x >= judge[1].n_real).sum())
    if x.shape[1] != L or bad:
        return {**out, 'error': f'{bad} MASK tokens left in the samples' if bad else f'shape {tuple(x.shape)}'}
    return {**out, **quality(x, tok, judge, vocab)}


# ---------------------------------------------------------------- models
def get_models(names, base: dict, runs: Path, device, quick: bool) -> tuple[dict, dict]:
    "{name: {'model', 'method', ...}} trained with the library's `train` (a finished run is reused) and their summaries."
    models, info = {}, {}
    for name in names:
        cfg = TrainConfig.from_dict({**base, **MODELS[name], 'out_dir': str(runs / name)})
        m = bl.train_and_measure(name, cfg, device, draws=1 if quick else 2, max_windows=16 if quick else 128, progress=not quick)
        model, method, tok, _ = load_trained(m['out_dir'], which='ema' if cfg.ema_decay else 'model', device=device)
        models[name] = dict(model=model, method=method)
        info[name] = {k: m[k] for k in ('method', 'params', 'final', 'wall_seconds', 'out_dir', 'tokens_per_s_median')}
        info[name]['config'] = cfg.to_dict()
        info[name]['step'] = cfg.max_steps
        print(f"{name}: {m['final']['bits']:.3f} bits/char on the validation windows ({m['out_dir']})", flush=True)
    return models, info


@torch.no_grad()
def checks(models: dict, L: int, device) -> dict:
    "Invariants that hold for any weights: cached and uncached greedy decoding give the same tokens (AR, block)."
    out = {}
    for name, opt in (('ar', None), ('block', L // models['block']['method'].block_size if 'block' in models else None)):
        if name not in models: continue
        m = models[name]
        run = lambda cache: m['method'].sample(m['model'], 2, L, steps=opt, temperature=0, device=device, cache=cache)
        a, b = run(True), run(False)
        out[f'{name}_cache_equals_no_cache_greedy'] = bool(torch.equal(a, b))
    return out


# ---------------------------------------------------------------- summaries: best per budget, targets, defaults
def ok_rows(rows, model=None):
    return [r for r in rows if 'error' not in r and not r['collapsed'] and (model is None or r['model'] == model)]


def best_at(rows, model: str, budget: float) -> dict | None:
    "The non-collapsed row of `model` with the lowest judge NLL among those using at most `budget` calls."
    c = [r for r in ok_rows(rows, model) if r['nfe'] <= budget]
    return min(c, key=lambda r: r['ar_bits']) if c else None


def mark_collapse(rows, ref: dict):
    "Entropy gap of every row to the reference's (validation windows of the same count and length) and the verdict."
    for r in rows:
        if 'error' not in r:
            r['entropy_gap_bits'] = r['entropy_bits'] - ref['entropy_bits']
            r['collapsed'] = abs(r['entropy_gap_bits']) > COLLAPSE_BITS


def targets(rows, calls: list[int], L: int, text_bits: float | None = None) -> dict:
    ("The targets, each with its figures and whether it holds (None where it cannot be measured); `text_bits`: the "
     "judge's score of real text of the samples' length.")
    lo, hi = calls[1], calls[-1]
    collapsed = [r['label'] for r in rows if 'error' not in r and r['collapsed']]
    t = {'no_collapse': {'holds': not collapsed, 'collapsed': collapsed, 'errors': [r['label'] for r in rows if 'error' in r],
                         'tolerance_bits': COLLAPSE_BITS}}
    gap = {}
    for m in ('masked', 'block', 'sedd'):
        a, b = best_at(rows, m, lo), best_at(rows, m, hi)
        gap[m] = {'best_low': a and a['label'], 'best_high': b and b['label'], 'low_bits': a and a['ar_bits'],
                  'high_bits': b and b['ar_bits'], 'gap_bits': a['ar_bits'] - b['ar_bits'] if a and b else None,
                  'holds': (a['ar_bits'] - b['ar_bits'] <= BUDGET_GAP_BITS) if a and b else None}
    measured = [v['holds'] for v in gap.values() if v['holds'] is not None]
    t['few_calls'] = {'low_calls': lo, 'high_calls': hi, 'tolerance_bits': BUDGET_GAP_BITS, 'methods': gap,
                      'holds': all(measured) if measured else None}
    ar = next((r for r in rows if r['model'] == 'ar' and r['options'].get('cache') and 'error' not in r), None)
    speed = {'ar': ar and {k: ar[k] for k in ('label', 'ar_bits', 'chars_per_s', 'chars_per_s_batch1')}}
    for key, what in (('chars_per_s_batch1', 'batch1'), ('chars_per_s', 'batch')):
        near = [r for r in ok_rows(rows, 'block') if r['options'].get('cache', True) and ar and r['ar_bits'] <= ar['ar_bits'] + EQUAL_NLL_BITS]
        best = max(near, key=lambda r: r[key]) if near else None
        speed[what] = {'block': best and best['label'], 'block_bits': best and best['ar_bits'],
                       'ratio': best[key] / ar[key] if best and ar else None,
                       'holds': (best[key] / ar[key] >= SPEEDUP) if best and ar else (False if ar else None)}
    speed['holds'] = None if not ar else bool(speed['batch1']['holds'] and speed['batch']['holds'])
    speed.update(tolerance_bits=EQUAL_NLL_BITS, speedup=SPEEDUP)
    t['block_vs_ar_speed'] = speed
    few = [r for m in ('masked', 'block', 'sedd') for r in ok_rows(rows, m) if r['nfe'] <= LOW_CALLS_PER_CHAR * L]
    best = min(few, key=lambda r: r['ar_bits']) if few else None
    t['low_calls_near_text'] = {
        'max_calls': LOW_CALLS_PER_CHAR * L, 'tolerance_bits': JUDGE_GAP_BITS, 'text_bits': text_bits,
        'best': best and best['label'], 'best_bits': best and best['ar_bits'],
        'gap_bits': best['ar_bits'] - text_bits if best and text_bits is not None else None,
        'holds': (best['ar_bits'] - text_bits <= JUDGE_GAP_BITS) if best and text_bits is not None else None}
    return t


def defaults(rows, calls: list[int], L: int, temperature: float) -> dict:
    "Per method and budget of calls: the best sampler with its options, as TrainConfig's sampler/sample_steps/sample_options."
    out = {}
    for m in ('ar', 'masked', 'block', 'sedd'):
        per = {}
        for c in calls:
            b = best_at(rows, m, c)
            if b is None: continue
            per[str(c)] = {'sampler': b['sampler'], 'sample_steps': b['steps'] or L, 'sample_options': b['options'],
                           'temperature': temperature, 'calls': b['nfe'], 'ar_judge_bits': b['ar_bits'],
                           'entropy_gap_bits': b['entropy_gap_bits'], 'label': b['label'], 'key': b['key']}
        if per: out[m] = per
    return out


# ---------------------------------------------------------------- outputs
def write_samples(path: Path, rows: list[dict]):
    "Every row's samples and their judge scores, one JSON line per row (gzip), written atomically."
    tmp = path.with_name(path.name + '.tmp')
    with gzip.open(tmp, 'wt', encoding='utf-8') as f:
        for r in rows:
            if 'texts' in r: f.write(json.dumps({'key': r['key'], 'label': r['label'], 'texts': r['texts'],
                                                 'sample_bits': r['sample_bits']}) + '\n')
    tmp.replace(path)


def read_samples(path: Path) -> dict:
    "{row key: {'texts', 'sample_bits'}} from a samples file (empty if there is none)."
    if not path.exists(): return {}
    with gzip.open(path, 'rt', encoding='utf-8') as f:
        return {r['key']: {'texts': r['texts'], 'sample_bits': r['sample_bits']} for r in map(json.loads, f)}


def markdown(res: dict) -> str:
    rows, ref, L = res['rows'], res['reference'], res['length']
    s = [f"### Sampling: quality against network calls ({L} characters)"]
    best = []
    for m in ('ar', 'masked', 'block', 'sedd'):
        for c in res['calls']:
            b = best_at(rows, m, c)
            if b: best.append([m, c, b['label'], bl.fmt(b['nfe'], 0), f"{b['ar_bits']:.3f} ± {bl.fmt(b['ar_bits_se'])}",
                               f"{b['entropy_gap_bits']:+.2f}", bl.fmt(b['word_share'], 2), f"{b['chars_per_s_batch1']:,.0f}",
                               f"{b['chars_per_s']:,.0f}"])
    s.append('**Best sampler per method and budget** (lowest judge NLL among the rows that do not collapse and use at '
             'most that many calls):\n\n' + bl.md_table(['method', 'budget', 'best sampler', 'calls', 'judge bits/char',
                                                        'entropy − val', 'words in train', 'chars/s b1', f"chars/s b{res['batch']}"], best))
    t = res['targets']
    yes = lambda h: 'n/a' if h is None else ('**holds**' if h else '**fails**')
    fc, sp = t['few_calls'], t['block_vs_ar_speed']
    trows = [[f"no sampler collapses (entropy within {COLLAPSE_BITS} bits of the validation text's)", yes(t['no_collapse']['holds']),
              (f"{len(t['no_collapse']['collapsed'])} of {len(rows)} rows collapse: " + '; '.join(t['no_collapse']['collapsed'][:12])
               + (' …' if len(t['no_collapse']['collapsed']) > 12 else '')) if t['no_collapse']['collapsed'] else 'none collapses']]
    for m, v in fc['methods'].items():
        trows.append([f"{m}: best at {fc['low_calls']} calls within {BUDGET_GAP_BITS} bits/char of the best at {fc['high_calls']}",
                      yes(v['holds']), f"{v['best_low']} {bl.fmt(v['low_bits'])} vs {v['best_high']} {bl.fmt(v['high_bits'])}"
                      if v['holds'] is not None else f"no non-collapsed row at <= {fc['low_calls']} calls" + (
                          f' (block {res["block_size"]} needs >= {L // res["block_size"]} calls)' if m == 'block' else '')])
    for what, name in (('batch1', 'batch 1'), ('batch', f"batch {res['batch']}")):
        v = sp[what]
        trows.append([f"block + KV cache >= {SPEEDUP}x the chars/s of AR + KV cache at equal judge NLL (±{EQUAL_NLL_BITS}), {name}",
                      yes(v['holds']), (f"{v['block']} ({bl.fmt(v['block_bits'])} bits) at {bl.fmt(v['ratio'], 2)}x AR "
                                        f"({bl.fmt(sp['ar']['ar_bits'])} bits)") if v['block'] else
                      f"no block row within {EQUAL_NLL_BITS} bits of AR's {bl.fmt(sp['ar'] and sp['ar']['ar_bits'])}"])
    lc = t['low_calls_near_text']
    trows.append([f"best diffusion sampler at <= {lc['max_calls']:.0f} calls within {JUDGE_GAP_BITS} bits/char of the judge's "
                  "score of real text", yes(lc['holds']),
                  f"{lc['best']} {bl.fmt(lc['best_bits'])} vs real text {bl.fmt(lc['text_bits'])}" if lc['best'] else
                  'no non-collapsed diffusion row at that budget'])
    s.append('**Targets**\n\n' + bl.md_table(['target', 'result', 'figures'], trows))
    c = res['checks']
    s.append('Checks: ' + ', '.join(f"{k.replace('_', ' ')}: {'yes' if v else '**no**'}" for k, v in c.items()) + '.')
    if res.get('plot'): s.append(f"![sampling]({res['plot']})")
    full = []
    for r in rows:
        head = [r['label'], bl.fmt(r['nfe'], 1 if r['adaptive'] else 0), f"{r['chars_per_s_batch1']:,.0f}", f"{r['chars_per_s']:,.0f}"]
        if 'error' in r: full.append(head + [f"error: {r['error']}"] + [''] * 4); continue
        full.append(head + [f"{r['ar_bits']:.3f} ± {bl.fmt(r['ar_bits_se'])}",
                            f"{r['entropy_bits']:.2f} ({r['entropy_gap_bits']:+.2f})" + (' **collapsed**' if r['collapsed'] else ''),
                            f"{r['distinct_2']:.3f}", f"{r['distinct_3']:.3f}", bl.fmt(r['word_share'], 2)])
    full.append(['*validation text*', '—', '—', '—', f"{ref['ar_bits']:.3f} ± {bl.fmt(ref['ar_bits_se'])}", f"{ref['entropy_bits']:.2f}",
                 f"{ref['distinct_2']:.3f}", f"{ref['distinct_3']:.3f}", bl.fmt(ref['word_share'], 2)])
    s.append('<details><summary>Every row</summary>\n\n' + bl.md_table(
        ['sampler', 'calls', 'chars/s b1', f"chars/s b{res['batch']}", 'judge bits/char', 'char entropy (− val)', 'distinct-2',
         'distinct-3', 'words in train'], full) + '\n\n</details>')
    mi = res['models']
    s.append(f"Models: {res['train']['n_layer']} layers x {res['train']['n_embd']}, context {res['train']['context_length']}, batch "
             f"{res['train']['batch_size']}, {res['train']['max_steps']} steps (the ablations' nanoGPT CPU setting), trained by "
             "`diffusion_lm.trainer.train`; validation bits/char (exact for AR, bounds for the others): " +
             ', '.join(f"{n} {v['final']['bits']:.3f}" for n, v in mi.items()) + f". Each row: {res['n_samples']} samples at batch "
             f"{res['batch']} (quality; chars/s = the best of the runs) and one at batch 1 (chars/s), temperature "
             f"{res['temperature']}. Calls: the method's own count (`stats['nfe']`; SEDD's includes its final denoising call; "
             "for adaptive samplers the mean over the runs). Judge: the exact NLL of the samples under an independent AR "
             f"model that sampled none of them (`bench/judge.py`: {res['judge']['params'] / 1e6:.1f} M parameters, "
             f"{res['judge']['val_bits_all_windows']:.3f} bits/char on the validation split; real text of the samples' length "
             f"scores {ref['judge_bits']:.3f} ± {ref['judge_bits_se']:.3f} over {ref['judge_windows']} windows). It rewards "
             "low-entropy text, so read it with the entropy column: a row collapses when its character entropy is more than "
             f"{COLLAPSE_BITS} bits from that of {res['n_samples']} validation windows of {L} characters "
             f"({ref['entropy_bits']:.2f} ± {ref['entropy_sd']:.2f} bits over {ref['entropy_draws']} draws; "
             f"{ref['full_val_entropy_bits']:.2f} on the whole split). Words in train: the share of the samples' words (not "
             "the first and last of a sample) found in the training text. Every sample and its judge score: "
             f"`{res['samples_file']}`. Recommended defaults: `sampling_defaults.json`.")
    return '\n\n'.join(s)


def plot(res: dict, path: Path):
    """Quality against calls and against speed, one line per (method, sampler family), drawn by seaborn with error bars
    of ±2 s.e. of the mean judge NLL: from every sample's score while the rows hold them (`sample_bits`, during a run),
    else from the rows' stored `ar_bits_se` (the same figure: the s.e. over the samples), e.g. when redrawn from a JSON."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns
    rows = sorted((r for r in res['rows'] if 'error' not in r), key=lambda r: r['nfe'])
    cmaps = {'ar': 'Greys', 'masked': 'Blues', 'block': 'Greens', 'sedd': 'Reds'}
    markers = 'osD^vP*X<>'
    fams = sorted({(r['model'], r['family']) for r in rows})
    series = lambda r: f"{r['model']}: {r['family']}"
    order, palette, marks = [], {}, {}
    for m in cmaps:
        mf = [f for x, f in fams if x == m]
        shades = plt.get_cmap(cmaps[m])([0.95 - 0.5 * i / max(1, len(mf) - 1) for i in range(len(mf))])
        for i, f in enumerate(mf):
            s = f'{m}: {f}'
            order.append(s); palette[s] = tuple(shades[i]); marks[s] = markers[i % len(markers)]
    per_sample = all('sample_bits' in r for r in rows)
    points = pd.DataFrame([{'series': series(r), 'nfe': r['nfe'], 'chars_per_s_batch1': r['chars_per_s_batch1'], 'bits': b}
                           for r in rows for b in (r['sample_bits'] if per_sample else [r['ar_bits']])])
    means = pd.DataFrame([{'series': series(r), 'nfe': r['nfe'], 'chars_per_s_batch1': r['chars_per_s_batch1'],
                           'bits': r['ar_bits'], 'se': r['ar_bits_se'] or 0.0, 'collapsed': r['collapsed']} for r in rows])
    with sns.axes_style('whitegrid'):
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(15, 5.5))
    for ax, xkey in ((a1, 'nfe'), (a2, 'chars_per_s_batch1')):
        # sort=False: each line joins its rows in the order of their calls (also in the speed panel)
        sns.lineplot(data=points, x=xkey, y='bits', hue='series', style='series', hue_order=order, style_order=order,
                     palette=palette, markers=marks, dashes=False, estimator='mean', errorbar=('se', 2) if per_sample else None,
                     err_style='bars', err_kws={'capsize': 2, 'elinewidth': 0.8}, sort=False, markersize=5, alpha=.85,
                     legend=ax is a1, ax=ax)
        if not per_sample:
            for s, g in means.groupby('series'):
                ax.errorbar(g[xkey], g['bits'], yerr=2 * g['se'], fmt='none', ecolor=palette[s], elinewidth=0.8, capsize=2, alpha=.85)
        sns.scatterplot(data=means[means['collapsed']], x=xkey, y='bits', marker='x', s=70, color='crimson', linewidth=1.5,
                        zorder=5, legend=False, ax=ax)
        ax.axhline(res['reference']['ar_bits'], color='grey', lw=1, ls='--')
        ax.set_xscale('log', base=2); ax.grid(alpha=.3); ax.set_ylabel('judge NLL of the samples (bits/char)')
    a1.set_xlabel(f"network calls for {res['length']} characters"); a2.set_xlabel('characters/s at batch 1')
    a1.set_title('quality against calls (bars: ±2 s.e.; red x: collapsed; dashed: validation text)', fontsize=10)
    a2.set_title('quality against speed')
    hi = sorted(r['ar_bits'] for r in rows)
    a1.set_ylim(min(hi + [res['reference']['ar_bits']]) - 0.2, hi[int(0.9 * (len(hi) - 1))] + 0.5)
    a2.set_ylim(*a1.get_ylim())
    handles, labels = a1.get_legend_handles_labels()
    a1.get_legend().remove()
    fig.legend(handles, labels, fontsize=7, ncol=1, loc='center left', bbox_to_anchor=(0.995, 0.5))
    fig.tight_layout(); fig.savefig(path, dpi=110, bbox_inches='tight'); plt.close(fig)


def main(argv=None):
    ap = bl.common_args(argparse.ArgumentParser(description=__doc__.split('\n')[0]), default_threads=1)
    ap.add_argument('--full', action='store_true', help='the full run (the default; for run_all.sh)')
    ap.add_argument('--models', nargs='*', default=list(MODELS), help=f'methods to benchmark, of {list(MODELS)} (ar is always trained)')
    ap.add_argument('--n-samples', type=int, default=None, help='samples per row for the quality figures (default 16; quick 4)')
    ap.add_argument('--batch', type=int, default=None, help='batch of the quality runs (default 8; quick 2)')
    ap.add_argument('--temperature', type=float, default=1.0)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--runs-dir', default=None, help='where the models are trained (default runs/bench/sampling)')
    ap.add_argument('--resume', action='store_true', help='reuse the rows of the last result whose models and settings match')
    args = ap.parse_args(argv)
    unknown = sorted(set(args.models) - set(MODELS))
    if unknown: ap.error(f'unknown --models {unknown}; choose from {list(MODELS)}')
    device = bl.setup(args)
    base = QUICK_TRAIN if args.quick else FULL_TRAIN
    L = base['context_length']
    calls = [L // 4, L // 2, L] if args.quick else [16, 32, 64, 128, 256]
    n_samples, batch = args.n_samples or (4 if args.quick else 16), args.batch or (2 if args.quick else 8)
    runs = Path(args.runs_dir) if args.runs_dir else bl.RUNS / ('quick' if args.quick else '') / 'sampling'
    names = ['ar'] + [n for n in MODELS if n in args.models and n != 'ar']
    models, info = get_models(names, base, runs, device, args.quick)
    data_path = prepare_dataset(base['dataset'])
    tok = load_tokenizer(data_path)
    vocab = set(words_of([tok.decode(open_split(data_path, 'train')[:].tolist())]))
    jd = J.load_judge(device, args.quick)
    judge = (jd['model'], jd['method'])
    d = bl.out_dir(args)
    stem = f"sampling__{bl.slug(bl.machine_kind(device))}"
    res = bl.new_result('sampling', args, device)
    res.update(length=L, calls=calls, n_samples=n_samples, batch=batch, temperature=args.temperature, seed=args.seed, train=base,
               block_size=MODELS['block']['block_size'], models=info, plot=f'{stem}.png', rows=[],
               samples_file=f'{stem}.samples.jsonl.gz', judge=J.judge_summary(jd, device))
    res['reference'] = reference(data_path, tok, jd, vocab, n_samples, L)
    res['checks'] = checks(models, L, device)
    print('checks:', res['checks'], flush=True)
    old, partial = {}, d / f'{stem}.partial.json'
    last = partial if partial.exists() else d / f'{stem}.json'
    if args.resume and last.exists():
        prev = json.loads(last.read_text())
        fingerprint = lambda ms: {n: (v['out_dir'], v['final']['bits']) for n, v in ms.items() if n in info}
        same = all(prev.get(k) == res[k] for k in ('length', 'n_samples', 'batch', 'temperature', 'seed', 'train')) and \
            fingerprint(prev['models']) == fingerprint(info)
        old = {r['key']: r for r in prev['rows'] if 'error' not in r} if same else {}
        kept = read_samples(d / res['samples_file']) if same and last != partial else {}
        old = {k: {**r, **kept[k]} for k, r in old.items() if 'texts' in r or k in kept}   # rows with their samples
        print(f'resume: {len(old)} rows reused' if same else 'resume: the last result used other models or settings; starting over')
    grid = [s for s in sampler_grid(L, calls, res['block_size']) if s['model'] in models]
    for i, spec in enumerate(grid):
        r = old.get(row_key(spec)) or run_row(spec, models, judge, tok, vocab, L, n_samples, batch, args.temperature,
                                              args.seed + 10 * i, device)
        res['rows'].append(r)
        print(f"[{i + 1}/{len(grid)}] {r['label']}: {r['nfe']:.0f} calls, {r['chars_per_s_batch1']:,.0f} chars/s (b1), "
              + (f"error {r['error']}" if 'error' in r else f"judge {r['ar_bits']:.3f} bits/char, entropy {r['entropy_bits']:.2f}"),
              flush=True)
        bl.write_json_atomic(partial, res)                # an interrupted run continues with --resume
    mark_collapse(res['rows'], res['reference'])
    res['targets'] = targets(res['rows'], calls, L, res['reference']['judge_bits'])
    res['defaults'] = defaults(res['rows'], calls, L, args.temperature)
    plot(res, d / res['plot'])
    write_samples(d / res['samples_file'], res['rows'])
    for r in res['rows']: r.pop('texts', None); r.pop('sample_bits', None)
    bl.save_result(res, markdown(res), d, stem)
    bl.write_json_atomic(d / 'sampling_defaults.json', {
        'about': f'best sampler per method and budget of network calls for {L} characters, from {stem}.json (run {res["run_id"]}); '
                 'keys are budgets; sampler/sample_steps/sample_options/temperature are TrainConfig fields',
        'quick': bool(args.quick), 'length': L, 'defaults': res['defaults']})
    partial.unlink(missing_ok=True)
    return res


if __name__ == '__main__': main()
