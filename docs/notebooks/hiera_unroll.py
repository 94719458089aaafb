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
# # Hiera 的 unroll：在一张照片上
#
# [概念页](../concepts/hiera.md#unroll)用一个 8×8 的小网格讲了官方代码怎样用 unroll 实现 [@hiera, 图 4e]
# （核大小等于步长，池化不跨掩码单元；"unroll" 是代码里的名字，论文里没有）。这本笔记本把同样的步骤
# 放到一张 224×224 的照片上：Hiera 的第 1 阶段有 56×56 个 token（每个对应 4×4 像素），掩码单元是 8×8 个 token。
# 为了能"看见" token，这里让每个 token 就是它那 4×4 像素的平均颜色；用到的函数全部来自 `refimpl.hiera`，
# 与测试里和官方实现对照的是同一份代码。

# %%
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from skimage import data

from paper_notes.figures import style
from refimpl.hiera import mae_hiera_tiny_224
from refimpl.unroll import pool_tokens, reroll, reroll_units, unroll
from refimpl.masking import mask_unit_masking

plt.rcParams.update(style())  # Chinese labels in Noto Sans CJK (docs extra), as in the concept pages' figures

photo = torch.from_numpy(data.astronaut()).permute(2, 0, 1)[None].float() / 255  # (1, 3, 512, 512)
img = F.interpolate(photo, size=(224, 224), mode="area")  # (1, 3, 224, 224)
tokens = F.avg_pool2d(img, 4)  # (1, 3, 56, 56): one colour per token
x = tokens.flatten(2).transpose(1, 2)  # (1, 3136, 3) raster order
strides = [(2, 2)] * 3
print("tokens", tuple(x.shape))


def show(seq: torch.Tensor, rows: int, cols: int, title: str) -> None:
    """Show a (1, N, 3) sequence as rows x cols image, read row by row."""
    plt.figure(figsize=(7, 7 * rows / cols))
    plt.imshow(seq.reshape(rows, cols, 3).clamp(0, 1).numpy())
    plt.title(title)
    plt.axis("off")
    plt.show()


# %% [markdown]
# ## 1. unroll 的每一步
#
# 第一步把每个 2×2 窗口的 4 个偏移拆开：序列变成 4 张 28×28 的子图（隔一个取一个），一张接一张。
# 把序列按 `(2·28, 2·28)` 的方式摆出来，就看到 4 张几乎一样的小照片。

# %%
step1 = unroll(x, (56, 56), strides[:1])  # (1, 3136, 3)
quarters = step1.reshape(2, 2, 28, 28, 3).permute(0, 2, 1, 3, 4)  # (sy, 28, sx, 28, 3)
show(quarters.reshape(1, -1, 3), 56, 56, "unroll 第 1 步之后：4 张子图，2×2 窗口里的每个偏移一张")

# %% [markdown]
# 三步之后是 64 张 7×7 的小图：每张小图的一个像素就是一个掩码单元里的一个 token。
# 同一个掩码单元的 64 个 token 分散在 64 张小图的同一个位置上。

# %%
full = unroll(x, (56, 56), strides)  # (1, 3136, 3), order (sy1, sx1, sy2, sx2, sy3, sx3, uy, ux)
tiles = full.reshape(8, 8, 7, 7, 3).permute(0, 2, 1, 3, 4)  # (8, 7, 8, 7, 3): 64 tiles of 7 x 7
show(tiles.reshape(1, -1, 3), 56, 56, "3 步之后：64 张 7×7 的小图（每个像素对应一个掩码单元）")

# %% [markdown]
# ## 2. 池化就是 reshape + max
#
# 把 unroll 后的序列均分成 4 段、逐元素取最大值，和在原网格上做 2×2 最大池化完全相同。

# %%
pooled = pool_tokens(full, 4)  # (1, 784, 3), still unrolled for 2 more steps
reference = F.max_pool2d(tokens, 2).flatten(2).transpose(1, 2)  # (1, 784, 3) raster
print("pooled", tuple(pooled.shape), "| equal to max_pool2d:", torch.equal(reroll(pooled, (28, 28), strides[1:]), reference))

# %% [markdown]
# ## 3. 遮掉 60% 的掩码单元
#
# 49 个单元里保留 $\lfloor 49 \times 0.4 \rfloor = 19$ 个。在 `(64, 49)` 视图里，每个单元是一列；删掉单元就是删掉列。

# %%
generator = torch.Generator().manual_seed(0)
units = mask_unit_masking(1, (56, 56), 8, 0.6, noise=torch.rand(1, 49, generator=generator)).units  # (1, 49), 1 = removed
keep = (units[0] == 0).nonzero().squeeze(1)  # (19,)
sparse = full.reshape(1, 64, 49, 3)[:, :, keep].reshape(1, -1, 3)  # (1, 64 * 19, 3)
print("kept units", keep.tolist())
print("sequence", tuple(full.shape), "->", tuple(sparse.shape))

squares = reroll_units(sparse, strides)  # (1, 19, 8, 8, 3): each kept unit as its own little image
pooled_sparse = reroll_units(pool_tokens(sparse, 4), strides[1:])  # (1, 19, 4, 4, 3)
print("pooled kept units equal the pooled full image:",
      torch.equal(pooled_sparse, reroll_units(pooled, strides[1:])[:, keep]))

kept_seq = (1 - units)[:, None, :].expand(1, 64, 49).reshape(1, -1, 1)  # (1, 3136, 1): unit of each position
visible = reroll(full * kept_seq, (56, 56), strides)  # (1, 3136, 3) raster, removed units black
show(visible, 56, 56, "编码器 (encoder) 看到的：49 个掩码单元 (mask unit) 里的 19 个（去掉的涂黑）")

# %% [markdown]
# ## 4. 整个 MAE-Hiera
#
# 随机初始化的 `mae_hiera_tiny_224`，给定上面的掩码：编码器只处理 19 个单元，各阶段的形状如下。

# %%
torch.manual_seed(0)
model = mae_hiera_tiny_224().eval()
with torch.no_grad():
    stages = model.forward_features(img, mask=units).stages
    out = model(img, mask=units)
for s, stage in enumerate(stages, 1):
    print(f"stage {s}:", tuple(stage.shape))
print("pred", tuple(out.pred.shape), "| removed positions", int(out.mask.sum()), "| loss", round(out.loss.item(), 3))
