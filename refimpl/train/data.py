"""Images for pretraining: a folder scan, the embedded photographs, the augmentation, a resumable sampler.

Every random choice about a sample (its crop, its flip, its mask) is drawn from a generator
seeded by ``(seed, epoch, index)`` alone, never from a process's global random state. That is
what makes a run reproducible across data-loader workers, across a kill and a resume, and across
world sizes: sample 17 of epoch 3 gets the same crop and the same mask whether one process or
eight load it, before or after a restart. The sampler then only has to say *which* indices a
process takes, which is the job of
[`ResumableSampler`][refimpl.train.data.ResumableSampler].

Shapes: ``C = 3`` channels, ``S`` the image side after cropping, ``L = (S / p)^2`` patches.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, Sampler

from ..checks import path_problem

if TYPE_CHECKING:
    from PIL import Image

__all__ = [
    "EMBEDDED_PHOTOS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "IMG_EXTENSIONS",
    "UNREADABLE_FRACTION",
    "DataError",
    "EmbeddedPhotos",
    "FolderImages",
    "ImageScan",
    "MAEPretrainDataset",
    "ResumableSampler",
    "Sample",
    "UnreadableImage",
    "denormalize_images",
    "normalize_images",
    "pretrain_transform",
    "sample_seed",
    "scan_image_folder",
    "too_many_unreadable",
    "unreadable_limit",
]

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
"""File name endings read as images (case-insensitive), as torchvision's ``ImageFolder``."""

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

EMBEDDED_PHOTOS = (
    "astronaut.png", "brick.png", "camera.png", "cell.png", "chelsea.png", "clock_motion.png", "coffee.png",
    "coins.png", "grass.png", "gravel.png", "hubble_deep_field.jpg", "ihc.png", "moon.png",
    "motorcycle_left.png", "page.png", "retina.jpg", "rocket.jpg", "text.png",
)
"""The photographs shipped inside scikit-image (no download) used when no ``--data`` is given.

Synthetic images (chessboards, logos, phantoms) are left out: they teach little about photographs.
"""


class DataError(ValueError):
    """The data folder cannot be used; the message is one line naming the folder and the problem."""


class UnreadableImage(DataError):
    """One image file cannot be decoded (truncated, corrupt, removed while the run reads it).

    Args:
        path: the file.
        reason: what the decoder said, one line.
    """

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"image {str(path)!r} cannot be decoded: {reason}")
        self.path, self.reason = path, reason

    def __reduce__(self) -> tuple[type, tuple[Path, str]]:  # data-loader workers pickle it
        return type(self), (self.path, self.reason)


UNREADABLE_FRACTION = 0.01
"""The share of a data folder's images that may be unreadable, or change between sessions, before a run stops."""


def unreadable_limit(n: int) -> int:
    """How many of ``n`` images may be unreadable in one epoch (and may be added or removed before a
    resume): 1 %, and at least one.

    Examples:
        >>> unreadable_limit(8), unreadable_limit(1_281_167)
        (1, 12811)
    """
    return max(1, int(n * UNREADABLE_FRACTION))


def too_many_unreadable(first: Path, reason: str, count: int, n: int) -> str:
    """The one-line message that stops a run: ``count`` of ``n`` images cannot be decoded, ``first`` among them."""
    others = f" and {count - 1} more" if count > 1 else ""
    return (f"image {str(first)!r}{others} cannot be decoded ({reason}); a run reads on past at most "
            f"{unreadable_limit(n)} unreadable of its {n} images ({UNREADABLE_FRACTION:.0%}, at least one): fix or "
            f"replace them, then run the same command to resume")


@dataclass(frozen=True)
class ImageScan:
    """What [`scan_image_folder`][refimpl.train.data.scan_image_folder] found."""

    root: Path
    """The folder scanned."""
    files: tuple[Path, ...]
    """Image files, sorted, so every process sees the same order; each real file once."""
    skipped: int
    """Files skipped: not an image by name, hidden, a dangling link, or (``check_images``) unreadable."""
    links: int = 0
    """Links not followed: to the folder itself, into it, to one of its ancestors, or to a file or
    folder found already (a loop such as ``ln -s . D/again``, or two names for one file)."""


