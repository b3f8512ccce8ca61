"""`python -m bench` (`make bench`): the runtime benchmark; see bench/runtime_run.py."""

from bench.runtime_run import main

if __name__ == "__main__":
    raise SystemExit(main())
