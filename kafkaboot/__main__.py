"""``python -m kafkaboot`` is the ``kafkaboot`` command."""

import sys

from kafkaboot.cli import main

sys.exit(main())
