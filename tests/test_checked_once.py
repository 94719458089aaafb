"""Each input is checked once per call: the guards stand at the door, the math runs unchecked inside.

``checks_counter.counting_checks`` counts the checks of ``refimpl.checks`` by argument name while
one public entry point of the MAE path runs once; no argument may be checked twice.

``python tests/test_checked_once.py`` prints the table the redesign's note reports.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

from checks_counter import counting_checks
from refimpl import checks, masking, vit
from refimpl.mae import mae_vit_tiny_patch16

IMG = 32
PATCH = 16


def _mae():
    torch.manual_seed(0)
    return mae_vit_tiny_patch16(img_size=IMG).eval()


def _vit():
    torch.manual_seed(0)
    return vit.vit_tiny_patch16_224(img_size=IMG, num_classes=3).eval()


def _entry_points() -> dict[str, Callable[[], object]]:
    """The public calls of the MAE path, each with valid input built outside the count."""
    imgs = torch.randn(2, 3, IMG, IMG)
    noise = torch.rand(2, (IMG // PATCH) ** 2)
    mae, model = _mae(), _vit()
    patches = masking.patchify(imgs, PATCH)
    masked = masking.random_masking(patches, 0.5, noise)
    pred = torch.randn(2, (IMG // PATCH) ** 2, PATCH * PATCH * 3)
    return {
        "MaskedAutoencoderViT.forward": lambda: mae(imgs, 0.5, noise),
        "MaskedAutoencoderViT.forward_encoder": lambda: mae.forward_encoder(imgs, 0.5, noise),
        "MaskedAutoencoderViT.forward_loss": lambda: mae.forward_loss(imgs, pred, masked.mask),
        "VisionTransformer.forward": lambda: model(imgs),
        "patchify": lambda: masking.patchify(imgs, PATCH),
        "unpatchify": lambda: masking.unpatchify(patches, PATCH),
        "random_masking": lambda: masking.random_masking(patches, 0.5, noise),
        "unshuffle": lambda: masking.unshuffle(masked.kept, masked.ids_restore, torch.zeros(1, 1, patches.shape[-1])),
        "ids_from_mask": lambda: masking.ids_from_mask(masked.mask),
        "mae_vit_tiny_patch16": lambda: mae_vit_tiny_patch16(img_size=IMG),
    }


def table() -> list[tuple[str, int, int, str]]:
    """``(entry point, checks run, most checks of one argument, that argument)`` per entry point."""
    rows = []
    for entry, call in _entry_points().items():
        with counting_checks() as counts:
            call()
        worst, times = counts.most_common(1)[0] if counts else ("—", 0)
        rows.append((entry, sum(counts.values()), times, worst))
    return rows


@pytest.mark.parametrize("entry", list(_entry_points()))
def test_each_argument_of_a_public_call_on_the_mae_path_is_checked_at_most_once(entry):
    call = _entry_points()[entry]
    with counting_checks() as counts:
        call()
    twice = {name: n for name, n in counts.items() if n > 1}
    assert not twice, f"{entry} checks {twice} more than once per call"


def test_the_counter_sees_a_check_that_runs_twice():
    # A test that cannot fail is a defect: the counter must see a repeated check.
    imgs = torch.randn(1, 3, IMG, IMG)
    with counting_checks() as counts:
        checks.images(imgs, "imgs", "(B, C, H, W)", 4, torch.float32)
        checks.images(imgs, "imgs", "(B, C, H, W)", 4, torch.float32)
    assert counts["imgs"] == 2 and sum(counts.values()) == 2  # nested checks inside images are not counted


if __name__ == "__main__":
    print("| public call | checks run | most checks of one argument |\n| --- | ---: | --- |")
    for entry, total, times, worst in table():
        print(f"| `{entry}` | {total} | {times} (`{worst}`) |")
