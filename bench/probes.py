"""Probes: alternatives to the library's own design, measured as ablation rows without being added to the library.
Each probe is a context manager that patches one function of `diffusion_lm` for the length of one run; the ablation
sweep applies it when a variant names it (`VARIANTS[...]['probe']` in `bench/ablations.py`).

- `const-condition`: residual gates as the time-conditioned model has them, with a constant condition: models without
  time input are built with the adaLN-Zero layers (cond_dim of the config) and fed the noise level 0. The same function
  class as the library's learned gate vectors, with more parameters and another optimisation path (each vector is
  W c + b, so Adam moves it by about lr times the size of c per step instead of lr).
- `gate-no-decay`: the learned gate vectors without weight decay (the library decays them like every matrix).
- `gate-lr-10`: the learned gate vectors without weight decay at 10x the learning rate.
- `bias`: every linear layer and LayerNorm with a bias (the official SEDD code has biases in its MLP and output layer).
- `iid-times`: SEDD's training times drawn independently instead of on the low-discrepancy grid (the official code's).
"""
from __future__ import annotations
import contextlib
import torch
from diffusion_lm import methods, model as M, trainer

PROBES = ('const-condition', 'gate-no-decay', 'gate-lr-10', 'bias', 'iid-times')


@contextlib.contextmanager
def _patched(obj, name: str, value):
    old = getattr(obj, name)
    setattr(obj, name, value)
    try: yield
    finally: setattr(obj, name, old)


def _gate_optimizer(lr_mult: float):
    "make_optimizer with the learned gate vectors in their own group: no weight decay, lr x `lr_mult`."
    def make_optimizer(model, lr, weight_decay=0.0, betas=(0.9, 0.999)):
        named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
        gates = [p for n, p in named if n.endswith('modulation') and 'adaLN' not in n]
        decay = [p for n, p in named if p.dim() >= 2 and not any(p is g for g in gates)]
        rest = [p for n, p in named if p.dim() < 2 and not any(p is g for g in gates)]
        return torch.optim.AdamW([{'params': decay, 'weight_decay': weight_decay},
                                  {'params': rest, 'weight_decay': 0.0},
                                  {'params': gates, 'weight_decay': 0.0, 'lr': lr * lr_mult}], lr=lr, betas=tuple(betas))
    return make_optimizer


@contextlib.contextmanager
def applied(probe: str | None, cond_dim: int = 128):
    "Apply `probe` (None: nothing) while the block runs."
    if probe is None: yield; return
    if probe not in PROBES: raise ValueError(f'unknown probe {probe!r}; choose from {PROBES}')
    with contextlib.ExitStack() as st:
        if probe == 'const-condition':
            check = M.DiffusionTransformer._check_sigma
            st.enter_context(_patched(M.DiffusionTransformer, '_check_sigma', lambda self, s, B, d:
                                      torch.zeros(B, device=d) if s is None else check(self, s, B, d)))
            for cls in (methods.Autoregressive, methods.MaskedDiffusion, methods.BlockDiffusion):
                mc = cls.model_config
                st.enter_context(_patched(cls, 'model_config', lambda self, mc=mc, **sz: M.ModelConfig.from_dict(
                    {**mc(self, **sz).to_dict(), 'cond_dim': cond_dim, 'gates': True})))
        elif probe == 'bias':
            for cls in (methods.Autoregressive, methods.MaskedDiffusion, methods.BlockDiffusion, methods.SEDD):
                mc = cls.model_config
                st.enter_context(_patched(cls, 'model_config', lambda self, mc=mc, **sz: M.ModelConfig.from_dict(
                    {**mc(self, **sz).to_dict(), 'bias': True})))
        elif probe == 'iid-times':
            init = methods.SEDD.__init__
            def iid_init(self, *a, **k): init(self, *a, **k); self.low_discrepancy = False
            st.enter_context(_patched(methods.SEDD, '__init__', iid_init))
        else:
            st.enter_context(_patched(trainer, 'make_optimizer', _gate_optimizer(10.0 if probe == 'gate-lr-10' else 1.0)))
        yield
