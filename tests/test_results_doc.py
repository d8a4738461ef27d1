"""docs/results.py: generated blocks are filled in place, and --check finds changed numbers."""

import importlib.util

import pytest
from conftest import REPO

spec = importlib.util.spec_from_file_location("results_doc", REPO / "docs" / "results.py")
results_doc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(results_doc)

DOC = """# Doc
text by hand
<!-- generated: demo/table -->
| a | b |
- **Commit**: abc1234.
<!-- end -->
more text
"""


def test_a_block_is_refilled_and_checked_without_its_provenance(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text(DOC)
    # same numbers, another commit: nothing differs; the check writes nothing
    assert results_doc.fill(doc, {"demo/table": "| a | b |\n- **Commit**: fff0000."}, True) == []
    assert doc.read_text() == DOC
    # other numbers: one unified diff naming the block
    [diff] = results_doc.fill(doc, {"demo/table": "| a | c |"}, check=True)
    assert "doc.md: demo/table" in diff and "-| a | b |" in diff and "+| a | c |" in diff
    # filling replaces the block's body and keeps the text around it
    assert results_doc.fill(doc, {"demo/table": "| x |"}) == []
    assert doc.read_text() == DOC.replace("| a | b |\n- **Commit**: abc1234.\n", "| x |\n")
    with pytest.raises(SystemExit, match="no block <!-- generated: demo/other -->"):
        results_doc.fill(doc, {"demo/other": "x"})
