"""Provenance: salted Merkle commitments, the local ledger, chained deletion requests, `proof` and `verify`."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hf_unlearn.cli.provenance_commands import proof_main, verify_main
from hf_unlearn.publishing.provenance import exclude_earlier
from hf_unlearn.records.ledger import check_ledger, make_proof, read_ledger
from hf_unlearn.records.merkle import (
    Commitment,
    LedgerError,
    canonical_id,
    commit_ids,
    leaf_hash,
    merkle_proof,
    verify_proof,
)

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # hub_server

FAST = ["--max_steps", "2", "--use_cpu", "--disable_tqdm", "true", "--method", "finetune"]

# The test vector printed in docs/FORMATS.md.
VECTOR_IDS = [1, 2, 3, "alice", "bob"]
VECTOR_SALTS = [bytes([k]) * 32 for k in range(1, 6)]
VECTOR_LEAVES = {
    1: "8b149fac400139525b56aafe976b14969dd497abded1143b4babbb6029b91925",
    2: "e9d9869ad716c52d4a4ced23237be79ca20ef5ffdd6ba88d40fd3187a5464367",
    3: "bf303fb6005f4cdb4a55d0e1f5516cad5c7bfc5838bbe6d87fbee1757a7a146d",
    "alice": "5f5505568411193723e81476fc0b77d28a553cbb6e997072319836b36a3ee053",
    "bob": "272a9a68fd69b06960ade4b761abeecdd6b66f063e89083b6995369628b7a5d6",
}
VECTOR_ROOT = "6cdf641be32f3441ee0ac7b91483e31a6fec8c7c2b7d5d569632ddbe9fc880fb"
SINGLE_ROOT = "b12007dbc8bd7c3da7b4fc51ff21eb3588d5f16f64568e18126d79cd5f2a1384"


def _independent_root(ids, salts) -> str:
    """A from-the-text implementation of docs/FORMATS.md (no hf_unlearn code)."""

    def canon(i):
        return (b"int:" + str(i).encode()) if isinstance(i, int) else (b"str:" + i.encode("utf-8"))

    level = sorted(hashlib.sha256(s + canon(i)).digest() for i, s in zip(ids, salts, strict=False))
    while len(level) > 1:
        nxt = [hashlib.sha256(b"\x01" + level[j] + level[j + 1]).digest() for j in range(0, len(level) - 1, 2)]
        level = nxt + ([level[-1]] if len(level) % 2 else [])
    return level[0].hex()


# ----------------------------------------------------------------------------------------------------------------
# the tree
# ----------------------------------------------------------------------------------------------------------------
def test_merkle_test_vector_matches_docs():
    tree = Commitment(VECTOR_IDS, VECTOR_SALTS)
    assert {i: leaf_hash(s, i).hex() for i, s in zip(VECTOR_IDS, VECTOR_SALTS, strict=False)} == VECTOR_LEAVES
    assert tree.ids == ["bob", "alice", 1, 3, 2]
    assert tree.root == VECTOR_ROOT == _independent_root(VECTOR_IDS, VECTOR_SALTS)
    assert Commitment([7], [bytes([9]) * 32]).root == SINGLE_ROOT
    docs = (ROOT / "docs" / "FORMATS.md").read_text()
    for value in [VECTOR_ROOT, SINGLE_ROOT, *VECTOR_LEAVES.values()]:
        assert value in docs
    path = merkle_proof(tree.leaves, tree.ids.index("alice"))
    assert [s["side"] for s in path] == ["left", "right", "right"]
    assert path[2]["hash"] == VECTOR_LEAVES[2]  # the odd leaf, promoted twice


def test_canonical_ids_keep_types_apart():
    assert canonical_id(7) == b"int:7" and canonical_id("7") == b"str:7"
    salt = bytes(32)
    assert leaf_hash(salt, 7) != leaf_hash(salt, "7")
    for bad in (True, None, 1.5, b"x"):
        with pytest.raises(LedgerError):
            canonical_id(bad)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_every_leaf_has_a_proof(n):
    ids = [f"sample-{k}" for k in range(n)] if n % 2 else list(range(100, 100 + n))
    tree = commit_ids(ids)
    assert tree.root == _independent_root(tree.ids, tree.salts)
    requests = [
        {
            "commitment": tree.root,
            "leaves": [{"id": i, "salt": s.hex()} for i, s in zip(tree.ids, tree.salts, strict=False)],
        }
    ]
    for i in ids:
        proof = make_proof(requests, str(i))
        assert proof["id"] == i and proof["root"] == tree.root and verify_proof(proof, tree.root)
        assert len(proof["path"]) <= max(1, (n - 1).bit_length())
        assert not verify_proof(proof, commit_ids(["other"]).root)
    with pytest.raises(LedgerError):
        make_proof(requests, "not-removed")


def test_salts_are_fresh_and_hide_small_integer_ids():
    a, b = commit_ids([1, 2, 3]), commit_ids([1, 2, 3])
    assert a.root != b.root  # new random salts: the unsalted hash of the sorted ids cannot be recomputed by guessing
    assert commit_ids([1, 2, 3], dict(zip(a.ids, a.salts, strict=False))).root == a.root
    assert len(commit_ids([5, 5, 6]).ids) == 2  # unique ids


def _proof_for(ids, which):
    tree = commit_ids(ids)
    requests = [
        {
            "commitment": tree.root,
            "leaves": [{"id": i, "salt": s.hex()} for i, s in zip(tree.ids, tree.salts, strict=False)],
        }
    ]
    return make_proof(requests, which), tree.root


@pytest.mark.parametrize("tamper", ["id", "id_type", "salt", "path_hash", "path_side", "path_dropped", "path_added"])
def test_tampered_proofs_are_rejected(tamper):
    proof, root = _proof_for([10, 11, 12, 13, 14], "12")
    assert verify_proof(proof, root)
    if tamper == "id":
        proof["id"] = 13
    elif tamper == "id_type":
        proof["id"] = "12"
    elif tamper == "salt":
        proof["salt"] = ("00" if proof["salt"][:2] != "00" else "11") + proof["salt"][2:]
    elif tamper == "path_hash":
        proof["path"][0]["hash"] = "ff" * 32
    elif tamper == "path_side":
        proof["path"][0]["side"] = "left" if proof["path"][0]["side"] == "right" else "right"
    elif tamper == "path_dropped":
        proof["path"] = proof["path"][:-1]
    else:
        proof["path"].append({"side": "left", "hash": "00" * 32})
    assert not verify_proof(proof, root)


def test_altered_ledger_is_refused(tmp_path):
    tree = commit_ids(["a", "b", "c"])
    entry = {
        "commitment": tree.root,
        "id_column": "id",
        "leaves": [{"id": i, "salt": s.hex()} for i, s in zip(tree.ids, tree.salts, strict=False)],
    }
    ledger = {"format": "hf-unlearn-ledger", "version": 1, "requests": [entry]}
    assert check_ledger(ledger, "x") == [entry]
    entry["leaves"][0]["id"] = "z"
    with pytest.raises(LedgerError, match="altered"):
        check_ledger(ledger, "x")
    (tmp_path / "l.json").write_text("{not json")
    with pytest.raises(LedgerError, match="not readable"):
        read_ledger(str(tmp_path / "l.json"))
    with pytest.raises(LedgerError, match="version"):
        check_ledger({**ledger, "version": 9}, "x")


def test_ledger_is_never_pushed(tmp_path):
    from hf_unlearn.publishing.hub import files_to_push

    for name in ("config.json", "model.safetensors", "metrics.json", "ledger.json", "removed_ids.json"):
        (tmp_path / name).write_text("{}")
    assert "ledger.json" not in files_to_push(tmp_path)
    assert "ledger.json" not in files_to_push(tmp_path, push_removed_ids=True)


# ----------------------------------------------------------------------------------------------------------------
# excluding earlier requests from the data
# ----------------------------------------------------------------------------------------------------------------
def test_exclude_earlier_by_id_and_by_index(digits):
    from hf_unlearn import select_forget

    train, validation = digits["train"], digits["validation"]
    first = select_forget(train, fraction_per_class=0.1, seed=0, num_labels=10)
    tree = commit_ids(first.removed_ids, first.salts)
    requests = [
        {
            "id_column": "id",
            "commitment": tree.root,
            "dataset": first.record.dataset,
            "leaves": [{"id": i, "salt": s.hex()} for i, s in zip(tree.ids, tree.salts, strict=False)],
        }
    ]
    earlier = set(first.removed_ids)
    # validation ids are disjoint from train ids in digits: plant one earlier id there to see it dropped
    planted = validation.map(lambda row, i: {"id": first.removed_ids[0] if i == 0 else row["id"]}, with_indices=True)
    train2, val2, kept = exclude_earlier(requests, train, planted, "id")
    assert kept is None and len(train2) == len(train) - len(earlier)
    assert not earlier & set(train2["id"]) and len(val2) == len(planted) - 1
    second = select_forget(train2, fraction_per_class=0.1, seed=1, num_labels=10)
    assert not earlier & set(second.retain["id"]) and not earlier & set(second.forget["id"])
    assert second.record.num_removed + second.record.num_retained + first.record.num_removed == len(train)
    with pytest.raises(ValueError, match="already removed by an earlier request"):
        exclude_earlier(requests, train, None, "id", new_ids=[first.removed_ids[3], "digits-9999"])
    with pytest.raises(ValueError, match="--id_column_name id"):
        exclude_earlier(requests, train, None, None)

    by_index = [
        {
            "id_column": None,
            "dataset": {"fingerprint": train._fingerprint},
            "leaves": [{"id": i, "salt": "00" * 32} for i in (0, 5, 7)],
        }
    ]
    train3, _, kept = exclude_earlier(by_index, train, None, None)
    assert len(train3) == len(train) - 3 and not {0, 5, 7} & set(kept) and kept[0] == 1
    with pytest.raises(ValueError, match="identical data"):
        exclude_earlier(by_index, train.select(range(100)), None, None)


# ----------------------------------------------------------------------------------------------------------------
# the CLI: two chained requests, proofs, verify
# ----------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def chain(original_path, digits, tmp_path_factory):
    """Request 1: 10% per class from the digits ResNet original; request 2: three ids, from request 1's output."""
    from hf_unlearn.cli.main import run_unlearning

    root = tmp_path_factory.mktemp("chain")
    first = root / "request1"
    assert run_unlearning(["--model_name_or_path", original_path, "--output_dir", str(first), *FAST]) == 0
    removed1 = json.loads((first / "removed_ids.json").read_text())["ids"]
    new = [i for i in digits["train"]["id"] if i not in removed1][:3]
    (root / "ids.txt").write_text("\n".join(new))
    second = root / "request2"
    assert (
        run_unlearning(
            [
                "--model_name_or_path",
                str(first),
                "--forget_ids_file",
                str(root / "ids.txt"),
                "--output_dir",
                str(second),
                *FAST,
            ]
        )
        == 0
    )
    return {
        "root": root,
        "first": first,
        "second": second,
        "removed1": removed1,
        "removed2": new,
        "original": original_path,
    }


