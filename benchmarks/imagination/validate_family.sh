#!/usr/bin/env bash
# The demo's family validated twice on a finished demo run R: with the run's own world model and with a copy
# whose reward model is refitted on imagined rollouts. Both see the same episodes (same seeds), so the
# difference is the reward model alone.   bash benchmarks/imagination/validate_family.sh R OUT
set -e
R=$1; OUT=$2
export OMP_WAIT_POLICY=PASSIVE NUMBA_CACHE_DIR=$PWD/.numba_cache
.venv/bin/python benchmarks/imagination/refit_reward.py $R/loop/world_model/model $R/loop/data $OUT/refit/model 2500
for M in $R/loop/world_model/model $OUT/refit/model; do
  O=$OUT/validate_$(basename $(dirname $M))
  rm -rf $O
  .venv/bin/python -m training.cli validate $M $R/loop/data --reality room:assets/example_room --scene $R/scene \
    --env-kwargs '{"width": 40, "height": 40, "max_steps": 50, "goal": [-2.2, -0.8]}' --episodes 30 --max-steps 50 \
    --policies random noisy:0.75:$R/family/clone/policy noisy:0.25:$R/family/clone/policy $R/family/clone/policy \
      $R/family/ppo_twin/checkpoints/step_010240 $R/family/ppo_twin/policy $R/family/ppo_reality/policy $R/loop/policy_iter_0 $R/loop/policy expert \
    --names random "clone + 75% random" "clone + 25% random" clone "PPO in twin, 10k steps" "PPO in twin, 20k steps" "PPO in reality, 1458 real steps" "imagination, loop iteration 1" imagination-trained expert \
    --seed 1000000 --out $O
done
