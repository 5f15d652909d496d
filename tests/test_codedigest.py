"""The code digest a rule carries: the script, the package modules it imports, and their assets."""

from filterlens.codedigest import code_digest, modules_used


def package(tmp_path):
    pkg = tmp_path / "filterlens"
    (pkg / "assets" / "page").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "page.py").write_text("from . import files\n")
    (pkg / "files.py").write_text("")
    (pkg / "other.py").write_text("")
    (pkg / "assets" / "page" / "page.js").write_text("draw();\n")
    (pkg / "assets" / "other").mkdir()
    (pkg / "assets" / "other" / "x.css").write_text("")
    (tmp_path / "write_page.py").write_text("from filterlens import page\n")
    (tmp_path / "write_other.py").write_text("from filterlens.other import thing\n")
    return pkg


def test_a_module_brings_its_assets_and_nothing_else(tmp_path):
    pkg = package(tmp_path)
    used = [p.relative_to(pkg).as_posix() for p in modules_used(tmp_path / "write_page.py", pkg)]
    assert used == ["__init__.py", "assets/page/page.js", "files.py", "page.py"]


def test_editing_an_asset_changes_the_digest_of_the_scripts_that_use_it(tmp_path):
    pkg = package(tmp_path)
    page, other = tmp_path / "write_page.py", tmp_path / "write_other.py"
    before = code_digest(page, pkg), code_digest(other, pkg)
    (pkg / "assets" / "page" / "page.js").write_text("draw(); draw();\n")
    after = code_digest(page, pkg), code_digest(other, pkg)
    assert after[0] != before[0] and after[1] == before[1]
