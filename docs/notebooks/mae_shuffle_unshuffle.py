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
# # MAE 的打乱与还原：一步一步看
#
# MAE [@mae] 论文的实现一节只用一段话讲了随机遮挡 (random masking)：给每个 token 一个随机数，
# 按它排序（打乱，shuffle），保留前面一段，编码之后补上掩码 token (mask token)，再按原顺序排回去
# （还原，unshuffle）。这本笔记本在一张真实照片上把每一步跑一遍，打印出每一步的下标和形状，
# 用到的函数全部来自 `refimpl.masking`，与测试里和 Hugging Face ViTMAE 对照的是同一份代码。
#
# 先用 8 个 token 的小例子看清下标，再换成整张图的 196 个图像块 (patch)。

# %%
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from skimage import data

from paper_notes.figures import style
from refimpl.mae import mae_vit_tiny_patch16
from refimpl.masking import gather_tokens, patchify, random_masking, shuffle_order, unpatchify, unshuffle

plt.rcParams.update(style())  # Chinese labels in Noto Sans CJK (docs extra), as in the concept pages' figures

torch.set_printoptions(precision=2, linewidth=100)

# %% [markdown]
# ## 1. 八个 token 的小例子
#
# 每个 token 配一个噪声值。`argsort` 把噪声从小到大排好，得到打乱后的顺序 `ids_shuffle`；
# 噪声小的排在前面、被保留。对排列再做一次 `argsort` 就是它的逆排列 `ids_restore`：
# `ids_restore[j]` 是原来第 `j` 个 token 在打乱后的列表里的位置。

# %%
noise = torch.tensor([[0.62, 0.15, 0.88, 0.47, 0.05, 0.93, 0.71, 0.34]])  # (B=1, L=8)
ids_shuffle, ids_restore = shuffle_order(noise)
print("noise       ", noise)
print("ids_shuffle ", ids_shuffle)
print("ids_restore ", ids_restore)

tokens = torch.arange(8.0).reshape(1, 8, 1)  # token j carries the value j, so we can follow it
masked = random_masking(tokens, mask_ratio=0.75, noise=noise)
print("kept tokens ", masked.kept.flatten())  # int(8 * 0.25) = 2 kept
print("ids_keep    ", masked.ids_keep)
print("mask        ", masked.mask, " (1 = removed)")

# %% [markdown]
# 编码器只看到 token 4 和 token 1。还原时先在它们后面接上 6 个掩码 token（这里用 −1 表示），
# 再用 `ids_restore` 做一次 `gather`：位置 `j` 取打乱列表里的第 `ids_restore[j]` 项。

# %%
mask_token = torch.tensor([-1.0])
restored = unshuffle(masked.kept, masked.ids_restore, mask_token)  # (1, 8, 1)
print("shuffled + mask tokens ", torch.cat([masked.kept, mask_token.expand(1, 6, 1)], dim=1).flatten())
print("unshuffled             ", restored.flatten())

# %% [markdown]
# token 1 和 4 回到了原位，其余位置都是掩码 token，和 `mask` 里的 1 一一对应。
#
# ## 2. 一张照片的 196 个图像块
#
# 同样的步骤放到 224×224 的照片上：切成 14×14 个 16×16 的块，随机去掉 75%。

# %%
photo = torch.from_numpy(data.astronaut()).permute(2, 0, 1)[None].float() / 255  # (1, 3, 512, 512)
img = F.interpolate(photo, size=(224, 224), mode="area")  # (1, 3, 224, 224)
patches = patchify(img, 16)  # (1, 196, 768)
generator = torch.Generator().manual_seed(0)
noise = torch.rand(1, 196, generator=generator)
masked = random_masking(patches, mask_ratio=0.75, noise=noise)
print("patches", tuple(patches.shape), "-> kept", tuple(masked.kept.shape), "| removed:", int(masked.mask.sum()))


def show(ax, image, title):
    ax.imshow(image[0].permute(1, 2, 0).clamp(0, 1).numpy())
    ax.set_title(title, fontsize=9)
    ax.axis("off")


def grey_out(patch_tokens, mask):
    """Replace removed patches by mid grey, for display."""
    return torch.where(mask[..., None].bool(), torch.full_like(patch_tokens, 0.5), patch_tokens)


fig, axes = plt.subplots(1, 4, figsize=(10, 2.8))
show(axes[0], img, "输入图像")
order = torch.argsort(noise, dim=1)  # the shuffled order, as a picture: patches sorted by noise
show(axes[1], unpatchify(gather_tokens(patches, order), 16), "按噪声打乱后的图像块")
kept_only = torch.cat([masked.kept, torch.full((1, 196 - 49, 768), 0.5)], dim=1)
show(axes[2], unpatchify(kept_only, 16), "保留前 49 块（编码器的输入）")
show(axes[3], unpatchify(grey_out(patches, masked.mask), 16), "还原顺序：去掉的块涂灰")
plt.tight_layout()
plt.show()

# %% [markdown]
# 第二张图把图像块按噪声排序后重新铺成 14×14：这就是"打乱"。第三张只留下前 49 块，
# 也就是编码器 (encoder) 的全部输入；其余位置在编码器里根本不存在（这里涂灰只为显示）。
# 第四张用 `ids_restore` 把它们放回原处，被去掉的位置由掩码 token 占据，正是解码器 (decoder)
# 看到的排列。
#
# ## 3. 整个 MAE 前向一遍
#
# 最后把图交给一个随机初始化的小 MAE（`mae_vit_tiny_patch16`，ViT-Ti 编码器）。它没有训练过，
# 所以预测只是噪声；这里要看的是数据流和形状：同一份噪声给出同一个掩码，
# 损失只在被去掉的块上计算。

# %%
torch.manual_seed(0)
model = mae_vit_tiny_patch16().eval()
with torch.no_grad():
    latent, mask, ids_restore = model.forward_encoder(img, 0.75, noise)
    pred = model.forward_decoder(latent, ids_restore)
    loss = model.forward_loss(img, pred, mask)
print("encoder output (B, 1 + L_keep, D):", tuple(latent.shape))
print("decoder output (B, L, p*p*C):     ", tuple(pred.shape))
print("same mask as before:", torch.equal(mask, masked.mask), "| loss on removed patches:", round(loss.item(), 4))

fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.8))
show(axes[0], unpatchify(grey_out(patches, mask), 16), "遮挡后的输入")
show(axes[1], unpatchify(pred, 16), "预测（未训练）")
show(axes[2], img, "目标（原图）")
plt.tight_layout()
plt.show()

# %% [markdown]
# 训练之后，中间那张会在灰色位置给出合理的内容；可见位置不计入损失，所以模型不必在那里
# 复制输入。预训练结束后解码器被丢掉，编码器在完整、未遮挡的图像上用于下游任务。