def scan_image_folder(root: str | PathLike[str], check_images: bool = True) -> ImageScan:
    """List the images under ``root``: class subfolders (``ImageFolder`` layout) or a flat folder.

    Files are searched recursively; labels, if any, are ignored (MAE needs none). A file whose
    name does not end in one of ``IMG_EXTENSIONS`` is skipped, and so is one PIL cannot open when
    ``check_images`` (only the header is read, so this is cheap: a file cut short after its header
    is found by the loader, see [`MAEPretrainDataset`][refimpl.train.data.MAEPretrainDataset]).
    Symbolic links are followed, except a link that leads back to ``root``, into it or to one of
    its ancestors (``ln -s . D/again`` would otherwise count every image again and again): each
    real file and folder is read once, whatever the number of names it has. Skips are counted and
    reported in one ``UserWarning``, not raised.

    Args:
        root: the data folder.
        check_images: open each image's header and skip unreadable files.

    Returns:
        An [`ImageScan`][refimpl.train.data.ImageScan].

    Raises:
        DataError: if ``root`` is not a readable folder (missing, a file, a link loop, ...), a
            folder under it cannot be listed, or it holds no image.
    """
    root = Path(root)
    problem = path_problem(root, "folder")
    if problem:
        raise DataError(f"data folder {str(root)!r} {problem}")
    real_root, top = root.resolve(), root.stat()
    seen = {(top.st_dev, top.st_ino)}  # folders and files, by identity: each real one once
    files: list[Path] = []
    skipped = links = 0
    pending = [(root, top.st_dev)]
    while pending:  # depth first, each folder's files before its subfolders: os.walk's order
        folder, device = pending.pop()
        try:
            with os.scandir(folder) as listing:
                entries = sorted(listing, key=lambda e: e.name)
        except OSError as exc:
            raise DataError(f"data folder {str(root)!r} cannot be read: {exc.strerror or exc} ({exc.filename})") from None
        subfolders = []
        for entry in entries:
            kind, identity = _classify(entry, device, real_root, seen)
            if kind == "file" and check_images and not _header_ok(Path(entry.path)):
                kind = "skipped"
            if kind == "folder":
                subfolders.append((Path(entry.path), identity[0]))
            elif kind == "file":
                files.append(Path(entry.path))
            skipped, links = skipped + (kind == "skipped"), links + (kind == "link")
        pending.extend(reversed(subfolders))
    if not files:
        raise DataError(
            f"data folder {str(root)!r} holds no readable image ({skipped} other files); expected "
            f"{', '.join(IMG_EXTENSIONS[:3])}, ... files directly inside or in class subfolders"
        )
    if skipped or links:
        parts = [f"{skipped} non-image or unreadable files"] if skipped else []
        parts += [f"{links} links back into the folder or to files read already"] if links else []
        warnings.warn(f"skipped {' and '.join(parts)} in data folder {str(root)!r}", stacklevel=2)
    return ImageScan(root, tuple(files), skipped, links)


def _classify(entry: os.DirEntry, device: int, real_root: Path,
              seen: set[tuple[int, int]]) -> tuple[str, tuple[int, int] | None]:
    """What the scan does with one folder entry, and the entry's identity ``(device, inode)``.

    ``"hidden"`` (a hidden folder: ignored, not counted), ``"skipped"`` (not an image by name, hidden,
    a dangling link), ``"link"`` (not followed: back into the folder, to an ancestor, or to what was
    read already), else ``"folder"`` or ``"file"``, added to ``seen``.
    """
    path = Path(entry.path)
    try:
        is_dir = entry.is_dir()
    except OSError:  # a link loop
        is_dir = False
    if is_dir and entry.name.startswith("."):
        return "hidden", None
    if not is_dir and (entry.name.startswith(".") or not entry.name.lower().endswith(IMG_EXTENSIONS)):
        return "skipped", None
    if entry.is_symlink():
        try:
            target = path.resolve(strict=True)
            info = target.stat()
        except (OSError, RuntimeError):  # dangling, or a loop of links
            return "skipped", None
        if target.is_relative_to(real_root) or real_root.is_relative_to(target):
            return "link", None  # into the folder (read there) or one of its ancestors (holding it)
        identity = (info.st_dev, info.st_ino)
    else:
        identity = (device, entry.inode())
    if identity in seen:
        return "link", None
    seen.add(identity)
    return ("folder" if is_dir else "file"), identity


