"""The spectral bottleneck: live watch, indicators, detector and pre-training diagnosis.

``indicators.py`` computes the per-check evidence, ``detector.py`` holds the
state machine, ``watch.py`` the :class:`BottleneckWatch` callback and
``diagnose.py`` the forecast made before training.
"""

from .detector import AT_RISK, BOTTLENECK, FITTING, STATE_CODES, UNDECIDED, BottleneckDetector, Thresholds, \
    Verdict, detect
from .diagnose import Diagnosis, diagnose_target, ntk_coverage
from .watch import INDICATORS, BottleneckWarning, BottleneckWatch, diagnose_run, watch_line, winner_suggestion

__all__ = ["FITTING", "AT_RISK", "BOTTLENECK", "UNDECIDED", "STATE_CODES", "Thresholds", "Verdict",
           "BottleneckWarning", "BottleneckDetector", "detect", "BottleneckWatch", "winner_suggestion",
           "diagnose_run", "watch_line", "INDICATORS", "Diagnosis", "diagnose_target", "ntk_coverage"]
