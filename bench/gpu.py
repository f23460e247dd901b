"""GPU check: each method's GPU preset trained for a few hundred steps in bf16, with and without torch.compile:
training tokens/s, MFU against the device's dense bf16 peak, and peak memory; optionally one LoRA step and one FSDP2
step of a randomly initialised 8B-shaped LLaDA model, their measured peak memory beside the memory plan's; and one
training step of the released SEDD and MDLM models at their official sizes (`sedd-medium`, `mdlm-owt`: random weights,
batch 8 x 1024, the trainer's train_step with EMA), measured peak beside `memory_plan.released_plan`'s.

    python bench/gpu.py                 # (make gpu-check) about 7 minutes on one GPU; writes bench/results/gpu__<gpu>.*
    python bench/gpu.py --llada-8b      # also the 8B LoRA and FSDP2 steps (about a minute more)
    python bench/gpu.py --quick         # a shorter budget (about 2 minutes)
    python bench/gpu.py --no-released   # without the sedd-medium / mdlm-owt steps (about 20 s)
    python bench/gpu.py --peak-tflops X # the dense bf16 peak when the device is not in the table below

Without a CUDA device it stops at once (before importing torch when /dev/nvidia* is absent) with one line and exit
code 2. Presets: the `*-gpu` entries of `diffusion_lm.trainer.PRESETS`, one per method (those that fine-tune from
another run are skipped); the AR baseline has none and runs the masked preset with method='ar'. Each run is built
by the trainer's `prepare_run` / `build_model` and stepped by its `train_step` (bf16 autocast, clipping, fused AdamW,
schedule); `--budget-s` seconds are shared among the runs (compile time included), at most `--max-steps` each.
Training FLOPs per token (nanoGPT / PaLM): 6 N + 12 n_layer n_embd T, N the weights used once per token in a matrix
product (attention, MLP, output layer; not the embedding, not SEDD's per-sequence time MLP), T the positions
attention reads; block diffusion reads every sequence twice (2L positions), so its FLOPs per training token double.
MFU = FLOPs/token x tokens/s / the device's dense bf16 peak (the table below; data sheets' sparse figures halved).
"""
from __future__ import annotations
import argparse, os, sys, time
from pathlib import Path

NO_CUDA_EXIT = 2


def cuda_device_present() -> bool:
    "Whether an NVIDIA device node exists (checked without importing torch)."
    return any(Path('/dev').glob('nvidia[0-9]*')) or Path('/proc/driver/nvidia/gpus').is_dir()


def no_cuda(why: str):
    print(f'bench/gpu.py: no CUDA GPU here ({why}); nothing measured, nothing written. Run it on a machine with one: make gpu-check',
          file=sys.stderr)
    sys.exit(NO_CUDA_EXIT)


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--quick', action='store_true', help='a shorter budget')
    ap.add_argument('--full', action='store_true', help='the default run (for run_all.sh)')
    ap.add_argument('--budget-s', type=float, default=None, help='seconds for all the preset runs together (default 300; quick 90)')
    ap.add_argument('--max-steps', type=int, default=300, help='at most this many timed steps per run')
    ap.add_argument('--methods', nargs='*', default=['ar', 'masked', 'block', 'sedd'])
    ap.add_argument('--no-compile', action='store_true', help='skip the torch.compile runs')
    ap.add_argument('--peak-tflops', type=float, default=None, help='dense bf16 peak of this device, TFLOP/s (overrides the table)')
    ap.add_argument('--llada-8b', action='store_true', help='also one LoRA and one FSDP2 step of an 8B-shaped LLaDA model')
    ap.add_argument('--llada-context-length', '--llada-seq-len', dest='llada_context_length', type=int, default=512,
                    help='tokens per sequence of the 8B step (--llada-seq-len: its old name)')
    ap.add_argument('--no-released', action='store_true', help='skip the steps of the released sedd-medium and mdlm-owt models')
    ap.add_argument('--out-dir', default=None, help='where JSON/Markdown go (default bench/results; RESULTS.md is rebuilt then)')
    ap.add_argument('--note', default='')
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--device', default='cuda')
    ap.add_argument('--allow-cpu', action='store_true', help='tests only: a tiny run on the CPU (fp32), needs --out-dir')
    args = ap.parse_args(argv)
    if args.allow_cpu and not args.out_dir: ap.error('--allow-cpu is for tests: give --out-dir too (bench/results holds real runs only)')
    return args