def _header_ok(path: Path) -> bool:
    from PIL import Image

    try:
        with Image.open(path) as image:
            image.size  # noqa: B018 - the header is parsed lazily by .size
        return True
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):  # PIL raises all of these for bad files
        return False


class FolderImages:
    """Images of a folder scan, decoded on demand as RGB PIL images (as torchvision's ``ImageFolder``).

    Args:
        files: the image paths (see [`scan_image_folder`][refimpl.train.data.scan_image_folder]).
    """

    def __init__(self, files: Sequence[Path]) -> None:
        self.files = tuple(files)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> Image.Image:
        """The ``index``-th image as RGB.

        Raises:
            UnreadableImage: if the file cannot be opened or decoded (e.g. cut short after its header).
        """
        from PIL import Image

        path = self.files[index]
        try:
            with Image.open(path) as image:
                return image.convert("RGB")  # decodes the whole file before it is closed
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise UnreadableImage(path, " ".join(str(exc).split()) or type(exc).__name__) from None


class EmbeddedPhotos:
    """The default data: ``crops_per_photo`` entries per photograph shipped with scikit-image.

    The photographs are decoded once, converted to RGB and shrunk so that the shorter side is at
    most ``max_side`` (a 64 px crop needs no more); the augmentation then takes a different random
    crop of the same photograph for every entry and epoch.

    Args:
        crops_per_photo: entries per photograph in one epoch.
        max_side: shorter side after shrinking, in pixels.

    Raises:
        DataError: if scikit-image or its bundled photographs are missing.
    """

    def __init__(self, crops_per_photo: int = 64, max_side: int = 256) -> None:
        try:
            import skimage.data
            from PIL import Image
        except ImportError as exc:
            raise DataError(f"the default data (scikit-image's photographs) needs scikit-image ({exc}): "
                            f"pip install 'paper-notes[train]', or pass --data DIR") from None
        folder = Path(skimage.data.__file__).parent
        self.names = tuple(n for n in EMBEDDED_PHOTOS if (folder / n).is_file())
        if not self.names:
            raise DataError(f"scikit-image's photographs are missing from {str(folder)!r}; pass --data DIR")
        self.photos: list[Image.Image] = []
        for name in self.names:
            with Image.open(folder / name) as image:
                image = image.convert("RGB")
                scale = max_side / min(image.size)
                if scale < 1:
                    size = (round(image.size[0] * scale), round(image.size[1] * scale))
                    image = image.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)
                self.photos.append(image)
        self.crops_per_photo = crops_per_photo

    def __len__(self) -> int:
        return len(self.photos) * self.crops_per_photo

    def __getitem__(self, index: int) -> Image.Image:
        return self.photos[index % len(self.photos)]


def pretrain_transform(img_size: int) -> object:
    """MAE's pretraining augmentation, as torchvision transforms v2 on an RGB PIL image.

    ``RandomResizedCrop(img_size, scale=(0.2, 1.0), bicubic)`` and a horizontal flip, then the
    pixels as a ``uint8`` tensor. These are official ``main_pretrain.py``'s transforms, run by PIL
    as there and drawing the same random numbers, so a seed gives the official crop to the pixel.
    No colour jitter: MAE needs none. The conversion to float and the ImageNet normalisation are
    [`normalize_images`][refimpl.train.data.normalize_images], which the trainer applies on the
    device: data-loader workers, shared memory, pinned memory and the host-to-device copy then move
    a quarter of the bytes of a ``float32`` batch.

    Args:
        img_size: output side ``S``.

    Returns:
        A callable ``PIL image (H, W) -> uint8 (3, S, S)``.
    """
    from torchvision.transforms import v2

    return v2.Compose([
        v2.RandomResizedCrop(img_size, scale=(0.2, 1.0), interpolation=v2.InterpolationMode.BICUBIC),
        v2.RandomHorizontalFlip(),
        v2.PILToTensor(),
    ])


