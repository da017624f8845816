import sys

from ecsjobs.cli import main

sys.exit(main())
