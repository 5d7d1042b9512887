"""01 · Data and the planted patch.

Modules (import from them directly; the course's public API is ``tfa_tutorial.__all__``):

- ``datasets``  image data sets as tensors (Fashion-MNIST offline), subsets
- ``cifar10``   CIFAR-10 from its pickle batches
- ``patches``   patch shortcuts with a known ground-truth mask
"""
