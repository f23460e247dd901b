"""Training throughput and peak memory of masked diffusion, SEDD (absorbing, uniform) and the same transformer in
causal (autoregressive) mode: same size, same batch, same process, repetitions interleaved.

    python bench/train_throughput.py            # CPU sizes here; adds 768x12 on a GPU
    python bench/train_throughput.py --quick    # tiny, seconds

A step is what `diffusion_lm.trainer.train` does per optimizer step: forward + backward under the trainer's
autocast (bf16 on CUDA, fp32 on CPU), gradient clipping, AdamW (fused on CUDA), LR schedule; no EMA, no logging.
Each repetition runs `--steps` steps of every method in turn (the order rotates), after `--warmup` steps each;
ratios are taken against the AR baseline of the same repetition (paired) and of the medians.
"""
from __future__ import annotations
import argparse, os, statistics, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch
import benchlib as bl
from diffusion_lm.data import RandomBatches

CPU_SIZES = {
    'tiny-2x64-L64-B8': dict(n_layer=2, n_embd=64, n_head=2, seq_len=64, batch_size=8),
    'nanogpt-cpu-4x128-L64-B12': dict(n_layer=4, n_embd=128, n_head=4, seq_len=64, batch_size=12),
    '4x128-L256-B8': dict(n_layer=4, n_embd=128, n_head=4, seq_len=256, batch_size=8),
}
GPU_SIZES = {
    'nanogpt-cpu-4x128-L64-B12': CPU_SIZES['nanogpt-cpu-4x128-L64-B12'],
    'gpt2s-12x768-L1024-B8': dict(n_layer=12, n_embd=768, n_head=12, seq_len=1024, batch_size=8),
}
QUICK_SIZES = {'quick-1x32-L16-B2': dict(n_layer=1, n_embd=32, n_head=2, seq_len=16, batch_size=2)}


def static_bytes(model, opt) -> int:
    "Bytes of the tensors that live across steps: parameters, buffers, optimizer state (gradients are freed each step)."
    seen, total = set(), 0
    tensors = [*model.parameters(), *model.buffers()] + [v for st in opt.state.values() for v in st.values() if torch.is_tensor(v)]
    for t in tensors:
        s = t.untyped_storage()
        if s.data_ptr() not in seen: seen.add(s.data_ptr()); total += s.nbytes()
    return total


def cpu_step_peak(step) -> int:
    """Peak of CPU tensor memory allocated during one `step()` above what was live before it, from the torch
    profiler's memory events (every allocation and free of the CPU allocator, in time order)."""
    from torch.profiler import profile, ProfilerActivity
    os.environ.setdefault('KINETO_LOG_LEVEL', '99')                  # silence kineto's start/stop lines on stderr
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof: step()
    events = sorted((e for e in prof.profiler.kineto_results.events() if e.name() == '[memory]'), key=lambda e: e.start_ns())
    cur = peak = 0
    for e in events:
        cur += e.nbytes(); peak = max(peak, cur)
    return peak


def cuda_step_peak(step, device) -> int:
    "Peak of CUDA memory allocated during one `step()` above what was allocated before it (max_memory_allocated)."
    torch.cuda.synchronize(device); torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    step(); torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) - before


def bench_size(label, size, device, tok, data_path, reps, steps, warmup, cond_dim):
    B, L = size['batch_size'], size['seq_len']
    cfg = bl.train_config(n_layer=size['n_layer'], n_embd=size['n_embd'], n_head=size['n_head'], sequence_length=L,
                          batch_size=B, cond_dim=cond_dim, dropout=0.0, precision='auto', warmup_steps=10, max_steps=10**6)
    loader = RandomBatches.from_prepared(data_path, 'train', batch_size=B, seq_len=L, seed=0)
    batches = [loader.get_batch().to(device) for _ in range(4)]
    runs = {}
    for name in bl.METHODS:
        method = bl.make_bench_method(name, tok)
        model = bl.bench_model(name, method, cfg, tok).to(device).train()
        opt = bl.make_optimizer(model, cfg)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: bl.lr_factor(s, cfg))
        it = {'i': 0}
        def step(model=model, method=method, opt=opt, sched=sched, it=it):
            it['i'] += 1
            return bl.train_step(model, method, opt, sched, batches[it['i'] % len(batches)], device, cfg)
        runs[name] = dict(model=model, step=step, opt=opt, params=bl.num_params(model), losses=[])
    for name, r in runs.items():                                     # warm up every method before any timing
        for _ in range(warmup): r['losses'].append(r['step']())
    bl.sync(device)
    times, cpu_times = {n: [] for n in runs}, {n: [] for n in runs}
    names = list(runs)
    for rep in range(reps):
        order = names[rep % len(names):] + names[:rep % len(names)]   # rotate so no method always runs first
        for n in order:
            bl.sync(device); t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(steps): runs[n]['losses'].append(runs[n]['step']())
            bl.sync(device); times[n].append(time.perf_counter() - t0); cpu_times[n].append(time.process_time() - c0)
    tokens = steps * B * L
    tps = {n: [tokens / t for t in times[n]] for n in names}
    med = {n: statistics.median(tps[n]) for n in names}
    out = {'label': label, 'size': size, 'cond_dim_sedd': cond_dim, 'tokens_per_rep': tokens, 'reps': reps,
           'steps_per_rep': steps, 'warmup_steps': warmup, 'order': 'rotated each repetition',
           'params': {n: runs[n]['params'] for n in names}, 'seconds_per_rep': times, 'tokens_per_s_per_rep': tps,
           'median_tokens_per_s': med,
           'ratio_vs_ar': {n: med[n] / med['ar'] for n in names},
           'paired_ratio_vs_ar': {n: statistics.median(a / b for a, b in zip(tps[n], tps['ar'])) for n in names},
           'final_loss': {n: runs[n]['losses'][-1] for n in names}}
    if device.type == 'cpu':   # CPU time of this process: less sensitive than wall time to other jobs on shared cores
        cps = {n: [tokens / t for t in cpu_times[n]] for n in names}
        cmed = {n: statistics.median(cps[n]) for n in names}
        out.update(cpu_seconds_per_rep=cpu_times, tokens_per_cpu_s_per_rep=cps, median_tokens_per_cpu_s=cmed,
                   cpu_time_ratio_vs_ar={n: cmed[n] / cmed['ar'] for n in names})
    mem = {}
    for n in names:                                                   # memory after timing, never during it
        how = 'cuda max_memory_allocated delta' if device.type == 'cuda' else 'torch profiler CPU allocation events'
        peak = cuda_step_peak(runs[n]['step'], device) if device.type == 'cuda' else cpu_step_peak(runs[n]['step'])
        st = static_bytes(runs[n]['model'], runs[n]['opt'])
        mem[n] = {'step_peak_bytes': peak, 'static_bytes': st, 'peak_bytes': peak + st, 'how': how}
    out['memory'] = mem
    out['memory_ratio_vs_ar'] = {n: mem[n]['peak_bytes'] / mem['ar']['peak_bytes'] for n in names}
    for r in runs.values(): del r['model'], r['opt'], r['step']
    if device.type == 'cuda': torch.cuda.empty_cache()
    return out


