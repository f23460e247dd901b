"""GPU benchmark: training tokens per second, model FLOPs utilisation (MFU) in bf16 and peak memory of the
768-wide, 12-layer configuration, for masked diffusion, SEDD (absorbing, uniform) and the causal AR baseline.

    python bench/gpu.py                  # on a CUDA machine; without CUDA it says so and writes nothing
    python bench/gpu.py --quick          # a short run (fewer repetitions), still 768 x 12 on CUDA
    python bench/gpu.py --peak-tflops X  # when the GPU is not in the table below

Training FLOPs per token (forward + backward = 3 x forward), as in nanoGPT / PaLM:
    6 N + 12 n_layer n_embd L
N counts the weights used once per token in a matrix product (attention q/k/v/output, MLP, output head), not the
embedding lookup and not the per-sequence adaLN / time MLP of SEDD; the second term is attention's QK^T and AV
over all L positions (the causal AR model's fused kernel skips about half of them, so its MFU is flattering by
that much of the attention share, reported as `attention_share`). MFU = FLOPs/token x tokens/s / peak, with the
GPU's dense (no sparsity) bf16 tensor peak looked up by device name. The step is train_throughput.py's.
"""
from __future__ import annotations
import argparse, sys
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch
import benchlib as bl
from train_throughput import bench_size
from diffusion_lm.model_size import memory_estimate

# dense bf16 tensor-core peaks from the vendors' data sheets (the "with sparsity" figures halved), FLOP/s
PEAK_BF16 = [  # (test on the device name, peak, what it is); first match wins
    (lambda n: 'GH200' in n, 989.4e12, 'GH200 (H100 SXM-class Hopper)'),
    (lambda n: 'H200' in n, 989.4e12, 'H200 SXM'),
    (lambda n: 'H100' in n and 'PCIE' in n.upper(), 756.0e12, 'H100 PCIe'),
    (lambda n: 'H100' in n and 'NVL' in n, 835.0e12, 'H100 NVL'),
    (lambda n: 'H100' in n, 989.4e12, 'H100 SXM'),
    (lambda n: 'A100' in n, 312.0e12, 'A100'),
    (lambda n: 'L40S' in n, 362.0e12, 'L40S'),
    (lambda n: n.strip().endswith(' L4') or n.strip() == 'L4', 121.0e12, 'L4'),
    (lambda n: 'A10' in n and 'A100' not in n and 'A10G' not in n, 125.0e12, 'A10'),
]
SIZE = {'gpt2s-12x768-L1024-B16': dict(n_layer=12, n_embd=768, n_head=12, seq_len=1024, batch_size=16)}
CPU_SMOKE = {'cpu-smoke-1x32-L16-B2': dict(n_layer=1, n_embd=32, n_head=2, seq_len=16, batch_size=2)}


def peak_bf16(name: str) -> tuple[float | None, str | None]:
    "(dense bf16 peak FLOP/s, which entry) for a CUDA device name, or (None, None) if unknown."
    for test, peak, what in PEAK_BF16:
        if test(name): return peak, what
    return None, None


def matmul_params(model) -> int:
    "Weights used once per token in a matrix product: attention and MLP linears of every block, and the output head."
    n = model.lm_head.weight.numel()
    for b in model.blocks:
        n += sum(p.numel() for m in (b.attn, b.mlp) for p in m.parameters())
    return n


def train_flops_per_token(model, seq_len: int) -> dict:
    "6 N + 12 n_layer n_embd L, with its two parts."
    cfg = model.cfg
    dense, attn = 6 * matmul_params(model), 12 * cfg.n_layer * cfg.n_embd * seq_len
    return {'matmul_params': matmul_params(model), 'dense': dense, 'attention': attn, 'total': dense + attn,
            'attention_share': attn / (dense + attn)}


