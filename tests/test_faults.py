"""The fault suite: what a new user gets wrong, and what the machine does wrong, tried on purpose.

Every try ends one of two ways: a clear one-line error naming the argument, file or field (the
library raises ``ValueError``/``TypeError``; a command exits with its documented status and prints
one line), or the fault is recovered from and reported. Never a traceback, never a bad input
accepted in silence, never a user's file lost or overwritten.

- **API**: bad arguments to the models and the pure functions.
- **Files**: bad ``papers/`` and diary files that ``notes check`` must report, every one, by file
  and field.
- **Commands**: bad arguments and broken environments for ``notes`` and ``mae-pretrain``: a
  read-only folder and a full disk (small tmpfs mounts, where the test may mount them), a missing
  editor, an output folder that is a file, a diverging run, unreadable checkpoints, a killed
  write, a missing optional package.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from paper_notes import cli
from paper_notes.checks import check_project
from refimpl.checkpoints import load_checkpoint
from refimpl.hiera import Hiera, MaskedAutoencoderHiera
from refimpl.kan import KANLinear
from refimpl.mae import MaskedAutoencoderViT
from refimpl.masking import mask_unit_masking, patchify, random_masking, shuffle_order
from refimpl.train import pretrain
from refimpl.train.checkpoint import checkpoint_name, list_checkpoints
from refimpl.train.config import ConfigError, PretrainConfig
from refimpl.vit import VisionTransformer

from conftest import ROOT
from faults import fill, one_line, remount_read_only, snapshot, tmpfs

TINY_MAE = dict(img_size=32, patch_size=8, embed_dim=16, depth=1, num_heads=2, decoder_embed_dim=8,
                decoder_depth=1, decoder_num_heads=2)
TINY_HIERA = dict(input_size=(64, 64), embed_dim=8, num_heads=1, stages=(1, 1, 1, 1), decoder_embed_dim=8,
                  decoder_depth=1, decoder_num_heads=1)
NAN = float("nan")


# --- API: a bad argument is a ValueError or TypeError that names it ----------------------------------


def _mae() -> MaskedAutoencoderViT:
    torch.manual_seed(0)
    return MaskedAutoencoderViT(**TINY_MAE)


def _mae_hiera() -> MaskedAutoencoderHiera:
    torch.manual_seed(0)
    return MaskedAutoencoderHiera(**TINY_HIERA)


IMGS = torch.zeros(2, 3, 32, 32)
HIERA_IMGS = torch.zeros(2, 3, 64, 64)

API_CASES: list[tuple[str, Callable[[], object], type[Exception], str]] = [
    ("patchify patch_size=0", lambda: patchify(IMGS, 0), ValueError, r"patch_size=0 is not positive"),
    ("patchify patch_size=2.0", lambda: patchify(IMGS, 2.0), TypeError, r"patch_size must be an int"),
    ("ViT patch_size=0", lambda: VisionTransformer(img_size=32, patch_size=0), ValueError, r"patch_size=0"),
    ("ViT depth=-1", lambda: VisionTransformer(img_size=32, patch_size=16, depth=-1), ValueError, r"depth=-1"),
    ("ViT num_heads=0", lambda: VisionTransformer(img_size=32, patch_size=16, num_heads=0), ValueError, r"num_heads=0"),
    ("ViT float64 images", lambda: VisionTransformer(img_size=32, patch_size=16, embed_dim=16, depth=1, num_heads=2)(
        torch.zeros(1, 3, 32, 32, dtype=torch.float64)), TypeError, r"x has dtype torch.float64 but the model's"),
    ("ViT uint8 images", lambda: VisionTransformer(img_size=32, patch_size=16, embed_dim=16, depth=1, num_heads=2)(
        torch.zeros(1, 3, 32, 32, dtype=torch.uint8)), TypeError, r"floating-point images"),
    ("MAE patch_size=0", lambda: MaskedAutoencoderViT(**{**TINY_MAE, "patch_size": 0}), ValueError, r"patch_size=0"),
    ("MAE depth=-1", lambda: MaskedAutoencoderViT(**{**TINY_MAE, "depth": -1}), ValueError, r"depth=-1"),
    ("MAE decoder_depth=0", lambda: MaskedAutoencoderViT(**{**TINY_MAE, "decoder_depth": 0}), ValueError,
     r"decoder_depth=0"),
    ("MAE mask_ratio=0", lambda: _mae()(IMGS, 0.0), ValueError, r"mask_ratio=0.0 removes no patch of 16"),
    ("MAE mask_ratio=1", lambda: _mae()(IMGS, 1.0), ValueError, r"mask_ratio=1.0 is outside \[0, 1\)"),
    ("MAE mask_ratio='0.75'", lambda: _mae()(IMGS, "0.75"), TypeError, r"mask_ratio must be a real number"),
    ("MAE empty batch", lambda: _mae()(torch.zeros(0, 3, 32, 32)), ValueError, r"a batch of 0 images"),
    ("MAE noise as a list", lambda: _mae()(IMGS, noise=[[0.5] * 16] * 2), TypeError, r"noise must be a torch.Tensor"),
    ("MAE all-NaN noise", lambda: _mae()(IMGS, noise=torch.full((2, 16), NAN)), ValueError, r"noise holds NaN"),
    ("MAE float64 images", lambda: _mae()(IMGS.double()), TypeError, r"imgs has dtype torch.float64"),
    ("MAE float16 images", lambda: _mae()(IMGS.half()), TypeError, r"imgs has dtype torch.float16"),
    ("MAE uint8 images", lambda: _mae()(IMGS.to(torch.uint8)), TypeError, r"normalise integer pixels first"),
    ("random_masking noise list", lambda: random_masking(torch.zeros(1, 4, 2), 0.5, noise=[[0.1, 0.2, 0.3, 0.4]]),
     TypeError, r"noise must be a torch.Tensor"),
    ("random_masking all-NaN noise", lambda: random_masking(torch.zeros(1, 4, 2), 0.5, noise=torch.full((1, 4), NAN)),
     ValueError, r"noise holds NaN or infinite values"),
    ("shuffle_order inf noise", lambda: shuffle_order(torch.tensor([[0.1, float("inf")]])), ValueError, r"noise holds"),
    ("mask_unit_masking NaN noise", lambda: mask_unit_masking(1, (4, 4), 2, 0.5, noise=torch.full((1, 4), NAN)),
     ValueError, r"noise holds NaN"),
    ("Hiera input_size=64", lambda: Hiera(input_size=64), TypeError, r"input_size must be a tuple"),
    ("Hiera stages with -1", lambda: Hiera(input_size=(64, 64), stages=(1, -1, 1, 1)), ValueError, r"stages\[1\]=-1"),
    ("Hiera embed_dim=0", lambda: Hiera(input_size=(64, 64), embed_dim=0), ValueError, r"embed_dim=0"),
    ("MAE-Hiera mask_ratio=0", lambda: _mae_hiera()(HIERA_IMGS, 0.0), ValueError, r"removes none of the 4 mask units"),
    ("MAE-Hiera mask removes none", lambda: _mae_hiera()(HIERA_IMGS, mask=torch.zeros(2, 4)), ValueError,
     r"mask removes none of the 4 mask units"),
    ("MAE-Hiera empty batch", lambda: _mae_hiera()(torch.zeros(0, 3, 64, 64)), ValueError, r"a batch of 0 images"),
    ("MAE-Hiera NaN noise", lambda: _mae_hiera()(HIERA_IMGS, noise=torch.full((2, 4), NAN)), ValueError,
     r"noise holds NaN"),
    ("MAE-Hiera uint8 images", lambda: _mae_hiera()(HIERA_IMGS.to(torch.uint8)), TypeError, r"floating-point images"),
    ("KAN out_features=0", lambda: KANLinear(3, 0), ValueError, r"out_features=0 is not positive"),
    ("config mask_ratio=0", lambda: PretrainConfig(mask_ratio=0.0), ConfigError, r"mask_ratio=0.0; expected"),
    ("config mask_ratio=NaN", lambda: PretrainConfig(mask_ratio=NAN), ConfigError, r"mask_ratio=nan"),
]


@pytest.mark.parametrize(("call", "error", "match"), [pytest.param(c, e, m, id=i) for i, c, e, m in API_CASES])
def test_the_api_refuses_a_bad_argument_with_an_error_naming_it(
    call: Callable[[], object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match) as info:
        call()
    assert "\n" not in str(info.value)


def test_numpy_scalars_are_numbers_and_a_ratio_that_removes_patches_trains() -> None:
    out = _mae()(IMGS, np.float32(0.5))
    assert torch.isfinite(out.loss) and int(out.mask.sum()) == 2 * 8
    PretrainConfig(mask_ratio=np.float64(0.6))  # checked when built
    assert torch.isfinite(_mae_hiera()(HIERA_IMGS, np.float32(0.5)).loss)


def test_images_in_another_dtype_are_accepted_under_autocast() -> None:
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.isfinite(_mae()(IMGS.half(), 0.75).loss)


CHECKPOINT_CASES = {
    "a folder": (lambda p: p.mkdir(), IsADirectoryError, r"is a folder; expected a checkpoint file"),
    "zero bytes": (lambda p: p.write_bytes(b""), ValueError, r"is empty \(0 bytes\)"),
    "truncated .pth": (lambda p: p.write_bytes(b"PK\x03\x04 cut"), ValueError, r"not a complete torch.save archive"),
    "truncated .safetensors": (lambda p: p.with_suffix(".safetensors").write_bytes(b"\x08\x00\x00"),
                               ValueError, r"\.safetensors' cannot be read: it is not a valid safetensors file"),
}


@pytest.mark.parametrize("case", CHECKPOINT_CASES)
def test_load_checkpoint_names_the_file_and_what_is_wrong_with_it(tmp_path: Path, case: str) -> None:
    make, error, match = CHECKPOINT_CASES[case]
    path = tmp_path / "checkpoint.pth"
    make(path)
    if not path.exists():
        path = path.with_suffix(".safetensors")
    with pytest.raises(error, match=match) as info:
        load_checkpoint(_mae(), path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


class _RunsCode:
    def __reduce__(self) -> tuple:
        return (os.system, ("touch pwned",))


def test_a_pickle_that_would_run_code_is_refused_and_says_what_it_would_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # where the pickled "touch pwned" would leave its file
    path = tmp_path / "evil.pth"
    torch.save({"model": _RunsCode()}, path)
    with pytest.raises(ValueError, match=r"holds pickled code that calls (posix|os)\.system, which is refused") as info:
        load_checkpoint(_mae(), path)
    assert "\n" not in str(info.value)
    assert not Path("pwned").exists() and not (tmp_path / "pwned").exists()


# --- files: notes check reports every bad file, by file and field, and goes on -----------------------


def make_project(root: Path) -> Path:
    """A minimal project at ``root``: mkdocs.yml, papers mae and vit, an empty glossary and diary."""
    (root / "papers").mkdir(parents=True)
    (root / "mkdocs.yml").write_text("site_name: t\n", encoding="utf-8")
    (root / "glossary.yaml").write_text("[]\n", encoding="utf-8")
    (root / "docs/journal/posts").mkdir(parents=True)
    for pid in ("mae", "vit"):
        data = yaml.safe_load((ROOT / "papers" / f"{pid}.yaml").read_text(encoding="utf-8"))
        data["related"] = []  # so that one bad paper is one problem, not also a dangling link
        (root / "papers" / f"{pid}.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A minimal project with one good diary entry."""
    make_project(tmp_path)
    (tmp_path / "docs/journal/posts/2024-10-26-good.md").write_text(entry(), encoding="utf-8")
    return tmp_path


