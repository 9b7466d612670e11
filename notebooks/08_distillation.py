# %% [markdown]
# # 08 · Knowledge distillation
#
# *Lecture: "Model compression: a brief introduction" → **What is knowledge distillation?** —
# transferring experience from a large-scale model (the teacher) to a smaller-scale model (the
# student): extracting the informative aspects of the large model's behaviour and instilling
# this knowledge into the smaller model.*
#
# What is "the informative aspect of the behaviour"? Hinton, Vinyals & Dean (2015): the
# teacher's whole output distribution, not only its top class. A softmax with **temperature**
# $T$,
#
# $$q_i^{(T)} = \frac{\exp(z_i/T)}{\sum_j \exp(z_j/T)},$$
#
# spreads probability over the wrong classes as $T$ grows, and the ratios between them — a shirt
# looks more like a T-shirt than like a sneaker — are "dark knowledge" a one-hot label does not
# have. The student with logits $z_s$ learns from the teacher's logits $z_t$ by minimising
#
# $$\mathcal L = \alpha\, T^2\, \mathrm{KL}\big(q^{(T)}(z_t)\,\big\|\,q^{(T)}(z_s)\big)
# + (1-\alpha)\,\mathrm{CE}\big(q^{(1)}(z_s), y\big).$$
#
# The gradient of the soft term with respect to $z_s$ is $\alpha\,T\,(q^{(T)}(z_s) -
# q^{(T)}(z_t))$: without the factor $T^2$ it would shrink like $1/T$, and changing the
# temperature would silently re-weight the two terms.

# %%
import numpy as np
import matplotlib.pyplot as plt

from tinyprune.datasets import load_dataset
from tinyprune.distill import compute_teacher_logits, distill, softmax_with_temperature
from tinyprune.nn import Flatten, Linear, ReLU, Sequential, lenet_300_100
from tinyprune.nn.optim import SGD
from tinyprune.nn.train import evaluate, fit
from tinyprune.prune import validation_split
from tinyprune.viz import plot_accuracy_vs

data = load_dataset("fashion-mnist-small", normalize=True)
x_tr, y_tr, x_val, y_val = validation_split(data.x_train, data.y_train, 0.2, rng=0)
CLASSES = ["T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker",
           "bag", "boot"]

# %% [markdown]
# ## 1. Teacher and student
#
# The teacher is LeNet-300-100 (266,610 parameters) trained for 10 epochs on the 4,800 training
# images; the student a 784-16-10 network, 21× smaller.

# %%
teacher = lenet_300_100(seed=0)
fit(teacher, x_tr, y_tr, optimizer=SGD(teacher.params, lr=0.05, momentum=0.9), epochs=10, rng=0,
    progress=False)
teacher_acc = evaluate(teacher, x_val, y_val)["accuracy"]

def student(seed):
    rng = np.random.default_rng(seed)
    return Sequential([("flatten", Flatten()), ("fc1", Linear(784, 16, rng=rng)),
                       ("relu1", ReLU()), ("fc2", Linear(16, 10, rng=rng))],
                      input_shape=(1, 28, 28), name="student")

print(f"teacher: {teacher.num_parameters():,} parameters, validation accuracy {teacher_acc:.2%}")
print(f"student: {student(0).num_parameters():,} parameters")

# %% [markdown]
# ## 2. Soft targets at several temperatures
#
# The teacher's probabilities for one validation image. At $T=1$ almost all the mass sits on
# one class; higher temperatures reveal how the teacher ranks the others. The entropy (in bits)
# measures how much the distribution says beyond the top class.

# %%
i = int(np.flatnonzero(y_val == 6)[0])  # a shirt
logits = compute_teacher_logits(teacher, x_val[i:i + 1])
temps = [1, 2, 4, 10]
fig, ax = plt.subplots(1, len(temps), figsize=(12, 2.8), sharey=True)
for a, t in zip(ax, temps):
    q = softmax_with_temperature(logits, t)[0]
    entropy = -(q * np.log2(q)).sum()
    a.bar(np.arange(10), q, color=["tab:red" if k == y_val[i] else "tab:blue" for k in range(10)])
    a.set_title(f"T = {t}  (entropy {entropy:.2f} bits)")
    a.set_xticks(range(10), CLASSES, rotation=90, fontsize=7)
