"""Shared infrastructure every step uses.

Modules (import from them directly; the course's public API is ``tfa_tutorial.__all__``):

- ``validation``  input checks: clear errors, never a plausible number from bad input
- ``streaming``   the one chunked loop with an optional progress bar
- ``cache``       the on-disk cache: location, atomic writes, checkpoints
- ``mode``        fast mode or the full setting: the one rule
- ``hashing``     stable content hashes of tensors and settings (cache keys)
"""
