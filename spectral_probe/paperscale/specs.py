"""The data types of ``reproduce paper``'s work: jobs, parts, training work, and settings hashes."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..figures.parts import TrainingWork
from ..hashing import canonical, settings_hash

__all__ = ["Work", "PartSpec", "JobSpec", "settings_hash", "canonical"]


@dataclass(frozen=True)
class Work(TrainingWork):
    """One training run inside a part, for the time model: a figure part's ``TrainingWork`` with its cost keys."""

    @property
    def shape(self) -> str:
        """Cost key: activation family (SIREN^2 trains like SIREN), samples, dims, depth x width."""
        family = {"siren2": "siren"}.get(self.model, self.model)
        return f"{family} n={self.n} d={self.dims} {self.depth}x{self.width}"

    @property
    def units(self) -> float:
        """Multiply-adds per sample and epoch, up to a constant: ``n x width^2 x depth``."""
        return float(self.n) * self.width * self.width * self.depth

    @classmethod
    def of(cls, item) -> "Work":
        """From a figure part's ``TrainingWork`` (or any object with these attributes)."""
        return cls(str(item.model), int(item.n), int(item.dims), int(item.width), int(item.depth), int(item.epochs))


@dataclass
class PartSpec:
    """One part of a job: its name, the settings that determine it, their hash, its training work."""

    job: str
    name: str
    kind: str
    settings: dict
    work: tuple = ()
    extra: dict = field(default_factory=dict)
    resumable: bool = False

    @property
    def id(self) -> str:
        return f"{self.job}/{self.name}"

    @property
    def hash(self) -> str:
        return settings_hash(self.settings)


@dataclass
class JobSpec:
    """A figure or a Table 1 cell: settings (hashed at job level) and parts."""

    name: str
    kind: str                 # "figure" or "table1"
    settings: dict
    parts: list[PartSpec]
    number: str | None = None
    file: str | None = None
    model: str | None = None
    sizes: dict = field(default_factory=dict)
    data: tuple = ()          # data files the job reads
    all_parts: tuple = ()     # names of every part, also when ``parts`` holds a selection

    @property
    def hash(self) -> str:
        return settings_hash(self.settings)

    @property
    def part_names(self) -> list[str]:
        """Every part of the job (its state derives from all of them, whatever ``--jobs`` selected)."""
        return list(self.all_parts) or [p.name for p in self.parts]
