"""Lightning training shared by every architecture.

The whole feature matrix lives in one tensor on the training device; a batch is a tensor of
window end rows, and the module gathers (batch, seq_len, features) in one indexing op. No
per-sample Python work, no (samples x L x features) copy.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping
from torch import nn
from torch.utils.data import DataLoader, Sampler

from tsarena.fitting.params import TrainParams
from tsarena.split.windows import windows_at

for _name in ("lightning.pytorch", "lightning.fabric", "lightning"):
    logging.getLogger(_name).setLevel(logging.WARNING)
warnings.filterwarnings("ignore", ".*does not have many workers.*")
warnings.filterwarnings("ignore", ".*LitLogger.*|.*litlogger.*")
warnings.filterwarnings("ignore", ".*isinstance\\(treespec, LeafSpec\\)` is deprecated.*")


class ShuffledBatches(Sampler[torch.Tensor]):
    """Yields whole batches as position tensors; shuffles (seeded) within the split it is given."""

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int = 0):
        self.n, self.batch_size, self.shuffle = n, batch_size, shuffle
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self) -> Iterator[torch.Tensor]:
        order = torch.randperm(self.n, generator=self.generator) if self.shuffle else torch.arange(self.n)
        yield from order.split(self.batch_size)

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)


def loader(ends: np.ndarray, batch_size: int, shuffle: bool, seed: int = 0) -> DataLoader:
    """Items are whole batches of end rows: one tensor index per batch, no per-sample collation."""
    sampler = ShuffledBatches(len(ends), batch_size, shuffle, seed)
    return DataLoader(torch.as_tensor(ends, dtype=torch.long), sampler=sampler, batch_size=None)


def as_tensor(array: np.ndarray, shared: bool = False) -> torch.Tensor:
    """A float32 tensor sharing memory with `array` where possible. A read-only array is copied, unless
    `shared`: then it is used in place and never written (a fold's matrix in Ray's object store, read by
    every fit of the fold; torch warns of what it cannot know, that nothing here writes to it)."""
    array = np.ascontiguousarray(array, dtype=np.float32)
    if array.flags.writeable:
        return torch.from_numpy(array)
    if not shared:
        return torch.from_numpy(array.copy())
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)


def loss_function(target_kind: str) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """MSE for returns; BCE on logits for direction."""
    if target_kind == "direction":
        return nn.functional.binary_cross_entropy_with_logits
    return nn.functional.mse_loss


def no_skill_loss(target_kind: str, targets: np.ndarray) -> float:
    """The random walk's loss on these targets: the zero forecast's MSE (mean square), or a coin
    flip's BCE (ln 2). Each split's loss is divided by its own, so 1.0 means "no better than the
    random walk on this split" on train and validation alike (a calm validation period with a
    small variance cannot pass for skill)."""
    if target_kind == "direction":
        return math.log(2)
    return float(np.mean(np.square(targets, dtype=np.float64))) or 1.0


class Forecaster(L.LightningModule):
    """Wraps any registry model; holds the data so batches are gathered on the device.

    Records one history row per epoch (epoch, train_loss, val_loss, lr) and hands it to
    `on_epoch` as it lands.
    """

    def __init__(
        self,
        model: nn.Module,
        matrix: np.ndarray,
        targets: np.ndarray,
        seq_len: int,
        params: TrainParams,
        loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        on_epoch: Callable[[dict[str, float]], None] | None = None,
        scales: dict[str, float] | None = None,
    ):
        super().__init__()
        self.model = model
        # torch.compile'd forward for training (train.compile); not a submodule, so the state dict,
        # the optimizer and the checkpoint see the plain model's parameters, which it shares
        self.__dict__["forward_model"] = torch.compile(model) if params.compile else model
        self.params = params
        self.loss = loss
        self.scales = {"train": 1.0, "val": 1.0, **(scales or {})}
        # no copy when the arrays are already float32 and contiguous (as the window stage writes them)
        self.register_buffer("matrix", as_tensor(matrix, shared=True), persistent=False)
        self.register_buffer("targets", as_tensor(targets, shared=True), persistent=False)
        self.register_buffer("offsets", torch.arange(-seq_len + 1, 1), persistent=False)
        self.loss_sums = {"train": torch.zeros(()), "val": torch.zeros(())}
        self.counts = {"train": 0, "val": 0}
        self.history: list[dict[str, float]] = []
        self.on_epoch = on_epoch
        self.val_loss = float("nan")
        self.epoch_lr = float("nan")

    def transfer_batch_to_device(self, batch: torch.Tensor, device: torch.device, dataloader_idx: int) -> torch.Tensor:
        return batch.to(device)  # a batch is one index tensor: skip Lightning's generic collection walk

    def gather(self, ends: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.matrix[ends.unsqueeze(1) + self.offsets], self.targets[ends]

    def _step(self, ends: torch.Tensor, split: str) -> torch.Tensor:
        windows, target = self.gather(ends)
        loss = self.loss(self.forward_model(windows), target) / self.scales[split]
        # summed here and logged once per epoch: self.log per step costs ~1 ms of Python
        self.loss_sums[split] = self.loss_sums[split] + loss.detach() * len(ends)  # not in place: any device
        self.counts[split] += len(ends)
        return loss

    def training_step(self, ends: torch.Tensor, _: int) -> torch.Tensor:
        return self._step(ends, "train")

    def validation_step(self, ends: torch.Tensor, _: int) -> torch.Tensor:
        return self._step(ends, "val")

    def _epoch_mean(self, split: str) -> torch.Tensor:
        """Mean loss over every sample of the epoch, summed across DDP ranks (a no-op on one device)."""
        strategy = self.trainer.strategy
        total = strategy.reduce(self.loss_sums[split].to(self.device), reduce_op="sum")
        count = strategy.reduce(torch.tensor(float(self.counts[split]), device=self.device), reduce_op="sum")
        self.loss_sums[split], self.counts[split] = torch.zeros((), device=self.device), 0
        return total / count.clamp(min=1)

    def on_train_epoch_start(self) -> None:
        self.epoch_lr = self.trainer.optimizers[0].param_groups[0]["lr"]

    def on_validation_epoch_end(self) -> None:
        self.val_loss = float(self._epoch_mean("val"))  # early stopping and checkpointing read it next
        self.log("val_loss", self.val_loss, prog_bar=True)

    def on_train_epoch_end(self) -> None:
        row = {"epoch": self.current_epoch, "train_loss": float(self._epoch_mean("train")),
               "val_loss": self.val_loss, "lr": float(self.epoch_lr)}
        self.log("train_loss", row["train_loss"])
        self.history.append(row)
        if self.on_epoch and self.trainer.is_global_zero:
            self.on_epoch(row)

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.AdamW(self.model.parameters(), lr=self.params.lr, weight_decay=self.params.weight_decay)
        if self.params.scheduler == "cosine":
            return {"optimizer": optimizer, "lr_scheduler": torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, self.params.max_epochs)}
        if self.params.scheduler == "plateau":
            plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.5, patience=max(1, self.params.patience // 2))
            return {"optimizer": optimizer, "lr_scheduler": {"scheduler": plateau, "monitor": "val_loss"}}
        return optimizer


def interactive() -> bool:
    """A progress bar on a terminal; line logs under CI, when output is piped, and never from a worker
    process (several bars would overwrite each other; the stage prints their epochs as lines)."""
    return sys.stderr.isatty() and not os.environ.get("CI") and multiprocessing.parent_process() is None


def progress(line: str, enabled: bool = True) -> None:
    """A line for the person watching: before each fit, and per epoch where there is no progress bar."""
    if enabled:
        print(line, flush=True)


def epoch_reporter(label: str, log: Callable[[dict[str, float]], None], lines: bool = False
                   ) -> Callable[[dict[str, float]], None]:
    """Per epoch: `log` the row (MLflow), and print one line when there is no progress bar (CI, pipes,
    or `lines`: fits in worker processes)."""

    def on_epoch(row: dict[str, float]) -> None:
        log(row)
        if lines or not interactive():
            progress(f"{label} epoch {row['epoch']:>3}: train_loss {row['train_loss']:.5f} "
                     f"val_loss {row['val_loss']:.5f} lr {row['lr']:.2e}")

    return on_epoch


class BestWeights(L.Callback):
    """The best epochs' weights (lowest val_loss), kept as copies in memory: what ModelCheckpoint
    gives, without writing and re-reading a file every time validation improves. With `keep` > 1 the
    final weights are the average of the `keep` best epochs' (an average of nearby solutions on one
    trajectory, as stochastic weight averaging: less of any one epoch's fitted noise)."""

    def __init__(self, keep: int = 1) -> None:
        self.keep = keep
        self.kept: list[tuple[float, int, dict[str, torch.Tensor]]] = []

    @property
    def best(self) -> float:
        return self.kept[0][0] if self.kept else float("inf")

    def on_validation_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        loss = module.val_loss
        if not loss < float("inf"):  # NaN never is: a diverged epoch is not kept
            return
        if len(self.kept) == self.keep and loss >= self.kept[-1][0]:
            return
        state = {k: v.detach().to("cpu", copy=True) for k, v in module.model.state_dict().items()}
        self.kept = sorted([*self.kept, (loss, trainer.current_epoch, state)], key=lambda kept: kept[:2])[: self.keep]

    def averaged(self) -> dict[str, torch.Tensor] | None:
        """The kept epochs' weights, averaged (the one best epoch's when keep is 1); None if none was kept."""
        if not self.kept:
            return None
        states = [kept[2] for kept in self.kept]
        return {k: (sum(s[k].double() for s in states) / len(states)).to(v.dtype) if v.is_floating_point() else v
                for k, v in states[0].items()}