# dense bf16 tensor peaks, FLOP/s: (substring of the device name, peak, what); the first match wins
PEAK_BF16 = [
    ('GH200', 989.4e12, 'GH200 (H100 SXM-class)'), ('H200 NVL', 835.0e12, 'H200 NVL'), ('H200', 989.4e12, 'H200 SXM'),
    ('H100 PCIe', 756.0e12, 'H100 PCIe'), ('H100 NVL', 835.0e12, 'H100 NVL'), ('H100', 989.4e12, 'H100 SXM'),
    ('B200', 2250e12, 'B200'), ('A100', 312.0e12, 'A100'), ('L40S', 362.0e12, 'L40S'), ('A10G', None, None),
    ('L4', 121.0e12, 'L4'), ('A10', 125.0e12, 'A10'), ('MI300X', 1307.4e12, 'MI300X'),
]


def peak_bf16(name: str) -> tuple[float | None, str | None]:
    "(dense bf16 peak FLOP/s, which entry) for a device name, (None, None) if unknown."
    for key, peak, what in PEAK_BF16:
        if key.lower() in name.lower() and (key != 'L4' or 'L40' not in name): return peak, what
    return None, None


def matmul_params(model) -> int:
    "Weights used once per token in a matrix product: every block's attention and MLP linears, and the output layer."
    return model.lm_head.weight.numel() + sum(p.numel() for b in model.blocks for m in (b.attn, b.mlp) for p in m.parameters())


def train_flops_per_token(model, length: int, read: int) -> dict:
    "Training FLOPs per training token: (6N + 12 n_layer n_embd T) x T / L, T = positions read for L trained."
    c = model.cfg
    dense, attn = 6 * matmul_params(model) * read / length, 12 * c.n_layer * c.n_embd * read * read / length
    return {'matmul_params': matmul_params(model), 'read_per_token': read / length, 'dense': dense, 'attention': attn,
            'total': dense + attn, 'attention_share': attn / (dense + attn)}


def gpu_presets(methods) -> dict:
    "{method: (label, TrainConfig overrides)}: the first '*-gpu' preset of each method that starts from scratch."
    from diffusion_lm.trainer import PRESETS
    out = {}
    for name, p in PRESETS.items():
        if name.endswith('-gpu') and not p.get('init_from') and p['method'] not in out: out[p['method']] = (name, dict(p))
    if 'ar' not in out and 'masked' in out: out['ar'] = (f"{out['masked'][0]} (method=ar)", {**out['masked'][1], 'method': 'ar'})
    return {m: out[m] for m in methods if m in out}


def run_preset(label, over: dict, compiled: bool, device, seconds: float, max_steps: int, warmup: int, tiny: bool) -> dict:
    "Train one preset for about `seconds` (compile included) with the trainer's pieces: tokens/s, FLOPs, peak memory."
    import torch
    import benchlib as bl
    from diffusion_lm.trainer import TrainConfig, prepare_run, build_model, train_step
    from diffusion_lm.optim import make_optimizer, make_scheduler
    from diffusion_lm.data import RandomBatches
    t_start = time.perf_counter()
    over = {**over, 'out_dir': 'runs/unused', 'init_from': None, 'device': str(device), 'compile': compiled, 'dropout': 0.0,
            'precision': 'bf16' if device.type == 'cuda' else 'fp32'}
    if tiny: over.update(n_layer=1, n_head=2, n_embd=32, context_length=16, batch_size=2, cond_dim=min(over.get('cond_dim', 0), 32))
    run = prepare_run(TrainConfig.from_dict(over), device=device)
    cfg = run.cfg
    torch.manual_seed(0)
    model = build_model(cfg, run.method).to(device).train()
    fwd = torch.compile(model) if compiled else model
    opt = make_optimizer(model, cfg.lr, cfg.weight_decay, (cfg.beta1, cfg.beta2))
    sched = make_scheduler(opt, cfg.warmup_steps, cfg.max_steps, cfg.min_lr / cfg.lr, cfg.lr_schedule)
    loader = RandomBatches.from_prepared(run.data_path, 'train', batch_size=cfg.batch_size, context_length=run.context_length, seed=0)
    batches = [loader.get_batch().to(device) for _ in range(4)]
    loss_fn, params = (lambda m, x: run.method.loss(m, x)), list(model.parameters())
    step = lambda i: train_step(fwd, loss_fn, [batches[i % 4]], opt, sched, None, cfg.grad_clip, device, cfg.precision, step=i, params=params)  # noqa: F821 (deleted below, after the last call)
    t0 = time.perf_counter()
    for i in range(warmup): loss, _ = step(i)
    bl.sync(device); first = time.perf_counter() - t0
    if device.type == 'cuda': torch.cuda.reset_peak_memory_stats(device)
    n, t0, deadline = 0, time.perf_counter(), t_start + seconds
    while n < max_steps and (n < 10 or time.perf_counter() < deadline):
        loss, _ = step(warmup + n); n += 1
        if n % 10 == 0: bl.sync(device)
    bl.sync(device); dt = time.perf_counter() - t0
    tokens = n * cfg.batch_size * run.context_length
    read = run.method.tokens_read(run.context_length)
    fl = train_flops_per_token(model, run.context_length, read)
    out = {'preset': label, 'method': run.method.name, 'compile': compiled, 'config': {k: getattr(cfg, k) for k in (
        'n_layer', 'n_head', 'n_embd', 'context_length', 'batch_size', 'cond_dim', 'block_size', 'graph', 'dataset', 'precision')},
        'length': run.context_length, 'params': sum(p.numel() for p in model.parameters()), 'warmup_steps': warmup,
        'warmup_seconds': first, 'steps': n, 'seconds': dt, 'tokens_per_s': tokens / dt, 'final_loss': loss, 'flops_per_token': fl,
        'achieved_flops': fl['total'] * tokens / dt,
        'peak_bytes': torch.cuda.max_memory_allocated(device) if device.type == 'cuda' else None}
    del model, fwd, opt, batches
    if device.type == 'cuda': torch.cuda.empty_cache()
    return out


