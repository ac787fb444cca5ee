"""The numbered equations of the theory documentation (docs/theory/*.md) and the code's citations.

Every displayed equation of the theory pages carries an explicit tag ``\\tag{S.N}`` (S the section
of its page) preceded by the cross-reference target ``(eq-S-N)=``; the code cites equations as
``eq. (S.N)`` in its docstrings and comments.  These tests need no Sphinx build: they read the
Markdown sources, so a dangling citation fails ``make test`` (``make docs`` then checks the
``{eqn}`` cross-references again while building).
"""
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
THEORY = ROOT / "docs" / "theory"

#: equations defined today; numbers are never reused, so the count only grows
MIN_EQUATIONS = 92

TAG = re.compile(r"\\tag\{(\d+)\.(\d+)\}")
TARGET = re.compile(r"^\(eq-(\d+)-(\d+)\)=$")
TITLE = re.compile(r"^# (\d+)\. ", re.M)
# "eq. (2.3)", "eqs. (2.3), (2.4) and (3.10)", "eq. (6.3)-(6.7)"
CITATION = re.compile(r"\beqs?\.\s*((?:\(\d+\.\d+\)(?:\s*(?:,|and|-|–|to)\s*)?)+)")
NUMBER = re.compile(r"\((\d+\.\d+)\)")
ROLE = re.compile(r"\{eqn\}`([^`]*)`")


def defined_equations():
    """{"S.N": page} for every tagged equation; checks the page layout on the way."""
    found = {}
    for page in sorted(THEORY.glob("*.md")):
        text = page.read_text(encoding="utf-8")
        lines = text.splitlines()
        section = TITLE.search(text)
        for i, line in enumerate(lines):
            for s, n in TAG.findall(line):
                number = f"{s}.{n}"
                assert number not in found, f"{number} tagged twice ({found.get(number)}, {page.name})"
                found[number] = page.name
                assert section and section.group(1) == s, \
                    f"{page.name}: equation {number} is not numbered in its page's section"
                # the target (eq-S-N)= sits on the line before the equation's opening line
                start = max(j for j in range(i + 1) if lines[j].startswith(r"\begin{equation*}"))
                target = TARGET.match(lines[start - 1].strip())
                assert target and target.groups() == (s, n), \
                    f"{page.name}: equation {number} lacks its target (eq-{s}-{n})= before it"
    return found


def cited_in_code():
    """{"S.N": [file:line, ...]} for every equation number cited in the package."""
    cited = {}
    for path in sorted((ROOT / "dmft").rglob("*.py")):
        for k, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for group in CITATION.findall(line):
                for number in NUMBER.findall(group):
                    cited.setdefault(number, []).append(f"{path.relative_to(ROOT)}:{k}")
    return cited


def test_theory_defines_its_equations():
    found = defined_equations()
    assert len(found) >= MIN_EQUATIONS, f"only {len(found)} numbered equations"
    by_section = {}
    for number in found:
        s, n = map(int, number.split("."))
        by_section.setdefault(s, []).append(n)
    assert sorted(by_section) == list(range(1, 9)), sorted(by_section)
    for s, ns in by_section.items():          # numbered 1, 2, ... within each section
        assert sorted(ns) == list(range(1, len(ns) + 1)), (s, sorted(ns))


def test_every_equation_cited_in_the_code_exists():
    found = defined_equations()
    missing = {n: where for n, where in cited_in_code().items() if n not in found}
    assert not missing, f"cited in the code but not defined in docs/theory: {missing}"


def test_every_equation_referenced_in_the_docs_exists():
    found = defined_equations()
    missing = []
    for page in sorted((ROOT / "docs").rglob("*.md")):
        if "_build" in page.relative_to(ROOT).parts:
            continue
        for number in ROLE.findall(page.read_text(encoding="utf-8")):
            if number.strip() not in found:
                missing.append(f"{page.relative_to(ROOT)}: {number}")
    assert not missing, missing


def test_citation_pattern():
    """The pattern the code uses is the one the test reads."""
    text = "see eq. (2.3); eqs. (3.8), (3.9) and (3.10); eq. (6.3)-(6.7); not (1.1) alone"
    numbers = [n for g in CITATION.findall(text) for n in NUMBER.findall(g)]
    assert numbers == ["2.3", "3.8", "3.9", "3.10", "6.3", "6.7"]


def test_documentation_does_not_cite_the_developers_notes():
    """User-visible text (the documentation and the notebooks it renders) is self-contained."""
    needle = "THEORY" + ".md"
    generated = (ROOT / "docs" / "_build", ROOT / "docs" / "notebooks")   # build outputs, copies
    hits = [str(p.relative_to(ROOT)) for folder in ("docs", "notebooks")
            for p in (ROOT / folder).rglob("*")
            if p.is_file() and p.suffix in (".md", ".ipynb", ".py", ".rst")
            and not any(g in p.parents for g in generated)
            and needle in p.read_text(encoding="utf-8", errors="replace")]
    assert not hits, hits
