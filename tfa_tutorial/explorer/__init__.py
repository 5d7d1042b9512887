"""05 · The interactive explorer of harmful training regions.

Modules (import from them directly; the course's public API is ``tfa_tutorial.__all__``):

- ``settings``     the explorer's settings and map menu
- ``state``        ExplorerState: state and logic, no widgets
- ``index_store``  the gradient index and its disk cache
- ``test_lists``   the flipped / misclassified / correct test images
- ``maps``         scores and maps the explorer shows
- ``results``      what the explorer returns
- ``neural``       the neural-feature view
- ``summaries``    counts over many test images; the protocol's pairs from the ranking
- ``compare``      notebook 07: the sensitivity test, TFA vs neural features in numbers
- ``render``       PNG tiles, legends, the static figure
- ``widgets``      the widgets and their layout
- ``view``         the thin ipywidgets view: callbacks, explore()
"""
