"""Auto-checks for the course exercises (``exercises/NN_topic.ipynb``).

    from tfa_tutorial.exercises import check
    area = ...                      # the student's answer
    check.ex00_patch_area(area)     # prints ✓, or ✗ with a hint; returns True / False
    check.summary()                 # which exercises of this session are solved

Every checker compares the student's answer with an **independent reference computed by the
package** (``shortcut_report``, ``per_sample_grads``, ``grad_cos``, ``relevance_mass_accuracy``,
``inject_patch``, ...) on the same inputs, and prints ✓ or a hint. A hint names the kind of
mistake (wrong shape, swapped order, upper bound instead of a measurement, absolute value
instead of the positive part, ...) and **never prints the reference value**. An answer that
is still ``...`` (or contains ``...``) counts as not answered yet.

Checkers take the inputs they need explicitly (a model, tensors, a data set), so the tests can
drive them with tiny models, and they return a :class:`CheckResult` (truthy when solved). Exercise names are
``exNN_topic``: ``NN`` is the notebook the exercise belongs to (see :meth:`Checks.names`);
a new notebook's exercises go in a new ``nbNN_topic.py`` module (a ``ChecksNN`` class with
``exNN_...`` methods), added to :class:`Checks` below.

Modules:

- ``base``                               answer parsing, verdicts and bookkeeping shared by every checker
- ``nb00_start_here``                    checkers for notebook 00 (start here)
- ``nb01_patch_injection``               checkers for notebook 01 (patch injection)
- ``nb02_shortcut_training``             checkers for notebook 02 (shortcut training)
- ``nb03_per_sample_gradients``          checkers for notebook 03 (per-sample gradients)
- ``nb04_training_feature_attribution``  checkers for notebook 04 (training feature attribution)
- ``nb05_interactive_explorer``          checkers for notebook 05 (interactive explorer)
- ``nb06_diagnosis_to_fix``              checkers for notebook 06 (from diagnosis to fix)
- ``nb07_neural_features``               checkers for notebook 07 (neural features)
"""
from __future__ import annotations

from .base import Checker, CheckResult, Tally, is_answered
from .nb00_start_here import Checks00
from .nb01_patch_injection import EX01_PATCH, Checks01
from .nb02_shortcut_training import EX02_SWEEP, Checks02
from .nb03_per_sample_gradients import Checks03
from .nb04_training_feature_attribution import Checks04
from .nb05_interactive_explorer import Checks05
from .nb06_diagnosis_to_fix import Checks06
from .nb07_neural_features import Checks07

__all__ = ["CheckResult", "Tally", "Checker", "Checks", "check", "EX01_PATCH", "EX02_SWEEP", "is_answered"]


class Checks(Checks00, Checks01, Checks02, Checks03, Checks04, Checks05, Checks06, Checks07):
    """Every exercise checker of the course, one ``exNN_topic`` method per exercise (``NN`` = its
    notebook); use the module-level instance :data:`check`.

    Each method prints one line starting with ✓ or ✗ and returns a :class:`CheckResult` (truthy
    when solved); results are kept in :attr:`results` (latest attempt per exercise) for
    :meth:`summary`.
    """


#: The checker instance the exercise notebooks use: ``check.ex01_custom_patch(answer, source)``.
check = Checks()
