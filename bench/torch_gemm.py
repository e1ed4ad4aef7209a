"""PyTorch side of `npm run bench:gemm` (bench/gemm-bench.ts): a GEMM server. Usage:
  python3 bench/torch_gemm.py <threads>
then one JSON line per GEMM on stdin: {"M","N","K","ta","tb","reps","budgetS"}: C[M,N] = op(A) . op(B), where
op(A) = A [M,K] or, with ta, A stored [K,M] and read transposed (a strided view: torch passes the layout to BLAS
as a transpose flag, no copy); op(B) likewise ([K,N] or, with tb, stored [N,K]). Answers one line
"@@BENCH {json}" per request with every timed rep's wall and CPU (process_time, all threads) ms; the first, warm-up call is excluded. "--version" prints
torch's version and its BLAS.
"""
import json
import sys
import time

TAG = '@@BENCH '


def emit(res):
    print(TAG + json.dumps(res), flush=True)


try:
    import torch
except Exception as e:  # noqa: BLE001
    emit({'ok': False, 'error': f'{type(e).__name__}: {e}'})
    sys.exit(0)

if len(sys.argv) > 1 and sys.argv[1] == '--version':
    torch.mm(torch.ones(64, 64), torch.ones(64, 64))
    with open('/proc/self/maps') as f:  # the BLAS library actually loaded (Linux)
        libs = sorted({line.split('/')[-1].strip() for line in f if 'blas' in line.lower() or 'mkl' in line.lower()})
    emit({'ok': True, 'version': torch.__version__, 'blas': libs})
    sys.exit(0)

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 1
torch.set_num_threads(threads)
torch.manual_seed(0)
emit({'ok': True, 'ready': True, 'threads': torch.get_num_threads()})
for line in sys.stdin:
    if not line.strip():
        continue
    try:
        q = json.loads(line)
        M, N, K = q['M'], q['N'], q['K']
        a = torch.randn(K, M).t() if q['ta'] else torch.randn(M, K)
        b = torch.randn(N, K).t() if q['tb'] else torch.randn(K, N)
        c = torch.empty(M, N)
        torch.mm(a, b, out=c)  # warm-up
        times, cpu = [], []
        t_end = time.perf_counter() + q.get('budgetS', 5)
        while len(times) < q.get('reps', 5) and (len(times) < 2 or time.perf_counter() < t_end):
            c0, t0 = time.process_time(), time.perf_counter()
            torch.mm(a, b, out=c)
            times.append((time.perf_counter() - t0) * 1000)
            cpu.append((time.process_time() - c0) * 1000)
        emit({'ok': True, 'ms': times, 'cpuMs': cpu})
        del a, b, c
    except Exception as e:  # noqa: BLE001
        emit({'ok': False, 'error': f'{type(e).__name__}: {e}'})
