"""Assemble bench/RESULTS.md from the latest results in bench/results/: one section per machine kind, each with the
tables of every benchmark run there (quick-mode results, under results/quick/, are left out).

    python bench/collect.py
"""
from __future__ import annotations
import json, sys
from collections import defaultdict
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl

ORDER = ['train_throughput', 'quality', 'sampling', 'palindromes', 'gpu']
HEAD = """# Benchmark results

Produced by the scripts in `bench/` (see `bench/README.md`); this file is rebuilt from `bench/results/*.json` by
`python bench/collect.py` (run by `bench/run_all.sh`). One section per machine kind; within it, each benchmark's
latest run with the machine line it was measured on. Wall-clock figures on a shared machine are noisy: compare
ratios measured in the same run, not numbers across runs.
"""


def load(results: Path) -> dict:
    "{machine kind: {benchmark: (json, markdown)}} of the files in `results` (not its quick/ folder)."
    out = defaultdict(dict)
    for jp in sorted(results.glob('*__*.json')):
        res = json.loads(jp.read_text())
        if res.get('quick'): continue
        md = jp.with_suffix('.md')
        out[res['machine']['kind']][res['benchmark']] = (res, md.read_text() if md.exists() else '')
    return out


def section(kind: str, runs: dict, notes: str = '', results: Path = bl.RESULTS) -> str:
    parts = [f'## {kind}']
    if notes: parts.append(notes)
    for b in sorted(runs, key=lambda b: ORDER.index(b) if b in ORDER else len(ORDER)):
        res, md = runs[b]
        line, _, body = md.strip().partition('\n\n')
        plot = res.get('plot')
        img = f'\n\n![{b}](results/{plot})' if plot and (results / plot).exists() else ''
        parts.append(body.strip() + img + f'\n\n<sub>{line}</sub>')
    missing = [b for b in ORDER if b not in runs and not (b == 'gpu' and kind.startswith('CPU'))]
    if missing: parts.append('Not run on this machine kind yet: ' + ', '.join(f'`bench/{b}.py`' for b in missing) + '.')
    if kind.startswith('CPU'):
        parts.append('`bench/gpu.py` needs CUDA: on this machine it exits saying so and writes nothing.')
    return '\n\n'.join(parts)


def build(results: Path = bl.RESULTS, notes: dict | None = None) -> str:
    data = load(results)
    notes = notes or {}
    body = [HEAD.strip()]
    for kind in sorted(data, key=lambda k: (not k.startswith('CPU'), k)):
        body.append(section(kind, data[kind], notes.get(kind, ''), results))
    if not any(not k.startswith('CPU') for k in data):
        body.append('## GPU\n\nNo GPU run yet. On a CUDA machine: `bench/run_all.sh --full` (runs `bench/gpu.py` and the '
                    '768 x 12 size of `bench/train_throughput.py`), then `python bench/collect.py`.')
    return '\n\n'.join(body) + '\n'


def main():
    notes_file = bl.BENCH / 'results' / 'notes.json'          # {machine kind: "a paragraph"}, hand-written, optional
    notes = json.loads(notes_file.read_text()) if notes_file.exists() else {}
    text = build(bl.RESULTS, notes)
    (bl.BENCH / 'RESULTS.md').write_text(text)
    print(f"wrote {bl.BENCH / 'RESULTS.md'}")


if __name__ == '__main__': main()
