# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # ViT 背景：把一张图切成 16×16 的图像块
#
# 视觉 Transformer (Vision Transformer, ViT) [@vit] 不直接处理像素网格，而是先把图像切成
# 互不重叠的小方块，即图像块 (patch)，再把每个图像块展平成一个向量，当作一个 token。
# 这样一张图就变成了一串 token 组成的序列 (sequence)，可以像句子一样交给 Transformer。
#
# 本页用一张真实照片把这一步走一遍：224×224 的图像、16×16 的图像块、14×14 的网格 (grid)、
# 196 个长度为 768 的 token。切块用的是 `refimpl.masking.patchify`，它的顺序与 MAE 官方代码一致。

# %%
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from skimage import data

from paper_notes.figures import style
from refimpl.masking import patchify, unpatchify

plt.rcParams.update(style())  # Chinese labels in Noto Sans CJK (docs extra), as in the concept pages' figures

PATCH = 16  # patch side p, in pixels
SIZE = 224  # ViT-Base input resolution

photo = data.astronaut()  # (512, 512, 3) uint8, ships with scikit-image
print("photo (H, W, C):", photo.shape, photo.dtype)

# Center-crop to a square on the shorter side (a no-op for this square photo).
side = min(photo.shape[:2])
top = (photo.shape[0] - side) // 2
left = (photo.shape[1] - side) // 2
photo = photo[top : top + side, left : left + side]  # (side, side, 3)

img = torch.from_numpy(photo).permute(2, 0, 1).unsqueeze(0)  # (1, 3, side, side) uint8
img = img.float() / 255.0  # (1, 3, side, side) in [0, 1]
# "area" averages the input pixels that each output pixel covers: deterministic, no aliasing.
img = F.interpolate(img, size=(SIZE, SIZE), mode="area")  # (1, 3, 224, 224)
print("image (B, C, H, W):", tuple(img.shape))

# %% [markdown]
# ## 14×14 的图像块网格
#
# 224 / 16 = 14，所以每一行、每一列各有 14 个图像块，共 14 × 14 = 196 个。
# 下图把网格画在照片上。编号按光栅顺序 (raster order)：从左上角开始，先从左到右走完一行，
# 再换到下一行。于是第 0 行是 0–13，第 1 行从 14 开始，右下角是 195。
# 位于第 `r` 行、第 `c` 列的图像块，编号是 `r * 14 + c`。

# %%
h = w = SIZE // PATCH  # 14 x 14 grid
show = img[0].permute(1, 2, 0).numpy()  # (224, 224, 3) for imshow

fig, ax = plt.subplots(figsize=(4, 4))
ax.imshow(show)
for k in range(1, h):
    ax.axhline(k * PATCH - 0.5, color="white", linewidth=0.6)
    ax.axvline(k * PATCH - 0.5, color="white", linewidth=0.6)
for idx in (0, 1, 13, 14, 195):
    r, c = divmod(idx, w)
    ax.text(
        c * PATCH + PATCH / 2 - 0.5,
        r * PATCH + PATCH / 2 - 0.5,
        str(idx),
        ha="center",
        va="center",
        fontsize=7,
        color="black",
        bbox=dict(boxstyle="round,pad=0.15", facecolor="yellow", edgecolor="none"),
    )
ax.set_title(f"{SIZE}×{SIZE} 的图像，{h}×{w} 个 {PATCH}×{PATCH} 的图像块", fontsize=9)
ax.set_xticks([0, 112, 223])
ax.set_yticks([0, 112, 223])
ax.tick_params(labelsize=7)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 从图像到 token：`patchify`
#
# `patchify(img, 16)` 做了两件事：先把高和宽各拆成“网格坐标 × 块内像素坐标”，
# 再把每个图像块的 16 × 16 × 3 个数排成一个向量。块内的顺序是：像素按行展开，
# 每个像素的三个通道 (channel) 放在一起（通道在最后）。所以一个 token 的长度是
# 16 · 16 · 3 = 768。下面把每一步的形状 (shape) 打印出来。

# %%
print("image        ", tuple(img.shape), "= (B, C, H, W)")
grid = img.reshape(1, 3, h, PATCH, w, PATCH)  # (B, C, h, p, w, p)
print("split sides  ", tuple(grid.shape), "= (B, C, h, p, w, p)")
print(f"grid          {h} x {w} = {h * w} patches of {PATCH}x{PATCH}x3")
tokens = patchify(img, PATCH)  # (1, 196, 768)
print("tokens       ", tuple(tokens.shape), "= (B, L, D)")

# Token 14 is grid cell (row 1, col 0); it is that pixel block with channels last.
block = img[0, :, 16:32, 0:16].permute(1, 2, 0)  # (16, 16, 3)
print("token 14 == block at row 1, col 0:", torch.equal(tokens[0, 14], block.reshape(-1)))

# %% [markdown]
# ## 展平后的 token 序列
#
# Transformer 看到的不再是二维图像，而是一条长度为 196 的序列。下图按序列顺序画出前 20 个 token：
# 把每个 768 维向量重新排成 16 × 16 × 3 就能还原成一个小图像块。注意第 13 号之后紧跟着第 14 号，
# 也就是从第一行的最右端跳回第二行的最左端——序列本身不再记得二维的位置，
# 这正是后面需要位置嵌入 (position embedding) 的原因。

