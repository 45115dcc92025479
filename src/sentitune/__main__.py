"""`python -m sentitune ...` (also `accelerate launch -m sentitune train ...`)."""

from sentitune.cli import main

main()
