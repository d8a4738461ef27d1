"""Typed run configuration, resolved from the workflow config and saved with every run."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings shared by every method unless a method overrides them."""

    epochs: int = 10  # passes over the (resampled) training set
    batch_size: int = 64  # images per optimisation step
    lr: float = 1e-3  # Adam learning rate
    weight_decay: float = 0.0  # Adam L2 penalty

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"training.{name} must be ≥ 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"training.lr must be > 0, got {self.lr}")
        if self.weight_decay < 0:
            raise ValueError(f"training.weight_decay must be ≥ 0, got {self.weight_decay}")


@dataclass(frozen=True)
class MethodSpec:
    """A named recipe: each component is chosen by name from a library registry."""

    resample: str = "none"  # balancing.RESAMPLERS
    loss: str = "ce"  # losses.LOSSES
    model: str = "small_cnn"  # models.MODELS
    schedule: str = "single"  # training schedule; "single" = one phase on the resampled set


@dataclass(frozen=True)
class RunConfig:
    """Everything that identifies and drives one training run (``run_config.json``)."""

    study: str
    dataset: str
    profile: str
    method: str
    seed: int  # seeds model initialisation, batch order and resampling
    spec: MethodSpec
    training: TrainConfig

    @classmethod
    def from_dict(cls, d: dict) -> RunConfig:
        return cls(
            study=d["study"],
            dataset=d["dataset"],
            profile=d["profile"],
            method=d["method"],
            seed=int(d["seed"]),
            spec=_build(MethodSpec, d["spec"], "methods." + d["method"]),
            training=_build(TrainConfig, d["training"], "training"),
        )

    def to_dict(self) -> dict:
        return asdict(self)


def _build(kind, values: dict, where: str):
    known = {f.name for f in fields(kind)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; valid keys: {sorted(known)}")
    return kind(**values)