def deterministic_mode(accelerator: str) -> bool | str:
    """CUDA needs deterministic kernels for bit-identical reruns. On CPU a seeded fit is already
    bit-identical (checked for every architecture: tests/test_models.py), and the deterministic mode
    would only cost time (it fills every new tensor with NaN first)."""
    return False if accelerator == "cpu" or not torch.cuda.is_available() else "warn"


def make_trainer(params: TrainParams, callbacks: list[L.Callback]) -> L.Trainer:
    return L.Trainer(
        max_epochs=params.max_epochs,
        accelerator=params.accelerator,
        devices=params.devices,
        num_nodes=params.num_nodes,
        strategy=params.strategy,
        precision=params.precision,
        gradient_clip_val=params.grad_clip or None,
        deterministic=deterministic_mode(params.accelerator),
        logger=False,
        enable_checkpointing=False,  # BestWeights keeps the best epochs
        enable_model_summary=False,
        enable_progress_bar=interactive(),
        num_sanity_val_steps=0,
        callbacks=callbacks,
    )


def seed_all(seed: int) -> None:
    """Seed python, numpy and torch: call before building the model so its init is seeded too."""
    L.seed_everything(seed, workers=True, verbose=False)


def fit(
    model: nn.Module,
    matrix: np.ndarray,
    targets: np.ndarray,
    ends: dict[str, np.ndarray],
    seq_len: int,
    params: TrainParams,
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    seed: int,
    on_epoch: Callable[[dict[str, float]], None] | None = None,
    scales: dict[str, float] | None = None,
    callbacks: list | None = None,
) -> list[dict[str, float]]:
    """Train with early stopping on val_loss; the model ends with the best epoch's weights, or the
    average of the `params.average_best` best epochs' (each history row's `kept` says which).

    `scales` divides each split's loss (see no_skill_loss). Reseeds, so dropout and shuffling are
    reproducible whatever ran before. `callbacks`: extra Lightning callbacks (a tuning trial's pruner).
    """
    seed_all(seed)
    module = Forecaster(model, matrix, targets, seq_len, params, loss, on_epoch, scales)
    best = BestWeights(params.average_best)
    stop = EarlyStopping(monitor="val_loss", mode="min", patience=params.patience)
    trainer = make_trainer(params, [best, stop, *(callbacks or [])])
    trainer.fit(
        module,
        train_dataloaders=loader(ends["train"], params.batch_size, shuffle=True, seed=seed),
        val_dataloaders=loader(ends["val"], params.batch_size, shuffle=False),
    )
    state = best.averaged()
    if state is not None:  # every epoch NaN: the last weights stay (and its val_loss says so)
        model.load_state_dict(state)
    kept = {epoch for _, epoch, _ in best.kept}
    for row in module.history:  # which epochs' weights the model ends with (the loss plot marks them)
        row["kept"] = row["epoch"] in kept
    model.cpu().eval()
    return module.history


