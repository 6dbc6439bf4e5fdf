"""A usage error Click finds (an unknown option, a bad or missing value, an extra argument) is one line on stderr in
bpcli's style, with Click's 'did you mean' and where the help is; exit 2, nothing on stdout (the error object
with --json)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from bpcli.cli.app import app

runner = CliRunner()

CASES = [
    (["train", "--epochs", "abc"], "error: --epochs: 'abc' is not an integer (bpcli train --help)"),
    (["gradcheck", "--eps", "x"], "error: --eps: 'x' is not a number (bpcli gradcheck --help)"),
    (["step", "-k", "1.5"], "error: --steps: '1.5' is not an integer (bpcli step --help)"),
    (["train", "--epoch", "3"],
     "error: --epoch: no such option (did you mean --epochs or --from-epoch?) (bpcli train --help)"),
    (["explain", "--wieght", "v1"], "error: --wieght: no such option (did you mean --weight?) (bpcli explain --help)"),
    (["runs", "--bogus"], "error: --bogus: no such option (bpcli runs --help)"),
    (["compare"], "error: missing argument RUN RUN... (bpcli compare --help)"),
    (["predict"], "error: missing argument RUN: a run folder, or latest for the newest in runs/ (bpcli predict --help)"),
    (["evaluate"], "error: missing argument RUN: a run folder, or latest for the newest in runs/ (bpcli evaluate --help)"),
    (["trian"], "error: no such command 'trian' (did you mean 'train'?) (bpcli --help)"),
    (["help", "trian"], "error: no such command 'trian' (did you mean 'train'?) (bpcli --help)"),  # as `bpcli trian`
    (["train", "a.yaml", "b", "c"], "error: unexpected extra argument: b c (bpcli train --help)"),
    (["train", "--epochs"], "error: --epochs: expects a value after it"),
]


@pytest.mark.parametrize("args, line", CASES, ids=[" ".join(a) for a, _ in CASES])
def test_a_usage_error_is_one_line_on_stderr_and_exit_2(args, line):
    r = runner.invoke(app, args)
    assert (2, "", [line]) == (r.exit_code, r.stdout, r.stderr.splitlines())


def test_a_usage_error_under_json_is_the_same_line_in_the_error_object():
    r = runner.invoke(app, ["train", "--epochs", "abc", "--json"])
    line = "--epochs: 'abc' is not an integer (bpcli train --help)"
    assert {"error": {"message": line, "exit_code": 2}} == json.loads(r.stdout)
    assert [f"error: {line}"] == r.stderr.splitlines()


def test_control_characters_in_an_unknown_option_are_shown_escaped():
    r = runner.invoke(app, ["show", "--x\x1b[31m"])
    assert 2 == r.exit_code and 1 == len(r.stderr.splitlines()) and "\x1b" not in r.stderr, repr(r.stderr)


def test_no_arguments_and_help_print_the_help_while_a_bad_command_is_one_line():
    for args in ([], ["--help"], ["train", "--help"]):  # no arguments is Click's NoArgsIsHelp: the help, not an error
        r = runner.invoke(app, args)
        assert 0 == r.exit_code and r.stdout.startswith("Usage: "), (args, r.output)
    r = runner.invoke(app, ["no-such-command"])
    assert (2, ["error: no such command 'no-such-command' (bpcli --help)"]) == (r.exit_code, r.stderr.splitlines())


def test_every_usage_line_names_its_arguments_in_capitals():
    """As the README's command table writes them: `init [PATH]`, `predict RUN [DATA]`."""
    import typer.main

    group = typer.main.get_command(app)
    lower = {}
    for name in group.commands:
        usage = runner.invoke(app, [name, "--help"]).stdout.splitlines()[0]
        words = usage.split("[OPTIONS]", 1)[1].replace("[", " ").replace("]", " ").replace("|", " ").split()
        lower.update({name: w for w in words if w != w.upper()})
    assert {} == lower


@pytest.mark.parametrize("args, same_as", [
    (["help"], ["--help"]), (["help", "train"], ["train", "--help"]), (["help", "gradcheck"], ["gradcheck", "--help"]),
    (["help", "help"], ["--help"]),
], ids=lambda a: " ".join(a))
def test_help_and_help_command_print_the_help_as_git_and_pip_take_them(args, same_as):
    """`bpcli help` said "no such command 'help'": it prints the main help, `help COMMAND` that command's, exit 0."""
    r, expected = runner.invoke(app, args), runner.invoke(app, same_as)
    assert (0, "") == (r.exit_code, r.stderr), r.output
    assert expected.stdout == r.stdout and r.stdout.startswith("Usage: ")

