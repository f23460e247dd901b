"""Assemble bench/RESULTS.md from the result files in bench/results/: one section per topic (quality and ablations,
sampling, training throughput, GPU), each with the latest run of its benchmarks on every machine kind.

    python bench/collect.py

A benchmark's result is `results/<benchmark>__<machine>.md` (its first paragraph the machine line), with an optional
`.json` beside it (a quick-mode JSON is left out; a `plot` it names is shown). Files of benchmarks not listed in
SECTIONS go to the end. Hand-written notes: `results/notes.json`, {machine kind: "a paragraph"}.
"""
from __future__ import annotations
import json, re, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl
from diffusion_lm.files import write_text_atomic

SECTIONS = [
    ('Quality and ablations', ['ablations', 'quality', 'official_sedd', 'compute', 'palindromes']),
    ('Sampling', ['judge', 'draw', 'sampling', 'sampling_budget', 'sampling_budget_more', 'sampling_budget_pooled',
                  'constraints']),
    ('Training throughput', ['train_throughput']),
    ('GPU', ['gpu']),
]
HEAD = """# Benchmark results

Produced by the scripts in `bench/` (see `bench/README.md`) and rebuilt from `bench/results/` by `python bench/collect.py`
(run by `bench/run_all.sh --full` and `bench/gpu.py`). Each table comes with the machine line it was measured on.
Wall-clock figures on a shared machine are noisy: compare ratios measured in the same run, not numbers across runs.
"""
NO_GPU = ('No GPU run yet. On a machine with a CUDA GPU: `make gpu-check` (`python bench/gpu.py`, under 8 minutes; '
          '`--llada-8b` adds the 8B LoRA and FSDP2 memory steps); it writes `results/gpu__<gpu>.json/.md` and this section.')


def load(results: Path) -> dict:
    "{benchmark: [(machine slug, json or None, markdown)]} of the result files in `results` (quick runs left out)."
    out = {}
    for md in sorted(results.glob('*__*.md')):
        bench, _, machine = md.stem.partition('__')
        jp = md.with_suffix('.json')
        try: res = json.loads(jp.read_text()) if jp.exists() else None
        except ValueError: res = None
        if res is not None and res.get('quick'): continue
        out.setdefault(bench, []).append((machine, res, md.read_text()))
    for runs in out.values(): runs.sort(key=lambda r: (not r[0].startswith('cpu'), r[0]))
    return out


def relink(text: str, results: Path) -> str:
    "Image and file links relative to results/ made relative to bench/ (where RESULTS.md lives)."
    def fix(m):
        target = m.group(2)
        ok = '/' not in target and '://' not in target and (results / target).exists()
        return f'{m.group(1)}(results/{target})' if ok else m.group(0)
    return re.sub(r'(\]\s*)\(([^)\s]+)\)', fix, text)


def block(res: dict | None, md: str, results: Path) -> str:
    "One result: its body, its plot (unless the body shows it) and its machine line in small print."
    text = md.strip()
    line, body = ('', text)
    if text.startswith('*'): line, _, body = text.partition('\n\n')
    plot = (res or {}).get('plot')
    if plot and (results / plot).exists() and f'({plot})' not in body: body += f'\n\n![{plot}]({plot})'
    body = relink(body.strip(), results)
    return body + (f'\n\n<sub>{line.strip()}</sub>' if line else '')


def build(results: Path = bl.RESULTS, notes: dict | None = None) -> str:
    data = load(results)
    parts = [HEAD.strip()]
    if notes: parts.append('## Notes on the machines\n\n' + '\n\n'.join(f'**{k}.** {v}' for k, v in notes.items()))
    listed = {b for _, bs in SECTIONS for b in bs}
    sections = SECTIONS + [('Other results', sorted(set(data) - listed))]
    for title, benches in sections:
        blocks = [block(res, md, results) for b in benches for _, res, md in data.get(b, [])]
        if title == 'GPU' and not blocks: blocks = [NO_GPU]
        if title == 'Sampling' and (results / 'sampling_defaults.json').exists():
            blocks.append('Recommended sampler defaults per method and budget of calls: `results/sampling_defaults.json`.')
        if blocks: parts.append(f'## {title}\n\n' + '\n\n'.join(blocks))
    return '\n\n'.join(parts) + '\n'


def main():
    notes_file = bl.RESULTS / 'notes.json'
    notes = json.loads(notes_file.read_text()) if notes_file.exists() else {}
    write_text_atomic(bl.BENCH / 'RESULTS.md', build(bl.RESULTS, notes))
    print(f"wrote {bl.BENCH / 'RESULTS.md'}")


if __name__ == '__main__': main()
