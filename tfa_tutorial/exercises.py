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
a new notebook's exercises only need new ``exNN_...`` methods here.
"""
from __future__ import annotations

import math
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

from . import neural_features as NF
from .data import ImageDataset, load_fashion_mnist, subsample
from .fixing import mask_overlap
from .gradients import per_sample_grads
from .metrics import one_step_test, relevance_mass_accuracy
from .models import SmallCNN
from .patches import PRESETS, PatchedDataset, PatchSpec, apply_patch, inject_patch, patch_mask
from .reduction import reduce_map
from .scores import grad_cos, grad_cos_and_dot
from .training import predict, prevalence_sweep, shortcut_report

__all__ = ["CheckResult", "Tally", "Checks", "check", "EX01_PATCH", "EX02_SWEEP", "is_answered"]

#: The patch that exercise ex01_custom_patch asks for: a 5×5 white square in the bottom-right
#: corner, on 30% of the Sneakers (class 7).
EX01_PATCH = {"size": (5, 5), "value": 1.0, "location": (23, 23), "target_class": 7, "prevalence": 0.3}
#: The training run of exercise ex02_prevalence: one model at a prevalence the notebook's grid skips.
EX02_SWEEP = {"n_train": 3000, "prevalence": 0.1, "seed": 0, "cache_name": "exercises"}


def is_answered(answer: Any) -> bool:
    """False when ``answer`` is ``...`` or a tuple/list/dict holding ``...`` (the task's placeholder)."""
    if answer is Ellipsis:
        return False
    if isinstance(answer, dict):
        return all(is_answered(v) for v in answer.values())
    if isinstance(answer, (tuple, list)):
        return all(is_answered(v) for v in answer)
    return True


def _as_float(x) -> float | None:
    try:
        return float(torch.as_tensor(x).detach().double().reshape(()))
    except (TypeError, ValueError, RuntimeError):
        return None


def _close(a: float, b: float, rtol: float = 1e-4, atol: float = 1e-6) -> bool:
    return a is not None and math.isfinite(a) and abs(a - b) <= atol + rtol * abs(b)


def _as_int(x) -> int | None:
    v = _as_float(x)
    return int(round(v)) if v is not None and abs(v - round(v)) < 1e-9 else None


def _as_bool(x) -> bool | None:
    """A Python, NumPy or one-element torch bool as ``bool``; ``None`` for anything else."""
    if isinstance(x, bool):
        return x
    if type(x).__name__ == "bool_":  # numpy.bool_
        return bool(x)
    if isinstance(x, torch.Tensor) and x.dtype == torch.bool and x.numel() == 1:
        return bool(x)
    return None


class CheckResult:
    """A checker's verdict: truthy when solved. It displays nothing in a notebook (the checker has
    already printed ✓ or ✗), so a task cell ends with the printed line, not an ``Out[ ]: False``."""

    __slots__ = ("ok",)

    def __init__(self, ok: bool) -> None:
        self.ok = bool(ok)

    def __bool__(self) -> bool:
        return self.ok

    def __eq__(self, other) -> bool:
        return bool(self) == bool(other) if isinstance(other, (bool, CheckResult)) else NotImplemented

    def __hash__(self) -> int:
        return hash(self.ok)

    def __repr__(self) -> str:
        return f"CheckResult(ok={self.ok})"

    def _ipython_display_(self) -> None:
        pass


class Tally(NamedTuple):
    """``(solved, total)`` from :meth:`Checks.summary`; displays nothing (the summary is printed)."""

    solved: int
    total: int

    def _ipython_display_(self) -> None:
        pass


class Checks:
    """The registry of checkers; use the module-level instance :data:`check`.

    Each ``exNN_topic`` method prints one line starting with ✓ or ✗ and returns a
    :class:`CheckResult` (truthy when solved); results
    are kept in :attr:`results` (latest attempt per exercise) for :meth:`summary`.
    """

    def __init__(self) -> None:
        self.results: dict[str, bool] = {}

    # ------------------------------------------------------------------ bookkeeping

    @classmethod
    def names(cls, notebook: str | None = None) -> list[str]:
        """Exercise names, in course order; only those of notebook ``"NN"`` when given."""
        names = [n for n in vars(cls) if n.startswith("ex") and n[2:4].isdigit() and callable(getattr(cls, n))]
        names.sort(key=lambda n: n[2:4])  # by notebook; definition order within one
        return [n for n in names if notebook is None or n.startswith(f"ex{notebook}_")]

    def _done(self, name: str, ok: bool, message: str) -> CheckResult:
        self.results[name] = ok
        print(f"{'✓' if ok else '✗'} {name}: {message}")
        return CheckResult(ok)

    def _unanswered(self, name: str, answer) -> CheckResult | None:
        if is_answered(answer):
            return None
        return self._done(name, False, "not answered yet: replace the ... in the cell above with your code")

    def summary(self) -> Tally:
        """Print, for every notebook touched in this session, which exercises are solved.
        Returns ``(solved, total)``."""
        notebooks = sorted({n[2:4] for n in self.results})
        names = [n for nb in notebooks for n in self.names(nb)]
        solved = [n for n in names if self.results.get(n)]
        print(f"{len(solved)}/{len(names)} exercises solved")
        for n in names:
            state = "✓ solved" if self.results.get(n) else ("✗ not yet" if n in self.results else "– not attempted")
            print(f"  {n}: {state}")
        return Tally(len(solved), len(names))

    # ------------------------------------------------------------------ 00 start here

    def ex00_patch_area(self, area, spec: PatchSpec | None = None, image_shape=(1, 28, 28)) -> CheckResult:
        """The fraction of an image's pixels that the patch covers: the chance level of the
        relevance-mass metric used in notebook 04."""
        name = "ex00_patch_area"
        if (unanswered := self._unanswered(name, area)) is not None:
            return unanswered
        spec = spec or PRESETS["tutorial"]
        ref = float(patch_mask(spec, image_shape).float().mean())
        a = _as_float(area)
        if a is None:
            return self._done(name, False, "the answer must be one number (a fraction)")
        if _close(a, ref):
            return self._done(name, True, "correct: a map that spreads its mass at random puts this share on the patch")
        if a > 1:
            return self._done(name, False, "a fraction lies in [0, 1]: divide the patch's pixel count by the image's")
        if _close(a, spec.height * spec.width / (image_shape[1] + image_shape[2])):
            return self._done(name, False, "the image has H × W pixels, not H + W")
        return self._done(name, False, "count the patch's pixels (height × width) and divide by the image's H × W pixels")

    def ex00_n_patched(self, n_patched, dataset: ImageDataset, spec: PatchSpec | None = None) -> CheckResult:
        """How many training images carry the patch, predicted from the preset's prevalence."""
        name = "ex00_n_patched"
        if (unanswered := self._unanswered(name, n_patched)) is not None:
            return unanswered
        spec = spec or PRESETS["tutorial"]
        ref = int(inject_patch(dataset, spec).patched.sum())
        n = _as_int(n_patched)
        if n is None:
            return self._done(name, False, "the answer must be a whole number of images")
        if n == ref:
            return self._done(name, True, "correct: inject_patch patched exactly that many images")
        if n == round(spec.prevalence * len(dataset)):
            return self._done(name, False, "the prevalence is a share of the target class's images, not of the whole training set")
        if n == int((dataset.labels == spec.target_class).sum()):
            return self._done(name, False, "not every image of the target class gets the patch: only a share (the prevalence)")
        return self._done(name, False, "count the training images of spec.target_class and multiply by spec.prevalence")

    # ------------------------------------------------------------------ 01 patch injection

    def ex01_custom_patch(self, patched, source: ImageDataset) -> CheckResult:
        """A 5×5 white square in the bottom-right corner on 30% of the Sneakers (:data:`EX01_PATCH`),
        checked pixel by pixel with plain tensor operations."""
        name = "ex01_custom_patch"
        if (unanswered := self._unanswered(name, patched)) is not None:
            return unanswered
        if not isinstance(patched, PatchedDataset):
            return self._done(name, False, f"expected the PatchedDataset that inject_patch returns, got {type(patched).__name__}")
        if len(patched) != len(source) or not torch.equal(patched.labels, source.labels):
            return self._done(name, False, "inject the patch into the given source data set (same images, same order)")
        want = EX01_PATCH
        s = patched.spec
        if tuple(s.size) != want["size"]:
            return self._done(name, False, "check the patch size: the task asks for a small square (see the task text)")
        if s.location != want["location"]:
            r, c = s.location
            h, w = s.size
            if r + h != 28 or c + w != 28:
                return self._done(name, False, "the square must touch the bottom-right corner: location + size must equal 28 in both directions")
            return self._done(name, False, "check the location (row, col) of the top-left pixel")
        if s.target_class != want["target_class"]:
            return self._done(name, False, f"the target class must be Sneaker: look up its index in source.classes ({s.target_class} is {source.classes[s.target_class]!r})")
        if not _close(float(s.prevalence), want["prevalence"]):
            return self._done(name, False, "check the prevalence: the share of Sneakers that get the patch")
        # independent check of the result, pixel by pixel
        n_target = int((source.labels == want["target_class"]).sum())
        flags = patched.patched
        if int(flags.sum()) != round(want["prevalence"] * n_target) or not bool((source.labels[flags] == want["target_class"]).all()):
            return self._done(name, False, "the patched images must be a share of the Sneakers only")
        rows, cols = slice(23, 28), slice(23, 28)
        box = torch.zeros(28, 28, dtype=torch.bool)
        box[rows, cols] = True
        if not torch.equal(patched.masks, flags[:, None, None] & box[None]):
            return self._done(name, False, "the masks do not mark exactly the patch pixels of the patched images")
        if not bool((patched.images[flags][:, :, rows, cols] == 1.0).all()):
            return self._done(name, False, "the patch pixels must be white (value 1.0)")
        outside = ~(flags[:, None, None, None] & box[None, None])
        if not torch.equal(patched.images[outside], source.images[outside]):
            return self._done(name, False, "pixels outside the patch (and unpatched images) must stay as in the source")
        return self._done(name, True, f"correct: {int(flags.sum())} Sneakers carry the square, everything else is untouched")

    def ex01_changed_pixels(self, n_changed, source: ImageDataset, patched: PatchedDataset) -> CheckResult:
        """How many pixel values the patch actually changed (fewer than n_patched × area when some
        patch pixels were white already)."""
        name = "ex01_changed_pixels"
        if (unanswered := self._unanswered(name, n_changed)) is not None:
            return unanswered
        ref = int((patched.images != source.images).sum())
        n = _as_int(n_changed)
        if n is None:
            return self._done(name, False, "the answer must be a whole number of pixel values")
        if n == ref:
            bound = int(patched.patched.sum()) * int(patched.masks[patched.patched][0].sum()) if patched.patched.any() else 0
            why = (" — fewer than n_patched × patch area: some patch pixels were already white"
                   if ref < bound else " — every patch pixel changed")
            return self._done(name, True, "correct" + why)
        if patched.patched.any() and n == int(patched.patched.sum()) * int(patched.masks[patched.patched][0].sum()):
            return self._done(name, False, "that is the prediction n_patched × patch area, an upper bound; now measure: "
                                           "compare patched.images with source.images element-wise and count the differences")
        if n == int(patched.patched.sum()):
            return self._done(name, False, "count changed pixel values, not changed images")
        return self._done(name, False, "count the elements where patched.images differs from source.images (the whole data set)")

    # ------------------------------------------------------------------ 02 shortcut training

    def ex02_flip_rate(self, flip_rate, model, test: ImageDataset, spec: PatchSpec) -> CheckResult:
        """The flip rate measured by hand, against :func:`shortcut_report`."""
        name = "ex02_flip_rate"
        if (unanswered := self._unanswered(name, flip_rate)) is not None:
            return unanswered
        report = shortcut_report(model, test, spec)
        a = _as_float(flip_rate)
        if a is None:
            return self._done(name, False, "the answer must be one number (a share of test images)")
        if _close(a, report["flip_rate"]):
            return self._done(name, True, "correct: the same number as shortcut_report's flip_rate")
        if _close(a, 1 - report["patched_acc_other"]):
            return self._done(name, False, "that is the error rate on patched images; a flip is a prediction of the *target* class")
        pred_all, _ = predict(model, apply_patch(test.images, spec))
        if _close(a, float((pred_all == spec.target_class).float().mean())):
            return self._done(name, False, "leave out the test images whose true class is the target class: they cannot flip to it")
        return self._done(name, False, "patch the test images of the other classes, predict, and take the share predicted as spec.target_class")

    def ex02_black_square(self, preds, model, clean_model, spec: PatchSpec, image_shape=(1, 28, 28)) -> CheckResult:
        """``preds = (shortcut model's class, clean model's class)`` for a black image carrying
        only the patch: the square alone, without a garment."""
        name = "ex02_black_square"
        if (unanswered := self._unanswered(name, preds)) is not None:
            return unanswered
        if not isinstance(preds, (tuple, list)) or len(preds) != 2:
            return self._done(name, False, "answer with a pair: (class predicted by the shortcut model, class predicted by the clean model)")
        dtype = next(model.parameters()).dtype
        x = apply_patch(torch.zeros(1, *image_shape), spec).to(dtype)
        ref = (int(predict(model, x)[0]), int(predict(clean_model, x)[0]))
        got = tuple(_as_int(p) for p in preds)
        if got == ref:
            verdict = ("the shortcut model sees the target class in the square alone"
                       if ref[0] == spec.target_class else "the square alone does not trigger the target class here")
            return self._done(name, True, f"correct: {verdict}")
        if got == ref[::-1]:
            return self._done(name, False, "the pair is in the wrong order: shortcut model first, clean model second")
        if None in got:
            return self._done(name, False, "give class indices (ints), not names or probabilities")
        wrong = "the shortcut model's" if got[0] != ref[0] else "the clean model's"
        return self._done(name, False, f"{wrong} class is not what that model predicts on an all-black image "
                                       "with the patch pasted on (torch.zeros, apply_patch, predict)")

    def ex02_prevalence(self, flip_rate, adopted, exp) -> CheckResult:
        """Train one model at prevalence 0.1 (:data:`EX02_SWEEP`) and measure its flip rate;
        ``adopted``: is the flip rate above the notebook's adoption threshold 0.5?"""
        name = "ex02_prevalence"
        if (unanswered := self._unanswered(name, (flip_rate, adopted))) is not None:
            return unanswered
        cfg = EX02_SWEEP
        train = subsample(load_fashion_mnist("train"), cfg["n_train"], seed=cfg["seed"])
        ref = prevalence_sweep(
            train, exp.test, exp.spec, [cfg["prevalence"]], model_fn=lambda: SmallCNN(train.image_shape[0], train.num_classes),
            epochs=exp.settings["epochs"], seed=cfg["seed"], cache_name=cfg["cache_name"], progress=False,
        )[0]["flip_rate"]
        a = _as_float(flip_rate)
        if a is None or not _close(a, ref, rtol=1e-3):
            return self._done(name, False, "the flip rate differs from a run with the task's settings: use prevalence_sweep with "
                                           "the subset, epochs, seed and cache_name given in the task, and read 'flip_rate'")
        if _as_bool(adopted) is None or _as_bool(adopted) != (ref > 0.5):
            return self._done(name, False, "the flip rate is right; 'adopted' must be the bool flip_rate > 0.5")
        return self._done(name, True, "correct: compare it with the notebook's sweep at 0.05 and 0.2")

    # ------------------------------------------------------------------ 03 per-sample gradients

    def ex03_per_sample_grad(self, g, model, x: torch.Tensor, y) -> CheckResult:
        """One example's gradient ∇_θ ℓ by hand (flattened in ``model.parameters()`` order), against
        :func:`per_sample_grads` (``torch.func``)."""
        name = "ex03_per_sample_grad"
        if (unanswered := self._unanswered(name, g)) is not None:
            return unanswered
        ref = per_sample_grads(model, x[None], torch.as_tensor(y).reshape(1))[0].detach()
        if not isinstance(g, torch.Tensor):
            return self._done(name, False, f"expected a tensor, got {type(g).__name__}")
        g = g.detach().to(ref.dtype).flatten()
        if g.numel() != ref.numel():
            return self._done(name, False, f"the gradient needs one entry per parameter ({ref.numel()}), got {g.numel()}: "
                                           "flatten every parameter's gradient and concatenate them")
        scale = ref.abs().max().clamp_min(1e-30)
        if ((g - ref).abs().max() / scale) < 1e-4:
            return self._done(name, True, "correct: equal to the vmap(grad(...)) result")
        if ((g + ref).abs().max() / scale) < 1e-4:
            return self._done(name, False, "the sign is flipped: differentiate the loss ℓ, not −ℓ or the log-probability")
        if torch.allclose(g.sort().values, ref.sort().values, rtol=1e-4, atol=1e-8 * float(scale)):
            return self._done(name, False, "right numbers, wrong order: concatenate in model.parameters() order")
        return self._done(name, False, "compute F.cross_entropy(model(x[None]), y[None]) with the model in eval mode, "
                                       "then torch.autograd.grad w.r.t. list(model.parameters())")

    def ex03_cos_vs_dot(self, shares, model, train: PatchedDataset, x_test: torch.Tensor, k: int = 20) -> CheckResult:
        """``{"cos": ..., "dot": ...}``: the share of patched images among the top-k training images
        of each score for one test image (predicted label)."""
        name = "ex03_cos_vs_dot"
        if (unanswered := self._unanswered(name, shares)) is not None:
            return unanswered
        if not isinstance(shares, dict) or set(shares) != {"cos", "dot"}:
            return self._done(name, False, 'answer with a dict {"cos": share, "dot": share}')
        cos, dot = grad_cos_and_dot(model, train.images, train.labels, x_test[None])
        ref = {n: float(train.patched[s[0].topk(k).indices].float().mean()) for n, s in (("cos", cos), ("dot", dot))}
        got = {n: _as_float(v) for n, v in shares.items()}
        if all(_close(got[n], ref[n]) for n in ref):
            better = "Grad-Cos" if ref["cos"] > ref["dot"] else "Grad-Dot"
            return self._done(name, True, f"correct: {better} puts more patched images on top — did you predict it?")
        if _close(got["cos"], ref["dot"]) and _close(got["dot"], ref["cos"]):
            return self._done(name, False, "the two shares are swapped")
        low = {n: float(train.patched[s[0].topk(k, largest=False).indices].float().mean()) for n, s in (("cos", cos), ("dot", dot))}
        if all(_close(got[n], low[n]) for n in ref):
            return self._done(name, False, "you took the lowest scores (opponents); proponents have the highest")
        wrong = [n for n in ref if not _close(got[n], ref[n])]
        return self._done(name, False, f"the {' and '.join(wrong)} share is off: top-{k} indices by the score's largest values, "
                                       "then the mean of train.patched at those indices")

    def ex03_best_flipped(self, index, model, x_train: torch.Tensor, y_train, candidates: torch.Tensor, test_images: torch.Tensor) -> CheckResult:
        """Among the patched test images ``test_images[candidates]``, the one (an index into
        ``test_images``) with the largest Grad-Cos to the training image ``x_train``."""
        name = "ex03_best_flipped"
        if (unanswered := self._unanswered(name, index)) is not None:
            return unanswered
        candidates = torch.as_tensor(candidates)
        s = grad_cos(model, x_train[None], torch.as_tensor(y_train).reshape(1), test_images[candidates])[:, 0]
        ref = int(candidates[s.argmax()])
        i = _as_int(index)
        if i == ref:
            return self._done(name, True, f"correct: Grad-Cos {float(s.max()):+.2f} — the test image this training image supports most")
        if i is not None and i == int(s.argmax()):
            return self._done(name, False, "that is the position in the candidate list; answer with the index into the test set")
        if i is not None and i == int(candidates[s.argmin()]):
            return self._done(name, False, "that is the lowest score; the task asks for the largest")
        return self._done(name, False, "score the training image against all candidate test images with T.grad_cos "
                                       "(scores have shape [Q, 1]) and take the candidate with the largest score")

    # ------------------------------------------------------------------ 04 training feature attribution

    def ex04_mass_by_hand(self, mass, maps: torch.Tensor, masks: torch.Tensor) -> CheckResult:
        """Relevance mass accuracy of reduced maps ``[B, H, W]`` by hand, against
        :func:`relevance_mass_accuracy`."""
        name = "ex04_mass_by_hand"
        if (unanswered := self._unanswered(name, mass)) is not None:
            return unanswered
        ref = relevance_mass_accuracy(maps, masks)
        try:
            got = torch.as_tensor(mass).detach().double().flatten()
        except (TypeError, ValueError, RuntimeError):
            return self._done(name, False, "answer with a tensor of one value per map")
        if got.numel() != ref.numel():
            return self._done(name, False, f"one value per map: expected {ref.numel()} values, got {got.numel()}")
        if torch.allclose(got, ref, rtol=1e-4, atol=1e-8):
            return self._done(name, True, "correct: the positive mass inside the mask over the total positive mass")
        m = maps.double().flatten(1)
        k = masks.bool().flatten(1)
        variants = {
            "absolute": (m.abs() * k).sum(1) / m.abs().sum(1),
            "signed": (m * k).sum(1) / m.sum(1),
            "unnormalised": (m.clamp_min(0) * k).sum(1),
            "mean": (m.clamp_min(0) * k).sum(1) / k.sum(1) / m.clamp_min(0).mean(1),
        }
        hints = {
            "absolute": "you used |m|; the metric keeps only the positive part max(m, 0)",
            "signed": "negative values must not cancel positive ones: clamp the map at 0 first",
            "unnormalised": "divide the mass inside the mask by the total positive mass of the map",
            "mean": "use sums, not means, inside the mask and over the whole map",
        }
        for key, v in variants.items():
            if torch.allclose(got, v, rtol=1e-4, atol=1e-8):
                return self._done(name, False, hints[key])
        return self._done(name, False, "per map: sum of max(m, 0) inside the mask, divided by the sum of max(m, 0) over all pixels")

    def ex04_input_as_map(self, mass, beats_chance, images: torch.Tensor, masks: torch.Tensor, chance: float) -> CheckResult:
        """The input-as-map control: mean relevance mass of the images themselves on their patch,
        and whether it beats chance (the patch area)."""
        name = "ex04_input_as_map"
        if (unanswered := self._unanswered(name, (mass, beats_chance))) is not None:
            return unanswered
        ref = float(relevance_mass_accuracy(reduce_map(images, "positive"), masks).mean())
        a = _as_float(mass)
        if a is None or not _close(a, ref):
            if a is not None and _close(a, float(masks.float().mean())):
                return self._done(name, False, "that is the patch area (chance); use the images themselves as maps")
            return self._done(name, False, "reduce the images with T.reduce_map(images, 'positive'), score them with "
                                           "T.relevance_mass_accuracy against the masks, and take the mean")
        if _as_bool(beats_chance) is None or _as_bool(beats_chance) != (ref > chance):
            return self._done(name, False, "the mass is right; beats_chance must be the bool mass > chance")
        return self._done(name, True, "correct: the bright patch alone carries this much mass — any value attribution "
                                      "that multiplies by the input inherits it (compare the table in notebook 04)")

    def ex04_closed_form(self, s, model, x_i, y_i, x_j, y_j) -> CheckResult:
        """Grad-Cos of softmax regression by hand, S = cos(δ_i, δ_j)·cos(x̃_i, x̃_j), against autograd
        (:func:`grad_cos`)."""
        name = "ex04_closed_form"
        if (unanswered := self._unanswered(name, s)) is not None:
            return unanswered
        ref = float(grad_cos(model, x_i[None], torch.tensor([int(y_i)]), x_j[None], torch.tensor([int(y_j)]))[0, 0])
        a = _as_float(s)
        if a is None:
            return self._done(name, False, "the answer must be one number")
        if _close(a, ref, rtol=1e-6, atol=1e-9):
            return self._done(name, True, "correct: error similarity × input similarity equals autograd's Grad-Cos")
        if _close(a, -ref, rtol=1e-6, atol=1e-9):
            return self._done(name, False, "the sign is flipped: δ = p − e_y for both examples")
        W = model.linear.weight.detach()
        b = model.linear.bias.detach() if model.linear.bias is not None else torch.zeros(W.shape[0], dtype=W.dtype)

        def parts(x, y):
            xf = x.flatten().to(W.dtype)
            p = torch.softmax(W @ xf + b, 0)
            return p, p - F.one_hot(torch.tensor(int(y)), W.shape[0]).to(W.dtype), xf

        pi, di, xi = parts(x_i, y_i)
        pj, dj, xj = parts(x_j, y_j)
        cos = lambda u, v: float(u @ v / (u.norm() * v.norm()))  # noqa: E731
        if _close(a, cos(di, dj) * cos(xi, xj), rtol=1e-6, atol=1e-9):
            return self._done(name, False, "almost: x̃ = [vec(x); 1] includes a constant 1 for the bias")
        if _close(a, cos(pi, pj) * cos(torch.cat([xi, xi.new_ones(1)]), torch.cat([xj, xj.new_ones(1)])), rtol=1e-6, atol=1e-9):
            return self._done(name, False, "use the errors δ = p − e_y, not the probabilities p")
        return self._done(name, False, "compute p = softmax(W x + b), δ = p − e_y and x̃ = [vec(x); 1] for both examples, "
                                       "then cos(δ_i, δ_j) · cos(x̃_i, x̃_j)")

    # ------------------------------------------------------------------ 05 interactive explorer

    def ex05_label_choice(self, shares, model, train: ImageDataset, x_test: torch.Tensor, y_true, target_class: int, k: int = 10) -> CheckResult:
        """``{"predicted": ..., "true": ...}``: share of the top-k Grad-Cos proponents whose label is
        ``target_class`` when the test loss uses the predicted label vs the true label."""
        name = "ex05_label_choice"
        if (unanswered := self._unanswered(name, shares)) is not None:
            return unanswered
        if not isinstance(shares, dict) or set(shares) != {"predicted", "true"}:
            return self._done(name, False, 'answer with a dict {"predicted": share, "true": share}')
        ref = {}
        for key, yt in (("predicted", None), ("true", torch.tensor([int(y_true)]))):
            s = grad_cos(model, train.images, train.labels, x_test[None], yt)[0]
            ref[key] = float((train.labels[s.topk(k).indices] == target_class).float().mean())
        got = {n: _as_float(v) for n, v in shares.items()}
        if all(_close(got[n], ref[n]) for n in ref):
            return self._done(name, True, "correct: the explained label decides which training images count as support")
        if _close(got["predicted"], ref["true"]) and _close(got["true"], ref["predicted"]):
            return self._done(name, False, "the two shares are swapped")
        return self._done(name, False, "call T.grad_cos twice: test_targets=None (predicted label) and the true label "
                                       "as a [1] tensor; then the share of the top-k's training labels equal to the target class")

    def ex05_top_opponent(self, index, model, train: ImageDataset, x_test: torch.Tensor, y_true) -> CheckResult:
        """The most harmful training image for a misclassified test image, as an index into
        ``train``: the strongest opponent of the **true** label (lowest Grad-Cos when the test loss
        uses ``y_true``). A training step on it raises the loss of the right answer, i.e. pushes the
        model towards its error. (The strongest opponent of the *predicted* label does the opposite:
        it pushes away from the error.)"""
        name = "ex05_top_opponent"
        if (unanswered := self._unanswered(name, index)) is not None:
            return unanswered
        s = grad_cos(model, train.images, train.labels, x_test[None], torch.tensor([int(y_true)]))[0]
        ref = int(s.argmin())
        i = _as_int(index)
        if i == ref:
            return self._done(name, True, f"correct: Grad-Cos {float(s[ref]):+.2f} for the true label; a training step on "
                                          "it would raise the loss of the right answer")
        s_pred = grad_cos(model, train.images, train.labels, x_test[None])[0]
        if i == int(s_pred.argmin()):
            return self._done(name, False, "that is the strongest opponent of the predicted label: it pushes the model away "
                                           "from its error. Harmful means opposing the true label: pass it to T.grad_cos")
        if i == int(s.argmax()):
            return self._done(name, False, "that is the top proponent of the true label (highest score); an opponent has the "
                                           "lowest score")
        return self._done(name, False, "score the test image against the training images with T.grad_cos for the true "
                                       "label and take the index of the lowest (most negative) score")


    # ------------------------------------------------------------------ 06 from diagnosis to fix

    def ex06_flag_precision(self, answer, model, train: PatchedDataset, test_images: torch.Tensor, top_k: int = 20) -> CheckResult:
        """``{"precision": ..., "chance": ...}``: flag the union of the ``top_k`` Grad-Cos proponents
        (predicted label) of ``test_images`` ``[Q, C, H, W]`` in ``train``; precision = share of the
        flagged images that carry the patch; chance = the patched share of ``train`` (random flags)."""
        name = "ex06_flag_precision"
        if (unanswered := self._unanswered(name, answer)) is not None:
            return unanswered
        if not isinstance(answer, dict) or set(answer) != {"precision", "chance"}:
            return self._done(name, False, 'answer with a dict {"precision": share, "chance": share}')
        s = grad_cos(model, train.images, train.labels, test_images).cpu()  # [Q, N]
        patched = train.patched
        flagged = s.topk(top_k, dim=1).indices.flatten().unique()
        ref = {"precision": float(patched[flagged].float().mean()), "chance": float(patched.float().mean())}
        got = {n: _as_float(v) for n, v in answer.items()}
        if all(_close(got[n], ref[n]) for n in ref):
            lift = ref["precision"] / ref["chance"] if ref["chance"] > 0 else float("inf")
            return self._done(name, True, f"correct: the flags are {lift:.1f}× as rich in patched images as random flags")
        if _close(got["precision"], ref["chance"]) and _close(got["chance"], ref["precision"]):
            return self._done(name, False, "the two numbers are swapped")
        hints = []
        if not _close(got["precision"], ref["precision"]):
            opp = s.topk(top_k, dim=1, largest=False).indices.flatten().unique()
            if _close(got["precision"], float(patched[opp].float().mean())):
                hints.append("you flagged the lowest scores (opponents); proponents of the prediction have the highest")
            elif patched.any() and _close(got["precision"], float(patched[flagged].sum()) / int(patched.sum())):
                hints.append("that is the recall (share of the patched images that were flagged); precision divides by "
                             "the number of flagged images")
            elif _close(got["precision"], float(patched[s.topk(top_k, dim=1).indices.flatten()].float().mean())):
                hints.append("count each flagged image once: take the union (unique indices) of the top-k lists")
            else:
                hints.append("precision: the top-k indices of each row of T.grad_cos(...) ([Q, N]), their union, then the "
                             "mean of train.patched at those indices")
        if not _close(got["chance"], ref["chance"]):
            tgt = train.labels == train.spec.target_class
            if tgt.any() and _close(got["chance"], float(patched[tgt].float().mean())):
                hints.append("chance is the patched share of the whole training set (random flags come from every class), "
                             "not of the target class")
            else:
                hints.append("chance: the share of all training images that carry the patch")
        return self._done(name, False, "; ".join(hints))

    def ex06_repair_coverage(self, answer, repair: torch.Tensor, truth: torch.Tensor) -> CheckResult:
        """``{"coverage": ..., "iou": ...}`` of repair masks ``[F, H, W]`` against the true patch masks
        ``[F, H, W]`` by hand, against :func:`~tfa_tutorial.fixing.mask_overlap` (only images that
        carry the patch count)."""
        name = "ex06_repair_coverage"
        if (unanswered := self._unanswered(name, answer)) is not None:
            return unanswered
        if not isinstance(answer, dict) or set(answer) != {"coverage", "iou"}:
            return self._done(name, False, 'answer with a dict {"coverage": share, "iou": mean IoU}')
        ref = mask_overlap(repair, truth)
        got = {n: _as_float(v) for n, v in answer.items()}
        if all(_close(got[n], ref[n]) for n in ("coverage", "iou")):
            return self._done(name, True, f"correct: the same as mask_overlap over the {ref['n']} flagged images that carry "
                                          "the patch; compare with the random map's coverage printed below")
        if _close(got["coverage"], ref["iou"]) and _close(got["iou"], ref["coverage"]):
            return self._done(name, False, "the two numbers are swapped")
        r, t = torch.as_tensor(repair).bool().flatten(1), torch.as_tensor(truth).bool().flatten(1)
        has = t.any(1)
        inter, union = (r & t).sum(1).double(), (r | t).sum(1).double()
        hints = []
        if not _close(got["coverage"], ref["coverage"]):
            if _close(got["coverage"], ref["precision"]):
                hints.append("coverage divides the hit patch pixels by all *patch* pixels, not by all repaired pixels")
            elif has.any() and _close(got["coverage"], float((inter[has] / t[has].sum(1)).mean())):
                hints.append("coverage pools the pixels: total hit patch pixels / total patch pixels")
            else:
                hints.append("coverage: the number of pixels in both masks divided by the number of patch pixels, "
                             "over the images that carry the patch")
        if not _close(got["iou"], ref["iou"]):
            if _close(got["iou"], float((inter / union.clamp_min(1)).mean())):
                hints.append("leave out the images without a patch: their IoU is 0 whatever the repair does")
            elif _close(got["iou"], float(inter[has].sum() / union[has].sum())):
                hints.append("IoU is the mean of the per-image |R ∩ P| / |R ∪ P|, not one ratio of pooled sums")
            else:
                hints.append("IoU per image: |R ∩ P| / |R ∪ P| (& and | on bool masks), then the mean over the images "
                             "that carry the patch")
        return self._done(name, False, "; ".join(hints))

    def ex06_insertion(self, delta, beats_random, model, x_train: torch.Tensor, y_train, maps: torch.Tensor,
                       x_test: torch.Tensor, y_test, k: int, lr: float = 1e-5, n_random: int = 5, seed: int = 0) -> CheckResult:
        """The one-step insertion test by hand: keep the top-``k`` pixels of each training image by
        ``maps`` ``[B, H, W]`` (the rest 0), one SGD step on the mean training loss, and
        ΔL = L_test(θ') − L_test(θ); ``beats_random``: is ΔL lower than with k random pixels? Against
        :func:`~tfa_tutorial.metrics.one_step_test`."""
        name = "ex06_insertion"
        if (unanswered := self._unanswered(name, (delta, beats_random))) is not None:
            return unanswered
        args = (model, x_train, torch.as_tensor(y_train), maps, x_test, torch.as_tensor(y_test), [int(k)])
        ref = one_step_test(*args, lr=lr, mode="insertion", n_random=n_random, seed=seed)
        d_map, d_rand = float(ref["map"][0]), float(ref["random"][0])
        a = _as_float(delta)
        if a is None:
            return self._done(name, False, "delta must be one number: the change of the mean test loss")

        def near(v):  # float32 losses: ΔL = L' − L loses digits to cancellation
            return _close(a, v, rtol=2e-3, atol=2e-6)

        if not near(d_map):
            if near(-d_map):
                return self._done(name, False, "the sign is flipped: ΔL = loss after the step − loss before (negative = the "
                                               "step helped the test image)")
            if near(float(one_step_test(*args, lr=lr, mode="deletion", n_random=1, seed=seed)["map"][0])):
                return self._done(name, False, "you removed the top-k pixels (deletion); insertion *keeps* only them and "
                                               "sets the rest to 0")
            if near(float(one_step_test(*args[:3], -torch.as_tensor(maps), *args[4:], lr=lr, mode="insertion", n_random=1,
                                        seed=seed)["map"][0])):
                return self._done(name, False, "you kept the k *lowest* map values; keep the k highest of each map")
            return self._done(name, False, "per training image keep the k largest map pixels (topk on the flattened map), "
                                           "set the others to 0, take one step θ − lr·∇ of the *mean* training loss on a "
                                           "copy of the model (eval mode), and compare the mean test loss (given labels) "
                                           "after and before")
        if _as_bool(beats_random) is None or _as_bool(beats_random) != (d_map < d_rand):
            return self._done(name, False, "ΔL is right; beats_random must be the bool: is the map's ΔL lower (more "
                                           "negative) than the random pixels' ΔL?")
        verdict = "lowers the test loss more than" if d_map < d_rand else "does not beat"
        return self._done(name, True, f"correct: with k = {int(k)} the map {verdict} random pixels")

    # ------------------------------------------------------------------ 07 neural features

    def ex07_top_contributor(self, answer, model, x: torch.Tensor, target: int) -> CheckResult:
        """``{"contributions": [F], "neuron": int}``: W[target, c] · h_c(x) for every penultimate
        neuron c of one image ``x`` ``[C, H, W]`` by hand, and the neuron that contributes most,
        against :func:`~tfa_tutorial.neural_features.class_contributions`."""
        name = "ex07_top_contributor"
        if (unanswered := self._unanswered(name, answer)) is not None:
            return unanswered
        if not isinstance(answer, dict) or set(answer) != {"contributions", "neuron"}:
            return self._done(name, False, 'answer with a dict {"contributions": tensor [F], "neuron": index}')
        layer = NF.find_feature_layer(model, x)
        h = NF.neural_activations(model, x[None], layer)[0].double()
        w = layer.weight[target].cpu().double()
        ref = NF.class_contributions(model, x[None], int(target), layer)[0].double()
        try:
            got = torch.as_tensor(answer["contributions"]).detach().cpu().double().flatten()
        except (TypeError, ValueError, RuntimeError):
            return self._done(name, False, "contributions must be a tensor with one value per neuron")
        if got.numel() != ref.numel():
            return self._done(name, False, f"one contribution per penultimate neuron: expected {ref.numel()} values, got "
                                           f"{got.numel()} (h is the pooled feature map, the classifier's input)")
        scale = float(ref.abs().max().clamp_min(1e-12))

        def same(v):
            return bool(((got - v).abs().max() / scale) < 1e-4)

        if not same(ref):
            if same(h):
                return self._done(name, False, "that is the activation h alone; multiply by the classifier weight W[target, c]")
            if same(w):
                return self._done(name, False, "that is the weight row alone; multiply by the image's activations h_c(x)")
            if same(ref.abs()):
                return self._done(name, False, "keep the sign: a negative contribution argues against the class")
            return self._done(name, False, "contributions = W[target] * h (element-wise), with h = NF.neural_activations("
                                           "model, x[None])[0] and W the final Linear's weight")
        n = _as_int(answer["neuron"])
        if n is None:
            return self._done(name, False, "the contributions are right; neuron must be one index")
        if n == int(ref.argmax()):
            share = float(ref.max() / ref.clamp_min(0).sum()) if float(ref.clamp_min(0).sum()) > 0 else float("nan")
            return self._done(name, True, f"correct: neuron {n} gives {share:.0%} of the positive evidence for the class")
        if n == int(h.argmax()):
            return self._done(name, False, "the contributions are right; that neuron has the largest *activation*, not the "
                                           "largest contribution")
        if n == int(ref.argmin()):
            return self._done(name, False, "the contributions are right; that is the most negative one — take the largest")
        return self._done(name, False, "the contributions are right; neuron = the index of their largest value")

    def ex07_spuriousness(self, answer, model, images: torch.Tensor, masks: torch.Tensor, neuron: int, m: int = 16) -> CheckResult:
        """``{"score": ..., "chance": ...}`` of one neuron by hand: over its ``m`` top-activating
        ``images``, the mean share of its (normalised) activation-map mass inside ``masks``
        ``[N, H, W]``, and the mean mask area over the same images; against
        :func:`~tfa_tutorial.neural_features.spuriousness`."""
        name = "ex07_spuriousness"
        if (unanswered := self._unanswered(name, answer)) is not None:
            return unanswered
        if not isinstance(answer, dict) or set(answer) != {"score", "chance"}:
            return self._done(name, False, 'answer with a dict {"score": share, "chance": share}')
        sp = NF.spuriousness(model, images, masks, m=m, neurons=[int(neuron)])
        ref = {"score": float(sp["score"][0]), "chance": float(sp["chance"][0])}
        got = {n: _as_float(v) for n, v in answer.items()}
        if all(_close(got[n], ref[n]) for n in ref):
            return self._done(name, True, f"correct: {ref['score'] / ref['chance']:.2f}× chance" if ref["chance"] > 0
                              else "correct")
        if _close(got["score"], ref["chance"]) and _close(got["chance"], ref["score"]):
            return self._done(name, False, "the two numbers are swapped")
        top = sp["top"][0]
        mk = torch.as_tensor(masks).float()[top]
        hints = []
        if not _close(got["score"], ref["score"]):
            raw = NF.activation_maps(model, images[top], int(neuron), normalize=False)
            norm = NF.activation_maps(model, images[top], int(neuron))
            if _close(got["score"], float(((raw * mk).sum((1, 2)) / raw.sum((1, 2))).mean())):
                hints.append("use the normalised maps (NF.activation_maps with its default normalize=True)")
            elif _close(got["score"], float((norm * mk).sum() / norm.sum())):
                hints.append("score each image (mass inside / total mass of its map), then take the mean over the images")
            else:
                hints.append("score: for each of the neuron's m top-activating images (NF.top_activating), the map's mass "
                             "inside the mask over its total mass; then the mean")
        if not _close(got["chance"], ref["chance"]):
            has = mk.flatten(1).any(1)
            if has.any() and _close(got["chance"], float(mk[has].mean())):
                hints.append("chance is the mean mask area over *all* m top images: an image without the patch has an "
                             "empty mask and adds 0")
            else:
                hints.append("chance: the mean of the masks of the same m top images (the share of pixels inside)")
        return self._done(name, False, "; ".join(hints))

    def ex07_random_mask_control(self, rates, model, images: torch.Tensor, labels, masks: torch.Tensor, target: int,
                                 sigma: float = 0.5, seed: int = 0, random_seed: int = 1) -> CheckResult:
        """``{"spurious": ..., "random": ...}``: the share of ``images`` predicted as ``target`` after
        Gaussian noise x + σ ε ⊙ m (one draw, ``seed``) inside ``masks`` ``[N, H, W]``, and inside the
        equal-mass random control ``NF.random_mask_like(masks, random_seed)``; against
        :func:`~tfa_tutorial.neural_features.mask_sensitivity`."""
        name = "ex07_random_mask_control"
        if (unanswered := self._unanswered(name, rates)) is not None:
            return unanswered
        if not isinstance(rates, dict) or set(rates) != {"spurious", "random"}:
            return self._done(name, False, 'answer with a dict {"spurious": flip rate, "random": flip rate}')
        control = NF.random_mask_like(masks, seed=random_seed)
        res = NF.mask_sensitivity(model, images, labels, {"spurious": masks, "random": control}, sigma=sigma, repeats=1,
                                  seed=seed, target=int(target))
        ref = {n: res[n]["target_rate"] for n in ("spurious", "random")}
        got = {n: _as_float(v) for n, v in rates.items()}
        if all(_close(got[n], ref[n]) for n in ref):
            base = res["none"]["target_rate"]
            cut_s, cut_r = base - ref["spurious"], base - ref["random"]
            more = "more" if cut_s > cut_r else "not more"
            return self._done(name, True, f"correct: noise on the neuron's mask cuts the flip rate {more} than the same "
                                          "mask moved at random")
        if _close(got["spurious"], ref["random"]) and _close(got["random"], ref["spurious"]):
            return self._done(name, False, "the two rates are swapped")
        if all(_close(got[n], res[n]["acc"]) for n in ref):
            return self._done(name, False, "that is the accuracy; the flip rate is the share predicted as the target class")
        if any(_close(got[n], res["none"]["target_rate"]) for n in ref) and not any(
                _close(ref[n], res["none"]["target_rate"]) for n in ref):
            return self._done(name, False, "one rate equals the flip rate without noise: add the noise with NF.noise_in_mask "
                                           "before predicting")
        wrong = [n for n in ref if not _close(got[n], ref[n])]
        return self._done(name, False, f"the {' and '.join(wrong)} rate is off: use NF.noise_in_mask(images, mask, sigma, "
                                       "seed=seed) with the task's σ and seed (the random mask from NF.random_mask_like(masks, "
                                       "seed=random_seed)), T.predict, and the share equal to the target class")

#: The checker instance the exercise notebooks use: ``check.ex01_custom_patch(answer, source)``.
check = Checks()
