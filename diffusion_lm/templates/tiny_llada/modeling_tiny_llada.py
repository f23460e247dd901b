"""A tiny bidirectional transformer for masked diffusion in the layout of LLaDA's Hugging Face checkpoints
(written by diffusion_lm.pretrained.make_tiny_llada; loaded with trust_remote_code=True)."""
import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import CausalLMOutputWithPast
from .configuration_tiny_llada import TinyLLaDAConfig


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def rotary(L, head_dim, theta, device):
    "cos, sin [L, head_dim] of the rotary embedding (computed on the fly: no buffers to initialise)."
    inv_freq = 1.0 / theta ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim)
    f = torch.outer(torch.arange(L, device=device, dtype=torch.float32), inv_freq)
    emb = torch.cat((f, f), dim=-1)
    return emb.cos(), emb.sin()


class TinyLLaDABlock(nn.Module):
    def __init__(self, config):
        super().__init__()
        d, h = config.d_model, config.mlp_hidden_size
        self.n_heads = config.n_heads
        self.attn_norm = nn.RMSNorm(d, eps=config.rms_norm_eps)
        self.q_proj, self.k_proj, self.v_proj = (nn.Linear(d, d, bias=False) for _ in range(3))
        self.attn_out = nn.Linear(d, d, bias=False)
        self.ff_norm = nn.RMSNorm(d, eps=config.rms_norm_eps)
        self.ff_gate, self.ff_up = nn.Linear(d, h, bias=False), nn.Linear(d, h, bias=False)
        self.ff_out = nn.Linear(h, d, bias=False)

    def forward(self, x, cos, sin, attn_mask=None):
        B, L, D = x.shape
        hd = D // self.n_heads
        h = self.attn_norm(x)
        q, k, v = (p(h).view(B, L, self.n_heads, hd).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        a = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, is_causal=False)   # bidirectional
        x = x + self.attn_out(a.transpose(1, 2).reshape(B, L, D))
        h = self.ff_norm(x)
        return x + self.ff_out(F.silu(self.ff_gate(h)) * self.ff_up(h))


class TinyLLaDAModelLM(PreTrainedModel):
    config_class = TinyLLaDAConfig
    base_model_prefix = "tiny_llada"
    supports_gradient_checkpointing = True
    _no_split_modules = ["TinyLLaDABlock"]

    def __init__(self, config):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.d_model)
        self.blocks = nn.ModuleList(TinyLLaDABlock(config) for _ in range(config.n_layers))
        self.norm = nn.RMSNorm(config.d_model, eps=config.rms_norm_eps)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.gradient_checkpointing = False
        self.post_init()

    def get_input_embeddings(self): return self.embed_tokens
    def set_input_embeddings(self, value): self.embed_tokens = value
    def get_output_embeddings(self): return self.lm_head
    def set_output_embeddings(self, value): self.lm_head = value

    def forward(self, input_ids=None, attention_mask=None, return_dict=None, **kwargs):
        B, L = input_ids.shape
        x = self.embed_tokens(input_ids)
        cos, sin = rotary(L, self.config.d_model // self.config.n_heads, self.config.rope_theta, input_ids.device)
        cos, sin = cos.to(x.dtype), sin.to(x.dtype)
        mask = None if attention_mask is None else attention_mask.bool()[:, None, None, :]   # [B, 1, 1, L]: keys to attend
        for block in self.blocks:
            if self.gradient_checkpointing and self.training:
                x = self._gradient_checkpointing_func(block.__call__, x, cos, sin, mask)
            else:
                x = block(x, cos, sin, mask)
        logits = self.lm_head(self.norm(x))
        return CausalLMOutputWithPast(logits=logits)
