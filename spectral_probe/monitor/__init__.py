"""Live monitoring where researchers already look: TensorBoard events and the ``watch`` figure.

* :class:`TensorBoardLogger` (``logger.py``): a :func:`~spectral_probe.training.fit` callback, also
  usable in your own loop (``log_epoch``, ``log_probe``), writing TensorBoard events live;
* :func:`export_tensorboard` (``export.py``): the same events from a run file (finished, crashed
  or live; ``follow=True`` keeps up with a live one);
* ``tensorboard.py``: the tags, the event writer shared by both, the ``tensorboard`` extra check;
* ``plot.py``: the ``spectral-probe watch --plot`` figure (:func:`run_figure`);
* ``spectra.py``: the target's reference spectrum, cumulative spectra and distances both show.

TensorBoard output needs the optional ``tensorboard`` package (``pip install -e ".[tensorboard]"``).
"""

from .export import ExportReport, RunExporter, export_tensorboard
from .logger import TensorBoardLogger
from .plot import run_figure, run_verdict, save_run_figure
from .tensorboard import INSTALL_HINT, LAYOUT, EventSink, check_logdir, event_files, require_tensorboard

__all__ = ["TensorBoardLogger", "export_tensorboard", "RunExporter", "ExportReport", "EventSink", "LAYOUT",
           "INSTALL_HINT", "require_tensorboard", "check_logdir", "event_files", "run_figure", "run_verdict",
           "save_run_figure"]
