"""Build the optional C accelerators (everything else is in pyproject.toml): the
recorder's (``tracelens.record._speedups``) and the happens-before walk's
(``tracelens.analyze.hb._clockwalk``).

``optional=True``: when one cannot be compiled, the install still succeeds and that
part runs its pure-Python path.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "tracelens.record._speedups",
            sources=["tracelens/record/_speedups.c"],
            optional=True,
        ),
        Extension(
            "tracelens.analyze.hb._clockwalk",
            sources=["tracelens/analyze/hb/_clockwalk.c"],
            optional=True,
        ),
    ]
)
