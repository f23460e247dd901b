"`python -m diffusion_lm.palindromes`: the command line `diffusion-lm-palindromes` (written by hand, not generated)."
import sys
from .eval import main

if __name__ == '__main__': sys.exit(main())
