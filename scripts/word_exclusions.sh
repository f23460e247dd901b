#!/usr/bin/env bash
# Write data/words/not-words.txt: the entries of the shipped dictionaries (data/words/american-english and
# british-english, Debian's wamerican/wbritish) that SCOWL itself files as abbreviations or Roman numerals
# (its *abbreviations.* and special-roman-numerals.* lists), so that the word test can leave them out. SCOWL files
# a few first names only as abbreviations ("Dan", "Sam"), so these are left out too: they matter only to the name
# rule of the word test (a capitalised word counts as a name when the dictionary lists it capitalised).
# SCOWL's separate lists come from Debian's `scowl` package (same version, 2020.12.07, as wamerican/wbritish):
# `apt-get download scowl` (or `apt-get install scowl`), then run this script with the unpacked list folder:
#   scripts/word_exclusions.sh /usr/share/dict/scowl
set -euo pipefail
cd "$(dirname "$0")/.."
src=${1:?usage: scripts/word_exclusions.sh SCOWL_LIST_DIR (e.g. /usr/share/dict/scowl from the Debian scowl package)}
ls "$src"/*abbreviations.* "$src"/special-roman-numerals.* > /dev/null
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
{
  echo "# Entries of american-english and british-english that SCOWL (2020.12.07) files as abbreviations or Roman"
  echo "# numerals; written by scripts/word_exclusions.sh from the Debian scowl package. Same licence as SCOWL"
  echo "# (wamerican.copyright)."
  LC_ALL=C comm -12 \
    <(cat "$src"/*abbreviations.* "$src"/special-roman-numerals.* | iconv -f latin1 -t utf-8 | LC_ALL=C sort -u) \
    <(cat data/words/american-english data/words/british-english | LC_ALL=C sort -u)
} > "$tmp"
mv "$tmp" data/words/not-words.txt
chmod 644 data/words/not-words.txt
echo "data/words/not-words.txt: $(grep -vc '^#' data/words/not-words.txt) entries"
