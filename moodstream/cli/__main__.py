"""`python -m moodstream.cli`."""

from moodstream.cli import main

main()