def entry(front: str = "", created: str = "2024-10-26", categories: str = "  - mae\n") -> str:
    return (f"---\ntitle: 好的一天\ndate:\n  created: {created}\n{front}categories:\n{categories}---\n\n"
            f"读了 MAE。\n\n<!-- more -->\n")


def paper(project: Path, **raw: str) -> str:
    """``papers/vit.yaml``'s text with the given top-level fields set to raw YAML text."""
    data = yaml.safe_load((project / "papers/vit.yaml").read_text(encoding="utf-8"))
    data.update({key: f"@{key}@" for key in raw})
    text = yaml.safe_dump(data, allow_unicode=True, width=1000)
    for key, value in raw.items():
        text = text.replace(f"'@{key}@'", value)
    return text


BAD_FILES: dict[str, tuple[str, Callable[[Path], str | bytes], str]] = {
    "paper: a key written twice": ("papers/vit.yaml", lambda p: paper(p) + "status: read\n",
                                   r"field 'status': appears twice"),
    "paper: the same id as x.yml": ("papers/vit.yml", lambda p: paper(p), r"vit.yml: field 'id': 'vit' is also"),
    "paper: a NaN result": ("papers/vit.yaml", lambda p: paper(p, headline_results=(
        "[{task: t, model: m, metric: top-1, value: .nan, where: Table 3}]")),
        r"field 'headline_results\[0\].value': got '.nan' .*expected a finite number"),
    "paper: an impossible date": ("papers/vit.yaml", lambda p: paper(p, added="2024-13-45"),
                                  r"field 'added': got '2024-13-45' .*not a real date"),
    "paper: not UTF-8": ("papers/vit.yaml", lambda p: paper(p).encode() + "# 笔记\n".encode("gbk"), r"is not UTF-8 text"),
    "paper: a DOI that is not one": ("papers/vit.yaml", lambda p: paper(p, doi='"not-a-doi"'), r"field 'doi'"),
    "paper: a title on two lines": ("papers/vit.yaml", lambda p: paper(p, title='"An Image\\nis Worth"'),
                                    r"field 'title': .*line break"),
    "entry: a garbage date.updated": ("docs/journal/posts/2024-10-27-x.md",
                                      lambda p: entry("", "2024-10-27\n  updated: soon"), r"field 'date.updated'"),
    "entry: an unknown date key": ("docs/journal/posts/2024-10-27-x.md",
                                   lambda p: entry("", "2024-10-27\n  modified: 2024-10-28"), r"field 'date.modified'"),
    "entry: categories written twice": ("docs/journal/posts/2024-10-27-x.md",
                                        lambda p: entry("categories: [vit]\n", "2024-10-27"),
                                        r"field 'categories': appears twice"),
    "entry: draft: maybe": ("docs/journal/posts/2024-10-27-x.md", lambda p: entry("draft: maybe\n", "2024-10-27"),
                            r"field 'draft': got 'maybe'; expected true or false"),
    "entry: a category twice": ("docs/journal/posts/2024-10-27-x.md",
                                lambda p: entry("", "2024-10-27", "  - mae\n  - mae\n"), r"names a paper twice"),
    "entry: an impossible date": ("docs/journal/posts/2024-10-27-x.md", lambda p: entry("", "2024-13-40"),
                                  r"field 'date.created': got '2024-13-40'"),
    "entry: not UTF-8": ("docs/journal/posts/2024-10-27-x.md", lambda p: entry("", "2024-10-27").encode("utf-16"),
                         r"is not UTF-8 text"),
    "entry: a tag on two lines": ("docs/journal/posts/2024-10-27-x.md",
                                  lambda p: entry('tags: ["掩码\\n---"]\n', "2024-10-27"), r"field 'tags'"),
}


