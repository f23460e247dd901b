"""Shared pieces of the benchmarks: the machine record, result files, the autoregressive baseline as a `Method`,
the four methods under comparison, and one small training loop built from `diffusion_lm.trainer`'s parts."""
from __future__ import annotations
import dataclasses, datetime, json, math, os, platform, re, subprocess, sys, time, uuid
from pathlib import Path
import torch
from diffusion_lm.constraints import Constraint, sample_categorical
from diffusion_lm.methods import Method, MaskedDiffusion, SEDD
from diffusion_lm.model import ModelConfig, DiffusionTransformer, num_params
from diffusion_lm import model_size
from diffusion_lm.data import prepare_dataset, load_tokenizer, open_split, RandomBatches, eval_batches
from diffusion_lm.trainer import (TrainConfig, build_model, make_optimizer, lr_factor, forward_backward, autocast_context,
                                  resolve_device)

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / 'results'
RUNS = ROOT / 'runs' / 'bench'
METHODS = ('ar', 'masked', 'sedd-absorbing', 'sedd-uniform')   # 'ar' first: the baseline every ratio divides by
LN2 = math.log(2)


# ---------------------------------------------------------------- the machine and the result files
def cpu_model() -> str:
    "The CPU's model name from /proc/cpuinfo (Linux), else platform.processor()."
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.lower().startswith('model name'): return line.split(':', 1)[1].strip()
    except OSError: pass
    return platform.processor() or platform.machine()


def machine_kind(device: torch.device | None = None) -> str:
    "The machine kind a RESULTS.md section is about: the GPU's name on CUDA, else 'CPU, N cores'."
    if device is not None and device.type == 'cuda': return torch.cuda.get_device_name(device)
    return f'CPU, {os.cpu_count()} cores'


def slug(s: str) -> str: return re.sub(r'[^a-z0-9]+', '-', s.lower()).strip('-')


