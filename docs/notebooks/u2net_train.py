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
# # U²-Net† 的一分钟训练：五个度量怎样随步数变好
#
# [U²-Net 页](../concepts/u2net.md)讲了网络的结构和官方代码的训练配方；[度量页](../concepts/sod-measures.md)讲了显著目标检测
# (salient object detection) 的论文用哪五个度量给输出的图打分。这本笔记本把两者连起来：在 CPU 上从头训练小模型 U²-Net†
# （[`u2net_lite`][refimpl.u2net.model.u2net_lite]，113 万个参数）大约一分钟，每隔一段在一组留出的图上算一遍五个度量，
# 看它们怎样随训练变化。
#
# 真实的数据集（例如官方代码用的 DUTS-TR）不在仓库里，也不能在构建网站时下载，所以笔记本自己画一个小数据集：
# 带条纹的椭圆或多边形放在颜色缓慢变化的背景上，目标的颜色与背景不同，真值就是那个形状。图只有 48×48（官方训练用 288×288 的裁剪），
# 步数只有 150 步，这里要看的是趋势，不是能拿去比较的成绩。随机种子固定，每次构建得到同样的结果。

# %%
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.path import Path

from paper_notes.figures import style
from refimpl.sodmetrics import Measures
from refimpl.u2net import deep_supervision_loss, u2net_lite

plt.rcParams.update(style())  # Chinese labels in Noto Sans CJK (docs extra), as in the concept pages' figures

torch.manual_seed(0)
torch.set_num_threads(1)
SIDE = 48  # pixels per side of every image


def smooth_noise(rng: np.random.Generator, cells: int) -> np.ndarray:
    """A (SIDE, SIDE) field in [0, 1] that varies slowly: a coarse random grid, bilinearly enlarged."""
    coarse = torch.tensor(rng.random((cells + 1, cells + 1)), dtype=torch.float32)[None, None]
    return F.interpolate(coarse, size=(SIDE, SIDE), mode="bilinear", align_corners=True)[0, 0].numpy()


