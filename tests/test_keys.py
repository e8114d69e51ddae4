"""`geomtoy keys` and docs/keys.md: generated from the field list, and up to date."""

from pathlib import Path

from geomtoy import cli, sae_spec, spec
from geomtoy.sae import sweep as sae_sweep
from geomtoy.sweep import keys

ROOT = Path(__file__).resolve().parent.parent


SAE = keys.SAE_KEYS


def test_the_sae_sweep_parser_reads_the_vocabulary_field_list():
    """One SAE field list: the parser's schema is the JAX-free one `geomtoy keys` prints."""
    assert sae_sweep.SCHEMA.fields is sae_spec.FIELDS and sae_sweep.STATIC is sae_spec.STATIC
    assert set(SAE[1]) == set(sae_spec.STATIC.values()) <= set(sae_spec.FIELDS)


def test_docs_keys_md_is_generated_from_the_field_list():
    text = (ROOT / "docs" / "keys.md").read_text()
    assert text == keys.markdown(SAE), "regenerate: geomtoy keys --markdown > docs/keys.md"


def test_sae_keys_are_listed_after_the_toy_keys(capsys):
    assert cli.main(["keys"]) == 0
    out = capsys.readouterr().out
    toy, sae = out.split("# SAE sweeps")
    for key in sae_sweep.FIELDS:
        if key.startswith(("sae.", "source.")):
            assert f"\n{key}  (" in sae and f"\n{key}  (" not in toy, key
    rows = {r["key"]: r for r in keys.rows(keys.sae_only(SAE), set(SAE[1]))}
    assert rows["sae.width"]["static"] == "static" and rows["sae.k"]["static"] == "per-instance"
    assert rows["train.optimizer"]["default"] == '"adam"'  # the toy sweeps' default is adamw
    assert "train.lr" not in rows  # the same key as a toy sweep's


def test_every_key_is_listed_with_type_default_and_meaning(capsys):
    assert cli.main(["keys"]) == 0
    out = capsys.readouterr().out
    for key, field in spec.FIELDS.items():
        assert f"\n{key}  (" in "\n" + out, key
        assert field.doc.split(":")[0] in out
    rows = {r["key"]: r for r in keys.rows()}
    assert rows["model.kind"]["type"] == " | ".join(spec.KINDS)
    assert rows["model.kind"]["static"] == "static" and rows["train.lr"]["static"] == "per-instance"
    assert rows["train.steps"]["default"] == "10000" and rows["name"]["default"] == "required"
    assert rows["train.seeds"]["static"] == "sweep" and rows["train.seeds"]["axis"] == "no"
    assert all(r["type"] != "value" for r in rows.values())  # every check says its type
