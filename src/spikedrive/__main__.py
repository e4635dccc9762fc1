"""``python -m spikedrive`` (and ``torchrun -m spikedrive``) run the command line."""

from .cli import main

raise SystemExit(main())
