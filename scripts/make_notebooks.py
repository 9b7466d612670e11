"""Write the teaching notebooks under notebooks/ (then execute them with
``jupyter nbconvert --execute --inplace`` or tests/test_notebooks.py)."""

from pathlib import Path

import nbformat as nbf

ROOT = Path(__file__).resolve().parents[1]


def md(text):
    return nbf.v4.new_markdown_cell(text.strip())


def code(text):
    return nbf.v4.new_code_cell(text.strip())


def pruning_notebook():
    cells = [
        md("""
# Pruning the lecture's networks with tinyprune

This notebook follows the lecture *Model Compression and Pruning Techniques*: we train a small
network, then ask the lecture's questions — **which** weights (criterion), **with what
granularity**, **how many** (sensitivity) — and look at accuracy against sparsity. Everything runs
on the Fashion-MNIST subset that ships with tinyprune, on a laptop CPU in about a minute.
"""),
        code("""
import numpy as np
import matplotlib.pyplot as plt

from tinyprune.datasets import load_dataset
from tinyprune.nn import lenet_300_100
from tinyprune.nn.optim import SGD
from tinyprune.nn.train import fit, evaluate
from tinyprune.prune import prune_model
from tinyprune.prune.masked import set_masks_
from tinyprune.report import sparsity_report, format_report

data = load_dataset("fashion-mnist-small")
print(data.x_train.shape, data.x_test.shape)
"""),
        md("""
## Train connectivity

LeNet-300-100 (784-300-100-10), two epochs of SGD with momentum.
"""),
        code("""
dense = lenet_300_100(seed=0)
fit(dense, data.x_train, data.y_train, optimizer=SGD(dense.params, lr=0.05, momentum=0.9),
    epochs=2, rng=0, progress=False)
base = evaluate(dense, data.x_test, data.y_test)["accuracy"]
print(f"dense test accuracy: {base:.2%}")
"""),
        md("""
## Prune connections: accuracy against sparsity, by granularity

Magnitude (|W|) for fine-grained pruning, the L2 norm of each row for channel (neuron) pruning,
and 2:4 pattern pruning — no fine-tuning yet, so this is the raw damage of each choice.
"""),
        code("""
def copy_model(m):
    c = lenet_300_100(seed=0)
    for k, v in m.params.items():
        c.set_param(k, v)
    return c

layers = ["fc1.weight", "fc2.weight"]
ratios = [0.0, 0.3, 0.5, 0.7, 0.8, 0.9, 0.95]
curves = {}
for gran, crit in [("element", "magnitude"), ("channel", "l2")]:
    accs = []
    for r in ratios:
        m = copy_model(dense)
        if r > 0:
            set_masks_(m, prune_model(m, layers, amount=r, criterion=crit, granularity=gran))
        accs.append(evaluate(m, data.x_test, data.y_test)["accuracy"])
    curves[f"{gran} ({crit})"] = accs

nm = copy_model(dense)
set_masks_(nm, prune_model(nm, layers, granularity="nm", n_pruned=2, m=4))
nm_acc = evaluate(nm, data.x_test, data.y_test)["accuracy"]

fig, ax = plt.subplots(figsize=(6, 4))
for label, accs in curves.items():
    ax.plot(ratios, accs, marker="o", label=label)
ax.scatter([0.5], [nm_acc], marker="*", s=150, color="k", label="2:4 pattern (n_pruned=2, m=4)")
ax.axhline(base, ls="--", color="gray", lw=1)
ax.set_xlabel("pruning ratio of fc1 and fc2")
ax.set_ylabel("test accuracy (no fine-tuning)")
ax.legend()
fig.tight_layout()
plt.show()
"""),
        md("""
## Retrain: fine-tuning with the mask enforced

Pruning 90% of the weights and fine-tuning for one epoch recovers most of the accuracy (Han et
al., 2015: train, prune, retrain). The pruned weights stay exactly zero during fine-tuning.
"""),
        code("""
m = copy_model(dense)
set_masks_(m, prune_model(m, ["fc1.weight", "fc2.weight", "fc3.weight"], amount=0.9,
                          criterion="magnitude", granularity="element"))
before = evaluate(m, data.x_test, data.y_test)["accuracy"]
fit(m, data.x_train, data.y_train, optimizer=SGD(m.params, lr=0.02, momentum=0.9), epochs=1,
    rng=1, progress=False)
after = evaluate(m, data.x_test, data.y_test)["accuracy"]
print(f"dense {base:.2%}  pruned 90% {before:.2%}  fine-tuned {after:.2%}")
assert all((m.params[k][~mask] == 0).all() for k, mask in m.masks.items())
print(format_report(sparsity_report(m)))
"""),
    ]
    nb = nbf.v4.new_notebook()
    nb.cells = cells
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    return nb


if __name__ == "__main__":
    import sys

    out = ROOT / "notebooks" / "01_pruning_granularity.ipynb"
    out.parent.mkdir(exist_ok=True)
    nb = pruning_notebook()
    if "--execute" in sys.argv:  # store outputs (figures) so the notebook reads well unexecuted
        from nbclient import NotebookClient

        NotebookClient(nb, timeout=600, kernel_name="python3").execute()
    nbf.write(nb, out)
    print("wrote", out)
