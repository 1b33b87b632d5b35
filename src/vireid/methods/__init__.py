"""One package per paper. Importing :mod:`vireid.methods` registers every built-in method's parts.

Each package (``agw``, ``caj``, ``mrda``, ``dan``, ``cmtr``, ``sap``, ...) holds its model(s), its own losses and
augmentations, its trainer hooks if its step differs, its config section, and a module docstring
naming the paper, the seed section and the equations; its ``__init__`` makes one
:func:`register_method` call. The command line and the Python API import this package; the core
(``data``, ``models``, ``losses``, ``engine``, ``evaluation``, ``rerank``) never does.

A method living outside vireid registers the same way, from its own package::

    from vireid.methods import Method, register_method
    register_method(Method(name="toy", paper="...", seed="...", models={"toy": ToyModel}))
"""

from vireid.methods.registry import METHODS, Method, describe_methods, register_method, unregister_method

# The built-in methods: one import each (each package registers itself).
from vireid.methods import agw  # noqa: E402,F401  isort: skip
from vireid.methods import caj  # noqa: E402,F401  isort: skip
from vireid.methods import mrda  # noqa: E402,F401  isort: skip
from vireid.methods import dan  # noqa: E402,F401  isort: skip
from vireid.methods import mos  # noqa: E402,F401  isort: skip
from vireid.methods import mcma  # noqa: E402,F401  isort: skip
from vireid.methods import maum  # noqa: E402,F401  isort: skip
from vireid.methods import cmlsp  # noqa: E402,F401  isort: skip
from vireid.methods import cmtr  # noqa: E402,F401  isort: skip
from vireid.methods import sap  # noqa: E402,F401  isort: skip
from vireid.methods import spot  # noqa: E402,F401  isort: skip
from vireid.methods import hicmd  # noqa: E402,F401  isort: skip
from vireid.methods import nformer  # noqa: E402,F401  isort: skip
from vireid.methods import msclnet  # noqa: E402,F401  isort: skip

__all__ = ["METHODS", "Method", "describe_methods", "register_method", "unregister_method"]