def main(argv=None):
    ap = bl.common_args(argparse.ArgumentParser(description=__doc__.split('\n')[0]))
    ap.add_argument('--peak-tflops', type=float, default=None, help='dense bf16 peak of this GPU, TFLOP/s (overrides the table)')
    ap.add_argument('--batch-size', type=int, default=None)
    ap.add_argument('--allow-cpu', action='store_true', help='for tests only: run a tiny size on the CPU (fp32, labelled as CPU)')
    args = ap.parse_args(argv)
    if args.allow_cpu and not args.out_dir: ap.error('--allow-cpu is for tests: give --out-dir too (bench/results holds real runs only)')
    if not torch.cuda.is_available() and not args.allow_cpu:
        print('bench/gpu.py: no CUDA device here (torch.cuda.is_available() is False); nothing measured, nothing written. '
              'Run it on a GPU machine: python bench/gpu.py')
        return None
    device = bl.setup(args) if torch.cuda.is_available() else torch.device('cpu')
    if device.type != 'cuda': torch.set_num_threads(max(1, min(args.threads, 2)))
    sizes = dict(SIZE if device.type == 'cuda' else CPU_SMOKE)
    label, size = next(iter(sizes.items()))
    if args.batch_size: size = {**size, 'batch_size': args.batch_size}
    reps, steps, warmup = (3, 5, 3) if args.quick else (5, 10, 5)
    if device.type != 'cuda': reps, steps, warmup = 2, 2, 1
    data_path, tok = bl.shakespeare()
    name = torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'
    peak, what = (args.peak_tflops * 1e12, 'given with --peak-tflops') if args.peak_tflops else (peak_bf16(name) if device.type == 'cuda' else (None, None))
    res = bl.new_result('gpu', args, device)
    print(f'{label} on {name} ...', flush=True)
    s = bench_size(label, size, device, tok, data_path, reps, steps, warmup, cond_dim=128)
    precision = 'bf16' if device.type == 'cuda' else 'fp32'
    rows = {}
    for n in bl.METHODS:
        method = bl.make_bench_method(n, tok)
        cfg = bl.train_config(n_layer=size['n_layer'], n_embd=size['n_embd'], n_head=size['n_head'], sequence_length=size['seq_len'],
                              cond_dim=128)
        model = bl.bench_model(n, method, cfg, tok)                   # on the CPU: only its shapes are used
        fl = train_flops_per_token(model, size['seq_len'])
        tps = s['median_tokens_per_s'][n]
        est = memory_estimate(model.cfg, size['batch_size'], size['seq_len'], precision=precision, ema=False).total
        rows[n] = {'flops_per_token': fl, 'tokens_per_s': tps, 'achieved_tflops': fl['total'] * tps / 1e12,
                   'mfu': fl['total'] * tps / peak if peak else None, 'peak_bytes': s['memory'][n]['peak_bytes'],
                   'estimated_bytes': est}
    res.update(size=label, config=size, precision=precision, peak_flops=peak, peak_entry=what, throughput=s, methods=rows)
    t = bl.md_table(['method', 'tokens/s', 'vs AR', 'TFLOP/s', 'MFU', 'peak memory', 'model_size estimate'],
                    [[n, f"{r['tokens_per_s']:,.0f}", bl.fmt(s['ratio_vs_ar'][n], 2), bl.fmt(r['achieved_tflops'], 1),
                      'n/a' if r['mfu'] is None else f"{100 * r['mfu']:.1f}%", bl.fmt_bytes(r['peak_bytes']),
                      bl.fmt_bytes(r['estimated_bytes'])] for n, r in rows.items()])
    md = (f"### GPU: {label}, {precision}\n\n{t}\n\nPeak used for MFU: "
          f"{'unknown for this device (pass --peak-tflops)' if not peak else f'{peak / 1e12:.1f} TFLOP/s dense bf16 ({what})'}. "
          f"FLOPs/token = 6N + 12·n_layer·n_embd·L = {rows['ar']['flops_per_token']['total'] / 1e9:.2f} GFLOP for AR "
          f"(attention share {100 * rows['ar']['flops_per_token']['attention_share']:.0f}%). Peak memory: max_memory_allocated "
          "delta of a step + parameters, optimizer state; estimate: diffusion_lm.model_size.memory_estimate (no EMA).")
    bl.save_result(res, md, bl.out_dir(args))
    return res


if __name__ == '__main__': main()
