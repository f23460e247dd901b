"""Worker of tests/test_scale_fsdp.py: FSDP2 training steps and sharded checkpoints on the tiny LLaDA-format model,
run under torchrun (gloo, CPU, fp32) or as one plain process.

    python tests/scale_fsdp_worker.py MODE MODEL_DIR OUT_DIR

train   (2 ranks) one FSDP2 step against one unsharded process on the whole batch (full model and LoRA), the
        exports of both; then 4 steps with a sharded checkpoint after step 2 and the full states after steps 2 and 4
resume  (2 ranks) a fresh model and optimizer load the step-2 checkpoint and train steps 3 and 4
load    (any number of ranks, or one plain process) a fresh model and optimizer load the step-2 checkpoint
Rank 0 writes OUT_DIR/<mode>-<world size>.json with what the test checks.
"""
import json, os, sys
from pathlib import Path
import torch
import torch.distributed as dist
from torch.distributed.checkpoint.state_dict import get_model_state_dict, get_optimizer_state_dict, StateDictOptions
from diffusion_lm.pretrained import load_pretrained
from diffusion_lm.masked import sft_loss
from diffusion_lm.sft_data import encode_example, collate
from diffusion_lm.scale import shard_model, save_sharded, load_sharded, apply_lora, merge_lora, export_pretrained

WORDS = ['cat', 'dog', 'sun', 'sea', 'red', 'ink', 'owl', 'fig']
GLOBAL_BATCH, CHUNKS = 4, 2          # each step: 4 pairs in 2 chunks of 2 (one chunk per rank on 2 ranks)


def data(model):
    "All 8 pairs as one padded batch (one length for every step)."
    convs = [[{'role': 'user', 'content': f'repeat: {w}'}, {'role': 'assistant', 'content': f'{w} {w} {w}'}] for w in WORDS]
    return collate([encode_example(model.tokenizer, c) for c in convs], model.tokenizer.eos_token_id)


def train_step(model, opt, x0, pl, step: int, chunks):
    "One optimizer step on the given chunks of the step's global batch (gradients averaged over chunks and ranks)."
    rows = [(step * GLOBAL_BATCH + i) % len(x0) for i in range(GLOBAL_BATCH)]
    per = GLOBAL_BATCH // CHUNKS
    for c in chunks:
        r = rows[c * per:(c + 1) * per]
        g = torch.Generator().manual_seed(1000 * step + c)                 # the chunk's draws, wherever it runs
        (sft_loss(model, x0[r], pl[r], model.mask_id, generator=g, subs=False) / len(chunks)).backward()
    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
    opt.step(); opt.zero_grad(set_to_none=True)


def adamw(model):
    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2, weight_decay=0.1)


def full_state(model, opt):
    "Full (unsharded) model and optimizer state on every rank, as CPU tensors."
    o = StateDictOptions(full_state_dict=True)
    msd = {k: v.detach().cpu().clone() for k, v in get_model_state_dict(model, options=o).items()}
    osd = get_optimizer_state_dict(model, opt, options=o)
    flat = {f'{p}.{k}': v.detach().cpu().clone() if torch.is_tensor(v) else v
            for p, st in osd['state'].items() for k, v in st.items()}
    return msd, flat


def max_diff(a: dict, b: dict) -> float:
    if sorted(a) != sorted(b): return float('inf')
    return max(float((torch.as_tensor(a[k]).double() - torch.as_tensor(b[k]).double()).abs().max()) for k in a)


def equal(a: dict, b: dict) -> bool:
    return sorted(a) == sorted(b) and all(torch.equal(torch.as_tensor(a[k]), torch.as_tensor(b[k])) for k in a)


def one_step_vs_single(model_dir, out: Path, lora: bool, rank: int) -> dict:
    "One step on the ranks (each its chunk) against an unsharded copy on all chunks; then both exported."
    def make():
        m = load_pretrained(model_dir)
        if not lora: return m
        m = apply_lora(m, rank=4, alpha=8)
        with torch.no_grad():                                             # B != 0, the same in both copies
            for i, p in enumerate(q for q in m.parameters() if q.requires_grad):
                p.copy_(0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(i)))
        return m
    ref, fs = make(), shard_model(make(), mixed_precision='fp32')
    x0, pl = data(ref)
    o_ref, o_fs = adamw(ref), adamw(fs)
    before = {k: v.clone() for k, v in ref.state_dict().items()}
    train_step(ref, o_ref, x0, pl, 0, range(CHUNKS))
    train_step(fs, o_fs, x0, pl, 0, [rank])
    full, after = full_state(fs, o_fs)[0], dict(ref.state_dict())
    tag = 'lora' if lora else 'full'
    export = merge_lora if lora else export_pretrained
    export(fs, out / f'{tag}_sharded'); export(ref, out / f'{tag}_single')  # collective: every rank calls both
    return dict(max_diff=max_diff(full, after), max_update=max_diff(after, before),
                changed=sum(not torch.equal(after[k], before[k]) for k in after), n=len(after),
                trainable=sum(p.requires_grad for p in fs.parameters()))


def main():
    mode, model_dir, out = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    torch.set_num_threads(1)
    world = int(os.environ.get('WORLD_SIZE', 1))
    if world > 1: dist.init_process_group('gloo')
    rank = dist.get_rank() if world > 1 else 0
    res = dict(world=world)
    if mode == 'train':
        res['full'] = one_step_vs_single(model_dir, out, False, rank)
        res['lora'] = one_step_vs_single(model_dir, out, True, rank)
        m = shard_model(load_pretrained(model_dir), mixed_precision='fp32')
        opt, (x0, pl) = adamw(m), data(m)
        for s in range(4):
            train_step(m, opt, x0, pl, s, [rank])
            if s == 1:
                save_sharded(out / 'ckpt', m, opt, step=2, extra={'data_position': 8})
                if rank == 0: torch.save(full_state(m, opt), out / 'full2.pt')
                else: full_state(m, opt)                                  # (a collective: every rank calls it)
        state = full_state(m, opt)
        if rank == 0: torch.save(state, out / 'full4.pt')
    else:
        m = load_pretrained(model_dir)
        if world > 1: shard_model(m, mixed_precision='fp32')
        opt = adamw(m)
        meta = load_sharded(out / 'ckpt', m, opt)
        msd, osd = full_state(m, opt)
        ref_msd, ref_osd = torch.load(out / 'full2.pt')
        res.update(meta=meta, model_equal=equal(msd, ref_msd), optim_equal=equal(osd, ref_osd), n_optim=len(osd))
        if mode == 'resume':
            x0, pl = data(m)
            for s in range(meta['step'], 4): train_step(m, opt, x0, pl, s, [rank])
            msd, osd = full_state(m, opt)
            ref_msd, ref_osd = torch.load(out / 'full4.pt')
            res.update(resumed_model_equal=equal(msd, ref_msd), resumed_optim_equal=equal(osd, ref_osd))
    if rank == 0: (out / f'{mode}-{world}.json').write_text(json.dumps(res))
    if world > 1: dist.destroy_process_group()


if __name__ == '__main__': main()
