"""The palindrome wing, built on the core: `text` (the normal form and the test), `data` (the real palindromes, their
leak-free split, the data set `palindromes`), `corpus` (generated palindromic phrases), `mix` (the data set
`palindromes-mix`), `words` (the strict dictionary and the automata of palindromes made of its words), `constraint` (sampling palindromes by construction, word repair) and `eval` (evaluation, its judge of
English, and the command line `diffusion-lm-palindromes`). The core never imports it; it finds the data sets by name through the
`diffusion_lm.datasets` plugins (`settings.ini`, `dataset_plugins`).

Written by hand (not generated): the names below are those users import from `diffusion_lm.palindromes`."""
import warnings
# `python -m diffusion_lm.palindromes.corpus` (or `.eval`) imports this package first, which imports the module, so
# runpy warns that it is in sys.modules before it runs as __main__; the modules have no import-time effects, and the
# warning would be a second line beside a command's one-line error: silenced for these modules only
warnings.filterwarnings('ignore', message=r"'diffusion_lm\.palindromes\.\w+' found in sys\.modules", category=RuntimeWarning)
from .text import normalize_palindrome, is_palindrome
from .data import (palindromes_path, load_palindromes, split_by_normal_form, case_variants, fitting_split,
                   prepare_palindromes, palindrome_splits)
from .corpus import generate_palindromes, generate_exact_palindromes, word_spans, word_flags, MIN_ZIPF
from .mix import prepare_palindromes_mix, training_texts, mix_rows
from .words import INTERJECTIONS, strict_words, is_strict_word, all_strict_words, PalindromeWords
from .constraint import (DEFAULT_ALPHABET, MODES, word_skeleton, palindrome_layout, PalindromeConstraint,
                         corpus_word_lengths, sample_lengths, shape_skeletons, sample_palindromes, row_texts,
                         bad_word_mask, repair_words)
from .eval import (evaluate_samples, evaluate_model, results_markdown, save_results, verdict, run_palindrome_sample, main,
                   wiki_judge, judge_from_texts, judge_scores, JUDGE_ORDER, seen_palindromes, language_bound,
                   bound_markdown)

__all__ = ['normalize_palindrome', 'is_palindrome', 'palindromes_path', 'load_palindromes', 'split_by_normal_form',
           'case_variants', 'fitting_split', 'prepare_palindromes', 'palindrome_splits', 'generate_palindromes',
           'generate_exact_palindromes', 'word_spans', 'word_flags', 'MIN_ZIPF', 'prepare_palindromes_mix',
           'training_texts', 'mix_rows', 'INTERJECTIONS', 'strict_words', 'is_strict_word',
           'all_strict_words', 'PalindromeWords', 'DEFAULT_ALPHABET', 'MODES', 'word_skeleton', 'palindrome_layout',
           'PalindromeConstraint', 'corpus_word_lengths', 'sample_lengths', 'shape_skeletons', 'sample_palindromes',
           'row_texts', 'bad_word_mask', 'repair_words', 'evaluate_samples', 'evaluate_model', 'results_markdown',
           'save_results', 'verdict', 'run_palindrome_sample', 'main', 'wiki_judge', 'judge_from_texts', 'judge_scores',
           'JUDGE_ORDER', 'seen_palindromes', 'language_bound', 'bound_markdown']