# ---------------------------------------------------------------- the 8B-shaped LLaDA model (isolated, defensive)
def llada_8b_steps(device, context_length: int | None = None, lora_rank: int = 8, shape=None,
                   seq_len: int | None = None) -> dict:
    """One LoRA step (bf16 weights) and one FSDP2 step (1 process, bf16 mixed precision) of a randomly initialised
    LLaDA-8B-shaped model (or `shape`) on one sequence of `context_length` tokens (default 512; `seq_len` is the
    keyword's old name) with block checkpointing; each with its measured peak beside diffusion_lm.memory_plan's
    prediction. Every failure is recorded, never raised."""
    from diffusion_lm.config_values import renamed_keyword
    L = renamed_keyword('llada_8b_steps', context_length, seq_len, 'context_length', 'seq_len', required=False) or 512
    out = {'context_length': L, 'batch_size': 1, 'lora_rank': lora_rank}
    try:
        from diffusion_lm.memory_plan import LLADA_8B, finetune_memory
        shape = shape or LLADA_8B
        out['shape'] = dict(shape.__dict__)
    except Exception as e:                                              # the plan module is being reworked
        return {**out, 'error': f'diffusion_lm.memory_plan: {type(e).__name__}: {e}'}
    for mode in ('lora', 'fsdp2'):
        try:
            pred = finetune_memory(shape, mode, L, 1, n_devices=1, precision='bf16', gradient_checkpointing=True,
                                   lora_rank=lora_rank)
            out[mode] = {'predicted_bytes': pred.peak, 'predicted_parts': pred.parts}
            out[mode].update(_llada_step(mode, device, shape, L, lora_rank, pred.peak))
        except Exception as e:
            out.setdefault(mode, {})['error'] = f'{type(e).__name__}: {str(e)[:300]}'
        finally: _free(device)
    return out


# ---------------------------------------------------------------- the released SEDD / MDLM models (isolated, defensive)
RELEASED_CHECK = ('sedd-medium', 'mdlm-owt')


def released_steps(device, names=RELEASED_CHECK, batch_size: int = 8, context_length: int = 1024, configs=None) -> dict:
    """Two training steps of each released model (`diffusion_lm.released.RELEASED_MODELS`) at its official size, randomly
    initialised: the trainer's train_step (bf16 autocast on CUDA, fused AdamW, EMA) on `batch_size` x `context_length`
    tokens, the measured peak beside diffusion_lm.memory_plan.released_plan's prediction. `configs`: {name: (ModelConfig,
    method)} in place of the official ones (tests: small shapes). Every failure is recorded, never raised."""
    out = {'batch_size': batch_size, 'context_length': context_length, 'models': {}}
    for name in names:
        try: out['models'][name] = _released_step(name, device, batch_size, context_length, (configs or {}).get(name))
        except Exception as e: out['models'][name] = {'error': f'{type(e).__name__}: {str(e)[:300]}'}
        finally: _free(device)
    return out


