"""Plumbing shared by the benchmarks: the machine record, result files, tables, and a train-then-evaluate helper built
on the library's own `train`, checkpoints and `evaluate` (the baseline and the methods are the library's)."""
from __future__ import annotations
import datetime, json, math, os, platform, re, subprocess, sys, time, uuid
from pathlib import Path
import torch
from diffusion_lm import model_size
from diffusion_lm.data import prepare_dataset, open_split
from diffusion_lm.devices import resolve_device
from diffusion_lm.trainer import TrainConfig, train, evaluate, load_trained
from diffusion_lm.runs import read_jsonl

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / 'results'
RUNS = ROOT / 'runs' / 'bench'
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


def save_result(res: dict, markdown: str, directory: Path, stem: str | None = None) -> tuple[Path, Path]:
    "Write `<benchmark>__<machine>.json` and `.md` (the Markdown starts with the machine line)."
    res['machine']['loadavg_end'] = list(os.getloadavg())
    stem = stem or f"{res['benchmark']}__{res['machine']['kind_slug']}"
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


# ---------------------------------------------------------------- train with the library, evaluate on every window
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


def window_bits(model, method, data_path, length: int, device, draws: int, seed: int = 777,
                max_windows: int | None = None, batch_size: int = 256) -> torch.Tensor:
    "Bits per token of each consecutive validation window, [draws, windows], through `trainer.evaluate`."
    val = open_split(data_path, 'val')
    n_batches = None if max_windows is None else -(-max_windows // batch_size)
    out = [evaluate(model, method, val, length, batch_size, n_batches, device, seed=seed + d, per_window=True)['window_bits']
           for d in range(draws)]
    return torch.stack(out)[:, :max_windows]


def train_and_measure(name: str, cfg: TrainConfig, device, draws: int, max_windows: int | None = None,
                      ref: torch.Tensor | None = None, progress: bool = False) -> dict:
    "Train `cfg` with the library's `train` (resuming or reusing a finished run), then measure it on every validation window."
    t0 = time.perf_counter()
    res = train(cfg, progress=progress)
    if not res['finished']: raise SystemExit(f"{name}: training stopped at step {res['step']} (a signal); run again to resume")
    wall = time.perf_counter() - t0
    model, method, tok, tcfg = load_trained(cfg.out_dir, which='ema' if cfg.ema_decay else 'model', device=device)
    data_path = prepare_dataset(tcfg.dataset)
    exact = method.exact_nll
    bits = window_bits(model, method, data_path, tcfg.context_length, device, 1 if exact else draws, max_windows=max_windows)
    metrics = read_jsonl(Path(res['out_dir']) / 'metrics.jsonl')
    tok_s = [m['tokens_per_s'] for m in metrics if 'tokens_per_s' in m and m['step'] > cfg.log_interval]
    final = summarise_bits(bits, ref=None if exact else ref, exact=exact)
    return {'name': name, 'method': method.name, 'config': cfg.to_dict(), 'params': res['params'], 'final': final,
            'curve': [{'step': m['step'], 'tokens': m['step'] * cfg.batch_size * tcfg.context_length, 'val_bits': m['val_bits'],
                       'val_bits_se': m['val_bits_se']} for m in metrics if 'val_bits' in m],
            'tokens_per_s_median': sorted(tok_s)[len(tok_s) // 2] if tok_s else None, 'wall_seconds': wall,
            'window_bits': bits.mean(0), 'draw_bits': bits, 'out_dir': res['out_dir']}


# ---------------------------------------------------------------- added for sampling / throughput / gpu
def write_json_atomic(path: Path, obj) -> Path:
    "Write `obj` as JSON to `path` atomically (a temporary file, fsync, rename)."
    from diffusion_lm.files import write_text_atomic
    write_text_atomic(path, json.dumps(obj, indent=1, default=_jsonable) + '\n')
    return Path(path)


def paired_ratios(xs: list[float], refs: list[float]) -> dict:
    "The ratio of medians and the median of the per-repetition ratios of `xs` to `refs` (same repetitions)."
    import statistics
    return {'ratio': statistics.median(xs) / statistics.median(refs),
            'paired_ratio': statistics.median(a / b for a, b in zip(xs, refs))}
