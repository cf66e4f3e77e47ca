"""Entry point for ``python -m imgbot``."""

from imgbot.cli import main

raise SystemExit(main())
