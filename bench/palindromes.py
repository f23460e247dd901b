"""Palindrome figures: the pipeline's evaluation table (both graphs, both constraint modes, word repair), the targets
it meets or misses, the pipeline's timings, and the table of the recipes tried (bench/palindrome_trials.py); read from
the JSON and TSV files the palindrome pipeline writes. This script does not train or sample.

    python bench/palindromes.py                    # papermill_runs/palindromes/ (make palindromes) and the trials
    python bench/palindromes.py --from FILE.json   # or the evaluation files given
    python bench/palindromes.py --note "what else ran on the machine"

A pipeline evaluation (`diffusion_lm.palindromes.eval.save_results`: a list of results, one per graph) is shown as one
table with the targets checked on the rows that pool every length. Other JSON files are listed figure by figure.
Where a file carries the samples themselves (a list of strings under a key containing 'sample'), the palindrome
rate is recomputed here with `diffusion_lm.palindromes.text.is_palindrome` (letters and digits, lower-cased, non-empty, equal
to its reverse) as an independent check of the reported one. With no file found, the result says so and how to
produce one.
The result JSON does not repeat a pipeline evaluation's samples and per-sample judge bits: it names them (the file,
the graph's index, the keys; `resolve` reads them back).
"""
from __future__ import annotations
import argparse, glob, json, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl
from diffusion_lm.palindromes.text import is_palindrome, normalize_palindrome

PATTERNS = ['papermill_runs/palindromes/palindrome_eval.json', 'papermill_runs/examples/palindromes/**/*eval*.json',
            'runs/palindrome*/**/*eval*.json', 'runs/**/palindrome*eval*.json']
TARGETS = [('palindrome_rate', 1.0, 'constrained palindromes 100%'), ('all_words_english', 0.6, 'all words English >= 60% without repair'),
           ('all_words_english_repaired', 0.9, 'all words English >= 90% with <= 4 repair rounds'),
           ('distinct', 0.95, 'distinct >= 95%'), ('novel', 0.8, 'novel >= 80%'),
           ('all_words_strict', 1.0, 'strict dictionary words 100% without repair'),
           ('judge_gap', 0.5, 'judge of English within 0.5 bits/char of real palindromes')]
WITHIN = {'judge_gap'}        # targets on the size of a difference: met when |value| <= bar
HOW_TO = ("No palindrome evaluation output was found (searched papermill_runs/palindromes/, "
          "papermill_runs/examples/palindromes/ and runs/palindrome*/ for *eval*.json). Produce it with the palindrome "
          "pipeline (`make palindromes`, which writes papermill_runs/palindromes/palindrome_eval.json), or with "
          "`diffusion_lm.palindromes.eval.evaluate_model(...)` then `save_results(results, 'runs/palindromes/eval')`, "
          "or the command line `diffusion-lm-palindromes --model RUN_DIR --json runs/palindromes/eval/palindrome_eval.json`; "
          "then rerun `python bench/palindromes.py` (or pass the file with --from FILE.json).")
ROW_COLS = ['length', 'run', 'n', 'palindrome_rate', 'all_words_english', 'english_word_share', 'distinct', 'distinct_2', 'novel',
            'novel_corpus', 'judge_bits', 'judge_bits_se', 'judge_gap',
            'mean_length', 'seconds']
MAX_FIGURES = 60


def find_files(root: Path, patterns=PATTERNS) -> list[Path]:
    "Evaluation JSON files under root, newest first, without this script's own outputs."
    found = {Path(p).resolve() for pat in patterns for p in glob.glob(str(root / pat), recursive=True)}
    found = [p for p in found if p.is_file() and bl.BENCH not in p.parents]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def flatten(obj, prefix='') -> dict:
    "Numeric and boolean leaves of nested dicts (and of lists of dicts, indexed) as {'a.b': value}."
    out = {}
    if isinstance(obj, dict):
        for k, v in obj.items(): out.update(flatten(v, f'{prefix}{k}.'))
    elif isinstance(obj, list) and obj and all(isinstance(v, dict) for v in obj):
        for i, v in enumerate(obj): out.update(flatten(v, f'{prefix}{i}.'))
    elif isinstance(obj, (int, float)) and not isinstance(obj, bool): out[prefix[:-1]] = obj
    elif isinstance(obj, bool): out[prefix[:-1]] = obj
    return out


