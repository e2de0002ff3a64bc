"""``python -m edgetts`` is the ``edgetts`` command."""

from .cli import main

main()
