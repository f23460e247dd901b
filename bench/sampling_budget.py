"""Sampling budget: does masked diffusion at 32 network calls write text as good as at 256? The sampling benchmark's
budget target (the best sampler at 32 calls within 0.15 bits/char of the best at 256, by the judge), asked of one
sampler with enough samples to answer it: the benchmark's grid has 8 samples per row, which leaves the gap's standard
error about as large as the tolerance.

    python bench/sampling_budget.py                       # masked, its default sampler, 16..256 calls, 128 samples each
    python bench/sampling_budget.py --model block --sampler entropy
    python bench/sampling_budget.py --quick               # tiny models, seconds
    python bench/sampling_budget.py --pool A.json B.json  # the budgets two or more runs share, their samples pooled

The models are the sampling benchmark's (`bench/sampling.py`: runs/bench/sampling/<method>, trained with the same
setting when missing). Each budget draws `--n-samples` samples of the context length through `method.sample` and is
judged like a row of the benchmark (judge NLL with its standard error over samples, character entropy against
validation text). The gap to the largest budget gets the standard error of a difference of independent means, and
the verdict compares its 95% interval with the tolerance: met (the whole interval within it), not met (the whole
interval beyond it) or undecided.
"""
from __future__ import annotations
import argparse, json, math, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl
import sampling as sm
from diffusion_lm.data import prepare_dataset, open_split, load_tokenizer

Z95 = 1.96


def verdict(gap: float, se: float, tolerance: float = sm.BUDGET_GAP_BITS) -> str:
    "'met' when gap + 1.96 se <= tolerance, 'not met' when gap - 1.96 se > tolerance, else 'undecided'."
    if gap + Z95 * se <= tolerance: return 'met'
    return 'not met' if gap - Z95 * se > tolerance else 'undecided'


def add_gaps(rows: list[dict]) -> None:
    "Each row's gap to the last (largest budget) row, its standard error and verdict, in place."
    top = rows[-1]
    for r in rows:
        r['gap_bits'] = r['ar_bits'] - top['ar_bits']
        r['gap_se'] = math.hypot(r['ar_bits_se'], top['ar_bits_se']) if r is not top else 0.0
        r['verdict'] = verdict(r['gap_bits'], r['gap_se']) if r is not top else '—'


def pool_row(rows: list[dict]) -> dict:
    "One budget's figures over the samples of several independent runs: the exact mean and s.e. of all samples."
    n = [r['n_samples'] for r in rows]
    N, M = sum(n), sum(k * r['ar_bits'] for k, r in zip(n, rows)) / sum(n)
    ss = sum((k - 1) * (r['ar_bits_se'] * k ** 0.5) ** 2 + k * (r['ar_bits'] - M) ** 2 for k, r in zip(n, rows))
    return {**rows[0], 'n_samples': N, 'ar_bits': M, 'ar_bits_se': (ss / (N - 1)) ** 0.5 / N ** 0.5,
            'entropy_bits': sum(k * r['entropy_bits'] for k, r in zip(n, rows)) / N,
            'entropy_gap_bits': sum(k * r['entropy_gap_bits'] for k, r in zip(n, rows)) / N,
            'chars_per_s_batch1': min(r['chars_per_s_batch1'] for r in rows), 'pooled_runs': len(rows)}


def pool(results: list[dict]) -> dict:
    "The budgets every result shares, each pooled over the results (same model and sampler, independent seeds)."
    first = results[0]
    for r in results[1:]:
        if (r['model'], r['sampler'], r['length'], r['temperature']) != (first['model'], first['sampler'], first['length'],
                                                                         first['temperature']):
            raise SystemExit('--pool: the results differ in model, sampler, length or temperature')
    calls = sorted(set.intersection(*(set(r['calls']) for r in results)))
    rows = [pool_row([next(x for x in r['rows'] if x['calls'] == c) for r in results]) for c in calls]
    add_gaps(rows)
    return {**first, 'calls': calls, 'rows': rows, 'n_samples': rows[0]['n_samples'],
            'pooled_from': [r['run_id'] for r in results], 'seeds': [r['seed'] for r in results]}