def _card_block(path: Path) -> dict:
    from huggingface_hub import ModelCard

    return ModelCard.load(path / "README.md").data.unlearning


def test_two_chained_requests_add_up(chain, digits):
    first, second = chain["first"], chain["second"]
    rec1 = json.loads((first / "removal_record.json").read_text())
    rec2 = json.loads((second / "removal_record.json").read_text())
    n_train = len(digits["train"])
    assert rec1["num_removed"] + rec1["num_retained"] == n_train
    assert rec2["num_removed"] == 3
    # the second retain set is the training split minus both requests: request 1's rows are in neither set
    assert rec2["num_removed"] + rec2["num_retained"] + rec1["num_removed"] == n_train
    assert rec2["dataset"]["fingerprint"] == rec1["dataset"]["fingerprint"] == digits["train"]._fingerprint
    ledger = read_ledger(str(second / "ledger.json"))
    assert [r["commitment"] for r in ledger] == [rec1["commitment"]["value"], rec2["commitment"]["value"]]
    assert {leaf["id"] for leaf in ledger[0]["leaves"]} == set(chain["removed1"])
    block = _card_block(second)
    assert [r["request"] for r in block["requests"]] == [1, 2]
    assert [r["num_removed"] for r in block["requests"]] == [rec1["num_removed"], 3]
    assert block["total_removed"] == rec1["num_removed"] + 3
    assert block["parent_model"]["name_or_path"] == first.name  # a local parent is published by its base name
    assert block["parent_model"]["weights_sha256"] == _card_block(first)["weights_sha256"]
    assert {"acc_forget", "acc_retain", "mia", "commitment", "date", "method", "dataset"} <= (
        block["requests"][1]["metrics"].keys() | block["requests"][1].keys()
    )
    card = (second / "README.md").read_text()
    assert "leaves" not in block["requests"][0] and "\n  leaves:" not in card and " leaves:\n" not in card
    assert not any(leaf["salt"] in card for r in ledger for leaf in r["leaves"])  # salts never in the card
    assert not any(i in card for i in chain["removed1"] + chain["removed2"])  # ids never in the card
    assert json.loads((first / "unlearning_config.json").read_text())["provenance"]["requests"][0]["request"] == 1


