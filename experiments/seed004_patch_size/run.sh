#!/usr/bin/env bash
# CPU-scale reproduction of seed 004's patch-size question: 128 vs 192 px HR patches on a small RRDBNet, x4,
# T91 + BSD200. Same number of steps and same batch size for both (so the 192 px run sees 2.25x the pixels).
# Run from the repository root:  bash experiments/seed004_patch_size/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
S=experiments/seed004_patch_size
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=${THREADS:-2}
MAX_TIME=${MAX_TIME:-00:00:20:00}
# Deviations from the recipe (RRDBNet(64, 23, 32), batch 16, 1e6 steps, cosine restarts every 2.5e5):
# RRDBNet(32 channels, 1 RRDB, growth 16), batch 4, 400 steps, lr 2e-4 (cosine T_0=250000 ≫ 400: practically constant).
ARCH=(model.arch.num_feat=32 model.arch.num_block=1 model.arch.num_grow_ch=16)
COMMON=(model=rrdb data=folder data.path=../shared/data/T91 "data.train_dirs=[../shared/data/T91,../shared/data/BSD200]"
        data.val_fraction=0.02 data.num_workers=1 data.repeat=1 logger=csv seed=42 scale=4 "${ARCH[@]}"
        data.batch_size=4 trainer.max_steps=400 trainer.val_check_interval=100 trainer.max_time=$MAX_TIME
        trainer.log_every_n_steps=10 trainer.num_sanity_val_steps=0)
EVAL=(benchmarks.root=../shared/benchmarks "benchmarks.sets=[Set5,Set14]" "benchmarks.scales=[4]"
      "metrics.names=[psnr_y,ssim_y]" "${ARCH[@]}")
for P in ${PATCHES:-128 192}; do
  $PY -m src.train "${COMMON[@]}" data.patch_size=$P hydra.run.dir=$S/runs/rrdb_p$P
  $PY -m src.evaluate model=rrdb ckpt_path=$S/runs/rrdb_p$P/checkpoints/best.ckpt "${EVAL[@]}" hydra.run.dir=$S/runs/eval_rrdb_p$P
done
rm -rf $S/runs/*/checkpoints $S/runs/*/wandb $S/runs/*/tensorboard