def normalize_images(imgs: Tensor) -> Tensor:
    """``uint8`` images to the model's input: scale to ``[0, 1]``, then ImageNet normalisation.

    The same float operations as torchvision's ``ToTensor`` and ``Normalize`` in official
    ``main_pretrain.py`` (divide by 255, subtract the mean, divide by the standard deviation), so
    the values are bit-identical, on the CPU or a GPU; the trainer runs it after the batch reaches
    the device. It never makes the host wait for the device.

    Args:
        imgs: ``uint8`` images ``(..., 3, S, S)``, e.g. a batch ``(B, 3, S, S)``.

    Returns:
        ``float32`` images of the same shape, on the same device.

    Raises:
        TypeError: if ``imgs`` is not a ``uint8`` tensor.
        ValueError: if its third-last dimension is not 3 channels.

    Examples:
        >>> normalize_images(torch.full((1, 3, 2, 2), 255, dtype=torch.uint8))[0, :, 0, 0]
        tensor([2.2489, 2.4286, 2.6400])
    """
    if not isinstance(imgs, Tensor) or imgs.dtype != torch.uint8:
        got = f"a {imgs.dtype} tensor" if isinstance(imgs, Tensor) else type(imgs).__name__
        raise TypeError(f"imgs must be a uint8 tensor (..., 3, S, S); got {got}")
    if imgs.ndim < 3 or imgs.shape[-3] != 3:
        raise ValueError(f"imgs must have shape (..., 3, S, S) with 3 channels; got {tuple(imgs.shape)}")
    # The constants are filled on the device: a tensor made from a Python list would be copied
    # from the host and make the host wait for the GPU at every batch. 255 is a tensor too:
    # CUDA divides by a plain number through its reciprocal, which can change the last bit.
    scale = torch.full((), 255.0, device=imgs.device)
    mean, std = _per_channel(IMAGENET_MEAN, imgs.device), _per_channel(IMAGENET_STD, imgs.device)
    return imgs.to(torch.float32).div_(scale).sub_(mean).div_(std)  # in place on the new float copy


def denormalize_images(imgs: Tensor) -> Tensor:
    """Undo [`normalize_images`][refimpl.train.data.normalize_images]'s mean and standard deviation: pixels in ``[0, 1]``.

    Args:
        imgs: normalised images ``(..., 3, S, S)``, any floating dtype.

    Returns:
        ``float32`` images of the same shape, clamped to ``[0, 1]`` for display.
    """
    mean, std = _per_channel(IMAGENET_MEAN, imgs.device), _per_channel(IMAGENET_STD, imgs.device)  # (3, 1, 1)
    return (imgs.float() * std + mean).clamp(0, 1)


