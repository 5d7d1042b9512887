"""Teaching aids.

Modules (import from them directly; the course's public API is ``tfa_tutorial.__all__``):

- ``plots``        the one figure style for images and maps
- ``claims``       checked claims at the end of notebooks
- ``run_times``    measured notebook run times
- ``course_plan``  the course plan a teacher reads
- ``guide``        the teacher's guide's numbers, rendered from docs/results.json
"""
