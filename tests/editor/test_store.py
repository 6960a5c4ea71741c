"""Versioned saves of the site file: stale saves refused with a draft kept, history, undo."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from twin_server.editor.store import NEW_VERSION, SiteFileStore, StaleVersion
from twin_server.editor.yaml_doc import load_document


def _store(site_dir: Path) -> SiteFileStore:
    return SiteFileStore(site_dir / "site.yaml", site_dir / "history")


def test_save_keeps_the_previous_version_and_undo_walks_back(site_dir):
    s = _store(site_dir)
    original, v0 = s.read()
    doc = load_document(original)
    doc["floor"] = [17.0, 10.0]
    _, v1 = s.save(doc, v0, "eng")
    doc["floor"] = [18.0, 10.0]
    _, v2 = s.save(doc, v1, "eng")
    assert len({v0, v1, v2}) == 3
    assert [e.action for e in s.log()] == ["external", "save", "save"]  # the hand-written file kept too
    assert s.version_text(v0) == original
    assert s.undo_target() == v1
    _, back1 = s.undo(v2, "eng")
    assert back1 == v1 and load_document(s.read()[0])["floor"] == [17.0, 10.0]
    _, back0 = s.undo(v1, "eng")
    assert back0 == v0 and s.read()[0] == original
    with pytest.raises(KeyError):
        s.undo(v0, "eng")


def test_a_stale_save_is_refused_and_its_document_kept_as_a_draft(site_dir):
    s = _store(site_dir)
    text, v0 = s.read()
    mine, theirs = load_document(text), load_document(text)
    mine["machines"][0]["position"] = [3.5, 6.5]
    theirs["machines"][0]["position"] = [2.5, 6.5]
    _, v1 = s.save(mine, v0, "first")
    with pytest.raises(StaleVersion) as err:
        s.save(theirs, v0, "second")
    assert err.value.current == v1 and err.value.saved_by == "first"
    assert load_document(s.read()[0])["machines"][0]["position"] == [3.5, 6.5]
    draft = load_document(s.draft_text(err.value.draft))
    assert draft["machines"][0]["position"] == [2.5, 6.5]
    assert s.log()[-1].action == "conflict" and s.log()[-1].draft == err.value.draft


def test_two_saves_at_once_one_wins_the_other_is_told(site_dir):
    s = _store(site_dir)
    text, v0 = s.read()
    results: dict[str, object] = {}
    gate = threading.Barrier(2)

    def save(name: str, x: float) -> None:
        doc = load_document(text)
        doc["machines"][0]["position"] = [x, 6.5]
        gate.wait()
        try:
            results[name] = s.save(doc, v0, name)[1]
        except StaleVersion as exc:
            results[name] = exc

    threads = [threading.Thread(target=save, args=(n, x)) for n, x in (("a", 3.1), ("b", 3.2))]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    stale = [n for n, r in results.items() if isinstance(r, StaleVersion)]
    assert len(stale) == 1
    winner = "a" if stale == ["b"] else "b"
    x = {"a": 3.1, "b": 3.2}
    assert load_document(s.read()[0])["machines"][0]["position"] == [x[winner], 6.5]
    assert load_document(s.draft_text(results[stale[0]].draft))["machines"][0]["position"] == [
        x[stale[0]],
        6.5,
    ]


def test_a_new_site_file_is_created_by_the_first_save(tmp_path):
    s = SiteFileStore(tmp_path / "new.yaml", tmp_path / "h")
    assert s.read() == ("", NEW_VERSION)
    doc = {"site": "x", "machines": [{"id": "M1", "zone": [[0, 0], [1, 0], [1, 1]]}]}
    _, v = s.save(doc, NEW_VERSION, "eng")
    assert (tmp_path / "new.yaml").is_file() and s.read()[1] == v
    assert s.undo_target() is None
    with pytest.raises(KeyError):
        s.version_text("../../etc/passwd")