# %%
n_show = 20
fig, axes = plt.subplots(1, n_show, figsize=(8, 1.0))
for i, ax in enumerate(axes):
    ax.imshow(tokens[0, i].reshape(PATCH, PATCH, 3).numpy())  # (768,) -> (16, 16, 3)
    ax.set_title(str(i), fontsize=7)
    ax.axis("off")
fig.suptitle("按序列顺序排列的第 0–19 个 token", fontsize=9, y=1.05)
plt.show()

# %% [markdown]
# 把整个 token 矩阵画成热图 (heat map)：每一行是一个 token（共 196 行），每一列是向量中的一个位置
# （共 768 列）。每一行被竖直的分界切成 16 段，每段 48 列（48 = 16 × 3），
# 对应图像块里的一行像素；段内 R、G、B 三个通道交替排列，周期为 3，在这个尺寸下细得看不出来。
# 行方向上，明暗相近的横带对应照片中亮度相近的区域，例如第 0–13 行是照片最上面一行图像块。

# %%
fig, ax = plt.subplots(figsize=(8, 3.2))
im = ax.imshow(tokens[0].numpy(), aspect="auto", cmap="viridis", interpolation="nearest")
ax.set_xlabel("token 向量里的位置（0–767）", fontsize=8)
ax.set_ylabel("token 的编号（0–195）", fontsize=8)
ax.set_title("token 矩阵（196 × 768），取值在 [0, 1] 内", fontsize=9)
ax.tick_params(labelsize=7)
fig.colorbar(im, ax=ax, fraction=0.03, pad=0.02)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## `unpatchify`：逐像素还原
#
# 切块只是重新排列，没有丢掉任何信息。`unpatchify` 按相反的顺序把 token 放回原位，
# 结果与原图逐位相同（`torch.equal`，而不只是近似相等）。MAE 的解码器预测的正是这种格式的
# token，再用 `unpatchify` 变回图像来显示重建结果。

# %%
restored = unpatchify(tokens, PATCH)  # (1, 196, 768) -> (1, 3, 224, 224)
print("restored", tuple(restored.shape), "equal to image:", torch.equal(restored, img))

# %% [markdown]
# ## 下一步：线性投影与位置嵌入
#
# 在 ViT 里，每个 768 维的图像块向量还要经过一个可学习的线性投影 (linear projection)，
# 映射到模型宽度 (model width) $D$（ViT-Base 中 $D = 768$，与图像块长度相同只是巧合）；
# 然后在序列最前面加一个可学习的类别 token (class token)，再给每个位置加上位置嵌入。
# 论文的式 (1) [@vit] 写成：
#
# $$z_0 = [x_\text{class};\, x_p^1 E;\, \dots;\, x_p^N E] + E_\text{pos}$$
#
# 逐项来读：
#
# - $x_p^i$ 是第 $i$ 个图像块展平后的行向量，长度为 $P^2 \cdot C$（这里 $16^2 \cdot 3 = 768$），
#   也就是上面 `tokens[0, i - 1]`（论文从 1 开始编号）；一共 $N = HW / P^2 = 196$ 个。
# - $E$ 是形状为 $(P^2 \cdot C) \times D$ 的投影矩阵，所有图像块共用同一个 $E$，
#   所以 $x_p^i E$ 就是每个 token 各乘一次同一个矩阵。
# - $x_\text{class}$ 是多出来的那个可学习向量，放在第 0 位；分类时只读它在最后一层的输出。
# - 方括号里的分号表示把这些行向量上下堆叠，得到 $(N + 1) \times D$ 的矩阵；
#   $E_\text{pos}$ 同样是 $(N + 1) \times D$，逐元素相加，让每个位置带上“我在网格哪里”的信息。
#
# 实现时，“切块 + 乘 $E$”通常合并成一个卷积核为 16×16、步长 (stride) 为 16 的卷积：
# 卷积核恰好一次覆盖一个图像块、互不重叠，它做的运算与线性投影相同。
# 下面用一个随机的 $E$ 验证这一点；要让两者一致，卷积权重必须按 `patchify` 的顺序
# （块内像素行、像素列、通道在最后）从 $E$ 中取出。

# %%
torch.manual_seed(0)
width = 32  # a small model width D, just for this check
E = torch.randn(PATCH * PATCH * 3, width)  # (768, D)

by_matmul = tokens @ E  # (1, 196, 768) @ (768, D) -> (1, 196, D)

# Conv weight is (D, C, p, p); E's rows are in (p, p, C) order, so move C forward.
weight = E.T.reshape(width, PATCH, PATCH, 3).permute(0, 3, 1, 2)  # (D, 3, 16, 16)
by_conv = F.conv2d(img, weight, stride=PATCH)  # (1, D, 14, 14)
by_conv = by_conv.flatten(2).transpose(1, 2)  # (1, D, 196) -> (1, 196, D), raster order

print("matmul", tuple(by_matmul.shape), "conv", tuple(by_conv.shape))
print("same up to float rounding:", torch.allclose(by_matmul, by_conv, atol=1e-4))