def git_state() -> dict:
    "The commit and whether the tree had changes (the benchmarked code is the working tree)."
    try:
        head = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = bool(subprocess.run(['git', 'status', '--porcelain'], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip())
        return {'commit': head or None, 'dirty': dirty}
    except (OSError, subprocess.SubprocessError): return {'commit': None, 'dirty': None}


def machine_info(device: torch.device) -> dict:
    "What ran the benchmark: CPU, threads, torch, GPU (or none), date, load average."
    gpu = torch.cuda.get_device_name(device) if device.type == 'cuda' else None
    kind = machine_kind(device)
    return {'kind': kind, 'kind_slug': slug(kind), 'cpu': cpu_model(), 'logical_cpus': os.cpu_count(),
            'torch_threads': torch.get_num_threads(), 'torch': torch.__version__, 'cuda': torch.version.cuda if gpu else None,
            'gpu': gpu, 'device': str(device), 'python': platform.python_version(), 'platform': platform.platform(),
            'date': datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds'),
            'loadavg_start': list(os.getloadavg()), **git_state()}


def setup(args) -> torch.device:
    "Threads and device from the common command-line options."
    torch.set_num_threads(max(1, min(args.threads, os.cpu_count() or 1)))
    return resolve_device(args.device)


def common_args(ap, default_threads: int = 2):
    ap.add_argument('--quick', action='store_true', help='tiny sizes, seconds: for tests and smoke runs')
    ap.add_argument('--out-dir', default=None, help='where JSON/Markdown go (default bench/results, or bench/results/quick with --quick)')
    ap.add_argument('--threads', type=int, default=default_threads, help='torch CPU threads')
    ap.add_argument('--device', default='auto', help="'auto' (CUDA if available), 'cpu' or 'cuda'")
    ap.add_argument('--note', default='', help='a remark stored with the result (e.g. "cores shared with other jobs")')
    return ap


def out_dir(args) -> Path:
    d = Path(args.out_dir) if args.out_dir else (RESULTS / 'quick' if args.quick else RESULTS)
    d.mkdir(parents=True, exist_ok=True)
    return d


def new_result(name: str, args, device) -> dict:
    "The common head of every result: benchmark name, run id (one process = one run), machine, options."
    return {'benchmark': name, 'run_id': uuid.uuid4().hex, 'pid': os.getpid(), 'quick': bool(args.quick),
            'note': args.note, 'argv': sys.argv[1:], 'machine': machine_info(device)}


def save_result(res: dict, markdown: str, directory: Path) -> tuple[Path, Path]:
    "Write `<benchmark>__<machine>.json` and `.md` (the Markdown starts with the machine line)."
    res['machine']['loadavg_end'] = list(os.getloadavg())
    stem = f"{res['benchmark']}__{res['machine']['kind_slug']}"
    jp, mp = directory / f'{stem}.json', directory / f'{stem}.md'
    jp.write_text(json.dumps(res, indent=1, default=_jsonable) + '\n')
    mp.write_text(machine_line(res) + '\n\n' + markdown.strip() + '\n')
    print(f'wrote {jp}\nwrote {mp}')
    return jp, mp


def _jsonable(o):
    if isinstance(o, torch.Tensor): return o.tolist()
    if isinstance(o, Path): return str(o)
    raise TypeError(f'not JSON serialisable: {type(o).__name__}')


def machine_line(res: dict) -> str:
    m = res['machine']
    gpu = m['gpu'] or 'no GPU'
    load = f"load average {m['loadavg_start'][0]:.2f} at start, {m.get('loadavg_end', [float('nan')])[0]:.2f} at end"
    s = (f"*{res['benchmark']}* on {m['cpu']} ({m['logical_cpus']} logical CPUs, {m['torch_threads']} torch threads), {gpu}, "
         f"torch {m['torch']}, {m['date']}, commit {m['commit']}{' (+changes)' if m['dirty'] else ''}; {load}"
         f"{'; QUICK mode (tiny sizes, not a measurement)' if res['quick'] else ''}")
    return s + (f"; note: {res['note']}" if res.get('note') else '')


def md_table(headers: list[str], rows: list[list]) -> str:
    "A Markdown table; floats as given (format them before)."
    out = ['| ' + ' | '.join(headers) + ' |', '|' + '|'.join('---' for _ in headers) + '|']
    out += ['| ' + ' | '.join(str(c) for c in r) + ' |' for r in rows]
    return '\n'.join(out)


def fmt(x, nd=3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)): return 'n/a'
    return f'{x:.{nd}f}'


def fmt_bytes(n) -> str:
    "`diffusion_lm.model_size.fmt_bytes`, with 'n/a' for a figure that was not measured."
    return 'n/a' if n is None else model_size.fmt_bytes(n)


def sync(device):
    if device.type == 'cuda': torch.cuda.synchronize(device)


# ---------------------------------------------------------------- the autoregressive baseline
class Autoregressive(Method):
    """The same transformer in causal mode, trained on next-token prediction: the baseline.

    A sequence x [B, L] is read as BOS + x[:, :-1] and every position predicts the next token, so the L tokens of
    the window are all scored (the first one with no context, as in the diffusion bounds): `nll_bound` is the
    exact negative log-likelihood of the window, in the same unit as the diffusion methods' bounds."""
    name = 'ar'
    mask_id = None

    def __init__(self, vocab_size: int, bos_id: int):
        if not 0 <= bos_id < vocab_size: raise ValueError(f'bos_id {bos_id} must be a token of the vocabulary (0..{vocab_size - 1})')
        self.vocab_size, self.bos_id = vocab_size, bos_id

    def model_config(self, **sizes) -> ModelConfig:
        return ModelConfig(vocab_size=self.vocab_size, **{**sizes, 'cond_dim': 0, 'causal': True})

    def _inputs(self, x0):
        return torch.cat([torch.full_like(x0[:, :1], self.bos_id), x0[:, :-1]], 1)   # [B, L]: BOS + x0 shifted right

    def token_nll(self, model, x0):
        "-log p(x0^i | BOS, x0^<i) for every position, [B, L]."
        logp = model(self._inputs(x0)).float().log_softmax(-1)                      # [B, L, V]
        return -logp.gather(-1, x0[..., None])[..., 0]

    def loss(self, model, x0, generator=None): return self.token_nll(model, x0).mean()
    def nll_bound(self, model, x0, generator=None): return self.token_nll(model, x0).sum(1)

    @torch.no_grad()
    def sample(self, model, batch_size, length, steps=None, sampler=None, generator=None, device=None,
               constraint: Constraint | None = None, hook=None, temperature: float = 1.0, **kw):
        "Ancestral sampling, one network call per token (no KV cache: each call re-reads the prefix)."
        device = device or next(model.parameters()).device
        x = torch.full((batch_size, 1), self.bos_id, dtype=torch.long, device=device)
        for i in range(length):
            logits = model(x)[:, -1].double()                                         # [B, V]
            nxt = logits.argmax(-1) if temperature == 0 else sample_categorical(torch.softmax(logits / temperature, -1), generator)
            x = torch.cat([x, nxt[:, None]], 1)
            if hook is not None: hook(i, 1 - (i + 1) / length, x[:, 1:])
        return x[:, 1:]

    def __repr__(self): return f'Autoregressive(vocab_size={self.vocab_size}, bos_id={self.bos_id})'


