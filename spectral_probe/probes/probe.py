"""Activation probes: per-layer statistics of pre- and post-activations during training.

A :class:`Probe` observes named *hook points* of any ``nn.Module``:

* bundled models (:class:`~spectral_probe.models.INR`) expose ``HookPoint``
  modules ``input``, ``layers.{i}.pre``, ``layers.{i}.post`` and ``output``;
* any other module falls back to its leaf modules: linear maps
  (``nn.Linear``, convolutions) count as ``pre`` (their output is the argument
  of the next nonlinearity) and every other leaf as ``post`` of the preceding
  linear map.  Their names are the module paths (``"0"``, ``"net.2"``); filters
  also match the alias ``"{layer}.{kind}"`` (e.g. ``"0.pre"``), so
  ``layers="*pre*"`` works for both.  Activations computed with functions
  (``torch.sin(x)`` in ``forward``) are invisible there: wrap them in a module.

``input`` is stored as a ``post`` (what layer 0 sees) and ``output`` as a
``pre`` (a linear map without nonlinearity).  Complex activations (WIRE) are
reduced with ``complex_part`` (default: the real part).

Hooks are registered only while a probe step runs (or inside
:meth:`Probe.hooks`) and removed in ``finally``, so training steps pay nothing
and exceptions leave no hooks behind.  Hooks are inert inside
:func:`~spectral_probe.hooks.paused` and when they see tensors of a
``torch.func`` transform (``vmap``/``jacrev``, functorch#1054).  With ``torch.compile``,
compile after the probe's hooks are registered or use ``probe.step`` on the
eager model (pytorch#117758).
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from . import stats
from .. import _compat
from ..cadence import check_every, completed_epochs, is_due
from ..hooks import inside_transform, is_paused, paused
from ..models.base import HookPoint
from .cache import ProbeCache, activation_layout, freq_axis, stack_points
from .registry import active_statistics
from .summary import summarize, unpack
from ..training.loop import TrainState
from ..training.recording import RunRecorder
from ..validation import check_known

__all__ = ["HookInfo", "hook_points", "list_hook_points", "select_hook_points", "paused", "is_paused",
           "Probe", "ProbeCache"]

KINDS = ("pre", "post")
#: ``Probe(mode=...)``: module mode of the probe's forward pass
MODES = ("eval", "train", "as-is")
_LINEAR = (nn.Linear, nn.Bilinear, _compat.CONV_BASE)
_COMPLEX_PARTS = {"real": torch.real, "imag": torch.imag, "abs": torch.abs, "angle": torch.angle}
#: ``bin_range="auto"``: the output's scale follows the fit, hidden layers keep theirs
_AUTO_RANGE = {"output": "adaptive", "*": "first"}


# --------------------------------------------------------------------------- hook points
@dataclass(frozen=True)
class HookInfo:
    """A place a probe can observe: ``name`` (module path), its module, and (layer, kind)."""

    name: str
    module: nn.Module
    layer: str
    kind: str
    marked: bool = True     #: a HookPoint (False: a leaf module of the fallback)

    @property
    def alias(self) -> str:
        return f"{self.layer}.{self.kind}"

    def matches(self, pattern: str) -> bool:
        """fnmatch on the name; leaf-module points also match their alias ``layer.kind``."""
        return fnmatchcase(self.name, pattern) or (not self.marked and fnmatchcase(self.alias, pattern))


def _split_name(name: str) -> tuple[str, str]:
    head, _, tail = name.rpartition(".")
    if head and tail in KINDS:
        return head, tail
    return (name, "pre") if name == "output" else (name, "post")


def _leaf_points(model: nn.Module) -> dict[str, HookInfo]:
    points: dict[str, HookInfo] = {}
    used: set[tuple[str, str]] = set()
    layer = None
    for name, module in model.named_modules():
        if not name or next(module.children(), None) is not None:
            continue
        if isinstance(module, _LINEAR):
            layer, kind = name, "pre"
        else:
            kind = "post"
        owner = layer if layer is not None and (layer, kind) not in used else name
        used.add((owner, kind))
        points[name] = HookInfo(name, module, owner, kind, marked=False)
    return points


def hook_points(model: nn.Module) -> dict[str, HookInfo]:
    """All hook points of ``model`` in forward (registration) order."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"probes attach to torch.nn.Module objects, got {type(model).__name__}")
    marked = {n: m for n, m in model.named_modules() if isinstance(m, HookPoint)}
    if marked:
        return {n: HookInfo(n, m, *_split_name(n)) for n, m in marked.items()}
    return _leaf_points(model)


