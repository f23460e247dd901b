"""Training throughput of every method relative to the autoregressive baseline, measured in one process (ratios,
not wall times), and the peak memory of a training step.

    python bench/train_throughput.py            # the CPU sizes (the GPU sizes on CUDA); a few minutes at 1 thread
    python bench/train_throughput.py --quick    # tiny, seconds

Every variant is built by the library (`TrainConfig` -> `make_method`, `trainer.build_model`, `optim.make_optimizer`,
`make_scheduler`) and stepped by the trainer's own `trainer.train_step` (forward + backward under its autocast, bf16 on
CUDA, gradient clipping, AdamW, the LR schedule; no EMA, no logging). After `--warmup` steps each, every repetition
runs `--steps` steps of each variant in turn (the order rotates); tokens/s counts the training characters (batch x
context) of a step, so block diffusion, which reads each sequence twice, pays for it. Ratios: to AR in the same
repetition (paired, the median over repetitions) and of the medians; on the CPU also by process CPU time, which
other jobs on shared cores disturb less. SEDD runs with time conditioning (cond_dim 128) and without it (cond_dim 0,
RADD, absorbing graph only). Target: SEDD without time conditioning at >= 0.95x AR.
Memory: parameters + buffers + optimizer state, plus the peak a step allocates above that (the forward/backward
peak; CUDA: max_memory_allocated, CPU: the torch profiler's allocation events).
"""
from __future__ import annotations
import argparse, os, statistics, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch
import benchlib as bl
from diffusion_lm.trainer import TrainConfig, build_model, train_step
from diffusion_lm.methods import make_method
from diffusion_lm.optim import make_optimizer, make_scheduler
from diffusion_lm.data import RandomBatches, prepare_dataset, load_tokenizer

VARIANTS = {   # name: TrainConfig overrides
    'ar': dict(method='ar'),
    'masked': dict(method='masked'),
    'block4': dict(method='block', block_size=4, estimator='count'),
    'sedd-absorbing': dict(method='sedd', graph='absorbing', cond_dim=128),
    'sedd-absorbing-radd': dict(method='sedd', graph='absorbing', cond_dim=0),
    'sedd-uniform': dict(method='sedd', graph='uniform', cond_dim=128),
}
TARGET = ('sedd-absorbing-radd', 0.95)
CPU_SIZES = {
    'tiny-2x64-L64-B8': dict(n_layer=2, n_embd=64, n_head=2, context_length=64, batch_size=8),
    'nanogpt-cpu-4x128-L64-B12': dict(n_layer=4, n_embd=128, n_head=4, context_length=64, batch_size=12),
    'sampling-4x128-L256-B12': dict(n_layer=4, n_embd=128, n_head=4, context_length=256, batch_size=12),
}
GPU_SIZES = {
    'nanogpt-cpu-4x128-L64-B12': CPU_SIZES['nanogpt-cpu-4x128-L64-B12'],
    'gpt2s-12x768-L1024-B8': dict(n_layer=12, n_embd=768, n_head=12, context_length=1024, batch_size=8),
}
QUICK_SIZES = {'quick-1x32-L16-B2': dict(n_layer=1, n_embd=32, n_head=2, context_length=16, batch_size=2)}


def static_bytes(model, opt) -> int:
    "Bytes of the tensors that live across steps: parameters, buffers, optimizer state (gradients are freed each step)."
    seen, total = set(), 0
    tensors = [*model.parameters(), *model.buffers()] + [v for st in opt.state.values() for v in st.values() if torch.is_tensor(v)]
    for t in tensors:
        s = t.untyped_storage()
        if s.data_ptr() not in seen: seen.add(s.data_ptr()); total += s.nbytes()
    return total


def cpu_step_peak(step) -> int:
    "Peak CPU tensor memory allocated during one `step()` above what was live before it (torch profiler memory events)."
    from torch.profiler import profile, ProfilerActivity
    os.environ.setdefault('KINETO_LOG_LEVEL', '99')
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof: step()
    events = sorted((e for e in prof.profiler.kineto_results.events() if e.name() == '[memory]'), key=lambda e: e.start_ns())
    cur = peak = 0
    for e in events:
        cur += e.nbytes(); peak = max(peak, cur)
    return peak


def cuda_step_peak(step, device) -> int:
    "Peak CUDA memory allocated during one `step()` above what was allocated before it."
    torch.cuda.synchronize(device); torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    step(); torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before


