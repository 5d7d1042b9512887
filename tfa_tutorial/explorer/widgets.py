"""The explorer's widgets and their layout: what :func:`~tfa_tutorial.explorer.view.build_explorer` shows.

:func:`make_controls` creates every named widget (inputs and outputs) from an
:class:`~tfa_tutorial.explorer.state.ExplorerState`'s settings; :func:`lay_out` arranges them in one
``VBox``. No callbacks here: :mod:`tfa_tutorial.explorer.view` connects them.
"""
from __future__ import annotations

import html

import ipywidgets as widgets

from ..attribution.reduction import CHANNEL_REDUCTIONS, SIGNS
from .render import DETAIL_SCALE, OVERLAY_LEGEND, SIGN_LABELS, TEST_SCALE
from .settings import DEFAULT_MAP_METHOD, LABEL_MODES, MAP_METHODS, SCORES
from .state import ExplorerState

__all__ = ["make_controls", "lay_out"]


def make_controls(state: ExplorerState) -> dict:
    """Every named widget of the explorer (see :func:`~tfa_tutorial.explorer.view.build_explorer` for the
    names), set from ``state.settings``."""
    s = state.settings
    style = {"description_width": "initial"}
    c: dict = {}
    c["test_set"] = widgets.Dropdown(options=list(state.test_sets), value=s.test_set, description="Test set",
                                     disabled=len(state.test_sets) < 2, style=style, layout=widgets.Layout(width="170px"))
    c["test_index"] = widgets.IntText(value=s.test_index, description="Test index", style=style,
                                      layout=widgets.Layout(width="150px"))
    c["prev"] = widgets.Button(description="◀", tooltip="previous test image", layout=widgets.Layout(width="36px"))
    c["next"] = widgets.Button(description="▶", tooltip="next test image", layout=widgets.Layout(width="36px"))
    c["pick_list"] = widgets.Dropdown(options=[], description="or pick from", style=style,
                                      layout=widgets.Layout(width="260px"))
    c["pick"] = widgets.Dropdown(options=[], layout=widgets.Layout(width="260px"))
    c["k"] = widgets.IntText(value=s.k, description="k (per list)", style=style, layout=widgets.Layout(width="140px"))
    c["score"] = widgets.ToggleButtons(options=[(v, k) for k, v in SCORES.items()], value=s.score,
                                       description="Score", style={**style, "button_width": "92px"})
    c["label"] = widgets.ToggleButtons(options=[(m, m) for m in LABEL_MODES], value=s.label,
                                       description="Test label", style={**style, "button_width": "92px"},
                                       tooltips=["explain the prediction", "explain the true label (the error)"])
    c["method"] = widgets.Dropdown(options=[(label, name) for name, label in MAP_METHODS.items()], value=s.method,
                                   description="Map method", style=style, layout=widgets.Layout(width="340px"))
    c["n_samples"] = widgets.IntSlider(value=s.n_samples, min=0, max=64, step=1, description="SmoothGrad n",
                                       continuous_update=False, style=style)
    c["noise"] = widgets.FloatSlider(value=s.noise, min=0.0, max=0.5, step=0.01, description="σ (fraction of range)",
                                     continuous_update=False, readout_format=".2f", style=style)
    c["sign"] = widgets.Dropdown(options=[(SIGN_LABELS[x], x) for x in SIGNS], value=s.sign, description="Sign",
                                 style=style, layout=widgets.Layout(width="240px"))
    c["channels"] = widgets.Dropdown(options=list(CHANNEL_REDUCTIONS), value=s.channels, description="Channels",
                                     style=style, layout=widgets.Layout(width="150px"))
    c["opacity"] = widgets.FloatSlider(value=s.opacity, min=0.0, max=1.0, step=0.05, description="Opacity",
                                       continuous_update=True, style=style)
    c["auto"] = widgets.Checkbox(value=True, description="update automatically", indent=False,
                                 layout=widgets.Layout(width="180px"))
    c["compute"] = widgets.Button(description="Compute", button_style="primary", icon="refresh",
                                  tooltip="recompute with the settings above")
    c["progress"] = widgets.FloatProgress(value=0.0, min=0.0, max=1.0, layout=widgets.Layout(width="200px", visibility="hidden"))
    c["status"] = widgets.HTML(value="")
    c["message"] = widgets.HTML(value="")
    c["test_image"] = widgets.Image(format="png", width=28 * TEST_SCALE, layout=widgets.Layout(border="1px solid #ccc"))
    c["test_info"] = widgets.HTML(value="")
    c["proponents"] = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap"))
    c["opponents"] = widgets.HBox(layout=widgets.Layout(flex_flow="row wrap"))
    c["detail_info"] = widgets.HTML(value="")
    c["detail_titles"] = [widgets.HTML(value=f"<div style='text-align:center;font-size:12px'>{t}</div>")
                          for t in ("image", "TFA raw (n = 0)", "TFA SmoothGrad", "two-step baseline")]
    c["detail_images"] = [widgets.Image(format="png", width=28 * DETAIL_SCALE) for _ in range(4)]
    c["close_detail"] = widgets.Button(description="close", icon="times", layout=widgets.Layout(width="90px", min_width="90px"))
    c["detail"] = widgets.VBox(
        [widgets.HBox([c["detail_info"], c["close_detail"]]),
         widgets.HBox([widgets.VBox([im, t], layout=widgets.Layout(margin="0 6px")) for im, t in zip(c["detail_images"], c["detail_titles"])])],
        layout=widgets.Layout(display="none", border="1px solid #ddd", padding="6px", margin="6px 0"),
    )
    for kind in ("proponent", "opponent"):
        c[f"{kind}_images"], c[f"{kind}_captions"], c[f"{kind}_buttons"], c[f"{kind}_cards"] = [], [], [], []

    c["neural_toggle"] = widgets.ToggleButton(value=False, description="neural features", icon="sitemap",
                                              tooltip="show the penultimate neurons that drive this prediction "
                                                      "(global view, Salient-ImageNet style)")
    c["neural"] = widgets.VBox(layout=widgets.Layout(display="none", border="1px solid #ddd", padding="6px", margin="6px 0"))
    c["index_info"] = widgets.HTML(value="")
    return c


