"""The README's commands are the ones CI runs."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_block(heading: str) -> str:
    """The first ```bash block after the line containing ``heading``."""
    text = (ROOT / "README.md").read_text()
    start = text.index(heading)
    return re.search(r"```bash\n(.*?)\n```", text[start:], re.S).group(1)


def test_ci_runs_the_readme_test_command_verbatim():
    command = readme_block("Run the whole test suite")
    assert "pytest" in command and "\n" not in command
    r = subprocess.run(["bash", str(ROOT / ".ci" / "run"), "--print"], capture_output=True,
                       text=True, check=True)
    assert r.stdout == command + "\n"
    # .ci/run executes the command it printed, and nothing else runs tests.
    script = (ROOT / ".ci" / "run").read_text()
    assert 'bash -euo pipefail -c "$command"' in script
    code = [line for line in script.splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in code if "pytest" in line]