def markdown(res) -> str:
    cpu = 'median_tokens_per_cpu_s' in res['sizes'][0]
    rows = []
    for s in res['sizes']:
        for n in bl.METHODS:
            m = s['memory'][n]
            row = [s['label'], n, f"{s['params'][n] / 1e6:.2f} M", f"{s['median_tokens_per_s'][n]:,.0f}",
                   f"{min(s['tokens_per_s_per_rep'][n]):,.0f}–{max(s['tokens_per_s_per_rep'][n]):,.0f}",
                   bl.fmt(s['ratio_vs_ar'][n], 2), bl.fmt(s['paired_ratio_vs_ar'][n], 2)]
            if cpu: row += [f"{s['median_tokens_per_cpu_s'][n]:,.0f}", bl.fmt(s['cpu_time_ratio_vs_ar'][n], 2)]
            rows.append(row + [bl.fmt_bytes(m['peak_bytes']), bl.fmt_bytes(m['step_peak_bytes']), bl.fmt(s['memory_ratio_vs_ar'][n], 2)])
    s0 = res['sizes'][0]
    head = ['size', 'method', 'params', 'tokens/s (median)', 'range', 'vs AR', 'vs AR (paired)']
    head += ['tokens/CPU-s', 'vs AR (CPU time)'] if cpu else []
    head += ['peak memory', 'of which step', 'memory vs AR']
    return ('### Training throughput and peak memory\n\n' + bl.md_table(head, rows) +
            f"\n\nTokens/s: median of {s0['reps']} interleaved repetitions of {s0['steps_per_rep']} full training steps "
            f"(forward + backward + clip + AdamW) after {s0['warmup_steps']} warm-up steps, all methods in one process; "
            "'vs AR' divides medians, 'paired' is the median of per-repetition ratios"
            + ("; tokens/CPU-s divides by this process's CPU time instead of wall time (steadier when other jobs share the "
               "cores)" if cpu else '') +
            f". Peak memory = parameters + buffers + optimizer state + the step's peak ({s0['memory']['ar']['how']}). "
            f"SEDD models carry adaLN time conditioning (cond_dim {s0['cond_dim_sedd']}), hence more parameters.")


def main(argv=None):
    ap = bl.common_args(argparse.ArgumentParser(description=__doc__.split('\n')[0]))
    ap.add_argument('--sizes', nargs='*', default=None, help=f'labels from {list(CPU_SIZES) + list(GPU_SIZES)}')
    ap.add_argument('--reps', type=int, default=None)
    ap.add_argument('--steps', type=int, default=None, help='steps per repetition')
    ap.add_argument('--warmup', type=int, default=None)
    ap.add_argument('--cond-dim', type=int, default=128, help='SEDD time-conditioning width')
    args = ap.parse_args(argv)
    device = bl.setup(args)
    table = QUICK_SIZES if args.quick else (GPU_SIZES if device.type == 'cuda' else CPU_SIZES)
    if args.sizes: table = {k: {**CPU_SIZES, **GPU_SIZES, **QUICK_SIZES}[k] for k in args.sizes}
    reps = args.reps or (2 if args.quick else 5)
    steps = args.steps or (2 if args.quick else 5)
    warmup = args.warmup if args.warmup is not None else (1 if args.quick else 3)
    data_path, tok = bl.shakespeare()
    res = bl.new_result('train_throughput', args, device)
    res['sizes'] = []
    for label, size in table.items():
        print(f'size {label} ...', flush=True)
        res['sizes'].append(bench_size(label, size, device, tok, data_path, reps, steps, warmup, args.cond_dim))
        s = res['sizes'][-1]
        print('  ' + ', '.join(f"{n} {s['median_tokens_per_s'][n]:,.0f} tok/s (x{s['ratio_vs_ar'][n]:.2f})" for n in bl.METHODS), flush=True)
    bl.save_result(res, markdown(res), bl.out_dir(args))
    return res


if __name__ == '__main__': main()
