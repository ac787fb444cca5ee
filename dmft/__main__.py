"""`python -m dmft` is the `dmft` command."""
import sys

from .cli import main

sys.exit(main())