def make_variant(name: str, size: dict, tok, data_path, device, seed: int = 0) -> dict:
    "A variant built and stepped as the trainer builds and steps it: {'model', 'opt', 'step', 'params', 'losses'}."
    cfg = TrainConfig.from_dict({**size, **VARIANTS[name], 'dropout': 0.0, 'ema_decay': 0.0, 'warmup_steps': 10, 'max_steps': 10**6,
                                 'seed': seed, 'out_dir': 'runs/unused'})
    method = make_method(cfg, tok)
    torch.manual_seed(seed)
    model = build_model(cfg, method).to(device).train()
    opt = make_optimizer(model, cfg.lr, cfg.weight_decay, (cfg.beta1, cfg.beta2))
    sched = make_scheduler(opt, cfg.warmup_steps, cfg.max_steps, cfg.min_lr / cfg.lr, cfg.lr_schedule)
    loader = RandomBatches.from_prepared(data_path, 'train', batch_size=cfg.batch_size, context_length=cfg.context_length, seed=seed)
    batches = [loader.get_batch().to(device) for _ in range(4)]
    loss_fn = lambda m, x: method.loss(m, x)
    v = dict(model=model, opt=opt, params=sum(p.numel() for p in model.parameters()), losses=[], i=0)
    params = list(model.parameters())

    def step():
        v['i'] += 1
        loss, _ = train_step(model, loss_fn, [batches[v['i'] % len(batches)]], opt, sched, None, cfg.grad_clip, device,
                             cfg.precision, step=v['i'], params=params)
        v['losses'].append(loss)
    v['step'] = step
    return v


def step_memory(v: dict, device) -> tuple[int, int]:
    "A variant's (peak bytes one step allocates above what was live, bytes that live across steps)."
    peak = cuda_step_peak(v['step'], device) if device.type == 'cuda' else cpu_step_peak(v['step'])
    return peak, static_bytes(v['model'], v['opt'])


def bench_size(label, size, names, device, tok, data_path, reps, steps, warmup, build=make_variant, memory=step_memory,
               clocks=(time.perf_counter, time.process_time)) -> dict:
    """Interleaved timing of every variant at one size, then each one's step memory. `build` makes a variant (as
    `make_variant`), `memory(variant, device)` measures it (as `step_memory`), `clocks` are the (wall, CPU) clocks."""
    wall_clock, cpu_clock = clocks
    runs = {n: build(n, size, tok, data_path, device) for n in names}
    for r in runs.values():
        for _ in range(warmup): r['step']()
    bl.sync(device)
    wall, cpu = {n: [] for n in names}, {n: [] for n in names}
    for rep in range(reps):
        for n in names[rep % len(names):] + names[:rep % len(names)]:       # no variant always runs first
            bl.sync(device); t0, c0 = wall_clock(), cpu_clock()
            for _ in range(steps): runs[n]['step']()
            bl.sync(device); wall[n].append(wall_clock() - t0); cpu[n].append(cpu_clock() - c0)
    tokens = steps * size['batch_size'] * size['context_length']
    tps = {n: [tokens / t for t in wall[n]] for n in names}
    out = {'label': label, 'size': size, 'tokens_per_rep': tokens, 'reps': reps, 'steps_per_rep': steps, 'warmup_steps': warmup,
           'params': {n: runs[n]['params'] for n in names}, 'seconds_per_rep': wall, 'tokens_per_s_per_rep': tps,
           'median_tokens_per_s': {n: statistics.median(tps[n]) for n in names},
           'vs_ar': {n: bl.paired_ratios(tps[n], tps['ar']) for n in names},
           'final_loss': {n: runs[n]['losses'][-1] for n in names}}
    if device.type == 'cpu':
        cps = {n: [tokens / t for t in cpu[n]] for n in names}
        out.update(cpu_seconds_per_rep=cpu, tokens_per_cpu_s_per_rep=cps, vs_ar_cpu_time={n: bl.paired_ratios(cps[n], cps['ar']) for n in names})
    mem = {}
    for n in names:
        peak, st = memory(runs[n], device)
        mem[n] = {'step_peak_bytes': peak, 'static_bytes': st, 'peak_bytes': peak + st}
    out['memory'] = mem
    out['memory_how'] = 'cuda max_memory_allocated delta' if device.type == 'cuda' else 'torch profiler CPU allocation events'
    out['memory_vs_ar'] = {n: mem[n]['peak_bytes'] / mem['ar']['peak_bytes'] for n in names}
    return out


def target(sizes: list[dict]) -> dict:
    "SEDD without time conditioning at >= 0.95x AR (paired ratio; CPU time on the CPU), per size."
    name, lo = TARGET
    per = {}
    for s in sizes:
        if name not in s['params']: continue
        r = (s.get('vs_ar_cpu_time') or s['vs_ar'])[name]['paired_ratio']
        per[s['label']] = {'paired_ratio': r, 'holds': r >= lo}
    return {'variant': name, 'at_least': lo, 'sizes': per, 'holds': all(v['holds'] for v in per.values()) if per else None}