def list_hook_points(model: nn.Module) -> list[str]:
    """Names accepted by ``Probe(layers=...)`` for ``model``."""
    return list(hook_points(model))


def _describe(points: Mapping[str, HookInfo]) -> str:
    return ", ".join(p.name if p.marked else f"{p.name} ({p.alias})" for p in points.values())


def select_hook_points(model: nn.Module, layers: str | Sequence[str] | None = "*") -> list[HookInfo]:
    """Hook points matching ``layers`` (fnmatch patterns or exact names), in forward order.

    Raises
    ------
    ValueError
        If a name or pattern matches nothing; the message lists the valid names.
    """
    points = hook_points(model)
    if not points:
        raise ValueError(f"{type(model).__name__} has no hook points (no HookPoint and no leaf modules)")
    patterns = ["*"] if layers is None else [layers] if isinstance(layers, str) else list(layers)
    chosen = set()
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise TypeError(f"layer filters must be strings, got {pattern!r}")
        hits = {n for n, p in points.items() if p.matches(pattern)}
        if not hits:
            raise ValueError(f"unknown layer {pattern!r}; valid names: {_describe(points)}")
        chosen |= hits
    return [p for n, p in points.items() if n in chosen]


@contextmanager
def _mode(model: nn.Module, mode: str) -> Iterator[None]:
    """Run the block with ``model`` in ``mode``; every submodule's own mode is restored afterwards."""
    if mode == "as-is":
        yield
        return
    before = [(module, module.training) for module in model.modules()]
    model.train(mode == "train")
    try:
        yield
    finally:
        for module, training in before:
            module.training = training


