"""`python -m sluice_runtime`: the same command line as the `sluice-runtime` script."""

from sluice_runtime.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
