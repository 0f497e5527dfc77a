"""``python -m calcas.extract {vision,mc,generate} ...``: see :mod:`calcas.extract.jobs`."""
import sys

from .jobs import main

sys.exit(main())