def lay_out(state: ExplorerState, c: dict) -> widgets.VBox:
    """The explorer's top-level box: header, setting rows, status, test image, lists, detail pane."""
    header = widgets.HTML(
        "<h3 style='margin:4px 0'>Explorer of harmful training regions</h3>"
        "<div style='font-size:12px;color:#444'>Pick a test image. Its <b>proponents</b> are the training "
        "images whose gradient points the same way (a training step on them lowers this test loss); its "
        "<b>opponents</b> point the other way (harmful for it). Each carries a map, by default the course's "
        f"recommended map ({html.escape(MAP_METHODS[DEFAULT_MAP_METHOD])}); the TFA methods show which of "
        "its pixels drive the score. Click <i>inspect</i> to compare maps side by side.</div>"
    )
    row1 = widgets.HBox([c["test_set"], c["test_index"], c["prev"], c["next"], c["pick_list"], c["pick"]],
                        layout=widgets.Layout(flex_flow="row wrap", align_items="center"))
    row2 = widgets.HBox([c["score"], c["label"], c["k"], c["method"]], layout=widgets.Layout(flex_flow="row wrap", align_items="center"))
    row3 = widgets.HBox([c["n_samples"], c["noise"], c["auto"], c["compute"]],
                        layout=widgets.Layout(flex_flow="row wrap", align_items="center"))
    row4 = widgets.HBox([c["sign"], c["channels"], c["opacity"]], layout=widgets.Layout(flex_flow="row wrap", align_items="center"))
    status = widgets.HBox([c["progress"], c["status"]], layout=widgets.Layout(align_items="center"))
    test_box = widgets.HBox([c["test_image"], c["test_info"]], layout=widgets.Layout(align_items="flex-start", margin="6px 0"))
    legend = widgets.HTML(f"<div style='font-size:11px;color:#444'>{OVERLAY_LEGEND}</div>")
    c["legend"] = legend
    c["proponents_title"] = widgets.HTML()
    c["opponents_title"] = widgets.HTML()
    ui = widgets.VBox(
        [header, row1, row2, row3, row4, status, c["message"], test_box, legend,
         c["proponents_title"], c["proponents"], c["opponents_title"], c["opponents"], c["detail"],
         c["neural_toggle"], c["neural"], c["index_info"]],
        layout=widgets.Layout(padding="4px"),
    )
    return ui