def markdown(res: dict) -> str:
    head = ['network calls', 'judge, bits/char', 's.e.', f"gap to {res['calls'][-1]} calls", 's.e.',
            f"within {sm.BUDGET_GAP_BITS} bits?", 'char entropy (gap)', 'chars/s at batch 1']
    rows = [[r['calls'], f"{r['ar_bits']:.3f}", f"{r['ar_bits_se']:.3f}", f"{r['gap_bits']:+.3f}", f"{r['gap_se']:.3f}",
             r['verdict'], f"{r['entropy_bits']:.2f} ({r['entropy_gap_bits']:+.2f})", f"{r['chars_per_s_batch1']:,.0f}"]
            for r in res['rows']]
    ref, pooled = res['reference'], (f", pooled over {len(res['pooled_from'])} runs (seeds {res['seeds']})"
                                     if 'pooled_from' in res else '')
    return (f"### Sampling budget: {res['model']}, sampler {res['sampler']!r}{pooled}\n\n" + bl.md_table(head, rows) +
            f"\n\n{res['n_samples']} samples of {res['length']} characters per budget (batch {res['batch']}, temperature "
            f"{res['temperature']}), judged by the independent judge (`bench/judge.py`); validation text scores "
            f"{ref['ar_bits']:.3f} bits/char and {ref['entropy_bits']:.2f} bits of character entropy. The gap's s.e. is that "
            f"of a difference of independent means; the verdict compares its 95% interval with the tolerance.")


def main(argv=None):
    ap = bl.common_args(argparse.ArgumentParser(description=__doc__.split('\n')[0]), default_threads=1)
    ap.add_argument('--model', default='masked', choices=[m for m in sm.MODELS if m != 'ar'])
    ap.add_argument('--sampler', default='random', help="the method's sampler (default: random, masked diffusion's default)")
    ap.add_argument('--calls', nargs='*', type=int, default=None, help='budgets of network calls (default 16 32 64 128 256)')
    ap.add_argument('--n-samples', type=int, default=None, help='samples per budget (default 128; quick 4)')
    ap.add_argument('--batch', type=int, default=8)
    ap.add_argument('--temperature', type=float, default=1.0)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--runs-dir', default=None, help='where the models live (default runs/bench/sampling)')
    ap.add_argument('--pool', nargs='*', default=None, metavar='RESULT.json',
                    help='pool the samples of these results (no sampling): writes sampling_budget_pooled__<machine>')
    args = ap.parse_args(argv)
    if args.pool:
        res = {**pool([json.loads(Path(f).read_text()) for f in args.pool]),
               **bl.new_result('sampling_budget', args, bl.setup(args))}          # this run's head: machine, note, argv
        bl.save_result(res, markdown(res), bl.out_dir(args), f"sampling_budget_pooled__{res['machine']['kind_slug']}")
        return res
    device = bl.setup(args)
    base = sm.QUICK_TRAIN if args.quick else sm.FULL_TRAIN
    L = base['context_length']
    calls = sorted(args.calls or ([L // 4, L // 2, L] if args.quick else [16, 32, 64, 128, 256]))
    n = args.n_samples or (4 if args.quick else 128)
    batch = min(args.batch, n)
    if n % batch: ap.error(f'--n-samples {n} must be a multiple of --batch {batch}')
    runs = Path(args.runs_dir) if args.runs_dir else bl.RUNS / ('quick' if args.quick else '') / 'sampling'
    models, info = sm.get_models(['ar', args.model], base, runs, device, args.quick)
    data_path = prepare_dataset(base['dataset'])
    tok = load_tokenizer(data_path)
    vocab = set(sm.words_of([tok.decode(open_split(data_path, 'train')[:].tolist())]))
    jd = sm.J.load_judge(device, args.quick)
    judge = (jd['model'], jd['method'])
    res = bl.new_result('sampling_budget', args, device)
    res.update(model=args.model, sampler=args.sampler, length=L, calls=calls, n_samples=n, batch=batch,
               temperature=args.temperature, seed=args.seed, train=base, models=info, rows=[],
               samples_file=f"sampling_budget__{res['machine']['kind_slug']}.samples.jsonl.gz")
    res['reference'] = sm.reference(data_path, tok, jd, vocab, n, L)
    for i, c in enumerate(calls):
        spec = sm._row(args.model, args.sampler, args.sampler, c, c)
        r = sm.run_row(spec, models, judge, tok, vocab, L, n, batch, args.temperature, args.seed + 10 * i, device)
        if 'error' in r: raise SystemExit(f"{r['label']}: {r['error']}")
        res['rows'].append(r)
        print(f"{r['label']}: judge {r['ar_bits']:.3f} ± {r['ar_bits_se']:.3f} bits/char, entropy {r['entropy_bits']:.2f}",
              flush=True)
    sm.mark_collapse(res['rows'], res['reference'])
    add_gaps(res['rows'])
    sm.write_samples(bl.out_dir(args) / res['samples_file'], res['rows'])
    for r in res['rows']: r.pop('texts', None); r.pop('sample_bits', None)
    bl.save_result(res, markdown(res), bl.out_dir(args))
    return res


if __name__ == '__main__': main()
