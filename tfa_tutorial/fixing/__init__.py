"""06 · From diagnosis to fix.

Modules (import from them directly; the course's public API is ``tfa_tutorial.__all__``):

- ``flagging``  finding the training examples behind shortcut errors
- ``repair``    removing or repairing training examples
- ``retrain``   fix, retrain and measure again
"""
