"""One trial of the palindrome recipe: fine-tune SEDD on a palindrome set from a pre-trained run (or reuse a fine-tuned
run), evaluate it the way the pipeline does (diffusion_lm.palindromes.eval.evaluate_model: lengths 8-24 and 'train',
both constraint modes, word repair) and append one record to bench/results/palindrome_trials.jsonl, which
`python bench/palindromes.py` turns into the table of what was tried.

    python bench/palindrome_trials.py --name base --pretrain runs/tune/wiki_sedd_absorbing \
        --finetune runs/tune/ft_base --set max_steps=600 lr=5e-4
    python bench/palindrome_trials.py --name base-T0.7 --finetune runs/tune/ft_base --temperature 0.7   # sampling only

Training resumes or is skipped when --finetune already holds a finished run with the same config; the training
time recorded is what this call spent. One thread by default (--threads).
"""
from __future__ import annotations
import argparse, json, os, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl

TRIALS = bl.RESULTS / 'palindrome_trials.jsonl'


def parse_sets(items) -> dict:
    "KEY=VALUE pairs (values parsed as JSON when they can be) as a dict."
    out = {}
    for it in items or []:
        k, _, v = it.partition('=')
        if not _: raise SystemExit(f'--set {it!r}: give KEY=VALUE')
        try: out[k] = json.loads(v)
        except json.JSONDecodeError: out[k] = v
    return out


def finetune(args, overrides: dict) -> tuple[dict, float]:
    "Train (or resume, or reuse) the fine-tuning run; its config and the seconds spent here."
    from diffusion_lm.trainer import config_from_preset, train
    preset = 'palindrome-sedd' + ('-uniform' if args.graph == 'uniform' else '')
    cfg = config_from_preset(preset, **{'init_from': args.pretrain, 'out_dir': args.finetune, **overrides})
    t0 = time.time()
    train(cfg, progress=False)
    return cfg.to_dict(), time.time() - t0


def pooled(res: dict) -> dict:
    "The figures of the rows that pool every length, by mode."
    keys = ('all_words_english', 'all_words_english_repaired', 'english_word_share', 'distinct', 'distinct_repaired', 'novel',
            'novel_repaired', 'lenient_all_words_english', 'calls_per_sample', 'repair_calls_per_sample',
            'unconstrained_palindrome_rate', 'palindrome_rate', 'palindrome_rate_repaired', 'n')
    return {r['mode']: {k: r[k] for k in keys} for r in res['rows'] if r['length'] == 'all'}


def main(argv=None):
    ap = bl.common_args(argparse.ArgumentParser(description=__doc__.split('\n')[0]), default_threads=1)
    ap.add_argument('--name', required=True, help='the trial name in the table')
    ap.add_argument('--graph', default='absorbing', choices=['absorbing', 'uniform'])
    ap.add_argument('--pretrain', default=None, help='pre-trained run folder to fine-tune from')
    ap.add_argument('--pretrain-seconds', type=float, default=None, help='wall time the pre-training took (recorded with the trial)')
    ap.add_argument('--finetune', required=True, help='fine-tuning run folder (trained here unless finished)')
    ap.add_argument('--set', nargs='*', default=[], help='fine-tuning TrainConfig overrides KEY=VALUE')
    ap.add_argument('--steps', type=int, default=64, help='sampler steps')
    ap.add_argument('--sampler', default=None)
    ap.add_argument('--temperature', type=float, default=1.0)
    ap.add_argument('--shapes', default='train', help="letters-mode skeletons: 'train' or 'none' (word lengths)")
    ap.add_argument('--n-samples', type=int, default=64)
    ap.add_argument('--repair-rounds', type=int, default=4)
    ap.add_argument('--repair-steps', type=int, default=None, help='sampler steps of a repair round (default: --steps)')
    ap.add_argument('--repair-candidates', type=int, default=1, help='fills per row and repair round (best by the word test)')
    ap.add_argument('--lengths', default='8,12,16,24,train')
    ap.add_argument('--trials', default=str(TRIALS), help='the JSON-lines file to append to')
    args = ap.parse_args(argv)
    device = bl.setup(args)
    from diffusion_lm.trainer import load_trained
    from diffusion_lm.checkpoint import find_latest_checkpoint
    from diffusion_lm.palindromes.data import palindrome_splits
    from diffusion_lm.palindromes.eval import evaluate_model, results_markdown
    overrides = parse_sets(args.set)
    load0 = os.getloadavg()
    cfg, secs = finetune(args, overrides) if (args.pretrain or overrides) else (None, 0.0)
    ckpt = find_latest_checkpoint(Path(args.finetune))
    model, method, tok, mcfg = load_trained(ckpt, which='ema', device=device)
    t0 = time.time()
    lengths = [L if L == 'train' else int(L) for L in args.lengths.split(',')]
    res = evaluate_model(model, method, tok, lengths=lengths, n_samples=args.n_samples, steps=args.steps, sampler=args.sampler,
                         splits=palindrome_splits(mcfg.dataset), repair_rounds=args.repair_rounds, device=device, log=None,
                         repair_steps=args.repair_steps, repair_candidates=args.repair_candidates,
                         shapes=None if args.shapes == 'none' else args.shapes, temperature=args.temperature)
    res['settings'].update(graph=mcfg.graph, checkpoint=str(ckpt), dataset=mcfg.dataset)
    rec = dict(name=args.name, graph=mcfg.graph, pretrain=args.pretrain, pretrain_seconds=args.pretrain_seconds,
               finetune=args.finetune, finetune_overrides=overrides, finetune_seconds=round(secs, 1),
               model=dict(n_layer=mcfg.n_layer, n_embd=mcfg.n_embd, max_steps=mcfg.max_steps, lr=mcfg.lr, batch_size=mcfg.batch_size,
                          dataset=mcfg.dataset),
               sampling=dict(steps=args.steps, sampler=args.sampler or method.default_sampler, temperature=args.temperature,
                             shapes=args.shapes, n_samples=args.n_samples, repair_rounds=args.repair_rounds, lengths=args.lengths,
                             repair_steps=args.repair_steps or args.steps, repair_candidates=args.repair_candidates),
               eval_seconds=round(time.time() - t0, 1), figures=pooled(res), loadavg=[load0[0], os.getloadavg()[0]],
               note=args.note, date=time.strftime('%Y-%m-%dT%H:%M:%S'), commit=bl.git_state().get('commit'))
    Path(args.trials).parent.mkdir(parents=True, exist_ok=True)
    with open(args.trials, 'a') as f: f.write(json.dumps(rec) + '\n')
    print(results_markdown(res, examples=3))
    print(json.dumps(rec['figures'], indent=1))
    return rec


if __name__ == '__main__': main()
