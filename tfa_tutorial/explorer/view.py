"""The interactive explorer of harmful training regions: a thin ipywidgets view.

    from tfa_tutorial.explorer.view import explore
    explore()                                  # the shortcut experiment, ready to display

    ui, controls = build_explorer(state)       # any ExplorerState; nothing is displayed
    controls["test_index"].value = 12          # what a click does, also from Python or a test
    controls["proponent_buttons"][0].click()   # open the first proponent in the detail pane

All state and logic live in :class:`~tfa_tutorial.explorer.state.ExplorerState`; this module only
copies widget values into it and draws its results. Images are PNG bytes in ``widgets.Image``
(rendered with numpy + Pillow, no pyplot), so the view works in JupyterLab and Voilà and is
testable without a browser. Slow settings (test image, k, score, label, map method, SmoothGrad n
and σ) recompute on release or on "Compute", with a progress bar (the n and σ sliders are disabled
for map methods they do not apply to); display settings (sign, channels,
opacity) re-render cached maps only. :func:`explorer_figure` draws the same view as a static
matplotlib figure for readers who cannot run widgets.
"""
from __future__ import annotations

import html
import time

import ipywidgets as widgets

from .render import (
    DETAIL_SCALE,
    LIST_LABELS,
    METHOD_LEGENDS,
    OVERLAY_LEGEND,
    OWN_LABEL_LEGEND,
    TEST_SCALE,
    TILE_SCALE,
    _detail_html,
    _esc,
    _item_html,
    _message_html,
    _test_html,
    image_png,
    overlay_png,
)
from .results import ExplorerResult
from .settings import (
    MAP_METHODS,
    SCORES,
    SLOW_SETTINGS,
    SMOOTHGRAD_METHODS,
    TEST_INDEPENDENT_METHODS,
    TEST_LISTS,
)
from .state import ExplorerState
from .widgets import lay_out, make_controls

__all__ = ["build_explorer", "explore"]


# ---------------------------------------------------------------------- the view


def build_explorer(state: ExplorerState):
    """Build the explorer UI on ``state`` without displaying it.

    Returns:
        ``(ui, controls)``: the top-level widget and a dict of named widgets — inputs
        (``test_set``, ``test_index``, ``prev``, ``next``, ``pick_list``, ``pick``, ``k``, ``score``,
        ``label``, ``method``, ``n_samples``, ``noise``, ``sign``, ``channels``, ``opacity``, ``auto``,
        ``compute``, ``close_detail``) and outputs (``message``, ``status``, ``progress``,
        ``test_image``, ``test_info``, ``proponent_images``/``_captions``/``_buttons``, the same for
        ``opponent_``, ``detail``, ``detail_info``, ``detail_images``, ``detail_titles``, and the
        neural-feature panel ``neural_toggle`` / ``neural``, filled from
        :meth:`ExplorerState.neural_features` while the toggle is on). The
        list-valued entries are replaced when k changes, so read them from ``controls`` anew.
    """
    c = make_controls(state)
    view = _ExplorerView(state, c)
    ui = lay_out(state, c)
    ui.add_class("tfa-explorer")
    view.connect()
    view.refresh(compute=True)
    c["index_info"].value = f"<span style='font-size:11px;color:#666'>{html.escape(state.index_info)}</span>"
    return ui, c


