"""`python -m bench` (`make bench`): the runtime benchmark (bench/runtime_run.py), then the
traffic benchmark (bench/traffic.py: router hop, shadow tee)."""

from bench import runtime_run, traffic

if __name__ == "__main__":
    raise SystemExit(runtime_run.main() or traffic.main([]))