def _released_step(name, device, batch_size, context_length, given) -> dict:
    import torch
    from diffusion_lm.released import released_model_config
    from diffusion_lm.model import DiffusionTransformer
    from diffusion_lm.memory_plan import released_plan
    from diffusion_lm.model_size import memory_estimate
    from diffusion_lm.trainer import train_step
    from diffusion_lm.optim import make_ema
    cfg, method = given or released_model_config(name)
    cuda, L = device.type == 'cuda', context_length
    precision = 'bf16' if cuda else 'fp32'
    predicted = (released_plan(L, batch_size, names=[name])[0]['peak'] if given is None else
                 memory_estimate(cfg, batch_size, method.tokens_read(L), precision, ema=True).total)
    if cuda and predicted > 0.95 * torch.cuda.mem_get_info(device)[0]:
        return {'predicted_bytes': predicted, 'skipped': f'predicted {predicted / 2**30:.1f} GiB > 95% of the free memory'}
    if cuda: torch.cuda.reset_peak_memory_stats(device)
    torch.manual_seed(0)
    model = DiffusionTransformer(cfg).to(device).train()
    opt, ema = _adamw(model.parameters()), make_ema(model, 0.999)
    x = torch.randint(0, method.n_real, (batch_size, L), device=device, generator=torch.Generator(device=device).manual_seed(0))
    seconds = []
    for i in range(2):                                                  # the second step holds the optimizer state too
        if cuda: torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        loss, _ = train_step(model, lambda m, b: method.loss(m, b), [x], opt, None, ema, 1.0, device, precision, step=i)
        if cuda: torch.cuda.synchronize(device)
        seconds.append(time.perf_counter() - t0)
    res = {'method': method.name, 'params': sum(p.numel() for p in model.parameters()), 'predicted_bytes': predicted,
           'seconds': seconds[-1], 'loss': loss, 'measured_bytes': torch.cuda.max_memory_allocated(device) if cuda else None}
    res['measured_over_predicted'] = res['measured_bytes'] / predicted if cuda else None
    del model, opt, ema, x
    return res


def _free(device):
    import gc, torch
    gc.collect()
    if device.type == 'cuda': torch.cuda.empty_cache()


def _llada_model(shape, dtype, device, shard: bool):
    "The model in the shipped LLaDA-format code at `shape`: built on the meta device, (sharded,) materialised, initialised."
    import torch
    from diffusion_lm.templates.tiny_llada.configuration_tiny_llada import TinyLLaDAConfig
    from diffusion_lm.templates.tiny_llada.modeling_tiny_llada import TinyLLaDAModelLM
    from diffusion_lm.scale import enable_block_checkpointing, shard_model
    if shape.kv_heads != shape.heads: raise ValueError('the shipped LLaDA-format code has no grouped key/value heads')
    config = TinyLLaDAConfig(vocab_size=shape.vocab, d_model=shape.hidden, n_layers=shape.layers, n_heads=shape.heads,
                             mlp_hidden_size=shape.mlp, max_sequence_length=4096, mask_token_id=shape.vocab - 1)
    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device('meta'): model = TinyLLaDAModelLM(config)
    finally: torch.set_default_dtype(old)
    enable_block_checkpointing(model)
    if shard: shard_model(model, mixed_precision='bf16')
    model.to_empty(device=device)
    with torch.no_grad():
        for n, p in model.named_parameters(): p.fill_(1.0) if 'norm' in n else p.normal_(0.0, 0.02)
    return model.train(), config


def _adamw(params):
    import torch
    try: return torch.optim.AdamW(params, lr=1e-5, fused=True)
    except (RuntimeError, TypeError): return torch.optim.AdamW(params, lr=1e-5)