class _ExplorerView:
    """Callbacks of :func:`build_explorer`: widget values → state, state results → widgets."""

    def __init__(self, state: ExplorerState, controls: dict):
        self.state = state
        self.c = controls
        self._syncing = False
        self.result: ExplorerResult | None = None
        self.neural = None  # the last NeuralFeaturesView shown
        state.on_progress = self._progress

    # -------------------------------------------------------------- wiring
    def connect(self):
        c = self.c
        for name in SLOW_SETTINGS:
            c[name].observe(self._on_slow, names="value")
        for name in ("sign", "channels", "opacity"):
            c[name].observe(self._on_display, names="value")
        c["compute"].on_click(lambda _b: self.refresh(compute=True))
        c["prev"].on_click(lambda _b: self._step(-1))
        c["next"].on_click(lambda _b: self._step(+1))
        c["pick_list"].observe(self._on_pick_list, names="value")
        c["pick"].observe(self._on_pick, names="value")
        c["close_detail"].on_click(lambda _b: self._apply({"selected": None}))
        c["neural_toggle"].observe(lambda _ch: self._render_neural(self.result), names="value")
        self._fill_pick_lists()

    def _progress(self, fraction: float, text: str):
        self.c["progress"].value = float(fraction)
        self.c["status"].value = f"<span style='font-size:12px'>{html.escape(text)}</span>"

    # -------------------------------------------------------------- handlers
    def _on_slow(self, change):
        if self._syncing:
            return
        if change["owner"] is self.c["test_set"]:
            self._fill_pick_lists()
        if self.c["auto"].value:
            self.refresh(compute=True)
        else:
            self.c["status"].value = "<span style='font-size:12px;color:#b26a00'>settings changed: press <b>Compute</b></span>"

    def _on_display(self, _change):
        if self._syncing:
            return
        self._apply({"sign": self.c["sign"].value, "channels": self.c["channels"].value, "opacity": self.c["opacity"].value})

    def _step(self, delta: int):
        self.c["test_index"].value = self.state.settings.test_index + delta

    def _on_pick_list(self, _change):
        if self._syncing:
            return
        self._fill_pick()

    def _on_pick(self, change):
        if self._syncing or change["new"] is None:
            return
        self.c["test_index"].value = int(change["new"])

    def _fill_pick_lists(self):
        st = self.state
        options = []
        for name in TEST_LISTS:
            if name == "flipped" and st._flipped is None:
                continue
            options.append((f"{LIST_LABELS[name]} ({len(st.test_list(name))})", name))
        with self._hold():
            current = self.c["pick_list"].value
            self.c["pick_list"].options = options
            values = [v for _, v in options]
            self.c["pick_list"].value = current if current in values else (values[0] if values else None)
        self._fill_pick()

    def _fill_pick(self):
        st = self.state
        name = self.c["pick_list"].value
        indices = st.test_list(name)[:300] if name else []
        with self._hold():
            self.c["pick"].options = [(st.describe_test(i), i) for i in indices]
            j = st.settings.test_index
            self.c["pick"].value = j if j in indices else None

    # -------------------------------------------------------------- apply + render
    def _slow_values(self) -> dict:
        return {name: self.c[name].value for name in SLOW_SETTINGS}

    def refresh(self, compute: bool = True):
        """Copy every slow setting into the state (recomputing what is not cached) and render."""
        changes = self._slow_values() if compute else {}
        old = self.state.settings
        if compute and any(changes[k] != getattr(old, k) for k in ("test_set", "test_index")):
            changes["selected"] = None  # a new test image closes the detail pane
        self._apply(changes)

    def _apply(self, changes: dict):
        c = self.c
        c["progress"].value = 0.0
        c["progress"].layout.visibility = "visible"
        c["compute"].disabled = True
        c["status"].value = "<span style='font-size:12px'>computing…</span>"
        t0 = time.perf_counter()
        try:
            result = self.state.set(**changes)
        except Exception as err:  # noqa: BLE001 — set() should not raise; never show a traceback
            result = self.state._with_message(f"Unexpected error ({type(err).__name__}): {err}")
        try:
            self.render(result)
        except Exception as err:  # noqa: BLE001
            c["message"].value = _message_html(f"Could not draw the result ({type(err).__name__}): {err}")
        finally:
            c["compute"].disabled = False
            c["progress"].layout.visibility = "hidden"
        dt = time.perf_counter() - t0
        computed = result.timings.get("computed", {})
        n_maps = computed.get("maps", 0)
        what = f"{n_maps} new TFA map" + ("s" if n_maps > 1 else "") if n_maps else "from cache"
        c["status"].value = f"<span style='font-size:12px;color:#555'>updated in {dt:.2f} s ({what})</span>"

    @staticmethod
    def _sync_widget(w, value):
        if w.value != value:
            w.value = value

    def _hold(self):
        view = self

        class _Hold:
            def __enter__(self):
                self.prev = view._syncing
                view._syncing = True

            def __exit__(self, *exc):
                view._syncing = self.prev

        return _Hold()

    def render(self, r: ExplorerResult):
        c = self.c
        self.result = r
        c["message"].value = _message_html(r.message) if r.message else ""
        s = r.settings
        # widgets follow the (valid) state: a refused value is put back
        with self._hold():
            for name in SLOW_SETTINGS + ("sign", "channels", "opacity"):
                self._sync_widget(c[name], getattr(s, name))
            j = s.test_index
            if c["pick"].value != j:
                c["pick"].value = j if j in [v for _, v in c["pick"].options] else None
        smoothgrad = s.method in SMOOTHGRAD_METHODS
        for name in ("n_samples", "noise"):
            c[name].disabled = not smoothgrad
            c[name].tooltip = None if smoothgrad else f"SmoothGrad does not apply to {MAP_METHODS[s.method]}"
        legend = OWN_LABEL_LEGEND if s.method in TEST_INDEPENDENT_METHODS else OVERLAY_LEGEND
        c["legend"].value = (f"<div style='font-size:11px;color:#444'>{legend} "
                             f"{_esc(METHOD_LEGENDS[s.method])}</div>")
        if r.test is None:
            return
        t = r.test
        c["test_image"].value = image_png(t.image, scale=TEST_SCALE)
        c["test_info"].value = _test_html(r)
        score_name = SCORES[s.score]
        for kind, items in (("proponent", r.proponents), ("opponent", r.opponents)):
            self._ensure_cards(kind, len(items))
            for item, img, cap in zip(items, c[f"{kind}_images"], c[f"{kind}_captions"]):
                img.value = overlay_png(item.image, item.shown, s.sign, s.opacity, item.mask)
                cap.value = _item_html(item, score_name)
            for item, b in zip(items, c[f"{kind}_buttons"]):
                b.description = f"inspect #{item.index}"
                b.train_index = item.index
        n_patched_p = sum(bool(i.patched) for i in r.proponents)
        n_patched_o = sum(bool(i.patched) for i in r.opponents)
        has_patch = self.state.train_patched is not None
        c["proponents_title"].value = (
            f"<b>Top {len(r.proponents)} proponents</b> (highest {score_name})"
            + (f" · {n_patched_p} carry the patch" if has_patch else "")
        )
        c["opponents_title"].value = (
            f"<b>Top {len(r.opponents)} opponents</b> (lowest {score_name}: harmful for this test loss)"
            + (f" · {n_patched_o} carry the patch" if has_patch else "")
        )
        self._render_detail(r)
        self._render_neural(r)

    def _render_neural(self, r: ExplorerResult | None):
        """The neural-feature panel: for the shown test image, the neurons with the largest
        W[t, c] · h_c(x) for the explained class t, each with its activation map on the test image
        and its top-activating training images (computed only while the toggle is on)."""
        c = self.c
        if not c["neural_toggle"].value or r is None or r.test is None:
            c["neural"].layout.display = "none"
            return
        try:
            nf = self.state.neural_features(test_index=r.test.index, test_set=r.test.test_set, label=r.settings.label)
        except ValueError as err:
            c["neural"].children = (widgets.HTML(_message_html(f"Neural features unavailable: {err}")),)
            c["neural"].layout.display = "flex"
            return
        self.neural = nf
        rows = [widgets.HTML(
            f"<div style='font-size:12px'><b>Neural features</b> behind the logit of <b>{_esc(r.test.classes[nf.target])}</b> "
            f"({nf.logit:+.2f}, bias {nf.bias:+.2f}): the penultimate neurons with the largest weight × activation. "
            "Left: the neuron's activation map on this test image; right: its top-activating training images "
            "with their maps. Unlike TFA this view is global: a neuron's top images do not depend on the test image.</div>")]
        for n in nf.neurons:
            tiles = [widgets.VBox([widgets.Image(value=overlay_png(r.test.image, n.map, "positive", 0.6), width=28 * TILE_SCALE),
                                   widgets.HTML(f"<div style='font-size:11px;text-align:center'>neuron {n.neuron}<br>"
                                                f"w×h {n.contribution:+.2f}</div>")],
                                  layout=widgets.Layout(align_items="center", margin="3px 12px 3px 3px"))]
            for j, i in enumerate(n.top_indices):
                patch = n.top_patched is not None and n.top_patched[j]
                tiles.append(widgets.VBox(
                    [widgets.Image(value=overlay_png(n.top_images[j], n.top_maps[j], "positive", 0.6,
                                                     None if n.top_masks is None else n.top_masks[j]), width=28 * TILE_SCALE),
                     widgets.HTML(f"<div style='font-size:11px;text-align:center'>#{i}" + (" · patch" if patch else "") + "</div>")],
                    layout=widgets.Layout(align_items="center", margin="3px")))
            rows.append(widgets.HBox(tiles, layout=widgets.Layout(flex_flow="row wrap")))
        c["neural"].children = tuple(rows)
        c["neural"].layout.display = "flex"

    def _render_detail(self, r: ExplorerResult):
        c = self.c
        d = r.detail
        if d is None:
            c["detail"].layout.display = "none"
            return
        s = r.settings
        c["detail"].layout.display = "flex"
        c["detail_info"].value = _detail_html(d, r)
        c["detail_images"][0].value = image_png(d.image, d.mask, DETAIL_SCALE)
        for w, m in zip(c["detail_images"][1:], (d.raw, d.smooth, d.two_step)):
            w.value = overlay_png(d.image, m, s.sign, s.opacity, d.mask, DETAIL_SCALE)
        if d.method in SMOOTHGRAD_METHODS:
            sm = f"TFA SmoothGrad n = {d.n_samples}, σ = {d.noise:.2f}" if d.n_samples else "TFA SmoothGrad (n = 0: raw)"
        else:
            sm = MAP_METHODS[d.method] if d.method in TEST_INDEPENDENT_METHODS else f"TFA {MAP_METHODS[d.method]}"
        titles = ("image (green: patch)", "TFA raw (n = 0)", sm, f"two-step baseline, n = {d.n_samples}")
        for w, t in zip(c["detail_titles"], titles):
            w.value = f"<div style='text-align:center;font-size:12px;width:{28 * DETAIL_SCALE}px'>{html.escape(t)}</div>"

    def _ensure_cards(self, kind: str, n: int):
        c = self.c
        if len(c[f"{kind}_cards"]) == n:
            return
        images = list(c[f"{kind}_images"][:n])
        captions = list(c[f"{kind}_captions"][:n])
        buttons = list(c[f"{kind}_buttons"][:n])
        cards = list(c[f"{kind}_cards"][:n])
        while len(cards) < n:
            img = widgets.Image(format="png", width=28 * TILE_SCALE)
            cap = widgets.HTML()
            b = widgets.Button(description="inspect", layout=widgets.Layout(width=f"{28 * TILE_SCALE + 18}px"),
                               tooltip="show this training image large, with raw, smoothed and two-step maps")
            b.train_index = None
            b.on_click(self._on_inspect)
            card = widgets.VBox([img, cap, b], layout=widgets.Layout(align_items="center", margin="3px",
                                                                      width=f"{28 * TILE_SCALE + 24}px"))
            images.append(img)
            captions.append(cap)
            buttons.append(b)
            cards.append(card)
        c[f"{kind}_images"], c[f"{kind}_captions"], c[f"{kind}_buttons"], c[f"{kind}_cards"] = images, captions, buttons, cards
        c[f"{kind}s"].children = tuple(cards)

    def _on_inspect(self, button):
        if button.train_index is not None:
            self._apply({"selected": int(button.train_index)})


# ---------------------------------------------------------------------- convenience + static figure


def explore(exp=None, state: ExplorerState | None = None, test_sets=("patched", "clean"), **settings):
    """The explorer on the shortcut experiment (:func:`tfa_tutorial.training.experiment.shortcut_experiment`
    when ``exp`` is None), ready to display: returns the UI widget, with ``ui.state`` and
    ``ui.controls`` attached. The gradient index is cached on disk after the first build."""
    if state is None:
        if exp is None:
            from ..training.experiment import shortcut_experiment

            exp = shortcut_experiment(progress=False)
        state = ExplorerState.from_experiment(exp, test_sets=test_sets, **settings)
    elif settings:
        state.update(**settings)
    ui, controls = build_explorer(state)
    ui.state, ui.controls = state, controls
    return ui
