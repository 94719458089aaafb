"""Tested reference implementations for the concept pages of paper-notes.

One module per concept, named after it, so a reader who knows the paper knows where to look:

| module | what | compared against |
| --- | --- | --- |
| [`refimpl.masking`][refimpl.masking] | patchify, random / block / mask-unit masking, shuffle and unshuffle | Hugging Face ViTMAE, official Hiera |
| [`refimpl.pos_embed`][refimpl.pos_embed] | MAE's fixed 2-D sin-cos position embedding | transformers' ViTMAE |
| [`refimpl.vit`][refimpl.vit] | Vision Transformer | timm |
| [`refimpl.mae`][refimpl.mae] | Masked Autoencoder | Hugging Face ViTMAE (= official MAE) |
| [`refimpl.hiera`][refimpl.hiera] | Hiera and MAE-Hiera (images and video) | official `hiera` package |
| [`refimpl.kan`][refimpl.kan] | Kolmogorov-Arnold network layer and stack | official pykan |
| [`refimpl.sam2`][refimpl.sam2] | SAM 2: windowed Hiera + FPN, prompt encoder, mask decoder, memory encoder, bank and attention, tracking | official `sam2` package |
| [`refimpl.u2net`][refimpl.u2net] | U²-Net and U²-Net†: RSU blocks, the nested U, deep supervision; `u2net-cutout` | official architecture (carvekit 4.1.2) |
| [`refimpl.sodmetrics`][refimpl.sodmetrics] | MAE, Fβ, weighted Fβ, S-measure, E-measure of salient/camouflaged object maps | `py_sod_metrics` |
| [`refimpl.command_io`][refimpl.command_io] | what the commands share: a photo read as a viewer shows it, devices, `--config`, outputs all or none | |
| [`refimpl.checkpoints`][refimpl.checkpoints] | loading official, Hugging Face, timm and our own files | |

Import the submodule you need, e.g. ``from refimpl.mae import mae_vit_base_patch16``; this
package file imports nothing heavy.
"""

__version__ = "0.2.0"
