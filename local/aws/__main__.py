"""``python -m local.aws``: serve the local AWS in the foreground (see ``local.aws.server``)."""

from local.aws.server import main

main()
