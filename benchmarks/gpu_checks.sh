#!/usr/bin/env bash
# The GPU half of the project's checks, for a CUDA machine with the project's dependencies and gsplat:
#   benchmarks/gpu_checks.sh tests OUTDIR        CUDA tests (gsplat against our rasterizer, CUDA sampling,
#                                                training and splat optimisation); builds gsplat first
#   benchmarks/gpu_checks.sh rasterizer OUTDIR   bench_rasterizer.py on the GPU (gsplat)
#   benchmarks/gpu_checks.sh world-model OUTDIR  bench_world_model.py on the GPU (sampling and training variants)
#   benchmarks/gpu_checks.sh vector OUTDIR       SceneVectorEnv steps/s with 1,024 bodies and more (gsplat)
#   benchmarks/gpu_checks.sh demo OUTDIR         `worldmodel demo --quality --device cuda` end to end (hours on a
#                                                CPU; the issue asks for its first run on a GPU)
# Logs and JSON results go to OUTDIR. PYTHON picks the interpreter (default python3).
set -uo pipefail
part=${1:?usage: gpu_checks.sh tests|rasterizer|world-model|vector|demo OUTDIR}
out=${2:-gpu_results}
py=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
case "$part" in
tests)
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.txt"
    # gsplat compiles its CUDA extension on first import (minutes): build it while the
    # world-model tests, which do not need it, run
    (time $py -c "from gsplat.cuda._backend import _C; assert _C is not None") > "$out/gsplat_build.log" 2>&1 &
    build=$!
    $py -m pytest -m cuda -s tests/test_worldmodel_model.py tests/test_worldmodel_training.py \
        tests/test_envs_dream.py tests/test_training_policy.py tests/test_envs_vector.py 2>&1 |
        tee "$out/cuda_tests_worldmodel.log"
    wait $build || { tail -30 "$out/gsplat_build.log"; exit 1; }
    tail -3 "$out/gsplat_build.log"
    $py -m pytest -m cuda -s tests/test_rasterize.py tests/test_scene.py tests/test_reconstruct.py 2>&1 |
        tee "$out/cuda_tests_scenes.log"
    ;;
rasterizer)
    $py benchmarks/bench_rasterizer.py --device cuda --cameras 1 32 --json "$out/bench_rasterizer_cuda.json" 2>&1 |
        tee "$out/bench_rasterizer_cuda.log"
    ;;
world-model)
    # the default network with every option, then the small CarRacing network (BENCHMARKS.md) with the best
    $py benchmarks/bench_world_model.py --device cuda --batches 1 8 32 256 \
        --variants fp32 bf16 channels_last+bf16 compile bf16+compile cudagraphs bf16+cudagraphs \
        --train-variants fp32 bf16 compile bf16+compile --repeats 30 \
        --out "$out/bench_world_model_cuda.json" 2>&1 | tee "$out/bench_world_model_cuda.log"
    $py benchmarks/bench_world_model.py --device cuda --block-out-channels 16 32 32 --batches 1 8 32 256 \
        --variants fp32 bf16 cudagraphs --train-variants fp32 bf16 --repeats 30 \
        --out "$out/bench_world_model_cuda_small.json" 2>&1 | tee "$out/bench_world_model_cuda_small.log"
    ;;
vector)
    $py benchmarks/bench_envs.py vector --device cuda --sizes 1024 4096 2>&1 | tee "$out/bench_vector_cuda.log"
    ;;
demo)
    (time $py -m training.cli demo --quality --device cuda --out "$out/demo") 2>&1 | tee "$out/demo.log"
    ;;
*)
    echo "unknown part $part: use tests, rasterizer, world-model, vector or demo" >&2
    exit 2
    ;;
esac
