"""The book's tables: one cell per estimate, value cells labelled for the narrow layout, and
names a reader knows (no folder keys, no machine paths)."""
from __future__ import annotations

import re

import pandas as pd
import pytest

from calcas.chapters.common import Estimate, dataset_label, interval_text, signed_interval_text, table_interval
from calcas.render.tables import TABLE_CSS, styled


def test_every_value_cell_carries_its_column_header():
    df = pd.DataFrame({"ECE before": [0.1, 0.2], "true ECE [95%]": ["0.1 [0.0, 0.2]", "—"]}, index=["a", "b"])
    html = styled(df).to_html()
    labels = re.findall(r'<td [^>]*data-label="([^"]*)"[^>]*>([^<]*)</td>', html)
    assert labels == [("ECE before", "0.1000"), ("true ECE [95%]", "0.1 [0.0, 0.2]"),
                      ("ECE before", "0.2000"), ("true ECE [95%]", "—")]
    # the levels of a two-level header, joined; a header that looks like markup stays text
    df.columns = pd.MultiIndex.from_tuples([("CC − UC", "<b>p</b>"), ("", "reads")])
    html = styled(df).to_html()
    assert re.findall(r'data-label="([^"]*)"', html)[:2] == ["CC − UC &lt;b&gt;p&lt;/b&gt;", "reads"]
    assert "<b>" not in html


def test_to_html_writes_to_a_buffer_as_pandas_does(tmp_path):
    df = pd.DataFrame({"x": [1.5]})
    target = tmp_path / "t.html"
    assert styled(df).to_html(target) is None
    assert 'data-label="x"' in target.read_text()


def test_the_narrow_layout_shows_each_value_beside_its_header():
    narrow = TABLE_CSS[TABLE_CSS.index("@media (max-width: 640px)"):]
    assert "content: attr(data-label)" in narrow and "display: block" in narrow


@pytest.mark.parametrize("e, digits, signed, text", [
    (Estimate(0.26234, 0.25, 0.2741, "x"), None, False, "0.262 [0.250,\u00a00.274]"),
    ((0.0123, -0.001, 0.0249), None, True, "+0.0123 [-0.0010,\u00a0+0.0249]"),
    ((0.0123, -0.001, 0.0249), 3, True, "+0.012 [-0.001,\u00a0+0.025]"),
    ((-0.00001, -0.00002, 0.0), 3, True, "+0.000 [+0.000,\u00a0+0.000]"),  # never "-0.000"
    (None, None, False, "—"),
    (Estimate(None, None, None, "x"), None, False, "—"),
])
def test_one_cell_per_estimate(e, digits, signed, text):
    assert table_interval(e, digits, signed=signed) == text


def test_a_cell_reads_as_the_prose_reads_the_same_estimate():
    e = (0.87801, 0.86951, 0.88604)
    assert table_interval(e).replace("\u00a0", " ") == interval_text(e)
    assert table_interval(e, signed=True).replace("\u00a0", " ") == signed_interval_text(e)


@pytest.mark.parametrize("key, label", [("imagenet", "ImageNet-1k val"), ("mmlu", "MMLU"), ("arc", "ARC-Challenge"),
                                        ("mnist1d", "MNIST-1D"), ("MNIST-1D", "MNIST-1D"), ("my_set", "my_set"),
                                        (None, "—")])
def test_data_sets_print_as_readers_know_them(key, label):
    assert dataset_label(key) == label


def test_the_public_data_page_names_its_data_without_a_path(tmp_path, monkeypatch):
    from calcas.datasets import public
    monkeypatch.setenv(public.DATA_ENV, str(tmp_path))
    text = public.data_root_description()
    assert str(tmp_path) not in text and public.DATA_ENV in text
    monkeypatch.delenv(public.DATA_ENV)
    shared = public.REPO_ROOT.parent / "shared" / "data"
    assert public.data_root_description(shared) == "data: the offline copy beside the repository (shared/data)"
    assert "/" not in public.data_root_description(tmp_path).replace("shared/data", "")


def test_an_edited_stylesheet_alone_rebuilds_the_book(tmp_path):
    """Sphinx copies static files only when a page is out of date: a change to _static/ (or to the
    vendored stylesheet) alone must make the build write everything again."""
    from calcas.render.book import EXTRA_PATH, VENDOR_URL, static_changed
    (tmp_path / "_static").mkdir()
    (tmp_path / "_static" / "calcas.css").write_text("a { color: red; }")
    vendored = tmp_path / EXTRA_PATH / VENDOR_URL
    vendored.mkdir(parents=True)
    (vendored / "calcas-tables.css").write_text("table {}")
    html = tmp_path / "_build" / "html"
    assert not static_changed(tmp_path, html)  # nothing built yet: the first build copies all
    (html / "_static").mkdir(parents=True)
    (html / "_static" / "calcas.css").write_text("a { color: red; }")
    assert static_changed(tmp_path, html)  # the vendored stylesheet was never copied
    (html / VENDOR_URL).mkdir(parents=True)
    (html / VENDOR_URL / "calcas-tables.css").write_text("table {}")
    assert not static_changed(tmp_path, html)
    (tmp_path / "_static" / "calcas.css").write_text("a { color: tan; }")  # same size, other content
    assert static_changed(tmp_path, html)
