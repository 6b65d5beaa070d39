"""The audit log: append-only, hash-chained, any edit detected."""

from __future__ import annotations

import sqlite3

import numpy as np

from serving.audit import AuditLog, AuditSigner, load_public_key


def _header(start: int, n: int) -> dict:
    return {
        "created_at": "2026-01-02T00:00:00+00:00",
        "subject_type": "declaration",
        "bundle": "crisk-bundle:test",
        "inputs": {"declaration_id": [f"D{i}" for i in range(start, start + n)],
                   "item_number": [1] * n},
        "features": {"price_z_score": np.array([-1.5 * i for i in range(start, start + n)])},
    }  # fmt: skip


def _items(start: int, n: int) -> list[dict]:
    return [
        {"scoring_id": f"{i:032x}", "subject_type": "declaration", "subject_id": f"D{i}",
         "item_number": 1, "event_time": "2026-01-01T00:00:00+00:00",
         "scores": {"financial": i / 10}}
        for i in range(start, start + n)
    ]  # fmt: skip


def _append(log: AuditLog, start: int, n: int) -> None:
    log.append(_header(start, n), _items(start, n))


def test_chain_verifies_and_lookups_work(tmp_path) -> None:
    log = AuditLog(tmp_path / "audit.sqlite")
    _append(log, 0, 5)
    _append(log, 5, 1)
    result = log.verify()
    assert result.ok and result.entries == 2 and log.count() == 6
    item = log.get(f"{3:032x}")
    assert item["subject_id"] == "D3" and item["bundle"] == "crisk-bundle:test"
    assert "inputs" not in item and "features" in item
    assert item["input"] == {"declaration_id": "D3", "item_number": 1}
    assert item["features"] == {"price_z_score": -4.5}
    assert log.get("unknown") is None
    assert log.subject_time("declaration", "D2") == "2026-01-01T00:00:00+00:00"


def test_an_edited_entry_is_detected(tmp_path) -> None:
    path = tmp_path / "audit.sqlite"
    log = AuditLog(path)
    for start in range(0, 8, 2):
        _append(log, start, 2)
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE audit SET record = replace(record, 'D5', 'D9') WHERE seq = 3")
    result = AuditLog(path).verify()
    assert not result.ok and result.first_bad_seq == 3


def test_a_deleted_entry_is_detected(tmp_path) -> None:
    path = tmp_path / "audit.sqlite"
    log = AuditLog(path)
    for start in range(0, 8, 2):
        _append(log, start, 2)
    with sqlite3.connect(path) as connection:
        connection.execute("DELETE FROM audit WHERE seq = 2")
    result = AuditLog(path).verify()
    assert not result.ok and result.first_bad_seq == 3


def test_a_redirected_index_row_is_detected(tmp_path) -> None:
    path = tmp_path / "audit.sqlite"
    log = AuditLog(path)
    _append(log, 0, 3)
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE audit_items SET position = 2 WHERE position = 0")
    assert not AuditLog(path).verify().ok


# --- signed checkpoints: what a chain alone cannot show ------------------------------------------


def _signed_log(tmp_path, entries: int = 6, every: int = 2) -> tuple[AuditLog, AuditSigner]:
    signer = AuditSigner(tmp_path / "keys" / "audit.pem")
    log = AuditLog(tmp_path / "audit" / "audit.sqlite", signer=signer, checkpoint_every=every)
    for start in range(entries):
        _append(log, start * 2, 2)
    return log, signer


def _recompute_chain(path) -> None:
    """What an attacker with write access does after an edit: entries renumbered without gaps
    and every hash made to fit, the index following."""
    from serving.audit import GENESIS, _chain

    with sqlite3.connect(path) as connection:
        rows = connection.execute("SELECT seq, record FROM audit ORDER BY seq").fetchall()
        prev = GENESIS
        for position, (seq, record) in enumerate(rows, start=1):
            digest = _chain(prev, record)
            connection.execute(
                "UPDATE audit SET seq = ?, prev_hash = ?, hash = ? WHERE seq = ?",
                (-position, prev, digest, seq),
            )
            connection.execute("UPDATE audit_items SET seq = ? WHERE seq = ?", (-position, seq))
            prev = digest
        connection.execute("UPDATE audit SET seq = -seq")
        connection.execute("UPDATE audit_items SET seq = -seq")


def test_a_signed_log_verifies_with_its_public_key(tmp_path) -> None:
    log, signer = _signed_log(tmp_path)
    log.close()  # shutdown: the head is signed
    result = log.verify(load_public_key(signer.public_file))
    assert result.ok, result.problem
    assert result.checkpoints == 4 and result.unsigned_tail == 0  # entries 1, 2, 4, 6
    assert oct(signer.public_file.stat().st_mode & 0o777) and (
        (tmp_path / "keys" / "audit.pem").stat().st_mode & 0o077 == 0
    ), "the private key is readable by its owner only"


def test_an_edit_with_a_recomputed_chain_is_detected(tmp_path) -> None:
    log, signer = _signed_log(tmp_path)
    path = log.path
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE audit SET record = replace(record, 'D5', 'D9') WHERE seq = 3")
    _recompute_chain(path)
    result = AuditLog(path).verify(load_public_key(signer.public_file))
    assert not result.ok and result.first_bad_seq == 4
    assert "recomputed" in (result.problem or "")


def test_a_deleted_entry_renumbered_is_detected(tmp_path) -> None:
    log, signer = _signed_log(tmp_path)
    path = log.path
    with sqlite3.connect(path) as connection:
        connection.execute("DELETE FROM audit WHERE seq = 3")
        connection.execute("DELETE FROM audit_items WHERE seq = 3")
    _recompute_chain(path)
    result = AuditLog(path).verify(load_public_key(signer.public_file))
    assert not result.ok and "checkpoint" in (result.problem or "")


def test_a_truncated_tail_is_detected(tmp_path) -> None:
    log, signer = _signed_log(tmp_path, entries=5)
    log.close()  # the head (entry 5) is signed at shutdown
    head = log.head()
    with sqlite3.connect(log.path) as connection:
        connection.execute("DELETE FROM audit WHERE seq = 5")
        connection.execute("DELETE FROM audit_items WHERE seq = 5")
    result = AuditLog(log.path).verify(load_public_key(signer.public_file))
    assert not result.ok and result.first_bad_seq == 5 and "truncated" in (result.problem or "")
    # An exported head shows the cut even when the checkpoints were cut with it.
    with sqlite3.connect(log.path) as connection:
        connection.execute("DELETE FROM audit_checkpoints WHERE seq >= 5")
    result = AuditLog(log.path).verify(load_public_key(signer.public_file), head)
    assert not result.ok and "exported head" in (result.problem or "")


def test_a_forged_checkpoint_is_detected(tmp_path) -> None:
    log, signer = _signed_log(tmp_path)
    other = AuditSigner(tmp_path / "elsewhere" / "other.pem")
    with sqlite3.connect(log.path) as connection:
        connection.execute("UPDATE audit_checkpoints SET signature = ? WHERE seq = 2", ("00" * 64,))
    result = AuditLog(log.path).verify(load_public_key(signer.public_file))
    assert not result.ok and result.first_bad_seq == 2 and "invalid signature" in result.problem
    result = AuditLog(log.path).verify(load_public_key(other.public_file))
    assert not result.ok and "another key" in (result.problem or "")