def markdown(res) -> str:
    s0 = res['sizes'][0]
    cpu = 'vs_ar_cpu_time' in s0
    rows = []
    for s in res['sizes']:
        for n in s['params']:
            m, v = s['memory'][n], s['vs_ar'][n]
            row = [s['label'], n, f"{s['params'][n] / 1e6:.2f} M", f"{s['median_tokens_per_s'][n]:,.0f}",
                   bl.fmt(v['paired_ratio'], 2), bl.fmt(v['ratio'], 2)]
            if cpu: row.append(bl.fmt(s['vs_ar_cpu_time'][n]['paired_ratio'], 2))
            rows.append(row + [bl.fmt_bytes(m['peak_bytes']), bl.fmt_bytes(m['step_peak_bytes']), bl.fmt(s['memory_vs_ar'][n], 2)])
    head = ['size', 'variant', 'params', 'tokens/s (median)', 'vs AR (paired)', 'vs AR (medians)']
    head += ['vs AR (CPU time, paired)'] if cpu else []
    head += ['peak memory', 'of which the step', 'memory vs AR']
    t = res['target']
    verdict = 'n/a' if t['holds'] is None else ('**holds**' if t['holds'] else '**fails**')
    return ('### Training throughput relative to AR, and peak memory\n\n' + bl.md_table(head, rows) +
            f"\n\nTarget: `{t['variant']}` (SEDD without time conditioning, RADD) at >= {t['at_least']}x AR's training "
            f"tokens/s: {verdict} (" + ', '.join(f"{k}: {v['paired_ratio']:.2f}x" for k, v in t['sizes'].items()) +
            (', CPU-time ratios' if cpu else '') + ').\n\n'
            f"Median of {s0['reps']} interleaved repetitions of {s0['steps_per_rep']} training steps (the trainer's `train_step`: "
            f"forward + backward + clip + AdamW + schedule) after {s0['warmup_steps']} warm-up steps, every variant in one "
            "process; 'paired' is the median over repetitions of the ratio to AR in the same repetition. Tokens are training "
            "characters (batch x context): block diffusion reads each sequence twice. Peak memory = parameters + buffers + "
            f"optimizer state + the step's own peak ({s0['memory_how']}). `sedd-*` with cond_dim 128 carry adaLN time "
            "conditioning; `-radd` has none (cond_dim 0).")


def main(argv=None):
    ap = bl.common_args(argparse.ArgumentParser(description=__doc__.split('\n')[0]), default_threads=1)
    ap.add_argument('--full', action='store_true', help='the full run (the default; for run_all.sh)')
    ap.add_argument('--sizes', nargs='*', default=None, help=f'labels from {list({**CPU_SIZES, **GPU_SIZES, **QUICK_SIZES})}')
    ap.add_argument('--variants', nargs='*', default=list(VARIANTS), help=f'of {list(VARIANTS)} (ar is always run)')
    ap.add_argument('--reps', type=int, default=None)
    ap.add_argument('--steps', type=int, default=None, help='steps per repetition')
    ap.add_argument('--warmup', type=int, default=None)
    args = ap.parse_args(argv)
    every = {**CPU_SIZES, **GPU_SIZES, **QUICK_SIZES}
    bad = [s for s in (args.sizes or []) if s not in every] + [v for v in args.variants if v not in VARIANTS]
    if bad: ap.error(f'unknown sizes/variants {bad}; sizes: {list(every)}, variants: {list(VARIANTS)}')
    device = bl.setup(args)
    table = {k: every[k] for k in args.sizes} if args.sizes else (QUICK_SIZES if args.quick else GPU_SIZES if device.type == 'cuda' else CPU_SIZES)
    names = ['ar'] + [v for v in VARIANTS if v in args.variants and v != 'ar']
    reps, steps = args.reps or (2 if args.quick else 5), args.steps or (2 if args.quick else 5)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    data_path = prepare_dataset('shakespeare-char')
    tok = load_tokenizer(data_path)
    res = bl.new_result('train_throughput', args, device)
    res['sizes'] = []
    for label, size in table.items():
        print(f'size {label} ...', flush=True)
        s = bench_size(label, size, names, device, tok, data_path, reps, steps, warmup)
        res['sizes'].append(s)
        print('  ' + ', '.join(f"{n} x{s['vs_ar'][n]['paired_ratio']:.2f}" for n in names), flush=True)
    res['target'] = target(res['sizes'])
    bl.save_result(res, markdown(res), bl.out_dir(args))
    return res


if __name__ == '__main__': main()