def sample_lists(obj, prefix='', under=False) -> dict:
    "Lists of strings under keys containing 'sample' (at any depth, also inside a dict so named): {'key.path': [str, ...]}."
    out = {}
    if isinstance(obj, dict):
        for k, v in obj.items():
            path, hit = f'{prefix}{k}', under or 'sample' in str(k).lower()
            if hit and isinstance(v, list) and v and all(isinstance(s, str) for s in v): out[path] = v
            else: out.update(sample_lists(v, path + '.', hit))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            if isinstance(v, (dict, list)): out.update(sample_lists(v, f'{prefix}{i}.', under))
    return out


def recompute(samples: list[str]) -> dict:
    "Palindrome rate of the non-empty samples and the number of distinct normalised palindromes, recomputed here."
    nonempty = [s for s in samples if normalize_palindrome(s)]
    valid = [s for s in nonempty if is_palindrome(s)]
    return {'samples': len(samples), 'non_empty': len(nonempty), 'palindromes': len(valid),
            'rate_of_all': len(valid) / len(samples), 'palindrome_rate': len(valid) / len(nonempty) if nonempty else None,
            'distinct_palindromes': len({normalize_palindrome(s) for s in valid})}


def targets(results: list) -> list:
    "Per graph and mode: each target's figure on the row pooling every length, and whether it is met."
    out = []
    for res in results:
        for r in res['rows']:
            if r.get('length') != 'all' or r.get('run') != 'constrained': continue
            for key, bar, what in TARGETS:
                v = r.get(key)
                if key in ('distinct', 'novel') and f'{key}_repaired' in r: v = min(v, r[f'{key}_repaired'])   # before and after repair
                if key in WITHIN and r.get(f'{key}_repaired') is not None:    # the farther of before/after repair
                    v = max(v, r[f'{key}_repaired'], key=abs) if v is not None else None
                met = v is not None and (abs(v) <= bar if key in WITHIN else v >= bar)
                out.append(dict(graph=res['settings'].get('graph'), mode=r['mode'], target=what, value=v, met=met))
    return out


def pipeline_eval(path: Path, data: list) -> dict:
    "A pipeline evaluation (a list of evaluate_model results): its rows, settings, targets and recomputed palindrome rates."
    rec = {}
    for res in data:
        g = res['settings'].get('graph', '?')
        for k, v in res['samples'].items():
            if isinstance(v, list) and v and all(isinstance(t, str) for t in v): rec[f'{g}/{k}'] = recompute(v)
    return {'file': str(path), 'pipeline': data, 'targets': targets(data), 'recomputed': rec}


SAMPLE_KEYS = ('samples', 'judge_bits')      # per-sample lists a pipeline evaluation already keeps in its own file


def with_references(f: dict) -> dict:
    ("`f` (a pipeline evaluation read by `pipeline_eval`) as the result JSON keeps it: each graph's samples and per-sample "
     "judge bits replaced by a reference (the evaluation file, the graph's index there, the keys), not repeated; "
     "`resolve` reads them back, so every figure stays recomputable.")
    if 'pipeline' not in f: return f
    p = Path(f['file'])
    rel = str(p.resolve()).replace(str(bl.ROOT.resolve()) + '/', '') if p.is_absolute() else str(p)   # from the project folder
    pipe = [{**g, **{k: {'ref': rel, 'index': i, 'key': k, 'keys': list(g[k])} for k in SAMPLE_KEYS if isinstance(g.get(k), dict)}}
            for i, g in enumerate(f['pipeline'])]
    return {**f, 'pipeline': pipe}


def resolve(ref: dict) -> dict:
    "The samples (or judge bits) a reference of `with_references` names, read from the evaluation file, keys checked."
    p = Path(ref['ref']); p = p if p.is_absolute() else bl.ROOT / p
    got = json.loads(p.read_text())[ref['index']][ref['key']]
    if list(got) != ref['keys']: raise ValueError(f"{p}: graph {ref['index']} holds {ref['key']} {list(got)}, the result names {ref['keys']}")
    return got


