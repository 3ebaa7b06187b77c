"""The paper's Tables 1 and 6 as data, for ``spectral-probe reproduce`` and the figures' notes.

Source: Chandravamsi et al., "Spectral Bottleneck in Deep Neural Networks: Noise is All You
Need", arXiv 2509.09719 (:data:`CITATION`).  The tables are kept as the paper prints them
(:data:`TABLE1_TEXT`, :data:`TABLE6_TEXT`) and parsed on import, so the numbers can be checked
against the paper line by line.

* Table 1 (Sec 5.1, "Audio fitting"): mean +- std of the peak PSNR (dB) over five trials,
  30,000 epochs, 150,000 samples per clip, seven architectures with about 150,000 parameters
  (:data:`TABLE1_PSNR`, :data:`TABLE1_ARCHITECTURES`).
* Table 6 (Supplementary Sec C): spectral centroid psi (Eqn 10) and the noise scales s0, s1
  (Eqn 11) of every audio and image target; audio uses the first 150,000 samples normalised to
  [-1, 1] (:data:`TABLE6`).  The paper prints s0 truncated to an integer (tetris: Eqn 11 gives
  3436.7 for psi = 0.5732 with a = 7, printed 3436) and s1 to two decimals.

File names: the paper calls gt_bach.wav "bach.wav" (Table 6's psi 0.0737 is gt_bach.wav's) and
noise1.png "noise.png" (Sec 5.2 names it noise1.png); :data:`FILE_ALIASES` lists the names under
which :func:`find_table6_files` looks for each entry (the authors' repository ships castle_512.jpg
and rock_512.jpg).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CITATION", "TABLE1_TEXT", "TABLE6_TEXT", "Table1Architecture", "TABLE1_ARCHITECTURES",
           "TABLE1_MODELS", "TABLE1_PSNR", "TABLE1_FILES", "Table6Row", "TABLE6", "FILE_ALIASES",
           "TABLE6_TOLERANCE", "table6_row", "find_table6_files", "table1_psnr"]

CITATION = ("H. Chandravamsi, D. V. Shenoy, I. Zinn, S. Pisnoy, S. H. Frankel, \"Spectral Bottleneck in "
            "Deep Neural Networks: Noise is All You Need\", arXiv:2509.09719")

#: Table 1 of arXiv 2509.09719 as printed (columns: SIREN, FINER, WIRE, ReLU-PE, SIREN-RFF, FINER++, SIREN^2)
TABLE1_TEXT = """\
Hidden layers	4x222	4x222	4x157	4x193	4x193	4x222	4x222
# Fourier features	0	0	0	193	193	0	0
# parameters	149185	149185	149474	150155	150155	149185	149185
tetris.wav	13.4±0.0	13.6±0.0	13.6±0.0	13.6±0.0	38.1±0.3	52.2±0.7	62.7±0.4
tap.wav	20.4±0.0	21.1±0.0	21.1±0.0	21.1±0.0	44.8±0.4	51.8±0.3	53.5±0.9
whoosh.wav	33.8±0.9	53.4±1.0	20.2±0.0	20.2±0.0	41.8±0.6	55.4±0.6	64.9±1.7
radiation.wav	32.3±0.0	34.2±0.1	34.2±0.0	34.2±0.2	52.4±0.1	50.9±1.8	63.0±1.0
arch.wav	29.7±1.1	58.5±0.8	17.2±0.1	17.2±0.1	44.1±0.9	65.2±0.2	95.2±2.9
relay.wav	28.5±1.4	34.7±0.5	20.7±0.0	20.7±0.0	40.5±0.6	54.1±0.4	60.4±2.9
voltage.wav	34.0±0.8	53.4±0.6	20.0±0.0	19.9±0.0	43.7±0.3	56.5±0.1	64.5±0.5
foley.wav	36.6±7.2	56.8±0.1	29.7±0.1	22.5±0.0	44.9±0.3	56.4±0.2	58.3±0.2
shattered.wav	39.1±1.9	58.6±0.4	25.5±0.0	25.4±0.0	46.4±0.6	57.9±0.3	64.7±0.7
bach.wav	59.4±0.3	64.5±0.2	26.1±0.5	18.9±0.0	41.8±0.2	62.2±0.3	60.5±0.2
birds.wav	55.7±0.2	59.6±0.1	24.6±0.0	24.4±0.0	45.7±0.5	58.7±0.1	61.2±0.2
Average	34.8±1.3	46.2±0.3	23.0±0.1	21.7±0.0	44.0±0.4	56.5±0.5	64.5±1.1
"""

#: Table 6 of arXiv 2509.09719 as printed (file, task, psi, s0, s1)
TABLE6_TEXT = """\
tetris.wav	Audio fitting	0.5732	3436	1.72
tap.wav	Audio fitting	0.7264	3478	2.18
whoosh.wav	Audio fitting	0.5266	3412	1.58
radiation.wav	Audio fitting	0.8368	3489	2.51
arch.wav	Audio fitting	0.4996	3394	1.5
relay.wav	Audio fitting	0.6310	3457	1.89
voltage.wav	Audio fitting	0.4540	3354	1.36
foley.wav	Audio fitting	0.1772	2487	0.53
shattered.wav	Audio fitting	0.3942	3278	1.18
bach.wav	Audio fitting	0.0737	1410	0.22
birds.wav	Audio fitting	0.1789	2499	0.54
noise.png	Image fitting	0.5934	47	0.24
camera.png	Image fitting	0.3121	39	0.12
castle.jpg	Image fitting	0.1097	21	0.04
rock.jpg	Image fitting	0.4055	43	0.16
Dragon	3D shape fitting	0.0642	25	1e-3
"""

#: Table 1 columns in our model names
TABLE1_MODELS = ("siren", "finer", "wire", "relu_pe", "siren_rff", "finerpp", "siren2")
_LABELS = ("SIREN", "FINER", "WIRE", "ReLU-PE", "SIREN-RFF", "FINER++", "SIREN^2")

#: names under which a paper file may be stored (the paper's name first)
FILE_ALIASES: dict[str, tuple[str, ...]] = {
    "bach.wav": ("bach.wav", "gt_bach.wav"),
    "noise.png": ("noise.png", "noise1.png"),
    "castle.jpg": ("castle.jpg", "castle_512.jpg"),
    "rock.jpg": ("rock.jpg", "rock_512.jpg", "rock.png"),
}

#: agreement needed to call a Table 6 row reproduced: psi to the 4 printed decimals, s0 within the
#: integer truncation (|ours - printed| < 1), s1 to the 2 printed decimals
TABLE6_TOLERANCE = {"psi": 5e-5, "s0": 1.0, "s1": 5e-3 + 1e-9}


@dataclass(frozen=True)
class Table1Architecture:
    """One column of Table 1: the paper's architecture and its parameter count."""

    model: str
    label: str
    depth: int
    width: int
    fourier_features: int
    parameters: int


