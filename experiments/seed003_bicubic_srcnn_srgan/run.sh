#!/usr/bin/env bash
# CPU-scale reproduction of seed 003's comparison (bicubic vs SRCNN vs SRGAN, x4) on T91 + BSD200.
# Run from the repository root:  bash experiments/seed003_bicubic_srcnn_srgan/run.sh
# THREADS (default 2) sets OMP_NUM_THREADS; MAX_TIME is a wall-clock safety stop per training run
# (Lightning's trainer.max_time; the steps actually reached are in each run's csv/metrics.csv).
set -euo pipefail
cd "$(dirname "$0")/../.."
S=experiments/seed003_bicubic_srcnn_srgan
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=${THREADS:-2}
MAX_TIME=${MAX_TIME:-00:00:08:00}
ONLY=${ONLY:-"bicubic srcnn srresnet srgan_l1 srgan_vgg54_random"}   # a subset re-runs only those rows
want() { [[ " $ONLY " == *" $1 "* ]]; }
DATA=(data=folder data.path=../shared/data/T91 "data.train_dirs=[../shared/data/T91,../shared/data/BSD200]"
      data.val_fraction=0.02 data.num_workers=1 data.repeat=1 logger=csv seed=42 scale=4
      trainer.max_time=$MAX_TIME trainer.log_every_n_steps=10 trainer.num_sanity_val_steps=0)
EVAL=(benchmarks.root=benchmarks "benchmarks.sets=[Set5,Set14]" "benchmarks.scales=[4]"
      "metrics.names=[psnr_y,ssim_y,niqe]" "samples.images=[baby.png,comic.png]")
ev() {  # ev <name> <model> [extra overrides]: score runs/<name>/checkpoints/best.ckpt
  local n=$1 m=$2; shift 2
  $PY -m src.evaluate model=$m ckpt_path=$S/runs/$n/checkpoints/best.ckpt "${EVAL[@]}" "$@" hydra.run.dir=$S/runs/eval_$n
}

# 0. bicubic (MATLAB-compatible imresize, no training; skipped when its results.csv exists)
want bicubic && [ ! -f $S/runs/eval_bicubic/results.csv ] && $PY -m src.evaluate model=bicubic "${EVAL[@]}" hydra.run.dir=$S/runs/eval_bicubic

# 1. SRCNN 9-5-5, Y channel, 44 px HR sub-images (paper: 33 px at x3 -> 11*scale), MSE.
#    Deviations: batch 16 (paper 128), 1000 Adam steps (paper ~1e8 SGD backprops), lr 5e-4 / 5e-5 (paper 1e-4 / 1e-5).
if want srcnn; then
$PY -m src.train model=srcnn "${DATA[@]}" data.batch_size=16 trainer.max_steps=1000 trainer.val_check_interval=250 \
    model.optimizer.lr=5.0e-4 hydra.run.dir=$S/runs/srcnn
ev srcnn srcnn
fi

# 2. SRResNet pre-training (MSE), small: 32 channels, 4 residual blocks (paper 64 x 16); 96 px HR, batch 8
#    (paper batch 16), 1000 steps (paper 1e6), lr 2e-4 (paper 1e-4).
SMALL_G=(model.arch.num_feat=32 model.arch.num_block=4)
if want srresnet; then
$PY -m src.train model=srresnet "${DATA[@]}" "${SMALL_G[@]}" data.batch_size=8 data.patch_size=96 \
    trainer.max_steps=1000 trainer.val_check_interval=250 model.optimizer.lr=2.0e-4 hydra.run.dir=$S/runs/srresnet
ev srresnet srresnet "${SMALL_G[@]}"
fi
PRE=$S/runs/srresnet/checkpoints/best.ckpt

# 3a. SRGAN, content loss L1 (instead of VGG54) + 1e-3 vanilla GAN (loss=l1 alone would MERGE into srgan's
#     {percep: …} mapping and keep the VGG term, hence '~model.loss.percep'); discriminator 32 base channels (paper 64);
#     96 px, batch 8, 400 steps from the SRResNet above. The discriminator is SRGAN's own (model=srgan's default).
want srgan_l1 && $PY -m src.train model=srgan loss=l1 '~model.loss.percep' model.pretrained=$PRE "${DATA[@]}" "${SMALL_G[@]}" model.discriminator.num_feat=32 \
    data.batch_size=8 data.patch_size=96 trainer.max_steps=400 trainer.val_check_interval=100 hydra.run.dir=$S/runs/srgan_l1
want srgan_l1 && ev srgan_l1 srgan "${SMALL_G[@]}"

# 3b. SRGAN with the paper's VGG54 content loss, but on a RANDOMLY INITIALISED VGG19 (no ImageNet weights on
#     this machine): perceptual_weights=random. The full VGG19 to relu5_4 is expensive on a CPU: 64 px HR
#     patches, batch 4, 150 steps.
want srgan_vgg54_random && $PY -m src.train model=srgan perceptual_weights=random model.pretrained=$PRE "${DATA[@]}" "${SMALL_G[@]}" \
    model.discriminator.num_feat=32 data.batch_size=4 data.patch_size=64 trainer.max_steps=150 trainer.val_check_interval=50 \
    hydra.run.dir=$S/runs/srgan_vgg54_random
want srgan_vgg54_random && ev srgan_vgg54_random srgan "${SMALL_G[@]}"

# keep the repo small: drop checkpoints / logger folders (csv logs, results, configs and panels stay)
rm -rf $S/runs/*/checkpoints $S/runs/*/wandb $S/runs/*/tensorboard
