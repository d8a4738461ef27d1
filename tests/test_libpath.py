"""Rule scripts import this checkout's library even where it is not installed (--sdm conda)."""

import subprocess
import sys

from conftest import REPO


def test_scripts_find_the_library_without_an_install():
    # -S: no site-packages at all, as in a conda env holding only third-party packages.
    code = "import _libpath, medimbalance, medimbalance.registry; print(medimbalance.__file__)"
    done = subprocess.run(
        [sys.executable, "-S", "-c", code],
        cwd=REPO / "workflow" / "scripts",
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == str(REPO / "src" / "medimbalance" / "__init__.py")


def test_every_script_imports_the_shim_first():
    for script in (REPO / "workflow" / "scripts").glob("*.py"):
        if script.name.startswith("_"):
            continue
        code = [line for line in script.read_text().splitlines() if line.startswith("import ")]
        assert code and code[0].startswith("import _libpath"), script.name
