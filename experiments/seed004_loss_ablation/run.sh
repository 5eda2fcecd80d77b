#!/usr/bin/env bash
# CPU-scale reproduction of seed 004's loss ablation: L1 vs L2 (MSE) vs Mix (0.84·(1−MS-SSIM) + 0.16·G·L1)
# on a reduced EDSR-baseline, x4, T91 + BSD200, identical budget and seed for each loss.
# Run from the repository root:  bash experiments/seed004_loss_ablation/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
S=experiments/seed004_loss_ablation
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=${THREADS:-2}
MAX_TIME=${MAX_TIME:-00:00:20:00}
# Deviations from the paper recipe (EDSR(64, 16), batch 16, 192 px HR = 48 px LR, 3e5 steps):
# 32 channels, 4 residual blocks, batch 8, 96 px HR (24 px LR), 1000 steps, lr 2e-4 (paper 1e-4).
COMMON=(model=edsr_baseline data=folder data.path=../shared/data/T91 "data.train_dirs=[../shared/data/T91,../shared/data/BSD200]"
        data.val_fraction=0.02 data.num_workers=1 data.repeat=1 logger=csv scale=4
        model.arch.num_feat=32 model.arch.num_block=4 data.batch_size=8 data.patch_size=96 model.optimizer.lr=2.0e-4
        trainer.max_steps=1000 trainer.val_check_interval=250 trainer.max_time=$MAX_TIME
        trainer.log_every_n_steps=10 trainer.num_sanity_val_steps=0)
EVAL=(benchmarks.root=../shared/benchmarks "benchmarks.sets=[Set5,Set14]" "benchmarks.scales=[4]"
      "metrics.names=[psnr_y,ssim_y,ms_ssim]" model.arch.num_feat=32 model.arch.num_block=4)
for L in l1 mse mix; do
  $PY -m src.train "${COMMON[@]}" loss=$L seed=42 hydra.run.dir=$S/runs/edsr_$L
  $PY -m src.evaluate model=edsr_baseline ckpt_path=$S/runs/edsr_$L/checkpoints/best.ckpt "${EVAL[@]}" \
      hydra.run.dir=$S/runs/eval_edsr_$L
done
# seed-noise reference: the L1 run again with another seed (other initialisation and patch draws;
# the hold-out split itself is data.split_seed=0 in every run)
$PY -m src.train "${COMMON[@]}" loss=l1 seed=1 hydra.run.dir=$S/runs/edsr_l1_seed1
$PY -m src.evaluate model=edsr_baseline ckpt_path=$S/runs/edsr_l1_seed1/checkpoints/best.ckpt "${EVAL[@]}" \
    hydra.run.dir=$S/runs/eval_edsr_l1_seed1
rm -rf $S/runs/*/checkpoints $S/runs/*/wandb $S/runs/*/tensorboard
