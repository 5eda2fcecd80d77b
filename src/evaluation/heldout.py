"""Score a model and the bicubic baseline on held-out images: the table printed at the end of training."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from src.data.batch import collate
from src.degradations import imresize
from src.degradations.base import Degradation
from src.evaluation.panels import comparison_panel, detailed_crop, save_panel, stack_vertically
from src.evaluation.results import ImageScore, SetScore, markdown_table, summarize, write_csv
from src.metrics.suite import MetricSuite


@torch.no_grad()
def heldout_report(
    model: Callable[[torch.Tensor], torch.Tensor],
    items: list[dict],
    degradation: Degradation | None,
    scale: int,
    method_name: str,
    set_name: str,
    out_dir: str | Path,
    suite: MetricSuite | None = None,
    panel_images: int = 2,
    crop: int = 96,
    device: torch.device | str = "cpu",
) -> tuple[list[SetScore], str]:
    """Run ``model`` and bicubic on every held-out item, write ``results.csv``, ``per_image.csv`` and
    ``comparison.png`` (bicubic | SR | HR crops) into ``out_dir``; return the set means and a Markdown table.

    Args:
        model: LR (1, 3, h, w) in [0, 1] -> SR (1, 3, h*scale, w*scale).
        items: ``FullImageDataset`` items (uint8 ``hr``, optional uint8 ``lr``, ``name``).
        degradation: makes the LR from the HR when an item has no ``lr``.
    """
    out_dir = Path(out_dir)
    suite = suite or MetricSuite()
    scores: list[ImageScore] = []
    panels = []
    for index, item in enumerate(items):
        batch = collate([item], training=False).to(device).to_float()
        if batch.lr is None:
            if degradation is None:
                raise ValueError(f"held-out image {item['name']} has no LR and no degradation was given")
            batch = degradation(batch)
        hr, lr = batch.hr, batch.lr
        sr = model(lr).clamp(0, 1)[0]
        bicubic = imresize(lr, float(scale)).clamp(0, 1)[0]
        for name, out in ((method_name, sr), ("bicubic", bicubic)):
            scores.append(ImageScore(name, set_name, scale, item["name"], suite.score(out, hr[0], scale)))
        if index < panel_images:
            box = detailed_crop(hr[0].cpu(), crop)
            panel = comparison_panel(
                [bicubic.cpu(), sr.cpu(), hr[0].cpu()],
                [f"bicubic {scores[-1].psnr_y:.2f} dB", f"{method_name} {scores[-2].psnr_y:.2f} dB", "HR"],
                crop=box,
            )
            panels.append(panel)
    summary = summarize(scores, suite)
    write_csv(summary, out_dir / "results.csv")
    write_csv(scores, out_dir / "per_image.csv")
    if panels:
        save_panel(stack_vertically(panels), out_dir / "comparison.png")
    return summary, markdown_table(summary)