ax[0].set_ylabel("teacher probability")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 3. A student with and without the teacher, few labels
#
# Soft targets carry more information per example than labels, so distillation helps most
# when the student sees few examples. The student trains for 30 epochs on only 1,000 labelled
# images: on the labels alone, or with the distillation loss ($\alpha = 0.9$) at several
# temperatures. Three seeds each (the seed sets the student's initialisation and the data order,
# the same for both students).

# %%
n_few = 1000
x_few, y_few = x_tr[:n_few], y_tr[:n_few]
z_teacher = compute_teacher_logits(teacher, x_few)  # computed once, shared by every student
temperatures = [1, 2, 4, 8]
seeds = [0, 1, 2]

def train_student(seed, x, y, temperature=None, z=None, epochs=30):
    s = student(seed)
    opt = SGD(s.params, lr=0.02, momentum=0.9)
    if temperature is None:
        fit(s, x, y, optimizer=opt, epochs=epochs, rng=seed, progress=False)
    else:
        distill(s, None, x, y, teacher_logits=z, temperature=temperature, alpha=0.9,
                optimizer=opt, epochs=epochs, rng=seed, progress=False)
    return s

labels_only = np.array([evaluate(train_student(sd, x_few, y_few), x_val, y_val)["accuracy"]
                        for sd in seeds])
kd = np.array([[evaluate(train_student(sd, x_few, y_few, t, z_teacher), x_val, y_val)["accuracy"]
                for t in temperatures] for sd in seeds])  # (seeds, temperatures)

fig = plot_accuracy_vs(temperatures, {"distilled (α = 0.9)": kd,
                                      "labels only": np.repeat(labels_only[:, None],
                                                               len(temperatures), axis=1)},
                       xlabel="temperature T", ylabel="validation accuracy")
fig.axes[0].axhline(teacher_acc, color="k", ls="--", lw=1, label="teacher")
fig.axes[0].legend(fontsize="small")
plt.show()
print(f"labels only: {labels_only.mean():.2%} ± {labels_only.std():.2%}")
for t, col in zip(temperatures, kd.T):
    print(f"distilled, T = {t}: {col.mean():.2%} ± {col.std():.2%}")

# %% [markdown]
# ## 4. With all the labels
#
# The same comparison on all 4,800 training images (10 epochs, the best temperature of
# section 3, chosen on the validation split). With plenty of labels the gap usually shrinks:
# the labels already say most of what the student can absorb. The repository's experiment
# `experiments/distillation_gap.py` measures it on the full Fashion-MNIST over several seeds.

# %%
best_t = temperatures[int(np.argmax(kd.mean(axis=0)))]
z_all = compute_teacher_logits(teacher, x_tr)
full = {"labels only": [], f"distilled (T = {best_t})": []}
for sd in seeds:
    full["labels only"].append(train_student(sd, x_tr, y_tr, epochs=10))
    full[f"distilled (T = {best_t})"].append(train_student(sd, x_tr, y_tr, best_t, z_all,
                                                           epochs=10))
for name, models in full.items():
    accs = np.array([evaluate(m, x_val, y_val)["accuracy"] for m in models])
    print(f"{name:18s} validation {accs.mean():.2%} ± {accs.std():.2%}")

# %% [markdown]
# And once, at the end, the test set for the students trained on 1,000 labels (mean over the
# three seeds): an estimate no choice above has looked at.

# %%
for name, t, z in [("labels only", None, None), (f"distilled (T = {best_t})", best_t, z_teacher)]:
    accs = [evaluate(train_student(sd, x_few, y_few, t, z), data.x_test, data.y_test)["accuracy"]
            for sd in seeds]
    print(f"{name:18s} test accuracy {np.mean(accs):.2%} ± {np.std(accs):.2%}")

# %% [markdown]
# ## Exercises
#
# 1. Set $\alpha = 1$ (soft targets only, no labels at all) in section 3. How close does the
#    student get? This is distillation on an *unlabelled* transfer set.
# 2. Remove the $T^2$ factor (train with $\alpha' = \alpha / T^2$ instead). What happens to the
#    accuracy at $T = 8$, and why?
# 3. Give the student 100 labelled images instead of 1,000. Does the gap grow?
# 4. Distillation also repairs compressed networks: prune the teacher to 95% (notebook 01) or
#    factorize it (notebook 07), and fine-tune it with its dense self as the teacher. Compare
#    with fine-tuning on the labels alone.
