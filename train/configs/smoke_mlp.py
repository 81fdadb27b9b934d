"""Smoke test of the training infrastructure: an MLP classifying three synthetic 2-D spirals.

Exercises everything the loop offers on a problem a linear model cannot solve: Flax model with
dropout (per-step keys) and BatchNorm (a mutable collection), Adam with a cosine warm restart
every epoch (the GACL schedule, SPEC §5; learning rate 3e-3 here), padded evaluation batches with a ``mask``,
JSON-lines metrics, orbax checkpoints and resumption.

Command:
  python train/run.py --config train/configs/smoke_mlp.py --workdir /tmp/smoke_mlp

Expected runtime: 4.3 s wall on an idle 2-core CPU (jax 0.10.2, 1 CPU device; 7-10 s when the
  cores are shared): about 2 s of Python start-up and imports, 1.4 s of compilation, then 8
  epochs x 64 steps of batch 128 (~2000 steps/s), 8 evaluations and 4 checkpoints in 0.9 s.
Expected metric: final eval accuracy 0.979 (eval loss 0.083) on 3072 held-out points, seed 0,
  reproducible to every printed digit on the same machine; chance is 0.33.
"""
from __future__ import annotations

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
import optax

from sketchjax.training import ArraySource, Experiment, Task, default_config, masked_sums, this_process


def get_config() -> dict:
    config = default_config()
    config.update(
        seed=0,
        num_epochs=8,
        batch_size=128,
        log_every_steps=32,
        checkpoint_every_steps=128,
        keep_checkpoints=2,
        model={"hidden": 64, "dropout": 0.1},
        data={"num_train": 8192, "num_eval": 3072, "noise": 0.05, "turns": 1.0, "seed": 0},
    )
    config["optimizer"].update(name="adam", learning_rate=3e-3, schedule="sgdr", restart_every="epoch")
    return config


def spirals(num: int, noise: float, turns: float, seed: int) -> dict[str, np.ndarray]:
    """Three interleaved spiral arms of ``turns`` turns each: ``x float32[num, 2]`` in about
    ``[-1, 1]^2`` plus Gaussian ``noise``, class ``y int32[num]``."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, num)
    t = np.sqrt(rng.uniform(0.0, 1.0, num))  # radius in (0, 1], uniform density in the disc
    angle = 2.0 * np.pi * turns * t + 2.0 * np.pi * y / 3.0
    x = np.stack([t * np.cos(angle), t * np.sin(angle)], -1) + noise * rng.standard_normal((num, 2))
    return {"x": x.astype(np.float32), "y": y.astype(np.int32)}


class MLP(nn.Module):
    hidden: int
    dropout: float
    num_classes: int = 3

    @nn.compact
    def __call__(self, x, *, train: bool):
        for _ in range(2):
            x = nn.Dense(self.hidden)(x)
            x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
            x = nn.relu(x)
            x = nn.Dropout(self.dropout, deterministic=not train)(x)
        return nn.Dense(self.num_classes)(x)


def build_experiment(config: dict) -> Experiment:
    model = MLP(**config["model"])
    data = config["data"]

    def init_fn(rng, batch):
        return model.init(rng, batch["x"], train=False)

    def loss_fn(params, collections, batch, rng):
        logits, updates = model.apply(
            {"params": params, **collections}, batch["x"], train=True, rngs={"dropout": rng}, mutable=["batch_stats"]
        )
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]).mean()
        accuracy = jnp.mean(jnp.argmax(logits, -1) == batch["y"])
        return loss, ({"accuracy": accuracy}, updates)

    def eval_fn(params, collections, batch):
        logits = model.apply({"params": params, **collections}, batch["x"], train=False)
        return masked_sums(
            {
                "loss": optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]),
                "accuracy": jnp.argmax(logits, -1) == batch["y"],
            },
            batch["mask"],
        )

    train = spirals(data["num_train"], data["noise"], data["turns"], data["seed"])
    held_out = spirals(data["num_eval"], data["noise"], data["turns"], data["seed"] + 1)
    return Experiment(
        task=Task(init_fn, loss_fn, eval_fn),
        train_source=ArraySource(train, config["batch_size"], seed=config["seed"], shuffle=True, drop_remainder=True,
                                 **this_process()),
        eval_source=ArraySource(held_out, config["batch_size"], shuffle=False, drop_remainder=False, **this_process()),
    )
