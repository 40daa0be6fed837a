"""The body of the model card (``hf_unlearn.publishing.card``): the keyword arguments of the Jinja template
(``model_cards/unlearned_model_card.md``) and the tables they hold (metrics, the retrain-free alpha search), with the
method's display name and papers and the license line. Separate from :mod:`hf_unlearn.publishing.card_sections`,
which builds the card's YAML metadata (the ``unlearning:`` block, the ``model-index`` results, the original's names,
the removal record without ids) and holds the formatting helpers both use; this module reads from it, never the
other way round.
"""

from __future__ import annotations

import json

from ..evaluation.metrics_table import METRICS
from ..training.engines import describe_engine
from .card_sections import _fmt, _is_number, _md, _show

__all__ = ["PAPER_URL", "method_display", "metric_rows", "alpha_search_view", "template_kwargs"]


PAPER_URL = "https://arxiv.org/abs/2503.18314"


_LICENSE_SOURCES = {
    "--license": " (set with --license)",
    "model card": " (from the original model's card)",
    "config": " (from the original model's config)",
}


def method_display(method: str) -> str:
    from ..methods import method_facts

    facts = method_facts(method)  # the method class's display_name when the method is registered
    if facts["display_name"] != str(method):
        return facts["display_name"]
    known = {
        "lotus": "LoTUS",
        "finetune": "Fine-tuning",
        "neggrad": "NegGrad",
        "neggrad+": "NegGrad+",
        "random_label": "Random labels",
        "randl": "Random labels",
        "scrub": "SCRUB",
        "bad_teacher": "Bad Teacher",
        "salun": "SalUn",
        "l1_sparse": "l1-sparse",
        "ssd": "SSD",
        "unsir": "UNSIR",
        "retrain": "Retrain",
    }
    return known.get(method.lower(), method)


def _papers(method: str) -> list[dict]:
    from ..methods import method_facts

    return method_facts(method)["papers"]


def metric_rows(metrics: dict) -> list[dict]:
    """The body's metrics table: original, unlearned, gold, ideal and meaning of each metric present."""
    original, unlearned, gold = (metrics.get(k) or {} for k in ("original", "unlearned", "gold"))
    rows = []
    for key, m in METRICS.items():
        if not any(isinstance(v.get(key), (int, float)) for v in (original, unlearned, gold)):
            continue
        ideal = m.ideal_gold.format(gold=_fmt(key, gold.get(key))) if gold.get(key) is not None else m.ideal
        rows.append(
            {
                "label": m.label,
                "original": _fmt(key, original.get(key)),
                "unlearned": _fmt(key, unlearned.get(key)),
                "gold": _fmt(key, gold.get(key)),
                "ideal": ideal,
                "meaning": m.meaning,
            }
        )
    return rows


def alpha_search_view(search: dict | None) -> dict | None:
    """Rows of the retrain-free alpha search (metrics.json ``alpha_search``), for the card."""
    if not search or not search.get("candidates"):
        return None

    def num(v, pct=False):
        if not _is_number(v):
            return "—"
        return f"{100 * v:.2f}%" if pct else f"{v:.4g}"

    rows = [
        {
            "alpha": num(c.get("alpha")),
            "selected": bool(c.get("selected")),
            "estimate_selection": (
                f"{c['avg_gap_estimate_selection']:.4f}" if _is_number(c.get("avg_gap_estimate_selection")) else "—"
            ),
            "mia": num(c.get("mia")),
            "rf_jsd": f"{c['rf_jsd']:.6f}" if isinstance(c.get("rf_jsd"), (int, float)) else "—",
            "acc_forget": num(c.get("acc_forget"), True),
            "acc_retain": num(c.get("acc_retain"), True),
            "acc_test": num(c.get("acc_test"), True),
            "runtime": f"{c['runtime_s']:.1f} s" if isinstance(c.get("runtime_s"), (int, float)) else "—",
        }
        for c in search["candidates"]
    ]
    return {
        "rows": rows,
        "selected_alpha": num(search.get("selected_alpha")),
        "selection_split": _md(search.get("selection_split") or "validation"),
    }


