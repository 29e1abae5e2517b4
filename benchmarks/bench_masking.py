"""Masking benchmark (same as ``secagg bench masking``): prints JSON on stdout.

python benchmarks/bench_masking.py            # the full grid (long: tens of minutes)
python benchmarks/bench_masking.py --quick    # a small grid, seconds
python benchmarks/bench_masking.py --n 100 --d 1000000 --graph harary
"""

from secagg.apps.bench.masking import main

if __name__ == "__main__":
    main()