@dataclass(frozen=True)
class Table6Row:
    """One row of Table 6."""

    file: str
    task: str
    psi: float
    s0: float
    s1: float

    @property
    def kind(self) -> str:
        """``"audio"``, ``"image"`` or ``"shape"`` (3-D; no file to load)."""
        return {"Audio fitting": "audio", "Image fitting": "image"}.get(self.task, "shape")

    @property
    def names(self) -> tuple[str, ...]:
        """File names to look for (:data:`FILE_ALIASES`)."""
        return FILE_ALIASES.get(self.file, (self.file,))


def _cells(text: str) -> list[list[str]]:
    return [line.split("\t") for line in text.strip().splitlines()]


def _pm(cell: str) -> tuple[float, float]:
    mean, std = cell.split("±")
    return float(mean), float(std)


def _parse_table1():
    rows = _cells(TABLE1_TEXT)
    head = {r[0]: r[1:] for r in rows[:3]}
    archs = {}
    for j, model in enumerate(TABLE1_MODELS):
        depth, width = (int(v) for v in head["Hidden layers"][j].split("x"))
        archs[model] = Table1Architecture(model, _LABELS[j], depth, width, int(head["# Fourier features"][j]),
                                          int(head["# parameters"][j]))
    psnr = {r[0]: {m: _pm(c) for m, c in zip(TABLE1_MODELS, r[1:])} for r in rows[3:]}
    return archs, psnr


#: Table 1's architectures by our model name
TABLE1_ARCHITECTURES: dict[str, Table1Architecture]
#: Table 1's PSNR: paper file name (and "Average") -> model -> (mean, std) in dB
TABLE1_PSNR: dict[str, dict[str, tuple[float, float]]]
TABLE1_ARCHITECTURES, TABLE1_PSNR = _parse_table1()
#: the eleven clips of Table 1, in the paper's order
TABLE1_FILES = tuple(k for k in TABLE1_PSNR if k != "Average")
#: Table 6's rows in the paper's order
TABLE6: tuple[Table6Row, ...] = tuple(Table6Row(r[0], r[1], float(r[2]), float(r[3]), float(r[4]))
                                      for r in _cells(TABLE6_TEXT))


def _paper_name(name: str) -> str:
    base = Path(name).name
    for paper, aliases in FILE_ALIASES.items():
        if base in aliases:
            return paper
    return base


def table6_row(name: str) -> Table6Row | None:
    """Table 6's row for a file name (paper name or alias, any folder); None when not in the table."""
    paper = _paper_name(name)
    return next((r for r in TABLE6 if r.file == paper), None)


def table1_psnr(name: str) -> dict[str, tuple[float, float]] | None:
    """Table 1's PSNR row (model -> (mean, std)) for a clip name or alias; None when not in the table."""
    return TABLE1_PSNR.get(_paper_name(name))


def find_table6_files(folders: list[str | os.PathLike]) -> tuple[list[tuple[Table6Row, Path]], list[Table6Row]]:
    """Look for every audio/image file of Table 6 in ``folders`` (and their ``audio/``, ``images/``).

    Returns
    -------
    (found, missing)
        ``found``: ``(row, path)`` in the table's order; ``missing``: audio/image rows not found
        (the 3-D "Dragon" row is never looked for).
    """
    found, missing = [], []
    for row in TABLE6:
        if row.kind == "shape":
            continue
        path = next((Path(f) / sub / name for f in folders for sub in ("", "audio", "images") for name in row.names
                     if (Path(f) / sub / name).is_file()), None)
        if path is None:
            missing.append(row)
        else:
            found.append((row, path))
    return found, missing