def _free_port() -> int:
    "A TCP port that nothing listens on now."
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _llada_step(mode, device, shape, context_length, lora_rank, predicted) -> dict:
    "One training step of `mode` ('lora' or 'fsdp2'): its seconds, loss and (CUDA) measured peak bytes."
    import torch
    import torch.nn.functional as F
    cuda = device.type == 'cuda'
    if cuda and predicted > 0.95 * torch.cuda.mem_get_info(device)[0]:
        return {'skipped': f'predicted {predicted / 2**30:.1f} GiB > 95% of the {torch.cuda.mem_get_info(device)[0] / 2**30:.1f} GiB free'}
    pg = False
    if mode == 'fsdp2':
        import torch.distributed as dist
        if not dist.is_initialized():   # a one-process group on a free port (a fixed one collides with a lingering store)
            port = os.environ.get('MASTER_PORT') or _free_port()
            dist.init_process_group(*(('nccl',) if cuda else ('gloo',)), init_method=f'tcp://127.0.0.1:{port}', rank=0,
                                    world_size=1, **({'device_id': device} if cuda else {}))
            pg = True
    try:
        if cuda: torch.cuda.reset_peak_memory_stats(device)
        model, config = _llada_model(shape, torch.bfloat16 if mode == 'lora' else torch.float32, device, shard=mode == 'fsdp2')
        if mode == 'lora':
            from diffusion_lm.scale import apply_lora
            model = apply_lora(model, rank=lora_rank, alpha=2 * lora_rank)
        trainable = [p for p in model.parameters() if p.requires_grad]
        opt = _adamw(trainable)
        g = torch.Generator(device=device).manual_seed(0)
        x0 = torch.randint(0, config.mask_token_id, (1, context_length), device=device, generator=g)
        xt = torch.full_like(x0, config.mask_token_id)                   # t = 1: every position masked and scored
        if cuda: torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16):
            logits = model(input_ids=xt).logits
        loss = F.cross_entropy(logits.float().flatten(0, 1), x0.flatten())
        loss.backward()
        opt.step(); opt.zero_grad(set_to_none=True)
        if cuda: torch.cuda.synchronize(device)
        res = {'seconds': time.perf_counter() - t0, 'loss': loss.item(), 'trainable': sum(p.numel() for p in trainable),
               'measured_bytes': torch.cuda.max_memory_allocated(device) if cuda else None}
        res['measured_over_predicted'] = res['measured_bytes'] / predicted if cuda else None
        del model, opt, logits, loss
        return res
    finally:
        if pg:
            import torch.distributed as dist
            dist.destroy_process_group()


# ---------------------------------------------------------------- report
def markdown(res) -> str:
    import benchlib as bl
    rows = [[r['preset'], r['method'], 'yes' if r['compile'] else 'no', f"{r['params'] / 1e6:.1f} M",
             f"{r['config']['batch_size']} x {r['length']}", r['steps'], f"{r['tokens_per_s']:,.0f}", bl.fmt(r['achieved_flops'] / 1e12, 1),
             'unknown' if r.get('mfu') is None else f"{100 * r['mfu']:.1f}%", bl.fmt_bytes(r['peak_bytes']), f"{r['warmup_seconds']:.0f}"]
            if 'error' not in r else [r['preset'], r['method'], 'yes' if r['compile'] else 'no', f"error: {r['error']}"] + [''] * 7
            for r in res['runs']]
    peak = res['peak_flops']
    pk = (f"{peak / 1e12:.1f} TFLOP/s dense bf16 ({res['peak_entry']})" if peak else
          'an unknown peak: the device is not in the table (give --peak-tflops)')
    md = [f"### GPU: {res['machine']['gpu'] or 'CPU (test run)'}, {res['precision']}",
          bl.md_table(['preset', 'method', 'compile', 'params', 'batch x length', 'timed steps', 'tokens/s', 'TFLOP/s', 'MFU',
                       'peak memory', 'warm-up s'], rows),
          f"MFU against {pk}. "
          "FLOPs per training token = (6N + 12·n_layer·n_embd·T)·T/L (T positions read for L trained: 2L for block "
          "diffusion). Peak memory: max_memory_allocated over the timed steps. Warm-up: the first steps (compilation "
          f"included). {res['budget_s']:.0f} s shared among the runs, at most {res['max_steps']} timed steps each."]
    if res.get('llada_8b'):
        l8 = res['llada_8b']
        r8 = []
        for mode in ('lora', 'fsdp2'):
            v = l8.get(mode, {})
            r8.append([mode, bl.fmt_bytes(v.get('predicted_bytes')), bl.fmt_bytes(v.get('measured_bytes')),
                       bl.fmt(v.get('measured_over_predicted'), 3), bl.fmt(v.get('seconds'), 2),
                       v.get('error') or v.get('skipped') or 'ok'])
        md.append(f"**LLaDA-8B shape, one step, 1 device, batch 1 x {l8.get('context_length', l8.get('seq_len'))}, block checkpointing** "
                  f"(random weights; LoRA rank {l8['lora_rank']} on bf16 weights; FSDP2 with bf16 mixed precision):\n\n" +
                  (f"error: {l8['error']}" if 'error' in l8 else
                   bl.md_table(['mode', 'predicted peak (memory_plan)', 'measured peak', 'measured / predicted', 'step s', 'status'], r8)))
    if res.get('released'):
        rr = res['released']
        rows = [[n, v.get('method', ''), f"{v['params'] / 1e6:.1f} M" if 'params' in v else '', bl.fmt_bytes(v.get('predicted_bytes')),
                 bl.fmt_bytes(v.get('measured_bytes')), bl.fmt(v.get('measured_over_predicted'), 3), bl.fmt(v.get('seconds'), 2),
                 v.get('error') or v.get('skipped') or 'ok'] for n, v in rr.get('models', {}).items()]
        md.append(f"**Released models at their official sizes, one training step, batch {rr.get('batch_size')} x "
                  f"{rr.get('context_length')}** (random weights; bf16 autocast, fused AdamW, EMA):\n\n" +
                  (f"error: {rr['error']}" if 'error' in rr else
                   bl.md_table(['model', 'method', 'params', 'predicted peak (memory_plan.released_plan)', 'measured peak',
                                'measured / predicted', 'step s', 'status'], rows)))
    return '\n\n'.join(md)


