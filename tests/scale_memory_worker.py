"""Worker of tests/test_scale_memory.py: the measured peak memory of FSDP2 training steps on a LLaDA-format model,
under torchrun (gloo, CPU, float32).

    python -m torch.distributed.run --nproc_per_node 2 tests/scale_memory_worker.py MODEL_DIR OUT_DIR

Each rank measures its own peak (diffusion_lm.memory_plan.measure_step_peak) with block checkpointing off and
on, and writes OUT_DIR/memory-<rank>.json.
"""
import json, sys
from pathlib import Path
import torch
import torch.distributed as dist
from transformers import AutoConfig, AutoModel
from diffusion_lm.pretrained import PretrainedDenoiser
from diffusion_lm.masked import sft_loss
from diffusion_lm.scale import shard_model, enable_block_checkpointing
from diffusion_lm.memory_plan import measure_step_peak, shape_from_config

VOCAB, B, L = 4096, 4, 256


def main():
    model_dir, out = sys.argv[1], Path(sys.argv[2])
    torch.set_num_threads(1)
    dist.init_process_group('gloo')
    config = AutoConfig.from_pretrained(model_dir, trust_remote_code=True, local_files_only=True)
    config.vocab_size = VOCAB
    x = torch.randint(0, 100, (B, L), generator=torch.Generator().manual_seed(dist.get_rank()))
    pl = torch.zeros(B, dtype=torch.long)

    def build(ckpt):
        def make():
            torch.manual_seed(0)
            m = PretrainedDenoiser(AutoModel.from_config(config, trust_remote_code=True), config.mask_token_id)
            if ckpt: enable_block_checkpointing(m)
            shard_model(m, mixed_precision='fp32')
            return m.train(), torch.optim.AdamW(m.parameters(), lr=1e-3)
        return make

    def step(m, opt):
        sft_loss(m, x, pl, m.mask_id, t=1.0, subs=False).backward()
        opt.step(); opt.zero_grad(set_to_none=True)

    res = {'shape': shape_from_config(config).__dict__}
    for ckpt in (False, True): res[f'ckpt={ckpt}'] = measure_step_peak(build(ckpt), step)
    (out / f'memory-{dist.get_rank()}.json').write_text(json.dumps(res))
    dist.destroy_process_group()


if __name__ == '__main__': main()
