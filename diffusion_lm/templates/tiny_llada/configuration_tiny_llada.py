"""Configuration of a tiny LLaDA-style masked-diffusion transformer (written by diffusion_lm.pretrained)."""
from transformers import PretrainedConfig


class TinyLLaDAConfig(PretrainedConfig):
    model_type = "tiny_llada"

    def __init__(self, vocab_size=112, d_model=32, n_layers=2, n_heads=2, mlp_hidden_size=64, max_sequence_length=256,
                 rope_theta=10000.0, rms_norm_eps=1e-5, initializer_range=0.02, mask_token_id=None, **kwargs):
        self.vocab_size, self.d_model, self.n_layers, self.n_heads = vocab_size, d_model, n_layers, n_heads
        self.mlp_hidden_size, self.max_sequence_length, self.rope_theta = mlp_hidden_size, max_sequence_length, rope_theta
        self.rms_norm_eps, self.initializer_range, self.mask_token_id = rms_norm_eps, initializer_range, mask_token_id
        kwargs.setdefault("tie_word_embeddings", False)
        super().__init__(**kwargs)
