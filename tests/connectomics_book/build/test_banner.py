"""The provenance record and the honesty banner built from it."""

from __future__ import annotations

import json

import pytest
from sphinx.errors import ExtensionError

from connectomics_book.build import banner as book_banner
from connectomics_book.build import provenance

SYNTHETIC_RECORD = {
    "generated_at": "2026-11-21T10:00:00+00:00",
    "caveclient_version": "8.2.1",
    "datastacks": [
        {
            "datastack": "minnie65_public",
            "materialization_version": 1300,
            "source": "synthetic",
            "description": "OFFLINE SYNTHETIC SAMPLE of minnie65_public",
            "global_server": "http://server.invalid",
            "local_server": "http://server.invalid",
            "aligned_volume": "minnie65_phase3",
            "available_versions": [1300],
        }
    ],
}
PUBLIC_RECORD = {
    **SYNTHETIC_RECORD,
    "datastacks": [
        {
            **SYNTHETIC_RECORD["datastacks"][0],
            "source": "public",
            "description": "This is the publicly released version of the minnie65 volume.",
            "local_server": "https://minnie.microns-daf.com",
        }
    ],
}


def test_classify_recognises_the_synthetic_marker_only():
    assert provenance.classify("An OFFLINE SYNTHETIC SAMPLE of x") == "synthetic"
    assert provenance.classify("This is the publicly released version") == "public"
    assert provenance.classify(None) == "public"


def test_synthetic_banner_says_it_is_not_real_data():
    banner = book_banner.render_banner(SYNTHETIC_RECORD)
    assert 'data-source="synthetic"' in banner
    assert "offline synthetic sample" in banner and "not real data" in banner
    assert "minnie65_public" in banner and "v1300" in banner
    assert "2026-11-21 10:00 UTC" in banner and "8.2.1" in banner


def test_public_banner_names_datastack_version_and_server():
    banner = book_banner.render_banner(PUBLIC_RECORD)
    assert 'data-source="public"' in banner
    assert "synthetic" not in banner
    assert "minnie65_public" in banner and "v1300" in banner
    assert "https://minnie.microns-daf.com" in banner


def test_mixed_record_is_labelled_synthetic():
    mixed = {
        **PUBLIC_RECORD,
        "datastacks": PUBLIC_RECORD["datastacks"] + SYNTHETIC_RECORD["datastacks"],
    }
    assert book_banner.banner_kind(mixed) == "synthetic"


def test_missing_record_fails_with_instructions(tmp_path):
    with pytest.raises(ExtensionError, match="connectomics_book.build.provenance"):
        book_banner.load_record(tmp_path / "provenance.json")


def test_record_without_datastacks_fails(tmp_path):
    path = tmp_path / "provenance.json"
    path.write_text(json.dumps({**SYNTHETIC_RECORD, "datastacks": []}))
    with pytest.raises(ExtensionError, match="names no datastack"):
        book_banner.load_record(path)


@pytest.mark.parametrize(("expect", "code"), [("synthetic", 0), ("public", 1)])
def test_provenance_cli_checks_the_expected_source(tmp_path, monkeypatch, capsys, expect, code):
    monkeypatch.setattr(provenance, "collect", lambda: SYNTHETIC_RECORD)
    out = tmp_path / "provenance.json"
    assert provenance.main([str(out), "--expect", expect]) == code
    assert out.exists() == (code == 0)
    if code:
        assert "expected public data" in capsys.readouterr().err


def test_sphinx_build_shows_the_banner_on_every_page(tmp_path):
    from sphinx.application import Sphinx

    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text(
        "extensions = ['connectomics_book.build.banner']\n"
        "html_theme = 'sphinx_book_theme'\n"
        "provenance_file = 'provenance.json'\n"
    )
    (src / "index.rst").write_text("Index\n=====\n\n.. toctree::\n\n   other\n")
    (src / "other.rst").write_text("Other\n=====\n\nText.\n")
    (src / "provenance.json").write_text(json.dumps(SYNTHETIC_RECORD))
    out = tmp_path / "html"
    app = Sphinx(
        str(src),
        str(src),
        str(out),
        str(tmp_path / "doctrees"),
        "html",
        status=None,
        warning=None,
        freshenv=True,
    )
    app.build()
    for page in ("index.html", "other.html"):
        html = (out / page).read_text(encoding="utf-8")
        assert f'class="{book_banner.BANNER_CLASS}" data-source="synthetic"' in html
        assert "not real data" in html
