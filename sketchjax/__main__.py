"""``python -m sketchjax ...``: the same as the ``sketchjax`` command."""
import sys

from sketchjax.cli import main

sys.exit(main())
