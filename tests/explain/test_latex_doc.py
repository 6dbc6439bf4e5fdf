"""explain --format latex --standalone: a document that compiles with pdflatex and fits the page (issue 13)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from typer.testing import CliRunner

from bpcli.cli.app import app
from bpcli.config.loader import builtin_config_dir

runner = CliRunner()

# (config, explain arguments): the seed with two weights and every part; the widest sample tables (iris: 4
# inputs, 3 outputs); the longest chain and sums (deep_relu: 7 layers of 10 nodes); the longest update (xor: Adam)
CASES = {
    "seed": ("seed", ["-w", "w11,v1", "--paths", "--sample", "2"]),
    "iris": ("iris", ["-w", "w11", "--paths", "--sample", "3"]),
    "deep_relu": ("deep_relu", ["-w", "w11", "--paths", "--sample", "1"]),
    "deep_sigmoid": ("deep_sigmoid", ["-w", "v11", "--sample", "2"]),
    "xor": ("xor", ["-w", "v1,w11"]),  # Adam: the update's m, v, bias corrections and the step
}

# What each package defines, as far as these documents go (written out from the LaTeX and amsmath manuals).
KERNEL = {
    "documentclass", "usepackage", "begin", "end", "section", "subsection", "par", "medskip", "setlength",
    "parindent", "parskip", "baselineskip", "hline", "multicolumn", "texttt", "textbackslash", "small",
    "footnotesize", "scriptsize", "frac", "partial", "cdot", "times", "leftarrow", "to", "sum", "left", "right",
    "quad", "qquad", "vdots", "dots", "ldots", "mathrm", "eta", "lambda", "mu", "beta", "epsilon", "varepsilon",
    "sqrt", "hat", "prime", "_", "%", "&", "#", "$", "{", "}", ",", ";", "!", "\\", " ",
}
PACKAGES = {"amsmath": {"text", "tag", "tfrac", "dfrac", "align*"}, "geometry": set()}
ENVIRONMENTS = {"document", "tabular"}


def _doc(case: str) -> str:
    config, args = CASES[case]
    res = runner.invoke(app, ["explain", str(builtin_config_dir() / f"{config}.yaml"), *args, "--format", "latex",
                              "--standalone"])
    assert res.exit_code in (0, 3), res.output
    return res.stdout


@pytest.fixture(scope="module")
def docs() -> dict[str, str]:
    return {case: _doc(case) for case in CASES}


def _visible_length(tex: str) -> int:
    """A rough count of the glyphs a line of math shows: a fraction counts its longer part, a subscript or
    superscript its characters, a control word one glyph; braces, & and spaces nothing."""
    frac = re.compile(r"\\frac\{((?:[^{}]|\{[^{}]*\})*)\}\{((?:[^{}]|\{[^{}]*\})*)\}")
    while frac.search(tex):
        tex = frac.sub(lambda m: max(m.group(1), m.group(2), key=lambda s: len(_strip(s))), tex)
    return len(_strip(tex))


def _strip(tex: str) -> str:
    tex = re.sub(r"\\(text|mathrm)\{([^{}]*)\}", r"\2", tex)
    tex = re.sub(r"\\(left|right|quad|,|;|!)", "", tex)
    tex = re.sub(r"\\[A-Za-z]+", "#", tex)
    return re.sub(r"[{}&\s]", "", tex)


def _align_rows(doc: str) -> list[str]:
    return [row for block in re.findall(r"\\begin\{align\*\}\n(.*?)\n\\end\{align\*\}", doc, re.S)
            for row in block.split(" \\\\\n")]


def test_the_document_is_well_formed(docs):
    for case, doc in docs.items():
        lines = doc.strip().splitlines()
        assert lines[0].startswith(r"\documentclass"), case
        assert r"\end{document}" == lines[-1], case
        stack = []
        for kind, env in re.findall(r"\\(begin|end)\{([^}]+)\}", doc):
            if kind == "begin":
                stack.append(env)
            else:
                assert stack and stack.pop() == env, (case, env)
        assert [] == stack, case
        body = re.sub(r"\\[{}]", "", doc)
        depth = 0
        for ch in body:
            depth += {"{": 1, "}": -1}.get(ch, 0)
            assert depth >= 0, case
        assert 0 == depth, case


def test_every_macro_and_environment_comes_from_the_preamble(docs):
    for case, doc in docs.items():
        loaded = set(re.findall(r"\\usepackage(?:\[[^]]*\])?\{([^}]+)\}", doc))
        assert loaded <= set(PACKAGES), case
        known = KERNEL.union(*(PACKAGES[p] for p in loaded))
        body = re.sub(r"^%.*$", "", doc, flags=re.M)
        macros = set(re.findall(r"\\([A-Za-z]+)", body)) | set(re.findall(r"\\([^A-Za-z])", body))
        assert macros <= known, (case, macros - known)
        envs = set(re.findall(r"\\begin\{([^}]+)\}", body))
        assert envs <= ENVIRONMENTS | known, (case, envs - ENVIRONMENTS - known)


def test_align_rows_are_short_enough_for_the_page(docs):
    widest = {}
    for case, doc in docs.items():
        rows = _align_rows(doc)
        assert rows, case
        widest[case] = max(_visible_length(r) for r in rows)
        for r in rows:
            assert _visible_length(r) <= 80, (case, r)
    assert widest["deep_relu"] > 60  # the long sum is there, broken into rows that use the width


def test_wide_tables_are_set_smaller_or_split(docs):
    """Each table's widest cells, at about 5 pt a glyph (4.5 in \\small, 4 in \\footnotesize) plus 12 pt between
    columns, fit the 16 cm (455 pt) text width, give or take this rough count's 5%; iris's 15 columns need
    more than one table (4 inputs, y and y' of 3 outputs, 3 factors, the product, and i)."""
    glyph = {"": 5.0, r"\small": 4.5, r"\footnotesize": 4.0}
    for case, doc in docs.items():
        for size, body in re.findall(r"\{(\\small|\\footnotesize)?\n?\\begin\{tabular\}\{r+\}\n(.*?)\\end\{tabular\}",
                                     doc, re.S):
            rows = [ln.removesuffix(r" \\").split(" & ") for ln in body.splitlines()
                    if not ln.startswith((r"\hline", r"\multicolumn"))]
            cols = len(rows[0])
            width = sum(max(_visible_length(r[k].replace("$", "")) for r in rows) * glyph[size] + 12 for k in range(cols))
            assert width <= 480, (case, size, cols, width)
    iris = re.findall(r"\\begin\{tabular\}\{(r+)\}", docs["iris"])
    assert len(iris) >= 2
    assert 14 == sum(len(s) - 1 for s in iris)  # every column once, beside the sample number


def test_standalone_needs_the_latex_format():
    res = runner.invoke(app, ["explain", "-w", "w11", "--standalone"])
    assert 2 == res.exit_code
    assert "--format latex" in res.stderr
    frag = runner.invoke(app, ["explain", "-w", "w11", "--format", "latex"])
    assert r"\documentclass" not in frag.stdout and r"\begin{align*}" in frag.stdout


@pytest.mark.skipif(shutil.which("pdflatex") is None, reason="pdflatex is not installed "
                    "(apt-get install texlive-latex-base)")
def test_the_document_compiles_with_pdflatex_and_nothing_sticks_out(docs, tmp_path):
    for case, doc in docs.items():
        (tmp_path / f"{case}.tex").write_text(doc)
        done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", f"{case}.tex"],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)
        log = (tmp_path / f"{case}.log").read_text(errors="replace")
        assert 0 == done.returncode, (case, log[-2000:])
        assert (tmp_path / f"{case}.pdf").stat().st_size > 1000
        assert "Overfull \\hbox" not in log, (case, re.findall(r"Overfull \\hbox.*", log))


# --- user text in the document: names, classes and the config's name reach LaTeX only escaped ---------------

HOSTILE_TEX = {
    "version": 1,
    "name": "n\\input{/etc/hostname} $x$ & # ^^5cinput _ % ~ {\n\\end{document}",
    "inputs": ["a\\input /etc/hostname ", "b}$\\def\\x{1}\x07~^^M", "^^5cwrite18{touch X}\\csname", "größe 😀"],
    "layers": [{"size": 2, "activation": {"name": "s\\input{/etc/passwd}", "f": "z / (1 + abs(z))",
                                          "df": "1 / (1 + abs(z))**2"}},
               {"size": 2, "activation": "softmax"}],
    "loss": "cross_entropy",
    "data": {"x": [[0, 0, 1, 2], [0, 1, 0, 1], [1, 0, 0, 0], [1, 1, 1, 3]], "y": [[1, 0], [0, 1], [0, 1], [1, 0]],
             "classes": ["no}\\catcode`\\{=12", "yes&\\\\\\hline$"]},
    "train": {"epochs": 5},
}
# every control word a document may hold: the preamble's, the maths bpcli writes, and the escaper's own
ESCAPER = {"textbackslash", "backslash", "textless", "textgreater", "textbar", "tilde", "hat", "text", "^", "~"}


def test_tex_escape_prints_every_special_character_and_runs_nothing():
    from bpcli.explain.result import tex_escape, tex_symbol
    assert r"a\textbackslash{}b\{c\}\$\&\#\^{}\_\%\~{}\textless{}\textbar{}" == tex_escape("a\\b{c}$&#^_%~<|")
    assert r"a\backslash{}b\{c\}\$\&\#\hat{}\_\%\tilde{}\ <|" == tex_escape("a\\b{c}$&#^_%~ <|", math=True)
    assert "x y? z" == tex_escape("x\ny\x07 z")  # a line end is a space, a control character a ?
    assert r"gr\text{ö}\text{ß}e\ [U+1F600]" == tex_escape("größe 😀", math=True)
    assert r"\mathrm{a\backslash{}input\ /etc/hostname}" == tex_symbol("a\\input /etc/hostname")
    assert r"\mathrm{age}" == tex_symbol("age") and "w_{11}" == tex_symbol("w11")
    assert r"\mathrm{[U+0663]}" == tex_symbol("\u0663")  # an Arabic-Indic 3 is not a number to LaTeX


def test_hostile_names_reach_latex_only_as_escaped_text(tmp_path):
    import yaml
    config = tmp_path / "hostile.yaml"
    config.write_text(yaml.safe_dump(HOSTILE_TEX))
    res = runner.invoke(app, ["explain", str(config), "-w", "w11,v11", "--paths", "--format", "latex", "--standalone"])
    assert res.exit_code in (0, 3), res.output
    doc = res.stdout
    macros = set(re.findall(r"\\([A-Za-z]+)", doc)) | set(re.findall(r"\\([^A-Za-z])", doc))
    known = KERNEL | PACKAGES["amsmath"] | {"documentclass", "usepackage"} | ESCAPER
    assert macros <= known, macros - known  # no \input, \def, \csname, \catcode, \write of the user's
    assert "^^" not in doc  # TeX would read ^^5c as a backslash
    assert 1 == doc.count(r"\end{document}")
    assert r"\mathrm{a\backslash{}input\ /etc/hostname\ }" in doc
    assert r"\texttt{n\textbackslash{}input\{/etc/hostname\} \$x\$ \& \# \^{}\^{}5cinput \_ \% \~{} \{ " \
        r"\textbackslash{}end\{document\}}" in doc
    if shutil.which("pdflatex") is None:
        pytest.skip("pdflatex is not installed (apt-get install texlive-latex-base): the escaping is checked above")
    (tmp_path / "hostile.tex").write_text(doc)
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape",
                           "hostile.tex"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    log = (tmp_path / "hostile.log").read_text(errors="replace")
    assert 0 == done.returncode, log[-2000:]
    assert "(/etc/hostname)" not in log and "(/etc/passwd)" not in log  # pdflatex read no file of the user's
    assert not (tmp_path / "X").exists()


def test_hostile_names_reach_markdown_only_as_text(tmp_path):
    """explain --format markdown: a name with backticks, HTML, a table bar or a blank line stays text."""
    import yaml
    from markdown_it import MarkdownIt
    hostile = {**HOSTILE_TEX, "name": "net` <img src=x onerror=alert(1)> `x\n\n# heading",
               "inputs": ["a|b", "``<script>alert(1)</script>``", "c\n\n| d |", "[link](http://x)"]}
    config = tmp_path / "hostile.yaml"
    config.write_text(yaml.safe_dump(hostile))
    res = runner.invoke(app, ["explain", str(config), "-w", "w11", "--paths", "--format", "markdown"])
    assert res.exit_code in (0, 3), res.output
    html = MarkdownIt("commonmark").enable("table").render(res.stdout)
    assert "<img" not in html and "<script" not in html and "<a href" not in html
    assert "<h1>" not in html  # no heading of the name's
    tables = re.findall(r"<table>(.*?)</table>", html, re.S)
    assert tables
    for table in tables:
        rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)
        widths = {len(re.findall(r"<t[hd][ >]", r)) for r in rows}
        assert 1 == len(widths), widths  # every row as wide as the head: no bar of a name split a cell
    assert "<code>a|b</code>" in html and "<code>``&lt;script&gt;alert(1)&lt;/script&gt;``</code>" in html