def make_bench_method(name: str, tok) -> Method:
    "One of METHODS over the tokenizer's vocabulary."
    if name == 'ar': return Autoregressive(tok.vocab_size, tok.bos_id)
    if name == 'masked': return MaskedDiffusion(tok.vocab_size)
    if name in ('sedd-absorbing', 'sedd-uniform'): return SEDD(tok.vocab_size, graph=name.split('-')[1])
    raise ValueError(f'unknown method {name!r}: use one of {METHODS}')


def train_config(**kw) -> TrainConfig:
    "A TrainConfig carrying the optimisation fields (its `method` field is not used by the benchmarks)."
    return dataclasses.replace(TrainConfig(), **kw)


def bench_model(name: str, method: Method, cfg: TrainConfig, tok, seed: int = 0) -> DiffusionTransformer:
    "The trainer's `build_model` for this method, initialised from `seed`; SEDD keeps `cfg.cond_dim`, the others none."
    torch.manual_seed(seed)
    return build_model(cfg, method, tok)


def shakespeare():
    "(prepared folder, tokenizer) of Tiny Shakespeare at character level."
    p = prepare_dataset('shakespeare-char')
    return p, load_tokenizer(p)


# ---------------------------------------------------------------- one training loop for all four
def train_step(model, method, optimizer, scheduler, batch, device, cfg: TrainConfig) -> float:
    "One optimizer step as `diffusion_lm.trainer.train` takes it: forward+backward (autocast), clip, AdamW, schedule."
    loss = forward_backward(model, method, [batch], device, cfg.precision)
    torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip if cfg.grad_clip > 0 else float('inf'))
    optimizer.step()
    if scheduler is not None: scheduler.step()
    optimizer.zero_grad(set_to_none=True)
    return loss


