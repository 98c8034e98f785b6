import sys

from rlpipe.cli import main

sys.exit(main())