def _license_display(original_model: dict, license_id: str | None) -> str:
    if license_id:
        return f"`{_md(license_id)}`" + _LICENSE_SOURCES.get(original_model.get("license_source"), "")
    return (
        "not set: the original model's license is unknown; set one with `--license` (or a `license:` line in "
        "this card's metadata) before publishing"
    )


def template_kwargs(
    record,
    *,
    removal: dict,
    names: dict,
    model_name: str,
    dataset_id: str | None,
    version: str,
    date: str,
    repo_id: str | None,
    ids_published: bool,
) -> dict:
    """The keyword arguments of the card template."""
    record_dataset = removal.get("dataset") or {}
    selection = removal.get("selection") or {}
    commitment = removal.get("commitment") or {}
    metrics = record.metrics or {}
    method_key = str(record.method).lower()
    hub, base_model, short = names["hub"], names["base_model"], names["short"]
    provenance = record.provenance or {}
    runtime_s, num_retained = record.runtime_s, removal.get("num_retained")
    return dict(
        model_name=_md(model_name),
        original_model_name=_md(short if not hub else hub),
        method_key=method_key,
        method_display=method_display(str(record.method)),
        num_removed=removal.get("num_removed", "an unspecified number of"),
        num_retained_display=num_retained if num_retained is not None else "—",
        dataset_display=_md(dataset_id or record_dataset.get("name") or ""),
        dataset_config_display=_show(record_dataset.get("config")),
        dataset_split_display=_show(record_dataset.get("split")),
        dataset_revision_display=_show(record_dataset.get("revision")),
        dataset_fingerprint_display=_show(record_dataset.get("fingerprint")),
        rule=_md(selection.get("rule") or ""),
        rule_description=_md(selection.get("description") or ""),
        commitment_algorithm=_md(commitment.get("algorithm") or "sha256"),
        commitment_value=_md(commitment.get("value") or ""),
        per_class_rows=[
            {"label": _md(label), "count": count} for label, count in (removal.get("per_class_counts") or {}).items()
        ],
        has_gold=bool(metrics.get("gold")),
        metric_rows=metric_rows(metrics),
        hyperparameter_rows=[
            {"name": _md(k), "value": _md(json.dumps(v) if not isinstance(v, str) else v)}
            for k, v in dict(record.hyperparameters or {}).items()
        ],
        seed_display=record.seed if record.seed is not None else "—",
        effective_batch_size_display=(record.effective_batch_size if record.effective_batch_size is not None else "—"),
        runtime_display=f"{float(runtime_s):.1f} s" if isinstance(runtime_s, (int, float)) else "",
        engine_display=_md(describe_engine(record.engine)) if record.engine else "",
        original_model_display=(
            f"[{hub}](https://huggingface.co/{hub})"
            if hub
            else f"`{_md(short)}` (a local checkpoint)"
            if names["name"]
            else "—"
        ),
        base_model_display=(
            f"[{base_model}](https://huggingface.co/{base_model})" if base_model and base_model != hub else ""
        ),
        license_display=_license_display(record.original_model or {}, names["license"]),
        original_revision_display=_show((record.original_model or {}).get("revision")),
        original_sha256_display=_show((record.original_model or {}).get("sha256")),
        library_version=_md(version),
        date=date,
        library_name=record.library_name,
        usage_repo_id=repo_id or "<namespace>/<model-name>",
        ids_published=ids_published,
        paper_url=PAPER_URL,
        request_rows=[
            {
                "request": r.get("request"),
                "date": _md(r.get("date")),
                "method": _md(r.get("method")),
                "num_removed": r.get("num_removed"),
                "commitment": _md(r.get("commitment")),
            }
            for r in provenance.get("requests") or []
        ],
        total_removed=provenance.get("total_removed"),
        method_papers=_papers(method_key),
        rf_jsd_paper=_papers("lotus")[0],  # RF-JSD is defined by LoTUS: every card's metrics cite it
        alpha_search=alpha_search_view(metrics.get("alpha_search")),
    )
