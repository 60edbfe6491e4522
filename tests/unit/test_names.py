"""Names that become paths are checked: nothing is written outside the baselines or reports root."""

from __future__ import annotations

import pytest

from perfsuite.cli import main
from perfsuite.matrix.tier import MatrixError, load_matrix
from perfsuite.store.baselines import BaselineStore
from perfsuite.store.names import UnsafeName, inside, safe_name
from tests.conftest import write_matrix


@pytest.mark.parametrize("name", ["../../x", "/tmp/x", "a/b", "..", ".hidden", "", "a\\b", "x" * 200])
def test_unsafe_names_are_refused_naming_the_field(name):
    with pytest.raises(UnsafeName, match=r"^\[tier\] name "):
        safe_name(name, "[tier] name")


@pytest.mark.parametrize("name", ["cpu", "gpu-check", "cpu-intel-r-xeon-r-processor-f6m207-2c", "my_tier.v2"])
def test_safe_names_pass(name):
    assert safe_name(name, "x") == name


@pytest.mark.parametrize("name", ["../../escape", "/tmp/abs"])
def test_a_matrix_tier_name_that_would_leave_the_folder_is_a_matrix_error(tmp_path, name):
    path = write_matrix(tmp_path)
    path.write_text(path.read_text().replace('name = "unit"', f'name = "{name}"'))
    with pytest.raises(MatrixError, match=r"unit\.toml: \[tier\] name .* is not a safe name"):
        load_matrix(str(path))


def test_fit_machine_traversal_is_exit_2_and_writes_nothing(tmp_path, capsys):
    assert main(["fit", "--machine", "../..", "--baselines", str(tmp_path / "bl")]) == 2
    assert "--machine '../..' is not a safe name" in capsys.readouterr().err
    assert not any(tmp_path.rglob("costmodel.json"))


def test_store_refuses_variant_ids_and_keys_that_leave_its_root(tmp_path):
    with pytest.raises(UnsafeName, match="machine key"):
        BaselineStore(tmp_path, "../other", "cpu")
    store = BaselineStore(tmp_path, "cpu-x-2c", "cpu")
    with pytest.raises(UnsafeName, match="variant id"):
        store.path_for("../../../etc/passwd")


def test_inside_resolves_dot_dot_parts(tmp_path):
    root = tmp_path / "root"
    assert inside(root, root / "cpu" / "a.json")
    with pytest.raises(UnsafeName, match="lies outside"):
        inside(root, root / "cpu" / ".." / ".." / "a.json")
    with pytest.raises(UnsafeName, match="lies outside"):
        inside(root, tmp_path / "root-sibling" / "a.json")
