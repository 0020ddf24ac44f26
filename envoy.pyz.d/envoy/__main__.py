"""`python -m envoy` when installed with pip."""
from envoy.entry import run

run()
