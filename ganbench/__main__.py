"""``python -m ganbench ...`` (and ``torchrun --nproc_per_node K -m ganbench train ...``): the CLI."""
from ganbench.cli import main

if __name__ == "__main__":
    main()
