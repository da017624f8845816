import sys

from ecsjobs.cli.main import main

sys.exit(main())
