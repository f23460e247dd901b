"""Palindrome figures, read from the JSON that the palindrome evaluation writes (diffusion_lm.palindromes and the
runs under runs/ or papermill_runs/examples/palindromes/); this script does not train or sample.

    python bench/palindromes.py                    # finds the evaluation's JSON files
    python bench/palindromes.py --from FILE.json   # or reads the ones given
    python bench/palindromes.py --quick            # the same (reading files takes no time)

Each file's numeric figures are listed as they are (nested keys joined by '.'). Where a file carries the
samples themselves (a list of strings under a key containing 'sample'), the palindrome rate is recomputed here
with `diffusion_lm.data.is_palindrome` (letters and digits, lower-cased, non-empty, equal to its reverse) as an
independent check of the reported one. With no file found, the result says so and how to produce one.
"""
from __future__ import annotations
import argparse, glob, json, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl
from diffusion_lm.data import is_palindrome, normalize_palindrome

PATTERNS = ['papermill_runs/examples/palindromes/**/*.json', 'papermill_runs/palindromes/**/*eval*.json',
            'runs/palindrome*/**/*eval*.json', 'runs/**/palindrome*eval*.json']
HOW_TO = ("No palindrome evaluation output was found (searched papermill_runs/examples/palindromes/, "
          "papermill_runs/palindromes/ and runs/palindrome*/ for *eval*.json). Produce it with the palindrome evaluation "
          "of diffusion_lm/palindromes.py: `evaluate_model(...)` then `save_results(result, 'runs/palindromes/eval')` "
          "(writes palindrome_eval.json), or the command line `diffusion-lm-palindromes --model RUN_DIR --json "
          "runs/palindromes/eval/palindrome_eval.json`, after the palindrome fine-tuning run has a checkpoint; then rerun "
          "`python bench/palindromes.py` (or pass the file with --from FILE.json).")
ROW_COLS = ['length', 'run', 'n', 'palindrome_rate', 'all_words_english', 'english_word_share', 'distinct', 'distinct_2', 'novel',
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


def read_file(path: Path) -> dict:
    try: data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e: return {'file': str(path), 'error': f'{type(e).__name__}: {e}'}
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


def markdown(res) -> str:
    if not res['files']:
        return '### Palindromes\n\n' + res['how_to']
    parts = ['### Palindromes']
    for f in res['files']:
        rel = f['file'].replace(str(bl.ROOT) + '/', '')
        if 'error' in f: parts.append(f"`{rel}`: unreadable ({f['error']})"); continue
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
    return '\n\n'.join(parts)


def main(argv=None):
    ap = bl.common_args(argparse.ArgumentParser(description=__doc__.split('\n')[0]), default_threads=1)
    ap.add_argument('--from', dest='files', nargs='*', default=None, help='evaluation JSON files (default: search runs/ and papermill_runs/)')
    ap.add_argument('--root', default=str(bl.ROOT), help='where to search')
    args = ap.parse_args(argv)
    device = bl.setup(args)
    files = [Path(f) for f in args.files] if args.files else find_files(Path(args.root))
    res = bl.new_result('palindromes', args, device)
    res.update(searched=[str(Path(args.root) / p) for p in PATTERNS] if not args.files else None,
               files=[read_file(p) for p in files], status='ok' if files else 'missing', how_to=None if files else HOW_TO)
    print(HOW_TO if not files else f'read {len(files)} file(s): ' + ', '.join(map(str, files)))
    bl.save_result(res, markdown(res), bl.out_dir(args))
    return res


if __name__ == '__main__': main()
