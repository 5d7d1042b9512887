"""02 · Models, training and the shortcut experiment.

Modules (import from them directly; the course's public API is ``tfa_tutorial.__all__``):

- ``models``      SmallCNN, ResNet9, softmax regression
- ``train``       training, prediction, shortcut measurement
- ``experiment``  the course's shortcut experiment in one cached call
"""
