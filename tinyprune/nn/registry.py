"""Registries of named types (layers, weight transforms) that specs and checkpoints refer to.

A spec names a type (``{"type": "Linear", ...}``); a registry maps the name to the class. Types
defined outside the engine (a factorized layer in ``tinyprune.lowrank``, a fake-quantization
transform in ``tinyprune.quantize``) register themselves when their module is imported, and
their specs also record that module (``"module": "tinyprune.lowrank.layers"``), so loading a
checkpoint imports it on demand. Only modules inside the ``tinyprune`` package are imported
that way: a checkpoint cannot make the loader import arbitrary code.
"""

from __future__ import annotations

import importlib
import re

_MODULE_NAME = re.compile(r"tinyprune(\.[A-Za-z_][A-Za-z0-9_]*)+")


class Registry:
    """Name -> class, for the ``"type"`` field of specs.

    Parameters
    ----------
    what : str
        What the registry holds ("layer", "weight transform"), used in error messages.
    """

    def __init__(self, what: str):
        self.what = what
        self._types: dict[str, type] = {}

    def register(self, cls: type) -> type:
        """Register ``cls`` under its class name (usable as a decorator); returns ``cls``.

        Raises
        ------
        ValueError
            Another class is registered under the same name.
        """
        if not isinstance(cls, type):
            raise TypeError(f"register: expected a class, got {cls!r}")
        name = cls.__name__
        old = self._types.get(name)
        if old is not None and old is not cls and (old.__module__, old.__qualname__) != (
                cls.__module__, cls.__qualname__):
            raise ValueError(f"register: a {self.what} type named {name!r} is already "
                             f"registered ({old.__module__}.{old.__qualname__})")
        self._types[name] = cls
        return cls

    def __contains__(self, name) -> bool:
        return name in self._types

    def names(self) -> list[str]:
        return sorted(self._types)

    def get(self, name, module=None) -> type:
        """The class registered as ``name``; imports ``module`` first when it is a tinyprune
        module and ``name`` is not registered yet.

        Raises
        ------
        ValueError
            Unknown name (the message lists the known ones), or a ``module`` outside tinyprune.
        """
        if not isinstance(name, str):
            raise ValueError(f"{self.what} spec: 'type' must be a string, got {name!r}")
        if name not in self._types and module is not None:
            if not isinstance(module, str) or not _MODULE_NAME.fullmatch(module):
                raise ValueError(f"{self.what} spec: 'module' must name a tinyprune module, "
                                 f"got {module!r}")
            try:
                importlib.import_module(module)
            except ImportError as exc:
                raise ValueError(f"{self.what} spec: cannot import {module!r} for type "
                                 f"{name!r}: {exc}") from None
        if name not in self._types:
            raise ValueError(f"{self.what} spec: unknown {self.what} type {name!r}; known: "
                             f"{self.names()}")
        return self._types[name]

    def module_of(self, cls: type, engine_module: str) -> str | None:
        """The module a spec must record for ``cls`` (None for the engine's own types)."""
        return None if cls.__module__ == engine_module else cls.__module__