def is_worker_process() -> bool:
    """True in a DDP process other than global rank 0 (Lightning starts those by re-running the
    stage's command with LOCAL_RANK set; torchrun sets RANK). Such a process trains in step and
    logs and writes nothing."""
    return any(int(os.environ.get(name, "0")) > 0 for name in ("RANK", "LOCAL_RANK", "NODE_RANK"))


@torch.no_grad()
def predict(model: nn.Module, matrix: np.ndarray, ends: np.ndarray, seq_len: int, batch_size: int = 1024) -> np.ndarray:
    """Forecast for every end row, in order; the last batch may be short (no row dropped)."""
    model.eval()
    # only the requested windows are copied: `matrix` may be a read-only memory map of millions of rows
    out = [model(as_tensor(windows_at(matrix, ends[i : i + batch_size], seq_len)))
           for i in range(0, len(ends), batch_size)]
    return torch.cat(out).double().numpy() if out else np.empty(0)


def has_dropout(model: nn.Module) -> bool:
    """Whether Monte Carlo dropout can sample this model: it has a dropout layer with p > 0."""
    return any(isinstance(m, nn.modules.dropout._DropoutNd) and m.p > 0 for m in model.modules())


@torch.no_grad()
def predict_samples(model: nn.Module, matrix: np.ndarray, ends: np.ndarray, seq_len: int, samples: int, seed: int,
                    batch_size: int = 1024) -> np.ndarray:
    """Monte Carlo dropout (Gal & Ghahramani 2016): `samples` forecasts per end row (samples x rows) with the
    dropout layers sampling and batch norms in eval mode, seeded. The spread is the model's own
    uncertainty about its weights, not the noise of the outcome: expect it to cover far less than its level."""
    model.train()  # train mode everywhere (a TransformerEncoderLayer in eval takes a fast path that skips dropout) ...
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()  # ... but batch norms keep their running statistics
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        out = np.empty((samples, len(ends)))
        for i in range(0, len(ends), batch_size):
            batch = as_tensor(windows_at(matrix, ends[i : i + batch_size], seq_len))
            for k in range(samples):
                out[k, i : i + len(batch)] = model(batch).double().numpy()
    finally:
        torch.random.set_rng_state(generator_state)
        model.eval()
    return out
