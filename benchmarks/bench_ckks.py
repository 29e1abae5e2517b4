"""CKKS benchmark (same as ``secagg bench ckks``): CKKS next to masking and plaintext.

python benchmarks/bench_ckks.py             # n in {10, 100}, d in {1e5, 1e6} (a few minutes)
python benchmarks/bench_ckks.py --quick     # n = 4, d = 10 000: seconds
"""

from secagg.apps.bench.backends import main

if __name__ == "__main__":
    main()
