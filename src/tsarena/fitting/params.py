"""`train` and `tune`: how a fit trains, and the equal tuning budget."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Discriminator, Field, Tag, ValidationError, field_validator, model_validator

from tsarena.core.params import Section

class TrainParams(Section):
    max_epochs: Annotated[int, Field(ge=1, le=10_000)] = 20
    batch_size: Annotated[int, Field(ge=1, le=65_536)] = 64
    lr: Annotated[float, Field(gt=0, le=1)] = 3e-3
    weight_decay: Annotated[float, Field(ge=0, le=1)] = 1e-4
    scheduler: Literal["plateau", "cosine", "none"] = "plateau"
    patience: Annotated[int, Field(ge=1)] = 5
    # the fit's weights: the average over this many best epochs by val_loss (1: the best epoch's)
    average_best: Annotated[int, Field(ge=1, le=100)] = 3
    grad_clip: Annotated[float, Field(ge=0)] = 1.0
    accelerator: Literal["auto", "cpu", "gpu", "cuda", "mps"] = "auto"
    precision: Literal["32", "bf16-mixed"] = "32"
    # several devices or nodes: Lightning's own strategies (DDP); 1 device needs none
    devices: Annotated[int, Field(ge=1, le=1024)] = 1
    num_nodes: Annotated[int, Field(ge=1, le=1024)] = 1
    strategy: Literal["auto", "ddp"] = "auto"
    # torch.compile the model for training: pays only for some architectures (BENCHMARKS.md, "compile")
    compile: bool = False
    # a fit's intra-op threads: part of its result (reductions split by thread count), so fixed, not
    # derived from the machine; 1 makes a fit reproducible on any machine
    threads: Annotated[int, Field(ge=1, le=1024)] = 1
    # fits run side by side in worker processes; auto: cores // threads. A speed knob: no result changes
    jobs: Literal["auto"] | Annotated[int, Field(ge=1, le=1024)] = "auto"

    @field_validator("ray_address")
    @classmethod
    def _head_address(cls, value: str | None) -> str | None:
        if value is not None and "://" in value:
            raise ValueError(f"the head's host:port (as `ray start --head` prints it), got {value!r}: a Ray Client "
                             "address (ray://) is not supported, run dvc on a machine that reaches the head")
        return value

    @field_validator("jobs", mode="before")
    @classmethod
    def _jobs_auto_or_count(cls, value: object) -> object:
        """One message for both ways to get it wrong (the union would report only its first branch)."""
        if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 1024):
            return value
        raise ValueError(f"auto or a number of processes from 1 to 1024, got {value!r}")
    # where the fits (and tuning trials) run: `local` processes (train.jobs of them) or tasks on a Ray cluster,
    # the same numbers either way; a speed knob like jobs
    backend: Literal["local", "ray"] = "local"
    # backend ray: the cluster's address (host:port of its head, as `ray start --head` prints); null:
    # $RAY_ADDRESS, else a Ray instance started on this machine for the stage
    ray_address: str | None = None
    # backend ray: each fit's share of a GPU (0.25: four small fits share one); 0: fits on CPUs only
    gpus_per_fit: Annotated[float, Field(ge=0, le=64)] = 0.0
    # one model (and one MLflow run) per seed; evaluate reports mean, std, min and max across them
    seeds: Annotated[list[int], Field(min_length=1, max_length=100)] = Field(default_factory=lambda: [42])

    @model_validator(mode="after")
    def _seeds_unique(self) -> TrainParams:
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: each seed once, got {self.seeds}")
        return self


class SearchRange(Section):
    """A numeric search range: integers when both bounds are, floats otherwise; `log` samples log-uniformly."""

    low: int | float
    high: int | float
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> SearchRange:
        if not self.low < self.high:
            raise ValueError(f"high: low {self.low} must be below high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError(f"low: a log range needs low > 0, got {self.low}")
        return self

    def values(self) -> list:
        return [self.low, self.high]


class SearchChoice(Section):
    choices: Annotated[list[int | float | str | bool | None], Field(min_length=1)]

    def values(self) -> list:
        return list(self.choices)


def _spec_kind(raw: Any) -> str:
    return "choice" if isinstance(raw, dict) and "choices" in raw or isinstance(raw, SearchChoice) else "range"


Spec = Annotated[Annotated[SearchRange, Tag("range")] | Annotated[SearchChoice, Tag("choice")], Discriminator(_spec_kind)]
Space = dict[str, Spec]


def check_space(space: Space, params: type[BaseModel], base: dict[str, Any]) -> None:
    """Every searched key is a field of `params`, and every bound or choice is a valid value for it."""
    for key, spec in space.items():
        if key not in params.model_fields:
            raise ValueError(f"{key}: not a param of this section")
        for value in spec.values():
            try:
                params.model_validate({**base, key: value})
            except ValidationError as exc:  # the field's own rule; a cross-field rule is checked per trial
                own = [e for e in exc.errors() if tuple(e["loc"]) == (key,)]
                if own:
                    raise ValueError(f"{key}: {value!r} is not a valid value ({own[0]['msg']})") from None


class TuneParams(Section):
    """Equal tuning budgets (Optuna): `trials` per architecture, seeded TPE, median pruning, on fold 1's
    training and validation windows only; 0 uses the params as they are."""

    trials: Annotated[int, Field(ge=0, le=100_000)] = 0
    seed: int = 0
    jobs: Annotated[int, Field(ge=1, le=256)] = 1  # local worker processes sharing one study
    storage: str | None = None  # null: in memory (jobs 1) or a journal file; else an RDB URL shared by machines
    pruner: Literal["median", "none"] = "median"
    train_space: Space = Field(default_factory=lambda: {"lr": SearchRange(low=1e-4, high=1e-2, log=True)})
    # per architecture; one left out searches its model file's SPACE (`{}`: only train_space)
    space: dict[str, Space] = Field(default_factory=dict, validate_default=True)

    @field_validator("space", mode="before")
    @classmethod
    def _model_files_space_the_rest(cls, value: object) -> object:
        """An architecture params.yaml leaves out is searched over its model file's SPACE: one definition."""
        from tsarena.contestants.registry import architecture_names, search_space

        if not isinstance(value, dict):
            return value
        return {**{name: search_space(name) for name in architecture_names() if name not in value}, **value}

    @model_validator(mode="after")
    def _spaces_fit_their_sections(self) -> TuneParams:
        from tsarena.contestants.registry import architecture_names, params_class

        try:
            check_space(self.train_space, TrainParams, {})
        except ValueError as exc:
            raise ValueError(f"train_space.{exc}") from None
        for name, space in self.space.items():
            if name not in architecture_names():
                raise ValueError(f"space: unknown architecture '{name}'")
            try:
                check_space(space, params_class(name), {})
            except ValueError as exc:
                raise ValueError(f"space.{name}.{exc}") from None
        return self


