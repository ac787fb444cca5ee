"""Every public function, class and method has a numpydoc docstring with its Parameters and
Returns, checked by numpydoc's own validation.  "Public" is what the API reference documents
(docs/api.rst): the objects it names and the public members of the classes it shows."""
import dataclasses
import importlib
import inspect
import pathlib
import re

import pytest

#: a documentation check (numpydoc imports and inspects every object): in the full tier
pytestmark = pytest.mark.slow

numpydoc_validate = pytest.importorskip("numpydoc.validate")
docscrape = pytest.importorskip("numpydoc.docscrape")

ROOT = pathlib.Path(__file__).resolve().parents[1]
#: numpydoc checks enforced: no docstring (GL08), a parameter undocumented (PR01) or documented
#: but absent (PR02), a value returned without a Returns section (RT01), no summary (SS01)
CHECKS = {"GL08", "PR01", "PR02", "RT01", "SS01"}


def _resolve(name):
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(name)


def public_api():
    """Dotted names of the documented functions, classes and public methods."""
    text = (ROOT / "docs" / "api.rst").read_text()
    current, module, names = "dmft", None, []
    for line in text.splitlines():
        if m := re.match(r"\.\. currentmodule:: (\S+)", line):
            current = m.group(1)
        elif m := re.match(r"\.\. auto(function|class|exception):: (\S+)", line):
            names.append(m.group(2) if "." in m.group(2) else f"{current}.{m.group(2)}")
        elif m := re.match(r"\.\. automodule:: (\S+)", line):
            module = m.group(1)
            continue
        elif (m := re.match(r"\s+:members: (.+)", line)) and module:
            names += [f"{module}.{n.strip()}" for n in m.group(1).split(",")]
        if line.startswith(".. "):
            module = None
    out = []
    for name in names:
        obj = _resolve(name)
        if inspect.isclass(obj) and issubclass(obj, Warning | Exception):
            out.append(name)
            continue
        out.append(name)
        if inspect.isclass(obj):              # its public methods, inherited ones included
            seen = set()
            for klass in obj.__mro__:
                if not klass.__module__.startswith("dmft"):
                    continue
                for attr, member in vars(klass).items():
                    if attr.startswith("_") or attr in seen or not (
                            inspect.isfunction(member)
                            or isinstance(member, (classmethod, staticmethod))):
                        continue
                    seen.add(attr)
                    out.append(f"{name}.{attr}")
    return sorted(set(out))


API = public_api()


def test_the_api_is_found():
    assert len(API) >= 40 and "dmft.solve" in API and "dmft.Result.save" in API


@pytest.mark.parametrize("name", API)
def test_numpydoc(name):
    obj = _resolve(name)
    checks = CHECKS
    if inspect.isclass(obj) and issubclass(obj, Warning | Exception):
        checks = {"GL08"}
    elif dataclasses.is_dataclass(obj):
        # a result type: its fields are documented as Attributes, not as constructor Parameters
        checks = CHECKS - {"PR01"}
        documented = {a.name for klass in obj.__mro__ if dataclasses.is_dataclass(klass)
                      for a in docscrape.ClassDoc(klass)["Attributes"]}
        documented |= {w for a in list(documented) for w in re.split(r",\s*", a)}
        missing = {f.name for f in dataclasses.fields(obj)} - documented
        assert not missing, f"fields not in an Attributes section: {sorted(missing)}"
    errors = [(c, m) for c, m in numpydoc_validate.validate(name)["errors"] if c in checks]
    assert not errors, errors
