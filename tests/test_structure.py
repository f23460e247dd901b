"""The package's structure, read from its source with `ast` (nothing is imported): the core never imports the
palindrome wing (`diffusion_lm/palindromes/`), no function imports a `diffusion_lm` module to dodge a cycle, and the
module graph of top-level imports has no cycle."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / 'diffusion_lm'
WING = 'diffusion_lm.palindromes'

# Imports inside a function that remain in the core, none of them palindrome code nor a dodge of a package cycle:
KNOWN_FUNCTION_IMPORTS = {
    ('diffusion_lm.slurm_script', 'diffusion_lm'),            # `import diffusion_lm` to find the installed package
    ('diffusion_lm.testing', 'diffusion_lm'),                 # `import diffusion_lm` to find the package's folder
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix('').parts)
    if parts[-1] == '__init__': parts = parts[:-1]
    return '.'.join(parts)


MODULES = {module_name(p): p for p in sorted(PKG.rglob('*.py')) if p.name != '_modidx.py'}


def is_package(mod: str) -> bool: return MODULES[mod].name == '__init__.py'


def imports(mod: str):
    "(imported module, inside a function?) for every import statement of `mod`, relative ones resolved."
    tree = ast.parse(MODULES[mod].read_text(encoding='utf-8'))
    funcs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))]
    inside = {id(n) for f in funcs for n in ast.walk(f) if n is not f}
    here = mod if is_package(mod) else mod.rpartition('.')[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names: yield a.name, id(node) in inside
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                pkg = here.split('.')
                pkg = pkg[:len(pkg) - (node.level - 1)]
                base = '.'.join(pkg + ([base] if base else []))
            for a in node.names:                    # `from pkg import submodule` imports the submodule
                sub = f'{base}.{a.name}'
                yield (sub if sub in MODULES else base), id(node) in inside


def in_package(name: str) -> bool: return name == 'diffusion_lm' or name.startswith('diffusion_lm.')
def in_wing(name: str) -> bool: return name == WING or name.startswith(WING + '.')


def test_sources_found():
    assert {'diffusion_lm.data', 'diffusion_lm.trainer', WING, f'{WING}.data', f'{WING}.mix', f'{WING}.eval'} <= set(MODULES)
    assert not (PKG / 'palindromes.py').exists()        # the old module is gone: the package takes its name


def test_core_never_imports_the_wing():
    bad = [(m, t) for m in MODULES if not in_wing(m) for t, _ in imports(m) if in_wing(t)]
    assert bad == [], f'core modules import the palindrome wing: {bad}'


def test_no_package_import_inside_a_function():
    found = {(m, t) for m in MODULES for t, inside in imports(m) if inside and in_package(t)}
    assert not {(m, t) for m, t in found if in_wing(m) or in_wing(t)}, 'palindrome code imports inside a function'
    assert found - KNOWN_FUNCTION_IMPORTS == set(), f'new imports inside functions: {found - KNOWN_FUNCTION_IMPORTS}'


def graph() -> dict:
    "Module -> the package modules it imports at top level (a submodule's parent packages are imported first)."
    g = {m: set() for m in MODULES}
    for m in MODULES:
        for t, inside in imports(m):
            if not inside and t in MODULES and t != m: g[m].add(t)
    return g


def cycle(g: dict):
    "One cycle of `g` as a list of modules, or None."
    state, stack = {}, []
    def visit(m):
        state[m] = 'open'; stack.append(m)
        for t in sorted(g[m]):
            if state.get(t) == 'open': return stack[stack.index(t):] + [t]
            if t not in state and (c := visit(t)): return c
        state[m] = 'done'; stack.pop()
    for m in sorted(g):
        if m not in state and (c := visit(m)): return c


def test_no_import_cycle():
    g = graph()
    assert cycle(g) is None, f'import cycle: {" -> ".join(cycle(g))}'
    assert f'{WING}.data' in g[f'{WING}.mix'] and 'diffusion_lm.data' in g[f'{WING}.data']   # the wing on the core


def test_cycle_finder_finds_a_planted_cycle():
    "The check can fail: a graph with a planted cycle (and one module importing the wing from a function)."
    assert cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}, 'd': set()}) == ['a', 'b', 'c', 'a']
    assert cycle({'a': {'b'}, 'b': set()}) is None
    src = 'def f():\n    from diffusion_lm.palindromes.mix import x\n'
    tree = ast.parse(src)
    f = tree.body[0]
    assert any(isinstance(n, ast.ImportFrom) and n.module.startswith(WING) for n in ast.walk(f) if n is not f)


def test_wing_found_by_name_without_the_core_naming_it():
    "The core's registry learns the wing's data sets from settings.ini / entry points, not from its source."
    core = MODULES['diffusion_lm.data'].read_text(encoding='utf-8')
    assert 'palindrom' not in core.split("__all__")[1].lower()
    from diffusion_lm.data import dataset_plugins
    assert dataset_plugins()['palindromes-mix'] == f'{WING}.mix:prepare_palindromes_mix'
