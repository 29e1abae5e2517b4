"""DP benchmark (same as ``secagg bench dp``): prints JSON on stdout.

python benchmarks/bench_dp.py              # d = 100 000 and 1 000 000 (about a minute)
python benchmarks/bench_dp.py --quick      # d = 10 000, seconds
"""

from secagg.apps.bench.dp import main

if __name__ == "__main__":
    main()
