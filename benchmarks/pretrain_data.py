"""Input-pipeline speed of ``mae-pretrain`` against the official MAE one, side by side.

A fast GPU trains MAE ViT-B/16 at thousands of images per second, and every one of them has to be
read, decoded, cropped and copied to the device first. This times that part alone, with no model:

- **ours**: ``FolderImages`` and ``MAEPretrainDataset`` (``refimpl.train.data``), as
  ``mae-pretrain`` builds them: decode with PIL, ``RandomResizedCrop`` and flip on the PIL image
  (torchvision v2, seeded per sample), ``PILToTensor``, the sample's masking noise; the batch stays
  ``uint8`` until ``normalize_images`` after the copy to the device.
- **official**: the pipeline of facebookresearch/mae's ``main_pretrain.py``: an
  ``ImageFolder``-style PIL decode, ``RandomResizedCrop`` and flip on the PIL image, ``ToTensor``
  and ``Normalize`` in the worker, so ``float32`` batches (four times the bytes) go through shared
  memory, pinned memory and the copy.

Both use ``mae-pretrain``'s ``DataLoader`` settings (workers, batch, ``pin_memory`` on CUDA) and the same loop: take a batch, copy it to the device without blocking (ours: normalise it
there). The first ``--warmup`` batches (workers starting) are not timed; the GPU is synchronised
before the clock stops. The pipelines take turns over ``--repeats`` rounds and the table gives the
median images/s of each.

Without ``--data`` it writes ``--images`` JPEGs of 500 x 375 pixels (ImageNet's most common size,
quality 90) cut from scikit-image's photographs into a temporary folder.

    .venv/bin/python benchmarks/pretrain_data.py                       # CPU: 0 workers and all cores
    .venv/bin/python benchmarks/pretrain_data.py --device cuda       # mae-pretrain's default workers
    .venv/bin/python benchmarks/pretrain_data.py --data /data/imagenet/train --workers 8
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from refimpl.train.data import (  # noqa: E402
    IMAGENET_MEAN,
    IMAGENET_STD,
    EmbeddedPhotos,
    FolderImages,
    MAEPretrainDataset,
    Sample,
    normalize_images,
    scan_image_folder,
)
from refimpl.train.pretrain import default_workers  # noqa: E402

PIPELINES = ("ours", "official")


def write_jpegs(folder: Path, n: int, size: tuple[int, int] = (500, 375), quality: int = 90) -> list[Path]:
    """``n`` JPEGs of ``size`` (W, H) in ``folder``: crops of scikit-image's photographs, resized."""
    import numpy as np
    from PIL import Image

    photos = EmbeddedPhotos(crops_per_photo=1, max_side=2**16).photos  # RGB, full size
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        photo = photos[i % len(photos)]
        w, h = photo.size
        cw, ch = int(w * rng.uniform(0.6, 1.0)), int(h * rng.uniform(0.6, 1.0))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        path = folder / f"{i:05d}.jpg"
        photo.crop((x, y, x + cw, y + ch)).resize(size, Image.Resampling.BICUBIC).save(path, quality=quality)
        paths.append(path)
    return paths


class OfficialImages(torch.utils.data.Dataset):
    """The official ``main_pretrain.py`` pipeline: PIL decode, PIL crop and flip, ``ToTensor``, ``Normalize``.

    ``dataset[i]`` is ``float32 (3, S, S)``, normalised.
    """

    def __init__(self, files: list[Path], img_size: int) -> None:
        from torchvision import transforms

        self.files = files
        self.transform = transforms.Compose([
            transforms.RandomResizedCrop(img_size, scale=(0.2, 1.0), interpolation=transforms.InterpolationMode.BICUBIC),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ])

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> torch.Tensor:
        from PIL import Image

        with open(self.files[index], "rb") as handle, Image.open(handle) as image:
            return self.transform(image.convert("RGB"))