# --------------------------------------------------------------------------- probe
class Probe(RunRecorder):
    """Per-layer activation statistics every ``every`` epochs; a training-loop callback.

    Parameters
    ----------
    layers
        Hook-point names or fnmatch patterns (``"*pre*"``, ``["layers.0.*", "output"]``).
    every
        Probe epochs ``0, every, 2 every, ...``.
    bins
        Histogram bins (an integer) or explicit edges (a 1-D sequence, fixed).
    bin_range
        ``"first"``: edges fixed per hook point from the first probe step
        (its ``[min, max]`` widened by ``margin`` of the span on each side);
        ``"adaptive"``: recomputed at every probe step; ``(lo, hi)``: fixed for
        all; a dict ``pattern -> any of these`` (first match wins, else
        ``"first"``); ``"auto"`` (default) = ``{"output": "adaptive", "*": "first"}``:
        the output starts near 0 and grows to the target's range, hidden
        activations keep their scale.  Values outside count in ``hist_outside``.
    psd
        ``"mean"`` (layer-averaged PSD: mean of per-neuron PSDs), ``"sum"``
        (PSD of the sum over neurons, the authors' notebook) or None (skip).
        2-D grids store the radial profile of the 2-D PSD.
    keep
        Also keep the raw activations of the latest probe step in
        ``probe.cache`` (``probe.cache["layers.0.pre"]``).
    mode
        Module mode of the probe's forward pass (:meth:`step`, :meth:`capture`):
        ``"eval"`` (default) runs it in eval mode -- Dropout off, BatchNorm on its
        running statistics -- so the statistics describe the model as it
        predicts, not one noisy training forward; ``"train"`` runs it in train
        mode (Dropout active; BatchNorm normalises with the batch and *updates
        its running statistics*); ``"as-is"`` keeps whatever mode the model is
        in.  The mode of every submodule is restored afterwards, even when the
        forward raises.  Models without such layers (all bundled INRs) give the
        same statistics in every mode.
    device
        Where the cache lives (statistics are computed on the model's device).
    writer
        A :class:`~spectral_probe.store.TrajectoryWriter`; each probe step is
        appended to ``group``.
    complex_part
        ``"real"``, ``"imag"``, ``"abs"`` or ``"angle"`` of complex activations.
    grid_shape
        Sample grid of the inputs; default: the target's (in :func:`fit`) or
        inferred from the coordinates.

    Notes
    -----
    Step ``e`` observes the model evaluated in epoch ``e``'s loss, i.e. after
    ``e`` updates (:func:`fit` probes in ``on_epoch_start``).  In a plain loop,
    call ``probe.step(epoch, model, inputs)`` before the update; inputs must be
    the full grid in grid order.  A :class:`~spectral_probe.training.recording.RunRecorder`.
    """

    tensorboard = "activations"
    data_attributes = ("writer", "cache")

    def __init__(self, layers: str | Sequence[str] | None = "*", *, every: int = 100, bins=64,
                 bin_range="auto", margin: float = 0.05, psd: str | None = "mean", keep: bool = False,
                 device: str | torch.device = "cpu", writer=None, group: str = "activations",
                 complex_part: str = "real", grid_shape: Sequence[int] | None = None, mode: str = "eval") -> None:
        every = check_every(every)
        check_known([mode], MODES, "mode", exc=ValueError)
        if complex_part not in _COMPLEX_PARTS:
            raise ValueError(f"unknown complex_part {complex_part!r}; choose {', '.join(_COMPLEX_PARTS)}")
        if psd is not None:
            stats._check_method(psd)
        self.layers, self.every, self.bins, self.bin_range, self.mode = layers, every, bins, bin_range, mode
        self.margin, self.psd, self.keep = float(margin), psd, bool(keep)
        self.device = torch.device(device)
        self.writer, self.group, self.complex_part = writer, group, complex_part
        self.grid_shape = tuple(int(n) for n in grid_shape) if grid_shape is not None else None
        self._n_bins = self._check_bins(bins)
        self._uniform = isinstance(bins, int) and not isinstance(bins, bool)   # edges from a range
        self._points: list[HookInfo] = []
        self._model_id: int | None = None
        self._edges: dict[str, tuple[np.ndarray, tuple[float, float]]] = {}
        self._current: dict[str, torch.Tensor] = {}
        self._meta: dict[str, tuple[dict[str, slice], int, np.ndarray]] = {}
        self._raw: dict[str, torch.Tensor] = {}
        self._declared = False
        self.cache = ProbeCache([], self.device)

    @staticmethod
    def _check_bins(bins) -> int:
        if isinstance(bins, int) and not isinstance(bins, bool):
            if bins < 1:
                raise ValueError(f"bins must be a positive integer or a sequence of edges, got {bins!r}")
            return bins
        edges = torch.as_tensor(bins, dtype=torch.float64)
        if edges.ndim != 1 or edges.numel() < 2 or not torch.all(torch.diff(edges) > 0):
            raise ValueError("bins given as edges must be a 1-D increasing sequence of at least 2 values")
        return edges.numel() - 1

    # -------------------------------------------------------------- attaching
    def attach(self, model: nn.Module) -> list[HookInfo]:
        """Resolve the hook points of ``model`` (validates ``layers``); hooks are not registered yet."""
        if self._model_id != id(model):
            points = select_hook_points(model, self.layers)
            if self._points and [p.name for p in points] != [p.name for p in self._points]:
                raise ValueError("this probe already observes another model with different hook points; "
                                 "use one probe per model")
            self._points, self._model_id = points, id(model)
            if not self.cache.names:
                self.cache = ProbeCache([p.name for p in points], self.device)
        return self._points

    @property
    def names(self) -> list[str]:
        """Names of the observed hook points (after :meth:`attach`)."""
        return [p.name for p in self._points]

    @contextmanager
    def hooks(self, model: nn.Module) -> Iterator["Probe"]:
        """Record every forward of ``model`` inside the block; hooks are removed on exit, even on errors.

        Call :meth:`commit` afterwards to store what the last forward saw.
        """
        handles = []
        try:
            for point in self.attach(model):
                handles.append(point.module.register_forward_hook(self._make_hook(point.name)))
            yield self
        finally:
            for handle in handles:
                handle.remove()

    def _make_hook(self, name: str):
        def hook(module, args, output) -> None:
            self._observe(name, output)
        return hook

    def _observe(self, name: str, output) -> None:
        if is_paused() or not isinstance(output, torch.Tensor) or inside_transform(output):
            return
        x = output.detach()
        if x.is_complex():
            x = _COMPLEX_PARTS[self.complex_part](x)
        flat = stats.flatten_neurons(x)
        edges, bounds = self._edges_for(name, flat)
        exact = None if self._uniform else torch.as_tensor(edges, device=flat.device)
        grid = self.grid_shape or (flat.shape[0],)
        summary = summarize(flat, bounds, self._n_bins, self.psd, grid, exact)
        self._current[name] = summary.vector
        self._meta[name] = (summary.slices, flat.numel(), edges)
        if self.keep:
            self._raw[name] = x.to(self.device, copy=True)

    # ------------------------------------------------------------- statistics
    def _edges_for(self, name: str, flat: torch.Tensor) -> tuple[np.ndarray, tuple[float, float]]:
        """Host bin edges and bounds; fixed edges cost one device sync, adaptive ones one per step."""
        if not self._uniform:
            edges = np.asarray(self.bins, dtype=np.float64)
            return edges, (float(edges[0]), float(edges[-1]))
        mode = _AUTO_RANGE if self.bin_range == "auto" else self.bin_range
        if isinstance(mode, Mapping):
            mode = next((v for k, v in mode.items() if fnmatchcase(name, k)), "first")
        if mode == "adaptive":
            edges = stats.range_edges(flat, self.bins, self.margin).cpu().numpy()
            return edges, (float(edges[0]), float(edges[-1]))
        if name not in self._edges:
            if mode == "first":
                edges = stats.range_edges(flat, self.bins, self.margin).cpu().numpy()
            elif isinstance(mode, (tuple, list)) and len(mode) == 2:
                edges = stats.uniform_edges(float(mode[0]), float(mode[1]), self.bins).numpy()
            else:
                raise ValueError(f"unknown bin_range {mode!r}; use 'first', 'adaptive', (lo, hi) "
                                 "or a dict pattern -> one of these")
            self._edges[name] = (edges, (float(edges[0]), float(edges[-1])))
        return self._edges[name]

    # ------------------------------------------------------------------ steps
    def due(self, epoch: int) -> bool:
        """True when ``epoch`` is a probe epoch (:func:`~spectral_probe.cadence.is_due`)."""
        return is_due(epoch, self.every)

    def step(self, epoch: int, model: nn.Module, inputs: torch.Tensor, force: bool = False):
        """Probe ``model`` on ``inputs`` if ``epoch`` is a probe epoch (or ``force``).

        Returns
        -------
        dict or None
            ``{hook name: {stat: tensor}}`` of this step, or None off probe epochs.
        """
        if not (force or self.due(epoch)):
            return None
        self._set_grid(inputs)
        with torch.no_grad(), _mode(model, self.mode), self.hooks(model):
            model(inputs)
        return self.commit(epoch)

    def capture(self, model: nn.Module, inputs: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Run ``model(inputs)`` and return ``(output, {hook name: activation copy})`` (no statistics kept)."""
        seen: dict[str, torch.Tensor] = {}
        handles = []

        def make(name):
            def hook(module, args, output):
                if isinstance(output, torch.Tensor) and not is_paused() and not inside_transform(output):
                    seen[name] = output.detach().to(self.device, copy=True)
            return hook
        try:
            for point in self.attach(model):
                handles.append(point.module.register_forward_hook(make(point.name)))
            with torch.no_grad(), _mode(model, self.mode):
                out = model(inputs)
        finally:
            for handle in handles:
                handle.remove()
        return out, seen

    def commit(self, step: int):
        """Store what the hooks recorded since the last commit as probe step ``step``."""
        if not self._current:
            return None
        current, self._current = self._current, {}
        names = [n for n in self.names if n in current]
        try:
            packed = torch.stack([current[n] for n in names]).cpu().numpy()    # one transfer per step
        except RuntimeError:                                  # hook points with different sample counts
            packed = [current[n].cpu().numpy() for n in names]
        per_point = {n: unpack(row, *self._meta[n]) for n, row in zip(names, packed)}
        host = stack_points(self.names, per_point)
        self.cache.append(int(step), host, self._raw)
        self._raw = {}
        if self.writer is not None:
            self._write(int(step), host)
        return per_point

    def _set_grid(self, inputs: torch.Tensor) -> None:
        if self.grid_shape is None:
            self.grid_shape = _infer_grid(inputs)
        elif math.prod(self.grid_shape) != inputs.shape[0]:
            raise ValueError(f"grid_shape {self.grid_shape} does not match {inputs.shape[0]} input samples")

    # ------------------------------------------------------------------ store
    def declare(self, writer=None) -> None:
        """Declare the activations group in ``writer`` (needs the hook points and the grid)."""
        writer = writer or self.writer
        if writer is None or self._declared:
            return
        if not self._points or self.grid_shape is None:
            raise ValueError("declare() needs the model and the input grid; call it from on_fit_start or "
                             "after attach(model) with grid_shape= set")
        layout = activation_layout(self._points, self._n_bins, freq_axis(self.grid_shape) if self.psd else None)
        writer.declare(self.group, variables=layout.variables, coords=layout.coords, attrs=self._attrs())
        self.writer, self._declared = writer, True

    def _attrs(self) -> dict:
        """The activations group's attributes."""
        return {"psd_method": self.psd or "none", "psd_kind": "radial" if len(self.grid_shape) == 2 else "1d",
                "freq_units": "cycles per sample", "grid_shape": list(self.grid_shape),
                "bin_range": str(self.bin_range), "complex_part": self.complex_part, "every": self.every,
                "mode": self.mode,
                "hook_points": {p.name: [p.layer, p.kind] for p in self._points},
                **{s.name: s.description for s in active_statistics(bool(self.psd)) if s.description}}

    def _write(self, step: int, host: dict[str, torch.Tensor]) -> None:
        if not self._declared:
            self.declare()
        layout = activation_layout(self._points, self._n_bins, None)
        self.writer.append(self.group, step, **{stat: layout.arrange(self.names, rows.numpy())
                                                for stat, rows in host.items()})

    def to_dataset(self):
        """The in-memory results as an ``xarray.Dataset`` in the store's layout."""
        freqs = freq_axis(self.grid_shape) if (self.psd and self.grid_shape) else None
        return self.cache.to_dataset(self._points, self._n_bins, freqs)

    def rows_since(self, step: int):
        """The probe steps ``>= step`` in the store's layout (:meth:`to_dataset`), None when there are none."""
        steps = self.cache.steps
        if not steps or steps[-1] < int(step):
            return None
        ds = self.to_dataset()
        ds = ds.isel(step=np.flatnonzero(ds["step"].values >= int(step)))
        ds.attrs.update(self._attrs() if self.grid_shape is not None else {})
        return ds

    # -------------------------------------------------------------- callbacks
    def prepare(self, state: TrainState) -> None:
        self.attach(state.model)
        if self.grid_shape is None:
            self.grid_shape = tuple(state.target.grid_shape)

    def restore(self, ds) -> None:
        """Continue a run file's activations group: fixed bin edges stay those of its first probe step."""
        if not self._uniform or not ds.sizes.get("step", 0) or "hist_edges" not in ds:
            return
        layout = activation_layout(self._points, self._n_bins, None)
        for name in self.names:
            i, j = layout.index[name]
            edges = np.asarray(ds["hist_edges"].sel(layer=layout.layers[i], kind=layout.kinds[j]).values[0],
                               dtype=np.float64)
            if np.all(np.isfinite(edges)):
                self._edges[name] = (edges, (float(edges[0]), float(edges[-1])))

    def on_epoch_start(self, state: TrainState) -> None:
        self.step(completed_epochs(state), state.model, state.coords)


def _infer_grid(inputs: torch.Tensor) -> tuple[int, ...]:
    """``(N,)`` for 1-D inputs; ``(H, W)`` from the distinct values of 2-D meshgrid coordinates."""
    n = inputs.shape[0]
    if inputs.ndim < 2 or inputs.shape[1] != 2:
        return (n,)
    h, w = (int(torch.unique(inputs[:, i]).numel()) for i in range(2))
    if h * w != n:
        raise ValueError(f"cannot infer the grid of {n} 2-D inputs ({h} x {w} distinct values); "
                         "pass Probe(grid_shape=(H, W))")
    return (h, w)
