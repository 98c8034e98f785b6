import sys

from rlpipe.pipeline.cli import main

sys.exit(main())
