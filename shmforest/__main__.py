"""``python -m shmforest``: the command line lives in :mod:`shmforest.cli`."""

import sys

from shmforest.cli import main

if __name__ == "__main__":
    sys.exit(main())