def _per_channel(values: Sequence[float], device: torch.device) -> Tensor:
    """``float32 (C, 1, 1)`` holding ``values``, written by the device itself (no host-to-device copy)."""
    out = torch.empty(len(values), 1, 1, device=device)
    for channel, value in enumerate(values):
        out[channel].fill_(value)
    return out


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 63-bit seed for one sample of one epoch, well mixed by numpy's ``SeedSequence``.

    Examples:
        >>> sample_seed(0, 3, 17) == sample_seed(0, 3, 17) != sample_seed(0, 4, 17)
        True
    """
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(2, np.uint64)[0] >> np.uint64(1))


class Sample(NamedTuple):
    """One item of [`MAEPretrainDataset`][refimpl.train.data.MAEPretrainDataset] (batched by the data loader: ``B`` first)."""

    image: Tensor
    """``uint8 (3, S, S)``: the augmented crop."""
    noise: Tensor
    """``(L,)``: the masking noise."""
    unreadable: Tensor
    """``int64 ()``: the sample's own index if its file could not be decoded and the next readable
    image stood in for it, else -1."""


class MAEPretrainDataset(Dataset):
    """Augmented images and their masking noise, keyed by ``(epoch, index)``.

    ``dataset[(epoch, index)]`` returns a [`Sample`][refimpl.train.data.Sample]
    ``(image uint8 (3, S, S), noise (L,), unreadable)``; the image becomes the model's input
    through [`normalize_images`][refimpl.train.data.normalize_images]. Both are drawn from a
    generator seeded by [`sample_seed`][refimpl.train.data.sample_seed]; the noise's argsort is the
    sample's shuffle in [`random_masking`][refimpl.masking.random_masking] (for MAE-Hiera: of its
    mask units, ``L = U``), so the mask is fixed by the sample too.

    An image that cannot be decoded (cut short after its header, corrupt, removed during the run)
    is replaced by the next readable one (``index + 1``, ``index + 2``, ... wrapping around), with
    the crop and mask of ``(epoch, index)``, and ``unreadable`` says so: a choice that depends on
    the files alone, so every worker, rank and resumed session makes the same one. The trainer
    counts these and stops when more than
    [`unreadable_limit`][refimpl.train.data.unreadable_limit] of them turn up in an epoch; here,
    more than that many unreadable files in a row stop the search.

    Args:
        source: ``len`` and ``[i] -> RGB PIL image``, raising
            [`UnreadableImage`][refimpl.train.data.UnreadableImage] for a bad file; an
            [`EmbeddedPhotos`][refimpl.train.data.EmbeddedPhotos] or
            [`FolderImages`][refimpl.train.data.FolderImages].
        img_size: output side ``S``.
        num_patches: ``L``, the length of the noise: the patches of a ViT MAE, the mask units of a Hiera one.
        seed: the run's seed.
    """

    def __init__(self, source: object, img_size: int, num_patches: int, seed: int) -> None:
        self.source = source
        self.transform = pretrain_transform(img_size)
        self.num_patches = num_patches
        self.seed = seed

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, key: tuple[int, int]) -> Sample:
        """The sample ``(epoch, index)``.

        Raises:
            DataError: if the file at ``index`` and the
                [`unreadable_limit`][refimpl.train.data.unreadable_limit] files after it are all unreadable.
        """
        epoch, index = key
        image, unreadable = self._image(index)
        # torchvision's transforms draw from the global CPU generator: seed a private copy of it.
        # (Not torch.manual_seed: it also queues a seed for every accelerator, formatting a stack
        # trace each time, which made every sample 10 % slower.)
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(sample_seed(self.seed, epoch, index))
            out = self.transform(image)  # uint8 (3, S, S)
            noise = torch.rand(self.num_patches)  # (L,)
        return Sample(out, noise, torch.tensor(unreadable))

    def _image(self, index: int) -> tuple[Image.Image, int]:
        """The image at ``index``, or the next readable one, and ``index`` if it was replaced (else -1)."""
        n = len(self.source)
        tries = min(unreadable_limit(n) + 1, n)
        failures: list[UnreadableImage] = []  # tries >= 1, so the loop ends with one at least
        for offset in range(tries):
            try:
                return self.source[(index + offset) % n], -1 if offset == 0 else index
            except UnreadableImage as exc:
                failures.append(exc)
        raise DataError(too_many_unreadable(failures[0].path, failures[0].reason, tries, n))


class ResumableSampler(Sampler[tuple[int, int]]):
    """``DistributedSampler(shuffle=True, drop_last=True)`` that can start in the middle of an epoch.

    Each epoch is one permutation of ``range(n)`` seeded by ``seed + epoch`` (the same on every
    rank), cut to a multiple of ``num_replicas``; rank ``r`` takes every ``num_replicas``-th index
    starting at ``r``. Consecutive micro-batches of all ranks together therefore cover consecutive
    stretches of the permutation: a step sees the same images whatever the world size. It yields
    ``(epoch, index)`` keys for [`MAEPretrainDataset`][refimpl.train.data.MAEPretrainDataset].

    Args:
        n: dataset length.
        num_replicas: world size.
        rank: this process's rank.
        seed: the run's seed.

    Examples:
        >>> s = ResumableSampler(10, num_replicas=2, rank=1, seed=0)
        >>> s.set_position(epoch=0, start=3)
        >>> full = ResumableSampler(10, num_replicas=2, rank=1, seed=0)
        >>> list(s) == list(full)[3:]
        True
    """

    def __init__(self, n: int, num_replicas: int = 1, rank: int = 0, seed: int = 0) -> None:
        self.n, self.num_replicas, self.rank, self.seed = n, num_replicas, rank, seed
        self.per_rank = n // num_replicas
        self.epoch = 0
        self.start = 0

    def set_position(self, epoch: int, start: int = 0) -> None:
        """Begin the next iteration at this rank's ``start``-th sample of ``epoch``."""
        self.epoch, self.start = epoch, start

    def state_dict(self) -> dict[str, int]:
        """``{"epoch", "start"}``: where the next iteration begins."""
        return {"epoch": self.epoch, "start": self.start}

    def __len__(self) -> int:
        return self.per_rank - self.start

    def __iter__(self) -> Iterator[tuple[int, int]]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(self.n, generator=generator)[: self.per_rank * self.num_replicas]
        mine = order[self.rank :: self.num_replicas][self.start :]
        return iter([(self.epoch, int(i)) for i in mine])
