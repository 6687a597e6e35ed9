"""Every public function, class and method has a docstring (the API is pydoc-readable)."""
import inspect

import jaxsc
import jaxsc.plot

MODULES = [jaxsc, jaxsc.data, jaxsc.models, jaxsc.losses, jaxsc.train, jaxsc.cluster, jaxsc.metrics, jaxsc.presets,
           jaxsc.plot]


def test_public_api_has_docstrings():
    missing = []
    for module in MODULES:
        assert inspect.getdoc(module), module.__name__
        for name in module.__all__:
            obj = getattr(module, name)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            if not inspect.getdoc(obj):
                missing.append(f"{module.__name__}.{name}")
            if inspect.isclass(obj):
                missing += [f"{module.__name__}.{name}.{attr}" for attr, value in vars(obj).items()
                            if inspect.isfunction(value) and not attr.startswith("_") and not inspect.getdoc(value)]
    assert not missing, missing
