"""The papers' figures (same as ``secagg bench papers``): Bonawitz et al. 2017, Bell et al. 2020.

python benchmarks/bench_papers.py --out DIR            # the full grids (about 10-20 minutes)
python benchmarks/bench_papers.py --quick --out DIR    # small grids, well under a minute

Writes DIR/papers.json, DIR/papers.md and DIR/*.png; progress on stderr.
"""

from secagg.apps.bench.papers import main

if __name__ == "__main__":
    main()
