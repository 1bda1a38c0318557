"""The command line's house rules: every user or usage error exits 2 with one line
``Error: ...`` on stderr and no traceback, whichever layer (click, a command, the library)
found it."""
from __future__ import annotations

import pytest

from ganbench.testing import one_error_line
from ganbench.testing import run_cli as run




@pytest.mark.parametrize("args, message", [
    (["no-such-command"], "No such command 'no-such-command'"),  # click usage error
    (["models", "--no-such-option"], "No such option '--no-such-option'"),  # click usage error
    (["models", "show", "dcgna"], "unknown model 'dcgna'. Did you mean 'dcgan'?"),  # GanbenchError
])
def test_usage_and_user_errors_exit_2(args, message):
    assert message in one_error_line(run(*args))


def test_click_exceptions_raised_by_commands_exit_2(tmp_path):
    """click.ClickException exits 1 by default; a command's own refusal is a user error."""
    existing = tmp_path / "rows.json"
    existing.write_text("[]")
    res = run("eval", "-m", "fid", "-i", tmp_path, "-r", tmp_path, "--json", existing)
    assert one_error_line(res) == f"Error: {existing} exists; pass --force to overwrite it"
    assert existing.read_text() == "[]"
