"""04 · How maps are tested.

Modules (import from them directly; the course's public API is ``tfa_tutorial.__all__``):

- ``metrics``       localisation, retrieval and one-step metrics
- ``pairs``         which (test, training) pairs are measured; tables
- ``evidence``      the localisation and retrieval protocol with controls; stored results
- ``controls``      the clean-model control on a notebook's own pairs; stored evidence as tables
- ``specificity``   the two-patch test-specificity experiment
- ``faithfulness``  one-step insertion/deletion curves
- ``sensitivity``   the SmoothGrad n × σ grid (is a map's failure a matter of tuning?)
- ``tables``        markdown tables of the stored evidence over seeds
- ``robustness``    the objections to the evidence: variants of score, model, pairs and setting
- ``verdict``       the robustness verdict: does any objection change the recommended map?
"""