def read_file(path: Path) -> dict:
    try: data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e: return {'file': str(path), 'error': f'{type(e).__name__}: {e}'}
    if isinstance(data, list) and data and all(isinstance(r, dict) and 'rows' in r and 'settings' in r for r in data):
        return pipeline_eval(path, data)
    rec = {k: recompute(v) for k, v in sample_lists(data).items()}
    if isinstance(data, dict) and isinstance(data.get('rows'), list) and all(isinstance(r, dict) for r in data['rows']):
        rows = []                                   # evaluate_model's result: one row per length and run
        for r in data['rows']:
            r = {k: r[k] for k in ROW_COLS if k in r}
            key = f"samples.{r.get('length')}/{r.get('run')}"
            if key in rec: r['recomputed_rate'] = rec[key]['rate_of_all']   # the same definition: valid / all samples
            rows.append(r)
        return {'file': str(path), 'rows': rows, 'settings': data.get('settings'), 'recomputed': rec}
    figs = flatten(data)
    return {'file': str(path), 'figures': dict(list(figs.items())[:MAX_FIGURES]), 'figures_total': len(figs), 'recomputed': rec}


def read_timings(path: Path) -> list:
    "The rows of a pipeline's timings.tsv: step, seconds, finished at, load average (1, 5, 15 min) when recorded."
    if not path.is_file(): return []
    out = []
    for line in path.read_text().splitlines():
        f = line.split('\t')
        if len(f) >= 3: out.append(dict(step=f[0], seconds=int(f[1]), finished=f[2], loadavg=f[3] if len(f) > 3 else None))
    return out


def read_trials(path: Path) -> list:
    "The records of bench/palindrome_trials.py, one JSON object a line."
    return [json.loads(l) for l in path.read_text().splitlines() if l.strip()] if path.is_file() else []


def pct(v): return 'n/a' if v is None else f'{v:.0%}'


def target_value(t: dict) -> str:
    "A target's figure: bits/char for the judge's gap, else a percentage."
    if 'bits/char' in t['target']: return 'n/a' if t['value'] is None else f"{t['value']:+.2f} bits/char"
    return pct(t['value'])


def pipeline_markdown(f: dict, rel: str) -> str:
    from diffusion_lm.palindromes.eval import results_markdown
    s0 = f['pipeline'][0]['settings']
    head = (f"From `{rel}`: {s0.get('n_samples')} samples per length and mode, lengths {', '.join(s0.get('lengths', []))}, "
            f"{s0.get('steps')} sampler steps ({s0.get('sampler')}), temperature {s0.get('temperature', 1.0)}, "
            f"{s0.get('repair_rounds')} repair rounds; checkpoints " + ', '.join(f"`{r['settings'].get('checkpoint')}`" for r in f['pipeline']))
    tg = bl.md_table(['graph', 'mode', 'target', 'value', 'met'],
                     [[t['graph'], t['mode'], t['target'], target_value(t), 'yes' if t['met'] else '**no**'] for t in f['targets']])
    bad = {k: r for k, r in f['recomputed'].items() if k.split('/')[-1] in ('exact', 'letters', 'words', 'repaired') and r['rate_of_all'] != 1.0}
    check = ('Recomputed here with `is_palindrome`: every constrained sample (before and after repair) is a palindrome.' if not bad else
             'Recomputed here: constrained samples that are NOT all palindromes: ' + ', '.join(bad))
    return '\n\n'.join([head, results_markdown(f['pipeline'], examples=2).strip(), '#### Targets (rows pooling every length; distinct and novel: the lower of before/after repair)', tg, check])


def timings_markdown(rows: list) -> str:
    if not rows: return ''
    total = sum(r['seconds'] for r in rows if r['step'].startswith(('pretrain', 'finetune')))
    return ('#### Pipeline timings (`timings.tsv`)\n\n' + bl.md_table(['step', 'seconds', 'minutes', 'finished', 'load average'],
            [[r['step'], r['seconds'], f"{r['seconds'] / 60:.1f}", r['finished'], r['loadavg'] or 'n/a'] for r in rows]) +
            f"\n\nPre-training plus fine-tuning, all graphs: {total} s ({total / 60:.1f} min).")


def trials_markdown(trials: list) -> str:
    if not trials: return ''
    rows = []
    for t in trials:
        m, sm = t['model'], t['sampling']
        for mode, fg in t['figures'].items():
            rows.append([t['name'], t['graph'], f"{m['n_layer']}x{m['n_embd']}", m['max_steps'], m['lr'], Path(str(m['dataset'])).name,
                         f"{sm['steps']} {sm['sampler']} T={sm['temperature']} {sm['shapes']}", mode, pct(fg['all_words_english']),
                         pct(fg['all_words_english_repaired']), f"+{fg['repair_calls_per_sample']:.0f}", pct(fg['distinct']),
                         pct(fg['novel']), pct(fg['lenient_all_words_english']), pct(fg['unconstrained_palindrome_rate']),
                         t.get('pretrain_seconds') or '–', t['finetune_seconds'], f"{t['loadavg'][0]:.1f}"])
    return ('#### Recipes tried (`bench/palindrome_trials.py`, pooled over every length; one row per trial and mode)\n\n' +
            bl.md_table(['trial', 'graph', 'model', 'ft steps', 'lr', 'data', 'sampling', 'mode', 'all English', 'after repair',
                         'extra calls', 'distinct', 'novel', 'lenient', 'unconstrained pal.', 'pretrain s', 'finetune s', 'load'], rows))