def test_proofs_verify_for_both_requests(chain, tmp_path, capsys):
    second = chain["second"]
    for k, which in ((1, chain["removed1"][7]), (2, chain["removed2"][1])):
        proof = tmp_path / f"proof{k}.json"
        assert proof_main(["--output_dir", str(second), "--id", which, "--out", str(proof)]) == 0
        data = json.loads(proof.read_text())
        assert data["request"] == k and data["id"] == which
        others = set(chain["removed1"] + chain["removed2"]) - {which}
        assert not any(o in proof.read_text() for o in others)  # a proof reveals no other id
        capsys.readouterr()
        assert verify_main(["--model", str(second), "--proof", str(proof)]) == 0
        assert f"removed in request {k} (" in capsys.readouterr().out
    # printing to stdout
    assert proof_main(["--output_dir", str(second), "--id", chain["removed2"][0]]) == 0
    assert json.loads(capsys.readouterr().out)["request"] == 2


def test_proof_for_a_retained_id_is_refused(chain, capsys, tmp_path):
    retained = next(
        f"digits-{k:04d}" for k in range(100) if f"digits-{k:04d}" not in chain["removed1"] + chain["removed2"]
    )
    assert proof_main(["--output_dir", str(chain["second"]), "--id", retained]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "not removed" in err
    assert proof_main(["--output_dir", str(tmp_path), "--id", retained]) == 2  # no ledger there
    assert "ledger.json does not exist" in capsys.readouterr().err


def test_tampered_proof_foreign_root_and_swapped_weights_are_rejected(chain, tmp_path, capsys):
    second = chain["second"]
    proof = tmp_path / "proof.json"
    assert proof_main(["--output_dir", str(second), "--id", chain["removed2"][0], "--out", str(proof)]) == 0
    good = json.loads(proof.read_text())

    tampered = dict(good, id=chain["removed2"][0][:-1] + "9")
    (tmp_path / "t.json").write_text(json.dumps(tampered))
    capsys.readouterr()
    assert verify_main(["--model", str(second), "--proof", str(tmp_path / "t.json")]) == 1
    assert "altered" in capsys.readouterr().err

    # a self-consistent proof whose root is not in the card (another model's request)
    foreign, root = _proof_for(["digits-0000", "x"], "digits-0000")
    (tmp_path / "f.json").write_text(json.dumps(foreign))
    assert verify_main(["--model", str(second), "--proof", str(tmp_path / "f.json")]) == 1
    err = capsys.readouterr().err
    assert "not the commitment of any" in err and err.count("\n") == 1
    # request 2's proof against request 1's model: its root is not in that card
    assert verify_main(["--model", str(chain["first"]), "--proof", str(proof)]) == 1

    swapped = tmp_path / "swapped"
    shutil.copytree(second, swapped)
    shutil.copy(chain["first"] / "model.safetensors", swapped / "model.safetensors")
    capsys.readouterr()
    assert verify_main(["--model", str(swapped), "--proof", str(proof)]) == 1
    err = capsys.readouterr().err
    assert "model.safetensors has SHA-256" in err and "not the ones the card describes" in err
    (swapped / "model.safetensors").unlink()
    shutil.copy(second / "model.safetensors", swapped / "pytorch_model.bin")
    assert verify_main(["--model", str(swapped)]) == 1
    assert "listed in the card are missing" in capsys.readouterr().err

    assert verify_main(["--model", str(second), "--proof", str(tmp_path / "missing.json")]) == 2
    assert verify_main(["--model", str(tmp_path / "nowhere")]) == 2
    assert verify_main(["--model", chain["original"]]) == 2  # no card at all
    capsys.readouterr()
    assert verify_main(["--model", str(second)]) == 0
    assert "weights match the card (1 file)" in capsys.readouterr().out


def test_chain_refusals(chain, tmp_path, capsys):
    from hf_unlearn.cli.main import run_unlearning

    first, second = chain["first"], chain["second"]
    # an id that request 1 already removed
    (tmp_path / "again.txt").write_text(chain["removed1"][0])
    assert (
        run_unlearning(
            [
                "--model_name_or_path",
                str(first),
                "--forget_ids_file",
                str(tmp_path / "again.txt"),
                "--output_dir",
                str(tmp_path / "o1"),
                *FAST,
            ]
        )
        == 2
    )
    assert "already removed by an earlier request" in capsys.readouterr().err
    # an hf-unlearn output without its ledger: refused with the fix
    bare = tmp_path / "bare"
    shutil.copytree(first, bare)
    (bare / "ledger.json").unlink()
    assert run_unlearning(["--model_name_or_path", str(bare), "--output_dir", str(tmp_path / "o2"), *FAST]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "--previous_ledger" in err
    # a ledger of another model (request 2's, whose commitments differ from request 1's card): refused
    assert (
        run_unlearning(
            [
                "--model_name_or_path",
                str(bare),
                "--previous_ledger",
                str(second / "ledger.json"),
                "--output_dir",
                str(tmp_path / "o3"),
                *FAST,
            ]
        )
        == 2
    )
    assert "does not belong to" in capsys.readouterr().err
    assert (
        run_unlearning(
            [
                "--model_name_or_path",
                str(bare),
                "--previous_ledger",
                str(tmp_path / "none.json"),
                "--output_dir",
                str(tmp_path / "o4"),
                *FAST,
            ]
        )
        == 2
    )
    # weights swapped in the parent directory: refused
    swapped = tmp_path / "swapped"
    shutil.copytree(second, swapped)
    shutil.copy(first / "model.safetensors", swapped / "model.safetensors")
    assert run_unlearning(["--model_name_or_path", str(swapped), "--output_dir", str(tmp_path / "o5"), *FAST]) == 2
    assert "do not match the SHA-256s" in capsys.readouterr().err
    # a ledger for a model that hf-unlearn did not write
    assert (
        run_unlearning(
            [
                "--model_name_or_path",
                chain["original"],
                "--previous_ledger",
                str(first / "ledger.json"),
                "--output_dir",
                str(tmp_path / "o6"),
                *FAST,
            ]
        )
        == 2
    )
    assert "lists no deletion requests" in capsys.readouterr().err
    assert not any((tmp_path / f"o{k}").exists() for k in range(1, 7))  # refused before any work


def test_bad_arguments_are_one_line(capsys, tmp_path):
    assert proof_main(["--id", "x"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "--output_dir" in err
    assert verify_main(["--proof", "p.json"]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert verify_main(["--model", str(tmp_path), "--bogus"]) == 2


def test_card_without_provenance_fails_verify(tmp_path, capsys):
    from huggingface_hub import ModelCard, ModelCardData

    ModelCard.from_template(
        ModelCardData(unlearning={"method": "lotus"}), template_str="---\n{{ card_data }}\n---\n"
    ).save(tmp_path / "README.md")
    (tmp_path / "model.safetensors").write_bytes(b"x")
    assert verify_main(["--model", str(tmp_path)]) == 1
    assert "records no weights SHA-256" in capsys.readouterr().err


def test_previous_ledger_continues_the_chain(chain, digits, tmp_path):
    from hf_unlearn.cli.main import run_unlearning

    bare = tmp_path / "bare"  # stands in for the Hub copy of request 1: no local ledger
    shutil.copytree(chain["first"], bare)
    (bare / "ledger.json").unlink()
    out = tmp_path / "next"
    assert (
        run_unlearning(
            [
                "--model_name_or_path",
                str(bare),
                "--previous_ledger",
                str(chain["first"] / "ledger.json"),
                "--forget_classes",
                "3",
                "--output_dir",
                str(out),
                *FAST,
            ]
        )
        == 0
    )
    requests = read_ledger(str(out / "ledger.json"))
    first_ledger = read_ledger(str(chain["first"] / "ledger.json"))
    assert len(requests) == 2 and requests[0]["commitment"] == first_ledger[0]["commitment"]
    class3 = [i for i, y in zip(digits["train"]["id"], digits["train"]["label"], strict=False) if y == 3]
    ids2 = {leaf["id"] for leaf in requests[1]["leaves"]}
    assert ids2 == set(class3) - set(chain["removed1"])  # class 3 minus the rows request 1 already removed


# ----------------------------------------------------------------------------------------------------------------
# the Hub round trip (loopback fake Hub)
# ----------------------------------------------------------------------------------------------------------------
def test_hub_round_trip_push_request_2_and_verify(chain, digits, tmp_path, monkeypatch, capsys):
    import huggingface_hub.constants as hf_constants
    from hub_server import HubServer

    from hf_unlearn.publishing.hub import push_unlearned_to_hub

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    second = chain["second"]
    proof = tmp_path / "proof.json"
    assert proof_main(["--output_dir", str(second), "--id", chain["removed1"][0], "--out", str(proof)]) == 0
    with HubServer() as hub:
        push_unlearned_to_hub(second, "test-user/digits-request2", token="hf_dummy", endpoint=hub.url)
        files = hub.repos["test-user/digits-request2"].files("main")
        assert "ledger.json" not in files and "removed_ids.json" not in files
        assert not any(i.encode() in blob for i in chain["removed1"] + chain["removed2"] for blob in files.values())
        capsys.readouterr()
        assert verify_main(["--model", "test-user/digits-request2", "--proof", str(proof), "--endpoint", hub.url]) == 0
        assert "removed in request 1" in capsys.readouterr().out

        # request 3 from the Hub copy of request 2: needs request 2's ledger, which must match the Hub card
        removed = set(chain["removed1"] + chain["removed2"])
        (tmp_path / "ids3.txt").write_text(next(i for i in digits["train"]["id"] if i not in removed))
        script = (
            "import sys, json; from hf_unlearn.cli.main import run_unlearning\n"
            "base = ['--model_name_or_path', 'test-user/digits-request2', *sys.argv[3:]]\n"
            "codes = [run_unlearning(base + ['--output_dir', sys.argv[1] + '/a']),\n"
            "         run_unlearning(base + ['--previous_ledger', sys.argv[2] + '/request1/ledger.json',\n"
            "                                '--output_dir', sys.argv[1] + '/b']),\n"
            "         run_unlearning(base + ['--previous_ledger', sys.argv[2] + '/request2/ledger.json',\n"
            "                                '--output_dir', sys.argv[1] + '/c'])]\n"
            "print(json.dumps(codes))\n"
        )
        env = {**os.environ, **hub.env(tmp_path / "hf_home"), "PYTHONPATH": str(ROOT)}
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                script,
                str(tmp_path),
                str(chain["root"]),
                "--forget_ids_file",
                str(tmp_path / "ids3.txt"),
                *FAST,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=ROOT,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        assert json.loads(done.stdout.strip().splitlines()[-1]) == [2, 2, 0], done.stderr[-3000:]
        errors = [line for line in done.stderr.splitlines() if line.startswith("error: ")]
        assert "a Hub repo carries no ledger" in errors[0] and "does not belong to" in errors[1]
        requests = read_ledger(str(tmp_path / "c" / "ledger.json"))
        assert len(requests) == 3 and _card_block(tmp_path / "c")["total_removed"] == len(removed) + 1
        assert _card_block(tmp_path / "c")["parent_model"]["weights_sha256"] == _card_block(second)["weights_sha256"]

        # the weights on the Hub swapped by another commit: verify fails
        from huggingface_hub import HfApi

        HfApi(endpoint=hub.url, token="hf_dummy").upload_file(
            path_or_fileobj=str(chain["first"] / "model.safetensors"),
            path_in_repo="model.safetensors",
            repo_id="test-user/digits-request2",
        )
        assert verify_main(["--model", "test-user/digits-request2", "--endpoint", hub.url]) == 1
        assert "not the ones the card describes" in capsys.readouterr().err
        assert verify_main(["--model", "test-user/no-such-repo", "--endpoint", hub.url]) == 2


def test_recompute_matches_the_card_and_catches_a_false_metric(chain, tmp_path, capsys):
    from huggingface_hub import ModelCard

    second = chain["second"]
    assert verify_main(["--model", str(second), "--recompute", "--output_dir", str(second)]) == 0
    out = capsys.readouterr().out
    assert "tolerance 0.0001" in out and "acc_retain" in out and "rf_jsd" in out and "MISMATCH" not in out
    # the ledger of another model
    assert verify_main(["--model", str(chain["first"]), "--recompute", "--output_dir", str(second)]) == 1
    assert "does not belong to this model" in capsys.readouterr().err
    assert verify_main(["--model", str(second), "--recompute"]) == 2  # needs --output_dir
    # a card that overstates a metric, by a forger who also redid the ledger and the chain hash (an edit of the card
    # alone is caught before any recomputation: tests/test_trust_records.py)
    from hf_unlearn.records.ledger import record_sha256

    lied = tmp_path / "lied"
    shutil.copytree(second, lied)
    card = ModelCard.load(lied / "README.md")
    card.data.unlearning["requests"][-1]["metrics"]["acc_test"] += 0.01
    card.data.unlearning["chain_sha256"] = record_sha256(card.data.unlearning["requests"][-1])
    card.save(lied / "README.md")
    ledger = json.loads((lied / "ledger.json").read_text())
    ledger["requests"][-1]["metrics"]["acc_test"] = card.data.unlearning["requests"][-1]["metrics"]["acc_test"]
    (lied / "ledger.json").write_text(json.dumps(ledger))
    capsys.readouterr()
    assert (
        verify_main(
            ["--model", str(lied), "--recompute", "--output_dir", str(lied), "--parent_model", str(chain["first"])]
        )
        == 1
    )
    captured = capsys.readouterr()
    assert "MISMATCH" in captured.out and "more than 0.0001" in captured.err