def make_set(rng: np.random.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n images (n, 3, SIDE, SIDE) in [0, 1] and their masks (n, 1, SIDE, SIDE): one striped shape on a textured background."""
    yy, xx = np.mgrid[0:SIDE, 0:SIDE] + 0.5  # pixel centres
    images = np.empty((n, 3, SIDE, SIDE), np.float32)
    masks = np.empty((n, 1, SIDE, SIDE), np.float32)
    for k in range(n):
        background, colour = rng.random(3), rng.random(3)
        while np.abs(colour - background).sum() < 0.6:  # the object must differ from the background
            colour = rng.random(3)
        cy, cx = rng.uniform(0.3, 0.7, 2) * SIDE
        if rng.random() < 0.5:  # an ellipse, turned by a random angle
            a, b = rng.uniform(0.12, 0.3, 2) * SIDE
            t = rng.uniform(0, np.pi)
            u = (xx - cx) * np.cos(t) + (yy - cy) * np.sin(t)
            v = -(xx - cx) * np.sin(t) + (yy - cy) * np.cos(t)
            inside = (u / a) ** 2 + (v / b) ** 2 <= 1
        else:  # a polygon of 3 to 6 corners around the centre
            corners = rng.integers(3, 7)
            angle = np.sort(rng.uniform(0, 2 * np.pi, corners))
            radius = rng.uniform(0.15, 0.32, corners) * SIDE
            outline = Path(np.c_[cx + radius * np.cos(angle), cy + radius * np.sin(angle)])
            inside = outline.contains_points(np.c_[xx.ravel(), yy.ravel()]).reshape(SIDE, SIDE)
        stripes = 0.75 + 0.25 * np.sin((xx * np.cos(rng.uniform(0, np.pi)) + yy) * rng.uniform(0.5, 1.2))
        back = background[:, None, None] * (0.6 + 0.4 * smooth_noise(rng, 4))[None]
        image = np.where(inside[None], colour[:, None, None] * stripes[None], back)
        images[k] = np.clip(image + rng.normal(0, 0.03, image.shape), 0, 1)
        masks[k, 0] = inside
    return torch.from_numpy(images), torch.from_numpy(masks)


rng = np.random.default_rng(0)
train_images, train_masks = make_set(rng, 256)
test_images, test_masks = make_set(rng, 32)
print(f"训练集 {tuple(train_images.shape)}，留出的测试集 {tuple(test_images.shape)}；"
      f"目标平均占 {train_masks.mean():.0%} 的像素")

fig, axes = plt.subplots(2, 6, figsize=(9, 3.2), layout="constrained")
for k in range(6):
    axes[0, k].imshow(train_images[k].permute(1, 2, 0).numpy())
    axes[1, k].imshow(train_masks[k, 0].numpy(), cmap="gray", vmin=0, vmax=1)
    for ax in axes[:, k]:
        ax.set_xticks([])
        ax.set_yticks([])
axes[0, 0].set_ylabel("图像")
axes[1, 0].set_ylabel("真值")
fig.suptitle("合成的训练样本（48×48）", fontsize=10)
plt.show()

# %% [markdown]
# ## 模型、损失和优化器
#
# 优化器与官方训练代码相同：Adam，学习率 $10^{-3}$，$\beta = (0.9, 0.999)$，不加权重衰减；损失是融合图和六张侧输出图上
# 七个二元交叉熵之和（[`deep_supervision_loss`][refimpl.u2net.model.deep_supervision_loss]，深监督）。批大小取 8（官方是 12）。
#
# 评估只用融合图，在 32 张留出的图上用 [`Measures`][refimpl.sodmetrics.Measures] 一次算出五个度量，按论文表格的习惯取
# 数据集上的平均：结构度量 $S_\alpha$、加权 F 值 $F^w_\beta$、平均绝对误差 (MAE)、增强对齐度量 $E_\phi$（256 个阈值上的平均）
# 和 F 值 $F_\beta$（256 个阈值上的最大）。

# %%
model = u2net_lite()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0)
batches = torch.Generator().manual_seed(0)
BATCH, EVERY = 8, 15
history: list[tuple[int, float, object]] = []  # (step, training loss, Scores on the held-out images)


def evaluate() -> object:
    """The five measures of the fused map over the held-out images (the data set's means)."""
    model.eval()
    with torch.no_grad():
        predictions = model(test_images).fused[:, 0].numpy()  # (32, SIDE, SIDE) probabilities
    model.train()
    measures = Measures()
    for prediction, truth in zip(predictions, test_masks[:, 0].numpy() > 0.5):
        measures.step(prediction, truth)
    return measures.get_results()


def train(steps: int) -> None:
    """``steps`` Adam steps on random batches; every EVERY steps, evaluate."""
    start, done, running = time.perf_counter(), len(history) and history[-1][0], []
    for step in range(done + 1, done + steps + 1):
        pick = torch.randint(0, len(train_images), (BATCH,), generator=batches)
        loss = deep_supervision_loss(model(train_images[pick]), train_masks[pick]).total
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        running.append(loss.item())
        if step % EVERY == 0:
            history.append((step, float(np.mean(running)), evaluate()))
            running = []
    print(f"第 {done + 1} 到 {done + steps} 步：{time.perf_counter() - start:.0f} 秒")


history.append((0, float("nan"), evaluate()))  # the untrained model
train(75)

# %% [markdown]
# 再训练 75 步（分成两个单元格，每个都在构建时的时间限制之内）：

# %%
train(75)

# %% [markdown]
# ## 五个度量随步数的变化
#
# 表里每一行是那一步之后在留出的图上的结果；损失是前 15 步的平均（七项之和）。第 0 步是没有训练过的模型。

# %%
print(f"{'步数':>4} {'损失':>6} {'S_α':>7} {'F^w_β':>7} {'MAE':>7} {'E_φ 平均':>8} {'F_β 最大':>8}")
for step, loss, s in history:
    print(f"{step:>6} {loss:>8.3f} {s.s_measure:>8.4f} {s.weighted_f:>8.4f} {s.mae:>8.4f} {s.mean_e:>10.4f} {s.max_f:>10.4f}")

# %% [markdown]
# 五个度量不一定同步变化。目标平均只占 9% 的像素，一张全黑的图 MAE 就等于目标所占的比例，已经不大，结构度量和 F 值却很低；
# 所以模型只要先学会把大片背景压暗，MAE 就降得很快，而其他度量要等目标本身被找出来才上升（见[度量页](../concepts/sod-measures.md)）。

# %%
steps = [h[0] for h in history]
curves = {
    "结构度量 (S-measure)": [h[2].s_measure for h in history],
    "加权 F 值 (weighted F)": [h[2].weighted_f for h in history],
    "增强对齐度量，平均 (mean E)": [h[2].mean_e for h in history],
    "F 值，最大 (max F)": [h[2].max_f for h in history],
}
fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
for (label, values), marker in zip(curves.items(), "osD^"):
    left.plot(steps, values, marker=marker, markersize=4, label=label)
left.set_xlabel("训练步数")
left.set_ylabel("分数（越大越好）")
left.set_title("四个越大越好的度量", fontsize=10)
left.legend(fontsize=8)
right.plot(steps, [h[2].mae for h in history], "o-", color="#d62728", markersize=4)
right.set_xlabel("训练步数")
right.set_ylabel("平均绝对误差 (MAE)，越小越好")
right.set_title("平均绝对误差", fontsize=10)
plt.show()

# %% [markdown]
# ## 训练后的预测
#
# 最后看几张留出的图：融合图（概率）和六张侧输出图里的两张。S1 来自 De_1（全分辨率），S6 来自最深的 En_6（输入的 1/32，
# 这里只有 2×2，上采样回 48×48），细节只能来自浅的阶段。训练只有 150 步，S6 还几乎看不出目标；融合图由一个 1×1 卷积
# 给六张图加权，这个权重也要学，所以在这么短的训练里，融合图不一定比 S1 清楚（我们的理解）。

# %%
model.eval()
with torch.no_grad():
    maps = model(test_images[:5])
fig, axes = plt.subplots(5, 5, figsize=(7.5, 7.8), layout="constrained")
columns = ["图像", "真值", "融合图", "侧输出 S1", "侧输出 S6"]
for k in range(5):
    shown = [test_images[k].permute(1, 2, 0).numpy(), test_masks[k, 0].numpy(), maps.fused[k, 0].numpy(),
             maps.sides[0][k, 0].numpy(), maps.sides[5][k, 0].numpy()]
    for j, picture in enumerate(shown):
        axes[k, j].imshow(picture, cmap=None if j == 0 else "gray", vmin=0, vmax=1)
        axes[k, j].set_xticks([])
        axes[k, j].set_yticks([])
        if k == 0:
            axes[k, j].set_title(columns[j], fontsize=9)
plt.show()