def markdown(res) -> str:
    if not res['files']:
        return '### Palindromes\n\n' + res['how_to'] + ('\n\n' + trials_markdown(res.get('trials', [])) if res.get('trials') else '')
    parts = ['### Palindromes']
    for f in res['files']:
        rel = f['file'].replace(str(bl.ROOT) + '/', '')
        if 'error' in f: parts.append(f"`{rel}`: unreadable ({f['error']})"); continue
        if 'pipeline' in f: parts.append(pipeline_markdown(f, rel)); continue
        if 'rows' in f:
            cols = [c for c in ROW_COLS + ['recomputed_rate'] if any(c in r for r in f['rows'])]
            cell = lambda v: 'n/a' if v is None else f'{v:.3g}' if isinstance(v, float) else v
            parts.append(f'From `{rel}` (settings: {json.dumps(f["settings"])}):\n\n' +
                         bl.md_table(cols, [[cell(r.get(c)) for c in cols] for r in f['rows']]) +
                         '\n\nrecomputed_rate: the palindrome rate (palindromes / samples) recomputed here from the samples in the file.')
            continue
        rows = [[k, f'{v:.4g}' if isinstance(v, float) else v] for k, v in f['figures'].items()]
        more = f" (first {len(rows)} of {f['figures_total']})" if f['figures_total'] > len(rows) else ''
        parts.append(f'From `{rel}`{more}:\n\n' + bl.md_table(['figure', 'value'], rows))
        if f['recomputed']:
            rr = [[k, r['samples'], r['non_empty'], r['palindromes'], bl.fmt(r['rate_of_all'], 3), bl.fmt(r['palindrome_rate'], 3),
                   r['distinct_palindromes']] for k, r in f['recomputed'].items()]
            parts.append('Recomputed here from the samples in the file (`is_palindrome`):\n\n' +
                         bl.md_table(['samples at', 'samples', 'non-empty', 'palindromes', 'rate (of all)', 'rate (of non-empty)',
                                      'distinct'], rr))
    for extra in (timings_markdown(res.get('timings', [])), trials_markdown(res.get('trials', []))):
        if extra: parts.append(extra)
    return '\n\n'.join(parts)


def main(argv=None):
    ap = bl.common_args(argparse.ArgumentParser(description=__doc__.split('\n')[0]), default_threads=1)
    ap.add_argument('--from', dest='files', nargs='*', default=None, help='evaluation JSON files (default: search runs/ and papermill_runs/)')
    ap.add_argument('--root', default=str(bl.ROOT), help='where to search')
    ap.add_argument('--timings', default=None, help="the pipeline's timings.tsv (default: beside the first evaluation file)")
    ap.add_argument('--trials', default=str(bl.RESULTS / 'palindrome_trials.jsonl'), help='the records of bench/palindrome_trials.py')
    args = ap.parse_args(argv)
    device = bl.setup(args)
    files = [Path(f) for f in args.files] if args.files else find_files(Path(args.root))
    files = files[:1] if not args.files and files and files[0].name == 'palindrome_eval.json' else files   # the newest pipeline run
    res = bl.new_result('palindromes', args, device)
    timings = Path(args.timings) if args.timings else (files[0].parent / 'timings.tsv' if files else Path('/nonexistent'))
    res.update(searched=[str(Path(args.root) / p) for p in PATTERNS] if not args.files else None,
               files=[read_file(p) for p in files], status='ok' if files else 'missing', how_to=None if files else HOW_TO,
               timings=read_timings(timings), trials=read_trials(Path(args.trials)))
    print(HOW_TO if not files else f'read {len(files)} file(s): ' + ', '.join(map(str, files)))
    md = markdown(res)                                  # from the samples; the JSON keeps references to them
    res['files'] = [with_references(f) for f in res['files']]
    bl.save_result(res, md, bl.out_dir(args))
    return res


if __name__ == '__main__': main()