def main(argv=None):
    args = parse_args(argv)
    if not args.allow_cpu and not cuda_device_present(): no_cuda('no /dev/nvidia* device')
    import torch
    if not args.allow_cpu and not torch.cuda.is_available(): no_cuda('torch.cuda.is_available() is False')
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import benchlib as bl
    torch.set_num_threads(max(1, args.threads))
    device = torch.device(args.device if torch.cuda.is_available() and not args.allow_cpu else 'cpu')
    args.quick = bool(args.quick)
    budget = args.budget_s or (90 if args.quick else 300)
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'
    peak, what = (args.peak_tflops * 1e12, 'given with --peak-tflops') if args.peak_tflops else peak_bf16(name) if device.type == 'cuda' else (None, None)
    res = bl.new_result('gpu', args, device)
    presets = gpu_presets(args.methods)
    variants = [(m, c) for m in presets for c in ((False,) if args.no_compile or device.type != 'cuda' else (False, True))]
    res.update(precision='bf16' if device.type == 'cuda' else 'fp32', peak_flops=peak, peak_entry=what, budget_s=budget,
               max_steps=args.max_steps, runs=[])
    t0 = time.perf_counter()
    for i, (m, compiled) in enumerate(variants):
        share = (budget - (time.perf_counter() - t0)) / (len(variants) - i)
        label, over = presets[m]
        if share <= 0:                                                  # compilation ate the budget: stay under it
            res['runs'].append({'preset': label, 'method': m, 'compile': compiled, 'error': 'skipped: the time budget was spent'})
            continue
        print(f"{label}, compile={compiled}: {share:.0f} s ...", flush=True)
        try:
            r = run_preset(label, over, compiled, device, share, args.max_steps if device.type == 'cuda' else 5,
                           3 if not compiled else 5, tiny=device.type != 'cuda')
            r['mfu'] = r['achieved_flops'] / peak if peak else None
            print(f"  {r['tokens_per_s']:,.0f} tokens/s, MFU {bl.fmt(r['mfu'])}, peak {bl.fmt_bytes(r['peak_bytes'])}", flush=True)
        except Exception as e:
            r = {'preset': label, 'method': m, 'compile': compiled, 'error': f'{type(e).__name__}: {str(e)[:300]}'}
            print(f"  error: {r['error']}", flush=True)
        res['runs'].append(r)
    if args.llada_8b:
        res['llada_8b'] = llada_8b_steps(device, args.llada_context_length) if device.type == 'cuda' else {'error': 'needs CUDA'}
    if not args.no_released:
        res['released'] = released_steps(device) if device.type == 'cuda' else {'error': 'needs CUDA'}
    res['seconds'] = time.perf_counter() - t0
    d = Path(args.out_dir) if args.out_dir else bl.RESULTS / ('quick' if args.quick else '')
    d.mkdir(parents=True, exist_ok=True)
    bl.save_result(res, markdown(res), d)
    if not args.out_dir and not args.quick:                         # the GPU section of RESULTS.md
        import collect
        collect.main()
    return res


if __name__ == '__main__': main()
