#!/bin/bash
# The loop's first world-model fit on a demo run's loop data, with and without the warp (WorldModelConfig.warp),
# each from the shipped pretrained weights, then evaluate-world-model on the run's held-out episodes.
#   bash benchmarks/imagination/warp_compare.sh RUN OUT [STEPS]     # RUN: a `worldmodel demo` output
# Then: python benchmarks/imagination/one_step_at_policy_size.py RUN/heldout OUT/warp/model OUT/base/model
set -e
RUN=$1; OUT=$2; STEPS=${3:-1500}
mkdir -p "$OUT"
for v in warp base; do
  flag=--model.no-warp; [ $v = warp ] && flag=--model.warp
  python -m training.cli train-world-model "$RUN/loop/data" --out "$OUT/$v" --steps "$STEPS" --batch-size 16 --lr 1e-3 \
     --warmup-steps 100 --init assets/world_model_rooms $flag --model.still-head --self-context 0.25 \
     --self-context-start $((STEPS / 2)) --holdout-episodes 0 --eval-every 0 --seed 0 > "$OUT/$v.log" 2>&1
  python -m training.cli evaluate-world-model "$OUT/$v/model" "$RUN/heldout" --out "$OUT/$v/eval" > "$OUT/$v.eval.log" 2>&1
  python -c "import json; m = json.load(open('$OUT/$v/eval/metrics.json')); print('$v', {h: round(m['psnr_by_horizon'][h], 2) for h in ('1', '5', '10', '15')})"
done
