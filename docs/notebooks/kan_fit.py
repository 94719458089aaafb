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
# # 用 KAN 拟合一个函数：网格一步步加密
#
# KAN 论文讲网格扩展时用的玩具例子 [@kan, §2.4] 是 $f(x, y) = \exp(\sin(\pi x) + y^2)$。它正好是
# Kolmogorov–Arnold 表示的形状：先对每个输入各做一个一元函数（$\sin(\pi x)$ 和 $y^2$），相加，
# 再做一个一元函数（$\exp$）。所以一个 `[2, 5, 1]` 的 KAN（2 个输入、5 个隐藏节点、1 个输出）
# 原则上用其中一个隐藏节点就能把它精确表示出来。
#
# 这本笔记本用 `refimpl.kan` 的 [`KAN`](../concepts/kan.md) 在 CPU 上训练这个网络，并按论文的网格扩展
# (grid extension) 做法把样条网格从 $G = 3$ 依次加密到 5、10、20：每次加密时，细网格上的样条先按最小二乘
# 拟合粗网格上学到的函数，再接着训练。$3 \to 5$ 的节点不嵌套，这一步只是近似；$5 \to 10 \to 20$ 嵌套，
# 加密本身不改变函数（见[概念页](../concepts/kan.md#grid-update-and-extension)）。随机种子固定，每次构建站点得到同样的结果。

# %%
import math
import time

import matplotlib.pyplot as plt
import torch

from paper_notes.figures import style
from paper_notes.figures.kan import edge_functions
from refimpl.kan import KAN

plt.rcParams.update(style())  # Chinese labels in Noto Sans CJK (docs extra), as in the concept pages' figures

torch.manual_seed(0)
torch.set_num_threads(1)


def f(xy: torch.Tensor) -> torch.Tensor:
    """The paper's toy target, (N, 2) -> (N, 1)."""
    return torch.exp(torch.sin(math.pi * xy[:, :1]) + xy[:, 1:] ** 2)


x_train = torch.rand(1000, 2) * 2 - 1  # uniform on [-1, 1]^2, as pykan's create_dataset
x_test = torch.rand(1000, 2) * 2 - 1
y_train, y_test = f(x_train), f(x_test)

# %% [markdown]
# ## 训练：每个网格 15 步 LBFGS
#
# 每一段开始前先做一次网格更新 (grid update)：让节点落在这一层实际收到的输入上。新节点是样本分位数和均匀网格的
# 加权平均，均匀网格的权重是 `grid_eps`，默认 0.02：节点 98% 由分位数决定、2% 由均匀网格决定。
# 这里不加稀疏化正则，只看网格加密对精度的影响。

# %%
def train(model: KAN, steps: int) -> list[float]:
    """LBFGS on the mean squared error; returns the training RMSE at the start of each step."""
    optimizer = torch.optim.LBFGS(model.parameters(), lr=1.0, history_size=10, max_iter=10,
                                  line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = (model(x_train) - y_train).pow(2).mean()
        loss.backward()
        return loss

    # step() returns the loss it started from: the curve costs no extra forward pass
    return [optimizer.step(closure).sqrt().item() for _ in range(steps)]


start = time.perf_counter()
model = KAN([2, 5, 1], grid_size=3)
losses, boundaries, test_rmse = [], [], {}
for G in (3, 5, 10, 20):
    if G != 3:
        model = model.refine(G, x_train)  # grid extension: a finer copy fitted to the coarse one
    model.update_grid(x_train)
    boundaries.append(len(losses))
    losses += train(model, steps=15)
    with torch.no_grad():
        test_rmse[G] = (model(x_test) - y_test).pow(2).mean().sqrt().item()
    print(f"G = {G:2d}: train RMSE {losses[-1]:.2e}, test RMSE {test_rmse[G]:.2e}")
print(f"{time.perf_counter() - start:.1f} s in all")

# %% [markdown]
# ## 损失曲线
#
# 竖线是每次加密网格的位置。加密本身几乎不改变函数（节点嵌套时完全不变，$3 \to 5$ 时是最接近的近似），
# 随后的网格更新会让损失小幅跳一下，然后接着往下走：参数多了，可表示的函数更细。

# %%
fig, ax = plt.subplots(figsize=(7, 3.2), layout="constrained")
ax.plot(range(1, len(losses) + 1), losses)
for b, G in zip(boundaries, (3, 5, 10, 20)):
    ax.axvline(b + 0.5, color="0.6", linestyle="--", linewidth=0.8)
    ax.text(b + 1, max(losses), f"G = {G}", fontsize=8, va="top")
ax.set_yscale("log")
ax.set_xlabel("LBFGS 步数（每个网格 15 步）")
ax.set_ylabel("训练集上的均方根误差 (RMSE)")
plt.show()

# %% [markdown]
# ## 学到的边函数
#
# `edge_functions(model)` 把每条边上的函数 $\phi_{i,o}$ 画在它的网格范围内（曲线由
# `model.activation_curves()` 算出，图在 `paper_notes.figures.kan` 里画）：左边一块是第一层
# （2 个输入 × 5 个隐藏节点），右边一块是第二层（5 个隐藏节点 × 1 个输出）。没有稀疏化时，
# 5 个隐藏节点一起分担这个函数；论文加上稀疏化正则和剪枝后，才会只剩下一个节点，
# 边函数分别像 $\sin(\pi x)$、$y^2$ 和 $\exp$ [@kan, §2.5.2]。

# %%
fig = edge_functions(model)
plt.show()
