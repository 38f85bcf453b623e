"""NaN/Inf guards for any Keras model: a guarded optimizer step, sanitising layers, checks, a callback."""

from qgan.guard.callbacks import GuardMonitor
from qgan.guard.clipping import clip_gradients
from qgan.guard.gradient_guard import POLICIES, RECOVERIES, GradientGuard, GuardStop
from qgan.guard.model import GuardedModel
from qgan.guard.reporting import NonFiniteError
from qgan.guard.sanitize import Problem, Sanitize, check_finite

__all__ = [
    "POLICIES",
    "RECOVERIES",
    "GradientGuard",
    "GuardMonitor",
    "GuardedModel",
    "GuardStop",
    "NonFiniteError",
    "Problem",
    "Sanitize",
    "check_finite",
    "clip_gradients",
]
