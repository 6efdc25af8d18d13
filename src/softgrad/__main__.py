"""``python -m softgrad ...`` runs the ``softgrad`` command (:mod:`softgrad.cli`)."""

import sys

from softgrad.cli import main

sys.exit(main())