def run_training(name: str, tok, data_path, cfg: TrainConfig, device, eval_every: int = 0, eval_fn=None,
                 log_every: int = 100, seed: int = 0):
    "Train method `name` for cfg.max_steps on the same batches as any other method with the same seed; (model, method, history)."
    method = make_bench_method(name, tok)
    model = bench_model(name, method, cfg, tok, seed).to(device)
    opt = make_optimizer(model, cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg))
    loader = RandomBatches.from_prepared(data_path, 'train', batch_size=cfg.batch_size, seq_len=cfg.sequence_length, seed=seed)
    torch.manual_seed(seed + 1)                              # the methods' noise stream
    hist, t0, train_s = [], time.perf_counter(), 0.0
    tokens_per_step = cfg.batch_size * cfg.sequence_length
    if eval_fn is not None and eval_every: hist.append({'step': 0, 'tokens': 0, **eval_fn(model, method)})
    model.train()
    for step in range(1, cfg.max_steps + 1):
        ts = time.perf_counter()
        loss = train_step(model, method, opt, sched, loader.get_batch().to(device), device, cfg)
        sync(device); train_s += time.perf_counter() - ts
        if not math.isfinite(loss): raise FloatingPointError(f'{name}: loss {loss} at step {step}')
        rec = None
        if eval_fn is not None and eval_every and (step % eval_every == 0 or step == cfg.max_steps):
            rec = {'step': step, 'tokens': step * tokens_per_step, 'train_loss': loss, **eval_fn(model, method)}
            hist.append(rec)
        if log_every and step % log_every == 0:
            extra = f", val {rec['val_bits']:.3f} bits/char" if rec else ''
            print(f'{name}: step {step}/{cfg.max_steps} loss {loss:.4f}{extra} ({time.perf_counter() - t0:.0f} s)', flush=True)
    model.eval()
    return model, method, {'history': hist, 'train_seconds': train_s, 'wall_seconds': time.perf_counter() - t0,
                           'params': num_params(model), 'tokens': cfg.max_steps * tokens_per_step}


@torch.no_grad()
def per_sequence_bits(model, method, data, seq_len: int, batch_size: int, device, draws: int = 1, seed: int = 0,
                      max_windows: int | None = None, precision: str = 'auto') -> torch.Tensor:
    """Bits per character of each consecutive validation window `[draws, n_windows]`: the method's `nll_bound`
    (exact NLL for 'ar', a one-draw Monte-Carlo bound for the diffusion methods) with `draws` independent draws."""
    was = model.training
    model.eval()
    out = []
    for d in range(draws):
        g = torch.Generator(device=device).manual_seed(seed + d)
        rows = []
        for x in eval_batches(data, batch_size, seq_len, max_batches=None if max_windows is None else -(-max_windows // batch_size)):
            with autocast_context(device, precision): rows.append(method.nll_bound(model, x.to(device), generator=g).double().cpu())
        out.append(torch.cat(rows)[:max_windows] / seq_len / LN2)
    model.train(was)
    return torch.stack(out)


def summarise_bits(bits: torch.Tensor, ref: torch.Tensor | None = None, exact: bool = False) -> dict:
    """Mean bits/char over windows with its standard errors: `se` (windows as the sampling unit, Monte-Carlo noise
    included), `mc_se` (Monte-Carlo noise alone, for the fixed validation set; 0 when `exact`), and with `ref` [n]
    the paired gap to a reference (same windows) with its standard error."""
    D, n = bits.shape
    per_win = bits.mean(0)
    res = {'bits': per_win.mean().item(), 'se': (per_win.std() / n ** 0.5).item(), 'windows': n, 'draws': D,
           'mc_se': 0.0 if exact else (((bits.var(0).sum() / D) ** 0.5 / n).item() if D > 1 else None)}
    if ref is not None:
        diff = per_win - ref
        res.update(gap_bits=diff.mean().item(), gap_se=(diff.std() / n ** 0.5).item())
    return res


def save_model(model, method_name: str, cfg: TrainConfig, tok, path: Path, extra: dict | None = None):
    "Weights (safetensors) + a JSON of everything needed to rebuild the model."
    from safetensors.torch import save_file
    path.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, path / 'model.safetensors')
    (path / 'bench_model.json').write_text(json.dumps({'method': method_name, 'model': model.cfg.to_dict(),
                                                       'train': cfg.to_dict(), 'tokenizer_chars': getattr(tok, 'chars', None),
                                                       **(extra or {})}, indent=1))


def load_model(path: Path, tok, device='cpu'):
    "(model, method, info) saved by `save_model`, or None if absent."
    from safetensors.torch import load_file
    path = Path(path)
    if not (path / 'bench_model.json').exists() or not (path / 'model.safetensors').exists(): return None
    info = json.loads((path / 'bench_model.json').read_text())
    model = DiffusionTransformer(ModelConfig.from_dict(info['model']))
    model.load_state_dict(load_file(path / 'model.safetensors'))
    return model.to(device).eval(), make_bench_method(info['method'], tok), info
