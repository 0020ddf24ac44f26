"""`python -m envoy` when installed with pip."""
from envoy.cli import main

raise SystemExit(main())
