"""gRPC benchmark (same as ``secagg bench grpc``): prints JSON on stdout.

SecAgg+ rounds of 100 clients (10 worker processes of 10 clients, each client
with its own gRPC connection) over loopback mTLS, next to the same rounds
in-process, in the same run.

python benchmarks/bench_grpc.py            # n = 100 in 10 processes, d = 100 000, 3 rounds
python benchmarks/bench_grpc.py --quick    # n = 12 in 3 processes, d = 10 000, 1 round
python benchmarks/bench_grpc.py --markdown benchmarks/results/grpc.json
"""

from secagg.apps.bench.grpc import main

if __name__ == "__main__":
    main()