@pytest.mark.parametrize("case", BAD_FILES)
def test_notes_check_names_the_bad_file_and_field(project: Path, case: str) -> None:
    relative, make, match = BAD_FILES[case]
    content = make(project)
    (project / relative).write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    problems = check_project(project)
    assert len(problems) == 1, problems
    assert problems[0].startswith(str(project / relative)) and re.search(match, problems[0]), problems[0]
    assert "\n" not in problems[0]


def test_notes_check_reports_every_bad_file_and_goes_on(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    posts = project / "docs/journal/posts"
    (project / "papers/vit.yaml").write_text(paper(project, added="2024-13-45"), encoding="utf-8")
    (posts / "2024-10-27-a.md").write_text(entry("draft: maybe\n", "2024-10-27"), encoding="utf-8")
    (posts / "2024-10-28-b.md").write_bytes(entry("", "2024-10-28").encode("utf-16"))
    assert cli.main(["--root", str(project), "check"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(err)
    assert [line.split(":")[0] for line in err[:-1]] == [
        str(project / "papers/vit.yaml"), str(posts / "2024-10-27-a.md"), str(posts / "2024-10-28-b.md")]
    assert err[-1] == "notes check: 3 problem(s)"


def test_notes_papers_and_new_name_the_bad_file_in_one_line(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "papers/vit.yaml").write_text(paper(project, added="2024-13-45"), encoding="utf-8")
    before = snapshot(project)
    for args in (["papers"], ["new", "标题", "--paper", "mae"]):
        assert cli.main(["--root", str(project), *args]) == 2
        line = one_line(capsys.readouterr().err)
        assert str(project / "papers/vit.yaml") in line and "field 'added'" in line
    assert snapshot(project) == before


# --- commands: notes ---------------------------------------------------------------------------------

NOTES_REFUSED = {
    "new: a title with a line break": (["new", "第一行\n第二行", "--paper", "mae"], r"has a line break"),
    "new: a title hiding a fence": (["new", "标题\n---\ndraft: true", "--paper", "mae"], r"has a line break"),
    "new: a tag with a line break": (["new", "标题", "--paper", "mae", "--tag", "掩码\n单元"], r"--tag .* line break"),
    "add-paper: a title with a line break": (["add-paper", "x", "--title", "A\nB"], r"field 'title'"),
    "add-paper: a venue with a line break": (["add-paper", "x", "--venue", "CV\nPR"], r"field 'venue'"),
    "add-paper: a DOI that is not one": (["add-paper", "x", "--doi", "doi.org/10.1/x"], r"field 'doi'"),
    "add-paper: an existing id": (["add-paper", "vit"], r"vit.yaml already exists"),
}


@pytest.mark.parametrize("case", NOTES_REFUSED)
def test_notes_refuses_bad_input_in_one_line_and_writes_nothing(
    project: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    args, match = NOTES_REFUSED[case]
    if args[0] == "add-paper":
        defaults = {"--title": "T", "--author": "A. Author", "--venue": "CVPR", "--year": "2024"}
        args = args + [x for flag, value in defaults.items() if flag not in args for x in (flag, value)]
    before = snapshot(project)
    assert cli.main(["--root", str(project), *args]) == 2
    assert re.search(match, one_line(capsys.readouterr().err))
    assert snapshot(project) == before


@pytest.mark.parametrize("editor", [None, "/nonexistent/editor --wait"])
def test_new_edit_without_a_working_editor_keeps_the_entry_and_exits_3(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, editor: str | None
) -> None:
    monkeypatch.delenv("VISUAL", raising=False)
    if editor is None:
        monkeypatch.delenv("EDITOR", raising=False)
    else:
        monkeypatch.setenv("EDITOR", editor)
    assert cli.main(["--root", str(project), "new", "标题", "--paper", "mae", "--slug", "s", "--edit"]) == 3
    captured = capsys.readouterr()
    line = one_line(captured.err)
    assert "the entry was written" in line and ("/nonexistent/editor" in line if editor else "$EDITOR" in line)
    assert (project / "docs/journal/posts" / f"{time.strftime('%Y-%m-%d')}-s.md").is_file()


def test_status_changes_only_the_value_and_keeps_a_trailing_comment(project: Path) -> None:
    path = project / "papers/mae.yaml"
    text = re.sub(r"^status: .*$", "status: reading  # finish §4 first", path.read_text(encoding="utf-8"), flags=re.M)
    path.write_text(text, encoding="utf-8")
    assert cli.main(["--root", str(project), "status", "mae", "read"]) == 0
    assert path.read_text(encoding="utf-8") == text.replace("status: reading  #", "status: read  #")


@pytest.mark.subprocess
def test_a_file_left_by_a_killed_notes_write_is_removed_and_reported_next_time(
    project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    posts = project / "docs/journal/posts"
    writer = subprocess.Popen([sys.executable, "-c", (
        "import os, sys, time\n"
        "from pathlib import Path\n"
        "from paper_notes import files\n"
        "os.fsync = lambda fd: time.sleep(60)  # stop mid-write, the text not yet linked into place\n"
        "files.write_new_file(Path(sys.argv[1]), 'x' * 100000)\n"), str(posts / "2024-10-29-killed.md")])
    deadline = time.time() + 30
    while not list(posts.glob(".*.tmp")) and time.time() < deadline:
        time.sleep(0.05)
    os.kill(writer.pid, signal.SIGKILL)
    assert writer.wait(timeout=30) == -signal.SIGKILL
    [left] = list(posts.glob(".*.tmp"))
    assert not (posts / "2024-10-29-killed.md").exists()  # nothing half-written under the real name
    os.utime(left, (time.time() - 60, time.time() - 60))
    assert cli.main(["--root", str(project), "check"]) == 0
    assert f"removed {left}" in capsys.readouterr().err
    assert not left.exists()


def test_a_temporary_file_being_written_by_another_command_is_left_alone(project: Path) -> None:
    from paper_notes.files import _temporary_copy, remove_stale_temporaries

    posts = project / "docs/journal/posts"
    with _temporary_copy(posts / "2024-10-30-busy.md", "text", 0o644) as tmp:
        os.utime(tmp, (time.time() - 60, time.time() - 60))
        assert remove_stale_temporaries(posts) == [] and Path(tmp).exists()


@pytest.mark.parametrize(("fault", "cause"), [("read-only", "Read-only file system"), ("full", "No space left on device")])
def test_notes_on_a_read_only_folder_or_a_full_disk_is_one_line_and_leaves_nothing(
    capsys: pytest.CaptureFixture[str], fault: str, cause: str
) -> None:
    with tmpfs("2m") as mount:
        project = make_project(mount / "p")
        remount_read_only(mount) if fault == "read-only" else fill(mount)
        before = snapshot(project)
        for args in (["new", "标题", "--paper", "mae"], ["status", "mae", "to-read"]):
            assert cli.main(["--root", str(project), *args]) == 2
            line = one_line(capsys.readouterr().err)
            assert line.startswith("notes: error: cannot write") and cause in line
        assert snapshot(project) == before


# --- commands: mae-pretrain --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fault-images")
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)).save(root / f"{i}.png")
    return root


def flags(images: Path, out: Path, *extra: str) -> list[str]:
    """A two-step run of a one-block MAE on 32 px crops: about a second on a CPU."""
    model = json.dumps({"embed_dim": 16, "depth": 1, "num_heads": 2, "decoder_embed_dim": 8, "decoder_depth": 1,
                        "decoder_num_heads": 2})
    return ["--data", str(images), "--output-dir", str(out), "--img-size", "32", "--patch-size", "8",
            "--model-kwargs", model, "--batch-size", "4", "--epochs", "1", "--warmup-steps", "0", "--save-every", "1",
            "--log-every", "1", "--figure-every", "0", "--figure-images", "1", "--no-progress", "--no-tensorboard",
            "--device", "cpu", *extra]


def test_an_output_dir_that_is_a_file_is_one_line_and_the_file_is_kept(
    images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "notes.txt"
    out.write_text("my notes", encoding="utf-8")
    assert pretrain.main(flags(images, out)) == 2
    assert "is a file; expected a folder" in one_line(capsys.readouterr().err)
    assert out.read_text(encoding="utf-8") == "my notes"


def test_a_diverging_run_ends_in_one_line_with_the_step_and_the_loss(
    images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert pretrain.main(flags(images, tmp_path / "run", "--lr", "1e6", "--epochs", "4")) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert "Traceback" not in "\n".join(err)
    assert re.search(r"training diverged: the loss is (nan|inf) at step \d+ .*resume from checkpoint-", err[-1]), err


def test_mask_ratio_zero_is_refused_before_anything_is_written(
    images: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert pretrain.main(flags(images, tmp_path / "run", "--mask-ratio", "0")) == 2
    assert "mask_ratio=0.0; expected a number in (0, 1)" in one_line(capsys.readouterr().err)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("damage", ["zero bytes", "truncated", "a pickle that runs code"])
def test_resume_skips_an_unreadable_newest_checkpoint_and_keeps_it_aside(
    images: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    monkeypatch.chdir(tmp_path)  # where the pickled "touch pwned" would leave its file
    out = tmp_path / "run"
    assert pretrain.main(flags(images, out, "--max-steps", "2")) == 0
    newest = out / checkpoint_name(2)
    if damage == "zero bytes":
        newest.write_bytes(b"")
    elif damage == "truncated":
        newest.write_bytes(newest.read_bytes()[:1000])
    else:
        torch.save({"model": _RunsCode()}, newest)
    damaged = newest.read_bytes()
    with caplog.at_level("WARNING", logger="refimpl.train.pretrain"):
        assert pretrain.main(flags(images, out)) == 0
    assert re.search(rf"skipped {newest.name}: .*; renamed it to {newest.name}.unreadable", caplog.text)
    assert (out / f"{newest.name}.unreadable").read_bytes() == damaged  # kept, never deleted
    assert [p.name for p in list_checkpoints(out)][-1] == checkpoint_name(2)  # step 2 redone from step 1
    assert not Path("pwned").exists()


def test_a_run_on_a_read_only_folder_is_one_line(images: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with tmpfs("4m") as mount:
        remount_read_only(mount)
        assert pretrain.main(flags(images, mount / "run")) == 2
        line = one_line(capsys.readouterr().err)
        assert "cannot write in output_dir" in line and "Read-only file system" in line


def test_a_run_that_fills_the_disk_stops_in_one_line_and_keeps_its_last_checkpoint(
    images: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with tmpfs("8m") as mount:
        out = mount / "run"
        assert pretrain.main(flags(images, out, "--max-steps", "1")) == 0
        fill(mount)
        assert pretrain.main(flags(images, out)) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert "Traceback" not in "\n".join(err)
        assert "No space left on device" in err[-1] and "checkpoints written before are kept" in err[-1]
        assert [p.name for p in list_checkpoints(out)] == [checkpoint_name(1)]
        assert not list(out.glob(".*.tmp"))


@pytest.mark.subprocess
def test_the_default_data_without_scikit_image_says_what_to_install(tmp_path: Path) -> None:
    blocker = (
        "import sys\n"
        "class NoSkimage:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'skimage' or name.startswith('skimage.'):\n"
        "            raise ModuleNotFoundError(\"No module named 'skimage'\")\n"
        "sys.meta_path.insert(0, NoSkimage())\n"
        "from refimpl.train.pretrain import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    result = subprocess.run([sys.executable, "-c", blocker, "--output-dir", str(tmp_path / "run"), "--device", "cpu"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "pip install 'paper-notes[train]', or pass --data DIR" in one_line(result.stderr)
    assert not (tmp_path / "run").exists()


def test_every_module_the_package_imports_at_load_time_is_a_declared_dependency() -> None:
    """``pip install .`` without extras must give everything ``refimpl`` and ``notes`` import."""
    import ast
    import tomllib

    declared = {re.split(r"[<>=!~\[ ;]", d)[0].lower() for d in
                tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]}
    distribution = {"PIL": "pillow", "yaml": "pyyaml", "skimage": "scikit-image"}
    missing = set()
    for path in [*(ROOT / "refimpl").rglob("*.py"), *(ROOT / "paper_notes").glob("*.py")]:
        if path.name in {"plugin.py", "site.py"} or "figures" in path.parts:
            continue  # the site build's, installed with the docs extra
        for node in ast.parse(path.read_text(encoding="utf-8")).body:  # module level only
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module else []
            for name in names:
                top = name.split(".")[0]
                if top in sys.stdlib_module_names or top in {"refimpl", "paper_notes", "__future__"}:
                    continue
                if distribution.get(top, top).lower() not in declared:
                    missing.add(f"{path.relative_to(ROOT)}: {top}")
    assert not missing, sorted(missing)
