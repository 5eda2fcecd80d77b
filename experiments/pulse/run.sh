#!/usr/bin/env bash
# PULSE demonstration without downloads: train the small face generator on scikit-image's lfw_subset faces, run
# PULSE on the 10 held-out faces at x4 and x8 next to bicubic and VDSR, and score the x4 results with src.evaluate.
# Run from the repository root:  bash experiments/pulse/run.sh     (about 15 min on 2 shared CPU cores)
# Writes experiments/pulse/{results.md,per_image.csv,panel_x4.png,panel_x8.png,evaluate_x4.md} and
# outputs/pulse_demo/ (generator.pt, samples.png, train_log.csv, the benchmark folder, the CLI outputs).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PY:-.venv/bin/python}
export OMP_NUM_THREADS=${THREADS:-1}
OUT=outputs/pulse_demo
E=experiments/pulse

# 1. generator (skipped when it exists): DCGAN-style, 24x24 gray, faces 0-89 + mirror images
[ -f $OUT/generator.pt ] || nice $PY $E/train_generator.py --out $OUT --steps ${STEPS:-2000}

# 2. PULSE, bicubic and VDSR on faces 90-99 at x4 and x8: table, per-image CSV, panels; writes $OUT/bench/Faces/HR
$PY $E/run_demo.py --generator $OUT/generator.pt --out $E --bench $OUT/bench

# 3. the same through the command line (x8 LR files -> PULSE folder with per-image logs)
$PY - <<'PYEOF'
from pathlib import Path
from src.data.image_io import load_image, save_image
from src.degradations import imresize
for hr in sorted(Path("outputs/pulse_demo/bench/Faces/HR").glob("*.png")):
    save_image(imresize(load_image(hr).unsqueeze(0), 1 / 8)[0].clamp(0, 1), Path("outputs/pulse_demo/lr_x8") / hr.name)
PYEOF
$PY -m src.pulse input=$OUT/lr_x8 output=$OUT/pulse_x8 generator=file generator.weights=$OUT/generator.pt \
    overwrite=true hydra.run.dir=$OUT/runs/pulse_cli

# 4. evaluate: bicubic, VDSR and PULSE as methods at x4 (PSNR/SSIM on Y; no NIQE/LPIPS at 24 px, see README)
METHODS="[{name: bicubic, model: bicubic}, {name: vdsr, model: vdsr, weights: ../shared/weights/VDSR_Official.mat},\
 {name: pulse, model: pulse, overrides: {generator: {weights: $OUT/generator.pt}}}]"
$PY -m src.evaluate run_name=pulse_faces benchmarks.root=$OUT/bench "benchmarks.sets=[Faces]" "benchmarks.scales=[4]" \
    "methods=$METHODS" "compare.images=[lfw090.png]" hydra.run.dir=$OUT/runs/evaluate_x4
cp $OUT/runs/evaluate_x4/results.md $E/evaluate_x4.md