def loader_and_step(pipeline: str, files: list[Path], img_size: int, batch: int, workers: int, batches: int,
                    device: torch.device) -> tuple[Iterator, Callable[[object], torch.Tensor]]:
    """A ``DataLoader`` over ``batches`` batches of ``pipeline`` and the per-batch work of the training loop."""
    cuda = device.type == "cuda"
    count = batches * batch
    order = [int(i) % len(files) for i in torch.randperm(max(count, len(files)), generator=torch.Generator().manual_seed(0))]
    if pipeline == "ours":
        dataset = MAEPretrainDataset(FolderImages(files), img_size, (img_size // 16) ** 2, seed=0)
        sampler = [(i // len(files), index) for i, index in enumerate(order[:count])]  # (epoch, index) keys
    else:
        dataset, sampler = OfficialImages(files, img_size), order[:count]
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, sampler=sampler, num_workers=workers,
                                         pin_memory=cuda, drop_last=True)  # mae-pretrain's settings

    def ours(item: Sample) -> torch.Tensor:
        imgs, noise = item.image, item.noise  # uint8 (B, 3, S, S), (B, L)
        noise.to(device, non_blocking=True)
        return normalize_images(imgs.to(device, non_blocking=True))

    def official(imgs: torch.Tensor) -> torch.Tensor:
        return imgs.to(device, non_blocking=True)  # float32 (B, 3, S, S), normalised in the worker

    return iter(loader), ours if pipeline == "ours" else official


def measure(pipeline: str, files: list[Path], img_size: int, batch: int, workers: int, warmup: int, batches: int,
            device: torch.device) -> dict[str, float]:
    """Images/s of ``batches`` batches after ``warmup`` untimed ones, and the bytes of one batch on the host."""
    batches_iter, step = loader_and_step(pipeline, files, img_size, batch, workers, warmup + batches, device)
    for _ in range(warmup):
        step(next(batches_iter))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for item in batches_iter:
        step(item)
        host_bytes = sum(t.nbytes for t in (item if isinstance(item, (list, tuple)) else [item]))
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    return {"images_per_s": batches * batch / seconds, "batch_mib": host_bytes / 2**20}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--data", default=None, help="a folder of images (default: generated JPEGs)")
    parser.add_argument("--images", type=int, default=512, help="JPEGs to generate without --data")
    parser.add_argument("--img-size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=None, help="images per batch (64 on CPU, 256 on CUDA)")
    parser.add_argument("--batches", type=int, default=None, help="timed batches (16 on CPU, 10 on CUDA)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed batches first (workers starting)")
    parser.add_argument("--workers", type=int, nargs="+", default=None,
                        help="DataLoader workers to try (default: 0 and all cores on CPU; on CUDA "
                             "mae-pretrain's default)")
    parser.add_argument("--repeats", type=int, default=None,
                        help="rounds, the two pipelines taking turns at going first (5 on CPU, 3 on CUDA)")
    args = parser.parse_args(argv)
    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        parser.error("--device cuda needs a CUDA device")
    device = torch.device(args.device)
    cores = os.cpu_count() or 1
    batch = args.batch or (256 if cuda else 64)
    batches = args.batches or (10 if cuda else 16)
    repeats = args.repeats or (3 if cuda else 5)
    worker_options = args.workers or ([default_workers(device)] if cuda else [0, cores])

    with tempfile.TemporaryDirectory() as tmp:
        if args.data:
            files = list(scan_image_folder(args.data).files)
            where = args.data
        else:
            files = write_jpegs(Path(tmp), args.images)
            where = f"{args.images} generated 500x375 JPEGs"
        print(f"# MAE input pipeline, {where}, {args.img_size} px, batch {batch}, device "
              f"{torch.cuda.get_device_name(device) if cuda else 'cpu'} ({cores} cores), torch {torch.__version__}, "
              f"median of {repeats} rounds of {batches} batches after {args.warmup}")
        print("| pipeline | workers | images/s | batch on the host (MiB) |")
        print("| --- | --- | --- | --- |")
        for workers in worker_options:
            rates: dict[str, list[float]] = {p: [] for p in PIPELINES}
            sizes: dict[str, float] = {}
            for round_ in range(repeats):
                for pipeline in PIPELINES[round_ % 2:] + PIPELINES[: round_ % 2]:  # take turns at going first
                    row = measure(pipeline, files, args.img_size, batch, workers, args.warmup, batches, device)
                    rates[pipeline].append(row["images_per_s"])
                    sizes[pipeline] = row["batch_mib"]
            median = {p: statistics.median(rates[p]) for p in PIPELINES}
            for pipeline in PIPELINES:
                print(f"| {pipeline} | {workers} | {median[pipeline]:.0f} | {sizes[pipeline]:.1f} |")
            print(f"| ours/official | {workers} | {median['ours'] / median['official']:.2f}x | "
                  f"{sizes['ours'] / sizes['official']:.2f}x |")


if __name__ == "__main__":
    main()
