"""Build the optional C accelerator of the recorder (everything else is in pyproject.toml).

``optional=True``: when it cannot be compiled, the install still succeeds and the
recorder runs its pure-Python path.
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "tracelens.record._speedups",
            sources=["tracelens/record/_speedups.c"],
            optional=True,
        )
    ]
)
